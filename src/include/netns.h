/* The network namespace a tree owns (netns.c). */
#ifndef CR_NETNS_H
#define CR_NETNS_H

#include <sys/types.h>

/* Save the links, addresses, routes and sysctls of pid's namespace in netns.img. */
int netns_dump(pid_t pid, int dirfd, const char *dir);
/* Rebuild them in the (new, empty) namespace nsfd. */
int netns_restore(int dirfd, const char *dir, int nsfd);

#endif
