#!/bin/bash
# Build crlaunch out of tree.
#   scripts/build.sh [--sanitizers] [BUILDDIR] [-- EXTRA_CONFIGURE_ARGS...]
# BUILDDIR is relative to the source tree; it defaults to build/, or
# build-asan/ with --sanitizers. Warnings are errors, as in CI.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
	echo "usage: scripts/build.sh [--sanitizers] [BUILDDIR] [-- CONFIGURE_ARGS...]"
}

sanitizers=no
builddir=
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	--sanitizers) sanitizers=yes ;;
	-h | --help) usage; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	-*) usage >&2; die "unknown option '$1'" ;;
	*)
		[ -z "$builddir" ] || die "more than one BUILDDIR: '$builddir' and '$1'"
		builddir=$1
		;;
	esac
	shift
done
if [ -z "$builddir" ]; then
	builddir=build
	[ $sanitizers = no ] || builddir=build-asan
fi

[ -n "${CR_DEPS_CHECKED:-}" ] || "$CR_SCRIPTS/install-deps.sh"
cd "$CR_SRCDIR"

# An in-tree configure makes automake refuse every out-of-tree build.
if [ -f config.status ]; then
	die "the source tree was configured in place (./configure): run 'make distclean' there first"
fi
# make's own rebuild rules run automake without --add-missing, which fails
# when a changed fragment needs a new helper (test drivers): autogen instead.
needs_autogen() {
	[ ! -x configure ] || [ ! -f Makefile.in ] || [ configure.ac -nt configure ] ||
		[ -n "$(find . -path ./build\* -prune -o \( -name Makefile.am -o -name local.mk \) \
			-newer Makefile.in -print -quit)" ]
}
if needs_autogen; then
	msg "running autogen.sh"
	./autogen.sh
fi

args=(--enable-werror)
[ $sanitizers = no ] || args+=(--enable-sanitizers)
args+=("${extra[@]}")
mkdir -p "$builddir"
cd "$builddir"
# Configure again only when the options change; otherwise make's own rules
# rerun config.status when configure.ac or a Makefile fragment changed.
if [ ! -f Makefile ] || [ "$(cat .configure-args 2>/dev/null)" != "${args[*]}" ]; then
	msg "configuring $builddir/ with: ${args[*]}"
	"$CR_SRCDIR/configure" "${args[@]}"
	printf '%s' "${args[*]}" >.configure-args
fi
msg "building in $builddir/"
make -j"$(cr_nproc)"
msg "built $builddir/"
