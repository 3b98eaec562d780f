/*
 * segment.c - the segment filter language, compiled to SQL.
 *
 * Grammar (keywords and built-in names are ASCII case-insensitive;
 * custom field names are matched exactly; white space separates):
 *
 *   segment   := or END
 *   or        := and { "or" and }
 *   and       := unary { "and" unary }
 *   unary     := "not" unary | "(" or ")" | condition
 *   condition := name cmp value
 *              | name ("contains" | "starts_with" | "ends_with") string
 *              | name "in" "(" value { "," value } ")"
 *              | name "is" [ "not" ] "empty"
 *              | name "within" INT unit
 *              | name "before" INT unit "ago"
 *   cmp       := "=" | "!=" | "<" | "<=" | ">" | ">="
 *   unit      := "day" | "days" | "week" | "weeks" | "month" | "months"
 *   name      := "email" | "name" | "status" | "created" | "updated"
 *              | "joined" | "list" | "field." NAME
 *   value     := string | INT | DECIMAL | "true" | "false" | DATE
 *   string    := '"' { char | '\"' | '\\' } '"'
 *   INT       := [ "-" ] digit { digit }           (at most 18 digits)
 *   DECIMAL   := INT "." digit { digit }
 *   DATE      := digit{4} "-" digit{2} "-" digit{2}  (a UTC day)
 *
 * Types: email, name, status and list are text; created, updated and
 * joined are dates; a custom field has the type of the field table.
 * Operators by type: text: = != contains starts_with ends_with in,
 * is [not] empty; one-of: = != in, is [not] empty; number: the six
 * comparisons, in, is [not] empty; date: the six comparisons, within,
 * before, is [not] empty; boolean: = !=, is [not] empty.  A value of
 * another type, or a one-of value not in the field's list, is an error.
 *
 * Meaning: a date literal is a whole day: "created = 2026-01-01" is
 * [day, day + 1) and "created > 2026-01-01" is ">= day + 1".  A month
 * is 30 days.  email is compared in lower case; contains, starts_with
 * and ends_with are ASCII case-insensitive on every column (LIKE on
 * lower(), with '%', '_' and '\' escaped).  list matches a list of the
 * contact's account the contact is subscribed to; joined is the time
 * of any of the contact's live subscriptions; "x != v" is "not (x = v)", so
 * on list, joined and custom fields it also matches contacts with no
 * value, and on a built-in column a NULL never matches.
 *
 * Schema assumed (dates are Unix seconds):
 *   contacts c (id, account_id, email, name, status, created_at,
 *               updated_at)
 *               attrs: a JSON object of custom field values by name
 *               (read with json_extract: SQLite's JSON1)
 *   subscriptions (contact_id, list_id, status, created_at),
 *               status 'subscribed' for a live subscription
 *   lists (id, account_id, name)
 * The expression is for "SELECT ... FROM contacts c WHERE <where>" and
 * always starts "c.account_id = ? AND": the first parameter is the
 * account.  The SQL uses only syntax common to SQLite >= 3.35 and
 * PostgreSQL.
 *
 * Errors name the 1-based byte column of the offending token (the end
 * of the text is column strlen + 1).  Limits: SEGMENT_TEXT_MAX bytes,
 * SEGMENT_DEPTH_MAX nested "(" and "not", SEGMENT_TERMS_MAX conditions
 * and values in one "in".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contacts/segment.h"
#include "lib/util.h"

#define DAY 86400
#define INT_DIGITS_MAX 18
#define REL_MAX 100000 /* N of "within N days" */

enum tok_kind {
	T_END,
	T_IDENT,
	T_STRING,
	T_INT,
	T_DEC,
	T_DATE,
	T_OP,
	T_LPAREN,
	T_RPAREN,
	T_COMMA
};

struct tok {
	enum tok_kind kind;
	const char *s; /* as written */
	size_t len;
	size_t col;
};

/* Where a name lives: a column of c, or inside an EXISTS. */
enum target_kind { TG_DIRECT, TG_FIELD, TG_LIST, TG_JOINED };

struct target {
	char name[80]; /* as the user wrote it, for messages */
	enum target_kind kind;
	enum segment_field_type type;
	const char *col;
	bool ci; /* compare in lower case */
	const struct segment_field *field;
};

enum val_kind { V_STR, V_INT, V_DEC, V_DATE, V_BOOL };

