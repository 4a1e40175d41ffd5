#!/bin/bash
# Dump/restore speed of crtool against the machine's own write floor.
#
#   bench/run.sh [SIZE_MIB...]        (default: 1024 4096; needs root)
#
# For each size: time `dd ... conv=fdatasync` writing the same bytes to the
# image file system (the floor), start bench/memhog holding that much written
# anonymous memory, time `crtool dump`, time `crtool restore --detach`, and
# have the restored memhog verify every word. One JSON line per measurement
# goes to stdout; progress goes to stderr. bench/README.md explains the fields.
#
# Environment:
#   CRTOOL         crtool binary (default: ./crtool, else ./build/crtool)
#   MEMHOG         memhog binary (default: ./bench/memhog, else ./build/bench/memhog)
#   BENCH_DIR      where images and the floor file are written (default:
#                  /var/tmp); a private directory is made inside and removed
#   BENCH_KEEP=1   keep the work directory (images, logs) for a post-mortem
#   BENCH_STATS    1/0: pass or not `--stats` to crtool dump (default: pass it
#                  when `crtool dump --help` mentions it)
#   BENCH_REPEAT   runs per size (default: 3); with more than one, a last
#                  pair of lines per size has "run":"median"
#   BENCH_TIMEOUT  seconds allowed to each step (default: 600)
set -euo pipefail
# EPOCHREALTIME and awk follow the locale's decimal separator.
export LC_ALL=C

readonly prog=bench
# CRIU 4.2 on this machine class for 1 GiB, from issue 2 (bench/README.md).
readonly CRIU_REF_MIB=1024
readonly CRIU_DUMP_SYNC_S=(1.5 2.0)
readonly CRIU_RESTORE_S=(0.6 0.9)
# The goals of issue 2.
readonly GOAL_FLOOR_RATIO=1.2 GOAL_CRIU_DUMP_RATIO=0.8 GOAL_RESTORE_SPEEDUP=2
# Kept free beyond the measured bytes: page tables, crtool's buffers, images'
# metadata, and the rest of the system.
readonly MEM_MARGIN_MIB=512 DISK_MARGIN_MIB=256

step_timeout=${BENCH_TIMEOUT:-600}
repeat=${BENCH_REPEAT:-3}
work='' shm='' hog_pid='' restored_pid=''

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf 'Error: %s: %s\n' "$prog" "$*" >&2
	exit 1
}

# ---- process and file cleanup ----------------------------------------------

# The restored memhog is not our child, and its PID could in principle be
# reused once it is gone: kill it only while the PID still names a memhog.
kill_if_memhog() {
	local pid=$1 comm
	[ -n "$pid" ] || return 0
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
	[ "$comm" = memhog ] && kill -KILL "$pid" 2>/dev/null
	return 0
}

# Appends to array desc the PIDs below PID (needs CONFIG_PROC_CHILDREN).
descendants() {
	local kid
	local -a kids=()
	read -ra kids 2>/dev/null <"/proc/$1/task/$1/children" || true
	for kid in "${kids[@]}"; do
		desc+=("$kid")
		descendants "$kid"
	done
}

