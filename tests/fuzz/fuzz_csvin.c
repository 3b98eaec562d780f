/*
 * fuzz_csvin - the CSV/TSV reader of contacts/csvin.c on arbitrary bytes.
 *
 * The first input byte picks the delimiter (detected, ',', ';' or TAB),
 * small or default limits, and whether 64 KiB of ASCII go first, so
 * that the encoding is decided by records, not by the prefix (when it
 * is 0x10-0x17 and the input length is 1 modulo 4, as such inputs cost
 * much more).  The rest is read twice: whole, and in chunks of sizes
 * drawn from a PRNG seeded by the input (empty feeds included).
 *
 * What must hold:
 *   1. every field handed out is valid UTF-8, NUL-terminated, within
 *      the field limit; a record within the field count and record
 *      limits; a skipped record has a reason and no fields;
 *   2. line numbers start at 1, never decrease and never pass the
 *      number of LFs + 1;
 *   3. both reads give the same records (compared as a hash) and the
 *      same result from csvin_finish;
 *   4. no crash, hang or leak (run it under ASan/LSan).
 *
 * See fuzz_main.c for how to run it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts/csvin.h"
#include "fuzz.h"

#define PAD_LEN (64 * 1024)

const char *const fuzz_seeds[] = {
	"\x20"
	"first,last,address,city,zip\nJohn,Doe,120 any st.,\"Anytown, WW\","
	"08123",
	"\x20"
	"a,b\r\n1,\"ha \r\n\"\"ha\"\" \nha\"\r\n3,4\r\n",
	"\x20\xef\xbb\xbf"
	"E-mail Address;First Name;Last Name\nm\xfcller@x.example;J\xfcrgen;"
	"M\xfcller\n",
	"\x03"
	"email\tname\n a@b \t\" x \"\n\n\"open",
	"\x04"
	"a,b,c,d,e\n\"toolong field\",1\n1,2\nxxxxxxxxxxxxxxxxxxxxxxxx\n",
	"\x10"
	"name\n\xc3\xa9t\xc3\xa9\nM\xfcller\n\x80\x81\x9d\nx\n",
	"\x20\"a\"b,\"c\"\"\r\rd\"\"\"\n,,,\n \t ,\t\n",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

struct check {
	struct csvin_limits lim;
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

/* utf8_ok - whether s[0..n) is valid UTF-8 (no overlongs, surrogates) */
static bool
utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0, len, k;
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

/* on_row - check one record and fold it into the hash */
static int
on_row(void *arg, const struct csvin_row *row)
{
	struct check *c = arg;
	size_t i, total = 0;

	CHECK(row->line >= 1 && row->line >= c->last_line);
	CHECK(row->line <= c->max_line);
	c->last_line = row->line;
	CHECK(((row->flags & CSVIN_ROW_HEADER) != 0) == (c->rows == 0));
	c->rows++;
	if (row->flags & CSVIN_ROW_SKIPPED) {
		CHECK(row->reason != NULL && row->nfields == 0);
		hash_add(&c->hash, row->reason, strlen(row->reason));
	} else
		CHECK(row->reason == NULL && row->nfields >= 1);
	CHECK(row->nfields <= c->lim.max_fields);
	hash_add(&c->hash, &row->line, sizeof(row->line));
	hash_add(&c->hash, &row->flags, sizeof(row->flags));
	hash_add(&c->hash, &row->nfields, sizeof(row->nfields));
	for (i = 0; i < row->nfields; i++) {
		CHECK(row->lens[i] <= c->lim.max_field_bytes);
		CHECK(row->fields[i][row->lens[i]] == '\0');
		CHECK(utf8_ok(
		    (const unsigned char *)row->fields[i], row->lens[i]));
		total += row->lens[i];
		hash_add(&c->hash, &row->lens[i], sizeof(row->lens[i]));
		hash_add(&c->hash, row->fields[i], row->lens[i]);
	}
	CHECK(total <= c->lim.max_record_bytes);
	return 0;
}

/* read_all - read in[0..n) in chunks (whole if seed is 0); finish's rc */
static int
read_all(struct check *c, int delim, const uint8_t *in, size_t n, uint32_t seed)
{
	struct csvin *r = csvin_new(&c->lim, delim, on_row, c);
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
		rc = csvin_feed(r, in + off, k, err, sizeof(err));
		CHECK(rc == 0);
		off += k;
	}
	rc = csvin_finish(r, err, sizeof(err));
	CHECK(rc == 0 || (rc == -1 && strncmp(err, "line ", 5) == 0));
	csvin_free(&r);
	CHECK(r == NULL);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int delims[] = { 0, ',', ';', '\t' };
	static const struct csvin_limits small = { 4, 16, 40 };
	static uint8_t *buf;
	struct check whole, chunked;
	size_t n, i;
	uint32_t seed = 2166136261u;
	int rc1, rc2;

	if (size < 1)
		return 0;
	if (buf == NULL && (buf = malloc(PAD_LEN + 65536)) == NULL)
		abort();
	n = 0;
	if ((data[0] & 0xf8) == 0x10 && size % 4 == 1) {
		memset(buf, 'x', PAD_LEN - 1);
		buf[PAD_LEN - 1] = '\n';
		n = PAD_LEN;
	}
	if (size - 1 > 65536)
		size = 65537;
	memcpy(buf + n, data + 1, size - 1);
	n += size - 1;

	memset(&whole, 0, sizeof(whole));
	if (data[0] & 0x04)
		whole.lim = small;
	else
		whole.lim = (struct csvin_limits){ CSVIN_MAX_FIELDS,
			CSVIN_MAX_FIELD_BYTES, CSVIN_MAX_RECORD_BYTES };
	whole.max_line = 1;
	for (i = 0; i < n; i++) {
		whole.max_line += buf[i] == '\n';
		seed = (seed ^ buf[i]) * 16777619u;
	}
	chunked = whole;
	rc1 = read_all(&whole, delims[data[0] & 3], buf, n, 0);
	rc2 = read_all(&chunked, delims[data[0] & 3], buf, n, seed | 1);
	CHECK(rc1 == rc2);
	CHECK(whole.rows == chunked.rows);
	CHECK(whole.hash == chunked.hash);
	return 0;
}