struct val {
	enum val_kind kind;
	int64_t i;
	double d;
	char *s;
	struct tok t;
};

struct parser {
	const char *text;
	const char *pos;
	struct tok t;
	const struct segment_fields *fields;
	int64_t now;
	char *sql;
	size_t len, cap;
	struct segment_param *params;
	size_t nparams, pcap;
	int depth, terms;
	char *err;
	size_t errlen;
};

static const char *const type_names[] = { "a text", "a number", "a date",
	"a boolean", "one of a set of values" };

/* fail - record the error at column col; returns -1 */
static int __attribute__((format(printf, 3, 4)))
fail(struct parser *p, size_t col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errlen > 0)
		snprintf(p->err, p->errlen, "column %zu: %s", col, msg);
	return -1;
}

/* tok_width - the printf width of the token as written, at most 40 bytes, for a
 * message */
static int
tok_width(const struct tok *t)
{
	return t->kind == T_END ? 0 : (int)(t->len > 40 ? 40 : t->len);
}

static void
emit(struct parser *p, const char *s)
{
	size_t n = strlen(s);

	if (p->len + n + 1 > p->cap) {
		p->cap = (p->len + n + 1) * 2;
		p->sql = xrealloc(p->sql, p->cap);
	}
	memcpy(p->sql + p->len, s, n + 1);
	p->len += n;
}

/* emit_at - insert s at offset off of the SQL */
static void
emit_at(struct parser *p, size_t off, const char *s)
{
	size_t n = strlen(s), tail = p->len - off;

	emit(p, s); /* grows the buffer */
	memmove(p->sql + off + n, p->sql + off, tail);
	memcpy(p->sql + off, s, n);
}

static struct segment_param *
param_new(struct parser *p, enum segment_param_type type)
{
	struct segment_param *sp;

	if (p->nparams == p->pcap) {
		p->pcap = p->pcap ? p->pcap * 2 : 8;
		p->params = xrealloc(p->params, p->pcap * sizeof(*p->params));
	}
	sp = &p->params[p->nparams++];
	memset(sp, 0, sizeof(*sp));
	sp->type = type;
	return sp;
}

static void
param_int(struct parser *p, int64_t i)
{
	param_new(p, SEGMENT_PARAM_INT)->i = i;
}

/* param_text - takes ownership of s */
static void
param_text(struct parser *p, char *s)
{
	param_new(p, SEGMENT_PARAM_TEXT)->s = s;
}

/* param_path - the JSON path of a custom field's value in c.attrs; names
   are identifiers (is_ident), so they need no escaping inside the quotes */
static void
param_path(struct parser *p, const char *name)
{
	size_t n = strlen(name) + 5;
	char *path = xmalloc(n);

	snprintf(path, n, "$.\"%s\"", name);
	param_text(p, path);
}

/* ---- lexer ---- */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_ident(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (!first && is_digit(c));
}

static size_t
digits(const char *s)
{
	size_t n = 0;

	while (is_digit(s[n]))
		n++;
	return n;
}

/* lex_number - INT, DECIMAL or DATE at s */
static int
lex_number(struct parser *p, const char *s)
{
	size_t n = (*s == '-'), d = digits(s + n);

	p->t.kind = T_INT;
	if (*s != '-' && d == 4 && s[4] == '-' && digits(s + 5) == 2 &&
	    s[7] == '-' && digits(s + 8) == 2 && !is_digit(s[10])) {
		p->t.kind = T_DATE;
		n = 10;
	} else {
		n += d;
		if (s[n] == '.' && is_digit(s[n + 1])) {
			p->t.kind = T_DEC;
			n += 1 + digits(s + n + 1);
		}
	}
	p->t.len = n;
	if (is_ident(s[n], false) || s[n] == '.') {
		while (is_ident(s[n], false) || s[n] == '.')
			n++;
		return fail(p, p->t.col, "malformed number '%.*s'",
		    (int)(n > 40 ? 40 : n), s);
	}
	return 0;
}

/* lex_string - a quoted string; decoding is in string_value */
static int
lex_string(struct parser *p, const char *s)
{
	size_t n = 1;

	for (;;) {
		if (s[n] == '\0')
			return fail(p, p->t.col, "unterminated string");
		if (s[n] == '"')
			break;
		if (s[n] == '\\') {
			if (s[n + 1] != '"' && s[n + 1] != '\\')
				return fail(p, p->t.col + n,
				    "only \\\" and \\\\ are escapes");
			n++;
		}
		n++;
	}
	p->t.kind = T_STRING;
	p->t.len = n + 1;
	return 0;
}

