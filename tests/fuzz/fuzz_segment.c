/*
 * fuzz_segment - the segment filter language (contacts/segment.c) on
 * arbitrary bytes.
 *
 * The input, cut at its first NUL, is compiled against a field table
 * with one field of each type.
 *
 * What must hold:
 *   1. segment_compile returns 0 or -1 and never crashes;
 *   2. on success the where clause starts with the account condition,
 *      holds as many '?' as there are parameters, the first parameter
 *      is the account (an int), and no byte of the input that is not
 *      part of a name or keyword reaches the SQL: it has no '"' and
 *      no ';';
 *   3. on failure out is empty and err is "column N: ..." with N from
 *      1 to strlen(input) + 1;
 *   4. nothing leaks (run it under ASan/LSan).
 *
 * See fuzz_main.c for how to run it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts/segment.h"
#include "fuzz.h"

const char *const fuzz_seeds[] = {
	"email ends_with \"@example.com\" and (field.city = \"Paris\" or "
	"field.age >= 30) and joined within 30 days and not status = "
	"\"unsubscribed\" and list = \"newsletter\" and field.vip = true and "
	"field.plan in (\"pro\", \"team\") and created > 2026-01-01",
	"name contains \"50%_\\\\\" or name starts_with \"a\\\"b\"",
	"created = 2026-02-29 or updated before 2 weeks ago",
	"field.renewal <= 2026-12-31 and field.age in (1, -2, 3.5)",
	"not not (list is empty or field.city is not empty)",
	"name = \"x' OR 1=1 --\"",
	"((((name = \"a\"))))",
	"field.age = \"x\"",
	"email = ",
	"list != \"a\" OR Status = \"b\" AND NAME != \"c\"",
	"created within 100000 months",
	"name = 123456789012345678 or field.age > -0.5",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

static const char *const plans[] = { "free", "pro", "team" };
static const struct segment_field field_v[] = {
	{ "city", 11, SEGMENT_FIELD_TEXT, NULL, 0 },
	{ "age", 12, SEGMENT_FIELD_NUMBER, NULL, 0 },
	{ "vip", 13, SEGMENT_FIELD_BOOLEAN, NULL, 0 },
	{ "plan", 14, SEGMENT_FIELD_ONE_OF, plans, 3 },
	{ "renewal", 15, SEGMENT_FIELD_DATE, NULL, 0 },
};
static const struct segment_fields fields = { field_v, 5 };

/* check_ok - invariant 2 */
static void
check_ok(const struct segment_sql *o)
{
	size_t q = 0;

	CHECK(o->where != NULL && o->nparams >= 1);
	CHECK(strncmp(o->where, "c.account_id = ? AND ", 21) == 0);
	CHECK(o->params[0].type == SEGMENT_PARAM_INT && o->params[0].i == 0);
	for (const char *s = o->where; *s; s++) {
		q += *s == '?';
		CHECK(*s != '"' && *s != ';');
	}
	CHECK(q == o->nparams);
	for (size_t i = 0; i < o->nparams; i++)
		CHECK(o->params[i].type != SEGMENT_PARAM_TEXT ||
		    o->params[i].s != NULL);
}

/* check_err - invariant 3 */
static void
check_err(const struct segment_sql *o, const char *err, size_t len)
{
	unsigned long col = 0;
	int used = 0;

	CHECK(o->where == NULL && o->params == NULL && o->nparams == 0);
	CHECK(sscanf(err, "column %lu: %n", &col, &used) == 1 && used > 0);
	CHECK(col >= 1 && col <= len + 1);
	CHECK(err[used] != '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct segment_sql o;
	char err[256];
	char *text;
	int rc;

	if (size > 2 * SEGMENT_TEXT_MAX)
		return 0;
	text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	rc = segment_compile(text, &fields, 1772323200, &o, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		check_ok(&o);
		segment_sql_free(&o);
		CHECK(o.where == NULL && o.params == NULL);
	} else {
		check_err(&o, err, strlen(text));
	}
	free(text);
	return 0;
}
