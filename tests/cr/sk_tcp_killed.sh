#!/bin/bash
# A tree of TCP pairs (sk_tcp_pair) is dumped with --leave-running, then
# killed with SIGKILL as a failing node would be: its connections close for
# real and leave TIME_WAIT and orphaned sockets on their ports and 4-tuples.
# Restoring the dump must clear those leftovers, rebuild every connection,
# and the program must then pass its checks (no byte lost or repeated).
# Environment as for run.sh: CRTOOL, CR_TESTDIR (subreaper, sk_tcp_pair), CR_TMPDIR.
set -u

# shellcheck source=script-prologue.sh
. "$(dirname "$0")/script-prologue.sh"

if ! "$CRTOOL" check --json | grep -q '"netlock_nft": true'; then
	echo "SKIP sk_tcp_killed.sh: crtool cannot block TCP connections (netlock_nft missing)"
	exit 77
fi

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-sk_tcp_killed.XXXXXX")
root= pids= failed=0
fail() { echo "FAIL: $*"; failed=1; }

cleanup() {
	for p in $pids $root; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else
		for f in "$scratch"/*.log "$scratch"/out; do [ -f "$f" ] && { echo "----- $f"; tail -20 "$f"; }; done
		echo "scratch kept: $scratch"
	fi
}
trap cleanup EXIT

wait_file() {
	local i
	for ((i = 0; i < $2 * scale * 10; i++)); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

root=$( (setsid "$CR_TESTDIR/sk_tcp_pair" "$scratch/out" </dev/null >>"$scratch/prog.log" 2>&1 & echo $!) )
wait_file "$scratch/out.ready" 30 || { fail "the program did not get ready"; exit 1; }
pids=$(cat /proc/"$root"/task/*/children)
sleep 0.5
"$CRTOOL" dump -t "$root" -D "$scratch/d1" --leave-running 2>>"$scratch/crtool.log" ||
	{ fail "dump --leave-running failed"; exit 1; }
sleep 0.3
kill -KILL $pids "$root"
for ((i = 0; i < 100; i++)); do
	alive=0
	for p in $pids $root; do [ -d "/proc/$p" ] && alive=1; done
	[ $alive = 0 ] && break
	sleep 0.1
done
"$CRTOOL" restore -D "$scratch/d1" --detach --pidfile "$scratch/pid1" -v 2>>"$scratch/crtool.log" ||
	{ fail "restore after SIGKILL failed"; exit 1; }
sleep 1
kill -TERM "$root"
wait_file "$scratch/out" $((60 * scale)) || fail "no verdict"
grep -q '^PASS' "$scratch/out" || fail "$(cat "$scratch/out" 2>/dev/null)"
root= pids=
if [ $failed = 0 ]; then echo "PASS sk_tcp_killed.sh"; else echo "FAIL sk_tcp_killed.sh"; fi
exit $failed
