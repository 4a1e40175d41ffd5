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
openmpi) iters=${CR_MPI_ITERS:-3000} pace=1000 ;;
mpich) iters=${CR_MPI_ITERS:-1500} pace=1000 ;;
*)
	echo "usage: mpi_job.sh openmpi|mpich" >&2
	exit 2
	;;
esac
state=${CR_MPI_STATE_MIB:-256}
# shellcheck source=job-lib.sh
. "$selfdir/job-lib.sh"
mpi_setup "$lib"

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

cleanup() {
	kill_job
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else echo "scratch kept: $scratch"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$mpicc" -std=gnu11 -O2 -Wall -Wextra -Werror -o "$scratch/ring" "$selfdir/ring.c" ||
	{ fail "$mpicc could not build ring.c"; exit 1; }

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
