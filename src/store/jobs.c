/*
 * jobs.c - the admin API's part of store.h: accounts by id, saved
 * segments, database sources, import jobs and API keys.
 *
 * The rules of store.c hold here too: every statement that reads or
 * changes account data has "account_id = ?" in its WHERE clause (or
 * inserts account_id); import_errors, which has no account_id, is read
 * through a join on import_jobs.account_id.  The exceptions, each named
 * by the header: store_import_get with STORE_ANY_ACCOUNT (the operator's
 * CLI), store_import_unfinished (resuming every account's jobs at start),
 * store_import_error_add (the runner of a job it already holds) and
 * store_apikey_verify (a key names its account itself).
 *
 * "Not found" is decided from the rows a statement returns (RETURNING),
 * never from a second query.
 *
 * A job has more columns than a driver returns (STORE_MAX_COLUMNS), so
 * its seven counters travel as one text column of numbers separated by
 * spaces (JOB_COLS).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "lib/util.h"
#include "store/store-private.h"
#include "store/store.h"

/* The domain-separation key of API key hashes; never change it. */
static const char jobs_apikey_context[] = "herald-api-key-v1";

#define APIKEY_PREFIX_LEN 12
#define APIKEY_SECRET_LEN 32
/* "hk_" prefix "_" secret */
#define APIKEY_LEN (3 + APIKEY_PREFIX_LEN + 1 + APIKEY_SECRET_LEN)
#define APIKEY_NAME_MAX 128
/* last_used_at is written at most this often (seconds) */
#define APIKEY_TOUCH_EVERY 60

#define SOURCE_BOX_MAX 1023 /* hex digits of a sealed password */

static const char jobs_base32[] = "abcdefghijklmnopqrstuvwxyz234567";

enum jobs_stmt {
	J_ACCOUNT_GET,
	J_ACCOUNT_DELETE,
	J_SEG_INSERT,
	J_SEG_GET,
	J_SEG_LIST,
	J_SEG_UPDATE,
	J_SEG_DELETE,
	J_SRC_INSERT,
	J_SRC_GET,
	J_SRC_LIST,
	J_SRC_DELETE,
	J_JOB_LIST_CHECK,
	J_JOB_SOURCE_CHECK,
	J_JOB_INSERT,
	J_JOB_GET,
	J_JOB_GET_ANY,
	J_JOB_LIST,
	J_JOB_PROGRESS,
	J_JOB_SET_STATE,
	J_JOB_ERROR_ADD,
	J_JOB_ERRORS,
	J_JOB_UNFINISHED,
	J_KEY_INSERT,
	J_KEY_FIND,
	J_KEY_TOUCH,
	J_KEY_LIST,
	J_KEY_REVOKE,
	J_COUNT
};

_Static_assert(J_COUNT <= 64, "jobs.c has 64 statement ids");

/* id, account_id, list_id, source_id, state, runner, format, source,
   options, error, created_at, started_at, updated_at, finished_at, and
   the counters as one text */
#define JOB_COLS                                                               \
	"id, account_id, list_id, source_id, state, runner, format, source,"   \
	" options, error, created_at, started_at, updated_at, finished_at,"    \
	" rows_done || ' ' || created || ' ' || updated || ' ' || skipped"     \
	" || ' ' || errors || ' ' || bytes_done || ' ' || bytes_total"
#define JOB_NCOLS 15

#define KEY_COLS                                                               \
	"id, COALESCE(account_id, 0), name, prefix, scopes, created_at,"       \
	" last_used_at, revoked_at"
#define KEY_NCOLS 8

#define J(n, text)                                                             \
	[n] = { (enum store_stmt_id)(STORE_STMT_JOBS_BASE + (n)), text }
