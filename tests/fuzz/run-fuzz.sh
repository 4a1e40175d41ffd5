#!/bin/sh
# Build the image fuzzer with clang in build-fuzz/ and run it for SECONDS
# (default 60) on the seed corpus. See tests/fuzz/README.md.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [LIBFUZZER-OPTION]...
#
# BUILD_DIR overrides build-fuzz/ (relative to the source tree).
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$src/build-fuzz}
case $build in /*) ;; *) build=$src/$build ;; esac

die() { echo "Error: run-fuzz: $*" >&2; exit 1; }
command -v clang >/dev/null || die "clang not found (apt-get install clang libclang-rt-dev)"
case $secs in *[!0-9]* | '') die "SECONDS must be a number, not '$secs'" ;; esac

[ -x "$src/configure" ] || (cd "$src" && ./autogen.sh)
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
	"$src/configure" CC=clang --enable-fuzzers --enable-sanitizers ||
		die "configure failed in $build (see $build/config.log)"
fi
make -j"$(nproc)" tests/fuzz/fuzz-image
mkdir -p fuzz-corpus fuzz-crashes
# The first directory receives new inputs; the committed seeds are only read.
exec ./tests/fuzz/fuzz-image -max_total_time="$secs" -artifact_prefix="$build/fuzz-crashes/" \
	-print_final_stats=1 "$@" fuzz-corpus "$src/tests/fuzz/corpus" "$src/tests/fuzz/crashes"