# An interrupted run leaves steps behind: timeout(1) puts its command in a
# process group of its own, out of reach of the terminal's ^C.
kill_descendants() {
	local -a desc=()
	descendants "$$"
	[ ${#desc[@]} = 0 ] || kill -TERM "${desc[@]}" 2>/dev/null || true
}

cleanup() {
	kill_memhog
	kill_descendants
	kill_if_memhog "$restored_pid"
	[ -n "$shm" ] && rm -rf "$shm"
	if [ -n "$work" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then
			log "kept $work"
		else
			rm -rf "$work"
		fi
	fi
}

# ---- JSON output -----------------------------------------------------------

# A JSON string from arbitrary text (an error line from crtool).
jstr() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=$(printf '%s' "$s" | tr -d '\000-\037')
	printf '"%s"' "$s"
}

# emit KEY VALUE...: one JSON object per line; VALUEs are JSON already.
emit() {
	local line='' sep=''
	while [ $# -ge 2 ]; do
		line+="$sep\"$1\":$2"
		sep=,
		shift 2
	done
	printf '{%s}\n' "$line"
}

emit_skipped() {
	local size=$1 reason=$2 bench
	for bench in floor dump restore; do
		emit bench "\"$bench\"" size_mib "$size" skipped "$(jstr "$reason")"
	done
}

# ---- arithmetic (bash has integers only) -----------------------------------

# awk_vars NAME=VALUE...: the awk options defining them, in array "vars";
# fails when a value is null or empty, so results built on it become null.
awk_vars() {
	local arg
	vars=()
	for arg in "$@"; do
		case $arg in
		*=null | *=) return 1 ;;
		esac
		vars+=(-v "$arg")
	done
}

# calc EXPR NAME=VALUE...: EXPR evaluated by awk over the values, with 3
# decimals; "null" when a value is null or EXPR divides by zero.
calc() {
	local expr=$1
	local -a vars
	shift
	awk_vars "$@" || { echo null && return 0; }
	awk "${vars[@]}" "BEGIN { printf \"%.3f\\n\", ($expr) }" 2>/dev/null || echo null
}

# is_true EXPR NAME=VALUE...: true or false; false when a value is null.
is_true() {
	local expr=$1
	local -a vars
	shift
	awk_vars "$@" || { echo false && return 0; }
	awk "${vars[@]}" "BEGIN { print (($expr) ? \"true\" : \"false\") }"
}

gbps() { calc 'b / s / 1e9' b=$(($1 * 1048576)) s="$2"; }
bool01() { if [ "$1" = true ]; then echo 1; else echo 0; fi; }

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

# step COMMAND...: runs it in the background and waits, because bash runs
# a trap only once the foreground command has finished, and a step may take
# BENCH_TIMEOUT seconds; `wait` returns at once on a signal.
step() {
	"$@" &
	wait "$!"
}

now() { printf '%s\n' "$EPOCHREALTIME"; }

# ---- resources -------------------------------------------------------------

mib_free_on() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1024) }'; }

# MemAvailable, lowered to the headroom of the tightest cgroup v2 memory.max
# on the way up from ours: a container's limit bites before the host's.
mem_avail_mib() {
	local avail cg limit used
	avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	cg=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null || true)
	while [ -n "$cg" ]; do
		if limit=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null) && [ "$limit" != max ] &&
			used=$(cat "/sys/fs/cgroup$cg/memory.current" 2>/dev/null); then
			limit=$(((limit - used) / 1048576))
			[ "$limit" -lt "$avail" ] && avail=$limit
		fi
		[ "$cg" = / ] && break
		cg=$(dirname "$cg")
	done
	echo "$avail"
}

# The reason SIZE does not fit, or nothing. Floor file and image never
# coexist, nor do the dumped and the restored memhog; but an image on tmpfs
# is memory too, next to the restored memhog.
size_does_not_fit() {
	local size=$1 disk mem need_disk=$(($1 + $1 / 16 + DISK_MARGIN_MIB)) need_mem=$(($1 + MEM_MARGIN_MIB))
	[ "$(stat -f -c %T "$work")" != tmpfs ] || need_mem=$((need_mem + need_disk))
	disk=$(mib_free_on "$work")
	mem=$(mem_avail_mib)
	if [ "$disk" -lt "$need_disk" ]; then
		echo "needs $need_disk MiB free in $work, has $disk"
	elif [ "$mem" -lt "$need_mem" ]; then
		echo "needs $need_mem MiB of available memory, has $mem"
	fi
}

# ---- the floor: the same bytes written and fdatasynced by dd ---------------

# tmpfs when the source fits next to the memory reserve, else a pipe from
# memhog --emit (which then runs concurrently with the writes).
floor_source() {
	local size=$1
	if [ -n "$shm" ] && [ "$(mib_free_on "$shm")" -ge $((size + MEM_MARGIN_MIB)) ] &&
		[ "$(mem_avail_mib)" -ge $((2 * size + MEM_MARGIN_MIB)) ]; then
		echo tmpfs
	else
		echo pipe
	fi
}

# Prints the seconds dd took, or fails.
time_floor_write() {
	local size=$1 source=$2 src=$shm/source dst=$work/floor t0 t1 rc=0
	if [ "$source" = tmpfs ]; then
		"$memhog" --emit "$size" >"$src" || { rm -f "$src" && return 1; }
		t0=$(now)
		timeout "$step_timeout" dd if="$src" of="$dst" bs=64M conv=fdatasync 2>"$work/dd.err" || rc=$?
		t1=$(now)
	else
		t0=$(now)
		timeout "$step_timeout" "$memhog" --emit "$size" |
			timeout "$step_timeout" dd of="$dst" bs=64M iflag=fullblock conv=fdatasync 2>"$work/dd.err" || rc=$?
		t1=$(now)
	fi
	rm -f "$src" "$dst"
	[ "$rc" = 0 ] || { log "dd failed ($rc): $(tail -n 1 "$work/dd.err")" && return 1; }
	elapsed "$t0" "$t1"
}

