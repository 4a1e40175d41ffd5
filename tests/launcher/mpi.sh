#!/bin/bash
# An MPI job of 4 ranks run as `crlaunch mpirun ...` (Open MPI by default):
# checkpointed twice with crctl, then preempted (TERM: a last checkpoint,
# the job killed, status 75), then started again with the same line: it
# resumes from the third epoch and prints exactly the lines of an
# uninterrupted run (every checksum and the result).
#
#   mpi.sh [openmpi|mpich]      (CRL_MPI_NS: --namespaces for crlaunch)
#
# Then the same job in a network namespace of its own (--namespaces
# pid,ipc,mnt,net), checkpointed once and killed with SIGKILL: it resumes
# too. (Without the network namespace, the killed ranks' loopback TCP
# connections linger in the host's and their ports cannot be bound again.)
. "$(dirname "$0")/lib.sh"
lib=${1:-openmpi}
# shellcheck source=../mpi/job-lib.sh
. "$selfdir/../mpi/job-lib.sh"
mpi_setup "$lib" || { echo "usage: mpi.sh [openmpi|mpich]"; exit 2; }
for tool in "$mpicc" "${mpirun[0]}"; do
	command -v "$tool" > /dev/null || { fail "$tool is not installed (scripts/install-deps.sh)"; exit 1; }
done
"$mpicc" -std=gnu11 -O2 -Wall -Wextra -Werror -o ring "$selfdir/../mpi/ring.c" ||
	{ fail "$mpicc could not build ring.c"; exit 1; }
iters=${CR_MPI_ITERS:-1500}
job=("${mpirun[@]}" "$scratch/ring" 16 "$iters" 2000)

# mpi_run DIR [NAMESPACES]: crlaunch with the MPI job in DIR, in the background ($cl).
mpi_run() {
	local dir=$1 n ns=${2:-${CRL_MPI_NS:-}}
	mkdir -p "$dir"
	n=$(($(runs "$dir") + 1))
	(cd "$dir" && exec "$CRLAUNCH" ${ns:+--namespaces "$ns"} -- "${job[@]}" > "out.$n" 2> "err.$n" < /dev/null) &
	cl=$!
	pids+=("$cl")
}

wait_line() {	# FILE PATTERN
	for _ in $(seq 1200); do
		grep -q "$2" "$1" 2> /dev/null && return 0
		sleep 0.1
	done
	fail "'$2' never appeared in $1: $(tail -3 "$1")"
	return 1
}

mpi_run ref
wait "$cl" || fail "the uninterrupted run failed: $(tail -5 ref/err.1)"
grep -q '^result=' ref/out.1 || { fail "no result in the uninterrupted run"; exit 1; }

mpi_run d
wait_line d/out.1 "^iteration $((iters / 5 / 100 * 100)) " || exit 1
"$CRCTL" --ckpt-dir d/crlaunch.ckpt checkpoint --wait || fail "checkpoint 1 failed: $(tail -3 d/err.1)"
wait_line d/out.1 "^iteration $((iters * 2 / 5 / 100 * 100)) " || exit 1
"$CRCTL" --ckpt-dir d/crlaunch.ckpt checkpoint --wait || fail "checkpoint 2 failed: $(tail -3 d/err.1)"
# Preemption: TERM, a last checkpoint, the job killed (status 75).
kill -TERM "$cl"; wait "$cl"; rc=$?
[ "$rc" = 75 ] || fail "checkpoint-exit: status $rc, not 75: $(tail -3 d/err.1)"
[ $failed = 0 ] || exit 1
mpi_run d
wait "$cl"; rc=$?
[ "$rc" = 0 ] || fail "the restarted run ended with $rc: $(tail -5 d/err.2)"
[ "$(restored_epoch d 2)" = 3 ] || fail "the restarted run did not restore epoch 3: $(cat d/err.2)"
cat d/out.1 d/out.2 | cmp -s - ref/out.1 ||
	fail "the output differs from the uninterrupted run's: $(cat d/out.1 d/out.2 | diff - ref/out.1 | head -5)"
mpi_run k pid,ipc,mnt,net
wait_line k/out.1 "^iteration $((iters / 5 / 100 * 100)) " || exit 1
"$CRCTL" --ckpt-dir k/crlaunch.ckpt checkpoint --wait || fail "k: checkpoint failed: $(tail -3 k/err.1)"
kill -KILL "$cl"; wait "$cl" 2> /dev/null
[ $failed = 0 ] || exit 1
mpi_run k pid,ipc,mnt,net
wait "$cl"; rc=$?
[ "$rc" = 0 ] || fail "k: the run restarted after SIGKILL ended with $rc: $(tail -5 k/err.2)"
[ "$(restored_epoch k 2)" = 1 ] || fail "k: epoch 1 was not restored: $(cat k/err.2)"
off=$(manifest_field "$(epoch_dir k 1)" stream stdout)
{ head -c "$off" k/out.1; cat k/out.2; } | cmp -s - ref/out.1 ||
	fail "k: the output differs from the uninterrupted run's: $({ head -c "$off" k/out.1; cat k/out.2; } | diff - ref/out.1 | head -5)"
grep -q "Warning" k/err.2 && fail "k: warnings at restore: $(cat k/err.2)"

finish "$lib, $(grep '^result=' d/out.2)"
