# One-node MPI jobs (Open MPI and MPICH) dumped and restored three times in
# their own job container; tests/mpi/README.
MPI_TESTS = tests/mpi/openmpi.sh tests/mpi/mpich.sh
# Integration tests of the normal build: the sanitizer build runs the C/R
# suite, where each kind of state is checked on its own, and stays within
# CI's time.
if !SANITIZERS
TESTS += $(MPI_TESTS)
endif
EXTRA_DIST += $(MPI_TESTS) tests/mpi/mpi_job.sh tests/mpi/job-lib.sh tests/mpi/ring.c tests/mpi/README
