/*
 * Sequence-numbered TCP streams for the socket tests. Each direction of a
 * connection carries 8-byte little-endian words 0, 1, 2...; the writer ends
 * it with the word (1 << 63 | number of words sent) and shutdown(SHUT_WR).
 * The reader checks every word as it arrives: a lost, repeated or altered
 * byte anywhere, or a missing tail, is a failure naming the offset.
 */
#ifndef CR_SKSTREAM_H
#define CR_SKSTREAM_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crtest.h"

#define SKS_END (1ULL << 63)

struct sks {
	const char *name;
	int fd;
	uint64_t sent, rcvd;		/* bytes */
	uint64_t end_at;		/* byte offset where our end word starts, once ending */
	bool ending, wr_done, rd_done, end_seen;
	uint8_t word[8];		/* the word being received */
};

static inline uint8_t sks_byte(uint64_t off, bool ending, uint64_t end_at)
{
	uint64_t w = off / 8;

	if (ending && off >= end_at)
		w = SKS_END | (end_at / 8);
	return (uint8_t)(w >> (8 * (off % 8)));
}

/* Write what can be written now (up to max bytes of the sequence). */
static inline int sks_write(struct sks *s, size_t max)
{
	uint8_t buf[16384];
	size_t len = max < sizeof(buf) ? max : sizeof(buf);
	ssize_t n;

	if (s->wr_done)
		return 0;
	if (s->ending)
		len = s->end_at + 8 - s->sent;
	for (size_t i = 0; i < len; i++)
		buf[i] = sks_byte(s->sent + i, s->ending, s->end_at);
	n = send(s->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	s->sent += n;
	if (s->ending && s->sent == s->end_at + 8) {
		if (shutdown(s->fd, SHUT_WR) < 0)
			return -errno;
		s->wr_done = true;
	}
	return 0;
}

/* Stop the sequence at the next word boundary and append the end word. */
static inline void sks_end(struct sks *s)
{
	if (!s->ending && !s->wr_done) {
		s->end_at = (s->sent + 7) / 8 * 8;
		s->ending = true;
	}
}

/* Read what is there; check each byte. Returns -1 on a failure (logged). */
static inline int sks_read(struct sks *s)
{
	uint8_t buf[16384];
	ssize_t n;

	if (s->rd_done)
		return 0;
	n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : (cr_fail("%s: recv: %s", s->name, strerror(errno)), -1);
	if (n == 0) {
		if (!s->end_seen) {
			cr_fail("%s: EOF after %llu bytes, before the end word", s->name, (unsigned long long)s->rcvd);
			return -1;
		}
		s->rd_done = true;
		return 0;
	}
	for (ssize_t i = 0; i < n; i++) {
		uint64_t w = 0;

		if (s->end_seen) {
			cr_fail("%s: %zd bytes after the end word", s->name, n - i);
			return -1;
		}
		s->word[s->rcvd++ % 8] = buf[i];
		if (s->rcvd % 8)
			continue;
		for (int k = 7; k >= 0; k--)
			w = w << 8 | s->word[k];
		if (w == (SKS_END | (s->rcvd / 8 - 1))) {
			s->end_seen = true;
		} else if (w != s->rcvd / 8 - 1) {
			cr_fail("%s: word %llu is %#llx", s->name, (unsigned long long)(s->rcvd / 8 - 1),
				(unsigned long long)w);
			return -1;
		}
	}
	return 0;
}

/* Fill the connection until the kernel takes no more (send queue and the peer's receive queue). */
static inline int sks_fill(struct sks *s)
{
	for (;;) {
		uint64_t before = s->sent;

		if (sks_write(s, 16384) < 0)
			return -1;
		if (s->sent == before)
			return 0;
	}
}

/* Ends every stream and runs them all to their end, both ways. */
static inline void sks_finish(struct sks *const *v, int n)
{
	uint64_t t0 = cr_now_ns();

	for (int i = 0; i < n; i++)
		sks_end(v[i]);
	for (;;) {
		struct pollfd p[16];
		bool all = true;

		for (int i = 0; i < n; i++) {
			p[i] = (struct pollfd){ .fd = v[i]->fd, .events = (v[i]->rd_done ? 0 : POLLIN) |
							     (v[i]->wr_done ? 0 : POLLOUT) };
			all = all && v[i]->rd_done && v[i]->wr_done;
		}
		if (all)
			return;
		if (cr_now_ns() - t0 > 60ULL * 1000000000) {
			for (int i = 0; i < n; i++)
				if (!v[i]->rd_done || !v[i]->wr_done)
					cr_fail("%s: not finished (sent %llu, received %llu)", v[i]->name,
						(unsigned long long)v[i]->sent, (unsigned long long)v[i]->rcvd);
			return;
		}
		poll(p, n, 100);
		for (int i = 0; i < n; i++) {
			if (sks_write(v[i], 16384) < 0) {
				cr_fail("%s: send: %s", v[i]->name, strerror(errno));
				v[i]->wr_done = true;
			}
			if (sks_read(v[i]) < 0)
				v[i]->rd_done = true;
		}
	}
}

#endif
