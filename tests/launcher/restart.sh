#!/bin/bash
# crlaunch checkpoints a multi-process job (a parent, three workers, pipes
# between them, a result file it writes) by signal, by crctl and by
# --interval; after SIGKILL or a checkpoint-exit, the same line run again
# restores the newest consistent epoch and the job ends with the result and
# output of an uninterrupted run. A corrupted image in the newest epoch makes
# the restart fall back to the one before; a finished job starts over.
. "$(dirname "$0")/lib.sh"
reference

# 1. USR1, then crctl checkpoint --wait; SIGKILL; restart from epoch 2.
start_bg d1 --keep 1
wait_ready d1 || exit 1
ip=$(init_pid d1)
kill -USR1 "$cl"
wait_epoch d1 1
msg=$("$CRCTL" --ckpt-dir d1/crlaunch.ckpt checkpoint --wait) || fail "crctl checkpoint --wait failed: $msg"
case $msg in "checkpoint epoch 2: 5 processes, "*) ;; *) fail "crctl said '$msg'" ;; esac
grep -q "^crlaunch: checkpoint epoch 1: 5 processes, .* written, frozen .* ms, total .* ms, .*/s$" d1/err.1 ||
	fail "no checkpoint line for epoch 1: $(cat d1/err.1)"
kill -KILL "$cl"; wait "$cl" 2>/dev/null
gone "$ip" || fail "the job (init $ip) outlived crlaunch"
[ -e "$(epoch_dir d1 1)" ] && fail "--keep 1: epoch 1 is still there"
run_fg d1 --keep 1
[ "$rc" = 0 ] || fail "restarted run: status $rc: $(cat d1/err.2)"
[ "$(restored_epoch d1 2)" = 2 ] || fail "run 2 did not restore epoch 2: $(cat d1/err.2)"
same_as_reference d1 "$(cut_at d1 1 2)"

# 2. --interval; SIGKILL after the first periodic epoch.
start_bg d2 --interval 0.3
wait_epoch d2 1
kill -KILL "$cl"; wait "$cl" 2>/dev/null
run_fg d2
[ "$rc" = 0 ] || fail "d2: restarted run: status $rc"
e=$(restored_epoch d2 2)
[ -n "$e" ] || fail "d2: nothing restored: $(cat d2/err.2)"
same_as_reference d2 "$(cut_at d2 1 "${e:-1}")"

# 3. TERM: checkpoint-exit, status 75; the rerun finishes the job.
start_bg d3
wait_ready d3 || exit 1
sleep 0.5
kill -TERM "$cl"; wait "$cl"; rc=$?
[ "$rc" = 75 ] || fail "checkpoint-exit: status $rc, not 75: $(cat d3/err.1)"
run_fg d3
[ "$rc" = 0 ] || fail "d3: restarted run: status $rc"
[ "$(restored_epoch d3 2)" = 1 ] || fail "d3: run 2 did not restore epoch 1: $(cat d3/err.2)"
same_as_reference d3 "$(cut_at d3 1 1)"

# 3b. crctl checkpoint --exit --wait: the same, asked for over the socket.
start_bg d5
wait_ready d5 || exit 1
sleep 0.3
msg=$("$CRCTL" --ckpt-dir d5/crlaunch.ckpt checkpoint --exit --wait) || fail "crctl checkpoint --exit failed: $msg"
case $msg in "checkpoint epoch 1: "*) ;; *) fail "crctl checkpoint --exit said '$msg'" ;; esac
wait "$cl"; rc=$?
[ "$rc" = 75 ] || fail "crctl checkpoint --exit: status $rc, not 75: $(cat d5/err.1)"
run_fg d5
[ "$rc" = 0 ] || fail "d5: restarted run: status $rc"
same_as_reference d5 "$(cut_at d5 1 1)"

# 4. The job ran to its end: the same line starts it over.
run_fg d3
[ "$rc" = 0 ] || fail "d3: run 3: status $rc"
[ -z "$(restored_epoch d3 3)" ] || fail "d3: a finished job was restored"
cmp -s d3/out.3 ref/out || fail "d3: run 3 output differs from the reference"

# 5. Corrupt the newest epoch: fallback to the previous one, with a warning.
start_bg d4
wait_ready d4 || exit 1
"$CRCTL" --ckpt-dir d4/crlaunch.ckpt checkpoint --wait > /dev/null || fail "d4: checkpoint 1 failed"
sleep 0.3
"$CRCTL" --ckpt-dir d4/crlaunch.ckpt checkpoint --wait > /dev/null || fail "d4: checkpoint 2 failed"
kill -KILL "$cl"; wait "$cl" 2>/dev/null
img=$(ls "$(epoch_dir d4 2)"/node-000/pages-*.img | head -1)
printf '\x5a' | dd of="$img" bs=1 seek=100 conv=notrunc status=none
"$CRCTL" --ckpt-dir d4/crlaunch.ckpt epochs | grep -q "^epoch-000002  corrupt" ||
	fail "crctl epochs does not call epoch 2 corrupt: $("$CRCTL" --ckpt-dir d4/crlaunch.ckpt epochs)"
run_fg d4
[ "$rc" = 0 ] || fail "d4: restarted run: status $rc"
grep -q "epoch-000002 is corrupt (node-000/pages-.*checksum mismatch" d4/err.2 ||
	fail "d4: no warning about the corrupt epoch: $(cat d4/err.2)"
[ "$(restored_epoch d4 2)" = 1 ] || fail "d4: did not fall back to epoch 1: $(cat d4/err.2)"
same_as_reference d4 "$(cut_at d4 1 1)"

finish
