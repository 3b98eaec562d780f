/*
 * segment - the filter language of saved segments (dynamic lists of
 * contacts), compiled to a parameterized SQL boolean expression.
 *
 * The text of a segment never reaches the SQL: every literal becomes a
 * '?' parameter; the SQL is made of fixed fragments only.  The grammar,
 * the schema the SQL assumes and the meaning of each operator are in
 * the opening comment of segment.c.
 */
#ifndef HERALD_CONTACTS_SEGMENT_H
#define HERALD_CONTACTS_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define SEGMENT_TEXT_MAX 4096 /* bytes of segment text */
#define SEGMENT_DEPTH_MAX 32  /* nested '(' and 'not' */
#define SEGMENT_TERMS_MAX 100 /* conditions, and values of one 'in' */

/* The type of a custom field, from the account's field table. */
enum segment_field_type {
	SEGMENT_FIELD_TEXT,
	SEGMENT_FIELD_NUMBER,
	SEGMENT_FIELD_DATE,    /* stored as Unix seconds in value_num */
	SEGMENT_FIELD_BOOLEAN, /* stored as 0 or 1 in value_num */
	SEGMENT_FIELD_ONE_OF,  /* text, one of values[] */
};

struct segment_field {
	const char *name; /* "city" for field.city; matched exactly */
	int64_t id;	  /* contact_fields.field_id */
	enum segment_field_type type;
	const char *const *values; /* SEGMENT_FIELD_ONE_OF: allowed values */
	size_t nvalues;
};

struct segment_fields {
	const struct segment_field *v;
	size_t n;
};

enum segment_param_type {
	SEGMENT_PARAM_INT,
	SEGMENT_PARAM_DOUBLE,
	SEGMENT_PARAM_TEXT,
};

struct segment_param {
	enum segment_param_type type;
	int64_t i;
	double d;
	char *s; /* SEGMENT_PARAM_TEXT: owned, NUL-terminated */
};

struct segment_sql {
	char *where;		      /* boolean expression over "contacts c" */
	struct segment_param *params; /* in the order of the '?' */
	size_t nparams;
};

/*
 * segment_compile - compile text into out->where and out->params.
 *
 * fields is the account's custom field table (may be NULL: no custom
 * fields); now (Unix seconds) anchors "within N days" and "before N
 * days ago".  The first parameter is always the account id: it is
 * SEGMENT_PARAM_INT with i = 0, and the caller binds its account there
 * (or sets params[0].i).  Returns 0, or -1 with out emptied and err
 * holding "column N: message" (N 1-based, at most strlen(text) + 1).
 * text and fields are not kept.  Free out with segment_sql_free.
 */
int segment_compile(const char *text, const struct segment_fields *fields,
    int64_t now, struct segment_sql *out, char *err, size_t errlen);

/* segment_sql_free - free what segment_compile put in sql; sql is reusable */
void segment_sql_free(struct segment_sql *sql);

#endif
