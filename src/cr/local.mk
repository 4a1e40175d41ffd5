# libcr: the checkpoint/restore engine; crtool: its command line.
PROTO_FILES = src/cr/images/inventory.proto src/cr/images/pstree.proto \
	src/cr/images/core.proto src/cr/images/mm.proto \
	src/cr/images/pagemap.proto src/cr/images/fdinfo.proto \
	src/cr/images/netns.proto src/cr/images/ns.proto src/cr/images/ipc.proto \
	src/cr/images/mnt.proto src/cr/images/sk-unix.proto src/cr/images/sk-inet.proto
PROTO_C = $(PROTO_FILES:.proto=.pb-c.c)
PROTO_H = $(PROTO_FILES:.proto=.pb-c.h)
EXTRA_DIST += $(PROTO_FILES)
BUILT_SOURCES += $(PROTO_C) $(PROTO_H)
CLEANFILES += $(PROTO_C) $(PROTO_H)

src/cr/images/%.pb-c.c src/cr/images/%.pb-c.h: $(srcdir)/src/cr/images/%.proto
	$(AM_V_GEN)$(MKDIR_P) src/cr/images && \
	$(PROTOC_C) --proto_path=$(srcdir)/src/cr/images --c_out=src/cr/images $<

noinst_LIBRARIES += libcr.a
libcr_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) $(LZ4_CFLAGS) $(LIBNL_CFLAGS) $(NFTABLES_CFLAGS)
libcr_a_SOURCES = \
	src/cr/log.c src/cr/util.c src/cr/image.c src/cr/proc.c \
	src/cr/seize.c src/cr/rsys.c src/cr/pstree.c src/cr/mem.c \
	src/cr/files.c src/cr/fd-pipe.c src/cr/fd-anon.c src/cr/ghost.c src/cr/external.c \
	src/cr/ns.c src/cr/ipc.c src/cr/mnt.c src/cr/fd-mqueue.c src/cr/netns.c src/cr/fd-tty.c \
	src/cr/sk-unix.c \
	src/cr/sk-inet.c src/cr/sk-netlink.c src/cr/netlock.c \
	src/cr/task.c src/cr/dump.c src/cr/restore.c \
	src/cr/pidns.c \
	src/cr/kerndat.c src/cr/show.c \
	src/arch/x86_64/arch.c src/arch/x86_64/gadget.S
nodist_libcr_a_SOURCES = $(PROTO_C) $(PROTO_H)
CR_LIBS = libcr.a $(PROTOBUF_C_LIBS) $(LZ4_LIBS) $(LIBNL_LIBS) $(NFTABLES_LIBS) -lpthread

bin_PROGRAMS += crtool
crtool_SOURCES = src/cr/crtool.c
crtool_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
crtool_LDADD = $(CR_LIBS)
