#!/bin/bash
# Faults crtool must report in one clear line, leaving nothing half done:
#  1. a full disk during dump (-D on a 1 MiB tmpfs, a tree with more memory):
#     exit non-zero, one error line naming the image file and ENOSPC, the
#     tree keeps running and still passes its verification, and no image
#     that looks complete (inventory.img) is left;
#  2. a dump of a pid that does not exist, of a kernel thread, and into a
#     -D that cannot be a directory;
#  3. restore from a directory that does not exist, with core-PID.img or
#     pagemap-PID.img missing, with a truncated and a corrupted image, and
#     with pstree.img naming a process it has no images for: each fails
#     naming the file, and leaves no process behind;
#  4. the untouched images still restore, and the tree passes.
# Environment as for run.sh: CRTOOL, CR_TESTDIR (test programs, subreaper),
# CR_TMPDIR.
set -u

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: faults.sh needs root"
	exit 77
fi
# shellcheck source=script-prologue.sh
. "$(dirname "$0")/script-prologue.sh"

prog=$CR_TESTDIR/mem_anon
scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-faults.XXXXXX")
small=$scratch/small
mounted=0 victim= failed=0
fail() { echo "FAIL: $*"; failed=1; }

cleanup() {
	# The tree's root is its session leader: the whole session goes.
	[ -n "$victim" ] && kill -KILL -- "-$victim" 2>/dev/null
	[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
	[ "$mounted" = 1 ] && umount "$small"
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else echo "scratch kept: $scratch"; fi
}
trap cleanup EXIT

[ -x "$prog" ] || { echo "FAIL: $prog is not built"; exit 1; }

# Runs crtool with its stderr in $scratch/err; returns its exit status.
crt() {
	"$CRTOOL" "$@" </dev/null >/dev/null 2>"$scratch/err"
}

# The last crtool run failed with exactly one error line matching every pattern.
expect_error() {
	local what=$1 rc=$2 p
	shift 2
	[ "$rc" != 0 ] || { fail "$what: crtool succeeded"; return; }
	[ "$(grep -c . "$scratch/err")" = 1 ] ||
		fail "$what: expected one error line, got: $(cat "$scratch/err")"
	for p in "$@"; do
		grep -qiE -- "$p" "$scratch/err" || fail "$what: no '$p' in: $(cat "$scratch/err")"
	done
	echo "ok $what: $(head -n 1 "$scratch/err")"
}

start_tree() {
	rm -f "$scratch/out" "$scratch/out.ready"
	victim=$( (cd "$scratch" && exec setsid "$prog" "$scratch/out" </dev/null \
		>>"$scratch/prog.log" 2>&1 & echo $!) )
	for _ in $(seq 300); do
		[ -s "$scratch/out.ready" ] && return 0
		sleep 0.1
	done
	fail "$prog not ready"
	exit 1
}

# SIGTERM to the tree and its verdict.
verdict() {
	local what=$1
	kill -TERM "$victim"
	for _ in $(seq 600); do
		[ -s "$scratch/out" ] && break
		sleep 0.1
	done
	case $(head -n 1 "$scratch/out" 2>/dev/null) in
	PASS*) echo "ok $what: the tree passes its verification" ;;
	*) fail "$what: verdict '$(cat "$scratch/out" 2>/dev/null)'"; cat "$scratch/prog.log" ;;
	esac
	for _ in $(seq 100); do
		[ -d "/proc/$victim" ] || break
		sleep 0.1
	done
	victim=
}

# 1. Full disk during dump.
mkdir -p "$small"
mount -t tmpfs -o size=1m tmpfs "$small" || { echo "FAIL: can't mount a tmpfs"; exit 1; }
mounted=1
start_tree
crt dump -t "$victim" -D "$small/d"
expect_error "full disk" $? "No space left on device" "$small/d/[a-z-]+[0-9]*\.img"
[ -e "$small/d/inventory.img" ] && fail "full disk: inventory.img was left in $small/d"
[ -d "/proc/$victim" ] || fail "full disk: the tree was killed"
grep -q "^State:[[:space:]]*[RS]" "/proc/$victim/status" ||
	fail "full disk: the tree is not running: $(grep State "/proc/$victim/status")"
