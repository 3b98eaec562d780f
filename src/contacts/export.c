/*
 * export.c - contacts and suppressions out, page by page (export.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "contacts/export.h"
#include "contacts/segment.h"
#include "lib/util.h"

#define EXPORT_PAGE_MAX 10000

/* What a compiled segment's query points to. */
struct export_segment {
	struct segment_sql sql;
	struct store_param *params;
	struct segment_field *fields;
	char **names;
	const char ***choices;
	size_t nfields;
};

struct export
{
	struct store *s;
	int64_t account_id;
	enum export_what what;
	bool jsonl;
	struct store_contact_query q;
	struct export_segment *seg;
	char **fields; /* the account's custom field names, CSV columns */
	size_t nfields;
	bool header_done;
	bool done;
	int64_t last_id;
	char last_email[STORE_EMAIL_MAX + 1];
	/* during a page */
	struct buf *out;
	int64_t rows;
};

/* ---- segments ---- */

struct seg_fields_ctx {
	struct export_segment *seg;
};

static int
seg_field_cb(void *arg, const struct store_field *f)
{
	struct export_segment *seg = arg;
	struct segment_field *o;
	size_t i = seg->nfields++;

	seg->fields =
	    xrealloc(seg->fields, seg->nfields * sizeof(*seg->fields));
	seg->names = xrealloc(seg->names, seg->nfields * sizeof(*seg->names));
	seg->choices =
	    xrealloc(seg->choices, seg->nfields * sizeof(*seg->choices));
	o = &seg->fields[i];
	memset(o, 0, sizeof(*o));
	seg->names[i] = xstrdup(f->name);
	seg->choices[i] = NULL;
	o->name = seg->names[i];
	o->id = f->id;
	o->type = strcmp(f->type, "number") == 0 ? SEGMENT_FIELD_NUMBER
	    : strcmp(f->type, "date") == 0	 ? SEGMENT_FIELD_DATE
	    : strcmp(f->type, "boolean") == 0	 ? SEGMENT_FIELD_BOOLEAN
	    : strcmp(f->type, "one_of") == 0	 ? SEGMENT_FIELD_ONE_OF
						 : SEGMENT_FIELD_TEXT;
	if (o->type == SEGMENT_FIELD_ONE_OF) {
		json_t *a = json_loads(f->choices, 0, NULL), *v;
		size_t k, n = json_array_size(a);
		const char **vals = xcalloc(n ? n : 1, sizeof(*vals));

		json_array_foreach(a, k, v) vals[k] =
		    xstrdup(json_string_value(v) ? json_string_value(v) : "");
		json_decref(a);
		seg->choices[i] = vals;
		o->values = vals;
		o->nvalues = n;
	}
	return 0;
}

void
export_segment_free(struct export_segment **sp)
{
	struct export_segment *seg = *sp;

	if (seg == NULL)
		return;
	segment_sql_free(&seg->sql);
	free(seg->params);
	for (size_t i = 0; i < seg->nfields; i++) {
		if (seg->choices[i] != NULL) {
			for (size_t k = 0; k < seg->fields[i].nvalues; k++)
				free((char *)seg->choices[i][k]);
			free(seg->choices[i]);
		}
		free(seg->names[i]);
	}
	free(seg->fields);
	free(seg->names);
	free(seg->choices);
	free(seg);
	*sp = NULL;
}

int
export_segment_sql(struct store *s, int64_t account_id, const char *text,
    struct store_contact_query *q, struct export_segment **owner_r, char *err,
    size_t errlen)
{
	struct export_segment *seg = xcalloc(1, sizeof(*seg));
	struct segment_fields sf;
	const char *serr;

	*owner_r = NULL;
	if (store_field_list(s, account_id, seg_field_cb, seg, &serr) < 0) {
		snprintf(err, errlen, "%s", serr);
		export_segment_free(&seg);
		return -1;
	}
	sf.v = seg->fields;
	sf.n = seg->nfields;
	if (segment_compile(
		text, &sf, (int64_t)time(NULL), &seg->sql, err, errlen) < 0) {
		export_segment_free(&seg);
		return -1;
	}
	seg->params = xcalloc(seg->sql.nparams + 1, sizeof(*seg->params));
	for (size_t i = 0; i < seg->sql.nparams; i++) {
		const struct segment_param *p = &seg->sql.params[i];
		struct store_param *o = &seg->params[i];

		switch (p->type) {
		case SEGMENT_PARAM_INT:
			o->type = STORE_PARAM_INT;
			o->i = p->i;
			break;
		case SEGMENT_PARAM_DOUBLE:
			o->type = STORE_PARAM_REAL;
			o->d = p->d;
			break;
		case SEGMENT_PARAM_TEXT:
			o->type = STORE_PARAM_TEXT;
			o->s = p->s;
			break;
		}
	}
	/* the account is the first parameter, always */
	seg->params[0].type = STORE_PARAM_INT;
	seg->params[0].i = account_id;
	q->where = seg->sql.where;
	q->params = seg->params;
	q->nparams = seg->sql.nparams;
	*owner_r = seg;
	return 0;
}

/* ---- export ---- */

static int
name_cb(void *arg, const struct store_field *f)
{
	struct export *e = arg;

	e->fields = xrealloc(e->fields, (e->nfields + 1) * sizeof(*e->fields));
	e->fields[e->nfields++] = xstrdup(f->name);
	return 0;
}

