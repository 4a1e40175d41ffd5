#!/bin/bash
# A tree whose stdout is a pipe read by a process outside it (as a launcher
# owns a job's output):
#  - dump without --external is refused with one line naming the pipe, and
#    the tree keeps running;
#  - dump --external 'pipe:[INO]' succeeds; restore without --inherit-fd is
#    refused and leaves no process; restore --inherit-fd N:pipe:[INO] plugs
#    the same pipe back and the output goes on in the same file with no line
#    lost or repeated.
# Environment as for run.sh: CRTOOL, CR_TESTDIR (subreaper), CR_TMPDIR.
set -u

# shellcheck source=script-prologue.sh
. "$(dirname "$0")/script-prologue.sh"

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-external.XXXXXX")
victim= reader= failed=0
fail() { echo "FAIL: $*"; failed=1; }

cleanup() {
	[ -n "$victim" ] && kill -KILL -- "-$victim" 2>/dev/null
	[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
	exec {w}>&- 2>/dev/null
	[ -n "$reader" ] && kill "$reader" 2>/dev/null
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else echo "scratch kept: $scratch"; fi
}
trap cleanup EXIT

# The reader outside the tree: cat, appending to out.
exec {w}> >(exec cat >> "$scratch/out")
reader=$!
ino=$(stat -L -c %i /proc/self/fd/$w)
id="pipe:[$ino]"

# Not a job of ours (the subreaper reaps it), so bash does not report its death.
victim=$( (setsid sh -c 'i=0; while :; do echo "$i"; i=$((i + 1)); sleep 0.02; done' \
	</dev/null >&$w 2>/dev/null {w}>&- & echo $!) )
sleep 0.5

lines() { wc -l < "$scratch/out"; }

# 1. Undeclared: refused, one line naming the pipe, tree left running.
if "$CRTOOL" dump -t "$victim" -D "$scratch/d0" 2> "$scratch/err0"; then
	fail "dump of a tree writing to an outside pipe succeeded without --external"
fi
grep -qF -- "--external '$id'" "$scratch/err0" || fail "no hint naming $id: $(cat "$scratch/err0")"
[ "$(wc -l < "$scratch/err0")" -eq 1 ] || fail "more than one error line: $(cat "$scratch/err0")"
n0=$(lines); sleep 0.3
[ -d "/proc/$victim" ] && [ "$(lines)" -gt "$n0" ] || fail "the tree stopped after a failed dump"

# 2. Declared: dumped and killed.
"$CRTOOL" dump -t "$victim" -D "$scratch/d1" --external "$id" || fail "dump --external failed"
sleep 0.2
n1=$(lines)

# 3. Restore without the pipe: refused, nothing left behind.
if "$CRTOOL" restore -D "$scratch/d1" --detach 2> "$scratch/err1"; then
	fail "restore without --inherit-fd succeeded"
fi
grep -qF -- "--inherit-fd N:$id" "$scratch/err1" || fail "no hint for --inherit-fd: $(cat "$scratch/err1")"
[ -d "/proc/$victim" ] && fail "a process $victim was left by the failed restore"

# 4. Restore with the same pipe: output goes on.
"$CRTOOL" restore -D "$scratch/d1" --detach --inherit-fd "$w:$id" || fail "restore --inherit-fd failed"
sleep 0.5
n2=$(lines)
[ "$n2" -gt "$n1" ] || fail "no output after restore ($n1 lines before, $n2 after)"
kill -KILL -- "-$victim" 2>/dev/null
exec {w}>&-
wait "$reader" 2>/dev/null
reader=
awk '$1 != NR - 1 { print "line " NR " is \"" $0 "\""; bad = 1; exit } END { exit bad }' \
	"$scratch/out" || fail "the output is not one unbroken sequence"

if [ $failed = 0 ]; then echo "PASS external ($n1 lines before restore, $n2 after)"; exit 0; fi
exit 1