[ -z "$(grep TracerPid "/proc/$victim/status" | grep -v '[[:space:]]0$')" ] ||
	fail "full disk: the tree is still traced"
verdict "full disk"
umount "$small" && mounted=0

# 2. Wrong pids.
nopid=$(($(cat /proc/sys/kernel/pid_max) - 1))
while [ -e "/proc/$nopid" ]; do nopid=$((nopid - 1)); done
crt dump -t "$nopid" -D "$scratch/d-nopid"
expect_error "no such pid" $? "pid $nopid" "no such process"
[ -e "$scratch/d-nopid/inventory.img" ] && fail "no such pid: inventory.img written"
crt dump -t 2 -D "$scratch/d-kthread"
expect_error "kernel thread" $? "pid 2" "kernel thread"
[ -e "$scratch/d-kthread/inventory.img" ] && fail "kernel thread: inventory.img written"

# 3. Broken image directories.
start_tree
pid=$victim
: > "$scratch/afile"
crt dump -t "$pid" -D "$scratch/afile/d"
expect_error "dump -D under a file" $? "$scratch/afile/d" "Not a directory"
[ -d "/proc/$pid" ] || fail "dump -D under a file: the tree is gone"
crt dump -t "$pid" -D "$scratch/good" || { fail "dump failed: $(cat "$scratch/err")"; exit 1; }
victim=
for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done

# restore_broken NAME EDIT PATTERN...: copy the images, EDIT them, restore must fail.
case_nr=0
restore_broken() {
	local what=$1 edit=$2 d
	shift 2
	# Directory names that match none of the patterns looked for.
	case_nr=$((case_nr + 1))
	d=$scratch/r$case_nr
	rm -rf "$d"
	cp -a "$scratch/good" "$d"
	(cd "$d" && eval "$edit")
	crt restore -D "$d" --detach --pidfile "$scratch/pidfile"
	expect_error "restore $what" $? "$@"
	[ -d "/proc/$pid" ] && { fail "restore $what: process $pid was left behind"; kill -KILL "$pid"; }
}

crt restore -D "$scratch/missing-dir" --detach
expect_error "restore missing -D" $? "$scratch/missing-dir" "No such file or directory"
restore_broken no-core "rm core-$pid.img" "core-$pid.img" "No such file"
restore_broken no-pagemap "rm pagemap-$pid.img" "pagemap-$pid.img" "No such file"
restore_broken truncated-core "truncate -s \$((\$(stat -c %s core-$pid.img) / 2)) core-$pid.img" \
	"core-$pid.img" "truncated"
restore_broken corrupt-core "printf '\\x5a\\xa5\\x5a\\xa5' | dd of=core-$pid.img bs=1 seek=40 conv=notrunc status=none" \
	"core-$pid.img" "corrupt|checksum"
restore_broken truncated-pages "f=\$(ls pages-$pid*.img | head -n 1); truncate -s 4096 \$f" \
	"pages-$pid" "truncated"
restore_broken no-inventory "rm inventory.img" "inventory.img is missing"

# 4. The untouched images still work.
crt restore -D "$scratch/good" --detach --pidfile "$scratch/pidfile" ||
	fail "restore of the good images failed: $(cat "$scratch/err")"
victim=$(cat "$scratch/pidfile" 2>/dev/null)
[ "$victim" = "$pid" ] || fail "restored root is '$victim', dumped $pid"
[ -n "$victim" ] && verdict "restore after the failed ones"

if [ $failed = 0 ]; then echo "PASS faults"; exit 0; fi
exit 1
