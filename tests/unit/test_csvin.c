/*
 * test_csvin.c - the streaming CSV/TSV reader (contacts/csvin.c).
 *
 * Each record is written out as "LINE[H][S reason]:[f1][f2]...\n" and
 * compared with what it should be.  The csv-spectrum cases are inline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "contacts/csvin.h"

struct sink {
	char buf[256 * 1024];
	size_t n;
};

/* collect - the row callback: dump the record into the sink */
static int
collect(void *arg, const struct csvin_row *row)
{
	struct sink *s = arg;
	size_t i;

	s->n += (size_t)snprintf(s->buf + s->n, sizeof(s->buf) - s->n, "%lu%s",
	    row->line, row->flags & CSVIN_ROW_HEADER ? "H" : "");
	if (row->flags & CSVIN_ROW_SKIPPED)
		s->n += (size_t)snprintf(
		    s->buf + s->n, sizeof(s->buf) - s->n, "S %s", row->reason);
	s->n += (size_t)snprintf(s->buf + s->n, sizeof(s->buf) - s->n, ":");
	for (i = 0; i < row->nfields; i++) {
		assert_int_equal(row->fields[i][row->lens[i]], '\0');
		s->n += (size_t)snprintf(s->buf + s->n, sizeof(s->buf) - s->n,
		    "[%.*s]", (int)row->lens[i], row->fields[i]);
	}
	s->n += (size_t)snprintf(s->buf + s->n, sizeof(s->buf) - s->n, "\n");
	assert_true(s->n < sizeof(s->buf));
	return 0;
}

/* run - read in[0..len) in chunks of chunk bytes (0: whole) into s */
static int
run(const char *in, size_t len, size_t chunk, int delim,
    const struct csvin_limits *lim, struct sink *s, char *err, size_t errlen)
{
	struct csvin *r = csvin_new(lim, delim, collect, s);
	size_t off, k;
	int rc;

	assert_non_null(r);
	s->n = 0;
	s->buf[0] = '\0';
	if (chunk == 0)
		chunk = len;
	for (off = 0; off < len; off += k) {
		k = len - off < chunk ? len - off : chunk;
		assert_int_equal(csvin_feed(r, in + off, k, err, errlen), 0);
	}
	rc = csvin_finish(r, err, errlen);
	csvin_free(&r);
	assert_null(r);
	return rc;
}

/* expect - in gives want, read whole, one byte at a time and in 7s */
static void
expect_delim(const char *in, size_t len, int delim, const char *want)
{
	static const size_t chunks[] = { 0, 1, 7 };
	static struct sink s;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(
		    run(in, len, chunks[i], delim, NULL, &s, err, sizeof(err)),
		    0);
		assert_string_equal(s.buf, want);
	}
}

#define EXPECT(in, want) expect_delim(in, sizeof(in) - 1, 0, want)

static void
test_spectrum(void **state)
{
	(void)state;
	EXPECT("first,last,address,city,zip\n"
	       "John,Doe,120 any st.,\"Anytown, WW\",08123",
	    "1H:[first][last][address][city][zip]\n"
	    "2:[John][Doe][120 any st.][Anytown, WW][08123]\n");
	EXPECT("a,b\n1,\"ha \"\"ha\"\" ha\"\n3,4\n",
	    "1H:[a][b]\n2:[1][ha \"ha\" ha]\n3:[3][4]\n");
	EXPECT("key,val\n"
	       "1,\"{\"\"type\"\": \"\"Point\"\", \"\"coordinates\"\": "
	       "[102.0, 0.5]}\"\n",
	    "1H:[key][val]\n"
	    "2:[1][{\"type\": \"Point\", \"coordinates\": [102.0, 0.5]}]\n");
	EXPECT("a,b,c\n1,2,3\n\"Once upon \na time\",5,6\n7,8,9\n",
	    "1H:[a][b][c]\n2:[1][2][3]\n3:[Once upon \na time][5][6]\n"
	    "5:[7][8][9]\n");
	EXPECT("a,b\n1,\"ha \n\"\"ha\"\" \nha\"\n3,4\n",
	    "1H:[a][b]\n2:[1][ha \n\"ha\" \nha]\n5:[3][4]\n");
	EXPECT("a,b,c\n1,2,3", "1H:[a][b][c]\n2:[1][2][3]\n");
	EXPECT("a,b,c\r\n1,2,3", "1H:[a][b][c]\n2:[1][2][3]\n");
	EXPECT("a,b,c\n1,\"\",\"\"\n2,3,4",
	    "1H:[a][b][c]\n2:[1][][]\n3:[2][3][4]\n");
	EXPECT("a,b,c\r\n1,\"\",\"\"\r\n2,3,4",
	    "1H:[a][b][c]\n2:[1][][]\n3:[2][3][4]\n");
	EXPECT("a,b,c\n1,2,3\n4,5,\xca\xa4",
	    "1H:[a][b][c]\n2:[1][2][3]\n3:[4][5][\xca\xa4]\n");
	EXPECT("Contact Phone Number,Location Coordinates,Cities,Counties\n"
	       "02095257564,37\xc2\xb0"
	       "36'37.8\"N 121\xc2\xb0"
	       "2'17.9\"W,Modesto,Stanislaus",
	    "1H:[Contact Phone Number][Location Coordinates][Cities]"
	    "[Counties]\n"
	    "2:[02095257564][37\xc2\xb0"
	    "36'37.8\"N 121\xc2\xb0"
	    "2'17.9\"W][Modesto][Stanislaus]\n");
	EXPECT("", "");
	EXPECT("\n\r\n\n", "");
}

