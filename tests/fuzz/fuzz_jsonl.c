/*
 * fuzz_jsonl - the JSON Lines reader of contacts/jsonl.c on arbitrary
 * bytes.
 *
 * The first input byte picks small or default limits; the rest is read
 * twice: whole, and in chunks of sizes drawn from a PRNG seeded by the
 * input (empty feeds included).
 *
 * What must hold:
 *   1. every key and value handed out is valid UTF-8 without NUL bytes;
 *      a row has at most keys_max keys; an error row has no keys and an
 *      error that starts with "line N";
 *   2. line numbers start at 1, increase strictly and never pass the
 *      number of LFs + 1;
 *   3. both reads give the same rows (compared as a hash) and the same
 *      result from jsonl_finish;
 *   4. no crash, hang or leak (run it under ASan/LSan).
 *
 * See fuzz_main.c for how to run it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts/jsonl.h"
#include "fuzz.h"

const char *const fuzz_seeds[] = {
	"\x02{\"email\":\"a@b.example\",\"name\":\"A\"}\n{\"email\":\"c@d\"}",
	"\x02\xef\xbb\xbf{\"a\":\"1\"}\r\n\r\n  \n{\"a\":null,\"b\":true}\r\n",
	"\x02{\"id\":1,\"email\":\"john@example.com\",\"attribs\":{\"city\":"
	"\"Bengaluru\",\"projects\":3},\"lists\":[{\"id\":1}]}\n",
	"\x02{\"n\":12345678901234567,\"r\":-0.1e-5,\"s\":"
	"\"\\ud83d\\ude00\\u00e9"
	"\\n\"}\n{\"a\":}\n[1]\n",
	"\x01{\"a\":\"0123456789012345678901234567890\"}\n{\"a\":1,\"b\":2,"
	"\"c\":3,\"d\":4}\n{\"a\":1,\"a\":2}\n",
	"\x02{\"a\":\"M\xfcller\"}\n{\"\\u0000\":1}\n{\"a\":[[[[{}]]]]}\n",
	"\x02{\"fields\":{\"x\":{\"y\":1}},\"custom_fields\":{\"z\":\"\\\"\"}}",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

struct check {
	struct jsonl_limits lim;
	uint64_t hash;
	unsigned long last_line, max_line;
	size_t rows;
};

/* hash_add - FNV-1a over n bytes */
static void
hash_add(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		*h ^= *s++;
		*h *= 1099511628211ULL;
	}
}

/* utf8_ok - whether s is valid UTF-8 (no overlongs, surrogates) */
static bool
utf8_ok(const unsigned char *s)
{
	size_t i = 0, n = strlen((const char *)s), len, k;
	uint32_t u;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0)
			len = 2, u = s[i] & 0x1f;
		else if ((s[i] & 0xf0) == 0xe0)
			len = 3, u = s[i] & 0x0f;
		else if ((s[i] & 0xf8) == 0xf0)
			len = 4, u = s[i] & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			u = u << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && u < 0x80) || (len == 3 && u < 0x800) ||
		    (len == 4 && u < 0x10000) || u > 0x10ffff ||
		    (u >= 0xd800 && u <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* on_row - check one row and fold it into the hash */
static int
on_row(void *arg, const struct jsonl_row *row)
{
	struct check *c = arg;
	char prefix[32];
	size_t i;

	CHECK(row->line >= 1 && row->line > c->last_line);
	CHECK(row->line <= c->max_line);
	c->last_line = row->line;
	c->rows++;
	hash_add(&c->hash, &row->line, sizeof(row->line));
	if (row->error != NULL) {
		CHECK(row->n == 0);
		snprintf(prefix, sizeof(prefix), "line %lu", row->line);
		CHECK(strncmp(row->error, prefix, strlen(prefix)) == 0);
		CHECK(utf8_ok((const unsigned char *)row->error));
		hash_add(&c->hash, row->error, strlen(row->error));
		return 0;
	}
	CHECK(row->n <= c->lim.keys_max);
	hash_add(&c->hash, &row->n, sizeof(row->n));
	for (i = 0; i < row->n; i++) {
		CHECK(utf8_ok((const unsigned char *)row->keys[i]));
		CHECK(utf8_ok((const unsigned char *)row->values[i]));
		hash_add(&c->hash, row->keys[i], strlen(row->keys[i]) + 1);
		hash_add(&c->hash, row->values[i], strlen(row->values[i]) + 1);
	}
	return 0;
}

/* read_all - read in[0..n) in chunks (whole if seed is 0); finish's rc */
static int
read_all(struct check *c, const uint8_t *in, size_t n, uint32_t seed)
{
	struct jsonl *r = jsonl_new(&c->lim, on_row, c);
	char err[256];
	size_t off = 0, k;
	int rc;

	CHECK(r != NULL);
	while (off < n) {
		k = n - off;
		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			k = (seed >> 16) % (seed & 0x100 ? 5 : 300);
			k = k < n - off ? k : n - off;
		}
		rc = jsonl_feed(r, in + off, k, err, sizeof(err));
		CHECK(rc == 0);
		off += k;
	}
	rc = jsonl_finish(r, err, sizeof(err));
	CHECK(rc == 0);
	CHECK(jsonl_finish(r, err, sizeof(err)) == -1);
	jsonl_free(&r);
	CHECK(r == NULL);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct jsonl_limits small = { 32, 3 };
	struct check whole, chunked;
	size_t i;
	uint32_t seed = 2166136261u;
	int rc1, rc2;

	if (size < 1)
		return 0;
	memset(&whole, 0, sizeof(whole));
	if (data[0] & 0x01)
		whole.lim = small;
	else
		whole.lim =
		    (struct jsonl_limits){ JSONL_LINE_MAX, JSONL_KEYS_MAX };
	whole.max_line = 1;
	for (i = 1; i < size; i++) {
		whole.max_line += data[i] == '\n';
		seed = (seed ^ data[i]) * 16777619u;
	}
	chunked = whole;
	rc1 = read_all(&whole, data + 1, size - 1, 0);
	rc2 = read_all(&chunked, data + 1, size - 1, seed | 1);
	CHECK(rc1 == rc2);
	CHECK(whole.rows == chunked.rows);
	CHECK(whole.hash == chunked.hash);
	return 0;
}