/* next - read the next token into p->t */
static int
next(struct parser *p)
{
	const char *s = p->pos;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	p->t.s = s;
	p->t.col = (size_t)(s - p->text) + 1;
	p->t.len = 1;
	if (*s == '\0') {
		p->t.kind = T_END;
		p->t.len = 0;
	} else if (*s == '(' || *s == ')' || *s == ',') {
		p->t.kind = *s == '(' ? T_LPAREN
		    : *s == ')'	      ? T_RPAREN
				      : T_COMMA;
	} else if (*s == '=' || *s == '<' || *s == '>' || *s == '!') {
		p->t.kind = T_OP;
		if (s[1] == '=' && *s != '=')
			p->t.len = 2;
		else if (*s == '!')
			return fail(p, p->t.col, "expected '!='");
	} else if (*s == '"') {
		if (lex_string(p, s) < 0)
			return -1;
	} else if (is_digit(*s) || (*s == '-' && is_digit(s[1]))) {
		if (lex_number(p, s) < 0)
			return -1;
	} else if (is_ident(*s, true)) {
		size_t n = 1;

		while (is_ident(s[n], false) ||
		    (s[n] == '.' && is_ident(s[n + 1], false)))
			n++;
		p->t.kind = T_IDENT;
		p->t.len = n;
	} else {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c > 0x7e)
			return fail(p, p->t.col, "unexpected byte 0x%02x", c);
		return fail(p, p->t.col, "unexpected character '%c'", c);
	}
	p->pos = s + p->t.len;
	return 0;
}

static bool
is_kw(const struct tok *t, const char *kw)
{
	return t->kind == T_IDENT && t->len == strlen(kw) &&
	    strncasecmp(t->s, kw, t->len) == 0;
}

/* ---- values ---- */

/* string_value - the decoded contents of a T_STRING token */
static char *
string_value(const struct tok *t)
{
	char *d = xmalloc(t->len), *o = d;

	for (size_t i = 1; i + 1 < t->len; i++) {
		if (t->s[i] == '\\')
			i++;
		*o++ = t->s[i];
	}
	*o = '\0';
	return d;
}

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian day */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* date_value - Unix seconds of a T_DATE token, or -1 if no such day */
static int
date_value(struct parser *p, const struct tok *t, int64_t *out)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30,
		31 };
	int y = atoi(t->s), m = atoi(t->s + 5), d = atoi(t->s + 8);
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
	    (m == 2 && d == 29 && !leap))
		return fail(p, t->col, "no such day '%.10s'", t->s);
	*out = days_from_civil(y, m, d) * DAY;
	return 0;
}

/* int_value - a T_INT token */
static int
int_value(struct parser *p, const struct tok *t, int64_t *out)
{
	size_t neg = t->s[0] == '-';

	if (t->len - neg > INT_DIGITS_MAX)
		return fail(
		    p, t->col, "number '%.*s' is too long", tok_width(t), t->s);
	*out = strtoll(t->s, NULL, 10);
	return 0;
}

/* parse_value - read a value token (the current one) into v */
static int
parse_value(struct parser *p, struct val *v, const char *after)
{
	v->t = p->t;
	v->s = NULL;
	switch (p->t.kind) {
	case T_STRING:
		v->kind = V_STR;
		break;
	case T_INT:
		v->kind = V_INT;
		if (int_value(p, &p->t, &v->i) < 0)
			return -1;
		break;
	case T_DEC:
		v->kind = V_DEC;
		if (p->t.len > 40)
			return fail(p, p->t.col, "number is too long");
		v->d = strtod(p->t.s, NULL);
		break;
	case T_DATE:
		v->kind = V_DATE;
		if (date_value(p, &p->t, &v->i) < 0)
			return -1;
		break;
	default:
		if (is_kw(&p->t, "true") || is_kw(&p->t, "false")) {
			v->kind = V_BOOL;
			v->i = is_kw(&p->t, "true");
			break;
		}
		return fail(p, p->t.col, "expected a value after '%s'", after);
	}
	return next(p);
}

static const char *
val_type_name(enum val_kind k)
{
	switch (k) {
	case V_STR:
		return "a string";
	case V_DATE:
		return "a date";
	case V_BOOL:
		return "a boolean";
	default:
		return "a number";
	}
}

