# crlaunch and crctl tests: shell scripts driving them with a small
# multi-process job (tests/launcher/job.c, built like the C/R test programs:
# no sanitizers). Exit status 0 pass, 77 skip, anything else fail.
check_PROGRAMS += tests/launcher/job
tests_launcher_job_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_launcher_job_LDFLAGS =

LAUNCHER_TESTS = tests/launcher/basic.sh tests/launcher/restart.sh tests/launcher/faults.sh \
	tests/launcher/mpi.sh
TESTS += $(LAUNCHER_TESTS)
EXTRA_DIST += $(LAUNCHER_TESTS) tests/launcher/lib.sh tests/launcher/README

# The on-disk formats (TAP, see tests/unit/local.mk for the driver).
LAUNCHER_UNIT_TESTS = tests/launcher/test-manifest.tap
check_PROGRAMS += $(LAUNCHER_UNIT_TESTS)
TESTS += $(LAUNCHER_UNIT_TESTS)
tests_launcher_test_manifest_tap_SOURCES = tests/launcher/test-manifest.c $(LAUNCHER_COMMON)
tests_launcher_test_manifest_tap_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src/launcher
tests_launcher_test_manifest_tap_LDADD = libcr.a
