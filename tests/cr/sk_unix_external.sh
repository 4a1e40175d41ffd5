#!/bin/bash
# A tree whose unix stream socket is connected to a server outside it (held
# by this script), asking "ping N" and logging N once "pong N" comes back:
#  - dump without --external is refused with one line naming the task, the
#    fd and the server's name, and the tree keeps running;
#  - dump --external 'unix:PATH' succeeds; the restored tree reconnects to
#    the server by name (a new connection), and its log goes on with no
#    number lost or repeated; then the same with --external 'unix:[INO]'.
# Environment as for run.sh: CRTOOL, CR_TESTDIR (subreaper), CR_TMPDIR.
set -u

# shellcheck source=script-prologue.sh
. "$(dirname "$0")/script-prologue.sh"
command -v python3 >/dev/null || { echo "SKIP sk_unix_external: no python3"; exit 77; }

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-sk_unix_external.XXXXXX")
server= client= failed=0
fail() { echo "FAIL: $*"; failed=1; }

cleanup() {
	[ -n "$client" ] && kill -KILL "$client" 2>/dev/null
	[ -n "$server" ] && kill -KILL "$server" 2>/dev/null
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else echo "scratch kept: $scratch"; fi
}
trap cleanup EXIT

sock=$scratch/server.sock

# The server: answers "ping N" with "pong N" on every connection, logs each connection.
cat > "$scratch/server.py" <<'EOF'
import os, socket, sys, threading
os.closerange(3, 1024)
path, log = sys.argv[1], sys.argv[2]
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(path)
l.listen(4)
def serve(c):
    buf = b""
    while True:
        d = c.recv(4096)
        if not d:
            return
        buf += d
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            c.sendall(line.replace(b"ping", b"pong") + b"\n")
while True:
    c, _ = l.accept()
    with open(log, "a") as f:
        f.write("connection\n")
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF

# The client (the tree): a ping it got no answer to is asked again.
cat > "$scratch/client.py" <<'EOF'
import os, socket, sys, time
os.closerange(3, 1024)
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.settimeout(0.5)
f = open(out, "a", buffering=1)
n, buf = 0, b""
while True:
    s.sendall(b"ping %d\n" % n)
    try:
        while b"\n" not in buf:
            d = s.recv(100)
            if not d:
                sys.exit(3)
            buf += d
    except socket.timeout:
        continue
    line, buf = buf.split(b"\n", 1)
    if line == b"pong %d" % n:
        f.write("%d\n" % n)
        n += 1
    time.sleep(0.05)
EOF

server=$( (python3 "$scratch/server.py" "$sock" "$scratch/server.log" </dev/null \
	>"$scratch/server.out" 2>&1 & echo $!) )
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { fail "the server did not start: $(cat "$scratch/server.out")"; exit 1; }

# Not a job of ours (the subreaper reaps it), so bash does not report its death.
client=$( (setsid python3 "$scratch/client.py" "$sock" "$scratch/out" </dev/null \
	>"$scratch/client.out" 2>&1 & echo $!) )
lines() { cat "$scratch/out" 2>/dev/null | wc -l; }
for _ in $(seq 50); do [ "$(lines)" -ge 5 ] && break; sleep 0.1; done
[ "$(lines)" -ge 5 ] || fail "the client does not talk: $(cat "$scratch/client.out")"

# 1. Undeclared: refused with one line naming the task, fd and server; tree left running.
if "$CRTOOL" dump -t "$client" -D "$scratch/d0" 2> "$scratch/err0"; then
	fail "dump of a tree connected to an outside server succeeded without --external"
fi
grep -qF -- "--external 'unix:$sock'" "$scratch/err0" || fail "no hint naming $sock: $(cat "$scratch/err0")"
grep -qF -- "pid $client: fd " "$scratch/err0" || fail "the error does not name the task and fd: $(cat "$scratch/err0")"
[ "$(wc -l < "$scratch/err0")" -eq 1 ] || fail "more than one error line: $(cat "$scratch/err0")"
n0=$(lines); sleep 0.5
[ -d "/proc/$client" ] && [ "$(lines)" -gt "$n0" ] || fail "the tree stopped after a failed dump"

# 2. Declared: dumped and killed. A pong caught in flight is refused (it
#    could not be sent again): the dump is retried.
for try in 1 2 3 4 5; do
	if "$CRTOOL" dump -t "$client" -D "$scratch/d1" --external "unix:$sock" 2> "$scratch/err1"; then
		break
	fi
	grep -q "is queued" "$scratch/err1" || { fail "dump --external failed: $(cat "$scratch/err1")"; break; }
	sleep 0.1
done
for _ in $(seq 20); do [ -d "/proc/$client" ] || break; sleep 0.1; done
[ -d "/proc/$client" ] && fail "the tree still runs after dump --external (try $try: $(cat "$scratch/err1"))"
n1=$(lines)

# 3. Restore: the socket connects to the server again, by name.
"$CRTOOL" restore -D "$scratch/d1" --detach --pidfile "$scratch/pid" || fail "restore failed"
for _ in $(seq 50); do [ "$(lines)" -ge $((n1 + 5)) ] && break; sleep 0.1; done
n2=$(lines)
[ "$n2" -ge $((n1 + 5)) ] || fail "no answers after restore ($n1 lines before, $n2 after): $(cat "$scratch/client.out")"
[ "$(grep -c connection "$scratch/server.log")" = 2 ] || fail "the server saw $(grep -c connection "$scratch/server.log") connections, expected 2"
[ "$(cat "$scratch/pid")" = "$client" ] || fail "restored as pid $(cat "$scratch/pid"), was $client"

# 4. Again, declared by the server socket's inode this time (unix:[INO], as
#    the refusal names it).
"$CRTOOL" dump -t "$client" -D "$scratch/d2" --leave-running 2> "$scratch/err2" &&
	fail "dump of the restored tree succeeded without --external"
ino=$(sed -n 's/.* \[\([0-9]*\)\] outside the tree.*/\1/p' "$scratch/err2" | head -1)
[ -n "$ino" ] || fail "no inode in the refusal: $(cat "$scratch/err2")"
for try in 1 2 3 4 5; do
	if "$CRTOOL" dump -t "$client" -D "$scratch/d2" --external "unix:[$ino]" 2> "$scratch/err3"; then
		break
	fi
	grep -q "is queued" "$scratch/err3" || { fail "dump --external unix:[$ino] failed: $(cat "$scratch/err3")"; break; }
	sleep 0.1
done
for _ in $(seq 20); do [ -d "/proc/$client" ] || break; sleep 0.1; done
n3=$(lines)
"$CRTOOL" restore -D "$scratch/d2" --detach --pidfile "$scratch/pid" || fail "second restore failed"
for _ in $(seq 50); do [ "$(lines)" -ge $((n3 + 5)) ] && break; sleep 0.1; done
[ "$(lines)" -ge $((n3 + 5)) ] || fail "no answers after the second restore"
[ "$(grep -c connection "$scratch/server.log")" = 3 ] || fail "the server saw $(grep -c connection "$scratch/server.log") connections, expected 3"
n2=$(lines)
kill -KILL "$client" 2>/dev/null
client=
awk '$1 != NR - 1 { print "line " NR " is \"" $0 "\""; bad = 1; exit } END { exit bad }' \
	"$scratch/out" || fail "the answers are not one unbroken sequence"

if [ $failed = 0 ]; then echo "PASS sk_unix_external ($n1 answers before the first restore, $n2 at the end)"; exit 0; fi
exit 1
