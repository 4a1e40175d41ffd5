# Helpers sourced by the scripts in this directory; not a program of its own.
# shellcheck shell=bash

# The source tree: the parent of the directory holding the sourcing script.
CR_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
CR_SCRIPTS="$CR_SRCDIR/scripts"

# Each script prints its name before its messages, so interleaved output
# (build.sh inside test.sh inside CI) says who speaks.
cr_prog=$(basename "$0" .sh)

msg() { printf '%s: %s\n' "$cr_prog" "$*"; }
warn() { printf '%s: warning: %s\n' "$cr_prog" "$*" >&2; }
die() {
	printf 'Error: %s: %s\n' "$cr_prog" "$*" >&2
	exit 1
}

cr_nproc() { nproc 2>/dev/null || echo 2; }
