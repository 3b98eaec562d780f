/*
 * test_jsonl.c - the streaming JSON Lines reader (contacts/jsonl.c).
 *
 * Each row is written out as "LINE:[k=v][k=v]...\n" or "LINE E error\n"
 * and compared with what it should be; every input is read whole and
 * in 1-byte and 7-byte chunks, which must give the same rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "contacts/jsonl.h"

struct sink {
	char buf[64 * 1024];
	size_t n;
	int stop_at; /* the callback returns 7 at this row (1-based) */
	int rows;
};

/* collect - the row callback: dump the row into the sink */
static int
collect(void *arg, const struct jsonl_row *row)
{
	struct sink *s = arg;
	size_t i;

	s->rows++;
	if (row->error != NULL) {
		assert_int_equal(row->n, 0);
		s->n += (size_t)snprintf(s->buf + s->n, sizeof(s->buf) - s->n,
		    "%lu E %s\n", row->line, row->error);
	} else {
		s->n += (size_t)snprintf(
		    s->buf + s->n, sizeof(s->buf) - s->n, "%lu:", row->line);
		for (i = 0; i < row->n; i++)
			s->n += (size_t)snprintf(s->buf + s->n,
			    sizeof(s->buf) - s->n, "[%s=%s]", row->keys[i],
			    row->values[i]);
		s->n += (size_t)snprintf(
		    s->buf + s->n, sizeof(s->buf) - s->n, "\n");
	}
	assert_true(s->n < sizeof(s->buf));
	return s->rows == s->stop_at ? 7 : 0;
}

/* run - read in[0..len) in chunks of chunk bytes (0: whole) into s */
static int
run(const char *in, size_t len, size_t chunk, const struct jsonl_limits *lim,
    struct sink *s)
{
	struct jsonl *r = jsonl_new(lim, collect, s);
	char err[256];
	size_t off, k;
	int rc = 0;

	assert_non_null(r);
	s->n = 0;
	s->rows = 0;
	s->buf[0] = '\0';
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	for (off = 0; off < len && rc == 0; off += k) {
		k = len - off < chunk ? len - off : chunk;
		rc = jsonl_feed(r, in + off, k, err, sizeof(err));
	}
	if (rc == 0)
		rc = jsonl_finish(r, err, sizeof(err));
	jsonl_free(&r);
	assert_null(r);
	return rc;
}

/* check - in gives want, whole and chunked */
static void
check_lim(const char *in, size_t len, const struct jsonl_limits *lim,
    const char *want)
{
	static struct sink s;
	static const size_t chunks[] = { 0, 1, 7 };
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		assert_int_equal(run(in, len, chunks[i], lim, &s), 0);
		if (strcmp(s.buf, want) != 0)
			fail_msg("chunk %zu:\n got: %s\nwant: %s", chunks[i],
			    s.buf, want);
	}
}

static void
check(const char *in, const char *want)
{
	check_lim(in, strlen(in), NULL, want);
}

static void
test_basic(void **state)
{
	(void)state;
	check("{\"email\":\"a@b.example\",\"name\":\"A\"}\n"
	      "{\"email\": \"c@d.example\" , \"name\" : \"C \\\"x\\\"\"}\n",
	    "1:[email=a@b.example][name=A]\n"
	    "2:[email=c@d.example][name=C \"x\"]\n");
	/* BOM, CRLF, blank lines, last line without newline */
	check("\xef\xbb\xbf{\"a\":\"1\"}\r\n\r\n   \n\t\r\n{\"a\":\"2\"}\r\n"
	      "{\"a\":\"3\"}",
	    "1:[a=1]\n5:[a=2]\n6:[a=3]\n");
	/* a BOM elsewhere is not white space */
	check("{}\n\xef\xbb\xbf{}\n", "1:\n2 E line 2: not a JSON object\n");
	check("", "");
	check("\n\n", "");
}

static void
test_values(void **state)
{
	(void)state;
	check("{\"n\":12345678901234567,\"big\":123456789012345678901234567890,"
	      "\"r\":0.1,\"e\":-1.5E+10,\"t\":true,\"f\":false,\"z\":null,"
	      "\"zero\":0}\n",
	    "1:[n=12345678901234567][big=123456789012345678901234567890]"
	    "[r=0.1][e=-1.5E+10][t=true][f=false][zero=0]\n");
	/* escapes: \u00e9, a surrogate pair, \n, \/ */
	check("{\"s\":\"caf\\u00e9 \\ud83d\\ude00 a\\/b\\tc\"}\n",
	    "1:[s=caf\xc3\xa9 \xf0\x9f\x98\x80 a/b\tc]\n");
	/* duplicates: the last wins, in the first one's place */
	check(
	    "{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}\n{\"a\":\"1\",\"a\":null}\n",
	    "1:[a=3][b=2]\n2:\n");
	check("{\"s\":\"\\u0000\"}\n",
	    "1 E line 1, column 7: \\u0000 is not supported\n");
	check("{\"s\":\"\\ud800x\"}\n",
	    "1 E line 1, column 7: invalid \\u escape: lone high surrogate\n");
}

