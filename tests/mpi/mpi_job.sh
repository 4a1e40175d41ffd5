#!/bin/bash
# A 4-rank MPI job, started the way a user would start it in a job container
# of their own (PID, IPC and mount namespaces, a private /dev/shm), is
# checkpointed with `crtool dump -t INIT` three times during one run,
# restored each time with `crtool restore --detach`, and must finish with
# exactly the output of an uninterrupted run of the same job: every progress
# line, every checksum, the final result, in the same file.
#
#   mpi_job.sh openmpi|mpich
#
# Environment: CRTOOL, CR_TESTDIR (for the subreaper), CR_TMPDIR as for
# tests/cr/run.sh; CR_MPI_STATE_MIB (default 256) and CR_MPI_ITERS to make
# the job smaller or longer; CR_TIMEOUT_SCALE multiplies the time limits.
set -u
selfdir=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$selfdir/../.." && pwd)
CR_TESTDIR=${CR_TESTDIR:-$srcdir/build/tests/cr}
CRTOOL=${CRTOOL:-$srcdir/build/crtool}
lib=${1:-}
scale=${CR_TIMEOUT_SCALE:-1}

case $lib in
openmpi)
	mpicc=mpicc.openmpi
	mpirun=(mpirun.openmpi --allow-run-as-root --oversubscribe -np 4)
	iters=${CR_MPI_ITERS:-3000} pace=1000
	;;
mpich)
	mpicc=mpicc.mpich
	mpirun=(mpirun.mpich -np 4)
	iters=${CR_MPI_ITERS:-1500} pace=1000
	;;
*)
	echo "usage: mpi_job.sh openmpi|mpich" >&2
	exit 2
	;;
esac
state=${CR_MPI_STATE_MIB:-256}

if [ -z "${CR_UNDER_SUBREAPER:-}" ]; then
	export CR_UNDER_SUBREAPER=$$
	lock=${CR_TMPDIR:-${TMPDIR:-/tmp}}/crlaunch-cr-tests.lock
	exec flock -o "$lock" "$CR_TESTDIR/subreaper" bash "$0" "$@"
fi

for tool in "$mpicc" "${mpirun[0]}" unshare; do
	command -v "$tool" >/dev/null || {
		echo "FAIL: $tool is not installed (scripts/install-deps.sh installs it)"
		exit 1
	}
done

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-mpi-$lib.XXXXXX")
failed=0 launcher= init=
fail() { echo "FAIL: $*"; failed=1; }

kill_job() {
	# The job's init, then its launcher: killing a PID namespace's init kills
	# every process in it.
	[ -n "$init" ] && kill -KILL "$init" 2>/dev/null
	[ -n "$launcher" ] && kill -KILL "$launcher" 2>/dev/null
	init= launcher=
}
cleanup() {
	kill_job
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else echo "scratch kept: $scratch"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$mpicc" -std=gnu11 -O2 -Wall -Wextra -Werror -o "$scratch/ring" "$selfdir/ring.c" ||
	{ fail "$mpicc could not build ring.c"; exit 1; }

# start OUT: the job in its container; sets launcher (unshare, outside) and
# init (the namespace's pid 1 as seen from here: mpirun).
start() {
	local out=$1 cmd
	printf -v cmd '%q ' "${mpirun[@]}" "$scratch/ring" "$state" "$iters" "$pace"
	cd "$scratch" || return 1
	launcher=$( (setsid unshare --pid --fork --ipc --mount --mount-proc \
		--propagation private sh -c "mount -t tmpfs shm /dev/shm && exec setsid $cmd" \
		</dev/null >"$out" 2>&1 & echo $!) )
	cd - >/dev/null || return 1
	local i
	for ((i = 0; i < 100; i++)); do
		init=$(cat "/proc/$launcher/task/$launcher/children" 2>/dev/null)
		init=${init%% *}
		[ -n "$init" ] && return 0
		sleep 0.05
	done
	fail "the job's init did not appear under unshare ($launcher)"
	return 1
}

# wait_line FILE PATTERN SECONDS
wait_line() {
	local i limit=$(($3 * 10 * scale))
	for ((i = 0; i < limit; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# wait_gone PID SECONDS: the process is gone (the subreaper reaps it).
wait_gone() {
	local i limit=$(($2 * 10 * scale))
	for ((i = 0; i < limit; i++)); do
		[ -d "/proc/$1" ] || return 0
		sleep 0.1
	done
	return 1
}

# 1. The reference: the same job, uninterrupted.
start "$scratch/ref" || exit 1
wait_gone "$init" 300 || { fail "the uninterrupted job did not finish"; exit 1; }
wait_gone "$launcher" 10
init= launcher=
grep -q '^result=' "$scratch/ref" || { fail "the uninterrupted job printed no result: $(tail -5 "$scratch/ref")"; exit 1; }

# 2. The same job, dumped and restored three times.
start "$scratch/out" || exit 1
root=$init
prev=
for n in 1 2 3; do
	at=$((iters * n / 5))
	at=$(((at / 100) * 100))
	wait_line "$scratch/out" "^iteration $at " 120 ||
		{ fail "the job did not reach iteration $at before dump $n: $(tail -3 "$scratch/out")"; break; }
	if ! "$CRTOOL" dump -t "$root" -D "$scratch/d$n" 2> "$scratch/dump$n.log"; then
		fail "dump $n failed: $(tail -5 "$scratch/dump$n.log")"
		break
	fi
	wait_gone "$root" 10 || { fail "the job is still there after dump $n"; break; }
	[ -n "$launcher" ] && { wait_gone "$launcher" 10; launcher=; }
	init=
	if ! "$CRTOOL" restore -D "$scratch/d$n" --detach --pidfile "$scratch/pid$n" \
		2> "$scratch/restore$n.log"; then
		fail "restore $n failed: $(tail -5 "$scratch/restore$n.log")"
		break
	fi
	init=$(cat "$scratch/pid$n")
	root=$init
	[ -n "$prev" ] && rm -rf "$prev"
	prev=$scratch/d$n
done
if [ $failed = 0 ]; then
	wait_gone "$init" 300 || fail "the restored job did not finish: $(tail -3 "$scratch/out")"
	init=
fi
if [ $failed = 0 ] && ! cmp -s "$scratch/ref" "$scratch/out"; then
	fail "the output differs from the uninterrupted run's:"
	diff "$scratch/ref" "$scratch/out" | head -20
fi
[ $failed = 0 ] && echo "PASS: $lib job: 3 checkpoints, $(grep '^result=' "$scratch/out")"
exit $failed
