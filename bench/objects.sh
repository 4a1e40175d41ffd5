#!/bin/bash
# Dump/restore cost per object: descriptors and mappings (bench/README.md).
#
#   bench/objects.sh                 (needs root)
#
# Runs bench/fdmaps with several object counts, each dumped and restored in
# this run: "small" (10 descriptors, 10 mappings), "medium" (1,000 and 500),
# "large" (10,000 and 5,000), "fds" (10,000 and 10) and "maps" (10 and
# 5,000). One JSON line per case, then one "objects_compare" line with the
# cost of one descriptor and of one mapping (from "fds" and "maps" against
# "small") and the ratio of the per-object cost of "large" to that of
# "medium": about 1 when the cost grows linearly, about 10 when it grows
# with the square of the count.
#
# Environment: CRTOOL, FDMAPS (the binaries; defaults ./crtool and
# ./bench/fdmaps, else under ./build), BENCH_DIR (default /var/tmp),
# BENCH_REPEAT (runs per case, median taken; default 3), BENCH_TIMEOUT
# (seconds per step, default 300), BENCH_KEEP=1 (keep the work directory).
set -euo pipefail
export LC_ALL=C

readonly prog=bench-objects
step_timeout=${BENCH_TIMEOUT:-300}
repeat=${BENCH_REPEAT:-3}
work='' subject=''

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf 'Error: %s: %s\n' "$prog" "$*" >&2
	exit 1
}

pick() {
	local var=$1 f
	shift
	for f in "$@"; do
		[ -x "$f" ] && { printf '%s\n' "$f"; return 0; }
	done
	die "no $var binary (tried $*; set $var)"
}

CRTOOL=${CRTOOL:-$(pick CRTOOL ./crtool ./build/crtool)}
FDMAPS=${FDMAPS:-$(pick FDMAPS ./bench/fdmaps ./build/bench/fdmaps)}
[ "$(id -u)" = 0 ] || die "needs root (crtool ptraces and restores pids)"

# The subject is killed by pid only while the pid still names an fdmaps.
kill_subject() {
	local comm
	[ -n "$subject" ] || return 0
	comm=$(cat "/proc/$subject/comm" 2>/dev/null) || { subject=; return 0; }
	[ "$comm" = fdmaps ] && kill -KILL "$subject" 2>/dev/null
	subject=
	return 0
}

cleanup() {
	kill_subject
	wait 2>/dev/null || true
	if [ -n "$work" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

now() { printf '%s\n' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
calc() { awk "BEGIN { printf \"%.3f\\n\", ($1) }" 2>/dev/null || echo null; }

# Waits up to step_timeout for FILE to be non-empty.
wait_file() {
	local i
	for ((i = 0; i < step_timeout * 20; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

wait_gone() {
	local i
	for ((i = 0; i < step_timeout * 20; i++)); do
		[ -d "/proc/$1" ] || return 0
		sleep 0.05
	done
	return 1
}

# One dump and restore of fdmaps NFDS NMAPS; sets dump_s and restore_s.
one_run() {
	local nfds=$1 nmaps=$2 dir out t0 t1 pid reaper
	dir=$work/images out=$work/out
	rm -rf "$dir" "$out" "$out.ready" "$out.data"
	# A subshell in between reaps fdmaps once the dump has killed it (bash
	# would report a job killed by a signal); fdmaps names its own pid.
	(cd "$work" && setsid "$FDMAPS" "$nfds" "$nmaps" "$out" </dev/null >>"$work/fdmaps.log" 2>&1 || true) &
	reaper=$!
	wait_file "$out.ready" || die "fdmaps $nfds $nmaps not ready (see $work/fdmaps.log)"
	pid=$(cat "$out.ready")
	subject=$pid
	t0=$(now)
	timeout "$step_timeout" "$CRTOOL" dump -t "$pid" -D "$dir" 2>"$work/dump.err" ||
		die "dump of fdmaps $nfds $nmaps failed: $(head -n 1 "$work/dump.err")"
	t1=$(now)
	dump_s=$(elapsed "$t0" "$t1")
	wait "$reaper" 2>/dev/null || true
	subject=
	t0=$(now)
	timeout "$step_timeout" "$CRTOOL" restore -D "$dir" --detach --pidfile "$work/pid" 2>"$work/restore.err" ||
		die "restore of fdmaps $nfds $nmaps failed: $(head -n 1 "$work/restore.err")"
	t1=$(now)
	restore_s=$(elapsed "$t0" "$t1")
	subject=$(cat "$work/pid")
	[ "$subject" = "$pid" ] || die "restored pid $subject, dumped $pid"
	kill -TERM "$subject"
	wait_file "$out" || die "the restored fdmaps gave no verdict"
	case $(head -n 1 "$out") in
	PASS*) ;;
	*) die "the restored fdmaps $nfds $nmaps failed its check: $(head -n 1 "$out")" ;;
	esac
	wait_gone "$subject" || die "the restored fdmaps $subject did not exit"
	subject=
}

declare -A D R N
run_case() {
	local name=$1 nfds=$2 nmaps=$3 ds=() rs=() i
	for ((i = 1; i <= repeat; i++)); do
		log "$name: $nfds descriptors, $nmaps mappings, run $i/$repeat"
		one_run "$nfds" "$nmaps"
		ds+=("$dump_s")
		rs+=("$restore_s")
	done
	D[$name]=$(echo "${ds[*]}" | median)
	R[$name]=$(echo "${rs[*]}" | median)
	N[$name]=$((nfds + nmaps))
	printf '{"bench":"objects","case":"%s","fds":%d,"maps":%d,"objects":%d,"runs":%d,"dump_s":%s,"restore_s":%s,"dump_us_per_object":%s,"restore_us_per_object":%s}\n' \
		"$name" "$nfds" "$nmaps" "${N[$name]}" "$repeat" "${D[$name]}" "${R[$name]}" \
		"$(calc "${D[$name]} / ${N[$name]} * 1e6")" "$(calc "${R[$name]} / ${N[$name]} * 1e6")"
}

# A over B, or null when B is not positive (noise made "medium" cheaper than "small").
ratio() { awk "BEGIN { b = ($2); if (b > 0) printf \"%.3f\\n\", ($1) / b; else print \"null\" }"; }

# Marginal cost of one object of case $1 over "small", in microseconds.
marginal() { calc "($2 - $3) / (${N[$1]} - ${N[small]}) * 1e6"; }

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bench-objects.XXXXXX")
run_case small 10 10
run_case medium 1000 500
run_case large 10000 5000
run_case fds 10000 10
run_case maps 10 5000
printf '{"bench":"objects_compare","dump_us_per_fd":%s,"dump_us_per_map":%s,"restore_us_per_fd":%s,"restore_us_per_map":%s,"dump_cost_ratio_large_to_medium":%s,"restore_cost_ratio_large_to_medium":%s}\n' \
	"$(marginal fds "${D[fds]}" "${D[small]}")" "$(marginal maps "${D[maps]}" "${D[small]}")" \
	"$(marginal fds "${R[fds]}" "${R[small]}")" "$(marginal maps "${R[maps]}" "${R[small]}")" \
	"$(ratio "(${D[large]} - ${D[small]}) / (${N[large]} - ${N[small]})" "(${D[medium]} - ${D[small]}) / (${N[medium]} - ${N[small]})")" \
	"$(ratio "(${R[large]} - ${R[small]}) / (${N[large]} - ${N[small]})" "(${R[medium]} - ${R[small]}) / (${N[medium]} - ${N[small]})")"
