#!/bin/bash
# Runs C/R test programs through crtool dump and restore (see README.md).
#
#   run.sh [-n] [-k] [-c CYCLES] [-a ARGS] TEST...
#
# TEST is a program name (tree) or the path of its sidecar (tests/cr/tree.desc,
# as automake passes it). Exit status: 0 all passed, 77 all skipped, 1 else.
#
# Environment: CRTOOL (default ../../crtool from here), CR_TESTDIR (the built
# programs and subreaper; default this directory), CR_TMPDIR (scratch, default
# $TMPDIR or /tmp), CR_TIMEOUT_SCALE (multiplies every timeout).
set -u

usage() {
	cat <<EOF
usage: $0 [-n] [-k] [-c CYCLES] [-a ARGS] TEST...
  -n         no checkpoint: start, wait for readiness, SIGTERM, require PASS
  -k         keep the scratch directory of passing tests too
  -c CYCLES  dump+restore cycles before SIGTERM (default: cycles= of the sidecar, else 2)
  -a ARGS    program arguments after OUTFILE (default: args= of the sidecar)
EOF
	exit 2
}

selfdir=$(cd "$(dirname "$0")" && pwd)
CR_TESTDIR=${CR_TESTDIR:-$selfdir}
CRTOOL=${CRTOOL:-$selfdir/../../crtool}
scale=${CR_TIMEOUT_SCALE:-1}

# Orphans of killed and restored trees must be reaped by us at once, or their
# PIDs stay taken: run under the subreaper helper. One runner at a time (make
# -j runs tests in parallel): a PID freed by one test's dump must not be taken
# by another test's processes before the restore. flock -o keeps the lock in
# flock itself, so no test program inherits its descriptor.
if [ -z "${CR_UNDER_SUBREAPER:-}" ]; then
	if [ ! -x "$CR_TESTDIR/subreaper" ]; then
		echo "FAIL: $CR_TESTDIR/subreaper is not built (make check builds it)" >&2
		exit 1
	fi
	export CR_UNDER_SUBREAPER=$$
	lock=${CR_TMPDIR:-${TMPDIR:-/tmp}}/crlaunch-cr-tests.lock
	exec flock -o "$lock" "$CR_TESTDIR/subreaper" bash "$0" "$@"
fi

plain=0 keep=0 cycles_opt= args_override=
have_args_override=0
while getopts "nkc:a:h" opt; do
	case $opt in
	n) plain=1 ;;
	k) keep=1 ;;
	c) cycles_opt=$OPTARG ;;
	a) args_override=$OPTARG; have_args_override=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage

# pid:starttime of every process we may have to kill; starttime guards
# against killing an unrelated process that reused a pid.
tracked=()
launchers=()
scratch=

log() { echo "$*"; }

# In a subshell about to exec a test program or crtool: closes every
# descriptor but stdio (make's jobserver pipes, the harness's logs), which
# the engine would otherwise have to checkpoint, or could leak into the
# trees it restores.
close_fds() {
	local f n
	for f in /proc/self/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] && eval "exec $n>&-"
	done
	return 0
}

starttime() {
	local stat rest
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo "${20}"
}

track() {
	local p st
	for p in "$@"; do
		st=$(starttime "$p") && tracked+=("$p:$st")
	done
}

kill_tracked() {
	local e p st
	for e in "${tracked[@]}"; do
		p=${e%%:*}
		st=$(starttime "$p") || continue
		[ "$st" = "${e#*:}" ] && kill -KILL "$p" 2>/dev/null
	done
	for p in "${launchers[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	tracked=()
	launchers=()
}

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
	[ -n "$crtool_pid" ] && kill -TERM "$crtool_pid" 2>/dev/null
	kill_tracked
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The processes of the tree rooted at $1, parents first.
tree_pids() {
	local p=$1 c f kids
	[ -d "/proc/$p" ] || return 0
	echo "$p"
	for f in /proc/"$p"/task/*/children; do
		kids=()
		read -r -a kids 2>/dev/null <"$f" || true
		for c in "${kids[@]}"; do
			tree_pids "$c"
		done
	done
}

# Processes and threads of the tree rooted at $1, sorted.
tree_tasks() {
	local p t
	for p in $(tree_pids "$1"); do
		for t in /proc/"$p"/task/*; do
			echo "${t##*/}"
		done
	done | sort -n
}

