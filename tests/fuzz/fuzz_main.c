/*
 * fuzz_main - a standalone driver for the libFuzzer-style targets in this
 * directory, so that they build with any compiler and run as a bounded
 * `meson test --suite fuzz` (under ASan/UBSan in CI).
 *
 *   fuzz_smtp_cmd FILE...   run the target once on each file (a corpus,
 *                           or a crash file that libFuzzer wrote)
 *   fuzz_smtp_cmd --write-seeds DIR
 *                           write the seeds to DIR/seed-N, to start a
 *                           libFuzzer corpus
 *   fuzz_smtp_cmd           run each seed of the target, then
 *                           FUZZ_ITERATIONS (default 20000) inputs made by
 *                           mutating the seeds with a PRNG started from
 *                           FUZZ_SEED (default fixed): the same inputs on
 *                           every run, so a failure reproduces.
 *
 * Each target defines LLVMFuzzerTestOneInput() and fuzz_seeds[] /
 * fuzz_nseeds; a target aborts when one of its invariants breaks.
 *
 * Coverage-guided fuzzing with libFuzzer (clang), from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -I. -Isrc -o /tmp/fuzz_smtp_cmd tests/fuzz/fuzz_smtp_cmd.c \
 *       src/mail/address.c src/mail/smtp_cmd.c src/mail/header.c \
 *       src/lib/buf.c src/lib/log.c src/lib/util.c -lidn2 -lsodium
 *   mkdir -p /tmp/corpus && build/tests/fuzz/fuzz_smtp_cmd --write-seeds \
 *       /tmp/corpus && /tmp/fuzz_smtp_cmd -max_total_time=600 \
 *       -max_len=1024 /tmp/corpus
 *
 * (likewise fuzz_header and fuzz_address).  Or through Meson, which
 * builds fuzz_<name>_libfuzzer when the compiler is clang:
 *
 *   CC=clang meson setup build-fuzz -Db_sanitize=address,undefined \
 *       -Dc_args=-fsanitize=fuzzer-no-link -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz/fuzz_smtp_cmd_libfuzzer
 *
 * A crash file is replayed with this driver: fuzz_smtp_cmd crash-<sha1>.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

#define FUZZ_MAX_LEN 4096

static uint64_t rng_state;

/* rng - xorshift64*: small, fast and the same everywhere */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t
rng_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rng() % n);
}

/* Bytes and strings that parsers of mail syntax care about. */
static const char *const dict[] = {
	"<",
	">",
	"@",
	"\"",
	"\\",
	"(",
	")",
	"[",
	"]",
	":",
	";",
	",",
	".",
	" ",
	"=",
	"+",
	"+2B",
	"+00",
	"+zz",
	"\r\n",
	"\r\n ",
	"\n\t",
	"\r",
	"\0",
	"\x7f",
	"\xc3\xbc",
	"\xe2\x82\xac",
	"\xf0\x9f\x98\x80",
	"\xff",
	"\xc0\xaf",
	"\xed\xa0\x80",
	"\xe2\x80\x8d",
	"IPv6:",
	"xn--",
	"xn--bcher-kva",
	"-",
	"SIZE=",
	"BODY=8BITMIME",
	"NOTIFY=",
	"ORCPT=rfc822;",
	"ORCPT=utf-8;",
	"SMTPUTF8",
	"ENVID=",
	"AUTH=",
	"RET=HDRS",
	"postmaster",
	"FROM:",
	"TO:",
	"<>",
	"@a.example:",
	"[1.2.3.4]",
	"[IPv6:::1]",
	"18446744073709551616",
	"LAST",
	"=?UTF-8?B?",
	"?=",
	":;",
	"((",
	"))",
};

