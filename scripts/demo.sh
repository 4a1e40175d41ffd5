#!/bin/bash
# The main job, end to end: build crlaunch, run a 4-rank Open MPI job under
# it (tests/mpi/ring.c: 256 MiB of state per rank, messages round a ring,
# every value checked), checkpoint it with `crctl checkpoint`, kill crlaunch
# and its job with SIGKILL as a node crash would, run the same crlaunch line
# again, which restores the job from its checkpoint, and check that the job's
# output (every checksum and the result) equals that of an uninterrupted run
# of the same job. Needs root.
#
#   scripts/demo.sh [--keep] [--mib N] [--iterations N]
#     --keep          keep the work directory (checkpoints, outputs) afterwards
#     --mib N         state per rank in MiB (default 256)
#     --iterations N  ring iterations (default 3000; the checkpoint comes at 1/5)
#
# scripts/demo-crtool.sh does the same with the engine alone (crtool dump
# and restore of a single multi-threaded process).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

builddir=build
keep=no
mib=256
iters=3000
while [ $# -gt 0 ]; do
	case $1 in
	--keep) keep=yes ;;
	--mib | --iterations)
		[ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 wants a positive integer"
		if [ "$1" = --mib ]; then mib=$2; else iters=$2; fi
		shift
		;;
	-h | --help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
	shift
done
[ "$iters" -ge 500 ] || die "--iterations must be at least 500"
[ "$(id -u)" -eq 0 ] || die "run me as root: crlaunch needs namespaces, ptrace and PID control"

# --- processes we started, and only those, are cleaned up, by pid --------
crl_pid=
workdir=
cleanup() {
	local status=$?
	if [ -n "$crl_pid" ]; then
		# crlaunch's job container dies with it.
		kill -KILL "$crl_pid" 2>/dev/null || true
		{ wait "$crl_pid"; } 2>/dev/null || true
	fi
	[ "$status" -eq 0 ] || keep=yes
	if [ -n "$workdir" ] && [ $keep = no ]; then
		rm -rf "$workdir"
	elif [ -n "$workdir" ]; then
		msg "kept $workdir"
	fi
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# wait_for_line FILE REGEX TIMEOUT: until a line of FILE matches, while
# crlaunch runs.
wait_for_line() {
	local deadline=$((SECONDS + $3))
	until grep -qE "$2" "$1" 2>/dev/null; do
		[ -d "/proc/$crl_pid" ] || { grep -qE "$2" "$1" 2>/dev/null && return 0; return 1; }
		[ $SECONDS -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

show() { printf '\n$ %s\n' "$*"; }

# --- build ---------------------------------------------------------------
"$CR_SCRIPTS/build.sh" "$builddir"
cd "$CR_SRCDIR"
make -C "$builddir" -s crlaunch crctl crtool
crlaunch=$CR_SRCDIR/$builddir/crlaunch
crctl=$CR_SRCDIR/$builddir/crctl
for t in mpicc.openmpi mpirun.openmpi; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/install-deps.sh installs Open MPI)"
done

workdir=$(mktemp -d "${TMPDIR:-/tmp}/crdemo.XXXXXX")
mpicc.openmpi -std=gnu11 -O2 -o "$workdir/ring" tests/mpi/ring.c
job=(mpirun.openmpi --allow-run-as-root --oversubscribe -np 4 "$workdir/ring" "$mib" "$iters" 1000)
# The job's own network namespace: after a crash its loopback TCP ports are
# not left held in the host's.
line=("$crlaunch" --namespaces pid,ipc,mnt,net -- "${job[@]}")
mkdir "$workdir/ref" "$workdir/job"

# --- the job under crlaunch, checkpointed, then killed -----------------------
msg "starting the job under crlaunch in $workdir/job"
show "${line[*]}"
(cd "$workdir/job" && exec "${line[@]}" </dev/null >out.1 2>err.1) &
crl_pid=$!
at=$((iters / 5 / 100 * 100))
wait_for_line "$workdir/job/out.1" "^iteration $at " 300 ||
	die "the job did not reach iteration $at: $(tail -5 "$workdir/job/err.1")"
msg "the job is at '$(tail -n 1 "$workdir/job/out.1")'"
show crctl checkpoint --wait
"$crctl" --ckpt-dir "$workdir/job/crlaunch.ckpt" checkpoint --wait ||
	die "the checkpoint failed: $(tail -5 "$workdir/job/err.1")"
grep '^crlaunch: epoch' "$workdir/job/err.1" | tail -n 1 || true
show crctl epochs
"$crctl" --ckpt-dir "$workdir/job/crlaunch.ckpt" epochs
at2=$((iters * 2 / 5 / 100 * 100))
wait_for_line "$workdir/job/out.1" "^iteration $at2 " 300 ||
	die "the job did not go on to iteration $at2 after its checkpoint"
msg "the job went on to '$(tail -n 1 "$workdir/job/out.1")'; now it crashes:"
show kill -KILL "$crl_pid"
kill -KILL "$crl_pid"
{ wait "$crl_pid"; } 2>/dev/null || true
crl_pid=

# --- the same line again: it restores the job ------------------------------
msg "the same crlaunch line again"
show "${line[*]}"
(cd "$workdir/job" && exec "${line[@]}" </dev/null >out.2 2>err.2) &
crl_pid=$!
status=0
wait "$crl_pid" || status=$?
crl_pid=
grep '^crlaunch: restored' "$workdir/job/err.2" || die "the second run did not restore the job: $(cat "$workdir/job/err.2")"
[ $status -eq 0 ] || die "the restored job ended with status $status: $(tail -5 "$workdir/job/err.2")"
restored=$(grep '^result=' "$workdir/job/out.2" || true)
msg "the restored job finished: '$restored'"

# --- the same job, uninterrupted -------------------------------------------
msg "running the same job without interruption (no crlaunch)"
show "${job[*]}"
(cd "$workdir/ref" && "${job[@]}" </dev/null >out 2>err) ||
	die "the uninterrupted job failed: $(tail -5 "$workdir/ref/err")"
expected=$(grep '^result=' "$workdir/ref/out")
msg "the uninterrupted job finished: '$expected'"

# The output: the first run's up to the checkpoint's offset (the MANIFEST
# records it), then the restored run's.
off=$(awk '$1 == "stream" && $2 == "stdout" { print $3 }' "$workdir/job/crlaunch.ckpt/latest/MANIFEST")
[[ $off =~ ^[0-9]+$ ]] || die "no stdout offset in the checkpoint's MANIFEST"
if [ "$restored" != "$expected" ]; then
	msg "FAILED: the restored job says '$restored', the uninterrupted one '$expected'"
	exit 1
fi
if ! diff -u "$workdir/ref/out" <(head -c "$off" "$workdir/job/out.1"; cat "$workdir/job/out.2"); then
	msg "FAILED: same result, but the output differs (above)"
	exit 1
fi
echo "demo: the MPI job restored by crlaunch after a crash finished like an uninterrupted run: ${expected#result=}"
