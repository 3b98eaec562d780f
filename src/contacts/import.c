/*
 * import.c - import jobs (see import.h).
 *
 * One run: load the job and the account's fields, check the options,
 * open the source, and for each record (CSV record, vCard card, JSON
 * line, database row) map its columns, check the address and each
 * value's type, and hand the contact to store_contact_put() inside the
 * batch's transaction.  A bad record is counted and kept (line and
 * reason, up to errors_kept) and the run goes on.  After batch_rows
 * records the counters are written and the transaction commits; then
 * the stored state is looked at, so a cancel from another process (the
 * API, the CLI) is seen within one batch.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "contacts/csvin.h"
#include "contacts/import.h"
#include "contacts/jsonl.h"
#include "contacts/pgsrc.h"
#include "contacts/vcard.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/util.h"
#include "mail/address.h"

#define READ_CHUNK (64 * 1024)
#define IMPORT_YIELD_US 3000 /* the database left free between batches */
#define REASON_MAX 300

enum rule { RULE_ALWAYS, RULE_IF_EMPTY, RULE_NEVER };

enum ftype { F_TEXT, F_NUMBER, F_DATE, F_BOOLEAN, F_ONE_OF };

struct field {
	char name[STORE_FIELD_NAME_MAX + 1];
	enum ftype type;
	json_t *choices; /* one_of: array of strings */
	enum rule rule;
};

/* where a column goes */
enum target_kind {
	T_IGNORE,
	T_EMAIL,
	T_NAME,
	T_FIRST,
	T_LAST,
	T_REASON,
	T_FIELD
};

struct target {
	enum target_kind kind;
	size_t field; /* T_FIELD: index in fields */
};

struct run {
	struct store *s;
	const struct import_env *env;
	struct store_import_job job;
	bool suppressions; /* format: the rows are suppressions */

	struct field *fields;
	size_t nfields;
	json_t *map; /* options.map, or NULL */
	enum rule name_rule;
	struct store_consent consent;
	bool has_consent;
	char consent_source[257], consent_ip[64];
	bool extra; /* a second address of a vCard: not a row of its own */
	struct buf setj, fillj; /* the row's values as JSON (record) */
	unsigned *seen; /* per field: the stamp of the row that set it */
	unsigned stamp;
	enum store_subscribe_mode mode;
	int delim; /* options.delimiter, or 0 to detect */

	/* the columns of the current source (header) */
	struct target *cols;
	size_t ncols;
	bool have_header;

	uint64_t skip;	 /* rows an earlier run committed */
	uint64_t row;	 /* rows seen in this run, from the start */
	size_t in_batch; /* rows since the last commit */
	bool stopping;	 /* stop or cancel seen */
	bool cancelled;
	int64_t kept; /* errors kept so far (from the store) */
	time_t started;
	char err[512]; /* a failure that ends the run */
	bool failed;

	/* the reader thread (see "the pipeline") */
	struct batch *filling;		  /* the reader's */
	struct batch *full[2], *spare[4]; /* handed over / free */
	size_t nfull, nspare;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	atomic_bool halt; /* the writer wants no more rows */
	bool rfailed;	  /* the reader failed: rerr */
	char rerr[512];
	char *conninfo;	   /* postgresql: looked up by the writer */
	int64_t rbytes;	   /* of the source, read so far */
	int64_t first_new; /* the first contact the batch created, or 0 */
};

/* What the reader hands the writer: rows checked and ready to write. */
enum item_kind { IT_CONTACT, IT_SUPPRESSION, IT_BAD };

#define NO_TEXT ((uint32_t)-1)

struct item {
	enum item_kind kind;
	bool counts; /* a row of the source (not a vCard's extra address) */
	unsigned long line;
	uint32_t seq; /* its place in the batch, for a stable sort */
	/* offsets into the batch's text, NO_TEXT for none; IT_BAD: the
	   reason in a; IT_SUPPRESSION: email in a, reason in b */
	uint32_t a, b, set, fill;
};

/*
 * A batch is the rows of one transaction: the reader hands it over when
 * it holds batch_rows rows of the source, sorted by address, and the
 * writer commits after its last item.  Sorted, the inserts into the
 * (account, address) index go from leaf to leaf in order: each index
 * page is read and written once per transaction instead of once per
 * address (random addresses made imports 4x slower).  A batch is a
 * prefix of the rest of the source, so rows_done still says where to
 * resume.
 */
struct batch {
	struct item *items;
	size_t n, cap;
	size_t rows; /* items that count as rows */
	struct buf text;
	int64_t bytes_done; /* of the source, when the batch was handed */
	bool last;
};

/* ---- small helpers ---- */

int
import_format_valid(const char *format)
{
	static const char *const formats[] = { "csv", "tsv", "vcard", "jsonl",
		"postgresql", "suppressions" };

	for (size_t i = 0; i < NELEM(formats); i++)
		if (strcmp(format, formats[i]) == 0)
			return 1;
	return 0;
}

static void __attribute__((format(printf, 2, 3)))
run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->failed = true;
}

/* rd_fail - the reader's failure (the writer reports it) */
static void __attribute__((format(printf, 2, 3)))
rd_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->rfailed)
		return;
	va_start(ap, fmt);
	vsnprintf(r->rerr, sizeof(r->rerr), fmt, ap);
	va_end(ap);
	r->rfailed = true;
}

/* no_line - a reader's message without its "line N: " or "line N, "
   (the bad row keeps the line apart) */
static const char *
no_line(const char *msg)
{
	const char *p = msg;

	if (strncmp(p, "line ", 5) != 0)
		return msg;
	for (p += 5; *p >= '0' && *p <= '9'; p++)
		;
	if ((p[0] == ':' || p[0] == ',') && p[1] == ' ')
		return p + 2;
	return msg;
}

/* trim - s without leading and trailing white space, in place */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/*
 * email_fast - the common case without allocating: a plain ASCII
 * dot-atom local part and an LDH domain of two or more labels.  1 when
 * written to out, 0 when the general path must decide.
 */
