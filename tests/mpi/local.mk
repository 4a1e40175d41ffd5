# One-node MPI jobs (Open MPI and MPICH) dumped and restored three times in
# their own job container; tests/mpi/README.
MPI_TESTS = tests/mpi/openmpi.sh tests/mpi/mpich.sh
TESTS += $(MPI_TESTS)
EXTRA_DIST += $(MPI_TESTS) tests/mpi/mpi_job.sh tests/mpi/job-lib.sh tests/mpi/ring.c tests/mpi/README
