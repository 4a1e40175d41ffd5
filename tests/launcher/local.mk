# crlaunch and crctl tests: shell scripts driving them with a small
# multi-process job (tests/launcher/job.c, built like the C/R test programs:
# no sanitizers). Exit status 0 pass, 77 skip, anything else fail.
check_PROGRAMS += tests/launcher/job
tests_launcher_job_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_launcher_job_LDFLAGS =

LAUNCHER_TESTS = tests/launcher/basic.sh tests/launcher/restart.sh tests/launcher/faults.sh
TESTS += $(LAUNCHER_TESTS)
EXTRA_DIST += $(LAUNCHER_TESTS) tests/launcher/lib.sh tests/launcher/README
