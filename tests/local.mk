# C/R test programs (tests/cr/README.md). `make check` builds them and runs
# each through tests/cr/run.sh (dump, restore, dump, restore, SIGTERM, PASS)
# under automake's parallel driver: one test per sidecar tests/cr/NAME.desc,
# exit status 0 pass, 77 skip (a kernel feature the sidecar needs is missing),
# anything else fail. run.sh serialises itself, so make -j is safe.
#
# The programs are what the engine checkpoints, not code under test: they
# are built without sanitizers (an ASan runtime would add terabytes of shadow
# mappings, its own threads and signal handlers to every tree) and without
# libcr.
CR_TEST_COMPILE_FLAGS = $(CR_CFLAGS) -pthread
CR_TEST_LINK_LIBS = tests/cr/libcrtest.a -lrt
CR_TEST_LINK_FLAGS = -pthread

check_LIBRARIES = tests/cr/libcrtest.a
tests_cr_libcrtest_a_SOURCES = tests/cr/crtest.c tests/cr/crtree.c tests/cr/crtest.h
tests_cr_libcrtest_a_CFLAGS = $(CR_TEST_COMPILE_FLAGS)

# Reaps orphans for the runner; see subreaper.c.
check_PROGRAMS += tests/cr/subreaper
tests_cr_subreaper_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_subreaper_LDFLAGS = $(CR_TEST_LINK_FLAGS)

check_PROGRAMS += \
	tests/cr/big \
	tests/cr/brk \
	tests/cr/comm \
	tests/cr/creds \
	tests/cr/cwd_root \
	tests/cr/devnull \
	tests/cr/epoll \
	tests/cr/eventfd \
	tests/cr/fds \
	tests/cr/fds_more \
	tests/cr/fifo \
	tests/cr/fpu \
	tests/cr/ghost \
	tests/cr/guard \
	tests/cr/guard_region \
	tests/cr/inotify \
	tests/cr/ipc_posix_mq \
	tests/cr/ipc_sysv \
	tests/cr/itimers \
	tests/cr/locks \
	tests/cr/maps \
	tests/cr/mem_anon \
	tests/cr/mem_file_private \
	tests/cr/mem_file_shared \
	tests/cr/mem_shared_anon \
	tests/cr/mm_fields \
	tests/cr/mnt_ns \
	tests/cr/mnt_refused_bind \
	tests/cr/mnt_refused_mqueue \
	tests/cr/mnt_refused_size \
	tests/cr/mprotect \
	tests/cr/netns \
	tests/cr/pending \
	tests/cr/personality \
	tests/cr/pgrp \
	tests/cr/pgrp_orphan \
	tests/cr/pidns \
	tests/cr/pidns_nested \
	tests/cr/pipe \
	tests/cr/posix_timers \
	tests/cr/prctl \
	tests/cr/real_pipeline \
	tests/cr/real_python \
	tests/cr/real_shell \
	tests/cr/real_shm4 \
	tests/cr/rlimits \
	tests/cr/robust \
	tests/cr/rseq \
	tests/cr/seize_race \
	tests/cr/sigactions \
	tests/cr/sigaltstack \
	tests/cr/sk_unix_dgram \
	tests/cr/sk_unix_seqpacket \
	tests/cr/sk_unix_stream \
	tests/cr/signalfd \
	tests/cr/sparse \
	tests/cr/stack \
	tests/cr/threads \
	tests/cr/timerfd \
	tests/cr/tree \
	tests/cr/tty_ctty \
	tests/cr/tty_pty \
	tests/cr/umask \
	tests/cr/uts_ns \
	tests/cr/vdso \
	tests/cr/zombie

