/*
 * test_segment.c - the segment filter language (contacts/segment.c):
 * golden SQL and parameters per operator, errors with their column,
 * limits, and the SQL run against an in-memory SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "contacts/segment.h"

#define NOW 1772323200 /* 2026-03-01T00:00:00Z */
#define D20260101 1767225600
#define D20260102 1767312000

#define FIELDS_SQL                                                             \
	"EXISTS (SELECT 1 FROM (SELECT json_extract(c.attrs, ?) AS v) f "      \
	"WHERE f.v IS NOT NULL AND "
#define LIST_SQL                                                               \
	"EXISTS (SELECT 1 FROM subscriptions s JOIN lists l ON "               \
	"l.id = s.list_id WHERE s.contact_id = c.id AND "                      \
	"l.account_id = c.account_id AND s.status = 'subscribed' AND "
#define JOINED_SQL                                                             \
	"EXISTS (SELECT 1 FROM subscriptions s WHERE "                         \
	"s.contact_id = c.id AND s.status = 'subscribed' AND "
#define ACC "c.account_id = ? AND "

static const char *const plans[] = { "free", "pro", "team" };
static const struct segment_field field_v[] = {
	{ "city", 11, SEGMENT_FIELD_TEXT, NULL, 0 },
	{ "age", 12, SEGMENT_FIELD_NUMBER, NULL, 0 },
	{ "vip", 13, SEGMENT_FIELD_BOOLEAN, NULL, 0 },
	{ "plan", 14, SEGMENT_FIELD_ONE_OF, plans, 3 },
	{ "renewal", 15, SEGMENT_FIELD_DATE, NULL, 0 },
};
static const struct segment_fields fields = { field_v, 5 };

/* render - the parameters as "i:0 s:x d:1.5" */
static void
render(const struct segment_sql *o, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < o->nparams && n < len; i++) {
		const struct segment_param *p = &o->params[i];
		const char *sep = i ? " " : "";

		if (p->type == SEGMENT_PARAM_INT)
			n += snprintf(
			    buf + n, len - n, "%si:%lld", sep, (long long)p->i);
		else if (p->type == SEGMENT_PARAM_DOUBLE)
			n += snprintf(buf + n, len - n, "%sd:%g", sep, p->d);
		else
			n += snprintf(buf + n, len - n, "%ss:%s", sep, p->s);
	}
}

static size_t
count_q(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '?';
	return n;
}