static void
test_flatten(void **state)
{
	(void)state;
	/* listmonk's subscriber export */
	check("{\"id\":1,\"uuid\":\"5e91dda1-1c16-467d-9bf9-2a21bf22ae21\","
	      "\"email\":\"john@example.com\",\"name\":\"John\",\"attribs\":"
	      "{\"city\":\"Bengaluru\",\"projects\":3,\"name\":\"J\"},"
	      "\"status\":\"enabled\",\"created_at\":\"2020-03-02T18:30:23."
	      "434543+05:30\"}\n",
	    "1:[id=1][uuid=5e91dda1-1c16-467d-9bf9-2a21bf22ae21]"
	    "[email=john@example.com][name=John][status=enabled]"
	    "[created_at=2020-03-02T18:30:23.434543+05:30]"
	    "[city=Bengaluru][projects=3][name=J]\n");
	check("{\"fields\":{\"a\":\"1\"},\"custom_fields\":{},\"attributes\":"
	      "{\"b\":null,\"c\":true}}\n",
	    "1:[a=1][c=true]\n");
	check("{\"email\":\"x@y\",\"attribs\":{\"tags\":[\"a\",\"b\"]}}\n"
	      "{\"lists\":[{\"id\":1}],\"email\":\"z@y\"}\n"
	      "{\"meta\":{\"a\":1}}\n"
	      "{\"attribs\":{\"deep\":{\"a\":1}}}\n"
	      "{\"email\":\"ok@y\"}\n",
	    "1 E line 1: key \"tags\": arrays are not supported\n"
	    "2 E line 2: key \"lists\": arrays are not supported\n"
	    "3 E line 3: key \"meta\": nested objects are not supported\n"
	    "4 E line 4: key \"deep\": nested objects are not supported\n"
	    "5:[email=ok@y]\n");
}

static void
test_broken(void **state)
{
	(void)state;
	check("{\"a\":1}\n"
	      "{\"a\":}\n"
	      "[1,2]\n"
	      "\"str\"\n"
	      "{\"a\" 1}\n"
	      "{\"\xc3\xa9\xc3\xa9\":tru}\n"
	      "{\"a\":1} x\n"
	      "{\"a\":[1,}\n"
	      "{\"a\":01}\n"
	      "{\"a\":\"open\n"
	      "{\"a\":\"b\"}\n",
	    "1:[a=1]\n"
	    "2 E line 2, column 6: invalid value\n"
	    "3 E line 3: not a JSON object\n"
	    "4 E line 4: not a JSON object\n"
	    "5 E line 5, column 6: expected ':' after the key\n"
	    "6 E line 6, column 7: invalid value\n"
	    "7 E line 7, column 9: unexpected text after the object\n"
	    "8 E line 8, column 9: invalid value\n"
	    "9 E line 9, column 7: expected ',' or '}'\n"
	    "10 E line 10, column 11: unterminated string\n"
	    "11:[a=b]\n");
	/* invalid UTF-8, raw and in a key */
	check("{\"a\":\"M\xfcller\"}\n{\"\xc0\xaf\":1}\n{\"a\":\"\xc3\xbc\"}\n",
	    "1 E line 1, column 8: invalid UTF-8\n"
	    "2 E line 2, column 3: invalid UTF-8\n"
	    "3:[a=\xc3\xbc]\n");
}

static void
test_limits(void **state)
{
	static const struct jsonl_limits small = { 20, 0 }, few = { 0, 3 };
	static char big[3 * 1024 * 1024];
	static struct sink s;
	size_t n;

	(void)state;
	/* a line of exactly line_max bytes is read, one more is not */
	check_lim("{\"a\":\"0123456789\"}\n"
		  "{\"a\":\"012345678901\"}\n"
		  "{\"a\":\"0123456789012\"}\n"
		  "{\"b\":\"1\"}\n"
		  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	    strlen("{\"a\":\"0123456789\"}\n"
		   "{\"a\":\"012345678901\"}\n"
		   "{\"a\":\"0123456789012\"}\n"
		   "{\"b\":\"1\"}\n"
		   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	    &small,
	    "1:[a=0123456789]\n"
	    "2:[a=012345678901]\n"
	    "3 E line 3: longer than 20 bytes\n"
	    "4:[b=1]\n"
	    "5 E line 5: longer than 20 bytes\n");
	check_lim("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}\n"
		  "{\"a\":1,\"a\":2,\"a\":3,\"a\":4}\n"
		  "{\"a\":1,\"attribs\":{\"b\":2,\"c\":3}}\n",
	    strlen("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}\n"
		   "{\"a\":1,\"a\":2,\"a\":3,\"a\":4}\n"
		   "{\"a\":1,\"attribs\":{\"b\":2,\"c\":3}}\n"),
	    &few,
	    "1 E line 1: more than 3 keys\n"
	    "2:[a=4]\n"
	    "3:[a=1][b=2][c=3]\n");
	/* a 3 MiB line over the default limit, then a good line */
	n = sizeof(big) - 20;
	memset(big, ' ', n);
	big[0] = '{';
	memcpy(big + n, "}\n{\"a\":\"b\"}\n", 12);
	assert_int_equal(run(big, n + 12, 4096, NULL, &s), 0);
	assert_string_equal(
	    s.buf, "1 E line 1: longer than 1048576 bytes\n2:[a=b]\n");
	/* deep nesting is refused, not recursed into */
	n = 0;
	n += (size_t)snprintf(big, 100, "{\"a\":");
	while (n < 10000)
		big[n++] = '[';
	big[n++] = '\n';
	assert_int_equal(run(big, n, 0, NULL, &s), 0);
	assert_string_equal(s.buf, "1 E line 1, column 70: nested too deep\n");
}

static void
test_stop(void **state)
{
	static struct sink s;
	const char *in = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";

	(void)state;
	s.stop_at = 2;
	assert_int_equal(run(in, strlen(in), 0, NULL, &s), 7);
	assert_string_equal(s.buf, "1:[a=1]\n2:[a=2]\n");
	assert_int_equal(run(in, strlen(in), 1, NULL, &s), 7);
	assert_string_equal(s.buf, "1:[a=1]\n2:[a=2]\n");
	s.stop_at = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_flatten),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