static const struct store_stmt jobs_stmts[J_COUNT] = {
	J(J_ACCOUNT_GET,
	    "SELECT id, name, created_at, disabled FROM accounts WHERE id = ?"),
	/* ON DELETE CASCADE takes everything the account owns */
	J(J_ACCOUNT_DELETE, "DELETE FROM accounts WHERE id = ? RETURNING id"),
	J(J_SEG_INSERT,
	    "INSERT INTO segments (account_id, name, query, created_at,"
	    " updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id"),
	J(J_SEG_GET,
	    "SELECT id, name, query, created_at, updated_at FROM segments"
	    " WHERE account_id = ? AND id = ?"),
	J(J_SEG_LIST,
	    "SELECT id, name, query, created_at, updated_at FROM segments"
	    " WHERE account_id = ? ORDER BY name"),
	J(J_SEG_UPDATE,
	    "UPDATE segments SET name = COALESCE(?, name),"
	    " query = COALESCE(?, query), updated_at = ?"
	    " WHERE account_id = ? AND id = ? RETURNING id"),
	J(J_SEG_DELETE,
	    "DELETE FROM segments WHERE account_id = ? AND id = ? RETURNING "
	    "id"),
	J(J_SRC_INSERT,
	    "INSERT INTO db_sources (account_id, name, conninfo, password_box,"
	    " created_at) VALUES (?, ?, ?, ?, ?) RETURNING id"),
	J(J_SRC_GET,
	    "SELECT id, name, conninfo, password_box, created_at"
	    " FROM db_sources WHERE account_id = ? AND id = ?"),
	J(J_SRC_LIST,
	    "SELECT id, name, conninfo, password_box, created_at"
	    " FROM db_sources WHERE account_id = ? ORDER BY name"),
	J(J_SRC_DELETE,
	    "DELETE FROM db_sources WHERE account_id = ? AND id = ?"
	    " RETURNING id"),
	J(J_JOB_LIST_CHECK,
	    "SELECT id FROM lists WHERE account_id = ? AND id = ?"),
	J(J_JOB_SOURCE_CHECK,
	    "SELECT id FROM db_sources WHERE account_id = ? AND id = ?"),
	J(J_JOB_INSERT,
	    "INSERT INTO import_jobs (account_id, list_id, source_id, state,"
	    " runner, format, source, options, bytes_total, created_at,"
	    " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)"
	    " RETURNING id"),
	J(J_JOB_GET,
	    "SELECT " JOB_COLS " FROM import_jobs"
	    " WHERE account_id = ? AND id = ?"),
	/* store_import_get with STORE_ANY_ACCOUNT: the operator's CLI */
	J(J_JOB_GET_ANY, "SELECT " JOB_COLS " FROM import_jobs WHERE id = ?"),
	J(J_JOB_LIST,
	    "SELECT " JOB_COLS " FROM import_jobs WHERE account_id = ?"
	    " ORDER BY id DESC LIMIT ?"),
	J(J_JOB_PROGRESS,
	    "UPDATE import_jobs SET rows_done = ?, created = ?, updated = ?,"
	    " skipped = ?, errors = ?, bytes_done = ?, updated_at = ?"
	    " WHERE id = ? AND account_id = ? RETURNING state"),
	/* the from states: six parameters, padded with repeats */
	J(J_JOB_SET_STATE,
	    "UPDATE import_jobs SET state = ?, error = ?, updated_at = ?,"
	    " started_at = CASE WHEN ? = 1 THEN COALESCE(started_at, ?)"
	    " ELSE started_at END,"
	    " finished_at = CASE WHEN ? = 1 THEN ? ELSE finished_at END"
	    " WHERE account_id = ? AND id = ?"
	    " AND state IN (?, ?, ?, ?, ?, ?) RETURNING id"),
	/* the runner holds the job; a missing job is a FOREIGN KEY error */
	J(J_JOB_ERROR_ADD,
	    "INSERT INTO import_errors (job_id, line, reason) VALUES (?, ?, ?)"
	    " ON CONFLICT (job_id, line, reason) DO NOTHING"),
	J(J_JOB_ERRORS,
	    "SELECT e.line, e.reason FROM import_errors e"
	    " JOIN import_jobs j ON j.id = e.job_id"
	    " WHERE j.account_id = ? AND e.job_id = ?"
	    " ORDER BY e.line, e.reason LIMIT ?"),
	/* resuming at start: every account's jobs of the runner */
	J(J_JOB_UNFINISHED,
	    "SELECT " JOB_COLS " FROM import_jobs WHERE runner = ?"
	    " AND state IN ('queued', 'running', 'cancelling') ORDER BY id"),
	J(J_KEY_INSERT,
	    "INSERT INTO api_keys (account_id, name, prefix, secret_hash,"
	    " scopes, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"),
	/* a key names its account itself */
	J(J_KEY_FIND,
	    "SELECT " KEY_COLS ", secret_hash FROM api_keys WHERE prefix = ?"),
	J(J_KEY_TOUCH,
	    "UPDATE api_keys SET last_used_at = ? WHERE id = ?"
	    " AND (last_used_at IS NULL OR last_used_at <= ?)"),
	J(J_KEY_LIST,
	    "SELECT " KEY_COLS " FROM api_keys"
	    " WHERE COALESCE(account_id, 0) = ? ORDER BY id"),
	J(J_KEY_REVOKE,
	    "UPDATE api_keys SET revoked_at = ?"
	    " WHERE COALESCE(account_id, 0) = ? AND id = ?"
	    " AND revoked_at IS NULL RETURNING id"),
};
#undef J

static const struct store_value jobs_null = { .type = STORE_NULL };

/* ---- helpers ---- */

static int64_t
jobs_now(void)
{
	return (int64_t)time(NULL);
}

static int64_t
jobs_int(const struct store_value *v)
{
	return v->type == STORE_INT ? v->i : 0;
}

/*
 * jobs_text_valid - min..max bytes with no control byte but tab, line
 * feed and carriage return (queries and filters span lines)
 */
static bool
jobs_text_valid(const char *str, size_t min, size_t max)
{
	size_t n = 0;

	for (; str[n] != '\0'; n++) {
		unsigned char c = (unsigned char)str[n];

		if (n >= max || c == 0x7f ||
		    (c < 0x20 && c != '\t' && c != '\n' && c != '\r'))
			return false;
	}
	return n >= min;
}

/*
 * jobs_clean - copy in to out (outlen bytes) with control bytes as
 * spaces, cut at a UTF-8 character boundary to fit
 */
static void
jobs_clean(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in);

	if (n >= outlen) {
		n = outlen - 1;
		while (n > 0 && ((unsigned char)in[n] & 0xc0) == 0x80)
			n--;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	out[n] = '\0';
}

/* jobs_begin - a write transaction, unless the caller's is open */
static int
jobs_begin(struct store *s, const char **err)
{
	if (s->in_tx)
		return 0;
	return store_begin(s, true, err);
}

static int
jobs_commit(struct store *s, const char **err)
{
	if (s->in_tx)
		return 0;
	if (s->driver->commit(s->conn, err) < 0) {
		s->driver->rollback(s->conn);
		return -1;
	}
	return 0;
}

/* jobs_rollback - end our own transaction; copies *err first, since the
   rollback may reuse the driver's message buffer */
static void
jobs_rollback(struct store *s, const char **err, char *msg, size_t msglen)
{
	if (s->in_tx)
		return;
	snprintf(msg, msglen, "%s", *err);
	*err = msg;
	s->driver->rollback(s->conn);
}

/* ---- accounts by id ---- */

struct jobs_account_ctx {
	struct store_account *out;
	bool found;
};

static int
jobs_account_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct jobs_account_ctx *ctx = arg;
	struct store_account *a = ctx->out;

	assert(ncols == 4);
	memset(a, 0, sizeof(*a));
	a->id = cols[0].i;
	store_copy(a->name, sizeof(a->name), &cols[1]);
	a->created_at = cols[2].i;
	a->disabled = cols[3].i != 0;
	ctx->found = true;
	return 1;
}