static int
email_fast(const char *p, size_t len, char *out, size_t outlen)
{
	const char *at = memchr(p, '@', len);
	size_t local, dlen, label = 0;

	if (at == NULL || len >= outlen || len > STORE_EMAIL_MAX)
		return 0;
	local = (size_t)(at - p);
	dlen = len - local - 1;
	if (local == 0 || local > 64 || dlen < 3 || p[0] == '.' ||
	    at[-1] == '.')
		return 0;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.' ? p[i + 1] == '.' : !mail_is_atext(c))
			return 0;
	}
	memcpy(out, p, local + 1);
	bool dot = false;
	for (size_t i = 0; i < dlen; i++) {
		unsigned char c = (unsigned char)at[1 + i];

		if (c == '.') {
			if (label == 0 || at[i] == '-')
				return 0;
			dot = true;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-') {
			if (c == '-' && label == 0)
				return 0;
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			label++;
		} else {
			return 0;
		}
		if (label > 63)
			return 0;
		out[local + 1 + i] = (char)c;
	}
	if (!dot || label == 0 || at[dlen] == '-')
		return 0;
	out[len] = '\0';
	return 1;
}

int
import_email_normalize(
    const char *in, char *out, size_t outlen, const char **why_r)
{
	char buf[STORE_EMAIL_MAX * 2 + 64], *p, *lt, *gt;
	struct mail_addr a = { 0 };
	size_t used, len;
	const char *why = NULL;
	int ret = -1;

	if (strlen(in) >= sizeof(buf)) {
		*why_r = "address too long";
		return -1;
	}
	memcpy(buf, in, strlen(in) + 1);
	p = trim(buf);
	/* "Name <addr>" */
	if ((lt = strrchr(p, '<')) != NULL && (gt = strchr(lt, '>')) != NULL &&
	    gt[1] == '\0') {
		*gt = '\0';
		p = trim(lt + 1);
	}
	if (strncasecmp(p, "mailto:", 7) == 0)
		p += 7;
	len = strlen(p);
	if (len == 0) {
		*why_r = "no address";
		return -1;
	}
	if (email_fast(p, len, out, outlen))
		return 0;
	if (mail_addr_parse_path(p, len,
		MAIL_ADDR_ALLOW_NOBRACKETS | MAIL_ADDR_ALLOW_UTF8, &a, &used,
		&why) < 0) {
		*why_r = why != NULL ? why : "not an address";
		return -1;
	}
	if (used != len) {
		*why_r = "text after the address";
	} else if (a.domain_ascii == NULL || a.local == NULL ||
	    a.local[0] == '\0') {
		*why_r = "no domain";
	} else if (a.flags & MAIL_ADDR_LITERAL) {
		*why_r = "an address literal is not a mailing address";
	} else if (strchr(a.domain_ascii, '.') == NULL) {
		*why_r = "the domain has no dot";
	} else {
		char *local = mail_addr_format(
		    &(struct mail_addr){ .local = a.local, .flags = a.flags });
		int n = snprintf(out, outlen, "%s@%s", local, a.domain_ascii);

		free(local);
		if (n < 0 || (size_t)n >= outlen || n > STORE_EMAIL_MAX)
			*why_r = "address too long";
		else
			ret = 0;
	}
	mail_addr_clear(&a);
	return ret;
}

/* ---- fields and options ---- */

static int
field_cb(void *arg, const struct store_field *f)
{
	struct run *r = arg;
	struct field *o;

	r->fields = xrealloc(r->fields, (r->nfields + 1) * sizeof(*r->fields));
	o = &r->fields[r->nfields++];
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", f->name);
	o->type = strcmp(f->type, "number") == 0 ? F_NUMBER
	    : strcmp(f->type, "date") == 0	 ? F_DATE
	    : strcmp(f->type, "boolean") == 0	 ? F_BOOLEAN
	    : strcmp(f->type, "one_of") == 0	 ? F_ONE_OF
						 : F_TEXT;
	if (o->type == F_ONE_OF)
		o->choices = json_loads(f->choices, 0, NULL);
	return 0;
}

static void
fields_free(struct run *r)
{
	for (size_t i = 0; i < r->nfields; i++)
		json_decref(r->fields[i].choices);
	free(r->fields);
	r->fields = NULL;
	r->nfields = 0;
}

