#!/bin/bash
# Install the Debian packages crlaunch needs to build and test. Idempotent: a
# machine that has them all is checked with dpkg-query and left alone, without
# touching the network.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

packages=(
	build-essential autoconf automake libtool pkg-config
	libprotobuf-c-dev protobuf-c-compiler liblz4-dev
	libnl-3-dev libnl-route-3-dev libhwloc-dev libpmix-dev libcap-dev
	libnftables-dev
	clang # libFuzzer targets (--enable-fuzzers)
	util-linux procps # setpriv, nsenter, unshare; pgrep, ps for the tests
	python3 gzip coreutils # real-program tests (tests/cr/real_*)
	iproute2 nftables # network namespaces, TCP traffic blocking
	openmpi-bin libopenmpi-dev mpich libmpich-dev # MPI integration tests
)

is_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${packages[@]}"; do
	is_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	msg "all ${#packages[@]} packages present"
	exit 0
fi

msg "installing: ${missing[*]}"
# env, not export: sudo would drop an exported DEBIAN_FRONTEND.
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q)
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null ||
		die "not root and no sudo: install these packages by hand: ${missing[*]}"
	apt=(sudo "${apt[@]}")
fi
"${apt[@]}" update ||
	die "apt-get update failed (is a Debian package mirror reachable?)"
"${apt[@]}" install -y -o Dpkg::Options::=--force-confold "${missing[@]}" ||
	die "apt-get install failed for: ${missing[*]}"
for p in "${missing[@]}"; do
	is_installed "$p" || die "package $p still not installed after apt-get install"
done
msg "installed: ${missing[*]}"