int
store_account_get(struct store *s, int64_t id, struct store_account *out,
    const char **error_r)
{
	struct store_value p[] = { P_INT(id) };
	struct jobs_account_ctx ctx = { .out = out };
	const char *err;

	if (store_run(s, &jobs_stmts[J_ACCOUNT_GET], p, NELEM(p),
		jobs_account_row, &ctx, &err) < 0)
		return store_fail(s, error_r, "looking up account %lld: %s",
		    (long long)id, err);
	if (!ctx.found)
		return store_not_found(
		    s, error_r, "no account with id %lld", (long long)id);
	return 0;
}

int
store_account_delete(struct store *s, int64_t id, const char **error_r)
{
	struct store_value p[] = { P_INT(id) };
	struct store_int_result r;
	const char *err;

	/* one statement: the cascade is atomic with it */
	if (store_run_int(
		s, &jobs_stmts[J_ACCOUNT_DELETE], p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "deleting account %lld: %s",
		    (long long)id, err);
	if (r.rows == 0)
		return store_not_found(
		    s, error_r, "no account with id %lld", (long long)id);
	return 0;
}

/* ---- saved segments ---- */

struct jobs_seg_ctx {
	struct store *s;
	struct store_segment *out; /* get */
	bool found;
	int (*cb)(void *, const struct store_segment *); /* list */
	void *arg;
	int stop;
};

static int
jobs_seg_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct jobs_seg_ctx *ctx = arg;
	struct store_segment *seg, tmp;

	assert(ncols == 5);
	seg = ctx->out != NULL ? ctx->out : &tmp;
	memset(seg, 0, sizeof(*seg));
	seg->id = cols[0].i;
	store_copy(seg->name, sizeof(seg->name), &cols[1]);
	store_copy(seg->query, sizeof(seg->query), &cols[2]);
	seg->created_at = cols[3].i;
	seg->updated_at = cols[4].i;
	if (ctx->out != NULL) {
		ctx->found = true;
		return 1;
	}
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, seg);
	ctx->s->in_callback = false;
	return ctx->stop;
}

static int
jobs_seg_check(
    struct store *s, const char *name, const char *query, const char **error_r)
{
	char q[65];

