#!/bin/bash
# crlaunch and crctl without a checkpoint to restore: exit statuses, stdio
# through crlaunch, the PID namespace, options, the checkpoint directory and
# its socket (mode 0700 / 0600, other uids refused by SO_PEERCRED), another
# job's directory refused, `crctl stop`, --grace, signal actions, and a job
# in IPC and mount namespaces (a checkpoint the engine refuses leaves it
# running to its end).
. "$(dirname "$0")/lib.sh"

cl_run() { "$CRLAUNCH" "$@"; }

# Exit statuses: the job's, 128 + signal, 127 for a missing command.
cl_run --ckpt-dir s1 -- sh -c 'exit 7' < /dev/null; rc=$?
[ "$rc" = 7 ] || fail "exit 7 gave $rc"
cl_run --ckpt-dir s2 -- sh -c 'kill -KILL $$' < /dev/null; rc=$?
[ "$rc" = 137 ] || fail "a job killed by SIGKILL gave $rc"
cl_run --ckpt-dir s3 -- /nonexistent/cmd < /dev/null 2> err3; rc=$?
[ "$rc" = 127 ] || fail "a missing command gave $rc"
grep -q "can't run '/nonexistent/cmd'" err3 || fail "no message for a missing command: $(cat err3)"

# Stdio: stdin in, stdout and stderr out, each to its own place.
out=$(printf 'one\ntwo\n' | cl_run --ckpt-dir s4 -- sh -c 'cat; echo e >&2' 2> err4)
[ "$out" = "$(printf 'one\ntwo')" ] || fail "stdin/stdout through crlaunch: '$out'"
[ "$(cat err4)" = e ] || fail "stderr through crlaunch: '$(cat err4)'"

# The job is in its own PID namespace, under crinit (pid 1), and holds
# no descriptor of ours.
exec 7> leak
out=$(cl_run --ckpt-dir s5 -- sh -c 'echo $$ $PPID; ls /proc/self/fd | sort -n | tr "\n" " "' < /dev/null)
exec 7>&-
[ "${out%%$'\n'*}" = "2 1" ] || fail "the job is not pid 2 under pid 1: '$out'"
case "${out#*$'\n'}" in "0 1 2 3 ") ;; *) fail "the job holds descriptors it should not: ${out#*$'\n'}" ;; esac

# Options.
"$CRLAUNCH" --help | grep -q -- "--on-signal SIG=ACTION" || fail "--help does not explain --on-signal"
for bad in "--keep 0" "--restart sometimes" "--interval soon" "--on-signal KILL=checkpoint" \
	   "--on-signal USR1=explode" "--namespaces uts" "--namespaces ipc"; do
	# shellcheck disable=SC2086
	cl_run $bad -- true 2> errb < /dev/null; rc=$?
	[ "$rc" = 125 ] || fail "'$bad' gave $rc"
	[ "$(wc -l < errb)" -ge 1 ] || fail "'$bad': no message"
done
cl_run --ckpt-dir s6 < /dev/null 2> /dev/null; [ $? = 125 ] || fail "no command was accepted"
cl_run --restart always --ckpt-dir s7 -- true < /dev/null 2> err7; rc=$?
[ "$rc" = 125 ] && grep -q "holds no checkpoint" err7 || fail "--restart always with nothing: $rc $(cat err7)"

# The directory is 0700, the socket 0600; crctl without a crlaunch says so.
[ "$(stat -c %a s1)" = 700 ] || fail "the checkpoint directory is mode $(stat -c %a s1)"
"$CRCTL" --ckpt-dir s1 status 2> errc; rc=$?
[ "$rc" = 3 ] && grep -q "no crlaunch is running" errc || fail "crctl with no crlaunch: $rc $(cat errc)"
"$CRCTL" --ckpt-dir s1 epochs | grep -q "^EPOCH" || fail "crctl epochs without crlaunch"

# Another job's directory is refused.
cl_run --ckpt-dir s1 -- sh -c 'exit 8' < /dev/null 2> err8; rc=$?
[ "$rc" = 125 ] || fail "another job's directory: status $rc"
grep -q "holds the checkpoints of another job ('sh -c exit 7' in " err8 || fail "no clear refusal: $(cat err8)"

# A running job: the socket, a foreign uid, status, stop.
mkdir -p d
(cd d && exec "$CRLAUNCH" -- sleep 60 < /dev/null > out 2> err) &
cl=$!; pids+=("$cl")
wait_ready d
[ "$(stat -c %a d/crlaunch.ckpt/control)" = 600 ] || fail "the socket is mode $(stat -c %a d/crlaunch.ckpt/control)"
"$CRCTL" --ckpt-dir d/crlaunch.ckpt status | grep -q "^job: *'sleep 60' in " || fail "crctl status"
"$CRCTL" --ckpt-dir d/crlaunch.ckpt status --json | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["argv"] == ["sleep", "60"] and j["state"] == "running"' ||
	fail "crctl status --json"