static ssize_t
field_find(const struct run *r, const char *name)
{
	for (size_t i = 0; i < r->nfields; i++)
		if (strcmp(r->fields[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static int
rule_parse(const char *v, enum rule *out)
{
	if (strcmp(v, "always") == 0)
		*out = RULE_ALWAYS;
	else if (strcmp(v, "if_empty") == 0)
		*out = RULE_IF_EMPTY;
	else if (strcmp(v, "never") == 0)
		*out = RULE_NEVER;
	else
		return -1;
	return 0;
}

/* target_parse - a "map" value; -1 if unknown */
static int
target_parse(const struct run *r, const char *v, struct target *t)
{
	static const struct {
		const char *name;
		enum target_kind kind;
	} fixed[] = { { "email", T_EMAIL }, { "name", T_NAME },
		{ "first_name", T_FIRST }, { "last_name", T_LAST },
		{ "reason", T_REASON }, { "ignore", T_IGNORE } };
	ssize_t f;

	for (size_t i = 0; i < NELEM(fixed); i++)
		if (strcmp(v, fixed[i].name) == 0) {
			t->kind = fixed[i].kind;
			return 0;
		}
	if ((f = field_find(r, v)) < 0)
		return -1;
	t->kind = T_FIELD;
	t->field = (size_t)f;
	return 0;
}

/*
 * options_load - parse and check the job's options into r (the fields
 * must be loaded).  0 or -1 with err.
 */
static int
options_load(struct run *r, const char *format, const char *text, char *err,
    size_t errlen)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je), *v;
	const char *key;
	int ret = -1;

	r->mode = STORE_SUBSCRIBE_ADD;
	if (o == NULL || !json_is_object(o)) {
		snprintf(err, errlen, "options: not a JSON object (%s)",
		    o == NULL ? je.text : "another type");
		goto out;
	}
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "mode") == 0) {
			const char *m = json_string_value(v);

			if (m != NULL && strcmp(m, "add") == 0)
				r->mode = STORE_SUBSCRIBE_ADD;
			else if (m != NULL && strcmp(m, "upsert") == 0)
				r->mode = STORE_SUBSCRIBE_UPSERT;
			else if (m != NULL && strcmp(m, "update") == 0)
				r->mode = STORE_SUBSCRIBE_UPDATE;
			else {
				snprintf(err, errlen,
				    "options.mode: use add, upsert or update");
				goto out;
			}
		} else if (strcmp(key, "map") == 0) {
			const char *col;
			json_t *t;

			if (!json_is_object(v)) {
				snprintf(err, errlen,
				    "options.map: an object of column: "
				    "target is needed");
				goto out;
			}
			json_object_foreach(v, col, t)
			{
				struct target tg;

				if (!json_is_string(t) ||
				    target_parse(r, json_string_value(t), &tg) <
					0) {
					snprintf(err, errlen,
					    "options.map.\"%.64s\": use email, "
					    "name, first_name, last_name, "
					    "reason, ignore or the name of a "
					    "custom field",
					    col);
					goto out;
				}
			}
			r->map = json_incref(v);
		} else if (strcmp(key, "overwrite") == 0) {
			const char *f;
			json_t *t;

			if (!json_is_object(v)) {
				snprintf(err, errlen,
				    "options.overwrite: an object of field: "
				    "rule is needed");
				goto out;
			}
			json_object_foreach(v, f, t)
			{
				enum rule rule;
				ssize_t fi = field_find(r, f);

				if (!json_is_string(t) ||
				    rule_parse(json_string_value(t), &rule) <
					0) {
					snprintf(err, errlen,
					    "options.overwrite.%.64s: use "
					    "always, if_empty or never",
					    f);
					goto out;
				}
				if (strcmp(f, "name") == 0)
					r->name_rule = rule;
				else if (fi >= 0)
					r->fields[fi].rule = rule;
				else {
					snprintf(err, errlen,
					    "options.overwrite.%.64s: no such "
					    "field in this account",
					    f);
					goto out;
				}
			}
		} else if (strcmp(key, "consent") == 0) {
			json_t *src = json_object_get(v, "source");
			json_t *ip = json_object_get(v, "ip");

			if (!json_is_object(v) || !json_is_string(src) ||
			    json_string_length(src) == 0 ||
			    json_string_length(src) > 256 ||
			    (ip != NULL && !json_is_string(ip))) {
				snprintf(err, errlen,
				    "options.consent: {\"source\": \"...\" "
				    "(1-256 bytes), \"ip\": \"...\"} is "
				    "needed");
				goto out;
			}
			if (ip != NULL && json_string_length(ip) >= 64) {
				snprintf(err, errlen,
				    "options.consent.ip: too long");
				goto out;
			}
			r->has_consent = true;
			snprintf(r->consent_source, sizeof(r->consent_source),
			    "%s", json_string_value(src));
			r->consent.source = r->consent_source;
			if (ip != NULL) {
				snprintf(r->consent_ip, sizeof(r->consent_ip),
				    "%s", json_string_value(ip));
				r->consent.ip = r->consent_ip;
			}
		} else if (strcmp(key, "delimiter") == 0) {
			const char *d = json_string_value(v);

			if (d == NULL || strlen(d) != 1 ||
			    strchr(",;\t|", d[0]) == NULL) {
				snprintf(err, errlen,
				    "options.delimiter: use \",\", \";\", "
				    "\"\\t\" or \"|\"");
				goto out;
			}
			r->delim = d[0];
		} else {
			snprintf(
			    err, errlen, "options: unknown key \"%.64s\"", key);
			goto out;
		}
	}
	(void)format;
	ret = 0;
out:
	json_decref(o);
	return ret;
}

int
import_options_check(struct store *s, int64_t account_id, const char *format,
    const char *options, char *err, size_t errlen)
{
	struct run r = { .s = s };
	const char *serr;
	int ret;

	if (!import_format_valid(format)) {
		snprintf(err, errlen,
		    "format: use csv, tsv, vcard, jsonl, postgresql or "
		    "suppressions");
		return -1;
	}
	if (store_field_list(s, account_id, field_cb, &r, &serr) < 0) {
		snprintf(err, errlen, "%s", serr);
		fields_free(&r);
		return -1;
	}
	ret = options_load(&r, format, options, err, errlen);
	json_decref(r.map);
	fields_free(&r);
	return ret;
}

/* ---- batches ---- */

/*
 * tx_start - begin a batch's transaction.  References are not checked
 * row by row during an import (store_set_bulk): the account is looked
 * at here, and the list by store_contact_put once per transaction.
 */
static int
tx_start(struct run *r)
{
	const char *err;
	bool yes;

	if (store_tx_begin(r->s, &err) < 0 ||
	    store_account_exists(r->s, r->job.account_id, &yes, &err) < 0) {
		run_fail(r, "%s", err);
		return -1;
	}
	if (!yes) {
		run_fail(r, "the account is gone");
		return -1;
	}
	return 0;
}

/* batch_commit - write the counters and commit; look at the state */
static int
batch_commit(struct run *r, bool last)
{
	char state[12];
	const char *err;

	if (r->failed)
		return -1;
	/* the subscriptions of the contacts this batch created, in one
	   statement */
	if (r->first_new != 0 && r->job.list_id != 0) {
		int ret = store_subscribe_new_contacts(r->s, r->job.account_id,
		    r->job.list_id, r->job.id, r->first_new,
		    r->has_consent ? &r->consent : NULL, &err);

		if (ret != 0) {
			store_tx_rollback(r->s);
			run_fail(
			    r, "%s", ret == 1 ? "the job's list is gone" : err);
			return -1;
		}
	}
	r->first_new = 0;
	if (store_import_progress(r->s, &r->job, state, &err) < 0 ||
	    store_tx_commit(r->s, &err) < 0) {
		store_tx_rollback(r->s);
		run_fail(r, "%s", err);
		return -1;
	}
	r->in_batch = 0;
	r->job.updated_at = (int64_t)time(NULL);
	/* let the other writers in (the API, the delivery log, the CLI:
	   they try every millisecond) before the next batch */
	if (!last)
		usleep(IMPORT_YIELD_US);
	snprintf(r->job.state, sizeof(r->job.state), "%s", state);
	if (r->env->progress != NULL)
		r->env->progress(r->env->arg, &r->job);
	if (strcmp(state, "cancelling") == 0) {
		r->cancelled = true;
		r->stopping = true;
	}
	if (r->env->stop != NULL && *r->env->stop)
		r->stopping = true;
	if (!last && !r->stopping && tx_start(r) < 0)
		return -1;
	return 0;
}

/* row_done - count a row of the source */
static int
row_done(struct run *r)
{
	r->job.rows_done++;
	r->in_batch++;
	return 0;
}

/* keep_error - count and keep a bad row (the writer) */
static int
keep_error(struct run *r, unsigned long line, const char *reason)
{
	size_t kept_max =
	    r->env->errors_kept ? r->env->errors_kept : IMPORT_ERRORS_KEPT;
	const char *err;

	r->job.errors++;
	if ((size_t)r->kept < kept_max) {
		if (store_import_error_add(
			r->s, r->job.id, line, reason, &err) < 0) {
			run_fail(r, "%s", err);
			return -1;
		}
		r->kept++;
	}
	return 0;
}

