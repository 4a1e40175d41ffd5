# Shared by tests/mpi/mpi_job.sh and bench/mpi.sh: an MPI job in a job
# container of its own, and waits on it. Callers set: mpirun (array), scratch,
# state, iters, pace, scale; and define fail(). Sets launcher and init.

# mpi_setup LIB: the compiler and launcher of Open MPI or MPICH.
mpi_setup() {
	case $1 in
	openmpi)
		mpicc=mpicc.openmpi
		mpirun=(mpirun.openmpi --allow-run-as-root --oversubscribe -np 4)
		;;
	mpich)
		mpicc=mpicc.mpich
		mpirun=(mpirun.mpich -np 4)
		;;
	*) return 1 ;;
	esac
}

# Only stdin, stdout and stderr go into the job: a descriptor inherited
# from whoever runs the test would be held outside the tree too.
close_fds() {
	local f n
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] && eval "exec $n>&-"
	done
	return 0
}

kill_job() {
	# The job's init, then its launcher: killing a PID namespace's init kills
	# every process in it.
	[ -n "${init:-}" ] && kill -KILL "$init" 2>/dev/null
	[ -n "${launcher:-}" ] && kill -KILL "$launcher" 2>/dev/null
	init= launcher=
}

# start OUT: the job in its container; sets launcher (unshare, outside) and
# init (the namespace's pid 1 as seen from here: mpirun).
start() {
	local out=$1 cmd
	printf -v cmd '%q ' "${mpirun[@]}" "$scratch/ring" "$state" "$iters" "$pace"
	cd "$scratch" || return 1
	launcher=$( (close_fds; exec setsid unshare --pid --fork --ipc --mount --mount-proc \
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

