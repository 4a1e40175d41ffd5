#!/bin/bash
# Summarise automake test results: every *.trs file under the directories
# given. Prints the log of each failed test, then the failures, then one
# closing line "N passed, N failed, N skipped". Exits 1 when a test failed or
# when no test ran at all, 0 otherwise.
#   scripts/summarize-tests.sh DIR...
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# A failing log can be long: CI readers want its end, where the error is.
log_lines=${CR_LOG_LINES:-200}
passed=0 failed=0 skipped=0
failures=()

print_log() {
	local log=$1 n
	if [ ! -f "$log" ]; then
		echo "(no log file $log)"
		return
	fi
	n=$(wc -l <"$log")
	[ "$n" -le "$log_lines" ] || echo "(last $log_lines of $n lines)"
	tail -n "$log_lines" "$log"
}

# Count one .trs file; a TAP test has one :test-result: line per test point.
count_trs() {
	local trs=$1 name=$2 result bad=0
	while read -r _ result _; do
		case $result in
		PASS | XFAIL) passed=$((passed + 1)) ;;
		SKIP) skipped=$((skipped + 1)) ;;
		FAIL | ERROR | XPASS) failed=$((failed + 1)); bad=1 ;;
		*) failed=$((failed + 1)); bad=1; warn "$trs: unknown result '$result'" ;;
		esac
	done < <(grep '^:test-result:' "$trs" || true)
	[ $bad -eq 0 ] && return
	failures+=("$name")
	echo "======== FAIL: $name"
	print_log "${trs%.trs}.log"
	echo "======== end of $name"
}

[ $# -gt 0 ] || die "usage: scripts/summarize-tests.sh DIR..."
for dir in "$@"; do
	[ "$dir" = / ] || dir=${dir%/}
	[ -d "$dir" ] || { warn "no directory $dir"; continue; }
	while IFS= read -r -d '' trs; do
		rel=${trs#"$dir"/}
		count_trs "$trs" "${dir##*/}/${rel%.trs}"
	done < <(find "$dir" -name '*.trs' -print0 | sort -z)
done

if [ ${#failures[@]} -gt 0 ]; then
	echo "failed tests:"
	printf '  %s\n' "${failures[@]}"
fi
total=$((passed + failed + skipped))
[ $total -gt 0 ] || warn "no test result found under: $*"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