static void
test_deviations(void **state)
{
	(void)state;
	/* BOM, trimmed blanks, quoted blanks kept, blank lines skipped */
	EXPECT("\xef\xbb\xbf"
	       "email, name \n\n  a@x.example ,\" Ann \"\n",
	    "1H:[email][name]\n3:[a@x.example][ Ann ]\n");
	/* ';' (Excel in much of Europe), and ',' inside a field */
	EXPECT("email;name\nb@x.example;Doe, Bob\n",
	    "1H:[email][name]\n2:[b@x.example][Doe, Bob]\n");
	/* TAB; a space inside is kept, a comma too */
	EXPECT("email\tname\tnote\nc@x.example\t Cy \ta,b\n",
	    "1H:[email][name][note]\n2:[c@x.example][Cy][a,b]\n");
	/* delimiters inside quotes do not count */
	EXPECT("\"a;b;c;d\",e\n1,2\n", "1H:[a;b;c;d][e]\n2:[1][2]\n");
	/* explicit delimiter wins over detection */
	expect_delim("a;b,c\n", 6, ';', "1H:[a][b,c]\n");
	/* '|' given or detected */
	expect_delim("a|b,c\n", 6, '|', "1H:[a][b,c]\n");
	EXPECT("email|name\nd@x.example|Dee\n",
	    "1H:[email][name]\n2:[d@x.example][Dee]\n");
	assert_null(csvin_new(NULL, ':', collect, NULL));
}

static void
test_encoding(void **state)
{
	(void)state;
	/* ISO-8859-1 "Müller", "Zoë" -> UTF-8 */
	EXPECT("name,city\nM\xfcller,Zo\xeb\n",
	    "1H:[name][city]\n2:[M\xc3\xbcller][Zo\xc3\xab]\n");
	/* Windows-1252 euro sign and curly quotes */
	EXPECT("x\n\x80 \x93hi\x94\n",
	    "1H:[x]\n2:[\xe2\x82\xac \xe2\x80\x9chi\xe2\x80\x9d]\n");
	/* a latin-1 byte seen in the prefix makes the whole file 1252 */
	EXPECT("\xc3\xa9,\xe9\n", "1H:[\xc3\x83\xc2\xa9][\xc3\xa9]\n");
	/* overlong and surrogate encodings are not UTF-8 */
	EXPECT("\xc0\xaf\n", "1H:[\xc3\x80\xc2\xaf]\n");
	EXPECT("\xed\xa0\x80\n", "1H:[\xc3\xad\xc2\xa0\xe2\x82\xac]\n");
}

static void
test_late_latin1(void **state)
{
	size_t n = 70 * 1024, i;
	char *in = malloc(n + 32);
	static struct sink s;
	char err[256];

	(void)state;
	assert_non_null(in);
	/* 70 KiB of lines of UTF-8, then a Latin-1 one past the prefix */
	for (i = 0; i + 61 <= n; i += 61) {
		memset(in + i, 'x', 60);
		memcpy(in + i, "\xc3\xa9", 2);
		in[i + 60] = '\n';
	}
	memcpy(in + i, "M\xfcller\n", 8);
	i += 8;
	assert_int_equal(run(in, i, 1000, 0, NULL, &s, err, sizeof(err)), 0);
	assert_non_null(strstr(s.buf, "1H:[\xc3\xa9x"));
	assert_non_null(strstr(s.buf, ":[M\xc3\xbcller]\n"));
	free(in);
}

static void
test_lines(void **state)
{
	(void)state;
	EXPECT("h\n\"a\nb\nc\",x\n\nlast\r\n\"q\r\n\"\n",
	    "1H:[h]\n2:[a\nb\nc][x]\n6:[last]\n7:[q\r\n]\n");
	EXPECT("a\rb\nc\n", "1H:[a]\n1:[b]\n2:[c]\n");
}

static void
test_limits(void **state)
{
	static const char lim_in[] = "a,b\n1,2,3,4\n\"toolong\",x\n"
				     "12345,12345\nok,\"fine\"\n";
	struct csvin_limits lim = { 3, 5, 9 };
	static struct sink s;
	char err[256];
	size_t chunk;

	(void)state;
	for (chunk = 0; chunk < 3; chunk++) {
		assert_int_equal(run(lim_in, strlen(lim_in), chunk, 0, &lim, &s,
				     err, sizeof(err)),
		    0);
		assert_string_equal(s.buf,
		    "1H:[a][b]\n2S too many fields:\n"
		    "3S field too long:\n4S record too long:\n"
		    "5:[ok][fine]\n");
	}
	/* a field over the limit once converted from Windows-1252 */
	assert_int_equal(
	    run("\x80\x80\n", 3, 0, 0, &lim, &s, err, sizeof(err)), 0);
	assert_string_equal(s.buf, "1HS field too long:\n");
}