static const struct {
	const char *in, *where, *params;
} golden[] = {
	{ "email = \"A@B.com\"", ACC "lower(c.email) = ?", "i:0 s:a@b.com" },
	{ "name != \"x\"", ACC "NOT (c.name = ?)", "i:0 s:x" },
	{ "status = \"active\"", ACC "c.status = ?", "i:0 s:active" },
	{ "created = 2026-01-01",
	    ACC "(c.created_at >= ? AND c.created_at < ?)",
	    "i:0 i:1767225600 i:1767312000" },
	{ "created != 2026-01-01",
	    ACC "NOT ((c.created_at >= ? AND c.created_at < ?))",
	    "i:0 i:1767225600 i:1767312000" },
	{ "created < 2026-01-01", ACC "c.created_at < ?", "i:0 i:1767225600" },
	{ "created <= 2026-01-01", ACC "c.created_at < ?", "i:0 i:1767312000" },
	{ "created > 2026-01-01", ACC "c.created_at >= ?", "i:0 i:1767312000" },
	{ "created >= 2026-01-01", ACC "c.created_at >= ?",
	    "i:0 i:1767225600" },
	{ "updated before 2 weeks ago", ACC "c.updated_at < ?",
	    "i:0 i:1771113600" },
	{ "joined within 1 month", ACC JOINED_SQL "s.created_at >= ?)",
	    "i:0 i:1769731200" },
	{ "joined within 30 days", ACC JOINED_SQL "s.created_at >= ?)",
	    "i:0 i:1769731200" },
	{ "joined before 1 day ago", ACC JOINED_SQL "s.created_at < ?)",
	    "i:0 i:1772236800" },
	{ "name is empty", ACC "NOT ((c.name IS NOT NULL AND c.name <> ''))",
	    "i:0" },
	{ "name is not empty", ACC "(c.name IS NOT NULL AND c.name <> '')",
	    "i:0" },
	{ "field.city is not empty",
	    ACC FIELDS_SQL "(f.v IS NOT NULL AND f.v <> ''))",
	    "i:0 s:$.\"city\"" },
	{ "field.age is empty", ACC "NOT " FIELDS_SQL "(f.v IS NOT NULL))",
	    "i:0 s:$.\"age\"" },
	{ "list is empty",
	    ACC "NOT " LIST_SQL "(l.name IS NOT NULL AND l.name <> ''))",
	    "i:0" },
	{ "list = \"news\"", ACC LIST_SQL "l.name = ?)", "i:0 s:news" },
	{ "list != \"a\"", ACC "NOT " LIST_SQL "l.name = ?)", "i:0 s:a" },
	{ "list in (\"a\",\"b\")", ACC LIST_SQL "l.name IN (?, ?))",
	    "i:0 s:a s:b" },
	{ "list contains \"News\"",
	    ACC LIST_SQL "lower(l.name) LIKE ? ESCAPE '\\')", "i:0 s:%news%" },
	{ "field.age > 1.5", ACC FIELDS_SQL "f.v > ?)",
	    "i:0 s:$.\"age\" d:1.5" },
	{ "field.age < 10", ACC FIELDS_SQL "f.v < ?)", "i:0 s:$.\"age\" i:10" },
	{ "field.age <= 10", ACC FIELDS_SQL "f.v <= ?)",
	    "i:0 s:$.\"age\" i:10" },
	{ "field.age >= 30", ACC FIELDS_SQL "f.v >= ?)",
	    "i:0 s:$.\"age\" i:30" },
	{ "field.age != 3", ACC "NOT " FIELDS_SQL "f.v = ?)",
	    "i:0 s:$.\"age\" i:3" },
	{ "field.age in (1, -2, 3.5)", ACC FIELDS_SQL "f.v IN (?, ?, ?))",
	    "i:0 s:$.\"age\" i:1 i:-2 d:3.5" },
	{ "field.vip = false", ACC FIELDS_SQL "f.v = ?)",
	    "i:0 s:$.\"vip\" i:0" },
	{ "field.plan in (\"pro\", \"team\")", ACC FIELDS_SQL "f.v IN (?, ?))",
	    "i:0 s:$.\"plan\" s:pro s:team" },
	{ "field.renewal = 2026-01-01",
	    ACC FIELDS_SQL "(f.v >= ? AND f.v < ?))",
	    "i:0 s:$.\"renewal\" i:1767225600 i:1767312000" },
	{ "name contains \"50%_\\\\\"", ACC "lower(c.name) LIKE ? ESCAPE '\\'",
	    "i:0 s:%50\\%\\_\\\\%" },
	{ "name starts_with \"Ab\"", ACC "lower(c.name) LIKE ? ESCAPE '\\'",
	    "i:0 s:ab%" },
	{ "email ends_with \"@Example.com\"",
	    ACC "lower(c.email) LIKE ? ESCAPE '\\'", "i:0 s:%@example.com" },
	{ "name = \"say \\\"hi\\\"\"", ACC "c.name = ?", "i:0 s:say \"hi\"" },
	/* precedence: not > and > or; keywords in any case */
	{ "status = \"a\" or status = \"b\" and not (name = \"c\" or name = "
	  "\"d\")",
	    ACC "(c.status = ? OR (c.status = ? AND NOT ((c.name = ? OR "
		"c.name = ?))))",
	    "i:0 s:a s:b s:c s:d" },
	{ "(status = \"a\" OR status = \"b\") AND Name = \"c\"",
	    ACC "((c.status = ? OR c.status = ?) AND c.name = ?)",
	    "i:0 s:a s:b s:c" },
	{ "not not name = \"a\"", ACC "NOT (NOT (c.name = ?))", "i:0 s:a" },
	/* a malicious string is a parameter, nothing else */
	{ "name = \"x' OR 1=1 --\"", ACC "c.name = ?", "i:0 s:x' OR 1=1 --" },
};

static void
test_golden(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		struct segment_sql o;
		char err[256], params[1024];

		if (segment_compile(
			golden[i].in, &fields, NOW, &o, err, sizeof(err)) != 0)
			fail_msg("%s: %s", golden[i].in, err);
		render(&o, params, sizeof(params));
		if (strcmp(o.where, golden[i].where) != 0 ||
		    strcmp(params, golden[i].params) != 0)
			fail_msg("%s:\n got %s\n     %s\nwant %s\n     %s",
			    golden[i].in, o.where, params, golden[i].where,
			    golden[i].params);
		assert_int_equal(count_q(o.where), o.nparams);
		segment_sql_free(&o);
		assert_null(o.where);
	}
}