/* ---- the pipeline ----
 *
 * The reader thread parses the source and checks each row (address,
 * value types, mapping) into items; the writer (the caller's thread)
 * writes them in the batch transactions.  Two batches of items are in
 * flight at most, so memory stays bounded; the writer sets halt when it
 * stops (cancel, stop, failure) and takes batches until the last one.
 */

static struct batch *
batch_new(void)
{
	struct batch *b = xcalloc(1, sizeof(*b));

	return b;
}

static void
batch_free(struct batch *b)
{
	if (b != NULL) {
		buf_free(&b->text);
		free(b->items);
		free(b);
	}
}

/* item_cmp - by address, then in the order of the source; bad rows
   first (they write no contact).  text: the batch's text */
static int
item_cmp(const void *pa, const void *pb, void *text)
{
	const struct item *a = pa, *b = pb;
	const char *t = text;
	int c;

	if ((a->kind == IT_BAD) != (b->kind == IT_BAD))
		return a->kind == IT_BAD ? -1 : 1;
	if (a->kind != IT_BAD && (c = strcmp(t + a->a, t + b->a)) != 0)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* batch_sort - sort the batch's items (glibc's qsort_r) */
static void
batch_sort(struct batch *b)
{
	if (b->n > 1)
		qsort_r(
		    b->items, b->n, sizeof(*b->items), item_cmp, b->text.data);
}

/* the most text a batch holds whatever its rows (64 KiB fields...) */
#define BATCH_TEXT_MAX (32u << 20)

static size_t
batch_rows(const struct run *r)
{
	return r->env->batch_rows ? r->env->batch_rows : IMPORT_BATCH_ROWS;
}

/* hand_over - give the filling batch to the writer and take a spare */
static void
hand_over(struct run *r, bool last)
{
	struct batch *b = r->filling;

	b->last = last;
	b->bytes_done = r->rbytes;
	batch_sort(b);
	pthread_mutex_lock(&r->mu);
	while (r->nfull == NELEM(r->full) || (!last && r->nspare == 0))
		pthread_cond_wait(&r->cond, &r->mu);
	r->full[r->nfull++] = b;
	r->filling = last ? NULL : r->spare[--r->nspare];
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->mu);
	if (r->filling != NULL) {
		r->filling->n = 0;
		r->filling->rows = 0;
		buf_reset(&r->filling->text);
	}
}

/* text_put - s into the filling batch's text, its offset (or NO_TEXT) */
static uint32_t
text_put(struct run *r, const char *s)
{
	struct buf *t = &r->filling->text;
	uint32_t off = (uint32_t)t->len;

	if (s == NULL)
		return NO_TEXT;
	buf_append(t, s, strlen(s) + 1);
	return off;
}

/* emit - a new item in the filling batch, handing it over when full;
   NULL when the writer halted */
static struct item *
emit(struct run *r, enum item_kind kind, unsigned long line)
{
	struct item *it;

	if (r->halt || r->rfailed)
		return NULL;
	if (r->filling->rows >= batch_rows(r) ||
	    r->filling->text.len > BATCH_TEXT_MAX)
		hand_over(r, false);
	if (r->filling->n == r->filling->cap) {
		r->filling->cap = r->filling->cap ? r->filling->cap * 2 : 1024;
		r->filling->items = xrealloc(r->filling->items,
		    r->filling->cap * sizeof(*r->filling->items));
	}
	it = &r->filling->items[r->filling->n];
	it->seq = (uint32_t)r->filling->n++;
	r->filling->rows += !r->extra;
	it->kind = kind;
	it->counts = !r->extra;
	it->line = line;
	it->a = it->b = it->set = it->fill = NO_TEXT;
	return it;
}

/* bad_row - a bad row for the writer to count and keep (the reader).
   -1 when the run stops. */
static int __attribute__((format(printf, 3, 4)))
bad_row(struct run *r, unsigned long line, const char *fmt, ...)
{
	char reason[REASON_MAX];
	struct item *it;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if ((it = emit(r, IT_BAD, line)) == NULL)
		return -1;
	it->a = text_put(r, reason);
	return 0;
}

/* ---- values ---- */

static bool
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "y", "1", "on", "t" };
	static const char *const no[] = { "false", "no", "n", "0", "off", "f" };

	for (size_t i = 0; i < NELEM(yes); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, true;
	for (size_t i = 0; i < NELEM(no); i++)
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, true;
	return false;
}

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/*
 * parse_date - "YYYY-MM-DD", "YYYY-MM-DD[T ]HH:MM[:SS][Z]" (UTC) or
 * Unix seconds, into Unix seconds.
 */
/* digits - n decimal digits at p as a number, or -1 */
static int
digits(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static bool
parse_date(const char *v, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	const char *t = v + 10;
	char *end;

	if (strlen(v) >= 10 && v[4] == '-' && v[7] == '-' &&
	    (y = digits(v, 4)) >= 1 && (mo = digits(v + 5, 2)) >= 1 &&
	    (d = digits(v + 8, 2)) >= 1) {
		if (*t == 'T' || *t == ' ') {
			if (strlen(t) < 6 || t[3] != ':' ||
			    (h = digits(t + 1, 2)) < 0 ||
			    (mi = digits(t + 4, 2)) < 0)
				return false;
			t += 6;
			if (*t == ':') {
				if ((sec = digits(t + 1, 2)) < 0)
					return false;
				t += 3;
			}
			if (*t == 'Z')
				t++;
		}
		if (*t != '\0' || mo > 12 || d > 31 || h > 23 || mi > 59 ||
		    sec > 60)
			return false;
		*out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
		    h * 3600 + mi * 60 + sec;
		return true;
	}
	errno = 0;
	*out = strtoll(v, &end, 10);
	return errno == 0 && end != v && *end == '\0';
}

/* json_string_put - s as a JSON string (valid UTF-8 in, as the readers
   give) */
static void
json_string_put(struct buf *b, const char *s)
{
	const char *run = s;

	buf_append(b, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, run, (size_t)(s - run));
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };

			buf_append(b, e, 2);
		} else {
			char e[8];

			snprintf(e, sizeof(e), "\\u%04x", c);
			buf_append(b, e, 6);
		}
		run = s + 1;
	}
	buf_append(b, run, (size_t)(s - run));
	buf_append(b, "\"", 1);
}