struct export *
export_new(struct store *s, int64_t account_id, const struct export_spec *spec,
    char *err, size_t errlen)
{
	struct export *e = xcalloc(1, sizeof(*e));
	const char *serr;

	e->s = s;
	e->account_id = account_id;
	e->what = spec->what;
	if (spec->format == NULL || strcmp(spec->format, "csv") == 0)
		e->jsonl = false;
	else if (strcmp(spec->format, "jsonl") == 0)
		e->jsonl = true;
	else {
		snprintf(err, errlen, "format: use csv or jsonl");
		goto fail;
	}
	if (e->what == EXPORT_SUPPRESSIONS)
		return e;
	if (spec->list_id != 0) {
		struct store_list_info li;
		int ret =
		    store_list_get(s, account_id, spec->list_id, &li, &serr);

		if (ret != 0) {
			snprintf(err, errlen, "%s", serr);
			goto fail;
		}
		e->q.list_id = spec->list_id;
		e->q.list_status = spec->list_status;
	}
	if (spec->segment != NULL &&
	    export_segment_sql(
		s, account_id, spec->segment, &e->q, &e->seg, err, errlen) < 0)
		goto fail;
	if (store_field_list(s, account_id, name_cb, e, &serr) < 0) {
		snprintf(err, errlen, "%s", serr);
		goto fail;
	}
	return e;
fail:
	export_free(&e);
	return NULL;
}

void
export_free(struct export **ep)
{
	struct export *e = *ep;

	if (e == NULL)
		return;
	export_segment_free(&e->seg);
	for (size_t i = 0; i < e->nfields; i++)
		free(e->fields[i]);
	free(e->fields);
	free(e);
	*ep = NULL;
}

/* csv_field - v as an RFC 4180 field (quoted when it needs to be) */
static void
csv_field(struct buf *b, const char *v, bool first)
{
	if (!first)
		buf_append(b, ",", 1);
	if (strpbrk(v, ",\"\r\n") == NULL && v[0] != ' ') {
		buf_puts(b, v);
		return;
	}
	buf_append(b, "\"", 1);
	for (; *v != '\0'; v++) {
		if (*v == '"')
			buf_append(b, "\"", 1);
		buf_append(b, v, 1);
	}
	buf_append(b, "\"", 1);
}

static void
iso_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		snprintf(out, 32, "%lld", (long long)t);
	else
		strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* value_text - a JSON value of attrs as CSV text */
static char *
value_text(json_t *v)
{
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_true(v))
		return xstrdup("true");
	if (json_is_false(v))
		return xstrdup("false");
	if (v == NULL || json_is_null(v))
		return xstrdup("");
	return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static int
contact_cb(void *arg, const struct store_contact *c)
{
	struct export *e = arg;
	char created[32], updated[32];
	json_t *attrs = json_loads(c->attrs, 0, NULL);

	iso_time(c->created_at, created);
	iso_time(c->updated_at, updated);
	if (e->jsonl) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "email",
		    c->email, "name", c->name, "status", c->status, "created",
		    created, "updated", updated, "attribs",
		    attrs != NULL ? attrs : json_object());
		char *line = json_dumps(o, JSON_COMPACT);

		buf_puts(e->out, line);
		buf_append(e->out, "\n", 1);
		free(line);
		json_decref(o);
	} else {
		csv_field(e->out, c->email, true);
		csv_field(e->out, c->name, false);
		csv_field(e->out, c->status, false);
		csv_field(e->out, created, false);
		csv_field(e->out, updated, false);
		for (size_t i = 0; i < e->nfields; i++) {
			char *t =
			    value_text(json_object_get(attrs, e->fields[i]));

			csv_field(e->out, t, false);
			free(t);
		}
		buf_append(e->out, "\r\n", 2);
	}
	json_decref(attrs);
	e->last_id = c->id;
	e->rows++;
	return 0;
}

static int
suppr_cb(void *arg, const struct store_suppression *sup)
{
	struct export *e = arg;
	char created[32];

	iso_time(sup->created_at, created);
	if (e->jsonl) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "email", sup->email,
		    "reason", sup->reason, "created", created);
		char *line = json_dumps(o, JSON_COMPACT);

		buf_puts(e->out, line);
		buf_append(e->out, "\n", 1);
		free(line);
		json_decref(o);
	} else {
		csv_field(e->out, sup->email, true);
		csv_field(e->out, sup->reason, false);
		csv_field(e->out, created, false);
		buf_append(e->out, "\r\n", 2);
	}
	snprintf(e->last_email, sizeof(e->last_email), "%s", sup->email);
	e->rows++;
	return 0;
}

int
export_next(struct export *e, struct buf *out, size_t max_rows, char *err,
    size_t errlen)
{
	const char *serr;
	int ret;

	if (e->done)
		return 0;
	if (max_rows == 0 || max_rows > EXPORT_PAGE_MAX)
		max_rows = EXPORT_PAGE_MAX;
	e->out = out;
	e->rows = 0;
	if (!e->header_done && !e->jsonl) {
		if (e->what == EXPORT_SUPPRESSIONS) {
			buf_puts(out, "email,reason,created\r\n");
		} else {
			buf_puts(out, "email,name,status,created,updated");
			for (size_t i = 0; i < e->nfields; i++)
				csv_field(out, e->fields[i], false);
			buf_append(out, "\r\n", 2);
		}
	}
	e->header_done = true;
	if (e->what == EXPORT_SUPPRESSIONS) {
		ret = store_suppression_list(e->s, e->account_id, e->last_email,
		    (int64_t)max_rows, suppr_cb, e, &serr);
	} else {
		e->q.after_id = e->last_id;
		e->q.limit = (int64_t)max_rows;
		ret = store_contact_list(
		    e->s, e->account_id, &e->q, contact_cb, e, &serr);
	}
	e->out = NULL;
	if (ret < 0) {
		snprintf(err, errlen, "%s", serr);
		return -1;
	}
	if ((size_t)e->rows < max_rows)
		e->done = true;
	return e->done ? 0 : 1;
}
