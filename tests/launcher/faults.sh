#!/bin/bash
# Fault injection at every step of a checkpoint (CRLAUNCH_FAULT, see
# src/launcher/checkpoint.c). The first checkpoint succeeds; the second one:
#  - STEP (crlaunch killed there): the job dies with crlaunch, nothing of it
#    stays frozen or running; the rerun restores the newest consistent epoch
#    (epoch 2 only when its MANIFEST was in place) and the job ends as an
#    uninterrupted run;
#  - STEP:fail (the step fails): the job is neither frozen nor killed, the
#    half-made epoch is removed, the next checkpoint works, and the job ends
#    as an uninterrupted run.
STEPS=25 DELAY=80
. "$(dirname "$0")/lib.sh"
reference

steps="before-images during-images after-images before-manifest manifest-tmp after-manifest"

for step in $steps; do
	d=kill-$step
	CRLAUNCH_FAULT=$step@2 start_bg "$d"
	wait_ready "$d" || continue
	ip=$(init_pid "$d")
	"$CRCTL" --ckpt-dir "$d/crlaunch.ckpt" checkpoint --wait > /dev/null || fail "$d: checkpoint 1 failed"
	"$CRCTL" --ckpt-dir "$d/crlaunch.ckpt" checkpoint --wait > /dev/null 2>&1 &&
		fail "$d: checkpoint 2 succeeded despite the fault"
	wait "$cl" 2>/dev/null; rc=$?
	[ "$rc" = 137 ] || fail "$d: crlaunch ended with $rc, not killed at $step: $(cat "$d/err.1")"
	gone "$ip" || fail "$d: the job (init $ip) outlived crlaunch"
	want=1
	[ "$step" = after-manifest ] && want=2
	run_fg "$d"
	[ "$rc" = 0 ] || fail "$d: restarted run: status $rc: $(cat "$d/err.2")"
	got=$(restored_epoch "$d" 2)
	[ "$got" = "$want" ] || fail "$d: restored epoch '$got', not $want: $(cat "$d/err.2")"
	same_as_reference "$d" "$(cut_at "$d" 1 "$want")"
	[ -e "$(epoch_dir "$d" 2)" ] && [ "$want" = 1 ] &&
		fail "$d: the inconsistent epoch 2 was not cleaned up"
done

for step in $steps; do
	d=fail-$step
	CRLAUNCH_FAULT=$step@2:fail start_bg "$d"
	wait_ready "$d" || continue
	"$CRCTL" --ckpt-dir "$d/crlaunch.ckpt" checkpoint --wait > /dev/null || fail "$d: checkpoint 1 failed"
	"$CRCTL" --ckpt-dir "$d/crlaunch.ckpt" checkpoint --wait > "$d/ctl2" 2>&1 &&
		fail "$d: checkpoint 2 succeeded despite the fault"
	grep -q "checkpoint epoch 2 failed" "$d/ctl2" || fail "$d: crctl said: $(cat "$d/ctl2")"
	[ -e "$(epoch_dir "$d" 2)" ] && fail "$d: the failed epoch 2 was left behind"
	msg=$("$CRCTL" --ckpt-dir "$d/crlaunch.ckpt" checkpoint --wait 2>&1) ||
		fail "$d: the checkpoint after the failed one failed: $msg"
	case $msg in "checkpoint epoch 3: "*) ;; *) fail "$d: third checkpoint: '$msg'" ;; esac
	wait "$cl"; rc=$?
	[ "$rc" = 0 ] || fail "$d: the job ended with $rc: $(cat "$d/err.1")"
	same_as_reference "$d"
done

finish
