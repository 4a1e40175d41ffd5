#!/bin/bash
# The engine alone, end to end: build crtool, start a long computation
# (tests/demo/demo), checkpoint it with `crtool dump` (which kills it), bring
# it back with `crtool restore`, let it finish, and check that its answer and
# its whole output equal those of an uninterrupted run. Needs root.
#
#   scripts/demo-crtool.sh [--keep] [--dump-at-step N] [-- DEMO_OPTIONS...]
#     --keep            keep the work directory (images, outputs) afterwards
#     --dump-at-step N  checkpoint once the demo has printed step N (default 10)
#     DEMO_OPTIONS      passed to both demo runs (see tests/demo/demo --help)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

builddir=build
crtool_timeout=120
keep=no
dump_at=10
demo_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--keep) keep=yes ;;
	--dump-at-step)
		[ $# -ge 2 ] || die "--dump-at-step needs a step number"
		dump_at=$2
		shift
		;;
	--) shift; demo_args=("$@"); break ;;
	-h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (try --help)" ;;
	esac
	shift
done
[[ $dump_at =~ ^[1-9][0-9]*$ ]] || die "--dump-at-step wants a positive integer, got '$dump_at'"
[ "$(id -u)" -eq 0 ] || die "run me as root: dump and restore need ptrace and PID control"

# --- processes we started, and only those, are cleaned up, by pid --------
demo_pid=     # the first run, our child
restored_pid= # the restored run, no longer our child
workdir=

# Kill PID only while it still runs our demo binary: a pid can be reused.
kill_demo() {
	local pid=$1 exe
	[ -n "$pid" ] || return 0
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 0
	[ "$exe" = "$demo" ] || return 0
	kill -KILL "$pid" 2>/dev/null || true
}

# A failed run keeps its work directory for a look at the images and outputs.
cleanup() {
	local status=$?
	if [ -n "$demo_pid" ]; then
		kill_demo "$demo_pid"
		{ wait "$demo_pid"; } 2>/dev/null || true # our child: reap it
	fi
	kill_demo "$restored_pid"
	[ "$status" -eq 0 ] || keep=yes
	if [ -n "$workdir" ] && [ $keep = no ]; then
		rm -rf "$workdir"
	elif [ -n "$workdir" ]; then
		msg "kept $workdir"
	fi
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# Prints the state letter of /proc/PID/stat (R, S, Z...); fails if PID is gone.
proc_state() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	echo "${stat%% *}"
}

is_running() {
	local s
	s=$(proc_state "$1") && [ "$s" != Z ] && [ "$s" != X ]
}

# wait_for_line FILE REGEX PID TIMEOUT: until a line of FILE matches, while
# PID runs; fails when PID ends without it or the time is up.
wait_for_line() {
	local file=$1 re=$2 pid=$3 deadline=$((SECONDS + $4))
	until grep -qE "$re" "$file" 2>/dev/null; do
		if ! is_running "$pid"; then
			# It may have printed the line just before it ended.
			grep -qE "$re" "$file" 2>/dev/null && return 0
			warn "pid $pid ended without printing /$re/ in $file"
			return 1
		fi
		if [ $SECONDS -ge "$deadline" ]; then
			warn "no line /$re/ in $file after $4s"
			return 1
		fi
		sleep 0.1
	done
}

# Run crtool, showing the command; a hung crtool must not hang the demo.
run_crtool() {
	local status=0
	printf '\n$ crtool %s\n' "$*"
	# bash reports the SIGKILL of its background job (the dump's doing, not
	# news) on its own stderr: hide that, but not what crtool says.
	{ timeout -k 5 "$crtool_timeout" "$crtool" "$@" 2>&3 3>&-; } 3>&2 2>/dev/null ||
		status=$?
	[ $status -ne 124 ] || warn "crtool $1 did not finish within ${crtool_timeout}s"
	return $status
}

last_line() { tail -n 1 "$1"; }

# Everything a run prints, minus its pid: equal for equal computations.
transcript() { grep -v '^demo: pid ' "$1"; }

# --- build --------------------------------------------------------------
"$CR_SCRIPTS/build.sh" "$builddir"
cd "$CR_SRCDIR"
crtool=$CR_SRCDIR/$builddir/crtool
demo=$CR_SRCDIR/$builddir/tests/demo/demo
make -C "$builddir" -s crtool tests/demo/demo
[ -x "$crtool" ] || die "no $crtool after the build"
[ -x "$demo" ] || die "no $demo after the build"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/crdemo.XXXXXX")
images=$workdir/images
out=$workdir/restored.out
ref=$workdir/uninterrupted.out

# --- run, checkpoint, restore ---------------------------------------------
msg "starting the demo; its output goes to $out"
# stdin from /dev/null and stdout, stderr to files: descriptors crtool can
# restore, whatever this script was started with. Job control (set -m) gives
# the demo a process group of its own, so the dumped tree holds its group.
set -m
"$demo" "${demo_args[@]}" </dev/null >"$out" 2>"$workdir/demo.err" &
demo_pid=$!
set +m
wait_for_line "$out" "^step $dump_at/" "$demo_pid" 120 ||
	die "the demo did not reach step $dump_at: $(cat "$workdir/demo.err")"
msg "pid $demo_pid is at '$(last_line "$out")'"

run_crtool dump -t "$demo_pid" -D "$images" || die "crtool dump failed"
# dump kills the tree: reap our child so that its pid is free for restore.
deadline=$((SECONDS + 10))
while is_running "$demo_pid"; do
	[ $SECONDS -lt $deadline ] || die "pid $demo_pid still runs 10s after crtool dump"
	sleep 0.1
done
{ wait "$demo_pid"; } 2>/dev/null || true
[ ! -e "/proc/$demo_pid" ] || die "pid $demo_pid still exists after being reaped"
msg "pid $demo_pid is gone; images: $(du -sh "$images" | cut -f1) in $images"
printf '\n$ ls %s\n' "$images"
ls "$images"

run_crtool restore -D "$images" --detach --pidfile "$workdir/restored.pid" ||
	die "crtool restore failed"
restored_pid=$(cat "$workdir/restored.pid")
[[ $restored_pid =~ ^[0-9]+$ ]] || die "bad pid file $workdir/restored.pid: '$restored_pid'"
[ "$restored_pid" = "$demo_pid" ] ||
	warn "restored as pid $restored_pid, but it was dumped as pid $demo_pid"
demo_pid=
msg "restored as pid $restored_pid, carrying on from '$(last_line "$out")'"
wait_for_line "$out" '^result: ' "$restored_pid" 600 ||
	die "the restored demo did not finish: $(cat "$workdir/demo.err")"
restored=$(last_line "$out")
msg "the restored demo finished: '$restored'"

# --- the same computation, uninterrupted ---------------------------------
msg "running the demo again without interruption"
"$demo" "${demo_args[@]}" </dev/null >"$ref" 2>>"$workdir/demo.err" ||
	die "the uninterrupted demo failed: $(cat "$workdir/demo.err")"
expected=$(last_line "$ref")
msg "the uninterrupted demo finished: '$expected'"

if [ "$restored" != "$expected" ]; then
	msg "FAILED: restored run says '$restored', uninterrupted run says '$expected'"
	exit 1
fi
if ! diff -u <(transcript "$ref") <(transcript "$out"); then
	msg "FAILED: same result, but the restored run's output differs (above)"
	exit 1
fi
echo "demo: restored result matches uninterrupted run: ${expected#result: }"