/* check_type - whether v fits the type of tg */
static int
check_type(struct parser *p, const struct target *tg, const struct val *v)
{
	bool ok;

	switch (tg->type) {
	case SEGMENT_FIELD_TEXT:
	case SEGMENT_FIELD_ONE_OF:
		ok = v->kind == V_STR;
		break;
	case SEGMENT_FIELD_NUMBER:
		ok = v->kind == V_INT || v->kind == V_DEC;
		break;
	case SEGMENT_FIELD_DATE:
		ok = v->kind == V_DATE;
		break;
	default:
		ok = v->kind == V_BOOL;
		break;
	}
	if (!ok)
		return fail(p, v->t.col, "%s is %s, %.*s is %s", tg->name,
		    type_names[tg->type], tok_width(&v->t), v->t.s,
		    val_type_name(v->kind));
	if (tg->type == SEGMENT_FIELD_ONE_OF) {
		char *s = string_value(&v->t);
		size_t i;

		for (i = 0; i < tg->field->nvalues; i++)
			if (strcmp(s, tg->field->values[i]) == 0)
				break;
		free(s);
		if (i == tg->field->nvalues)
			return fail(p, v->t.col, "%.*s is not a value of %s",
			    tok_width(&v->t), v->t.s, tg->name);
	}
	return 0;
}

/* push_value - v as the next parameter; day_end adds a day to a date */
static void
push_value(struct parser *p, const struct target *tg, const struct val *v,
    bool day_end)
{
	switch (v->kind) {
	case V_STR: {
		char *s = string_value(&v->t);

		param_text(p, tg->ci ? str_lower(s) : s);
		break;
	}
	case V_DEC:
		param_new(p, SEGMENT_PARAM_DOUBLE)->d = v->d;
		break;
	default:
		param_int(p, v->i + (day_end ? DAY : 0));
		break;
	}
}

/* ---- names ---- */

static const struct {
	const char *name;
	enum target_kind kind;
	enum segment_field_type type;
	const char *col;
	bool ci;
} builtins[] = {
	{ "email", TG_DIRECT, SEGMENT_FIELD_TEXT, "c.email", true },
	{ "name", TG_DIRECT, SEGMENT_FIELD_TEXT, "c.name", false },
	{ "status", TG_DIRECT, SEGMENT_FIELD_TEXT, "c.status", false },
	{ "created", TG_DIRECT, SEGMENT_FIELD_DATE, "c.created_at", false },
	{ "updated", TG_DIRECT, SEGMENT_FIELD_DATE, "c.updated_at", false },
	{ "joined", TG_JOINED, SEGMENT_FIELD_DATE, "s.created_at", false },
	{ "list", TG_LIST, SEGMENT_FIELD_TEXT, "l.name", false },
};

/* resolve - the target named by the current token */
static int
resolve(struct parser *p, struct target *tg)
{
	const struct tok *t = &p->t;

	if (t->kind != T_IDENT)
		return fail(p, t->col, "expected a field name");
	memset(tg, 0, sizeof(*tg));
	snprintf(tg->name, sizeof(tg->name), "%.*s", tok_width(t), t->s);
	for (size_t i = 0; i < NELEM(builtins); i++) {
		if (!is_kw(t, builtins[i].name))
			continue;
		tg->kind = builtins[i].kind;
		tg->type = builtins[i].type;
		tg->col = builtins[i].col;
		tg->ci = builtins[i].ci;
		return next(p);
	}
	if (t->len > 6 && strncasecmp(t->s, "field.", 6) == 0 &&
	    p->fields != NULL) {
		for (size_t i = 0; i < p->fields->n; i++) {
			const struct segment_field *f = &p->fields->v[i];

			if (strlen(f->name) != t->len - 6 ||
			    memcmp(f->name, t->s + 6, t->len - 6) != 0)
				continue;
			tg->kind = TG_FIELD;
			tg->type = f->type;
			tg->field = f;
			tg->col = "f.v";
			return next(p);
		}
	}
	return fail(p, t->col, "unknown field '%s'", tg->name);
}

/*
 * open_target - start a condition on tg; neg negates it.  For a name in
 * another table this is the head of an EXISTS that the predicate ends.
 */
