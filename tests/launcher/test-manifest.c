/*
 * Unit tests of the launcher's on-disk formats: XXH64 against the published
 * test vectors, MANIFEST formatting and parsing, escaping, and the parser on
 * every truncation, every byte flip, and random damage (run under ASan in a
 * --enable-sanitizers build).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/tap.h"
#include "hash.h"
#include "launch.h"
#include "log.h"
#include "util.h"

static void test_xxh64(void)
{
	static const struct { const char *s; uint64_t h; } v[] = {
		{ "", 0xEF46DB3751D8E999ull },
		{ "a", 0xD24EC4F1A98C6E5Bull },
		{ "abc", 0x44BC2CF5AD770999ull },
		{ "Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1ull },
	};
	char buf[1000];
	struct xxh64 h;

	for (size_t i = 0; i < ARRAY_SIZE(v); i++)
		ok(xxh64(v[i].s, strlen(v[i].s), 0) == v[i].h, "xxh64(\"%s\")", v[i].s);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31 + 7);
	xxh64_init(&h, 0);
	for (size_t i = 0; i < sizeof(buf); i += 13)
		xxh64_update(&h, buf + i, i + 13 > sizeof(buf) ? sizeof(buf) - i : 13);
	ok(xxh64_final(&h) == xxh64(buf, sizeof(buf), 0), "xxh64: streaming in 13-byte pieces = one call");
}

static void test_escape(void)
{
	static const char *const s[] = { "plain", "with space", "100%", "tab\there", "new\nline",
					 "caf\xc3\xa9", "" };

	for (size_t i = 0; i < ARRAY_SIZE(s); i++) {
		char *e = str_escape(s[i]), *u = str_unescape(e);

		ok(!strpbrk(e, " \t\n") && u && !strcmp(u, s[i]), "escape round trip (%s)", e);
		free(e);
		free(u);
	}
	ok(!str_unescape("%00") && !str_unescape("%G1") && !str_unescape("a b") && !str_unescape("%4"),
	   "unescape refuses NUL, bad hex, spaces and a cut escape");
}

static char *sample(size_t *len)
{
	static char *argv[] = { "mpirun", "-np", "4", "./app with space", "100%" };
	struct manifest m = { .epoch = 42, .time_ns = 1234567890123ull, .nr_nodes = 1, .init_pid = 777,
			      .processes = 5, .bytes = 1 << 20, .frozen_ns = 5000, .total_ns = 9000 };
	struct file_sum f[] = { { "node-000/core-1.img", 4096, 0x0123456789abcdefull },
				{ "node-000/pages 1.img", 0, 0xfedcba9876543210ull } };

	m.id.cwd = "/home/u/run dir";
	m.id.argv = argv;
	m.id.argc = ARRAY_SIZE(argv);
	m.external[STREAM_STDOUT] = "pipe:[123]";
	m.stream_bytes[STREAM_STDOUT] = 495;
	m.files = f;
	m.nr_files = ARRAY_SIZE(f);
	return manifest_format(&m, len);
}

static void test_round_trip(void)
{
	size_t len;
	char *text = sample(&len), err[128];
	struct manifest m;
	int r = manifest_parse(text, len, &m, err, sizeof(err));

	if (!ok(r == 0, "a formatted manifest parses")) {
		diag("%s", err);
		free(text);
		return;
	}
	ok(m.epoch == 42 && m.time_ns == 1234567890123ull && m.nr_nodes == 1 && m.init_pid == 777,
	   "epoch, time, nodes, init pid");
	ok(!strcmp(m.id.cwd, "/home/u/run dir") && m.id.argc == 5 && !strcmp(m.id.argv[3], "./app with space") &&
	   !strcmp(m.id.argv[4], "100%"), "identity");
	ok(!m.external[STREAM_STDIN] && !strcmp(m.external[STREAM_STDOUT], "pipe:[123]") &&
	   m.stream_bytes[STREAM_STDOUT] == 495, "streams");
	ok(m.processes == 5 && m.bytes == 1 << 20 && m.frozen_ns == 5000 && m.total_ns == 9000, "statistics");
	ok(m.nr_files == 2 && !strcmp(m.files[1].name, "node-000/pages 1.img") &&
	   m.files[0].size == 4096 && m.files[0].hash == 0x0123456789abcdefull, "files");
	manifest_free(&m);
	free(text);
}

static void test_damage(void)
{
	size_t len;
	char *text = sample(&len), err[128];
	struct manifest m;
	int bad = 0;

	for (size_t l = 0; l < len; l++)
		bad += manifest_parse(text, l, &m, err, sizeof(err)) == 0;
	ok(bad == 0, "every truncation is refused (%d accepted)", bad);
	for (size_t i = 0; i < len; i++) {
		text[i] ^= 0x01;
		if (manifest_parse(text, len, &m, err, sizeof(err)) == 0) {
			bad++;
			manifest_free(&m);
		}
		text[i] ^= 0x01;
	}
	ok(bad == 0, "every single-bit flip is refused (%d accepted)", bad);
	free(text);
}

/* A body with a correct end line: only the parser's own checks stand. */
static int parse_body(const char *body, struct manifest *m)
{
	char text[4096], err[128];
	int n = snprintf(text, sizeof(text), "%s", body);

	n += snprintf(text + n, sizeof(text) - n, "end %016llx\n", (unsigned long long)xxh64(text, n, 0));
	return manifest_parse(text, n, m, err, sizeof(err));
}

