# Shared by the launcher tests (sourced). Each test runs under the C/R
# tests' machine-wide lock and the subreaper (killed trees are reaped at
# once), in a scratch directory, and cleans up every process it started by
# pid. Protocol: exit 0 pass, 1 fail, 77 skip; one PASS/FAIL line.
set -u
selfdir=$(cd "$(dirname "$0")" && pwd)
CR_TESTDIR=${CR_TESTDIR:-$selfdir/../../tests/cr}
B=${CRLAUNCH_BUILDDIR:-$CR_TESTDIR/../..}
CRLAUNCH=${CRLAUNCH:-$B/crlaunch}
CRCTL=${CRCTL:-$B/crctl}
JOB=${JOB:-$B/tests/launcher/job}
name=$(basename "$0" .sh)

if [ -z "${CR_UNDER_SUBREAPER:-}" ]; then
	export CR_UNDER_SUBREAPER=$$
	lock=${CR_TMPDIR:-${TMPDIR:-/tmp}}/crlaunch-cr-tests.lock
	exec flock -o "$lock" "$CR_TESTDIR/subreaper" bash "$0" "$@"
fi
for f in "$CRLAUNCH" "$CRCTL" "$JOB"; do
	[ -x "$f" ] || { echo "FAIL: $f is not built"; exit 1; }
done

scratch=$(mktemp -d "${CR_TMPDIR:-${TMPDIR:-/tmp}}/crl-$name.XXXXXX")
cd "$scratch" || exit 1
failed=0
pids=()
fail() { echo "FAIL: $*"; failed=1; }

# Every crlaunch we started, then whatever container init they had.
cleanup() {
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ $failed = 0 ]; then rm -rf "$scratch"; else echo "scratch kept: $scratch"; fi
}
trap cleanup EXIT

# The reference: the job run to its end without crlaunch.
STEPS=${STEPS:-40}
DELAY=${DELAY:-100}
reference() {
	mkdir -p ref && (cd ref && "$JOB" "$STEPS" result.txt 1 > out 2> err) ||
		{ fail "the job itself failed"; exit 1; }
}

# start_bg DIR [OPTIONS...]: crlaunch in DIR (the job's cwd), in the background.
# Sets $cl (its pid); output in DIR/out.N, DIR/err.N for run N of DIR.
runs() { find "$1" -maxdepth 1 -name 'out.*' | wc -l; }
start_bg() {
	local dir=$1; shift
	mkdir -p "$dir"
	run_no=$(runs "$dir")
	run_no=$((run_no + 1))
	(cd "$dir" && exec "$CRLAUNCH" "$@" -- "$JOB" "$STEPS" result.txt "$DELAY" \
		> "out.$run_no" 2> "err.$run_no" < /dev/null) &
	cl=$!
	pids+=("$cl")
}

# run_fg DIR [OPTIONS...]: the same, waited for; sets $rc.
run_fg() {
	start_bg "$@"
	wait "$cl"
	rc=$?
}

# wait_ready DIR: until crctl can talk to the crlaunch of DIR.
wait_ready() {
	for _ in $(seq 200); do
		"$CRCTL" --ckpt-dir "$1/crlaunch.ckpt" status > /dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "crlaunch in $1 never answered crctl"
	return 1
}

# init_pid DIR: the host pid of the container's init.
init_pid() {
	"$CRCTL" --ckpt-dir "$1/crlaunch.ckpt" status --json | sed -n 's/.*"pid": \([0-9]*\),.*/\1/p'
}

# gone PID: true once PID no longer exists (waits up to 10 s).
gone() {
	for _ in $(seq 100); do
		[ -d "/proc/$1" ] || return 0
		sleep 0.1
	done
	return 1
}

manifest_field() {	# EPOCH_DIR KEY [SUBKEY]
	awk -v k="$2" -v s="${3:-}" '$1 == k && (s == "" || $2 == s) { print (s == "" ? $2 : $3) }' \
		"$1/MANIFEST"
}

epoch_dir() { printf '%s/crlaunch.ckpt/epoch-%06d' "$1" "$2"; }

# same_as_reference DIR: result file and output (first runs' output cut at
# the restored epoch's stream offsets, then the last run's) equal the reference.
# Args: DIR, then for every run but the last "N:BYTES_OUT:BYTES_ERR".
same_as_reference() {
	local dir=$1; shift
	local last; last=$(runs "$dir")
	: > "$dir/all.out"; : > "$dir/all.err"
	for cut in "$@"; do
		IFS=: read -r n bo be <<< "$cut"
		head -c "$bo" "$dir/out.$n" >> "$dir/all.out"
		grep -v '^crlaunch: \|^Error: \|^Warning: ' "$dir/err.$n" | head -c "$be" >> "$dir/all.err"
	done
	cat "$dir/out.$last" >> "$dir/all.out"
	grep -v '^crlaunch: \|^Error: \|^Warning: ' "$dir/err.$last" >> "$dir/all.err"
	cmp -s "$dir/result.txt" ref/result.txt || fail "$dir: result.txt differs from the reference"
	cmp -s "$dir/all.out" ref/out || fail "$dir: the output differs from the reference: $(diff "$dir/all.out" ref/out | head -5)"
	cmp -s "$dir/all.err" ref/err || fail "$dir: stderr differs from the reference: $(diff "$dir/all.err" ref/err | head -5)"
}

# restored_epoch DIR N: the epoch run N restored (from its log), or empty.
restored_epoch() {
	sed -n 's/^crlaunch: restored epoch \([0-9]*\) .*/\1/p' "$1/err.$2" 2>/dev/null
}

# wait_epoch DIR N: until epoch N of DIR is committed (10 s at most).
wait_epoch() {
	for _ in $(seq 200); do
		[ -f "$(epoch_dir "$1" "$2")/MANIFEST" ] && return 0
		sleep 0.05
	done
	fail "$1: epoch $2 was never committed"
	return 1
}

# cut_at DIR RUN EPOCH: "RUN:stdout bytes:stderr bytes" of that epoch.
cut_at() {
	local e; e=$(epoch_dir "$1" "$3")
	echo "$2:$(manifest_field "$e" stream stdout):$(manifest_field "$e" stream stderr)"
}

finish() {
	# A sanitizer build reports on crlaunch's or crctl's stderr: that fails the test.
	local rep
	rep=$(grep -rl "runtime error:\|AddressSanitizer\|LeakSanitizer" "$scratch" 2> /dev/null)
	[ -n "$rep" ] && fail "sanitizer reports in: $rep"
	if [ $failed = 0 ]; then echo "PASS $name${1:+ ($1)}"; exit 0; fi
	exit 1
}