# Per program: no sanitizers, the test library (automake needs each spelled out).
tests_cr_netns_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_netns_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_netns_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_uts_ns_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_uts_ns_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_uts_ns_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_ipc_sysv_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_ipc_sysv_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_ipc_sysv_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_ipc_posix_mq_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_ipc_posix_mq_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_ipc_posix_mq_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mnt_ns_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mnt_ns_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mnt_ns_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mnt_refused_bind_SOURCES = tests/cr/mnt_refused.c
tests_cr_mnt_refused_bind_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mnt_refused_bind_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mnt_refused_bind_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mnt_refused_mqueue_SOURCES = tests/cr/mnt_refused.c
tests_cr_mnt_refused_mqueue_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mnt_refused_mqueue_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mnt_refused_mqueue_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mnt_refused_size_SOURCES = tests/cr/mnt_refused.c
tests_cr_mnt_refused_size_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mnt_refused_size_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mnt_refused_size_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_big_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_big_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_big_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_brk_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_brk_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_brk_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_comm_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_comm_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_comm_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_creds_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_creds_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_creds_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_cwd_root_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_cwd_root_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_cwd_root_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_devnull_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_devnull_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_devnull_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_epoll_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_epoll_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_epoll_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_eventfd_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_eventfd_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_eventfd_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_ghost_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_ghost_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_ghost_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_locks_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_locks_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_locks_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_fds_more_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_fds_more_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_fds_more_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_fifo_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_fifo_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_fifo_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_fds_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_fds_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_fds_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_fpu_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_fpu_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_fpu_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_guard_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_guard_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_guard_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_guard_region_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_guard_region_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_guard_region_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_inotify_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_inotify_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_inotify_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_itimers_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_itimers_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_itimers_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_seize_race_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_seize_race_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_seize_race_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_pidns_nested_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_pidns_nested_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_pidns_nested_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_maps_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_maps_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_maps_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mem_anon_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mem_anon_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mem_anon_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mem_file_private_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mem_file_private_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mem_file_private_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mem_file_shared_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mem_file_shared_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mem_file_shared_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mem_shared_anon_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mem_shared_anon_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mem_shared_anon_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mm_fields_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mm_fields_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mm_fields_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_mprotect_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_mprotect_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_mprotect_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_pending_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_pending_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_pending_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_personality_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_personality_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_personality_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_pgrp_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_pgrp_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_pgrp_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_pgrp_orphan_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_pgrp_orphan_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_pgrp_orphan_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_pidns_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_pidns_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_pidns_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_pipe_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_pipe_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_pipe_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_posix_timers_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_posix_timers_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_posix_timers_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_prctl_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_prctl_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_prctl_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_real_pipeline_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_real_pipeline_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_real_pipeline_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_real_python_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_real_python_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_real_python_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_real_shell_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_real_shell_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_real_shell_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_real_shm4_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_real_shm4_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_real_shm4_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_rlimits_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_rlimits_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_rlimits_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_robust_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_robust_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_robust_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_rseq_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_rseq_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_rseq_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sigactions_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sigactions_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sigactions_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sigaltstack_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sigaltstack_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sigaltstack_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sk_unix_dgram_SOURCES = tests/cr/sk_unix_dgram.c tests/cr/sk_unix_common.c tests/cr/sk_unix.h
tests_cr_sk_unix_dgram_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_unix_dgram_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_unix_dgram_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sk_unix_seqpacket_SOURCES = tests/cr/sk_unix_seqpacket.c tests/cr/sk_unix_common.c tests/cr/sk_unix.h
tests_cr_sk_unix_seqpacket_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_unix_seqpacket_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_unix_seqpacket_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sk_unix_stream_SOURCES = tests/cr/sk_unix_stream.c tests/cr/sk_unix_common.c tests/cr/sk_unix.h
tests_cr_sk_unix_stream_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_unix_stream_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_unix_stream_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_signalfd_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_signalfd_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_signalfd_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sparse_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sparse_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sparse_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_stack_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_stack_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_stack_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_threads_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_threads_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_threads_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_timerfd_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_timerfd_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_timerfd_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_tree_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_tree_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_tree_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_tty_ctty_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_tty_ctty_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_tty_ctty_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_tty_pty_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_tty_pty_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_tty_pty_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_umask_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_umask_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_umask_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_vdso_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_vdso_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_vdso_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_zombie_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_zombie_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_zombie_LDADD = $(CR_TEST_LINK_LIBS)