	if (name != NULL && !store_text_valid(name, 1, STORE_SEGMENT_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid segment name '%s': use 1-%d bytes, no control "
		    "characters",
		    store_quote(name, q), STORE_SEGMENT_NAME_MAX);
	if (query != NULL &&
	    !jobs_text_valid(query, 1, STORE_SEGMENT_QUERY_MAX))
		return store_fail(s, error_r,
		    "invalid query%s%s%s: use 1-%d bytes, no control "
		    "characters but tabs and line breaks",
		    name != NULL ? " of segment '" : " of the segment",
		    name != NULL ? store_quote(name, q) : "",
		    name != NULL ? "'" : "", STORE_SEGMENT_QUERY_MAX);
	return 0;
}

int
store_segment_create(struct store *s, int64_t account_id, const char *name,
    const char *query, int64_t *id_r, const char **error_r)
{
	int64_t now = jobs_now();
	struct store_value p[] = { P_INT(account_id), P_TEXT(name),
		P_TEXT(query), P_INT(now), P_INT(now) };
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (name == NULL || query == NULL)
		return store_fail(
		    s, error_r, "a segment needs a name and a query");
	if (jobs_seg_check(s, name, query, error_r) < 0)
		return -1;
	ret =
	    store_run_int(s, &jobs_stmts[J_SEG_INSERT], p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "segment '%s' already exists in this account",
		    store_quote(name, q));
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(s, error_r, "creating segment '%s': %s",
		    store_quote(name, q), err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

int
store_segment_get(struct store *s, int64_t account_id, int64_t id,
    struct store_segment *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct jobs_seg_ctx ctx = { .s = s, .out = out };
	const char *err;

	if (store_run(s, &jobs_stmts[J_SEG_GET], p, NELEM(p), jobs_seg_row,
		&ctx, &err) < 0)
		return store_fail(
		    s, error_r, "reading segment %lld: %s", (long long)id, err);
	if (!ctx.found)
		return store_not_found(s, error_r,
		    "no segment with id %lld in this account", (long long)id);
	return 0;
}

int
store_segment_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_segment *seg), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct jobs_seg_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_run(s, &jobs_stmts[J_SEG_LIST], p, NELEM(p), jobs_seg_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "listing segments: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_segment_update(struct store *s, int64_t account_id, int64_t id,
    const char *name, const char *query, const char **error_r)
{
	struct store_value p[] = {
		name != NULL ? (struct store_value)P_TEXT(name) : jobs_null,
		query != NULL ? (struct store_value)P_TEXT(query) : jobs_null,
		P_INT(jobs_now()), P_INT(account_id), P_INT(id)
	};
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (jobs_seg_check(s, name, query, error_r) < 0)
		return -1;
	ret =
	    store_run_int(s, &jobs_stmts[J_SEG_UPDATE], p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "segment '%s' already exists in this account",
		    store_quote(name != NULL ? name : "", q));
	if (ret < 0)
		return store_fail(s, error_r, "updating segment %lld: %s",
		    (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no segment with id %lld in this account", (long long)id);
	return 0;
}

int
store_segment_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct store_int_result r;
	const char *err;

	if (store_run_int(s, &jobs_stmts[J_SEG_DELETE], p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r, "deleting segment %lld: %s",
		    (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no segment with id %lld in this account", (long long)id);
	return 0;
}

/* ---- database sources ---- */

struct jobs_src_ctx {
	struct store *s;
	struct store_source *out; /* get */
	bool found;
	int (*cb)(void *, const struct store_source *); /* list */
	void *arg;
	int stop;
};

static int
jobs_src_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct jobs_src_ctx *ctx = arg;
	struct store_source *src, tmp;

	assert(ncols == 5);
	src = ctx->out != NULL ? ctx->out : &tmp;
	memset(src, 0, sizeof(*src));
	src->id = cols[0].i;
	store_copy(src->name, sizeof(src->name), &cols[1]);
	store_copy(src->conninfo, sizeof(src->conninfo), &cols[2]);
	store_copy(src->password_box, sizeof(src->password_box), &cols[3]);
	src->created_at = cols[4].i;
	if (ctx->out != NULL) {
		ctx->found = true;
		return 1;
	}
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, src);
	ctx->s->in_callback = false;
	sodium_memzero(&tmp, sizeof(tmp));
	return ctx->stop;
}

/* jobs_box_valid - an even number of lower-case hex digits that fits */
static bool
jobs_box_valid(const char *box)
{
	size_t n = strspn(box, "0123456789abcdef");

	return box[n] == '\0' && n % 2 == 0 && n <= SOURCE_BOX_MAX;
}

int
store_source_create(struct store *s, int64_t account_id, const char *name,
    const char *conninfo, const char *password_box, int64_t *id_r,
    const char **error_r)
{
	bool has_box = password_box != NULL && *password_box != '\0';
	struct store_value p[] = { P_INT(account_id), P_TEXT(name),
		P_TEXT(conninfo),
		has_box ? (struct store_value)P_TEXT(password_box) : jobs_null,
		P_INT(jobs_now()) };
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (name == NULL || !store_text_valid(name, 1, STORE_SOURCE_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid database source name '%s': use 1-%d bytes, no "
		    "control characters",
		    store_quote(name != NULL ? name : "", q),
		    STORE_SOURCE_NAME_MAX);
	if (conninfo == NULL ||
	    !store_text_valid(conninfo, 1, STORE_SOURCE_CONNINFO_MAX))
		return store_fail(s, error_r,
		    "invalid connection string of database source '%s': use "
		    "1-%d bytes, no control characters",
		    store_quote(name, q), STORE_SOURCE_CONNINFO_MAX);
	if (has_box && !jobs_box_valid(password_box))
		return store_fail(s, error_r,
		    "invalid sealed password of database source '%s': "
		    "expected at most %d lower-case hex digits",
		    store_quote(name, q), SOURCE_BOX_MAX);
	ret =
	    store_run_int(s, &jobs_stmts[J_SRC_INSERT], p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "database source '%s' already exists in this account",
		    store_quote(name, q));
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(s, error_r,
		    "creating database source '%s': %s", store_quote(name, q),
		    err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

int
store_source_get(struct store *s, int64_t account_id, int64_t id,
    struct store_source *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct jobs_src_ctx ctx = { .s = s, .out = out };
	const char *err;

	if (store_run(s, &jobs_stmts[J_SRC_GET], p, NELEM(p), jobs_src_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r,
		    "reading database source %lld: %s", (long long)id, err);
	if (!ctx.found)
		return store_not_found(s, error_r,
		    "no database source with id %lld in this account",
		    (long long)id);
	return 0;
}

int
store_source_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_source *src), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct jobs_src_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_run(s, &jobs_stmts[J_SRC_LIST], p, NELEM(p), jobs_src_row,
		&ctx, &err) < 0)
		return store_fail(
		    s, error_r, "listing database sources: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_source_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct store_int_result r;
	const char *err;

	if (store_run_int(s, &jobs_stmts[J_SRC_DELETE], p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r,
		    "deleting database source %lld: %s", (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no database source with id %lld in this account",
		    (long long)id);
	return 0;
}

/* ---- import jobs ---- */

static const char *const jobs_states[] = { "queued", "running", "cancelling",
	"cancelled", "done", "failed" };
static const char *const jobs_runners[] = { "server", "cli" };
static const char *const jobs_formats[] = { "csv", "tsv", "vcard", "jsonl",
	"postgresql", "suppressions" };

static bool
jobs_one_of(const char *v, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v, set[i]) == 0)
			return true;
	return false;
}

static bool
jobs_state_valid(const char *state)
{
	return state != NULL && jobs_one_of(state, jobs_states, 6);
}

/* jobs_options_valid - looks like a JSON object (the caller built it) */
static bool
jobs_options_valid(const char *o)
{
	const char *ws = " \t\r\n";
	size_t start = strspn(o, ws), end = strlen(o);

	while (end > start && strchr(ws, o[end - 1]) != NULL)
		end--;
	return jobs_text_valid(o, 2, STORE_JOB_OPTIONS_MAX) &&
	    end - start >= 2 && o[start] == '{' && o[end - 1] == '}';
}

struct jobs_job_ctx {
	struct store *s;
	struct store_import_job *out; /* get */
	bool found;
	int (*cb)(void *, const struct store_import_job *); /* list */
	void *arg;
	int stop;
};

static void
jobs_job_from_row(struct store_import_job *j, const struct store_value *c)
{
	long long n[7] = { 0 };

	memset(j, 0, sizeof(*j));
	j->id = c[0].i;
	j->account_id = c[1].i;
	j->list_id = jobs_int(&c[2]);
	j->source_id = jobs_int(&c[3]);
	store_copy(j->state, sizeof(j->state), &c[4]);
	store_copy(j->runner, sizeof(j->runner), &c[5]);
	store_copy(j->format, sizeof(j->format), &c[6]);
	store_copy(j->source, sizeof(j->source), &c[7]);
	store_copy(j->options, sizeof(j->options), &c[8]);
	store_copy(j->error, sizeof(j->error), &c[9]);
	j->created_at = jobs_int(&c[10]);
	j->started_at = jobs_int(&c[11]);
	j->updated_at = jobs_int(&c[12]);
	j->finished_at = jobs_int(&c[13]);
	if (c[14].type == STORE_TEXT)
		(void)sscanf(c[14].s, "%lld %lld %lld %lld %lld %lld %lld",
		    &n[0], &n[1], &n[2], &n[3], &n[4], &n[5], &n[6]);
	j->rows_done = n[0];
	j->created = n[1];
	j->updated = n[2];
	j->skipped = n[3];
	j->errors = n[4];
	j->bytes_done = n[5];
	j->bytes_total = n[6];
}

static int
jobs_job_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct jobs_job_ctx *ctx = arg;
	struct store_import_job *j;

	assert(ncols == JOB_NCOLS);
	if (ctx->out != NULL) {
		jobs_job_from_row(ctx->out, cols);
		ctx->found = true;
		return 1;
	}
	/* a job is 13 KiB: not on the stack of every row */
	j = xcalloc(1, sizeof(*j));
	jobs_job_from_row(j, cols);
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, j);
	ctx->s->in_callback = false;
	free(j);
	return ctx->stop;
}

/* jobs_owns - whether the account has row id per a *_CHECK statement */
static int
jobs_owns(struct store *s, enum jobs_stmt st, int64_t account_id, int64_t id,
    bool *yes_r, const char **err)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct store_int_result r;

	if (store_run_int(s, &jobs_stmts[st], p, NELEM(p), &r, err) < 0)
		return -1;
	*yes_r = r.rows > 0;
	return 0;
}

int
store_import_create(struct store *s, const struct store_import_job *job,
    int64_t *id_r, const char **error_r)
{
	const char *options = job->options[0] != '\0' ? job->options : "{}";
	int64_t now = jobs_now();
	struct store_value p[] = { P_INT(job->account_id),
		job->list_id != 0 ? (struct store_value)P_INT(job->list_id)
				  : jobs_null,
		job->source_id != 0 ? (struct store_value)P_INT(job->source_id)
				    : jobs_null,
		P_TEXT(job->runner), P_TEXT(job->format), P_TEXT(job->source),
		P_TEXT(options), P_INT(job->bytes_total), P_INT(now),
		P_INT(now) };
	struct store_int_result r = { 0 };
	const char *err;
	char q[65], msg[STORE_ERROR_MAX / 2];
	bool yes;
	int ret;

	if (job->account_id <= 0)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)job->account_id);
	if (!jobs_one_of(job->runner, jobs_runners, NELEM(jobs_runners)))
		return store_fail(s, error_r,
		    "invalid import runner '%s': use server or cli",
		    store_quote(job->runner, q));
	if (!jobs_one_of(job->format, jobs_formats, NELEM(jobs_formats)))
		return store_fail(s, error_r,
		    "invalid import format '%s': use csv, tsv, vcard, jsonl, "
		    "postgresql or suppressions",
		    store_quote(job->format, q));
	if (!jobs_text_valid(job->source, 1, STORE_JOB_SOURCE_MAX))
		return store_fail(s, error_r,
		    "invalid import source: use 1-%d bytes, no control "
		    "characters but tabs and line breaks",
		    STORE_JOB_SOURCE_MAX);
	if (!jobs_options_valid(options))
		return store_fail(s, error_r,
		    "invalid import options: expected a JSON object of at "
		    "most %d bytes",
		    STORE_JOB_OPTIONS_MAX);
	if ((strcmp(job->format, "postgresql") == 0) != (job->source_id != 0))
		return store_fail(s, error_r,
		    "an import from postgresql needs a database source, and "
		    "only it");
	if (job->list_id < 0 || job->source_id < 0 || job->bytes_total < 0)
		return store_fail(s, error_r,
		    "invalid import job: negative list, source or size");

	if (jobs_begin(s, &err) < 0)
		return store_fail(s, error_r, "creating import job: %s", err);
	ret = 0;
	if (job->list_id != 0) {
		ret = jobs_owns(s, J_JOB_LIST_CHECK, job->account_id,
		    job->list_id, &yes, &err);
		if (ret == 0 && !yes)
			ret = 1;
	}
	if (ret == 0 && job->source_id != 0) {
		ret = jobs_owns(s, J_JOB_SOURCE_CHECK, job->account_id,
		    job->source_id, &yes, &err);
		if (ret == 0 && !yes)
			ret = 2;
	}
	if (ret == 0)
		ret = store_run_int(
		    s, &jobs_stmts[J_JOB_INSERT], p, NELEM(p), &r, &err);
	if (ret == 0 && jobs_commit(s, &err) == 0) {
		if (id_r != NULL)
			*id_r = r.value;
		return 0;
	}
	if (ret <= 0) /* a failed statement or commit: err says why */
		jobs_rollback(s, &err, msg, sizeof(msg));
	else if (!s->in_tx)
		s->driver->rollback(s->conn);
	if (ret == 1)
		return store_fail(s, error_r,
		    "no list with id %lld in this account",
		    (long long)job->list_id);
	if (ret == 2)
		return store_fail(s, error_r,
		    "no database source with id %lld in this account",
		    (long long)job->source_id);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)job->account_id);
	return store_fail(s, error_r, "creating import job: %s", err);
}

