/*
 * test_vcard.c - the streaming vCard reader (contacts/vcard.c).
 *
 * Each card (or skipped card) is dumped to one text line and the dump
 * of an input is compared with the expected text; every input is also
 * fed one byte at a time and must give the same dump.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "contacts/vcard.h"

struct dump {
	char *s;
	size_t len;
};

/* put - append formatted text to d */
static void
put(struct dump *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	d->s = realloc(d->s, d->len + (size_t)n + 1);
	assert_non_null(d->s);
	va_start(ap, fmt);
	vsnprintf(d->s + d->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
}

/* on_card - the callback: one line per card */
static void
on_card(void *arg, const struct vcard *c, const char *error)
{
	struct dump *d = arg;

	if (error != NULL) {
		put(d, "%lu! %s\n", c->line, error);
		return;
	}
	put(d, "%lu v=%s fn=%s n=%s/%s org=%s", c->line,
	    c->version ? c->version : "-", c->fn ? c->fn : "-",
	    c->family ? c->family : "-", c->given ? c->given : "-",
	    c->org ? c->org : "-");
	for (size_t i = 0; i < c->nemails; i++)
		put(d, " <%s|%s|%u>", c->emails[i].value, c->emails[i].types,
		    c->emails[i].pref);
	put(d, "\n");
}

/* run - the dump of input read in chunks of chunk bytes (0: whole) */
static char *
run(const char *in, size_t len, size_t chunk, const struct vcard_limits *l)
{
	struct dump d = { calloc(1, 1), 0 };
	struct vcard_reader *r = vcard_new(l, on_card, &d);
	char err[256];
	long n;

	if (chunk == 0)
		chunk = len ? len : 1;
	for (size_t i = 0; i < len; i += chunk)
		assert_int_equal(
		    vcard_feed(r, in + i, len - i < chunk ? len - i : chunk,
			err, sizeof(err)),
		    0);
	n = vcard_finish(r, err, sizeof(err));
	assert_true(n >= 0);
	assert_int_equal(vcard_feed(r, "x", 1, err, sizeof(err)), -1);
	assert_int_equal(vcard_finish(r, err, sizeof(err)), -1);
	vcard_free(&r);
	assert_null(r);
	return d.s;
}

/* check_lim - in gives want, whole and one byte at a time */
static void
check_lim(const char *in, const char *want, const struct vcard_limits *l)
{
	char *whole = run(in, strlen(in), 0, l);
	char *bytes = run(in, strlen(in), 1, l);
	char *sevens = run(in, strlen(in), 7, l);

	assert_string_equal(whole, want);
	assert_string_equal(bytes, want);
	assert_string_equal(sevens, want);
	free(whole);
	free(bytes);
	free(sevens);
}

/* check - check_lim with the default limits */
static void
check(const char *in, const char *want)
{
	check_lim(in, want, NULL);
}

static void
test_apple_30(void **state)
{
	(void)state;
	check("BEGIN:VCARD\r\n"
	      "VERSION:3.0\r\n"
	      "PRODID:-//Apple Inc.//Mac OS X 10.15//EN\r\n"
	      "N:Appleseed;Johnny;;;\r\n"
	      "FN:Johnny Appleseed\r\n"
	      "ORG:Apple Inc.;Engineering\r\n"
	      "item1.EMAIL;type=INTERNET;type=pref:johnny@example.com\r\n"
	      "item1.X-ABLabel:_$!<Other>!$_\r\n"
	      "EMAIL;type=INTERNET;type=WORK:j.a@work.example\r\n"
	      "TEL;type=CELL;type=VOICE;type=pref:+1 555 0100\r\n"
	      "END:VCARD\r\n",
	    "1 v=3.0 fn=Johnny Appleseed n=Appleseed/Johnny org=Apple Inc."
	    " <johnny@example.com|internet|1> "
	    "<j.a@work.example|internet,work|0>\n");
}

static void
test_40(void **state)
{
	(void)state;
	check("BEGIN:VCARD\n"
	      "VERSION:4.0\n"
	      "FN:Simon Perreault\n"
	      "N:Perreault;Simon;;;ing. jr,M.Sc.\n"
	      "EMAIL;TYPE=work,pref:simon.perreault@viagenie.ca\n"
	      "EMAIL;PREF=2;TYPE=\"home,x-other\":sp@home.example\n"
	      "email;pref=1:first@example.org\n"
	      "END:VCARD\n",
	    "1 v=4.0 fn=Simon Perreault n=Perreault/Simon org=-"
	    " <simon.perreault@viagenie.ca|work|1>"
	    " <sp@home.example|home,x-other|2> <first@example.org||1>\n");
}

static void
test_21_qp_latin1(void **state)
{
	(void)state;
	check("BEGIN:VCARD\r\n"
	      "VERSION:2.1\r\n"
	      "N;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:M=FCller;J="
	      "FCrgen\r\n"
	      "FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:J=FCrgen =\r\n"
	      "M=FC=\r\n"
	      "ller\r\n"
	      "ORG;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Caf=C3=A9 S=\r\n"
	      "A\r\n"
	      "EMAIL;PREF;INTERNET:jm@example.de\r\n"
	      "EMAIL;INTERNET:x=41@example.de\r\n"
	      "NOTE;QUOTED-PRINTABLE:line=0D=0Anext=\r\n"
	      "END:VCARD=\r\n"
	      "\r\n"
	      "END:VCARD\r\n",
	    "1 v=2.1 fn=Jürgen Müller n=Müller/Jürgen org=Café SA"
	    " <jm@example.de|internet|1> <x=41@example.de|internet|0>\n");
}

static void
test_folding(void **state)
{
	(void)state;
	check("BEGIN:VCARD\n"
	      "VERSION:3.0\n"
	      "FN:Very Long\n"
	      "  Name\n"
	      "N:Lo\n"
	      "\tng;Very\n"
	      "EM\n"
	      " AIL;TY\n"
	      "\tPE=home:v@exa\r\n"
	      " mple.com\n"
	      "END:VCARD\n",
	    "1 v=3.0 fn=Very Long Name n=Long/Very org=-"
	    " <v@example.com|home|0>\n");
}

static void
test_escapes(void **state)
{
	(void)state;
	check("BEGIN:VCARD\n"
	      "VERSION:3.0\n"
	      "FN:Smith\\, John \\; Jr\\\\x\\nline\n"
	      "N:O\\;Brien;Pat\\,Q;;;\n"
	      "ORG:A\\;B;Unit\n"
	      "EMAIL:  a\\,b@example.com  \n"
	      "END:VCARD\n",
	    "1 v=3.0 fn=Smith, John ; Jr\\x\nline n=O;Brien/Pat,Q org=A;B"
	    " <a,b@example.com||0>\n");
}

static void
test_several_bom_crlf(void **state)
{
	const char *lf =
	    "\xef\xbb\xbf"
	    "BEGIN:VCARD\nVERSION:3.0\nFN:A\nEND:VCARD\n"
	    "\n"
	    "begin:vcard\nversion:3.0\nfn:B\nemail:b@x\nend:vcard\n"
	    "BEGIN:VCARD\nFN:C\nEND:VCARD";
	const char *crlf = "\xef\xbb\xbf"
			   "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n"
			   "\r\n"
			   "begin:vcard\r\nversion:3.0\r\nfn:B\r\nemail:b@x\r\n"
			   "end:vcard\r\n"
			   "BEGIN:VCARD\r\nFN:C\r\nEND:VCARD";
	const char *want = "1 v=3.0 fn=A n=-/- org=-\n"
			   "6 v=3.0 fn=B n=-/- org=- <b@x||0>\n"
			   "11 v=- fn=C n=-/- org=-\n";

	(void)state;
	check(lf, want);
	check(crlf, want);
	/* a partial BOM is data, not skipped */
	check("\xef\xbb"
	      "BEGIN:VCARD\nFN:x\nEND:VCARD\n"
	      "BEGIN:VCARD\nFN:y\nEND:VCARD\n",
	    "4 v=- fn=y n=-/- org=-\n");
}

static void
test_broken(void **state)
{
	(void)state;
	check("BEGIN:VCARD\nFN:A\n"
	      "BEGIN:VCARD\nFN:B\nEND:VCARD\n"
	      "junk between cards\n"
	      "BEGIN:VCARD\nFN:C\nEMAIL:c@x\n",
	    "1! line 3: BEGIN:VCARD inside the card begun at line 1, card "
	    "skipped\n"
	    "3 v=- fn=B n=-/- org=-\n"
	    "7! line 9: no END:VCARD for the card begun at line 7\n");
	check("BEGIN:VCARD\nFN:A",
	    "1! line 2: no END:VCARD for the card "
	    "begun at line 1\n");
	check("", "");
	check("END:VCARD\nFN:x\n", "");
}

static void
test_limits(void **state)
{
	struct vcard_limits l = { 0 };

	(void)state;
	vcard_limits_default(&l);
	assert_int_equal(l.line_max, VCARD_LINE_MAX);
	l.emails_max = 2;
	check_lim("BEGIN:VCARD\nEMAIL:a@x\nEMAIL:b@x\nEMAIL:c@x\nEND:VCARD\n"
		  "BEGIN:VCARD\nEMAIL:d@x\nEND:VCARD\n",
	    "1! line 4: more EMAIL properties than 2, card skipped\n"
	    "6 v=- fn=- n=-/- org=- <d@x||0>\n",
	    &l);
	l = (struct vcard_limits){ .props_max = 2 };
	check_lim("BEGIN:VCARD\nFN:a\nN:b\nORG:c\nEND:VCARD\n"
		  "BEGIN:VCARD\nFN:d\nEND:VCARD\n",
	    "1! line 4: more properties than 2, card skipped\n"
	    "6 v=- fn=d n=-/- org=-\n",
	    &l);
	l = (struct vcard_limits){ .line_max = 16 };
	check_lim("BEGIN:VCARD\nFN:0123456789\n abcdef\nEND:VCARD\n"
		  "BEGIN:VCARD\nFN:0123456789abc\nEND:VCARD\n",
	    "1! line 2: line longer than 16, card skipped\n"
	    "5 v=- fn=0123456789abc n=-/- org=-\n",
	    &l);
	l = (struct vcard_limits){ .card_max = 40 };
	check_lim("BEGIN:VCARD\nFN:aaaaaaaaaa\nNOTE:bbbbbbbbbbbb\nEND:VCARD\n"
		  "BEGIN:VCARD\nFN:c\nEND:VCARD\n",
	    "1! line 3: card longer than 40, card skipped\n"
	    "5 v=- fn=c n=-/- org=-\n",
	    &l);
}

static void
test_utf8(void **state)
{
	(void)state;
	/* invalid UTF-8 without a charset is taken as Latin-1; NUL dropped */
	check("BEGIN:VCARD\nFN:caf\xe9\nN:\xc3\xa9t\xc3\xa9;x\nORG;"
	      "ENCODING=QUOTED-PRINTABLE:a=00b=FF\nEND:VCARD\n",
	    "1 v=- fn=caf\xc3\xa9 n=\xc3\xa9t\xc3\xa9/x org=ab\xc3\xbf\n");
}

/* test_sample_file - a vCard shipped by an installed package, if any */
static void
test_sample_file(void **state)
{
	static const char *const paths[] = {
		"/usr/share/php/test/Horde_Icalendar/Horde/Icalendar/fixtures/"
		"vcard3.0.vcs",
		"/usr/share/php/tests/Horde_Icalendar/Horde/Icalendar/fixtures/"
		"vcard3.0.vcs",
	};
	FILE *f = NULL;
	char *buf, *whole, *bytes;
	size_t n;

	(void)state;
	for (size_t i = 0; f == NULL && i < sizeof(paths) / sizeof(paths[0]);
	     i++)
		f = fopen(paths[i], "rb");
	if (f == NULL) {
		skip();
		return;
	}
	buf = malloc(1 << 20);
	assert_non_null(buf);
	n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	whole = run(buf, n, 0, NULL);
	bytes = run(buf, n, 1, NULL);
	assert_string_equal(whole, bytes);
	assert_non_null(strstr(whole, "v="));
	free(whole);
	free(bytes);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apple_30),
		cmocka_unit_test(test_40),
		cmocka_unit_test(test_21_qp_latin1),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_several_bom_crlf),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_sample_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
