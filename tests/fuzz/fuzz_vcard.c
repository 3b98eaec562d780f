/*
 * fuzz_vcard - the streaming vCard reader of contacts/vcard.c on
 * arbitrary bytes.
 *
 * The input is read twice under each of two sets of limits (small ones
 * that inputs reach, and the defaults): whole, and in chunks of sizes
 * drawn from a generator seeded by the input.
 *
 * What must hold:
 *   1. every string of a card is valid UTF-8, at most twice line_max
 *      octets (Latin-1 conversion may double a line); a card has at
 *      most emails_max addresses, each with a pref of 0 to 100;
 *   2. the line numbers of the cards (read or skipped) never go down;
 *      a skipped card comes with an error that names a line;
 *   3. whole and chunked reads give the same cards and errors (hash);
 *   4. vcard_finish returns the number of cards read; no crash, hang
 *      or leak (run it under ASan/LSan).
 *
 * See fuzz_main.c for how to run it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts/vcard.h"
#include "fuzz.h"

#define INPUT_MAX (256 * 1024)

const char *const fuzz_seeds[] = {
	"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Appleseed;Johnny;;;\r\n"
	"FN:Johnny Appleseed\r\nORG:Apple Inc.;Eng\r\n"
	"item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r\n"
	"EMAIL;type=INTERNET;type=WORK:j@work.example\r\nEND:VCARD\r\n",
	"\xef\xbb\xbf"
	"BEGIN:VCARD\nVERSION:4.0\nFN:Simon\nEMAIL;TYPE=work,pref:s@v.ca\n"
	"EMAIL;PREF=2;TYPE=\"home,x\":h@x\nEND:VCARD\n",
	"BEGIN:VCARD\r\nVERSION:2.1\r\n"
	"N;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:M=FCller;J=FCrgen\r\n"
	"FN;CHARSET=ISO-8859-1;QUOTED-PRINTABLE:J=FCrgen =\r\nM=FCller\r\n"
	"EMAIL;PREF;INTERNET:jm@example.de\r\nEND:VCARD\r\n",
	"BEGIN:VCARD\nFN:Very\n  Long\nN:Lo\n\tng;V\nEMAIL:a\\,b@x\n"
	"FN:S\\, J\\; \\\\\\n\nEND:VCARD\nBEGIN:VCARD\nFN:A\nBEGIN:VCARD\n"
	"FN:B\nEND:VCARD\nBEGIN:VCARD\nFN:open\n",
	"BEGIN:VCARD\nEMAIL:1\nEMAIL:2\nEMAIL:3\nEMAIL:4\nEMAIL:5\nEND:VCARD\n"
	"BEGIN:VCARD\nFN:caf\xe9\nORG;ENCODING=QUOTED-PRINTABLE:a=00=FF=\n"
	"=C3=\n=A9\nEND:VCARD\n",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

struct state {
	const struct vcard_limits *lim;
	uint64_t hash;
	unsigned long last_line;
	long cards;
};

/* mix - fold n bytes into an FNV-1a hash */
static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

/* utf8_ok - whether s is well-formed UTF-8 */
static bool
utf8_ok(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, need, cp, min;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += need + 1;
	}
	return true;
}

/* field - invariant 1 on one string, and into the hash */
static void
field(struct state *st, const char *s)
{
	if (s == NULL) {
		st->hash = mix(st->hash, "\1", 1);
		return;
	}
	CHECK(utf8_ok((const unsigned char *)s));
	CHECK(strlen(s) <= 2 * st->lim->line_max);
	st->hash = mix(st->hash, s, strlen(s) + 1);
}

/* on_card - invariants 1 and 2 */
static void
on_card(void *arg, const struct vcard *c, const char *error)
{
	struct state *st = arg;

	CHECK(c != NULL && c->line >= 1 && c->line >= st->last_line);
	st->last_line = c->line;
	st->hash = mix(st->hash, &c->line, sizeof(c->line));
	if (error != NULL) {
		CHECK(strncmp(error, "line ", 5) == 0);
		st->hash = mix(st->hash, error, strlen(error) + 1);
		return;
	}
	st->cards++;
	field(st, c->version);
	field(st, c->fn);
	field(st, c->family);
	field(st, c->given);
	field(st, c->org);
	CHECK(c->nemails <= st->lim->emails_max);
	for (size_t i = 0; i < c->nemails; i++) {
		CHECK(c->emails[i].value != NULL && c->emails[i].types != NULL);
		CHECK(c->emails[i].pref <= 100);
		field(st, c->emails[i].value);
		field(st, c->emails[i].types);
		st->hash = mix(st->hash, &c->emails[i].pref, sizeof(unsigned));
	}
}

/* read_all - the hash of data read in chunks from a seeded generator */
static uint64_t
read_all(const uint8_t *data, size_t size, const struct vcard_limits *lim,
    uint64_t seed)
{
	struct state st = { lim, 0xcbf29ce484222325ULL, 0, 0 };
	struct vcard_reader *r = vcard_new(lim, on_card, &st);
	char err[256];
	size_t i = 0;
	long n;

	while (i < size) {
		size_t chunk = size - i;

		if (seed != 0) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			chunk = 1 + (size_t)(seed % (seed & 1 ? 3 : 97));
			if (chunk > size - i)
				chunk = size - i;
		}
		CHECK(vcard_feed(r, data + i, chunk, err, sizeof(err)) == 0);
		i += chunk;
	}
	n = vcard_finish(r, err, sizeof(err));
	CHECK(n == st.cards);
	vcard_free(&r);
	CHECK(r == NULL);
	return st.hash;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcard_limits small = { 256, 16, 4, 2048 }, dflt;
	uint64_t seed = mix(0x9e3779b97f4a7c15ULL, data, size) | 1;

	if (size > INPUT_MAX)
		return 0;
	vcard_limits_default(&dflt);
	CHECK(read_all(data, size, &small, 0) ==
	    read_all(data, size, &small, seed));
	CHECK(read_all(data, size, &dflt, 0) ==
	    read_all(data, size, &dflt, seed));
	return 0;
}