int
store_import_get(struct store *s, int64_t account_id, int64_t id,
    struct store_import_job *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct jobs_job_ctx ctx = { .s = s, .out = out };
	const char *err;
	int ret;

	if (account_id == STORE_ANY_ACCOUNT)
		ret = store_run(s, &jobs_stmts[J_JOB_GET_ANY], &p[1], 1,
		    jobs_job_row, &ctx, &err);
	else
		ret = store_run(s, &jobs_stmts[J_JOB_GET], p, NELEM(p),
		    jobs_job_row, &ctx, &err);
	if (ret < 0)
		return store_fail(s, error_r, "reading import job %lld: %s",
		    (long long)id, err);
	if (!ctx.found)
		return store_not_found(
		    s, error_r, "no import job with id %lld", (long long)id);
	return 0;
}

int
store_import_list(struct store *s, int64_t account_id, int64_t limit,
    int (*cb)(void *arg, const struct store_import_job *job), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(limit) };
	struct jobs_job_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (limit <= 0)
		return store_fail(s, error_r,
		    "invalid limit %lld: list at least one import job",
		    (long long)limit);
	if (store_run(s, &jobs_stmts[J_JOB_LIST], p, NELEM(p), jobs_job_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "listing import jobs: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

struct jobs_state_ctx {
	bool found;
	char state[12];
};

static int
jobs_state_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct jobs_state_ctx *ctx = arg;

	assert(ncols == 1);
	ctx->found = true;
	store_copy(ctx->state, sizeof(ctx->state), &cols[0]);
	return 1;
}

int
store_import_progress(struct store *s, const struct store_import_job *job,
    char state_r[12], const char **error_r)
{
	struct store_value p[] = { P_INT(job->rows_done), P_INT(job->created),
		P_INT(job->updated), P_INT(job->skipped), P_INT(job->errors),
		P_INT(job->bytes_done), P_INT(jobs_now()), P_INT(job->id),
		P_INT(job->account_id) };
	struct jobs_state_ctx ctx = { .found = false };
	const char *err;

	if (job->rows_done < 0 || job->created < 0 || job->updated < 0 ||
	    job->skipped < 0 || job->errors < 0 || job->bytes_done < 0)
		return store_fail(s, error_r,
		    "invalid progress of import job %lld: negative counters",
		    (long long)job->id);
	/* one statement: it joins the caller's transaction, if any, and
	   is atomic on its own otherwise */
	if (store_run(s, &jobs_stmts[J_JOB_PROGRESS], p, NELEM(p),
		jobs_state_row, &ctx, &err) < 0)
		return store_fail(s, error_r,
		    "recording the progress of import job %lld: %s",
		    (long long)job->id, err);
	if (!ctx.found)
		return store_fail(s, error_r, "no import job with id %lld",
		    (long long)job->id);
	memcpy(state_r, ctx.state, sizeof(ctx.state));
	return 0;
}

int
store_import_set_state(struct store *s, int64_t account_id, int64_t id,
    const char *from, const char *state, const char *error,
    const char **error_r)
{
	char froms[6][12], q[65], msg[STORE_JOB_ERROR_MAX + 1];
	size_t nfrom = 0;
	const char *f = from != NULL ? from : "";
	int64_t now = jobs_now();
	struct store_int_result r;
	const char *err;
	bool running, ended;

	if (!jobs_state_valid(state))
		return store_fail(s, error_r,
		    "invalid import job state '%s': use queued, running, "
		    "cancelling, cancelled, done or failed",
		    store_quote(state != NULL ? state : "", q));
	for (;;) {
		size_t n = strcspn(f, ",");
		char one[12];

		if (n == 0 || n >= sizeof(one) || nfrom == NELEM(froms)) {
			nfrom = 0;
			break;
		}
		memcpy(one, f, n);
		one[n] = '\0';
		if (!jobs_state_valid(one)) {
			nfrom = 0;
			break;
		}
		memcpy(froms[nfrom++], one, sizeof(one));
		if (f[n] == '\0')
			break;
		f += n + 1;
	}
	if (nfrom == 0)
		return store_fail(s, error_r,
		    "invalid import job states '%s': use a comma-separated "
		    "list of queued, running, cancelling, cancelled, done, "
		    "failed",
		    store_quote(from != NULL ? from : "", q));
	for (size_t i = nfrom; i < NELEM(froms); i++)
		memcpy(froms[i], froms[0], sizeof(froms[0]));
	if (error != NULL)
		jobs_clean(error, msg, sizeof(msg));
	running = strcmp(state, "running") == 0;
	ended = strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 ||
	    strcmp(state, "cancelled") == 0;
	{
		struct store_value p[] = { P_TEXT(state),
			error != NULL ? (struct store_value)P_TEXT(msg)
				      : jobs_null,
			P_INT(now), P_INT(running ? 1 : 0), P_INT(now),
			P_INT(ended ? 1 : 0), P_INT(now), P_INT(account_id),
			P_INT(id), P_TEXT(froms[0]), P_TEXT(froms[1]),
			P_TEXT(froms[2]), P_TEXT(froms[3]), P_TEXT(froms[4]),
			P_TEXT(froms[5]) };

		if (store_run_int(s, &jobs_stmts[J_JOB_SET_STATE], p, NELEM(p),
			&r, &err) < 0)
			return store_fail(s, error_r,
			    "setting the state of import job %lld: %s",
			    (long long)id, err);
	}
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no import job with id %lld in state %s in this account",
		    (long long)id, store_quote(from, q));
	return 0;
}