# Sets floor_s.
bench_floor() {
	local size=$1 source secs
	source=$(floor_source "$size")
	log "$size MiB, run $run: floor (dd from $source, fdatasync)"
	if step time_floor_write "$size" "$source" >"$work/floor.s" && read -r secs <"$work/floor.s"; then
		emit bench '"floor"' size_mib "$size" run "$run" wall_s "$secs" \
			gbps "$(gbps "$size" "$secs")" source "\"$source\""
		floor_s=$secs
	else
		emit bench '"floor"' size_mib "$size" run "$run" error '"dd failed"'
	fi
}

# ---- processes -------------------------------------------------------------

# True while PID exists and is not a zombie (the restored memhog is not our
# child: when it dies, whoever adopted it may be slow to reap it).
pid_running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	case ${stat%% *} in
	Z | X) return 1 ;;
	esac
}

# wait_for_file FILE PID: until FILE exists; fails when PID dies first or
# after BENCH_TIMEOUT seconds. Checks FILE last: PID writes it, then exits.
wait_for_file() {
	local file=$1 pid=$2 deadline=$((SECONDS + step_timeout))
	while [ ! -e "$file" ]; do
		if ! pid_running "$pid" || [ "$SECONDS" -ge "$deadline" ]; then
			[ -e "$file" ]
			return
		fi
		sleep 0.01
	done
}

wait_for_exit() {
	local pid=$1 deadline=$((SECONDS + step_timeout))
	while pid_running "$pid"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.01
	done
}

# Starts memhog in its own session (in a non-interactive shell the child is
# no group leader, so setsid(1) execs without forking and $! is memhog).
# Sets hog_pid and ready_sum.
start_memhog() {
	local size=$1 out=$2 ready_pid
	setsid "$memhog" "$size" "$out" </dev/null >"$out.log" 2>&1 &
	hog_pid=$!
	if ! wait_for_file "$out.ready" "$hog_pid"; then
		log "memhog $size did not become ready: $(tail -n 1 "$out.log")"
		return 1
	fi
	read -r ready_pid ready_sum <"$out.ready"
	if [ "$ready_pid" != "$hog_pid" ]; then
		log "memhog reports pid $ready_pid, expected $hog_pid"
		return 1
	fi
}

# Reaps the dumped memhog, so its PID is free for the restore. Prints how it
# ended; fails when the dump left it running.
reap_memhog() {
	local status=0
	if ! wait_for_exit "$hog_pid"; then
		log "crtool dump succeeded but pid $hog_pid still runs"
		return 1
	fi
	wait "$hog_pid" || status=$?
	hog_pid=''
	echo "$status"
}

kill_memhog() {
	[ -n "$hog_pid" ] || return 0
	{
		kill -KILL "$hog_pid" || true
		wait "$hog_pid" || true
	} 2>/dev/null
	hog_pid=''
}

first_error() {
	local line
	line=$(grep -m 1 '^Error: ' "$1" 2>/dev/null) || line=$(tail -n 1 "$1" 2>/dev/null) || true
	jstr "${line:-no message}"
}

# ---- dump and restore ------------------------------------------------------

# Sets dump_s; fails with 1 when crtool failed, 2 when the task survived.
timed_dump() {
	local dir=$1 pid=$2 t0 t1
	t0=$(now)
	step timeout "$step_timeout" "$crtool" dump -t "$pid" -D "$dir/img" "${stats_opt[@]}" \
		>"$dir/dump.out" 2>"$dir/dump.err" || return 1
	t1=$(now)
	dump_s=$(elapsed "$t0" "$t1")
	reap_memhog >/dev/null || return 2
}

# Sets dump_s, frozen_s and image_bytes; fails after emitting the error.
run_dump() {
	local size=$1 dir=$2 pid=$3 rc=0 frozen_ms
	sync -f "$dir"
	# stderr: bash reports the memhog killed by the dump ("Killed") when it
	# notices; that is expected, keep it in the log.
	timed_dump "$dir" "$pid" 2>>"$dir/shell.err" || rc=$?
	if [ "$rc" != 0 ]; then
		dump_s=null
		kill_memhog
		if [ "$rc" = 2 ]; then
			emit_error dump "$size" '"crtool dump succeeded but the task still runs"'
		else
			emit_error dump "$size" "$(first_error "$dir/dump.err")"
		fi
		return 1
	fi
	frozen_ms=$(sed -n 's/.*stats:.* frozen_ms=\([0-9.]*\).*/\1/p' "$dir/dump.err" | tail -n 1)
	frozen_s=$(calc 'ms / 1000' ms="$frozen_ms")
	image_bytes=$(du -s --block-size=1 "$dir/img" | cut -f 1)
}