/* mutate - change buf (len bytes, room for cap) in place; new length */
static size_t
mutate(char *buf, size_t len, size_t cap)
{
	/* mostly one or two changes, so that most inputs stay nearly valid */
	size_t n = rng_below(8) == 0 ? 1 + rng_below(8) : 1 + rng_below(2);

	for (size_t k = 0; k < n; k++) {
		size_t pos = rng_below(len + 1), m;
		const char *s;

		switch (rng_below(8)) {
		case 0: /* flip a bit */
			if (len > 0)
				buf[rng_below(len)] ^=
				    (char)(1u << rng_below(8));
			break;
		case 1: /* a random byte */
			if (len > 0)
				buf[rng_below(len)] = (char)rng();
			break;
		case 2: /* insert a dictionary entry */
		case 3:
			s = dict[rng_below(sizeof(dict) / sizeof(dict[0]))];
			m = s[0] == '\0' ? 1 : strlen(s);
			if (len + m > cap)
				break;
			memmove(buf + pos + m, buf + pos, len - pos);
			memcpy(buf + pos, s, m);
			len += m;
			break;
		case 4: /* delete a range */
			m = rng_below(len - (pos < len ? pos : len) + 1);
			if (pos >= len)
				break;
			memmove(buf + pos, buf + pos + m, len - pos - m);
			len -= m;
			break;
		case 5: /* repeat a range */
			if (pos >= len)
				break;
			m = 1 + rng_below(len - pos);
			for (size_t r = rng_below(16); r > 0 && len + m <= cap;
			     r--) {
				memmove(buf + pos + m, buf + pos, len - pos);
				len += m;
			}
			break;
		case 6: { /* splice in part of another seed */
			const char *o = fuzz_seeds[rng_below(fuzz_nseeds)];
			size_t olen = strlen(o), from = rng_below(olen + 1);

			m = rng_below(olen - from + 1);
			if (len + m > cap)
				break;
			memmove(buf + pos + m, buf + pos, len - pos);
			memcpy(buf + pos, o + from, m);
			len += m;
			break;
		}
		default: /* truncate */
			len = pos;
			break;
		}
	}
	return len;
}

/* run - call the target on an exact-size heap copy, so ASan sees overreads */
static void
run(const char *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

static int
run_file(const char *path)
{
	char *data = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			data = realloc(data, cap);
			if (data == NULL)
				abort();
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	run(data, len);
	free(data);
	return 0;
}

/* write_seeds - the seeds as files DIR/seed-N */
static int
write_seeds(const char *dir)
{
	char path[4096];

	for (size_t i = 0; i < fuzz_nseeds; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%zu", dir, i);
		if ((f = fopen(path, "wb")) == NULL) {
			perror(path);
			return 1;
		}
		fwrite(fuzz_seeds[i], 1, strlen(fuzz_seeds[i]), f);
		if (fclose(f) != 0) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static char buf[FUZZ_MAX_LEN];
	const char *e;
	long iterations = 20000;
	int rc = 0;

	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
		return write_seeds(argv[2]);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_file(argv[i]) < 0)
				rc = 1;
		printf("%s: ran %d file(s)\n", argv[0], argc - 1);
		return rc;
	}
	rng_state = 0x9e3779b97f4a7c15ULL;
	if ((e = getenv("FUZZ_SEED")) != NULL)
		rng_state = strtoull(e, NULL, 0) | 1;
	if ((e = getenv("FUZZ_ITERATIONS")) != NULL)
		iterations = strtol(e, NULL, 10);
	for (size_t i = 0; i < fuzz_nseeds; i++)
		run(fuzz_seeds[i], strlen(fuzz_seeds[i]));
	size_t len = 0;
	for (long it = 0; it < iterations; it++) {
		if (it % 500 == 0) {
			/* now and then, plain noise */
			len = rng_below(256);
			for (size_t i = 0; i < len; i++)
				buf[i] = (char)rng();
		} else if (it % 8 != 0) {
			/* keep mutating the last input: changes pile up */
			len = mutate(buf, len, sizeof(buf));
		} else {
			const char *s = fuzz_seeds[rng_below(fuzz_nseeds)];

			len = strlen(s);
			if (len > sizeof(buf))
				len = sizeof(buf);
			memcpy(buf, s, len);
			len = mutate(buf, len, sizeof(buf));
		}
		run(buf, len);
	}
	printf("%s: %zu seeds, %ld mutated inputs, no failure\n", argv[0],
	    fuzz_nseeds, iterations);
	return 0;
}