static void
open_target(struct parser *p, const struct target *tg, bool neg)
{
	if (neg)
		emit(p, tg->kind == TG_DIRECT ? "NOT (" : "NOT ");
	switch (tg->kind) {
	case TG_DIRECT:
		break;
	case TG_FIELD:
		/* a one-row derived table, so that "no value" is "no row"
		   as for list and joined */
		emit(p,
		    "EXISTS (SELECT 1 FROM (SELECT json_extract(c.attrs, ?) "
		    "AS v) f WHERE f.v IS NOT NULL AND ");
		param_path(p, tg->field->name);
		break;
	case TG_LIST:
		emit(p,
		    "EXISTS (SELECT 1 FROM subscriptions s JOIN lists l ON "
		    "l.id = s.list_id WHERE s.contact_id = c.id AND "
		    "l.account_id = c.account_id AND "
		    "s.status = 'subscribed' AND ");
		break;
	case TG_JOINED:
		emit(p,
		    "EXISTS (SELECT 1 FROM subscriptions s WHERE "
		    "s.contact_id = c.id AND s.status = 'subscribed' AND ");
		break;
	}
}

static void
close_target(struct parser *p, const struct target *tg, bool neg)
{
	if (tg->kind != TG_DIRECT || neg)
		emit(p, ")");
}

/* emit_col - the column, in lower case when lower */
static void
emit_col(struct parser *p, const struct target *tg, bool lower)
{
	if (lower) {
		emit(p, "lower(");
		emit(p, tg->col);
		emit(p, ")");
	} else {
		emit(p, tg->col);
	}
}

/* ---- conditions ---- */

static int
op_allowed(struct parser *p, const struct target *tg, const struct tok *op,
    unsigned types)
{
	if (types & (1u << tg->type))
		return 0;
	return fail(p, op->col, "'%.*s' does not apply to %s (%s)",
	    tok_width(op), op->s, tg->name, type_names[tg->type]);
}

#define ALL_TYPES 0x1fu
#define T_BIT(t) (1u << (t))
#define ORDERED (T_BIT(SEGMENT_FIELD_NUMBER) | T_BIT(SEGMENT_FIELD_DATE))
#define TEXTUAL (T_BIT(SEGMENT_FIELD_TEXT))

/* cond_compare - name cmp value */
static int
cond_compare(struct parser *p, const struct target *tg)
{
	struct tok op = p->t;
	char ops[3];
	struct val v;
	bool eq = op.len == 1 && op.s[0] == '=', ne = op.s[0] == '!';

	snprintf(ops, sizeof(ops), "%.*s", (int)op.len, op.s);
	if (op_allowed(p, tg, &op, eq || ne ? ALL_TYPES : ORDERED) < 0 ||
	    next(p) < 0 || parse_value(p, &v, ops) < 0 ||
	    check_type(p, tg, &v) < 0)
		return -1;
	open_target(p, tg, ne);
	if (tg->type == SEGMENT_FIELD_DATE && (eq || ne)) {
		emit(p, "(");
		emit_col(p, tg, false);
		emit(p, " >= ? AND ");
		emit_col(p, tg, false);
		emit(p, " < ?)");
		push_value(p, tg, &v, false);
		push_value(p, tg, &v, true);
	} else {
		bool after = tg->type == SEGMENT_FIELD_DATE && op.s[0] == '>' &&
		    op.len == 1;
		bool upto =
		    tg->type == SEGMENT_FIELD_DATE && strcmp(ops, "<=") == 0;

		emit_col(p, tg, tg->ci);
		/* A date is a whole day: "> d" starts the day after. */
		emit(p,
		    eq || ne	? " = ?"
			: after ? " >= ?"
			: upto
			? " < ?"
			: (op.len == 1 ? (op.s[0] == '<' ? " < ?" : " > ?")
				       : (op.s[0] == '<' ? " <= ?" : " >= ?")));
		push_value(p, tg, &v, after || upto);
	}
	close_target(p, tg, ne);
	return 0;
}