static void
test_big_field(void **state)
{
	struct csvin_limits lim = { 0, 100, 0 };
	size_t n = 300 * 1024;
	char *in = malloc(n);
	static struct sink s;
	char err[256];

	(void)state;
	assert_non_null(in);
	memset(in, 'x', n);
	memcpy(in, "e\n\"", 3);
	memcpy(in + n - 8, "\",y\nz,w\n", 8);
	assert_int_equal(run(in, n, 4096, 0, &lim, &s, err, sizeof(err)), 0);
	assert_string_equal(s.buf, "1H:[e]\n2S field too long:\n3:[z][w]\n");
	free(in);
}

static void
test_unterminated(void **state)
{
	static struct sink s;
	char err[256];

	(void)state;
	assert_int_equal(run("a,b\n1,2\n3,\"open\nstill\n", 23, 0, 0, NULL, &s,
			     err, sizeof(err)),
	    -1);
	assert_string_equal(err, "line 3: unterminated quoted field");
	assert_string_equal(
	    s.buf, "1H:[a][b]\n2:[1][2]\n3S unterminated quoted field:\n");
}

/* stop_at_two - a row callback that stops after two records */
static int
stop_at_two(void *arg, const struct csvin_row *row)
{
	int *n = arg;

	(void)row;
	return ++*n == 2;
}

static void
test_stop(void **state)
{
	struct csvin *r = csvin_new(NULL, 0, stop_at_two, NULL);
	char err[256];
	int n = 0;

	(void)state;
	csvin_free(&r);
	r = csvin_new(NULL, ',', stop_at_two, &n);
	assert_int_equal(csvin_feed(r, "a\nb\nc\nd\n", 8, err, sizeof(err)), 0);
	assert_int_equal(csvin_finish(r, err, sizeof(err)), 1);
	assert_int_equal(n, 2);
	assert_int_equal(csvin_feed(r, "e\n", 2, err, sizeof(err)), 1);
	csvin_free(&r);
	csvin_free(&r);
}

/* guess - the map of a header */
static struct csvin_map
guess(const char *const *h, size_t n, int want_rc)
{
	struct csvin_map m;

	assert_int_equal(csvin_map_guess(h, n, &m), want_rc);
	return m;
}

#define MAP(m, e, f, l, n)                                                     \
	do {                                                                   \
		assert_int_equal((m).email, e);                                \
		assert_int_equal((m).first_name, f);                           \
		assert_int_equal((m).last_name, l);                            \
		assert_int_equal((m).full_name, n);                            \
	} while (0)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static void
test_map(void **state)
{
	static const char *const google[] = { "First Name", "Middle Name",
		"Last Name", "Phonetic First Name", "Nickname", "Birthday",
		"Notes", "Labels", "E-mail 1 - Label", "E-mail 1 - Value" };
	static const char *const google_old[] = { "Name", "Given Name",
		"Additional Name", "Family Name", "E-mail 1 - Type",
		"E-mail 1 - Value" };
	static const char *const outlook[] = { "Title", "First Name",
		"Middle Name", "Last Name", "Suffix", "E-mail Address",
		"E-mail 2 Address" };
	static const char *const thunderbird[] = { "First Name", "Last Name",
		"Display Name", "Nickname", "Primary Email",
		"Secondary Email" };
	static const char *const yahoo[] = { "First", "Middle", "Last",
		"Nickname", "Email", "Category" };
	static const char *const mailchimp[] = { "Email Address", "First Name",
		"Last Name", "Address", "Phone Number" };
	static const char *const listmonk[] = { "email", "name", "attributes" };
	static const char *const none[] = { "phone", "city" };
	static const char *const spaced[] = { " EMAIL ", "\tFirst NAME" };
	struct csvin_map m;

	(void)state;
	m = guess(google, N(google), 0);
	MAP(m, 9, 0, 2, -1);
	m = guess(google_old, N(google_old), 0);
	MAP(m, 5, 1, 3, 0);
	m = guess(outlook, N(outlook), 0);
	MAP(m, 5, 1, 3, -1);
	m = guess(thunderbird, N(thunderbird), 0);
	MAP(m, 4, 0, 1, 2);
	m = guess(yahoo, N(yahoo), 0);
	MAP(m, 4, 0, 2, -1);
	m = guess(mailchimp, N(mailchimp), 0);
	MAP(m, 0, 1, 2, -1);
	m = guess(listmonk, N(listmonk), 0);
	MAP(m, 0, -1, -1, 1);
	m = guess(none, N(none), -1);
	MAP(m, -1, -1, -1, -1);
	m = guess(spaced, N(spaced), 0);
	MAP(m, 0, 1, -1, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spectrum),
		cmocka_unit_test(test_deviations),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_late_latin1),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_big_field),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
