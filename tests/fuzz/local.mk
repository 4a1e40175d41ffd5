# Fuzzing of everything that reads images (tests/fuzz/README.md).
#
# fuzz-replay runs the fuzz target over the seed corpus and the saved crash
# reproducers on every `make check`, in any build: with the sanitizers in a
# --enable-sanitizers build. It needs neither clang nor libFuzzer.
FUZZ_CORPUS_DIRS = $(abs_top_srcdir)/tests/fuzz/corpus $(abs_top_srcdir)/tests/fuzz/crashes
check_PROGRAMS += tests/fuzz/fuzz-replay
TESTS += tests/fuzz/fuzz-replay
tests_fuzz_fuzz_replay_SOURCES = tests/fuzz/fuzz-replay.c tests/fuzz/fuzz-image.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_replay_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS_DIRS='"$(FUZZ_CORPUS_DIRS)"'
tests_fuzz_fuzz_replay_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_fuzz_fuzz_replay_LDADD = $(CR_LIBS)

EXTRA_DIST += tests/fuzz/README.md tests/fuzz/run-fuzz.sh tests/fuzz/make-seeds.sh \
	tests/fuzz/corpus tests/fuzz/crashes

if FUZZERS
# The libFuzzer binary (configure CC=clang --enable-fuzzers; tests/fuzz/run-fuzz.sh
# does it all). Coverage feedback must come from the code under test, so it
# links a second copy of libcr built with the fuzzer's instrumentation and,
# whatever --enable-sanitizers says, with ASan and UBSan.
FUZZ_SAN_CFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
noinst_LIBRARIES += tests/fuzz/libcr-fuzz.a
tests_fuzz_libcr_fuzz_a_SOURCES = $(libcr_a_SOURCES)
nodist_tests_fuzz_libcr_fuzz_a_SOURCES = $(nodist_libcr_a_SOURCES)
tests_fuzz_libcr_fuzz_a_CFLAGS = $(libcr_a_CFLAGS) $(FUZZ_SAN_CFLAGS) -fsanitize=fuzzer-no-link

noinst_PROGRAMS += tests/fuzz/fuzz-image
tests_fuzz_fuzz_image_SOURCES = tests/fuzz/fuzz-image.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_image_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(FUZZ_SAN_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_image_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_SAN_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_image_LDADD = tests/fuzz/libcr-fuzz.a $(PROTOBUF_C_LIBS) $(LZ4_LIBS) $(NFTABLES_LIBS) -lpthread
endif