CR_TEST_DESCS = \
	tests/cr/big.desc \
	tests/cr/brk.desc \
	tests/cr/comm.desc \
	tests/cr/creds.desc \
	tests/cr/cwd_root.desc \
	tests/cr/devnull.desc \
	tests/cr/epoll.desc \
	tests/cr/eventfd.desc \
	tests/cr/fds.desc \
	tests/cr/fds_more.desc \
	tests/cr/fifo.desc \
	tests/cr/ghost.desc \
	tests/cr/fpu.desc \
	tests/cr/guard.desc \
	tests/cr/guard_region.desc \
	tests/cr/inotify.desc \
	tests/cr/ipc_posix_mq.desc \
	tests/cr/ipc_sysv.desc \
	tests/cr/itimers.desc \
	tests/cr/locks.desc \
	tests/cr/maps.desc \
	tests/cr/mem_anon.desc \
	tests/cr/mem_file_private.desc \
	tests/cr/mem_file_shared.desc \
	tests/cr/mem_shared_anon.desc \
	tests/cr/mm_fields.desc \
	tests/cr/mnt_ns.desc \
	tests/cr/mnt_refused_bind.desc \
	tests/cr/mnt_refused_mqueue.desc \
	tests/cr/mnt_refused_size.desc \
	tests/cr/mprotect.desc \
	tests/cr/netns.desc \
	tests/cr/pending.desc \
	tests/cr/personality.desc \
	tests/cr/pgrp.desc \
	tests/cr/pgrp_orphan.desc \
	tests/cr/pidns.desc \
	tests/cr/pidns_nested.desc \
	tests/cr/pipe.desc \
	tests/cr/posix_timers.desc \
	tests/cr/prctl.desc \
	tests/cr/real_pipeline.desc \
	tests/cr/real_python.desc \
	tests/cr/real_shell.desc \
	tests/cr/real_shm4.desc \
	tests/cr/rlimits.desc \
	tests/cr/robust.desc \
	tests/cr/rseq.desc \
	tests/cr/seize_race.desc \
	tests/cr/sigactions.desc \
	tests/cr/sigaltstack.desc \
	tests/cr/sk_unix_dgram.desc \
	tests/cr/sk_unix_seqpacket.desc \
	tests/cr/sk_unix_stream.desc \
	tests/cr/signalfd.desc \
	tests/cr/sparse.desc \
	tests/cr/stack.desc \
	tests/cr/threads.desc \
	tests/cr/timerfd.desc \
	tests/cr/tree.desc \
	tests/cr/tty_ctty.desc \
	tests/cr/tty_pty.desc \
	tests/cr/umask.desc \
	tests/cr/uts_ns.desc \
	tests/cr/vdso.desc \
	tests/cr/zombie.desc
TESTS += $(CR_TEST_DESCS)
# Scripts that drive crtool themselves (external descriptors, faults).
CR_SCRIPT_TESTS = tests/cr/external.sh tests/cr/faults.sh tests/cr/tty_external.sh \
	tests/cr/sk_unix_external.sh
TESTS += $(CR_SCRIPT_TESTS)
EXTRA_DIST += $(CR_SCRIPT_TESTS) tests/cr/script-prologue.sh
# The sidecar is the test: the driver runs `bash run.sh tests/cr/NAME.desc`.
TEST_EXTENSIONS = .desc
DESC_LOG_COMPILER = bash $(srcdir)/tests/cr/run.sh
AM_TESTS_ENVIRONMENT = \
	CRTOOL=$${CRTOOL:-$(abs_top_builddir)/crtool}; \
	CR_TESTDIR=$(abs_top_builddir)/tests/cr; \
	export CRTOOL CR_TESTDIR;

EXTRA_DIST += $(CR_TEST_DESCS) tests/cr/run.sh tests/cr/README.md tests/cr/real_python.py

# Scratch directories of failed runs are kept in $TMPDIR (cr-NAME.*) and
# named in the log; nothing is left in the build tree.

# Sockets (src/cr/sk-inet.c, sk-netlink.c): TCP, UDP, netlink.
CR_SK_TESTS = tests/cr/sk_tcp_pair tests/cr/sk_tcp_listen tests/cr/sk_udp tests/cr/sk_netlink
check_PROGRAMS += $(CR_SK_TESTS)
tests_cr_sk_tcp_pair_SOURCES = tests/cr/sk_tcp_pair.c tests/cr/skstream.h
tests_cr_sk_tcp_pair_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_tcp_pair_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_tcp_pair_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sk_tcp_listen_SOURCES = tests/cr/sk_tcp_listen.c tests/cr/skstream.h
tests_cr_sk_tcp_listen_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_tcp_listen_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_tcp_listen_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sk_udp_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_udp_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_udp_LDADD = $(CR_TEST_LINK_LIBS)
tests_cr_sk_netlink_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_netlink_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_netlink_LDADD = $(CR_TEST_LINK_LIBS)
check_PROGRAMS += tests/cr/sk_tcp_peer
tests_cr_sk_tcp_peer_SOURCES = tests/cr/sk_tcp_peer.c tests/cr/skstream.h
tests_cr_sk_tcp_peer_CFLAGS = $(CR_TEST_COMPILE_FLAGS)
tests_cr_sk_tcp_peer_LDFLAGS = $(CR_TEST_LINK_FLAGS)
tests_cr_sk_tcp_peer_LDADD = $(CR_TEST_LINK_LIBS)
CR_SK_DESCS = $(CR_SK_TESTS:=.desc)
TESTS += $(CR_SK_DESCS)
EXTRA_DIST += $(CR_SK_DESCS)
CR_SCRIPT_TESTS += tests/cr/sk_tcp_ext.sh tests/cr/sk_tcp_killed.sh
