# bench: memhog is the process the benchmark dumps and restores; run.sh
# drives it (bench/README.md).
noinst_PROGRAMS += bench/memhog bench/fdmaps
bench_memhog_SOURCES = bench/memhog.c
bench_fdmaps_SOURCES = bench/fdmaps.c
bench_fdmaps_CFLAGS = $(CR_CFLAGS)
bench_fdmaps_LDFLAGS =
# Not sanitized even in --enable-sanitizers builds: ASan's shadow mappings
# (terabytes of reserved address space) would be part of what crtool dumps,
# and the benchmark measures a plain process with N MiB of written memory.
bench_memhog_CFLAGS = $(CR_CFLAGS)
bench_memhog_LDFLAGS =
EXTRA_DIST += bench/run.sh bench/objects.sh bench/README.md

# `make bench-run [BENCH_SIZES="1024 4096"]`: the benchmark against this
# build's crtool; JSON lines on stdout. Needs root.
BENCH_SIZES =
.PHONY: bench-run
bench-run: bench/memhog$(EXEEXT) crtool$(EXEEXT)
	CRTOOL=$(abs_top_builddir)/crtool$(EXEEXT) \
	MEMHOG=$(abs_top_builddir)/bench/memhog$(EXEEXT) \
	bash $(srcdir)/bench/run.sh $(BENCH_SIZES)

# `make bench-mpi [BENCH_MPI="openmpi mpich"]`: checkpoint/restart of a
# 4-rank MPI job (bench/mpi.sh); JSON lines on stdout. Needs root.
BENCH_MPI = openmpi mpich
EXTRA_DIST += bench/mpi.sh
.PHONY: bench-mpi
bench-mpi: crtool$(EXEEXT) tests/cr/subreaper$(EXEEXT)
	CRTOOL=$(abs_top_builddir)/crtool$(EXEEXT) bash $(srcdir)/bench/mpi.sh $(BENCH_MPI)

# `make bench-objects`: dump/restore cost per descriptor and per mapping
# (bench/objects.sh); JSON lines on stdout. Needs root.
.PHONY: bench-objects
bench-objects: bench/fdmaps$(EXEEXT) crtool$(EXEEXT)
	CRTOOL=$(abs_top_builddir)/crtool$(EXEEXT) \
	FDMAPS=$(abs_top_builddir)/bench/fdmaps$(EXEEXT) \
	bash $(srcdir)/bench/objects.sh