# Sets restore_s and restored_pid.
run_restore() {
	local dir=$2 pid=$3 t0 t1 rc=0
	t0=$(now)
	# Its stdout is not ours: the JSON lines go there.
	step timeout "$step_timeout" "$crtool" restore -D "$dir/img" --detach --pidfile "$dir/restore.pid" \
		>"$dir/restore.out" 2>"$dir/restore.err" || rc=$?
	t1=$(now)
	restored_pid=$(cat "$dir/restore.pid" 2>/dev/null) || restored_pid=$pid
	[ "$rc" = 0 ] || return 1
	restore_s=$(elapsed "$t0" "$t1")
}

# SIGTERM to the restored memhog; true when it verified all its memory and
# holds the checksum it had before the dump.
verify_restored() {
	local out=$1 pid=$2 word sum
	[ "$restored_pid" = "$pid" ] || { log "restored pid $restored_pid, dumped $pid" && return 1; }
	kill -TERM "$pid"
	wait_for_file "$out" "$pid" || { log "restored memhog wrote no verdict" && return 1; }
	wait_for_exit "$pid" || log "restored memhog $pid did not exit"
	restored_pid=''
	read -r word sum <"$out"
	[ "$word" = PASS ] && [ "$sum" = "$ready_sum" ] && return 0
	log "restored memhog: $(cat "$out")"
	return 1
}

# CRIU's 1 GiB figures scaled linearly to SIZE, as a JSON array.
criu_ref() {
	local size=$1
	shift
	awk -v s="$size" -v r="$CRIU_REF_MIB" -v lo="$1" -v hi="$2" \
		'BEGIN { printf "[%.3f,%.3f]\n", lo * s / r, hi * s / r }'
}

# The results below read floor_s, dump_s, frozen_s, image_bytes, restore_s,
# verified and run from their caller (bench_size), which owns them.

emit_dump() {
	local size=$1 lo
	lo=$(calc "v * $size / $CRIU_REF_MIB" v="${CRIU_DUMP_SYNC_S[0]}")
	emit bench '"dump"' size_mib "$size" run "$run" wall_s "$dump_s" \
		gbps "$(gbps "$size" "$dump_s")" frozen_s "$frozen_s" image_bytes "$image_bytes" \
		floor_s "$floor_s" ratio_to_floor "$(calc 'd / f' d="$dump_s" f="$floor_s")" \
		criu_ref_dump_sync_s "$(criu_ref "$size" "${CRIU_DUMP_SYNC_S[@]}")" \
		ratio_to_criu_ref "$(calc 'd / c' d="$dump_s" c="$lo")" verified "$verified" \
		goal_met "$(is_true "v && d <= $GOAL_FLOOR_RATIO * f && d <= $GOAL_CRIU_DUMP_RATIO * c" \
			v="$(bool01 "$verified")" d="$dump_s" f="$floor_s" c="$lo")"
}

emit_restore() {
	local size=$1 lo speedup
	lo=$(calc "v * $size / $CRIU_REF_MIB" v="${CRIU_RESTORE_S[0]}")
	speedup=$(calc 'c / r' c="$lo" r="$restore_s")
	emit bench '"restore"' size_mib "$size" run "$run" wall_s "$restore_s" \
		gbps "$(gbps "$size" "$restore_s")" criu_ref_s "$(criu_ref "$size" "${CRIU_RESTORE_S[@]}")" \
		speedup_vs_criu_ref "$speedup" verified "$verified" \
		goal_met "$(is_true "v && x >= $GOAL_RESTORE_SPEEDUP" v="$(bool01 "$verified")" x="$speedup")"
}

emit_error() { emit bench "\"$1\"" size_mib "$2" run "$run" error "$3"; }

# One run: memhog, dump, restore, verify. Sets dump_s, frozen_s,
# image_bytes, restore_s and verified for what it got through.
bench_dump_restore() {
	local size=$1
	local dir=$work/run-$size-$run pid ready_sum
	if [ -z "$crtool" ]; then
		emit_error dump "$size" '"crtool not found (set CRTOOL)"'
		return
	fi
	mkdir "$dir"
	log "$size MiB, run $run: memhog"
	if start_memhog "$size" "$dir/out"; then
		pid=$hog_pid
		log "$size MiB, run $run: crtool dump -t $pid"
		run_dump "$size" "$dir" "$pid" && dump_restore_verify "$size" "$dir" "$pid"
	else
		kill_memhog
		emit_error dump "$size" '"memhog did not start"'
	fi
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$dir"
}