int
store_import_error_add(struct store *s, int64_t job_id, unsigned long line,
    const char *reason, const char **error_r)
{
	char clean[STORE_JOB_ERROR_MAX + 1];
	struct store_value p[] = { P_INT(job_id), P_INT((int64_t)line),
		P_TEXT(clean) };
	const char *err;
	int ret;

	if ((uint64_t)line > (uint64_t)INT64_MAX)
		return store_fail(s, error_r, "invalid line number %lu", line);
	if (reason == NULL || *reason == '\0')
		return store_fail(s, error_r,
		    "a bad row of import job %lld needs a reason",
		    (long long)job_id);
	jobs_clean(reason, clean, sizeof(clean));
	ret = store_run(
	    s, &jobs_stmts[J_JOB_ERROR_ADD], p, NELEM(p), NULL, NULL, &err);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no import job with id %lld",
		    (long long)job_id);
	if (ret < 0)
		return store_fail(s, error_r,
		    "keeping a bad row of import job %lld: %s",
		    (long long)job_id, err);
	return 0;
}

struct jobs_errors_ctx {
	struct store *s;
	int (*cb)(void *, unsigned long, const char *);
	void *arg;
	int stop;
};

static int
jobs_errors_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct jobs_errors_ctx *ctx = arg;

	assert(ncols == 2);
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, (unsigned long)jobs_int(&cols[0]),
	    cols[1].type == STORE_TEXT ? cols[1].s : "");
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_import_errors(struct store *s, int64_t account_id, int64_t job_id,
    int64_t limit, int (*cb)(void *arg, unsigned long line, const char *reason),
    void *arg, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(job_id),
		P_INT(limit) };
	struct jobs_errors_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (limit <= 0)
		return store_fail(s, error_r,
		    "invalid limit %lld: list at least one bad row",
		    (long long)limit);
	if (store_run(s, &jobs_stmts[J_JOB_ERRORS], p, NELEM(p),
		jobs_errors_row, &ctx, &err) < 0)
		return store_fail(s, error_r,
		    "listing the bad rows of import job %lld: %s",
		    (long long)job_id, err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_import_unfinished(struct store *s, const char *runner,
    int (*cb)(void *arg, const struct store_import_job *job), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_TEXT(runner) };
	struct jobs_job_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;
	char q[65];

	if (runner == NULL ||
	    !jobs_one_of(runner, jobs_runners, NELEM(jobs_runners)))
		return store_fail(s, error_r,
		    "invalid import runner '%s': use server or cli",
		    store_quote(runner != NULL ? runner : "", q));
	if (store_run(s, &jobs_stmts[J_JOB_UNFINISHED], p, NELEM(p),
		jobs_job_row, &ctx, &err) < 0)
		return store_fail(
		    s, error_r, "listing unfinished import jobs: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

/* ---- API keys ---- */

/* jobs_base32 - n characters of a-z2-7 from random bytes, and a NUL */
static void
jobs_random_base32(char *out, size_t n)
{
	unsigned char bytes[(APIKEY_SECRET_LEN * 5 + 7) / 8];
	size_t bit = 0;

	assert(n <= APIKEY_SECRET_LEN);
	randombytes_buf(bytes, sizeof(bytes));
	for (size_t i = 0; i < n; i++, bit += 5) {
		unsigned v = (unsigned)bytes[bit / 8] << 8;

		if (bit / 8 + 1 < sizeof(bytes))
			v |= bytes[bit / 8 + 1];
		out[i] = jobs_base32[(v >> (11 - bit % 8)) & 31];
	}
	out[n] = '\0';
	sodium_memzero(bytes, sizeof(bytes));
}

static bool
jobs_base32_valid(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\0' || strchr(jobs_base32, p[i]) == NULL)
			return false;
	return true;
}

/* jobs_apikey_hash - hex of the keyed BLAKE2b-256 of the whole key */
static void
jobs_apikey_hash(const char *key, char out[65])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)key,
	    strlen(key), (const unsigned char *)jobs_apikey_context,
	    sizeof(jobs_apikey_context) - 1);
	sodium_bin2hex(out, 65, h, sizeof(h));
	sodium_memzero(h, sizeof(h));
}