static void
test_example(void **state)
{
	const char *in =
	    "email ends_with \"@example.com\" and (field.city = \"Paris\" or "
	    "field.age >= 30) and joined within 30 days and not status = "
	    "\"unsubscribed\" and list = \"newsletter\" and field.vip = true "
	    "and field.plan in (\"pro\", \"team\") and created > 2026-01-01";
	struct segment_sql o;
	char err[256], params[1024];

	(void)state;
	assert_int_equal(
	    segment_compile(in, &fields, NOW, &o, err, sizeof(err)), 0);
	render(&o, params, sizeof(params));
	assert_string_equal(o.where,
	    ACC "(lower(c.email) LIKE ? ESCAPE '\\' AND (" FIELDS_SQL
		"f.v = ?) OR " FIELDS_SQL "f.v >= ?)) AND " JOINED_SQL
		"s.created_at >= ?) AND NOT (c.status = ?) AND " LIST_SQL
		"l.name = ?) AND " FIELDS_SQL "f.v = ?) AND " FIELDS_SQL
		"f.v IN (?, ?)) AND c.created_at >= ?)");
	assert_string_equal(params,
	    "i:0 s:%@example.com s:$.\"city\" s:Paris s:$.\"age\" i:30 "
	    "i:1769731200 "
	    "s:unsubscribed s:newsletter s:$.\"vip\" i:1 s:$.\"plan\" s:pro "
	    "s:team "
	    "i:1767312000");
	segment_sql_free(&o);
}

static const struct {
	const char *in, *err;
} errors[] = {
	{ "", "column 1: expected a field name" },
	{ "a = 1", "column 1: unknown field 'a'" },
	{ "field.nope = 1", "column 1: unknown field 'field.nope'" },
	{ "field.age = \"x\"",
	    "column 13: field.age is a number, \"x\" is a string" },
	{ "email = ", "column 9: expected a value after '='" },
	{ "field.plan = \"gold\"",
	    "column 14: \"gold\" is not a value of field.plan" },
	{ "created = 2026-02-30", "column 11: no such day '2026-02-30'" },
	{ "name = \"x\" name",
	    "column 12: expected 'and', 'or' or the end, not 'name'" },
	{ "name < \"x\"", "column 6: '<' does not apply to name (a text)" },
	{ "\"x\" = 1", "column 1: expected a field name" },
	{ "name = \"unterminated", "column 8: unterminated string" },
	{ "name = \"bad \\n\"", "column 13: only \\\" and \\\\ are escapes" },
	{ "name # y", "column 6: unexpected character '#'" },
	{ "created within x days",
	    "column 16: expected a number of days, weeks or months after "
	    "'within'" },
	{ "created within 3 years",
	    "column 18: expected days, weeks or months" },
	{ "created before 3 days", "column 22: expected 'ago'" },
	{ "field.vip in (true)",
	    "column 11: 'in' does not apply to field.vip (a boolean)" },
	{ "field.vip = 1", "column 13: field.vip is a boolean, 1 is a number" },
	{ "name = 12345678901234567890",
	    "column 8: number '12345678901234567890' is too long" },
	{ "name = \"a\" or", "column 14: expected a field name" },
	{ "(name = \"a\"", "column 12: expected ')'" },
	{ "field.age in 1", "column 14: expected '(' after 'in'" },
	{ "field.age in (1 2)", "column 17: expected ',' or ')'" },
	{ "field.age in (1,)", "column 17: expected a value after ','" },
	{ "name is full", "column 9: expected 'empty' after 'is'" },
	{ "name ! \"x\"", "column 6: expected '!='" },
	{ "name = 12ab", "column 8: malformed number '12ab'" },
	{ "name \x01", "column 6: unexpected byte 0x01" },
	{ "name", "column 5: expected an operator after 'name'" },
	{ "email contains 5", "column 16: email is a text, 5 is a number" },
};

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		struct segment_sql o;
		char err[256];

		if (segment_compile(
			errors[i].in, &fields, NOW, &o, err, sizeof(err)) == 0)
			fail_msg("%s: compiled to %s", errors[i].in, o.where);
		if (strcmp(err, errors[i].err) != 0)
			fail_msg("%s:\n got %s\nwant %s", errors[i].in, err,
			    errors[i].err);
		assert_null(o.where);
		assert_null(o.params);
		assert_int_equal(o.nparams, 0);
	}
}

/* compile_err - compile text, expecting an error; returns it */
static const char *
compile_err(const char *text, char *err, size_t len)
{
	struct segment_sql o;

	assert_int_equal(segment_compile(text, &fields, NOW, &o, err, len), -1);
	return err;
}

