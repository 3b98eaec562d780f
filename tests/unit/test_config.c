/*
 * test_config.c - the typed configuration table (lib/config.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config.h"
#include "lib/util.h"

struct settings {
	char *name;
	int64_t count;
	bool flag;
	uint64_t size;
	uint64_t wait;
	int mode;
};

static const struct config_def defs[] = {
	{ "a.name", CONFIG_STRING, offsetof(struct settings, name), "x", 0, 0,
	    NULL, "a string" },
	{ "a.count", CONFIG_INT, offsetof(struct settings, count), "5", 1, 10,
	    NULL, "an int" },
	{ "a.flag", CONFIG_BOOL, offsetof(struct settings, flag), "no", 0, 0,
	    NULL, "a bool" },
	{ "b.size", CONFIG_SIZE, offsetof(struct settings, size), "1k", 512,
	    1 << 30, NULL, "a size" },
	{ "b.wait", CONFIG_DURATION, offsetof(struct settings, wait), "30s",
	    100, 3600000, NULL, "a duration" },
	{ "b.mode", CONFIG_ENUM, offsetof(struct settings, mode), "two", 0, 0,
	    "one|two|three", "an enum" },
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static void
test_defaults(void **state)
{
	struct settings s;

	(void)state;
	memset(&s, 0, sizeof(s));
	config_defaults(defs, NDEFS, &s);
	assert_string_equal(s.name, "x");
	assert_int_equal(s.count, 5);
	assert_false(s.flag);
	assert_int_equal(s.size, 1024);
	assert_int_equal(s.wait, 30000);
	assert_int_equal(s.mode, 1);
	config_free(defs, NDEFS, &s);
	assert_null(s.name);
}

struct set_case {
	const char *name, *value;
	int ok;
	const char *err_part; /* must appear in the error */
};

static const struct set_case set_cases[] = {
	{ "a.count", "7", 1, NULL },
	{ "a.count", "0", 0, "out of range (1 to 10)" },
	{ "a.count", "11", 0, "out of range" },
	{ "a.count", "7x", 0, "not a whole number" },
	{ "a.count", "", 0, "not a whole number" },
	{ "a.flag", "yes", 1, NULL },
	{ "a.flag", "On", 1, NULL },
	{ "a.flag", "maybe", 0, "not yes or no" },
	{ "b.size", "50M", 1, NULL },
	{ "b.size", "64k", 1, NULL },
	{ "b.size", "100", 0, "out of range" },
	{ "b.size", "lots", 0, "is not a size" },
	{ "b.size", "-1", 0, "is not a size" },
	{ "b.size", "99999999999999999999999", 0, "is not a size" },
	{ "b.wait", "250ms", 1, NULL },
	{ "b.wait", "5m", 1, NULL },
	{ "b.wait", "2d", 0, "out of range" },
	{ "b.wait", "5 minutes", 0, "is not a duration" },
	{ "b.mode", "three", 1, NULL },
	{ "b.mode", "four", 0, "is not one of one|two|three" },
	{ "a.bogus", "1", 0, "unknown setting 'a.bogus'" },
};

static void
test_set(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(set_cases) / sizeof(set_cases[0]); i++) {
		const struct set_case *c = &set_cases[i];
		struct settings s;
		char err[256] = "";
		int r;

		memset(&s, 0, sizeof(s));
		config_defaults(defs, NDEFS, &s);
		r = config_set(defs, NDEFS, &s, c->name, c->value,
		    "here: ", err, sizeof(err));
		if (c->ok) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -1);
			assert_non_null(strstr(err, c->err_part));
			assert_non_null(strstr(err, "here: "));
		}
		config_free(defs, NDEFS, &s);
	}
}

static void
test_values(void **state)
{
	struct settings s;
	char err[256];

	(void)state;
	memset(&s, 0, sizeof(s));
	config_defaults(defs, NDEFS, &s);
	assert_int_equal(config_set(defs, NDEFS, &s, "b.size", "50M", NULL, err,
			     sizeof(err)),
	    0);
	assert_int_equal(s.size, 50u << 20);
	assert_int_equal(config_set(defs, NDEFS, &s, "b.wait", "250ms", NULL,
			     err, sizeof(err)),
	    0);
	assert_int_equal(s.wait, 250);
	assert_int_equal(
	    config_set(defs, NDEFS, &s, "b.wait", "2h", NULL, err, sizeof(err)),
	    -1);
	assert_int_equal(s.wait, 250); /* a refused value changes nothing */
	config_free(defs, NDEFS, &s);
}

static char *
write_temp(const char *text)
{
	char *path = xstrdup("/tmp/herald-test-conf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_file(void **state)
{
	struct settings s;
	char err[512];
	char *path;

	(void)state;
	memset(&s, 0, sizeof(s));
	config_defaults(defs, NDEFS, &s);
	path = write_temp("# comment\n\n[a]\nname = hello world  # trailing\n"
			  "count=9\n[b]\nmode = one\na.flag = yes\n");
	assert_int_equal(
	    config_load_file(defs, NDEFS, &s, path, err, sizeof(err)), 0);
	assert_string_equal(s.name, "hello world");
	assert_int_equal(s.count, 9);
	assert_int_equal(s.mode, 0);
	assert_true(s.flag);
	unlink(path);
	free(path);

	path = write_temp("[a]\ncount = 3\n\nbogus = 1\n");
	assert_int_equal(
	    config_load_file(defs, NDEFS, &s, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":4: unknown setting 'a.bogus'"));
	assert_non_null(strstr(err, path));
	unlink(path);
	free(path);

	path = write_temp("a.count\n");
	assert_int_equal(
	    config_load_file(defs, NDEFS, &s, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: expected 'name = value'"));
	unlink(path);
	free(path);

	path = write_temp("[a\ncount = 1\n");
	assert_int_equal(
	    config_load_file(defs, NDEFS, &s, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: bad section header"));
	unlink(path);
	free(path);

	assert_int_equal(config_load_file(defs, NDEFS, &s,
			     "/nonexistent/herald.conf", err, sizeof(err)),
	    1);
	config_free(defs, NDEFS, &s);
}

static void
test_dump(void **state)
{
	struct settings s;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	memset(&s, 0, sizeof(s));
	config_defaults(defs, NDEFS, &s);
	f = open_memstream(&text, &len);
	config_dump(defs, NDEFS, &s, f);
	fclose(f);
	assert_non_null(strstr(text, "a.name = x\n"));
	assert_non_null(strstr(text, "a.count = 5\n"));
	assert_non_null(strstr(text, "a.flag = no\n"));
	assert_non_null(strstr(text, "b.size = 1024\n"));
	assert_non_null(strstr(text, "b.wait = 30s\n"));
	assert_non_null(strstr(text, "b.mode = two\n"));
	assert_non_null(strstr(text, "# an enum"));
	free(text);
	config_free(defs, NDEFS, &s);
}

static void
test_parsers(void **state)
{
	uint64_t v;
	int64_t i;

	(void)state;
	assert_int_equal(parse_size("10", &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_size("1G", &v), 0);
	assert_int_equal(v, 1u << 30);
	assert_int_equal(parse_size("1T", &v), -1);
	assert_int_equal(parse_size("", &v), -1);
	assert_int_equal(parse_duration_ms("1d", &v), 0);
	assert_int_equal(v, 86400000);
	assert_int_equal(parse_duration_ms("17", &v), 0);
	assert_int_equal(v, 17000);
	assert_int_equal(parse_int("-42", &i), 0);
	assert_int_equal(i, -42);
	assert_int_equal(parse_int("4 2", &i), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_dump),
		cmocka_unit_test(test_parsers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