/*
 * jobs_scopes_normal - scopes (a comma-separated subset of read, write,
 * admin) in the order read,write,admin; false if invalid
 */
static bool
jobs_scopes_normal(const char *scopes, char out[64], bool *admin_r)
{
	static const char *const names[] = { "read", "write", "admin" };
	bool has[3] = { false, false, false };
	const char *p = scopes;

	*admin_r = false;
	out[0] = '\0';
	if (scopes == NULL || *scopes == '\0')
		return false;
	for (;;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < NELEM(names); i++)
			if (strlen(names[i]) == n &&
			    strncmp(p, names[i], n) == 0)
				break;
		if (i == NELEM(names))
			return false;
		has[i] = true;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	for (size_t i = 0; i < NELEM(names); i++) {
		if (!has[i])
			continue;
		if (out[0] != '\0')
			strcat(out, ",");
		strcat(out, names[i]);
	}
	*admin_r = has[2];
	return true;
}

int
store_apikey_create(struct store *s, int64_t account_id, const char *name,
    const char *scopes, char key_out[STORE_APIKEY_MAX], int64_t *id_r,
    const char **error_r)
{
	char norm[64], prefix[APIKEY_PREFIX_LEN + 1];
	char secret[APIKEY_SECRET_LEN + 1], key[APIKEY_LEN + 1], hash[65];
	char q[65];
	struct store_value p[] = { account_id != 0
		    ? (struct store_value)P_INT(account_id)
		    : jobs_null,
		P_TEXT(name), P_TEXT(prefix), P_TEXT(hash), P_TEXT(norm),
		P_INT(jobs_now()) };
	struct store_int_result r;
	const char *err = "";
	bool admin;
	int ret = STORE_DB_UNIQUE;

	_Static_assert(APIKEY_LEN < STORE_APIKEY_MAX, "key fits key_out");
	key_out[0] = '\0';
	if (account_id < 0)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (name == NULL || !store_text_valid(name, 1, APIKEY_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid API key name '%s': use 1-%d bytes, no control "
		    "characters",
		    store_quote(name != NULL ? name : "", q), APIKEY_NAME_MAX);
	if (!jobs_scopes_normal(scopes, norm, &admin))
		return store_fail(s, error_r,
		    "invalid API key scopes '%s': use a comma-separated list "
		    "of read, write and admin",
		    store_quote(scopes != NULL ? scopes : "", q));
	if (account_id == 0 && !admin)
		return store_fail(s, error_r,
		    "an operator's API key (account 0) needs the admin scope");
	/* a prefix taken already (60 random bits: hardly ever) is drawn
	   again */
	for (int tries = 0; tries < 3 && ret == STORE_DB_UNIQUE; tries++) {
		jobs_random_base32(prefix, APIKEY_PREFIX_LEN);
		jobs_random_base32(secret, APIKEY_SECRET_LEN);
		snprintf(key, sizeof(key), "hk_%s_%s", prefix, secret);
		jobs_apikey_hash(key, hash);
		ret = store_run_int(
		    s, &jobs_stmts[J_KEY_INSERT], p, NELEM(p), &r, &err);
	}
	sodium_memzero(secret, sizeof(secret));
	if (ret == 0) {
		memcpy(key_out, key, sizeof(key));
		if (id_r != NULL)
			*id_r = r.value;
	}
	sodium_memzero(key, sizeof(key));
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "creating API key '%s': no free key prefix",
		    store_quote(name, q));
	if (ret < 0)
		return store_fail(s, error_r, "creating API key '%s': %s",
		    store_quote(name, q), err);
	return 0;
}