static void
test_limits(void **state)
{
	static char buf[SEGMENT_TEXT_MAX + 64];
	char err[256];
	struct segment_sql o;
	size_t n = 0;

	(void)state;
	/* length */
	memset(buf, ' ', SEGMENT_TEXT_MAX + 1);
	memcpy(buf, "name = \"x\"", 10);
	buf[SEGMENT_TEXT_MAX + 1] = '\0';
	assert_string_equal(compile_err(buf, err, sizeof(err)),
	    "column 4097: longer than 4096 bytes");
	buf[SEGMENT_TEXT_MAX] = '\0';
	assert_int_equal(
	    segment_compile(buf, &fields, NOW, &o, err, sizeof(err)), 0);
	segment_sql_free(&o);

	/* depth: 32 parentheses are fine, 33 are not */
	for (n = 0; n < 32; n++)
		buf[n] = '(';
	strcpy(buf + n, "name = \"x\"");
	for (size_t i = 0; i < 32; i++)
		strcat(buf, ")");
	assert_int_equal(
	    segment_compile(buf, &fields, NOW, &o, err, sizeof(err)), 0);
	segment_sql_free(&o);
	memmove(buf + 1, buf, strlen(buf) + 1);
	strcat(buf, ")");
	assert_string_equal(compile_err(buf, err, sizeof(err)),
	    "column 33: nesting deeper than 32");
	buf[0] = '\0';
	for (n = 0; n < 33; n++)
		strcat(buf, "not ");
	strcat(buf, "name = \"x\"");
	assert_string_equal(compile_err(buf, err, sizeof(err)),
	    "column 129: nesting deeper than 32");

	/* terms: 100 conditions are fine, 101 are not */
	buf[0] = '\0';
	for (n = 0; n < 100; n++)
		strcat(buf, n ? " or field.age=1" : "field.age=1");
	assert_int_equal(
	    segment_compile(buf, &fields, NOW, &o, err, sizeof(err)), 0);
	assert_int_equal(o.nparams, 201);
	segment_sql_free(&o);
	strcat(buf, " or field.age=1");
	assert_string_equal(compile_err(buf, err, sizeof(err)),
	    "column 1501: more than 100 conditions");

	/* values of one 'in' */
	strcpy(buf, "field.age in (0");
	for (n = 1; n < 100; n++)
		strcat(buf, ",1");
	strcat(buf, ")");
	assert_int_equal(
	    segment_compile(buf, &fields, NOW, &o, err, sizeof(err)), 0);
	segment_sql_free(&o);
	buf[strlen(buf) - 1] = '\0';
	strcat(buf, ",1)");
	assert_string_equal(compile_err(buf, err, sizeof(err)),
	    "column 214: more than 100 values in 'in'");

	/* a tiny error buffer is not overrun */
	assert_int_equal(segment_compile("x", &fields, NOW, &o, err, 4), -1);
	assert_string_equal(err, "col");
	/* no field table: custom fields are unknown */
	assert_int_equal(
	    segment_compile("field.age = 1", NULL, NOW, &o, err, sizeof(err)),
	    -1);
}

/* ---- execution against SQLite ---- */

static const char schema[] =
    "CREATE TABLE contacts (id INTEGER PRIMARY KEY, account_id INTEGER NOT "
    "NULL, email TEXT NOT NULL, name TEXT, status TEXT NOT NULL, "
    "created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
    "attrs TEXT NOT NULL DEFAULT '{}');"
    "CREATE TABLE lists (id INTEGER PRIMARY KEY, account_id INTEGER NOT "
    "NULL, name TEXT NOT NULL);"
    "CREATE TABLE subscriptions (contact_id INTEGER NOT NULL, list_id "
    "INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL);"
    /* account 1: contacts 1-4; account 2: contacts 5-6, look-alikes */
    "INSERT INTO contacts VALUES"
    " (1, 1, 'Ann@Example.com', 'Ann', 'active', 1767225600, 1767225600,"
    " '{\"city\":\"Paris\",\"age\":25,\"vip\":true,\"plan\":\"pro\"}'),"
    " (2, 1, 'bob@other.org', NULL, 'active', 1767312000, 1767312000,"
    " '{\"city\":\"Berlin\",\"age\":40,\"plan\":\"team\"}'),"
    " (3, 1, 'carl@example.com', 'Carl', 'unsubscribed', 1764547200, "
    "1764547200, '{\"city\":\"Paris\"}'),"
    " (4, 1, 'dee@example.com', '', 'active', 1772236800, 1772236800,"
    " '{\"age\":30.5}'),"
    " (5, 2, 'ann@example.com', 'Ann', 'active', 1767225600, 1767225600,"
    " '{\"city\":\"Paris\",\"age\":25,\"vip\":true}'),"
    " (6, 2, 'eve@example.com', 'Eve', 'active', 1772236800, 1772236800,"
    " '{\"city\":\"x'' OR 1=1 --\"}');"
    "INSERT INTO lists VALUES (1, 1, 'newsletter'), (2, 1, 'promo'),"
    " (3, 2, 'newsletter');"
    "INSERT INTO subscriptions VALUES (1, 1, 'subscribed', 1772236800),"
    " (2, 2, 'subscribed', 1764547200), (3, 1, 'unsubscribed', 1772236800),"
    " (5, 3, 'subscribed', 1772236800), (6, 3, 'subscribed', 1772236800);";

