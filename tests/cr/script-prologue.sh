# Sourced first by the script tests of tests/cr/ (external.sh, faults.sh...):
# the defaults of tests/cr/run.sh's environment (CRTOOL, CR_TESTDIR,
# CR_TIMEOUT_SCALE as $scale), then the script runs again under the C/R
# tests' machine-wide lock and the subreaper, with only stdin, stdout and
# stderr open: a descriptor inherited from whoever runs the test would be
# held outside the trees it dumps.
selfdir=$(cd "$(dirname "$0")" && pwd)
CR_TESTDIR=${CR_TESTDIR:-$selfdir}
CRTOOL=${CRTOOL:-$selfdir/../../crtool}
scale=${CR_TIMEOUT_SCALE:-1}

if [ -z "${CR_UNDER_SUBREAPER:-}" ]; then
	export CR_UNDER_SUBREAPER=$$
	for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] && eval "exec $fd>&-"
	done
	exec flock -o "${CR_TMPDIR:-${TMPDIR:-/tmp}}/crlaunch-cr-tests.lock" \
		"$CR_TESTDIR/subreaper" bash "$0" "$@"
fi
