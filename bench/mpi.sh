#!/bin/bash
# Checkpoint and restart of a 4-rank MPI job in its own job container
# (tests/mpi/ring.c, started as tests/mpi/mpi_job.sh starts it).
#
#   bench/mpi.sh [openmpi|mpich]...     (default: openmpi; needs root)
#
# For each library, two jobs are measured in the same run: the baseline with
# 16 MiB of state per rank, and the real one with BENCH_MPI_MIB (default 256)
# per rank, so that the fixed cost of a checkpoint and its cost per GiB can
# be told apart, and the disk's own floor is measured (dd ... conv=fdatasync
# of as many bytes as the images). For each: `crtool dump --stats` (time to dump, time the job
# was frozen by the dump, bytes), `crtool restore --detach` (time to
# restore), the time the job did not run (from the start of the dump to the
# end of the restore), and whether the restored job finished with the same
# result as an uninterrupted run of the same size. One JSON line per job,
# then one comparison line per library.
#
# Environment: CRTOOL (default ./build/crtool), BENCH_DIR (default /var/tmp),
# BENCH_MPI_MIB, BENCH_KEEP=1 keeps the work directory.
set -euo pipefail
export LC_ALL=C
selfdir=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$selfdir/.." && pwd)
CRTOOL=${CRTOOL:-$srcdir/build/crtool}
big=${BENCH_MPI_MIB:-256}
scale=1
[ $# -gt 0 ] || set -- openmpi

log() { printf 'bench-mpi: %s\n' "$*" >&2; }
fail() { printf 'Error: bench-mpi: %s\n' "$*" >&2; failed=1; }
[ "$(id -u)" = 0 ] || { fail "needs root"; exit 1; }
[ -x "$CRTOOL" ] || { fail "no crtool at $CRTOOL"; exit 1; }

# The restored job is reparented to us: be a subreaper, through the tests'
# helper when it is built, so that nothing is left as a zombie.
sr=$(dirname "$CRTOOL")/tests/cr/subreaper
if [ -z "${CR_UNDER_SUBREAPER:-}" ] && [ -x "$sr" ]; then
	export CR_UNDER_SUBREAPER=$$
	exec "$sr" bash "$0" "$@"
fi

# shellcheck source=../tests/mpi/job-lib.sh
. "$srcdir/tests/mpi/job-lib.sh"
scratch=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cr-bench-mpi.XXXXXX")
failed=0 launcher= init=
cleanup() {
	kill_job
	wait 2>/dev/null || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# measure LIB MIB: prints the JSON line, sets m_dump m_restore m_down.
measure() {
	local lib=$1 mib=$2 t0 t1 t2 stats frozen_ms bytes ok ref
	state=$mib iters=1500 pace=1000
	rm -rf "$scratch/d" "$scratch/out" "$scratch/ref"
	start "$scratch/ref" || return 1
	wait_gone "$init" 600 || { fail "$lib: the uninterrupted job did not finish"; return 1; }
	init= launcher=
	start "$scratch/out" || return 1
	wait_line "$scratch/out" '^iteration 300 ' 120 || { fail "$lib: the job did not start"; return 1; }
	t0=$(now)
	"$CRTOOL" dump -t "$init" -D "$scratch/d" --stats 2>"$scratch/dump.log" ||
		{ fail "$lib: dump failed: $(tail -3 "$scratch/dump.log")"; return 1; }
	t1=$(now)
	wait_gone "$init" 10 || true
	wait_gone "$launcher" 10 || true
	init= launcher=
	"$CRTOOL" restore -D "$scratch/d" --detach --pidfile "$scratch/pid" 2>"$scratch/restore.log" ||
		{ fail "$lib: restore failed: $(tail -3 "$scratch/restore.log")"; return 1; }
	t2=$(now)
	init=$(cat "$scratch/pid")
	stats=$(grep -o 'stats: .*' "$scratch/dump.log" || true)
	frozen_ms=$(sed -n 's/.*frozen_ms=\([0-9.]*\).*/\1/p' <<<"$stats")
	bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$stats")
	wait_gone "$init" 600 || { fail "$lib: the restored job did not finish"; return 1; }
	init=
	ok=false
	cmp -s "$scratch/ref" "$scratch/out" && ok=true
	m_dump=$(secs "$t0" "$t1") m_restore=$(secs "$t1" "$t2") m_down=$(secs "$t0" "$t2")
	printf '{"bench":"mpi","lib":"%s","ranks":4,"state_mib_per_rank":%d,"dump_s":%s,"frozen_by_dump_s":%s,"restore_s":%s,"down_s":%s,"image_bytes":%s,"same_result":%s}\n' \
		"$lib" "$mib" "$m_dump" "$(awk -v f="${frozen_ms:-0}" 'BEGIN { printf "%.3f", f / 1000 }')" \
		"$m_restore" "$m_down" "${bytes:-0}" "$ok"
}

for lib in "$@"; do
	mpi_setup "$lib" || { fail "unknown MPI library '$lib' (openmpi or mpich)"; continue; }
	"$mpicc" -std=gnu11 -O2 -o "$scratch/ring" "$srcdir/tests/mpi/ring.c" ||
		{ fail "$mpicc could not build ring.c"; continue; }
	log "$lib: baseline, 16 MiB per rank"
	measure "$lib" 16 || continue
	b_dump=$m_dump b_restore=$m_restore
	log "$lib: $big MiB per rank"
	measure "$lib" "$big" || continue
	# The disk's floor for as many bytes, now: dd with fdatasync.
	mib=$(( $(du -sb "$scratch/d" | cut -f1) / 1048576 + 1 ))
	t0=$(now)
	dd if=/dev/zero of="$scratch/floor" bs=1M count="$mib" conv=fdatasync status=none
	floor=$(secs "$t0" "$(now)")
	rm -f "$scratch/floor"
	awk -v lib="$lib" -v big="$big" -v bd="$b_dump" -v br="$b_restore" -v d="$m_dump" -v r="$m_restore" \
		-v f="$floor" -v mib="$mib" 'BEGIN {
		gib = 4 * (big - 16) / 1024
		printf "{\"bench\":\"mpi-compare\",\"lib\":\"%s\",\"fixed_dump_s\":%.3f,\"fixed_restore_s\":%.3f,\"dump_s_per_gib\":%.3f,\"restore_s_per_gib\":%.3f,\"floor_mib\":%d,\"floor_write_s\":%.3f,\"dump_vs_floor\":%.2f}\n",
			lib, bd, br, (d - bd) / gib, (r - br) / gib, mib, f, d / f
	}'
done
exit $failed
