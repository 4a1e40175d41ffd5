/* Unix seqpacket sockets: see sk_unix_common.c. */
#include "crtest.h"
#include "sk_unix.h"

#include <sys/socket.h>

int main(int argc, char **argv)
{
	return sk_unix_main(argc, argv, SOCK_SEQPACKET);
}
