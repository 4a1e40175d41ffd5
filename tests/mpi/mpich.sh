#!/bin/bash
# make check: the 4-rank ring job with mpich, dumped and restored three times
# in its own job container (mpi_job.sh).
exec bash "$(dirname "$0")/mpi_job.sh" mpich