features_json=
load_features() {
	[ -n "$features_json" ] && return 0
	if [ ! -x "$CRTOOL" ]; then
		log "FAIL: crtool not found at $CRTOOL (set CRTOOL)"
		return 1
	fi
	# check exits non-zero when something is missing; its table still counts.
	features_json=$("$CRTOOL" check --json 2>/dev/null)
	if [ -z "$features_json" ]; then
		log "FAIL: '$CRTOOL check --json' printed nothing"
		return 1
	fi
}

py_feature='
import json, sys
f = sys.argv[1]
found = []
def val(v):
    if isinstance(v, bool): return v
    if isinstance(v, dict): return bool(v.get("present", v.get("ok", v.get("available", False))))
    if isinstance(v, str): return v in ("present", "yes", "ok")
    return False
def walk(o):
    if isinstance(o, dict):
        if f in o: found.append(val(o[f]))
        if o.get("name") == f: found.append(val(o))
        for v in o.values(): walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(json.load(sys.stdin))
print("unknown" if not found else ("yes" if all(found) else "no"))
'

# Accepts {"F": true}, {"F": {"present": true}}, at any depth, and arrays of
# {"name": "F", "present": true}.
feature_present() {
	local r
	if command -v jq >/dev/null; then
		r=$(jq -r --arg f "$1" '
			[ (.. | objects | select(has($f)) | .[$f]
			   | if type == "boolean" then .
			     elif type == "object" then (.present // .ok // .available // false)
			     elif type == "string" then (. == "present" or . == "yes" or . == "ok")
			     else false end),
			  (.. | objects | select(.name? == $f) | (.present // .ok // false)) ]
			| if length == 0 then "unknown" elif all then "yes" else "no" end' \
			<<<"$features_json" 2>/dev/null)
	else
		r=$(python3 -c "$py_feature" "$1" <<<"$features_json" 2>/dev/null)
	fi
	case $r in
	yes) return 0 ;;
	no) return 1 ;;
	*) log "WARNING: crtool check --json does not mention '$1'"; return 1 ;;
	esac
}

# Sidecar keys: needs= programs= flags= args= timeout= delay= compare= crtool_timeout=
# unshare= refuse= dump_args= cycles=
desc_get() {
	local key=$1 file=$2
	[ -f "$file" ] || return 0
	sed -n "s/^[[:space:]]*${key}[[:space:]]*=[[:space:]]*//p" "$file" | tail -n 1
}

show_logs() {
	local f
	for f in "$scratch"/prog.log "$scratch"/crtool.log "$scratch"/out; do
		[ -s "$f" ] || continue
		echo "----- ${f##*/} (last 200 lines) -----"
		tail -n 200 "$f"
	done
	echo "----- scratch directory kept: $scratch -----"
}

fail() {
	log "FAIL $name: $*"
	show_logs
	return 1
}

secs() { echo $(( $1 * scale )); }

# Waits until FILE is non-empty; fails early if process $2 is gone.
wait_file() {
	local file=$1 watch=$2 limit i
	limit=$(( $(secs "$3") * 10 ))
	for ((i = 0; i < limit; i++)); do
		[ -s "$file" ] && return 0
		if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then
			[ -s "$file" ] && return 0
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# Waits until no task of the list exists any more (zombies count as alive);
# what is left is in $gone_left. Not for $(...): it reaps our children.
gone_left=
wait_gone() {
	local limit i t
	limit=$(( $(secs 10) * 10 ))
	for ((i = 0; i < limit; i++)); do
		gone_left=
		for t in "$@"; do
			[ -e "/proc/$t" ] && gone_left="$gone_left $t"
		done
		[ -z "$gone_left" ] && return 0
		# Our own child (the launcher) is reaped by wait, not by the subreaper.
		wait_zombie_launchers
		sleep 0.1
	done
	return 1
}

wait_zombie_launchers() {
	local p state
	for p in "${launchers[@]}"; do
		state=$(starttime "$p" >/dev/null && sed 's/.*) \(.\).*/\1/' "/proc/$p/stat" 2>/dev/null)
		[ "$state" = Z ] && wait "$p" 2>/dev/null
	done
	return 0
}

# Runs crtool with a time limit. In the background and waited for, so that a
# signal to the runner is handled at once and cleanup can kill a hung crtool.
crtool_pid=
crtool_run() {
	local rc
	echo "+ crtool $*" >>"$scratch/crtool.log"
	(close_fds && exec timeout --kill-after=10 "$(secs "${crtool_timeout:-120}")" \
		"$CRTOOL" "$@" </dev/null >>"$scratch/crtool.log" 2>&1) &
	crtool_pid=$!
	wait "$crtool_pid"
	rc=$?
	crtool_pid=
	[ "$rc" = 124 ] && echo "(crtool timed out after $(secs "${crtool_timeout:-120}") s)" >>"$scratch/crtool.log"
	return "$rc"
}

# One dump+restore cycle of the tree rooted at $pid; updates pid.
cycle() {
	local n=$1 before after newpid nspid
	before=$(tree_tasks "$pid")
	# shellcheck disable=SC2046
	track $(tree_pids "$pid")
	# shellcheck disable=SC2086
	crtool_run dump -t "$pid" -D "$scratch/dump$n" $dump_args || { fail "dump $n failed"; return 1; }
	# shellcheck disable=SC2086
	wait_gone $before || { fail "after dump $n tasks still exist:$gone_left"; return 1; }
	crtool_run restore -D "$scratch/dump$n" --detach --pidfile "$scratch/pid$n" ||
		{ fail "restore $n failed"; return 1; }
	newpid=$(cat "$scratch/pid$n" 2>/dev/null)
	if [ -z "$newpid" ] || [ ! -d "/proc/$newpid" ]; then
		fail "restore $n: pidfile names no live process ('$newpid')"
		return 1
	fi
	# shellcheck disable=SC2046
	track $(tree_pids "$newpid")
	after=$(tree_tasks "$newpid")
	if [ "$pidns" = 1 ]; then
		nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' "/proc/$newpid/status")
		[ "${nspid##*[[:space:]]}" = 1 ] ||
			{ fail "restore $n: root is not pid 1 of its namespace (NSpid: $nspid)"; return 1; }
		[ "$(wc -w <<<"$before")" = "$(wc -w <<<"$after")" ] ||
			{ fail "restore $n: $(wc -w <<<"$after") tasks, dumped $(wc -w <<<"$before")"; return 1; }
	else
		[ "$newpid" = "$pid" ] || { fail "restore $n: root pid $newpid, dumped $pid"; return 1; }
		# A tree that forks all the time has other tasks by now: the root only.
		[ "$churn" = 1 ] || [ "$before" = "$after" ] ||
			{ fail "restore $n: tasks differ: dumped [${before//$'\n'/ }] restored [${after//$'\n'/ }]"; return 1; }
	fi
	pid=$newpid
}

# A dump that must fail with $refuse in its log, leaving the tree running
# and no complete image.
refused_dump() {
	local before after
	before=$(tree_tasks "$pid")
	# shellcheck disable=SC2046
	track $(tree_pids "$pid")
	# shellcheck disable=SC2086
	if crtool_run dump -t "$pid" -D "$scratch/dump1" $dump_args; then
		fail "dump succeeded, expected a refusal ($refuse)"
		return 1
	fi
	grep -qF -- "$refuse" "$scratch/crtool.log" ||
		{ fail "dump failed without saying '$refuse'"; return 1; }
	[ ! -e "$scratch/dump1/inventory.img" ] ||
		{ fail "a refused dump left $scratch/dump1/inventory.img"; return 1; }
	after=$(tree_tasks "$pid")
	[ "$before" = "$after" ] ||
		{ fail "tasks changed by the refused dump: [${before//$'\n'/ }] -> [${after//$'\n'/ }]"; return 1; }
}

answer_of() { grep -o 'answer=[0-9a-fx]*' "$1" 2>/dev/null | head -n 1; }

run_one() {
	local arg=$1 descdir prog desc needs programs flags args timeout delay compare f verdict i ref tasks
	crtool_timeout=
	name=$(basename "$arg" .desc)
	if [ "${arg%.desc}" != "$arg" ]; then descdir=$(cd "$(dirname "$arg")" && pwd); else descdir=$selfdir; fi
	prog=$CR_TESTDIR/$name
	desc=$descdir/$name.desc
	[ -f "$desc" ] || { log "FAIL $name: no sidecar $desc"; return 1; }
	[ -x "$prog" ] || { log "FAIL $name: program $prog is not built"; return 1; }
	needs=$(desc_get needs "$desc")
	programs=$(desc_get programs "$desc")
	flags=$(desc_get flags "$desc")
	args=$(desc_get args "$desc")
	timeout=$(desc_get timeout "$desc")
	delay=$(desc_get delay "$desc")
	compare=$(desc_get compare "$desc")
	crtool_timeout=$(desc_get crtool_timeout "$desc")
	cycles=${cycles_opt:-$(desc_get cycles "$desc")}
	cycles=${cycles:-2}
	unshare_ns=$(desc_get unshare "$desc")
	refuse=$(desc_get refuse "$desc")
	dump_args=$(desc_get dump_args "$desc")
	[ "$have_args_override" = 1 ] && args=$args_override
	pidns=0 churn=0
	case " $flags " in *" pidns "*) pidns=1 ;; esac
	case " $flags " in *" churn "*) churn=1 ;; esac

	if [ "$plain" = 0 ]; then
		load_features || return 1
		for f in $needs; do
			feature_present "$f" || { log "SKIP $name: kernel lacks $f"; return 77; }
		done
	fi

	# Real programs a test runs (python3, gzip): absolute paths or names in PATH.
	for f in $programs; do
		if [ "${f#/}" != "$f" ]; then [ -x "$f" ]; else command -v "$f" >/dev/null; fi ||
			{ log "FAIL $name: $f is not installed (scripts/install-deps.sh installs it)"; return 1; }
	done

	scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/cr-$name.XXXXXX") ||
		{ log "FAIL $name: mktemp"; return 1; }
	local out=$scratch/out cmd
	# shellcheck disable=SC2206
	cmd=("$prog" "$out" $args)
	local ns_args=() w
	for w in ${unshare_ns//,/ }; do
		case $w in
		ipc | uts | mount | net | mount-proc) ns_args+=("--$w") ;;
		*) log "FAIL $name: unknown namespace '$w' in unshare="; return 1 ;;
		esac
		case $w in mount | mount-proc) ns_args+=(--propagation private) ;; esac
	done
	if [ "$pidns" = 1 ]; then
		cmd=(unshare --pid --fork "${ns_args[@]}" "${cmd[@]}")
	elif [ ${#ns_args[@]} -gt 0 ]; then
		cmd=(unshare "${ns_args[@]}" "${cmd[@]}")
	fi
	# Where the sidecar is: programs find their non-C parts (real_python.py) there.
	export CR_TEST_SRCDIR=$descdir
	(cd "$scratch" && close_fds && exec setsid "${cmd[@]}" </dev/null >>"$scratch/prog.log" 2>&1) &
	launchers+=($!)
	# Not a job: bash then reaps it silently when it dies.
	disown "$!"
	track "${launchers[-1]}"
	if ! wait_file "$out.ready" "${launchers[-1]}" 30 || [ -e "$out" ]; then
		if [ -e "$out" ]; then
			fail "failed during setup: $(cat "$out")"
		else
			fail "not ready within $(secs 30) s (or exited before)"
		fi
		return 1
	fi
	pid=$(cat "$out.ready")
	if [ "$pidns" = 1 ]; then
		# The root is unshare's child. With its own /proc (unshare=mount-proc)
		# it cannot see its host pid and reports 1: never trust that.
		local kids=()
		read -r -a kids 2>/dev/null <"/proc/${launchers[-1]}/task/${launchers[-1]}/children"
		[ ${#kids[@]} = 1 ] || { fail "unshare ${launchers[-1]} has ${#kids[@]} children, expected 1"; return 1; }
		pid=${kids[0]}
	fi
	# shellcheck disable=SC2046
	track $(tree_pids "$pid")
	[ "$pidns" = 1 ] || [ "$pid" = "${launchers[-1]}" ] ||
		{ fail "ready file names pid $pid, started ${launchers[-1]}"; return 1; }
	[ "$(sed 's/.*) . [0-9-]* [0-9-]* \([0-9-]*\).*/\1/' "/proc/$pid/stat")" = "$pid" ] ||
		{ fail "pid $pid is not a session leader"; return 1; }

	if [ "$plain" = 0 ] && [ -n "$refuse" ]; then
		sleep "${delay:-0.2}"
		refused_dump || return 1
	elif [ "$plain" = 0 ]; then
		sleep "${delay:-0.2}"
		for ((i = 1; i <= cycles; i++)); do
			cycle "$i" || return 1
			# Let the restored tree run before the next dump.
			sleep "${delay:-0.2}"
		done
	fi

	tasks=$(tree_tasks "$pid")
	kill -TERM "$pid" || { fail "can't send SIGTERM to $pid"; return 1; }
	wait_file "$out" "$pid" "${timeout:-60}" || { fail "no verdict within $(secs "${timeout:-60}") s after SIGTERM"; return 1; }
	verdict=$(head -n 1 "$out")
	case $verdict in
	PASS*) ;;
	*) fail "$verdict"; return 1 ;;
	esac
	if [ "$compare" = answer ]; then
		ref=$scratch/reference
		# shellcheck disable=SC2086
		(cd "$scratch" && close_fds && exec "$prog" -u "$ref" $args </dev/null >>"$scratch/prog.log" 2>&1)
		if [ -z "$(answer_of "$ref")" ] || [ "$(answer_of "$ref")" != "$(answer_of "$out")" ]; then
			fail "answer '$(answer_of "$out")' differs from the uninterrupted run's '$(answer_of "$ref")'"
			return 1
		fi
	fi
	# shellcheck disable=SC2086
	wait_gone $tasks || { fail "tasks still alive after the verdict:$gone_left"; return 1; }
	log "PASS $name${compare:+ ($(answer_of "$out"))}"
	[ "$keep" = 1 ] || rm -rf "$scratch"
	return 0
}

if [ "$(id -u)" != 0 ]; then
	log "SKIP: the C/R tests need root"
	exit 77
fi

passed=0 failed=0 skipped=0
for t in "$@"; do
	run_one "$t"
	case $? in
	0) passed=$((passed + 1)) ;;
	77) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
	kill_tracked
	wait 2>/dev/null
done
[ $# -gt 1 ] && log "passed $passed, failed $failed, skipped $skipped"
[ "$failed" -gt 0 ] && exit 1
[ "$passed" -gt 0 ] && exit 0
exit 77
