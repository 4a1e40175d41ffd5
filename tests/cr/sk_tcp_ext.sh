#!/bin/bash
# A tree (sk_tcp_peer client) streaming sequence-numbered data both ways
# with a server outside it (sk_tcp_peer server, on 127.0.0.1):
#  - dump without --tcp-established is refused with one line naming the
#    task, the fd and both addresses, and the tree keeps streaming;
#  - dump --tcp-established blocks the connection in crtool's nftables table
#    while the tree is away (the server's bytes are not acknowledged), and
#    restore rebuilds it and removes the block; twice;
#  - a dump that fails late, and dump --tcp-established --leave-running,
#    unblock at once and the tree streams on;
#  - at the end both sides check that no byte was lost or repeated.
# Environment as for run.sh: CRTOOL, CR_TESTDIR (subreaper, sk_tcp_peer), CR_TMPDIR.
set -u

# shellcheck source=script-prologue.sh
. "$(dirname "$0")/script-prologue.sh"

if ! "$CRTOOL" check --json | grep -q '"netlock_nft": true'; then
	echo "SKIP sk_tcp_ext.sh: crtool cannot block TCP connections (netlock_nft missing)"
	exit 77
fi

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-sk_tcp_ext.XXXXXX")
server= client= failed=0
fail() { echo "FAIL: $*"; failed=1; }

cleanup() {
	[ -n "$client" ] && kill -KILL "$client" 2>/dev/null
	[ -n "$server" ] && kill -KILL "$server" 2>/dev/null
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else
		for f in "$scratch"/*.log "$scratch"/err*; do [ -f "$f" ] && { echo "----- $f"; tail -20 "$f"; }; done
		echo "scratch kept: $scratch"
	fi
}
trap cleanup EXIT

# Waits up to $2 seconds (times the scale) for file $1.
wait_file() {
	local i
	for ((i = 0; i < $2 * scale * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# Not jobs of ours (the subreaper reaps them), so bash does not report their deaths.
server=$( (setsid "$CR_TESTDIR/sk_tcp_peer" "$scratch/server.out" server "$scratch/port" \
	</dev/null >>"$scratch/server.log" 2>&1 & echo $!) )
wait_file "$scratch/port" 10 || { fail "the server did not start"; exit 1; }
port=$(cat "$scratch/port")
client=$( (setsid "$CR_TESTDIR/sk_tcp_peer" "$scratch/client.out" client "$port" \
	</dev/null >>"$scratch/client.log" 2>&1 & echo $!) )
wait_file "$scratch/client.out.ready" 10 || { fail "the client did not start"; exit 1; }
sleep 0.5

blocked() { nft list set inet crtool_netlock conn4 2>/dev/null | grep -q "\. $port \."; }

# 1. Without --tcp-established: refused, the tree goes on.
if "$CRTOOL" dump -t "$client" -D "$scratch/d0" 2>"$scratch/err0"; then
	fail "dump of a connection to the outside succeeded without --tcp-established"
	exit 1
fi
grep -q "pid $client: fd [0-9]* (TCP 127.0.0.1:[0-9]* - 127.0.0.1:$port).*--tcp-established" "$scratch/err0" ||
	fail "the refusal does not name the task, fd and both addresses: $(cat "$scratch/err0")"
[ "$(wc -l <"$scratch/err0")" -eq 1 ] || fail "more than one error line: $(cat "$scratch/err0")"
[ -e "$scratch/d0/inventory.img" ] && fail "a refused dump left an inventory"
blocked && fail "a refused dump left the connection blocked"
[ -d "/proc/$client" ] || fail "the tree died after a refused dump"

# 1b. A dump that fails after the connection was blocked and repaired (the
# unlinked file is above --ghost-limit): unblocked, and the tree goes on.
if "$CRTOOL" dump -t "$client" -D "$scratch/d0b" --tcp-established --ghost-limit 4K 2>"$scratch/err0b"; then
	fail "dump with --ghost-limit 4K succeeded"
fi
grep -q "ghost" "$scratch/err0b" || fail "unexpected error: $(cat "$scratch/err0b")"
blocked && fail "a failed dump left the connection blocked"
[ -d "/proc/$client" ] || fail "the tree died after a failed dump"
sleep 0.5

# 2. Twice: dumped (killed, connection blocked meanwhile), restored (unblocked).
for n in 1 2; do
	"$CRTOOL" dump -t "$client" -D "$scratch/d$n" --tcp-established 2>>"$scratch/crtool.log" ||
		{ fail "dump $n --tcp-established failed"; exit 1; }
	blocked || fail "dump $n: the connection is not blocked while the tree is away"
	nft list set inet crtool_netlock conn4 2>/dev/null | grep "\. $port \." | grep -q expires &&
		fail "dump $n: the connection is blocked only for a while, not until the restore"
	sleep 1	# the server goes on sending: nothing may be acknowledged
	"$CRTOOL" restore -D "$scratch/d$n" --detach --pidfile "$scratch/pid$n" 2>>"$scratch/crtool.log" ||
		{ fail "restore $n failed"; exit 1; }
	[ "$(cat "$scratch/pid$n")" = "$client" ] || fail "restore $n: root pid $(cat "$scratch/pid$n"), expected $client"
	blocked && fail "restore $n left the connection blocked"
	sleep 0.5
done

# 3. --leave-running: the tree goes on at once, unblocked.
"$CRTOOL" dump -t "$client" -D "$scratch/d3" --tcp-established --leave-running 2>>"$scratch/crtool.log" ||
	fail "dump --leave-running failed"
blocked && fail "dump --leave-running left the connection blocked"
sleep 0.5

# 4. The end: both sides check every byte.
kill -TERM "$client"
wait_file "$scratch/client.out" 60 || fail "no verdict from the client"
wait_file "$scratch/server.out" 60 || fail "no verdict from the server"
grep -q '^PASS' "$scratch/client.out" || fail "client: $(cat "$scratch/client.out" 2>/dev/null)"
grep -q '^PASS' "$scratch/server.out" || fail "server: $(cat "$scratch/server.out" 2>/dev/null)"
client= server=
if [ $failed = 0 ]; then echo "PASS sk_tcp_ext.sh"; else echo "FAIL sk_tcp_ext.sh"; fi
exit $failed