/* json_number_text - whether v is a number in JSON's own syntax */
static bool
json_number_text(const char *v)
{
	const char *p = v;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return false;
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

/*
 * value_put - v as the JSON value of field f appended to b; -1 with why
 * when v is not of the field's type.
 */
static int
value_put(struct buf *b, const struct field *f, const char *v, char *why,
    size_t whylen)
{
	switch (f->type) {
	case F_TEXT:
		if (strlen(v) > 4096) {
			snprintf(why, whylen,
			    "field %s: longer than 4096 bytes", f->name);
			return -1;
		}
		json_string_put(b, v);
		return 0;
	case F_NUMBER: {
		char *end;
		double d;

		errno = 0;
		d = strtod(v, &end);
		if (end == v || *end != '\0' || errno != 0 || !isfinite(d)) {
			snprintf(why, whylen,
			    "field %s: '%.40s' is not a number", f->name, v);
			return -1;
		}
		if (json_number_text(v))
			buf_puts(b, v);
		else
			buf_printf(b, "%.17g", d);
		return 0;
	}
	case F_DATE: {
		int64_t t;

		if (!parse_date(v, &t)) {
			snprintf(why, whylen,
			    "field %s: '%.40s' is not a date (YYYY-MM-DD, "
			    "YYYY-MM-DDTHH:MM:SSZ or Unix seconds)",
			    f->name, v);
			return -1;
		}
		buf_printf(b, "%lld", (long long)t);
		return 0;
	}
	case F_BOOLEAN: {
		bool on;

		if (!parse_bool(v, &on)) {
			snprintf(why, whylen,
			    "field %s: '%.40s' is not a boolean (true/false, "
			    "yes/no, 1/0)",
			    f->name, v);
			return -1;
		}
		buf_puts(b, on ? "true" : "false");
		return 0;
	}
	case F_ONE_OF: {
		size_t i;
		json_t *c;

		json_array_foreach(f->choices, i, c)
		{
			if (strcmp(json_string_value(c), v) == 0) {
				json_string_put(b, v);
				return 0;
			}
		}
		snprintf(why, whylen,
		    "field %s: '%.40s' is not one of its values", f->name, v);
		return -1;
	}
	}
	return -1;
}

/* ---- records ---- */

/*
 * header_map - the targets of the columns of a header: the map of the
 * options, or guessed.
 */
static void
header_map(struct run *r, const char *const *names, size_t n)
{
	struct csvin_map g;

	free(r->cols);
	r->cols = xcalloc(n ? n : 1, sizeof(*r->cols));
	r->ncols = n;
	r->have_header = true;
	if (r->map != NULL) {
		for (size_t i = 0; i < n; i++) {
			json_t *t = json_object_get(r->map, names[i]);

			if (t != NULL)
				target_parse(
				    r, json_string_value(t), &r->cols[i]);
		}
		return;
	}
	csvin_map_guess(names, n, &g);
	for (size_t i = 0; i < n; i++) {
		char norm[STORE_FIELD_NAME_MAX + 1];
		size_t k = 0;
		ssize_t f;

		if ((long)i == g.email)
			r->cols[i].kind = T_EMAIL;
		else if ((long)i == g.first_name)
			r->cols[i].kind = T_FIRST;
		else if ((long)i == g.last_name)
			r->cols[i].kind = T_LAST;
		else if ((long)i == g.full_name)
			r->cols[i].kind = T_NAME;
		else if (strcasecmp(names[i], "reason") == 0)
			r->cols[i].kind = T_REASON;
		if (r->cols[i].kind != T_IGNORE)
			continue;
		/* "Favourite Colour" -> favourite_colour */
		for (const char *p = names[i];
		     *p != '\0' && k < sizeof(norm) - 1; p++) {
			char c = *p;

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			else if (c == ' ' || c == '-')
				c = '_';
			norm[k++] = c;
		}
		norm[k] = '\0';
		if ((f = field_find(r, norm)) >= 0) {
			r->cols[i].kind = T_FIELD;
			r->cols[i].field = (size_t)f;
		}
	}
}

/*
 * header_check - a source with one header (CSV, a query's columns): the
 * columns of the map must be there, and one must be the address.  false
 * after failing the run (the reader).
 */
static bool
header_check(struct run *r, const char *const *names, size_t n)
{
	struct buf cols = BUF_INIT;
	const char *key;
	json_t *v;
	bool email = false;

	for (size_t i = 0; i < n; i++) {
		email |= r->cols[i].kind == T_EMAIL;
		if (cols.len < 200)
			buf_printf(
			    &cols, "%s\"%.40s\"", i ? ", " : "", names[i]);
	}
	json_object_foreach(r->map, key, v)
	{
		size_t i;

		for (i = 0; i < n && strcmp(names[i], key) != 0; i++)
			;
		if (i == n) {
			rd_fail(r,
			    "options.map: no column \"%.64s\" in the header "
			    "(%s)",
			    key, buf_cstr(&cols));
			buf_free(&cols);
			return false;
		}
	}
	if (!email)
		rd_fail(r,
		    "no column of the header (%s) is an address: name it "
		    "with map COLUMN=email",
		    buf_cstr(&cols));
	buf_free(&cols);
	return email;
}

/* put_contact - one contact for the writer (the reader); -1 stops */
static int
put_contact(struct run *r, unsigned long line, const char *email_in,
    const char *name, const char *set_s, const char *fill_s)
{
	char email[STORE_EMAIL_MAX + 1];
	struct item *it;
	const char *why;

	if (import_email_normalize(email_in, email, sizeof(email), &why) < 0)
		return bad_row(
		    r, line, "invalid address '%.80s': %s", email_in, why);
	if ((it = emit(r, IT_CONTACT, line)) == NULL)
		return -1;
	it->a = text_put(r, email);
	it->b = text_put(r, name);
	it->set = text_put(r, set_s);
	it->fill = text_put(r, fill_s);
	return 0;
}

/* put_suppression - one suppression row for the writer (the reader) */
static int
put_suppression(
    struct run *r, unsigned long line, const char *email_in, const char *reason)
{
	char email[STORE_EMAIL_MAX + 1];
	struct item *it;
	const char *why;

	if (import_email_normalize(email_in, email, sizeof(email), &why) < 0)
		return bad_row(
		    r, line, "invalid address '%.80s': %s", email_in, why);
	if (reason == NULL || reason[0] == '\0')
		reason = "manual";
	if (strcmp(reason, "unsubscribed") != 0 &&
	    strcmp(reason, "hard_bounce") != 0 &&
	    strcmp(reason, "complaint") != 0 && strcmp(reason, "manual") != 0)
		return bad_row(r, line,
		    "reason '%.40s': use unsubscribed, hard_bounce, complaint "
		    "or manual",
		    reason);
	if ((it = emit(r, IT_SUPPRESSION, line)) == NULL)
		return -1;
	it->a = text_put(r, email);
	it->b = text_put(r, reason);
	return 0;
}

/* apply - write one item (the writer); -1 stops the run */
static int
apply(struct run *r, const struct batch *b, const struct item *it)
{
	const char *text = b->text.data, *err;
	enum store_subscribe_result res;
	struct store_contact_in in = { 0 };
	int64_t new_id = 0;
	int ret;

#define TEXT(off) ((off) == NO_TEXT ? NULL : text + (off))
	switch (it->kind) {
	case IT_BAD:
		if (keep_error(r, it->line, TEXT(it->a)) < 0)
			return -1;
		break;
	case IT_SUPPRESSION:
		if (store_suppression_add(r->s, r->job.account_id, TEXT(it->a),
			TEXT(it->b), &err) < 0) {
			run_fail(r, "%s", err);
			return -1;
		}
		r->job.created++;
		break;
	case IT_CONTACT:
		in.email = TEXT(it->a);
		in.name = TEXT(it->b);
		in.name_if_empty = r->name_rule == RULE_IF_EMPTY;
		in.attrs_set = TEXT(it->set);
		in.attrs_fill = TEXT(it->fill);
		in.list_id = r->job.list_id;
		in.consent = r->has_consent ? &r->consent : NULL;
		in.mode = r->mode;
		in.job_id = r->job.id;
		in.defer_subscription = true;
		in.new_id_r = &new_id;
		ret = store_contact_put(
		    r->s, r->job.account_id, &in, &res, NULL, &err);
		if (new_id != 0 && r->first_new == 0)
			r->first_new = new_id;
		if (ret == 1) {
			run_fail(r, "the job's list is gone");
			return -1;
		}
		if (ret < 0) {
			/* a value the store refuses (a name too long...) is
			   the row's fault; a database failure ends the run */
			if (strstr(err, "invalid") == NULL) {
				run_fail(r, "%s", err);
				return -1;
			}
			if (keep_error(r, it->line, err) < 0)
				return -1;
			break;
		}
		if (res == STORE_SUBSCRIBE_CREATED)
			r->job.created++;
		else if (res == STORE_SUBSCRIBE_UPDATED)
			r->job.updated++;
		else
			r->job.skipped++;
		break;
	}
#undef TEXT
	return it->counts ? row_done(r) : 0;
}

/*
 * record - one record of named columns (values[i] of column i, NULL for
 * none): map, check, write.  -1 stops the run.
 */
static int
record(struct run *r, unsigned long line, const char *const *values, size_t n)
{
	const char *email = NULL, *name = NULL, *first = NULL, *last = NULL,
		   *reason = NULL;
	char namebuf[600], why[REASON_MAX];
	struct buf *set = &r->setj, *fill = &r->fillj;

	/* the values as two JSON objects, written as they are checked; a
	   field given by two columns takes the first */
	buf_reset(set);
	buf_reset(fill);
	if (++r->stamp == 0) {
		memset(r->seen, 0, r->nfields * sizeof(*r->seen));
		r->stamp = 1;
	}
	if (n > r->ncols)
		n = r->ncols;
	for (size_t i = 0; i < n; i++) {
		const char *v = values[i];
		const struct target *t = &r->cols[i];

		if (v == NULL || v[0] == '\0')
			continue;
		switch (t->kind) {
		case T_IGNORE:
			break;
		case T_EMAIL:
			email = email == NULL ? v : email;
			break;
		case T_NAME:
			name = v;
			break;
		case T_FIRST:
			first = v;
			break;
		case T_LAST:
			last = v;
			break;
		case T_REASON:
			reason = v;
			break;
		case T_FIELD: {
			const struct field *f = &r->fields[t->field];
			struct buf *b = f->rule == RULE_ALWAYS ? set : fill;
			size_t mark = b->len;

			if (r->seen[t->field] == r->stamp)
				break;
			r->seen[t->field] = r->stamp;
			buf_append(b, mark == 0 ? "{\"" : ",\"", 2);
			buf_puts(b, f->name);
			buf_append(b, "\":", 2);
			if (value_put(b, f, v, why, sizeof(why)) < 0)
				return bad_row(r, line, "%s", why);
			break;
		}
		}
	}
	if (email == NULL)
		return bad_row(r, line, "no email address");
	if (name == NULL && (first != NULL || last != NULL)) {
		snprintf(namebuf, sizeof(namebuf), "%s%s%s", first ? first : "",
		    first && last ? " " : "", last ? last : "");
		name = namebuf;
	}
	if (set->len > 0)
		buf_append(set, "}", 1);
	if (fill->len > 0)
		buf_append(fill, "}", 1);
	if (r->suppressions)
		return put_suppression(r, line, email, reason);
	return put_contact(r, line, email,
	    r->name_rule == RULE_NEVER ? NULL : name,
	    set->len > 0 ? buf_cstr(set) : NULL,
	    fill->len > 0 ? buf_cstr(fill) : NULL);
}

/*
 * next_row - whether this source row is to be processed (false: an
 * earlier run committed it already).
 */
static bool
next_row(struct run *r)
{
	return ++r->row > r->skip;
}

/* ---- sources ---- */

static int
csv_row(void *arg, const struct csvin_row *row)
{
	struct run *r = arg;

	if (row->flags & CSVIN_ROW_HEADER) {
		if (row->flags & CSVIN_ROW_SKIPPED) {
			rd_fail(r, "line %lu: the header: %s", row->line,
			    row->reason);
			return -1;
		}
		header_map(r, row->fields, row->nfields);
		return header_check(r, row->fields, row->nfields) ? 0 : -1;
	}
	if (!next_row(r))
		return 0;
	if (row->flags & CSVIN_ROW_SKIPPED)
		return bad_row(r, row->line, "%s", row->reason) < 0 ? -1 : 0;
	if (row->nfields > r->ncols)
		return bad_row(r, row->line, "%zu columns, the header has %zu",
			   row->nfields, r->ncols) < 0
		    ? -1
		    : 0;
	return record(r, row->line, row->fields, row->nfields) < 0 ? -1 : 0;
}

/* vCard: each EMAIL of a card is a contact with the card's name */
static void
vcard_row(void *arg, const struct vcard *card, const char *error)
{
	struct run *r = arg;
	char name[600];
	if (r->halt || r->rfailed || !next_row(r))
		return;
	if (error != NULL) {
		bad_row(r, card != NULL ? card->line : 0, "%s", no_line(error));
		return;
	}
	if (card->nemails == 0) {
		bad_row(r, card->line, "card without EMAIL");
		return;
	}
	if (card->fn != NULL)
		snprintf(name, sizeof(name), "%s", card->fn);
	else
		snprintf(name, sizeof(name), "%s%s%s",
		    card->given ? card->given : "",
		    card->given && card->family ? " " : "",
		    card->family ? card->family : "");
	for (size_t i = 0; i < card->nemails && !r->halt; i++) {
		/* the extra addresses of a card are not rows of the source:
		   count the card once, at its last address */
		r->extra = i + 1 < card->nemails;
		if (put_contact(r, card->line, card->emails[i].value,
			r->name_rule == RULE_NEVER || name[0] == '\0' ? NULL
								      : name,
			NULL, NULL) < 0)
			break;
	}
	r->extra = false;
}

static int
jsonl_row_cb(void *arg, const struct jsonl_row *row)
{
	struct run *r = arg;

	if (!next_row(r))
		return 0;
	if (row->error != NULL)
		return bad_row(r, row->line, "%s", no_line(row->error)) < 0 ? -1
									    : 0;
	/* each line names its own columns */
	header_map(r, row->keys, row->n);
	return record(r, row->line, row->values, row->n) < 0 ? -1 : 0;
}

/* run_file - feed the job's file to the reader of its format */
static int
run_file(struct run *r)
{
	struct csvin *csv = NULL;
	struct vcard_reader *vc = NULL;
	struct jsonl *jl = NULL;
	const char *fmt = r->job.format;
	char *chunk = NULL, err[256];
	int fd, ret = 0;
	ssize_t n;
	int delim = r->delim;

	if ((fd = open(r->job.source, O_RDONLY | O_CLOEXEC)) < 0) {
		rd_fail(r, "%s: %s", r->job.source, strerror(errno));
		return -1;
	}
	if (strcmp(fmt, "tsv") == 0)
		delim = '\t';
	if (strcmp(fmt, "vcard") == 0)
		vc = vcard_new(NULL, vcard_row, r);
	else if (strcmp(fmt, "jsonl") == 0)
		jl = jsonl_new(NULL, jsonl_row_cb, r);
	else
		csv = csvin_new(NULL, delim, csv_row, r);
	if (csv == NULL && vc == NULL && jl == NULL) {
		rd_fail(r, "cannot read %s as %s", r->job.source, fmt);
		close(fd);
		return -1;
	}
	chunk = xmalloc(READ_CHUNK);
	err[0] = '\0';
	while (ret == 0 && !r->halt && !r->rfailed &&
	    (n = read(fd, chunk, READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rd_fail(r, "%s: %s", r->job.source, strerror(errno));
			break;
		}
		r->rbytes += n;
		if (csv != NULL)
			ret =
			    csvin_feed(csv, chunk, (size_t)n, err, sizeof(err));
		else if (vc != NULL)
			ret =
			    vcard_feed(vc, chunk, (size_t)n, err, sizeof(err));
		else
			ret =
			    jsonl_feed(jl, chunk, (size_t)n, err, sizeof(err));
	}
	if (ret == 0 && !r->halt && !r->rfailed) {
		if (csv != NULL)
			ret = csvin_finish(csv, err, sizeof(err));
		else if (vc != NULL)
			ret = vcard_finish(vc, err, sizeof(err)) < 0 ? -1 : 0;
		else
			ret = jsonl_finish(jl, err, sizeof(err));
	}
	if (ret < 0 && err[0] != '\0')
		rd_fail(r, "%s", err);
	csvin_free(&csv);
	vcard_free(&vc);
	jsonl_free(&jl);
	free(chunk);
	close(fd);
	return r->rfailed ? -1 : 0;
}

/* source_conninfo - the database source's connection, with its password */
static char *
source_conninfo(struct run *r)
{
	struct store_source src;
	unsigned char key[SECRET_KEY_BYTES];
	char kerr[256], *plain = NULL, *ci;
	size_t plen = 0;
	const char *err;

	if (store_source_get(
		r->s, r->job.account_id, r->job.source_id, &src, &err) != 0) {
		run_fail(r, "database source %lld: %s",
		    (long long)r->job.source_id, err);
		return NULL;
	}
	if (src.password_box[0] == '\0')
		return xstrdup(src.conninfo);
	if (secret_node_key(r->env->data_dir != NULL ? r->env->data_dir : ".",
		"dbsource", false, key, kerr, sizeof(kerr)) < 0 ||
	    secret_open_hex(
		key, src.password_box, &plain, &plen, kerr, sizeof(kerr)) < 0) {
		sodium_memzero(key, sizeof(key));
		run_fail(r,
		    "database source %lld: the stored password cannot "
		    "be read (%s)",
		    (long long)r->job.source_id, kerr);
		return NULL;
	}
	sodium_memzero(key, sizeof(key));
	ci = pgsrc_conninfo_join(src.conninfo, plain);
	secret_free_plain(&plain, plen);
	return ci;
}

static int
run_postgresql(struct run *r)
{
	const char *const *names, *const *values;
	char err[512];
	struct pgsrc *pg;
	size_t n;
	int got;

	pg = pgsrc_open(r->conninfo, r->job.source, NULL, err, sizeof(err));
	if (pg == NULL) {
		rd_fail(r, "%s", err);
		return -1;
	}
	pgsrc_columns(pg, &names, &n);
	header_map(r, names, n);
	if (!header_check(r, names, n)) {
		pgsrc_close(&pg);
		return -1;
	}
	if (r->skip > 0 && pgsrc_skip(pg, r->skip, err, sizeof(err)) < 0) {
		rd_fail(r, "%s", err);
		pgsrc_close(&pg);
		return -1;
	}
	r->row = r->skip;
	while (!r->halt && !r->rfailed) {
		got = pgsrc_next(pg, &values, &n, err, sizeof(err));
		if (got == 0)
			break;
		r->row++;
		if (got < 0) {
			/* a value over the limit skips its row; anything
			   else ends the source */
			if (strstr(err, "longer than") != NULL) {
				if (bad_row(r, (unsigned long)r->row, "%s",
					err) < 0)
					break;
				continue;
			}
			rd_fail(r, "%s", err);
			break;
		}
		if (record(r, (unsigned long)r->row, values, n) < 0)
			break;
	}
	pgsrc_close(&pg);
	return r->rfailed ? -1 : 0;
}

/* reader_main - the reader thread: the source into batches of items */
static void *
reader_main(void *arg)
{
	struct run *r = arg;

	if (strcmp(r->job.format, "postgresql") == 0)
		run_postgresql(r);
	else
		run_file(r);
	hand_over(r, true);
	return NULL;
}

/*
 * write_all - the writer's loop: apply every batch the reader hands
 * over, until the last; after a stop, take and drop what is left.
 */
static void
write_all(struct run *r)
{
	for (;;) {
		struct batch *b;
		bool last;

		pthread_mutex_lock(&r->mu);
		while (r->nfull == 0)
			pthread_cond_wait(&r->cond, &r->mu);
		b = r->full[0];
		memmove(&r->full[0], &r->full[1],
		    (--r->nfull) * sizeof(r->full[0]));
		pthread_mutex_unlock(&r->mu);

		for (size_t i = 0; i < b->n && !r->stopping && !r->failed; i++)
			if (apply(r, b, &b->items[i]) < 0)
				break;
		/* a whole batch or nothing: its rows are a prefix of what
		   is left of the source */
		if (!r->stopping && !r->failed && !b->last) {
			r->job.bytes_done = b->bytes_done;
			batch_commit(r, false);
		} else if (b->last) {
			r->job.bytes_done = b->bytes_done;
		}
		if (r->stopping || r->failed)
			r->halt = true;
		last = b->last;
		pthread_mutex_lock(&r->mu);
		r->spare[r->nspare++] = b;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->mu);
		if (last)
			break;
	}
}

/* ---- the run ---- */

int
import_run(struct store *s, int64_t id, const struct import_env *env, char *err,
    size_t errlen)
{
	struct run r = { .s = s, .env = env };
	const char *serr;
	int ret;

	if (store_import_get(s, STORE_ANY_ACCOUNT, id, &r.job, &serr) != 0) {
		snprintf(err, errlen, "%s", serr);
		return -1;
	}
	/* cancelled while no one ran it */
	if (strcmp(r.job.state, "cancelling") == 0) {
		if (store_import_set_state(s, r.job.account_id, id,
			"cancelling", "cancelled", NULL, &serr) < 0) {
			snprintf(err, errlen, "%s", serr);
			return -1;
		}
		return 0;
	}
	if (store_import_set_state(s, r.job.account_id, id, "queued,running",
		"running", NULL, &serr) != 0) {
		snprintf(err, errlen,
		    "import %lld is %s, not queued or running", (long long)id,
		    r.job.state);
		return -1;
	}
	/* SQLite allocates and frees an 85 KB page cache block per
	   statement inside a long transaction: with glibc's default
	   trimming that is an sbrk up and down per statement, which cost
	   more than the import itself (measured: 3x).  Keep the top of the
	   heap. */
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	r.suppressions = strcmp(r.job.format, "suppressions") == 0;
	r.skip = (uint64_t)r.job.rows_done;
	r.kept = r.job.errors; /* at most this many were kept */
	r.job.bytes_done = 0;
	r.started = time(NULL);
	if (store_field_list(s, r.job.account_id, field_cb, &r, &serr) < 0)
		run_fail(&r, "%s", serr);
	else if (options_load(
		     &r, r.job.format, r.job.options, r.err, sizeof(r.err)) < 0)
		r.failed = true;
	r.seen = xcalloc(r.nfields + 1, sizeof(*r.seen));
	/* Batches need not reach the disk one by one: each carries the
	   job's progress in its transaction, so a batch lost with the
	   machine is lost with its rows_done and done again on resume. */
	if (!r.failed &&
	    store_set_bulk(s, true, env->cache ? env->cache : IMPORT_CACHE,
		env->wal ? env->wal : IMPORT_WAL, &serr) < 0)
		run_fail(&r, "%s", serr);
	if (!r.failed && strcmp(r.job.format, "postgresql") == 0 &&
	    (r.conninfo = source_conninfo(&r)) == NULL)
		r.failed = true;
	if (!r.failed)
		tx_start(&r);
	if (!r.failed) {
		pthread_t reader;

		pthread_mutex_init(&r.mu, NULL);
		pthread_cond_init(&r.cond, NULL);
		r.filling = batch_new();
		/* four batches: one filling, two handed over, one written */
		for (size_t i = 0; i + 1 < NELEM(r.spare); i++)
			r.spare[r.nspare++] = batch_new();
		if (pthread_create(&reader, NULL, reader_main, &r) != 0) {
			run_fail(&r, "cannot start the reader thread");
		} else {
			write_all(&r);
			pthread_join(reader, NULL);
		}
		for (size_t i = 0; i < r.nspare; i++)
			batch_free(r.spare[i]);
		for (size_t i = 0; i < r.nfull; i++)
			batch_free(r.full[i]);
		batch_free(r.filling);
		pthread_mutex_destroy(&r.mu);
		pthread_cond_destroy(&r.cond);
		if (r.rfailed && !r.failed)
			run_fail(&r, "%s", r.rerr);
		/* stopping: the batch that saw it committed already */
		if (!r.failed && !r.stopping)
			batch_commit(&r, true);
		store_tx_rollback(s); /* a failed batch; no-op otherwise */
	}
	if (r.conninfo != NULL) {
		sodium_memzero(r.conninfo, strlen(r.conninfo));
		free(r.conninfo);
	}
	store_set_bulk(s, false, 0, 0, &serr);
	if (r.failed) {
		store_import_set_state(s, r.job.account_id, id,
		    "running,cancelling", "failed", r.err, &serr);
		snprintf(err, errlen, "%s", r.err);
		ret = -1;
	} else if (r.cancelled) {
		store_import_set_state(s, r.job.account_id, id, "cancelling",
		    "cancelled", NULL, &serr);
		ret = 0;
	} else if (r.stopping) {
		ret = 1;
	} else {
		store_import_set_state(
		    s, r.job.account_id, id, "running", "done", NULL, &serr);
		ret = 0;
	}
	if (store_import_get(s, STORE_ANY_ACCOUNT, id, &r.job, &serr) == 0 &&
	    env->progress != NULL)
		env->progress(env->arg, &r.job);
	json_decref(r.map);
	fields_free(&r);
	free(r.cols);
	free(r.seen);
	buf_free(&r.setj);
	buf_free(&r.fillj);
	return ret;
}