struct jobs_key_ctx {
	struct store *s;
	struct store_apikey *out; /* verify */
	bool found;
	char hash[65];
	int (*cb)(void *, const struct store_apikey *); /* list */
	void *arg;
	int stop;
};

static int
jobs_key_row(void *arg, const struct store_value *c, size_t ncols)
{
	struct jobs_key_ctx *ctx = arg;
	struct store_apikey *k, tmp;

	assert(ncols == KEY_NCOLS || ncols == KEY_NCOLS + 1);
	k = ctx->out != NULL ? ctx->out : &tmp;
	memset(k, 0, sizeof(*k));
	k->id = c[0].i;
	k->account_id = jobs_int(&c[1]);
	store_copy(k->name, sizeof(k->name), &c[2]);
	store_copy(k->prefix, sizeof(k->prefix), &c[3]);
	store_copy(k->scopes, sizeof(k->scopes), &c[4]);
	k->created_at = jobs_int(&c[5]);
	k->last_used_at = jobs_int(&c[6]);
	k->revoked_at = jobs_int(&c[7]);
	if (ctx->out != NULL) {
		assert(ncols == KEY_NCOLS + 1);
		store_copy(ctx->hash, sizeof(ctx->hash), &c[8]);
		ctx->found = true;
		return 1;
	}
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, k);
	ctx->s->in_callback = false;
	return ctx->stop;
}

/* jobs_apikey_parse - the prefix of a well-formed key, or false */
static bool
jobs_apikey_parse(const char *key, char prefix[APIKEY_PREFIX_LEN + 1])
{
	if (key == NULL || strnlen(key, APIKEY_LEN + 1) != APIKEY_LEN ||
	    strncmp(key, "hk_", 3) != 0 ||
	    !jobs_base32_valid(key + 3, APIKEY_PREFIX_LEN) ||
	    key[3 + APIKEY_PREFIX_LEN] != '_' ||
	    !jobs_base32_valid(key + 4 + APIKEY_PREFIX_LEN, APIKEY_SECRET_LEN))
		return false;
	memcpy(prefix, key + 3, APIKEY_PREFIX_LEN);
	prefix[APIKEY_PREFIX_LEN] = '\0';
	return true;
}

int
store_apikey_verify(struct store *s, const char *key, struct store_apikey *out,
    const char **error_r)
{
	char prefix[APIKEY_PREFIX_LEN + 1], hash[65];
	struct store_value p[] = { P_TEXT(prefix) };
	struct store_apikey rec;
	struct jobs_key_ctx ctx = { .s = s, .out = &rec };
	int64_t now = jobs_now();
	const char *err;
	bool same;

	if (!jobs_apikey_parse(key, prefix))
		return store_not_found(
		    s, error_r, "unknown or revoked API key");
	jobs_apikey_hash(key, hash);
	if (store_run(s, &jobs_stmts[J_KEY_FIND], p, NELEM(p), jobs_key_row,
		&ctx, &err) < 0)
		return store_fail(
		    s, error_r, "looking up API key %s: %s", prefix, err);
	/* the comparison happens whether or not the prefix was found */
	if (!ctx.found || strlen(ctx.hash) != STORE_SECRET_HASH_LEN)
		memcpy(ctx.hash, hash, sizeof(hash));
	same = sodium_memcmp(ctx.hash, hash, STORE_SECRET_HASH_LEN) == 0;
	sodium_memzero(hash, sizeof(hash));
	if (!ctx.found || !same || rec.revoked_at != 0)
		return store_not_found(
		    s, error_r, "unknown or revoked API key");
	if (rec.last_used_at == 0 ||
	    now - rec.last_used_at >= APIKEY_TOUCH_EVERY) {
		struct store_value pt[] = { P_INT(now), P_INT(rec.id),
			P_INT(now - APIKEY_TOUCH_EVERY) };

		if (store_run(s, &jobs_stmts[J_KEY_TOUCH], pt, NELEM(pt), NULL,
			NULL, &err) < 0)
			return store_fail(s, error_r,
			    "recording the use of API key %s: %s", prefix, err);
		rec.last_used_at = now;
	}
	if (out != NULL)
		*out = rec;
	return 0;
}

int
store_apikey_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_apikey *k), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct jobs_key_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (account_id < 0)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (store_run(s, &jobs_stmts[J_KEY_LIST], p, NELEM(p), jobs_key_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "listing API keys: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_apikey_revoke(
    struct store *s, int64_t account_id, int64_t id, const char **error_r)
{
	struct store_value p[] = { P_INT(jobs_now()), P_INT(account_id),
		P_INT(id) };
	struct store_int_result r;
	const char *err;

	if (account_id < 0)
		return store_not_found(s, error_r,
		    "no active API key with id %lld in this account",
		    (long long)id);
	if (store_run_int(s, &jobs_stmts[J_KEY_REVOKE], p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r, "revoking API key %lld: %s",
		    (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no active API key with id %lld in this account",
		    (long long)id);
	return 0;
}