if command -v setpriv > /dev/null; then
	# Open the way for uid 65534 to reach the socket: SO_PEERCRED must still say no.
	chmod 0711 "$scratch" d/crlaunch.ckpt; chmod 0666 d/crlaunch.ckpt/control
	setpriv --reuid=65534 --regid=65534 --clear-groups "$CRCTL" --ckpt-dir "$scratch/d/crlaunch.ckpt" \
		status > /dev/null 2> errn; rc=$?
	chmod 0700 d/crlaunch.ckpt; chmod 0600 d/crlaunch.ckpt/control
	[ "$rc" = 1 ] && grep -q "permission denied" errn || fail "uid 65534 was not refused: $rc $(cat errn)"
	grep -q "refused a client of uid 65534" d/err || fail "crlaunch did not log the refused client"
fi
"$CRCTL" --ckpt-dir d/crlaunch.ckpt stop > /dev/null || fail "crctl stop"
wait "$cl"; rc=$?
[ "$rc" = 143 ] || fail "after crctl stop: status $rc, not 143 (SIGTERM)"

# A checkpoint-exit that cannot finish within --grace is abandoned and the
# signal forwarded: the job ends by it, no epoch is committed.
mkdir -p g
(cd g && exec "$CRLAUNCH" --grace 1ms -- sh -c 'sleep 60 & wait' < /dev/null > out 2> err) &
cl=$!; pids+=("$cl")
wait_ready g
kill -TERM "$cl"; wait "$cl"; rc=$?
[ "$rc" = 143 ] || fail "a checkpoint-exit past --grace: status $rc, not 143: $(cat g/err)"
grep -q "did not finish within --grace" g/err || fail "no message about --grace: $(cat g/err)"
ls g/crlaunch.ckpt | grep -q epoch- && fail "an epoch is left after the abandoned checkpoint"

# Signals: HUP is forwarded to the job's group by default; INT (ignored in
# a background job) when asked to; --on-signal changes what a signal does.
mkdir -p h
(cd h && exec "$CRLAUNCH" --on-signal INT=forward --on-signal USR2=ignore --on-signal QUIT=checkpoint -- \
	sh -c 'trap "echo got \$1" INT; trap "echo got HUP; exit 5" HUP; echo ready; while :; do sleep 0.1; done' sh INT \
	< /dev/null > out 2> err) &
cl=$!; pids+=("$cl")
wait_ready h
for _ in $(seq 100); do grep -q "ready" h/out && break; sleep 0.05; done
kill -USR2 "$cl"; kill -INT "$cl"
for _ in $(seq 100); do grep -q "got INT" h/out && break; sleep 0.05; done
kill -QUIT "$cl"
wait_epoch h 1
kill -HUP "$cl"; wait "$cl"; rc=$?
[ "$rc" = 5 ] || fail "HUP forwarded: status $rc, not 5: $(cat h/err)"
[ "$(cat h/out)" = "$(printf 'ready\ngot INT\ngot HUP')" ] || fail "signals seen by the job: $(cat h/out)"

# IPC and mount namespaces, with a private /dev/shm. When the engine cannot
# dump them the checkpoint fails with a clear reason and the job runs on to
# its end; when it can, the job comes back with its /dev/shm.
mkdir -p n
(cd n && exec "$CRLAUNCH" --namespaces pid,ipc,mnt -- sh -c \
	'echo data > /dev/shm/crl-test-$$; ls /dev/shm; sleep 3; cat /dev/shm/crl-test-$$' \
	< /dev/null > out.1 2> err.1) &
cl=$!; pids+=("$cl")
wait_ready n
for _ in $(seq 100); do grep -q "crl-test-2" n/out.1 && break; sleep 0.05; done
[ -e /dev/shm/crl-test-2 ] && fail "the job's /dev/shm file is on the host"
if "$CRCTL" --ckpt-dir n/crlaunch.ckpt checkpoint --wait > ctln 2>&1; then
	kill -KILL "$cl"; wait "$cl" 2> /dev/null
	(cd n && exec "$CRLAUNCH" --namespaces pid,ipc,mnt -- sh -c \
		'echo data > /dev/shm/crl-test-$$; ls /dev/shm; sleep 3; cat /dev/shm/crl-test-$$' \
		< /dev/null > out.2 2> err.2); rc=$?
	[ "$rc" = 0 ] || fail "the job in IPC/mount namespaces, restored, ended with $rc: $(cat n/err.2)"
	off=$(manifest_field "$(epoch_dir n 1)" stream stdout)
	[ "$(head -c "$off" n/out.1; cat n/out.2)" = "$(printf 'crl-test-2\ndata')" ] ||
		fail "the restored job's /dev/shm: $(cat n/out.1 n/out.2)"
else
	grep -q "checkpoint epoch 1 failed" ctln || fail "crctl: $(cat ctln)"
	wait "$cl"; rc=$?
	[ "$rc" = 0 ] || fail "the job in IPC/mount namespaces ended with $rc: $(cat n/err.1)"
	[ "$(cat n/out.1)" = "$(printf 'crl-test-2\ndata')" ] || fail "the job's /dev/shm: $(cat n/out.1)"
	grep -q "own ipc namespace\|own mnt namespace" n/err.1 ||
		fail "no clear reason for the failed checkpoint: $(cat n/err.1)"
fi

finish