static void test_semantics(void)
{
	static const char head[] = "crlaunch-manifest 1\nepoch 1\ncwd /x\nargc 1\narg a\n";
	static const char *const refused[] = {
		"file ../etc/passwd 1 0000000000000000\n", "file /etc/passwd 1 0000000000000000\n",
		"file node-000/a 1 00000000\n", "file node-000/a -1 0000000000000000\n",
		"argc 2\n", "arg b\n", "epoch 1000000\n", "stream stdnothing 1\n", "nospace\n",
	};
	struct manifest m;
	char body[512];

	snprintf(body, sizeof(body), "%sfuture-key whatever\n", head);
	ok(parse_body(body, &m) == 0, "unknown keys are ignored");
	if (m.id.cwd)
		manifest_free(&m);
	ok(parse_body("crlaunch-manifest 1\nepoch 1\n", &m) < 0, "a manifest without identity is refused");
	ok(parse_body("crlaunch-manifest 2\nepoch 1\ncwd /x\nargc 0\n", &m) < 0, "another version is refused");
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		snprintf(body, sizeof(body), "%s%s", head, refused[i]);
		ok(parse_body(body, &m) < 0, "refused: %.*s", (int)strcspn(refused[i], "\n"), refused[i]);
	}
}

/* Random bytes and random edits, with a valid end line: no crash, no leak. */
static void test_random(void)
{
	size_t len;
	char *text = sample(&len), buf[4096];
	struct manifest m;
	unsigned seed = 12345;
	int accepted = 0;

	for (int round = 0; round < 20000; round++) {
		size_t n = len < sizeof(buf) - 64 ? len : sizeof(buf) - 64;
		char err[128];
		int k;

		memcpy(buf, text, n);
		for (int e = 0; e < 1 + round % 4; e++)
			buf[rand_r(&seed) % (n - 22)] = (char)(rand_r(&seed) % 256);
		n -= 21;	/* drop the end line and write a matching one */
		k = snprintf(buf + n, sizeof(buf) - n, "end %016llx\n", (unsigned long long)xxh64(buf, n, 0));
		if (manifest_parse(buf, n + k, &m, err, sizeof(err)) == 0) {
			accepted++;
			manifest_free(&m);
		}
	}
	ok(true, "20000 damaged manifests parsed without a crash (%d accepted)", accepted);
	free(text);
}

static void test_duration(void)
{
	uint64_t ns;

	ok(parse_duration("90", &ns) == 0 && ns == 90000000000ull, "90 = 90 s");
	ok(parse_duration("1500ms", &ns) == 0 && ns == 1500000000ull, "1500ms");
	ok(parse_duration("0.5", &ns) == 0 && ns == 500000000ull, "0.5 s");
	ok(parse_duration("2h", &ns) == 0 && ns == 7200000000000ull, "2h");
	ok(parse_duration("", &ns) < 0 && parse_duration("-1", &ns) < 0 && parse_duration("5x", &ns) < 0 &&
	   parse_duration("s", &ns) < 0, "bad durations refused");
}

int main(void)
{
	tap_init();
	cr_loglevel = 0;
	test_xxh64();
	test_escape();
	test_round_trip();
	test_damage();
	test_semantics();
	test_random();
	test_duration();
	return done_testing();
}