/* cond_like - contains, starts_with, ends_with */
static int
cond_like(struct parser *p, const struct target *tg)
{
	struct tok op = p->t;
	struct val v;
	char *s, *pat, *o;
	char opname[16];

	snprintf(opname, sizeof(opname), "%.*s", tok_width(&op), op.s);
	if (op_allowed(p, tg, &op, TEXTUAL) < 0 || next(p) < 0 ||
	    parse_value(p, &v, opname) < 0 || check_type(p, tg, &v) < 0)
		return -1;
	s = str_lower(string_value(&v.t));
	pat = o = xmalloc(strlen(s) * 2 + 3);
	if (!is_kw(&op, "starts_with"))
		*o++ = '%';
	for (const char *c = s; *c; c++) {
		if (*c == '%' || *c == '_' || *c == '\\')
			*o++ = '\\';
		*o++ = *c;
	}
	if (!is_kw(&op, "ends_with"))
		*o++ = '%';
	*o = '\0';
	free(s);
	open_target(p, tg, false);
	emit_col(p, tg, true);
	emit(p, " LIKE ? ESCAPE '\\'");
	param_text(p, pat);
	close_target(p, tg, false);
	return 0;
}

/* cond_in - name in (v, ...) */
static int
cond_in(struct parser *p, const struct target *tg)
{
	struct tok op = p->t;
	struct val v[SEGMENT_TERMS_MAX];
	size_t n = 0;

	if (op_allowed(p, tg, &op,
		~T_BIT(SEGMENT_FIELD_DATE) & ~T_BIT(SEGMENT_FIELD_BOOLEAN) &
		    ALL_TYPES) < 0 ||
	    next(p) < 0)
		return -1;
	if (p->t.kind != T_LPAREN)
		return fail(p, p->t.col, "expected '(' after 'in'");
	do {
		const char *after = n == 0 ? "(" : ",";

		if (n == SEGMENT_TERMS_MAX)
			return fail(p, p->t.col, "more than %d values in 'in'",
			    SEGMENT_TERMS_MAX);
		if (next(p) < 0 || parse_value(p, &v[n], after) < 0 ||
		    check_type(p, tg, &v[n]) < 0)
			return -1;
		n++;
	} while (p->t.kind == T_COMMA);
	if (p->t.kind != T_RPAREN)
		return fail(p, p->t.col, "expected ',' or ')'");
	open_target(p, tg, false);
	emit_col(p, tg, tg->ci);
	emit(p, " IN (");
	for (size_t i = 0; i < n; i++) {
		emit(p, i ? ", ?" : "?");
		push_value(p, tg, &v[i], false);
	}
	emit(p, ")");
	close_target(p, tg, false);
	return next(p);
}

/* cond_empty - is [not] empty: no value, or '' for text */
static int
cond_empty(struct parser *p, const struct target *tg)
{
	bool neg = true;
	bool text =
	    tg->type == SEGMENT_FIELD_TEXT || tg->type == SEGMENT_FIELD_ONE_OF;

	if (next(p) < 0)
		return -1;
	if (is_kw(&p->t, "not")) {
		neg = false;
		if (next(p) < 0)
			return -1;
	}
	if (!is_kw(&p->t, "empty"))
		return fail(p, p->t.col, "expected 'empty' after 'is'");
	/* "is empty" is "not (has a value)". */
	open_target(p, tg, neg);
	emit(p, "(");
	emit_col(p, tg, false);
	emit(p, " IS NOT NULL");
	if (text) {
		emit(p, " AND ");
		emit_col(p, tg, false);
		emit(p, " <> ''");
	}
	emit(p, ")");
	close_target(p, tg, neg);
	return next(p);
}

/* cond_relative - within N unit, before N unit ago */
static int
cond_relative(struct parser *p, const struct target *tg)
{
	struct tok op = p->t;
	bool before = is_kw(&op, "before");
	int64_t n, unit;

	if (op_allowed(p, tg, &op, T_BIT(SEGMENT_FIELD_DATE)) < 0 ||
	    next(p) < 0)
		return -1;
	if (p->t.kind != T_INT || p->t.s[0] == '-')
		return fail(p, p->t.col,
		    "expected a number of days, weeks or "
		    "months after '%s'",
		    before ? "before" : "within");
	if (int_value(p, &p->t, &n) < 0)
		return -1;
	if (n > REL_MAX)
		return fail(p, p->t.col, "more than %d", REL_MAX);
	if (next(p) < 0)
		return -1;
	if (is_kw(&p->t, "day") || is_kw(&p->t, "days"))
		unit = DAY;
	else if (is_kw(&p->t, "week") || is_kw(&p->t, "weeks"))
		unit = 7 * DAY;
	else if (is_kw(&p->t, "month") || is_kw(&p->t, "months"))
		unit = 30 * DAY;
	else
		return fail(p, p->t.col, "expected days, weeks or months");
	if (next(p) < 0)
		return -1;
	if (before) {
		if (!is_kw(&p->t, "ago"))
			return fail(p, p->t.col, "expected 'ago'");
		if (next(p) < 0)
			return -1;
	}
	open_target(p, tg, false);
	emit_col(p, tg, false);
	emit(p, before ? " < ?" : " >= ?");
	param_int(p, p->now - n * unit);
	close_target(p, tg, false);
	return 0;
}

