# crlaunch (the job launcher), crctl (its control client) and crinit (PID 1
# of a job container: part of every checkpoint, so no sanitizers and no libcr).
LAUNCHER_COMMON = src/launcher/launch.h src/launcher/hash.c src/launcher/hash.h \
	src/launcher/ident.c src/launcher/manifest.c src/launcher/epoch.c

bin_PROGRAMS += crlaunch crctl
crlaunch_SOURCES = src/launcher/crlaunch.c src/launcher/crlaunch.h src/launcher/container.c \
	src/launcher/checkpoint.c src/launcher/control.c $(LAUNCHER_COMMON)
crlaunch_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS) -DCRINIT_PATH='"$(pkglibexecdir)/crinit"'
crlaunch_LDADD = $(CR_LIBS)
crctl_SOURCES = src/launcher/crctl.c $(LAUNCHER_COMMON)
crctl_CFLAGS = $(AM_CFLAGS)
crctl_LDADD = libcr.a

pkglibexec_PROGRAMS = crinit
crinit_SOURCES = src/launcher/crinit.c
crinit_CFLAGS = $(CR_CFLAGS)
crinit_LDFLAGS =
