/* Unix socket tests (sk_unix_stream, sk_unix_dgram, sk_unix_seqpacket): one body, three types. */
#ifndef CR_SK_UNIX_H
#define CR_SK_UNIX_H

int sk_unix_main(int argc, char **argv, int type);

#endif