/* parse_cond - one condition */
static int
parse_cond(struct parser *p)
{
	struct target tg;

	if (++p->terms > SEGMENT_TERMS_MAX)
		return fail(
		    p, p->t.col, "more than %d conditions", SEGMENT_TERMS_MAX);
	if (resolve(p, &tg) < 0)
		return -1;
	if (p->t.kind == T_OP)
		return cond_compare(p, &tg);
	if (is_kw(&p->t, "contains") || is_kw(&p->t, "starts_with") ||
	    is_kw(&p->t, "ends_with"))
		return cond_like(p, &tg);
	if (is_kw(&p->t, "in"))
		return cond_in(p, &tg);
	if (is_kw(&p->t, "is"))
		return cond_empty(p, &tg);
	if (is_kw(&p->t, "within") || is_kw(&p->t, "before"))
		return cond_relative(p, &tg);
	return fail(p, p->t.col, "expected an operator after '%s'", tg.name);
}

static int parse_or(struct parser *p);

static int
parse_unary(struct parser *p)
{
	bool paren = p->t.kind == T_LPAREN;

	if (!paren && !is_kw(&p->t, "not"))
		return parse_cond(p);
	if (++p->depth > SEGMENT_DEPTH_MAX)
		return fail(
		    p, p->t.col, "nesting deeper than %d", SEGMENT_DEPTH_MAX);
	if (next(p) < 0)
		return -1;
	if (paren) {
		if (parse_or(p) < 0)
			return -1;
		if (p->t.kind != T_RPAREN)
			return fail(p, p->t.col, "expected ')'");
		if (next(p) < 0)
			return -1;
	} else {
		emit(p, "NOT (");
		if (parse_unary(p) < 0)
			return -1;
		emit(p, ")");
	}
	p->depth--;
	return 0;
}

/*
 * parse_list - operands joined by kw, as "(a KW b)" when there are
 * more than one; operand parses one.
 */
static int
parse_list(struct parser *p, const char *kw, const char *sqlop,
    int (*operand)(struct parser *))
{
	size_t start = p->len;
	int n = 1;

	if (operand(p) < 0)
		return -1;
	while (is_kw(&p->t, kw)) {
		if (next(p) < 0)
			return -1;
		emit(p, sqlop);
		if (operand(p) < 0)
			return -1;
		n++;
	}
	if (n > 1) {
		emit_at(p, start, "(");
		emit(p, ")");
	}
	return 0;
}

static int
parse_and(struct parser *p)
{
	return parse_list(p, "and", " AND ", parse_unary);
}

static int
parse_or(struct parser *p)
{
	return parse_list(p, "or", " OR ", parse_and);
}

void
segment_sql_free(struct segment_sql *sql)
{
	for (size_t i = 0; i < sql->nparams; i++)
		free(sql->params[i].s);
	free(sql->params);
	free(sql->where);
	memset(sql, 0, sizeof(*sql));
}

int
segment_compile(const char *text, const struct segment_fields *fields,
    int64_t now, struct segment_sql *out, char *err, size_t errlen)
{
	struct parser p = { .text = text,
		.pos = text,
		.fields = fields,
		.now = now,
		.err = err,
		.errlen = errlen };
	size_t n = strlen(text);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (errlen > 0)
		err[0] = '\0';
	if (n > SEGMENT_TEXT_MAX) {
		fail(&p, SEGMENT_TEXT_MAX + 1, "longer than %d bytes",
		    SEGMENT_TEXT_MAX);
		return -1;
	}
	emit(&p, "c.account_id = ? AND ");
	param_int(&p, 0);
	if (next(&p) == 0 && parse_or(&p) == 0) {
		if (p.t.kind == T_END)
			rc = 0;
		else
			fail(&p, p.t.col,
			    "expected 'and', 'or' or the end, "
			    "not '%.*s'",
			    tok_width(&p.t), p.t.s);
	}
	out->where = p.sql;
	out->params = p.params;
	out->nparams = p.nparams;
	if (rc < 0)
		segment_sql_free(out);
	return rc;
}
