/*
 * test_dest.c - the destinations file and value syntaxes (mta/dest.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mta/dest.h"
#include "mta/smtpc.h"

static const struct dest_policy defaults = { NULL, 0, SMTPC_TLS_MAY, 20, 5, 100,
	50, 0 };

static char *
write_tmp(const char *text)
{
	char *path = strdup("/tmp/herald-dest-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_lookup(void **state)
{
	char err[512];
	char *path = write_tmp("# comment\n"
			       "*   tls=encrypt concurrency=10\n"
			       "gmail.com concurrency=5 rate=10/s\n"
			       ".example.net relay=[10.0.0.5]:2525 tls=none\n"
			       "Example.org relay=smtp.example.org\n");
	struct dest_table *t =
	    dest_table_load(path, 0, &defaults, err, sizeof(err));
	const struct dest_policy *p;

	(void)state;
	assert_non_null(t);
	p = dest_table_lookup(t, "gmail.com");
	assert_int_equal(p->concurrency, 5);
	assert_int_equal(p->tls, SMTPC_TLS_ENCRYPT); /* from "*" */
	assert_true(p->rate > 9.99 && p->rate < 10.01);
	assert_int_equal(p->initial_concurrency, 5);
	p = dest_table_lookup(t, "a.b.example.net");
	assert_string_equal(p->relay_host, "10.0.0.5");
	assert_int_equal(p->relay_port, 2525);
	assert_int_equal(p->tls, SMTPC_TLS_NONE);
	p = dest_table_lookup(t, "example.net"); /* ".x" is subdomains only */
	assert_null(p->relay_host);
	assert_int_equal(p->concurrency, 10);
	p = dest_table_lookup(t, "example.org");
	assert_string_equal(p->relay_host, "smtp.example.org");
	assert_int_equal(p->relay_port, 25);
	p = dest_table_lookup(t, "other.test");
	assert_int_equal(p->concurrency, 10);
	assert_int_equal(p->messages_per_connection, 100);
	dest_table_free(&t);
	unlink(path);
	free(path);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "a.test concurrency=0\n", ":1: concurrency=0" },
		{ "\n\na.test colour=red\n", ":3: unknown setting 'colour'" },
		{ "a.test tls=maybe\n", ":1: tls=maybe" },
		{ "a.test relay=[::1\n", ":1: '[::1'" },
		{ "a.test rate=5/d\n", ":1: rate '5/d'" },
		{ "a.test novalue\n", ":1: 'novalue': expected key=value" },
		{ "a.test\nA.test\n", "'a.test' is listed twice" },
		{ "* tls=none\n* tls=may\n", ":2: a second '*' line" },
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_tmp(cases[i].text);

		assert_null(
		    dest_table_load(path, 0, &defaults, err, sizeof(err)));
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' does not contain '%s'", i, err,
			    cases[i].want);
		unlink(path);
		free(path);
	}
	assert_null(dest_table_load(
	    "/nonexistent/destinations", 0, &defaults, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/destinations"));
	{
		struct dest_table *t =
		    dest_table_load("/nonexistent/destinations", 1, &defaults,
			err, sizeof(err));

		assert_non_null(t);
		assert_int_equal(
		    dest_table_lookup(t, "x.test")->concurrency, 20);
		dest_table_free(&t);
	}
}

static void
test_values(void **state)
{
	uint64_t *steps;
	size_t n;
	double r;
	char err[256], *host;
	int port;

	(void)state;
	assert_int_equal(
	    dest_parse_schedule("1s, 5m,2h", &steps, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(steps[0], 1000);
	assert_int_equal(steps[1], 300000);
	assert_int_equal(steps[2], 7200000);
	free(steps);
	assert_int_equal(
	    dest_parse_schedule("", &steps, &n, err, sizeof(err)), -1);
	assert_int_equal(
	    dest_parse_schedule("5m,soon", &steps, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'soon'"));
	assert_int_equal(dest_parse_rate("600/m", &r, err, sizeof(err)), 0);
	assert_true(r > 9.99 && r < 10.01);
	assert_int_equal(dest_parse_rate("", &r, err, sizeof(err)), 0);
	assert_true(r == 0);
	assert_int_equal(dest_parse_rate("-1/s", &r, err, sizeof(err)), -1);
	assert_int_equal(dest_parse_hostport(
			     "[::1]:2525", 25, &host, &port, err, sizeof(err)),
	    0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 2525);
	free(host);
	assert_int_equal(
	    dest_parse_hostport("mx.test", 25, &host, &port, err, sizeof(err)),
	    0);
	assert_int_equal(port, 25);
	free(host);
	assert_int_equal(
	    dest_parse_hostport("::1", 25, &host, &port, err, sizeof(err)), -1);
	assert_int_equal(
	    dest_parse_hostport("h:99999", 25, &host, &port, err, sizeof(err)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
