#!/bin/bash
# Regenerate the seed corpus of the image fuzzer (tests/fuzz/corpus/) after
# an image format change. Needs root and a built crtool:
#
#   tests/fuzz/make-seeds.sh [CRTOOL]      (default: ./crtool of the cwd)
#
# Seeds: an empty image (header only) of every kind, and the images of a
# real dump of a small process tree (a shell with two children), minus the
# raw page data, which no parser reads.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
crtool=${1:-./crtool}
corpus=$here/corpus
magic='\x43\x4c\x43\x52'	# IMG_MAGIC, little-endian "CLCR"
# name:number, as in enum img_kind (src/include/image.h)
kinds=(inventory:1 pstree:2 core:3 mm:4 pagemap:5 fds:6 pipes:7 ghosts:8 ns:9 ipc:10 mnt:11
	unixsk:12 inetsk:14 netlinksk:15 netns:17)

die() { echo "Error: make-seeds: $*" >&2; exit 1; }
[ -x "$crtool" ] || die "no crtool at $crtool (pass its path)"
[ "$(id -u)" = 0 ] || die "crtool dump needs root"

mkdir -p "$corpus"
for k in "${kinds[@]}"; do
	printf "$magic\\x$(printf %02x "${k#*:}")\\x00\\x00\\x00" >"$corpus/empty-${k%:*}.img"
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/cr-seeds.XXXXXX")
trap 'rm -rf "$dir"' EXIT
# No inherited descriptors: the dump must not meet fds it does not support.
setsid perl -e 'use POSIX; POSIX::close($_) for 3 .. 1023; exec @ARGV' \
	sh -c 'sleep 1000 & sleep 1000 & wait' </dev/null >/dev/null 2>&1 &
root=$!
disown "$root"	# crtool kills it: no "Killed" notice from bash
sleep 0.5
if ! "$crtool" dump -t "$root" -D "$dir"; then
	kill $(cat /proc/"$root"/task/*/children) "$root" 2>/dev/null
	die "dump of $root failed"
fi
rm -f "$corpus"/dump-*
for f in "$dir"/*.img; do
	name=$(basename "$f")
	case $name in
	pages-*) continue ;;
	esac
	# Drop the pid: the seed names stay stable across runs.
	install -m 644 "$f" "$corpus/dump-$(echo "$name" | sed 's/-[0-9]*\.img$//; s/\.img$//')-$(cksum <"$f" | cut -d' ' -f1).img"
done
ls -l "$corpus"
