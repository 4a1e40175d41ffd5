# Unit tests of libcr: C programs that print TAP (tests/unit/tap.h), run by
# automake's TAP driver. The binaries themselves are named *.tap, so that
# only they use that driver and no wrapper script is needed; every other test
# keeps its own. TEST_EXTENSIONS is shared by every fragment: this one
# appends, so it is included after tests/local.mk. The driver is installed
# into build-aux/ by AC_REQUIRE_AUX_FILE([tap-driver.sh]) in configure.ac.
TEST_EXTENSIONS += .tap
TAP_LOG_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh

UNIT_TESTS = tests/unit/test-image.tap tests/unit/test-proc.tap tests/unit/test-pagemap.tap \
	tests/unit/test-netns.tap
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)

UNIT_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_unit_test_image_tap_SOURCES = tests/unit/test-image.c tests/unit/tap.h
tests_unit_test_image_tap_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_image_tap_LDADD = $(CR_LIBS)
tests_unit_test_proc_tap_SOURCES = tests/unit/test-proc.c tests/unit/tap.h
tests_unit_test_proc_tap_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_proc_tap_LDADD = $(CR_LIBS)
tests_unit_test_pagemap_tap_SOURCES = tests/unit/test-pagemap.c tests/unit/tap.h
tests_unit_test_pagemap_tap_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_pagemap_tap_LDADD = $(CR_LIBS)
tests_unit_test_netns_tap_SOURCES = tests/unit/test-netns.c tests/unit/tap.h
tests_unit_test_netns_tap_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_netns_tap_LDADD = $(CR_LIBS)