# After a successful dump: the restore, the verdict, and both lines (the
# dump is only verified by what comes back).
dump_restore_verify() {
	local size=$1 dir=$2 pid=$3
	log "$size MiB, run $run: crtool restore"
	if run_restore "$size" "$dir" "$pid"; then
		verify_restored "$dir/out" "$pid" && verified=true
		emit_dump "$size"
		emit_restore "$size"
	else
		emit_dump "$size"
		emit_error restore "$size" "$(first_error "$dir/restore.err")"
	fi
	kill_if_memhog "$restored_pid"
	restored_pid=''
}

# median VALUE...: of the non-null values; null when there is none.
median() {
	printf '%s\n' "$@" | awk '$1 != "null"' | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) print "null"
			else if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]
			else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Disks behind a VM vary from one write to the next (2x to 3x seen here):
# with several runs, the median lines are the figures to quote.
bench_size() {
	local size=$1 run floor_s dump_s frozen_s image_bytes restore_s verified
	local -a floors=() dumps=() frozens=() restores=()
	local all_verified=true
	for ((run = 1; run <= repeat; run++)); do
		floor_s=null dump_s=null frozen_s=null image_bytes=null restore_s=null verified=false
		bench_floor "$size"
		bench_dump_restore "$size"
		floors+=("$floor_s") dumps+=("$dump_s") frozens+=("$frozen_s") restores+=("$restore_s")
		[ "$verified" = true ] || all_verified=false
	done
	[ "$repeat" -gt 1 ] && [ -n "$crtool" ] || return 0
	run='"median"' verified=$all_verified
	floor_s=$(median "${floors[@]}") dump_s=$(median "${dumps[@]}")
	frozen_s=$(median "${frozens[@]}") restore_s=$(median "${restores[@]}")
	[ "$dump_s" = null ] || emit_dump "$size"
	[ "$restore_s" = null ] || emit_restore "$size"
}

# ---- main ------------------------------------------------------------------

# first_executable PATH...: the first one that is an executable file.
first_executable() {
	local path
	for path in "$@"; do
		[ -f "$path" ] && [ -x "$path" ] && { realpath "$path" && return 0; }
	done
	return 1
}

find_tools() {
	local top
	top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	memhog=$(first_executable ${MEMHOG:+"$MEMHOG"} "$PWD/bench/memhog" "$PWD/build/bench/memhog" \
		"$top/bench/memhog" "$top/build/bench/memhog") ||
		die "memhog not found: build it (make bench/memhog) or set MEMHOG"
	crtool=$(first_executable ${CRTOOL:+"$CRTOOL"} "$PWD/crtool" "$PWD/build/crtool" \
		"$top/crtool" "$top/build/crtool") || {
		crtool=
		log "crtool not found (set CRTOOL): measuring the floor only"
	}
	stats_opt=()
	[ -n "$crtool" ] || return 0
	case ${BENCH_STATS:-auto} in
	1) stats_opt=(--stats) ;;
	0) ;;
	*) [[ $("$crtool" dump --help 2>&1 || true) == *--stats* ]] && stats_opt=(--stats) ;;
	esac
	return 0
}

make_dirs() {
	local base=${BENCH_DIR:-/var/tmp}
	[ -d "$base" ] || die "BENCH_DIR '$base' is not a directory"
	work=$(mktemp -d "$base/crlaunch-bench.XXXXXX") || die "can't create a directory in '$base'"
	shm=$(mktemp -d /dev/shm/crlaunch-bench.XXXXXX 2>/dev/null) || shm=
}

main() {
	local size reason
	local -a sizes=("$@")
	[ $# -gt 0 ] || sizes=(1024 4096)
	for size in "${sizes[@]}"; do
		[[ $size =~ ^[1-9][0-9]*$ ]] || die "size '$size' is not a positive number of MiB"
	done
	[[ $repeat =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT '$repeat' is not a positive number"
	[[ $step_timeout =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT '$step_timeout' is not a positive number"
	[ "$(id -u)" = 0 ] || log "warning: not root; crtool will likely be refused ptrace"
	find_tools
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	make_dirs
	log "work directory $work (disk: $(mib_free_on "$work") MiB free)"
	for size in "${sizes[@]}"; do
		reason=$(size_does_not_fit "$size")
		if [ -n "$reason" ]; then
			log "$size MiB: skipped: $reason"
			emit_skipped "$size" "$reason"
			continue
		fi
		bench_size "$size"
	done
}

main "$@"