/* run - the ids of account matching text, as "1,2" */
static void
run(sqlite3 *db, int64_t account, const char *text, char *ids, size_t len)
{
	struct segment_sql o;
	char err[256], *sql;
	sqlite3_stmt *st;
	size_t n = 0;

	if (segment_compile(text, &fields, NOW, &o, err, sizeof(err)) != 0)
		fail_msg("%s: %s", text, err);
	assert_true(asprintf(&sql,
			"SELECT c.id FROM contacts c WHERE %s "
			"ORDER BY c.id",
			o.where) > 0);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	o.params[0].i = account;
	for (size_t i = 0; i < o.nparams; i++) {
		const struct segment_param *p = &o.params[i];
		int col = (int)i + 1;

		if (p->type == SEGMENT_PARAM_INT)
			sqlite3_bind_int64(st, col, p->i);
		else if (p->type == SEGMENT_PARAM_DOUBLE)
			sqlite3_bind_double(st, col, p->d);
		else
			sqlite3_bind_text(st, col, p->s, -1, SQLITE_STATIC);
	}
	ids[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW)
		n += snprintf(ids + n, len - n, "%s%lld", n ? "," : "",
		    (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	free(sql);
	segment_sql_free(&o);
}

static const struct {
	const char *in, *ids;
} exec_cases[] = {
	{ "email ends_with \"@EXAMPLE.com\"", "1,3,4" },
	{ "email = \"ann@example.com\"", "1" },
	{ "field.city = \"Paris\" or field.age >= 30", "1,2,3,4" },
	{ "field.age > 25 and field.age < 40", "4" },
	{ "field.age in (25, 40)", "1,2" },
	{ "list = \"newsletter\"", "1" },
	{ "list != \"newsletter\"", "2,3,4" },
	{ "list is empty", "3,4" },
	{ "joined within 30 days", "1" },
	{ "joined before 30 days ago", "2" },
	{ "not status = \"unsubscribed\"", "1,2,4" },
	{ "field.vip = true", "1" },
	{ "field.vip != true", "2,3,4" },
	{ "field.plan in (\"pro\", \"team\")", "1,2" },
	{ "created > 2026-01-01", "2,4" },
	{ "created = 2026-01-01", "1" },
	{ "created >= 2026-01-01 and created <= 2026-01-02", "1,2" },
	{ "name is empty", "2,4" },
	{ "name is not empty", "1,3" },
	{ "name contains \"AR\"", "3" },
	{ "field.city is empty", "4" },
	{ "field.city = \"x' OR 1=1 --\"", "" },
	{ "name = \"x' OR 1=1 --\" or name = \"Ann\"", "1" },
	{ "email ends_with \"@example.com\" and (field.city = \"Paris\" or "
	  "field.age >= 30) and joined within 30 days and not status = "
	  "\"unsubscribed\" and list = \"newsletter\" and field.vip = true and "
	  "field.plan in (\"pro\", \"team\") and created > 2025-12-31",
	    "1" },
};

static void
test_sqlite(void **state)
{
	sqlite3 *db;
	char *msg = NULL, ids[256];

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("schema: %s", msg);
	for (size_t i = 0; i < sizeof(exec_cases) / sizeof(exec_cases[0]);
	     i++) {
		run(db, 1, exec_cases[i].in, ids, sizeof(ids));
		if (strcmp(ids, exec_cases[i].ids) != 0)
			fail_msg("%s: got '%s', want '%s'", exec_cases[i].in,
			    ids, exec_cases[i].ids);
	}
	/* the other account sees only its own contacts */
	run(db, 2, "field.city = \"Paris\" or list = \"newsletter\"", ids,
	    sizeof(ids));
	assert_string_equal(ids, "5,6");
	run(db, 2, "field.city = \"x' OR 1=1 --\"", ids, sizeof(ids));
	assert_string_equal(ids, "6");
	run(db, 3, "not name = \"nobody\"", ids, sizeof(ids));
	assert_string_equal(ids, "");
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_sqlite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
