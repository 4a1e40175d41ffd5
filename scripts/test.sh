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
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
synthetic=$tmp/steps
mkdir "$synthetic"

fail_step() {
	local name=$1 log=$2
	echo ":test-result: FAIL" >"$synthetic/$name.trs"
	cp "$log" "$synthetic/$name.log"
}

# Leaks are off by default: LeakSanitizer stops the world with ptrace, which
# fails in the tasks crtool itself holds under ptrace while it restores them.
# The fuzzer still checks the image reader for leaks.
sanitizer_env() {
	local leaks=0
	[ "${CR_DETECT_LEAKS:-0}" = 1 ] && leaks=1
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=$leaks"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
	# An instrumented crtool is slower: give tests/cr/run.sh's timeouts room.
	export CR_TIMEOUT_SCALE=${CR_TIMEOUT_SCALE:-3}
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
	timeout -k 30 "$check_timeout" make -C "$dir" -j"$check_jobs" check 2>&1 |
		tee "$log" || status=$?
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
(
	sanitizer_env
	build_and_check build-asan --sanitizers
)
msg "finished in ${SECONDS}s"
# Last, so that its closing line is the last line of the run.
"$CR_SCRIPTS/summarize-tests.sh" build build-asan "$synthetic"
