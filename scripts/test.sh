#!/bin/bash
# The whole test suite, as CI runs it (.ci/run): build normally with -Werror
# and run `make check` in build/, then the same with ASan+UBSan in
# build-asan/, then print every failed test's log and a closing line
# "N passed, N failed, N skipped". Exits non-zero when anything failed or
# when no test ran. Needs root: the engine tests ptrace and restore processes.
#
# Environment:
#   CR_CHECK_JOBS     parallel tests per `make check` (default: nproc)
#   CR_CHECK_TIMEOUT  seconds allowed to each `make check` (default: 780, so
#                     that two builds and two checks stay within 30 minutes)
#   CR_DETECT_LEAKS=1 turn LeakSanitizer on in the sanitizer build
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

check_jobs=${CR_CHECK_JOBS:-$(cr_nproc)}
check_timeout=${CR_CHECK_TIMEOUT:-780}
# Steps that fail before any test could report (a build, a hung `make
# check`) leave a synthetic .trs and .log here, so the summary counts them.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/crtest.XXXXXX")
cgroup=
watchdog_pid=
trap 'stop_watchdog; cgroup_end; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
synthetic=$tmp/steps
mkdir "$synthetic"

fail_step() {
	local name=$1 log=$2
	echo ":test-result: FAIL" >"$synthetic/$name.trs"
	cp "$log" "$synthetic/$name.log"
}

# The environment of `make check`, set per build.
check_env=()

# Leaks are off by default: LeakSanitizer stops the world with ptrace, which
# fails in the tasks crtool itself holds under ptrace while it restores them.
# The libFuzzer target (tests/fuzz/run-fuzz.sh) still checks the image
# reader for leaks.
sanitizer_env() {
	local leaks=0
	[ "${CR_DETECT_LEAKS:-0}" = 1 ] && leaks=1
	check_env=(
		"ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=$leaks"
		"UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
		# An instrumented crtool is slower: room for tests/cr/run.sh's timeouts.
		"CR_TIMEOUT_SCALE=${CR_TIMEOUT_SCALE:-3}"
	)
}

# `make check` runs in a cgroup of its own (where cgroup2 is mounted): the
# tests start trees in process groups and sessions of their own, and crtool
# restores more, so neither a process group kill nor a parent's death
# reaches them all. A timeout kills the whole cgroup, and whatever is still
# in it when `make check` ends was started by it and is killed too, so that
# it cannot disturb the next run.
cgroup_new() {
	local root
	root=$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n 1)
	[ -n "$root" ] || return 0
	cgroup=$root/crtest.$$.$1
	mkdir "$cgroup" 2>/dev/null || { warn "cannot create cgroup $cgroup"; cgroup=; }
}

cgroup_kill() {
	local pid
	if [ -e "$cgroup/cgroup.kill" ]; then
		echo 1 >"$cgroup/cgroup.kill"
	else # before Linux 5.14; a fork may race with us, hence the retries
		for _ in 1 2 3; do
			while read -r pid; do
				kill -KILL "$pid" 2>/dev/null
			done <"$cgroup/cgroup.procs"
		done
	fi
	for _ in $(seq 50); do
		[ -n "$(cat "$cgroup/cgroup.procs")" ] || return 0
		sleep 0.1
	done
	warn "processes of cgroup $cgroup survive SIGKILL"
}

cgroup_end() {
	local pids
	[ -n "$cgroup" ] && [ -d "$cgroup" ] || return 0
	pids=$(paste -sd, "$cgroup/cgroup.procs")
	if [ -n "$pids" ]; then
		warn "killing what make check left running:"
		ps -o pid,args -p "$pids" >&2 || true
		cgroup_kill
	fi
	rmdir "$cgroup" 2>/dev/null || warn "cannot remove cgroup $cgroup"
	cgroup=
}

# Run in the background: after the timeout, note it in MARKER and kill the
# cgroup, which ends `make check` and everything it started. It waits with
# read -t on a FIFO that nobody writes: a sleep that leaves no child process
# behind when the watchdog itself is killed.
watchdog() {
	local marker=$1 fifo=$tmp/watchdog.fifo
	[ -p "$fifo" ] || mkfifo "$fifo"
	read -r -t "$check_timeout" _ <>"$fifo" && return
	echo "make check timed out after ${check_timeout}s" >"$marker"
	cgroup_kill
}

stop_watchdog() {
	[ -n "$watchdog_pid" ] || return 0
	kill "$watchdog_pid" 2>/dev/null || true
	wait "$watchdog_pid" 2>/dev/null || true
	watchdog_pid=
}

# run_check DIR LOG: `make check` in DIR, its output to stdout and LOG;
# returns its status, 124 on timeout.
run_check() {
	local dir=$1 log=$2 marker=$tmp/$1.timed-out status=0
	cgroup_new "$dir"
	if [ -z "$cgroup" ]; then
		env "${check_env[@]}" timeout -k 30 "$check_timeout" \
			make -C "$dir" -j"$check_jobs" check 2>&1 | tee "$log" || status=$?
		return $status
	fi
	watchdog "$marker" &
	watchdog_pid=$!
	# (The outer 2>/dev/null silences only bash's report of a SIGKILL.)
	# shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
	{ sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup" env "${check_env[@]}" \
		make -C "$dir" -j"$check_jobs" check 2>&1 | tee "$log"; } 2>/dev/null || status=$?
	stop_watchdog
	cgroup_end
	if [ -e "$marker" ]; then
		cat "$marker"
		return 124
	fi
	return $status
}

# build_and_check NAME [build.sh options]: NAME is the build directory.
build_and_check() {
	local dir=$1 log start status=0
	shift
	start=$SECONDS
	# Only this run's results count: not those of an earlier run, nor of
	# tests that no longer exist.
	[ ! -d "$dir" ] || find "$dir" -name '*.trs' -delete
	log="$tmp/$dir.build.out"
	if ! "$CR_SCRIPTS/build.sh" "$@" "$dir" 2>&1 | tee "$log"; then
		msg "build in $dir/ FAILED"
		fail_step "build-$dir" "$log"
		return
	fi
	log="$tmp/$dir.check.out"
	msg "make check in $dir/ (jobs: $check_jobs, timeout: ${check_timeout}s)"
	run_check "$dir" "$log" || status=$?
	if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
		echo "make check in $dir/ timed out after ${check_timeout}s" >>"$log"
		fail_step "check-$dir-timeout" "$log"
	elif [ "$status" -ne 0 ] &&
		! grep -qsrE --include='*.trs' '^:test-result: (FAIL|ERROR|XPASS)' "$dir"; then
		# make check failed before any test said so: a test program did
		# not build, or the harness itself broke.
		fail_step "check-$dir" "$log"
	fi
	msg "$dir/ done in $((SECONDS - start))s (make check status $status)"
}

"$CR_SCRIPTS/install-deps.sh"
export CR_DEPS_CHECKED=1 # build.sh need not check again
cd "$CR_SRCDIR"
build_and_check build
sanitizer_env
build_and_check build-asan --sanitizers
msg "finished in ${SECONDS}s"
# Last, so that its closing line is the last line of the run.
"$CR_SCRIPTS/summarize-tests.sh" build build-asan "$synthetic"
