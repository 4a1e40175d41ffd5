# The demo program of scripts/demo-crtool.sh: a long deterministic computation to
# checkpoint, restore and compare with an uninterrupted run.
noinst_PROGRAMS += tests/demo/demo
tests_demo_demo_SOURCES = tests/demo/demo.c
tests_demo_demo_LDADD = -lpthread
# It is the process being checkpointed, not code under test: keep it free of
# sanitizer runtimes (ASan's shadow mappings would only make its images huge).
tests_demo_demo_CFLAGS = $(CR_CFLAGS)
tests_demo_demo_LDFLAGS =
