/*
 * test_jobs_store - the admin API's part of the store (src/store/jobs.c)
 * against a real SQLite file: accounts by id, saved segments, database
 * sources, import jobs and API keys, and the walls between accounts
 * (another account's id is "not found" and changes nothing).
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
#include <sqlite3.h>

#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *s;
	int64_t a, b; /* two accounts */
};

static int64_t
new_account(struct store *s, const char *name)
{
	const char *err = NULL;
	int64_t id = 0;

	if (store_account_create(s, name, &id, &err) != 0)
		fail_msg("store_account_create(%s): %s", name, err);
	assert_true(id > 0);
	return id;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *err = NULL;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_jobs_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/herald.db", f->dir);
	f->s = store_open(f->path, &err);
	if (f->s == NULL)
		fail_msg("store_open: %s", err);
	if (store_migrate(f->s, &err) != 0)
		fail_msg("store_migrate: %s", err);
	f->a = new_account(f->s, "alpha");
	f->b = new_account(f->s, "beta");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	store_close(&f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* sql_int - a one-integer query run directly with SQLite */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* sql_exec - a statement run directly with SQLite */
static void
sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* file_has - whether the database files (main, WAL) hold needle */
static bool
file_has(const char *path, const char *needle)
{
	const char *suffixes[] = { "", "-wal", "-journal" };
	size_t nl = strlen(needle);

	for (size_t i = 0; i < 3; i++) {
		char name[160];
		FILE *fp;
		char *buf;
		long len;
		bool found = false;

		snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
		if ((fp = fopen(name, "rb")) == NULL)
			continue;
		fseek(fp, 0, SEEK_END);
		len = ftell(fp);
		fseek(fp, 0, SEEK_SET);
		buf = malloc((size_t)len + 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
		fclose(fp);
		for (long j = 0; j + (long)nl <= len && !found; j++)
			found = memcmp(buf + j, needle, nl) == 0;
		free(buf);
		if (found)
			return true;
	}
	return false;
}

static int
count_cb(void *arg, const void *item)
{
	(void)item;
	(*(int *)arg)++;
	return 0;
}

/* ---- accounts by id ---- */

static void
test_account_get(void **state)
{
	struct fixture *f = *state;
	struct store_account acc;
	const char *err = NULL;

	assert_int_equal(store_account_get(f->s, f->a, &acc, &err), 0);
	assert_int_equal(acc.id, f->a);
	assert_string_equal(acc.name, "alpha");
	assert_false(acc.disabled);
	assert_true(acc.created_at > 0);
	assert_int_equal(store_account_get(f->s, 9999, &acc, &err), 1);
	assert_string_equal(err, "no account with id 9999");
	assert_int_equal(store_account_set_disabled(f->s, f->b, true, &err), 0);
	assert_int_equal(store_account_get(f->s, f->b, &acc, &err), 0);
	assert_true(acc.disabled);
	assert_string_equal(acc.name, "beta");
}

static void
test_account_delete(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job = { 0 };
	struct store_account acc;
	enum store_subscribe_result res;
	char key_a[STORE_APIKEY_MAX], key_b[STORE_APIKEY_MAX];
	const char *err = NULL;
	int64_t la, lb, id;

	assert_int_equal(
	    store_list_create(f->s, f->a, "News", NULL, "single", &la, &err),
	    0);
	assert_int_equal(
	    store_list_create(f->s, f->b, "News", NULL, "single", &lb, &err),
	    0);
	assert_int_equal(store_contact_subscribe(f->s, f->a, la, "x@a.example",
			     NULL, NULL, STORE_SUBSCRIBE_ADD, &res, &err),
	    0);
	assert_int_equal(store_contact_subscribe(f->s, f->b, lb, "x@b.example",
			     NULL, NULL, STORE_SUBSCRIBE_ADD, &res, &err),
	    0);
	assert_int_equal(
	    store_apikey_create(f->s, f->a, "k", "read", key_a, &id, &err), 0);
	assert_int_equal(
	    store_apikey_create(f->s, f->b, "k", "read", key_b, &id, &err), 0);
	assert_int_equal(
	    store_segment_create(f->s, f->a, "s", "q", NULL, &err), 0);
	assert_int_equal(
	    store_source_create(f->s, f->a, "db", "host=x", NULL, NULL, &err),
	    0);
	for (int i = 0; i < 2; i++) {
		job.account_id = i == 0 ? f->a : f->b;
		job.list_id = i == 0 ? la : lb;
		snprintf(job.runner, sizeof(job.runner), "cli");
		snprintf(job.format, sizeof(job.format), "csv");
		snprintf(job.source, sizeof(job.source), "in.csv");
		assert_int_equal(store_import_create(f->s, &job, &id, &err), 0);
		assert_int_equal(
		    store_import_error_add(f->s, id, 3, "bad", &err), 0);
	}

	assert_int_equal(store_account_delete(f->s, f->a, &err), 0);
	assert_int_equal(store_account_get(f->s, f->a, &acc, &err), 1);
	assert_int_equal(store_account_delete(f->s, f->a, &err), 1);
	assert_string_equal(err, "no account with id 1");
	assert_int_equal(store_account_delete(f->s, 9999, &err), 1);
	/* everything of alpha went, beta's stayed */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM lists"), 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM contacts"), 1);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM subscriptions"), 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM api_keys"), 1);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM import_jobs"), 1);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM import_errors"), 1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM segments"), 0);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM db_sources"), 0);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM lists WHERE account_id = 2"),
	    1);
	assert_int_equal(store_apikey_verify(f->s, key_a, NULL, &err), 1);
	assert_int_equal(store_apikey_verify(f->s, key_b, NULL, &err), 0);
	assert_int_equal(store_account_get(f->s, f->b, &acc, &err), 0);
}

/* ---- segments ---- */

struct names {
	char text[1024];
	int n;
};

static int
seg_collect(void *arg, const struct store_segment *seg)
{
	struct names *n = arg;

	n->n++;
	strcat(n->text, seg->name);
	strcat(n->text, ";");
	return 0;
}

static int
seg_stop(void *arg, const struct store_segment *seg)
{
	(void)seg;
	(*(int *)arg)++;
	return -1;
}

static void
test_segments(void **state)
{
	struct fixture *f = *state;
	struct store_segment seg;
	struct names n = { .n = 0 };
	char big[STORE_SEGMENT_QUERY_MAX + 2];
	const char *err = NULL;
	int64_t id, id2;
	int calls = 0;

	assert_int_equal(
	    store_segment_create(f->s, f->a, "VIP customers",
		"attrs.vip = true\nand status = 'enabled'", &id, &err),
	    0);
	assert_int_equal(
	    store_segment_create(f->s, f->a, "Active", "x", &id2, &err), 0);
	assert_int_equal(
	    store_segment_create(f->s, f->a, "VIP customers", "y", NULL, &err),
	    -1);
	assert_string_equal(
	    err, "segment 'VIP customers' already exists in this account");
	/* the same name in another account is fine */
	assert_int_equal(
	    store_segment_create(f->s, f->b, "VIP customers", "y", NULL, &err),
	    0);
	assert_int_equal(
	    store_segment_create(f->s, f->a, "", "x", NULL, &err), -1);
	assert_non_null(strstr(err, "invalid segment name ''"));
	assert_int_equal(
	    store_segment_create(f->s, f->a, "a\001b", "x", NULL, &err), -1);
	assert_non_null(strstr(err, "invalid segment name"));
	assert_int_equal(
	    store_segment_create(f->s, f->a, "empty", "", NULL, &err), -1);
	assert_non_null(strstr(err, "invalid query of segment 'empty'"));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(
	    store_segment_create(f->s, f->a, "big", big, NULL, &err), -1);
	big[STORE_SEGMENT_QUERY_MAX] = '\0';
	assert_int_equal(
	    store_segment_create(f->s, f->a, "big", big, NULL, &err), 0);
	assert_int_equal(
	    store_segment_create(f->s, 9999, "x", "x", NULL, &err), -1);
	assert_string_equal(err, "no account with id 9999");

	assert_int_equal(store_segment_get(f->s, f->a, id, &seg, &err), 0);
	assert_int_equal(seg.id, id);
	assert_string_equal(seg.name, "VIP customers");
	assert_string_equal(
	    seg.query, "attrs.vip = true\nand status = 'enabled'");
	assert_true(seg.created_at > 0 && seg.updated_at >= seg.created_at);
	assert_int_equal(store_segment_get(f->s, f->b, id, &seg, &err), 1);
	assert_string_equal(err, "no segment with id 1 in this account");

	assert_int_equal(
	    store_segment_list(f->s, f->a, seg_collect, &n, &err), 0);
	assert_int_equal(n.n, 3);
	assert_string_equal(n.text, "Active;VIP customers;big;");
	assert_int_equal(
	    store_segment_list(f->s, f->a, seg_stop, &calls, &err), -1);
	assert_int_equal(calls, 1);
	assert_string_equal(err, "stopped by the caller");

	/* update: NULL keeps, another account changes nothing */
	assert_int_equal(
	    store_segment_update(f->s, f->b, id, "Hacked", "z", &err), 1);
	assert_int_equal(
	    store_segment_update(f->s, f->a, id, NULL, "new query", &err), 0);
	assert_int_equal(store_segment_get(f->s, f->a, id, &seg, &err), 0);
	assert_string_equal(seg.name, "VIP customers");
	assert_string_equal(seg.query, "new query");
	assert_int_equal(
	    store_segment_update(f->s, f->a, id, "VIP", NULL, &err), 0);
	assert_int_equal(store_segment_get(f->s, f->a, id, &seg, &err), 0);
	assert_string_equal(seg.name, "VIP");
	assert_string_equal(seg.query, "new query");
	assert_int_equal(
	    store_segment_update(f->s, f->a, id, "Active", NULL, &err), -1);
	assert_string_equal(
	    err, "segment 'Active' already exists in this account");
	assert_int_equal(
	    store_segment_update(f->s, f->a, id, "", NULL, &err), -1);
	assert_int_equal(
	    store_segment_update(f->s, f->a, 9999, "n", NULL, &err), 1);

	/* delete */
	assert_int_equal(store_segment_delete(f->s, f->b, id, &err), 1);
	assert_int_equal(store_segment_get(f->s, f->a, id, &seg, &err), 0);
	assert_int_equal(store_segment_delete(f->s, f->a, id, &err), 0);
	assert_int_equal(store_segment_delete(f->s, f->a, id, &err), 1);
	assert_int_equal(store_segment_get(f->s, f->a, id, &seg, &err), 1);
	assert_int_equal(sql_int(f->path,
			     "SELECT count(*) FROM segments WHERE account_id "
			     "= 2"),
	    1);
}

/* ---- database sources ---- */

static int
src_count(void *arg, const struct store_source *src)
{
	return count_cb(arg, src);
}

static void
test_sources(void **state)
{
	struct fixture *f = *state;
	struct store_source src;
	const char *err = NULL;
	int64_t id, id2;
	int n = 0;

	assert_int_equal(
	    store_source_create(f->s, f->a, "crm",
		"host=db dbname=crm user=herald", "00aabbcc", &id, &err),
	    0);
	assert_int_equal(store_source_create(f->s, f->a, "shop",
			     "host=db2 dbname=shop", "", &id2, &err),
	    0);
	assert_int_equal(
	    store_source_create(f->s, f->a, "crm", "host=x", NULL, NULL, &err),
	    -1);
	assert_string_equal(
	    err, "database source 'crm' already exists in this account");
	assert_int_equal(
	    store_source_create(f->s, f->a, "", "host=x", NULL, NULL, &err),
	    -1);
	assert_non_null(strstr(err, "invalid database source name"));
	assert_int_equal(
	    store_source_create(f->s, f->a, "n", "", NULL, NULL, &err), -1);
	assert_non_null(strstr(err, "invalid connection string"));
	assert_int_equal(store_source_create(
			     f->s, f->a, "n", "host=x", "not hex", NULL, &err),
	    -1);
	assert_non_null(strstr(err, "invalid sealed password"));
	assert_int_equal(
	    store_source_create(f->s, f->a, "n", "host=x", "abc", NULL, &err),
	    -1);
	assert_int_equal(
	    store_source_create(f->s, 9999, "n", "host=x", NULL, NULL, &err),
	    -1);
	assert_string_equal(err, "no account with id 9999");

	assert_int_equal(store_source_get(f->s, f->a, id, &src, &err), 0);
	assert_string_equal(src.name, "crm");
	assert_string_equal(src.conninfo, "host=db dbname=crm user=herald");
	assert_string_equal(src.password_box, "00aabbcc");
	assert_true(src.created_at > 0);
	assert_int_equal(store_source_get(f->s, f->a, id2, &src, &err), 0);
	assert_string_equal(src.password_box, "");
	assert_int_equal(sql_int(f->path,
			     "SELECT count(*) FROM db_sources"
			     " WHERE password_box IS NULL"),
	    1);
	assert_int_equal(store_source_get(f->s, f->b, id, &src, &err), 1);
	assert_string_equal(
	    err, "no database source with id 1 in this account");

	assert_int_equal(store_source_list(f->s, f->a, src_count, &n, &err), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_source_list(f->s, f->b, src_count, &n, &err), 0);
	assert_int_equal(n, 0);

	assert_int_equal(store_source_delete(f->s, f->b, id, &err), 1);
	assert_int_equal(store_source_get(f->s, f->a, id, &src, &err), 0);
	assert_int_equal(store_source_delete(f->s, f->a, id, &err), 0);
	assert_int_equal(store_source_delete(f->s, f->a, id, &err), 1);
}

/* ---- import jobs ---- */

static void
job_init(struct store_import_job *job, int64_t account, const char *runner,
    const char *format, const char *source)
{
	memset(job, 0, sizeof(*job));
	job->account_id = account;
	snprintf(job->runner, sizeof(job->runner), "%s", runner);
	snprintf(job->format, sizeof(job->format), "%s", format);
	snprintf(job->source, sizeof(job->source), "%s", source);
}

static void
test_import_create_get(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job, *got = calloc(1, sizeof(*got));
	const char *err = NULL;
	int64_t list_a, list_b, src_a, src_b, id, id_pg;

	assert_non_null(got);
	assert_int_equal(
	    store_list_create(f->s, f->a, "L", NULL, "single", &list_a, &err),
	    0);
	assert_int_equal(
	    store_list_create(f->s, f->b, "L", NULL, "single", &list_b, &err),
	    0);
	assert_int_equal(store_source_create(
			     f->s, f->a, "crm", "host=x", NULL, &src_a, &err),
	    0);
	assert_int_equal(store_source_create(
			     f->s, f->b, "crm", "host=y", NULL, &src_b, &err),
	    0);

	job_init(&job, f->a, "server", "csv", "imports/a.csv");
	job.list_id = list_a;
	job.bytes_total = 12345;
	snprintf(job.options, sizeof(job.options), "{\"mode\":\"upsert\"}");
	assert_int_equal(store_import_create(f->s, &job, &id, &err), 0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_int_equal(got->id, id);
	assert_int_equal(got->account_id, f->a);
	assert_int_equal(got->list_id, list_a);
	assert_int_equal(got->source_id, 0);
	assert_string_equal(got->state, "queued");
	assert_string_equal(got->runner, "server");
	assert_string_equal(got->format, "csv");
	assert_string_equal(got->source, "imports/a.csv");
	assert_string_equal(got->options, "{\"mode\":\"upsert\"}");
	assert_int_equal(got->bytes_total, 12345);
	assert_int_equal(got->rows_done, 0);
	assert_int_equal(got->bytes_done, 0);
	assert_string_equal(got->error, "");
	assert_true(got->created_at > 0);
	assert_int_equal(got->started_at, 0);
	assert_int_equal(got->finished_at, 0);
	/* another account: not found; the operator: found */
	assert_int_equal(store_import_get(f->s, f->b, id, got, &err), 1);
	assert_string_equal(err, "no import job with id 1");
	assert_int_equal(
	    store_import_get(f->s, STORE_ANY_ACCOUNT, id, got, &err), 0);
	assert_int_equal(got->account_id, f->a);
	assert_int_equal(
	    store_import_get(f->s, STORE_ANY_ACCOUNT, 9999, got, &err), 1);

	/* a postgresql job with the account's source, multi-line query */
	job_init(&job, f->a, "cli", "postgresql", "SELECT email\n\tFROM users");
	job.source_id = src_a;
	assert_int_equal(store_import_create(f->s, &job, &id_pg, &err), 0);
	assert_int_equal(store_import_get(f->s, f->a, id_pg, got, &err), 0);
	assert_int_equal(got->source_id, src_a);
	assert_int_equal(got->list_id, 0);
	assert_string_equal(got->options, "{}");
	assert_string_equal(got->source, "SELECT email\n\tFROM users");

	/* refused: the walls, and invalid values */
	job_init(&job, f->a, "server", "csv", "a.csv");
	job.list_id = list_b;
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_string_equal(err, "no list with id 2 in this account");
	job_init(&job, f->a, "server", "postgresql", "SELECT 1");
	job.source_id = src_b;
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_string_equal(
	    err, "no database source with id 2 in this account");
	job_init(&job, f->a, "server", "postgresql", "SELECT 1");
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_non_null(strstr(err, "needs a database source"));
	job_init(&job, f->a, "server", "csv", "a.csv");
	job.source_id = src_a;
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	job_init(&job, f->a, "daemon", "csv", "a.csv");
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_string_equal(
	    err, "invalid import runner 'daemon': use server or cli");
	job_init(&job, f->a, "cli", "xls", "a.xls");
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_non_null(strstr(err, "invalid import format 'xls'"));
	job_init(&job, f->a, "cli", "csv", "");
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_non_null(strstr(err, "invalid import source"));
	job_init(&job, f->a, "cli", "csv", "a.csv");
	snprintf(job.options, sizeof(job.options), "[1]");
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_non_null(strstr(err, "invalid import options"));
	job_init(&job, 9999, "cli", "csv", "a.csv");
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_string_equal(err, "no account with id 9999");
	job_init(&job, f->a, "cli", "csv", "a.csv");
	job.bytes_total = -1;
	assert_int_equal(store_import_create(f->s, &job, NULL, &err), -1);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM import_jobs"), 2);
	free(got);
}

struct ids {
	int64_t id[16];
	int n;
};

static int
job_collect(void *arg, const struct store_import_job *job)
{
	struct ids *ids = arg;

	ids->id[ids->n++] = job->id;
	return 0;
}

static void
test_import_list(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job;
	struct ids ids = { .n = 0 };
	const char *err = NULL;
	int64_t id[4];

	for (int i = 0; i < 4; i++) {
		job_init(&job, i < 3 ? f->a : f->b, "cli", "csv", "x.csv");
		assert_int_equal(
		    store_import_create(f->s, &job, &id[i], &err), 0);
	}
	assert_int_equal(
	    store_import_list(f->s, f->a, 10, job_collect, &ids, &err), 0);
	assert_int_equal(ids.n, 3);
	assert_int_equal(ids.id[0], id[2]); /* newest first */
	assert_int_equal(ids.id[2], id[0]);
	ids.n = 0;
	assert_int_equal(
	    store_import_list(f->s, f->a, 2, job_collect, &ids, &err), 0);
	assert_int_equal(ids.n, 2);
	ids.n = 0;
	assert_int_equal(
	    store_import_list(f->s, f->b, 10, job_collect, &ids, &err), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.id[0], id[3]);
	assert_int_equal(
	    store_import_list(f->s, f->a, 0, job_collect, &ids, &err), -1);
	assert_non_null(strstr(err, "invalid limit 0"));
}

static void
test_import_progress(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job, *got = calloc(1, sizeof(*got));
	const char *err = NULL;
	char st[12];
	int64_t id;

	assert_non_null(got);
	job_init(&job, f->a, "server", "csv", "x.csv");
	assert_int_equal(store_import_create(f->s, &job, &id, &err), 0);
	job.id = id;
	job.rows_done = 10;
	job.created = 7;
	job.updated = 1;
	job.skipped = 1;
	job.errors = 1;
	job.bytes_done = 4096;
	/* on its own */
	assert_int_equal(store_import_progress(f->s, &job, st, &err), 0);
	assert_string_equal(st, "queued");
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_int_equal(got->rows_done, 10);
	assert_int_equal(got->created, 7);
	assert_int_equal(got->updated, 1);
	assert_int_equal(got->skipped, 1);
	assert_int_equal(got->errors, 1);
	assert_int_equal(got->bytes_done, 4096);

	/* in the batch's transaction, with the bad rows */
	assert_int_equal(store_tx_begin(f->s, &err), 0);
	job.rows_done = 20;
	assert_int_equal(store_import_error_add(f->s, id, 12, "bad", &err), 0);
	assert_int_equal(store_import_progress(f->s, &job, st, &err), 0);
	assert_int_equal(store_tx_commit(f->s, &err), 0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_int_equal(got->rows_done, 20);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM import_errors"), 1);

	/* rolled back: nothing of the batch stays */
	assert_int_equal(store_tx_begin(f->s, &err), 0);
	job.rows_done = 30;
	assert_int_equal(store_import_error_add(f->s, id, 13, "bad", &err), 0);
	assert_int_equal(store_import_progress(f->s, &job, st, &err), 0);
	store_tx_rollback(f->s);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_int_equal(got->rows_done, 20);
	assert_int_equal(
	    sql_int(f->path, "SELECT count(*) FROM import_errors"), 1);

	/* the runner sees a cancel */
	assert_int_equal(store_import_set_state(f->s, f->a, id, "queued",
			     "cancelling", NULL, &err),
	    0);
	assert_int_equal(store_import_progress(f->s, &job, st, &err), 0);
	assert_string_equal(st, "cancelling");

	/* another account's id: refused, nothing changed */
	job.account_id = f->b;
	job.rows_done = 99;
	assert_int_equal(store_import_progress(f->s, &job, st, &err), -1);
	assert_string_equal(err, "no import job with id 1");
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_int_equal(got->rows_done, 30);
	job.account_id = f->a;
	job.rows_done = -1;
	assert_int_equal(store_import_progress(f->s, &job, st, &err), -1);
	assert_non_null(strstr(err, "negative counters"));
	free(got);
}

static void
test_import_set_state(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job, *got = calloc(1, sizeof(*got));
	char longerr[2000];
	const char *err = NULL;
	int64_t id;

	assert_non_null(got);
	job_init(&job, f->a, "server", "csv", "x.csv");
	assert_int_equal(store_import_create(f->s, &job, &id, &err), 0);

	/* refused: wrong from, another account, bad names */
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id, "running", "done", NULL, &err),
	    1);
	assert_string_equal(
	    err, "no import job with id 1 in state running in this account");
	assert_int_equal(store_import_set_state(
			     f->s, f->b, id, "queued", "running", NULL, &err),
	    1);
	assert_int_equal(store_import_set_state(
			     f->s, f->a, 9999, "queued", "running", NULL, &err),
	    1);
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id, "queued", "paused", NULL, &err),
	    -1);
	assert_non_null(strstr(err, "invalid import job state 'paused'"));
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id, "queued,", "running", NULL, &err),
	    -1);
	assert_non_null(strstr(err, "invalid import job states 'queued,'"));
	assert_int_equal(
	    store_import_set_state(f->s, f->a, id, "", "running", NULL, &err),
	    -1);
	assert_int_equal(store_import_set_state(f->s, f->a, id, "queued,nope",
			     "running", NULL, &err),
	    -1);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_string_equal(got->state, "queued");
	assert_int_equal(got->started_at, 0);

	/* queued -> running sets started_at */
	assert_int_equal(store_import_set_state(f->s, f->a, id,
			     "queued,running", "running", NULL, &err),
	    0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_string_equal(got->state, "running");
	assert_true(got->started_at > 0);
	assert_int_equal(got->finished_at, 0);
	/* running again (a resume) keeps the first started_at */
	sql_exec(f->path, "UPDATE import_jobs SET started_at = 1000");
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id, "running", "running", NULL, &err),
	    0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_int_equal(got->started_at, 1000);
	/* running -> failed with an error: finished_at, the error cut */
	memset(longerr, 'e', sizeof(longerr) - 1);
	longerr[sizeof(longerr) - 1] = '\0';
	longerr[0] = '\n';
	assert_int_equal(store_import_set_state(f->s, f->a, id,
			     "running,cancelling", "failed", longerr, &err),
	    0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_string_equal(got->state, "failed");
	assert_true(got->finished_at > 0);
	assert_int_equal(strlen(got->error), STORE_JOB_ERROR_MAX);
	assert_int_equal(got->error[0], ' ');
	/* a finished job does not move from running */
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id, "running", "done", NULL, &err),
	    1);
	/* failed -> queued (a retry) clears the error */
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id, "failed", "queued", NULL, &err),
	    0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_string_equal(got->state, "queued");
	assert_string_equal(got->error, "");
	assert_int_equal(
	    store_import_set_state(f->s, f->a, id, "queued,running,cancelling",
		"cancelled", NULL, &err),
	    0);
	assert_int_equal(store_import_get(f->s, f->a, id, got, &err), 0);
	assert_string_equal(got->state, "cancelled");
	free(got);
}

struct errs {
	char text[512];
	int n;
};

static int
err_collect(void *arg, unsigned long line, const char *reason)
{
	struct errs *e = arg;
	char one[64];

	snprintf(one, sizeof(one), "%lu:%s;", line, reason);
	strcat(e->text, one);
	e->n++;
	return 0;
}

static void
test_import_errors(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job;
	struct errs e = { .n = 0 };
	const char *err = NULL;
	int64_t id;

	job_init(&job, f->a, "cli", "csv", "x.csv");
	assert_int_equal(store_import_create(f->s, &job, &id, &err), 0);
	assert_int_equal(
	    store_import_error_add(f->s, id, 30, "no email", &err), 0);
	assert_int_equal(
	    store_import_error_add(f->s, id, 4, "bad address", &err), 0);
	assert_int_equal(
	    store_import_error_add(f->s, id, 4, "bad address", &err), 0);
	assert_int_equal(
	    store_import_error_add(f->s, id, 17, "bad\tdate", &err), 0);
	assert_int_equal(store_import_error_add(f->s, id, 1, "", &err), -1);
	assert_non_null(strstr(err, "needs a reason"));
	assert_int_equal(store_import_error_add(f->s, 9999, 1, "x", &err), -1);
	assert_string_equal(err, "no import job with id 9999");

	assert_int_equal(
	    store_import_errors(f->s, f->a, id, 100, err_collect, &e, &err), 0);
	assert_int_equal(e.n, 3);
	assert_string_equal(e.text, "4:bad address;17:bad date;30:no email;");
	memset(&e, 0, sizeof(e));
	assert_int_equal(
	    store_import_errors(f->s, f->a, id, 2, err_collect, &e, &err), 0);
	assert_int_equal(e.n, 2);
	/* another account sees none */
	memset(&e, 0, sizeof(e));
	assert_int_equal(
	    store_import_errors(f->s, f->b, id, 100, err_collect, &e, &err), 0);
	assert_int_equal(e.n, 0);
	assert_int_equal(
	    store_import_errors(f->s, f->a, id, 0, err_collect, &e, &err), -1);
}

static void
test_import_unfinished(void **state)
{
	struct fixture *f = *state;
	struct store_import_job job;
	struct ids ids = { .n = 0 };
	const char *err = NULL;
	int64_t id[5];

	for (int i = 0; i < 5; i++) {
		job_init(&job, i % 2 ? f->b : f->a, i == 4 ? "cli" : "server",
		    "csv", "x.csv");
		assert_int_equal(
		    store_import_create(f->s, &job, &id[i], &err), 0);
	}
	assert_int_equal(store_import_set_state(f->s, f->b, id[1], "queued",
			     "running", NULL, &err),
	    0);
	assert_int_equal(store_import_set_state(
			     f->s, f->a, id[2], "queued", "done", NULL, &err),
	    0);
	assert_int_equal(store_import_set_state(f->s, f->b, id[3], "queued",
			     "cancelling", NULL, &err),
	    0);
	assert_int_equal(
	    store_import_unfinished(f->s, "server", job_collect, &ids, &err),
	    0);
	assert_int_equal(ids.n, 3);
	assert_int_equal(ids.id[0], id[0]); /* oldest first */
	assert_int_equal(ids.id[1], id[1]);
	assert_int_equal(ids.id[2], id[3]);
	ids.n = 0;
	assert_int_equal(
	    store_import_unfinished(f->s, "cli", job_collect, &ids, &err), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.id[0], id[4]);
	assert_int_equal(
	    store_import_unfinished(f->s, "web", job_collect, &ids, &err), -1);
	assert_non_null(strstr(err, "invalid import runner 'web'"));
}

/* ---- API keys ---- */

struct keys {
	struct store_apikey k[8];
	int n;
};

static int
key_collect(void *arg, const struct store_apikey *k)
{
	struct keys *ks = arg;

	ks->k[ks->n++] = *k;
	return 0;
}

static bool
base32(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\0' ||
		    strchr("abcdefghijklmnopqrstuvwxyz234567", p[i]) == NULL)
			return false;
	return true;
}

static void
test_apikey_create_verify(void **state)
{
	struct fixture *f = *state;
	char key[STORE_APIKEY_MAX], key2[STORE_APIKEY_MAX], bad[256];
	struct store_apikey k;
	struct keys ks = { .n = 0 };
	const char *err = NULL;
	int64_t id, id2;

	assert_int_equal(store_apikey_create(f->s, f->a, "deploy",
			     "admin,read,write,read", key, &id, &err),
	    0);
	assert_int_equal(strlen(key), 48);
	assert_memory_equal(key, "hk_", 3);
	assert_true(base32(key + 3, 12));
	assert_int_equal(key[15], '_');
	assert_true(base32(key + 16, 32));
	/* neither the key nor its secret is in the database */
	assert_false(file_has(f->path, key));
	assert_false(file_has(f->path, key + 16));
	{
		char prefix[13];

		/* the search works: the stored prefix is found */
		memcpy(prefix, key + 3, 12);
		prefix[12] = '\0';
		assert_true(file_has(f->path, prefix));
	}
	assert_int_equal(
	    sql_int(f->path, "SELECT length(secret_hash) FROM api_keys"), 64);

	assert_int_equal(store_apikey_verify(f->s, key, &k, &err), 0);
	assert_int_equal(k.id, id);
	assert_int_equal(k.account_id, f->a);
	assert_string_equal(k.name, "deploy");
	assert_memory_equal(k.prefix, key + 3, 12);
	assert_string_equal(k.scopes, "read,write,admin");
	assert_int_equal(k.revoked_at, 0);
	assert_true(k.last_used_at > 0);

	/* last_used_at: at most once a minute */
	sql_exec(f->path,
	    "UPDATE api_keys SET last_used_at = "
	    "CAST(strftime('%s', 'now') AS INTEGER) - 30");
	{
		int64_t before =
		    sql_int(f->path, "SELECT last_used_at FROM api_keys");

		assert_int_equal(store_apikey_verify(f->s, key, &k, &err), 0);
		assert_int_equal(
		    sql_int(f->path, "SELECT last_used_at FROM api_keys"),
		    before);
		sql_exec(f->path, "UPDATE api_keys SET last_used_at = 1000");
		assert_int_equal(store_apikey_verify(f->s, key, &k, &err), 0);
		assert_true(sql_int(f->path,
				"SELECT last_used_at FROM api_keys") > before);
	}

	/* wrong secret, malformed */
	snprintf(bad, sizeof(bad), "%s", key);
	bad[47] = bad[47] == 'a' ? 'b' : 'a';
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	assert_string_equal(err, "unknown or revoked API key");
	snprintf(bad, sizeof(bad), "%s", key);
	bad[5] = bad[5] == 'a' ? 'b' : 'a'; /* unknown prefix */
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	assert_int_equal(store_apikey_verify(f->s, "", &k, &err), 1);
	assert_int_equal(store_apikey_verify(f->s, "hk_", &k, &err), 1);
	assert_int_equal(store_apikey_verify(f->s, NULL, &k, &err), 1);
	snprintf(bad, sizeof(bad), "%s%s", key, key); /* too long */
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	memset(bad, 'a', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	snprintf(bad, sizeof(bad), "%s", key);
	bad[20] = '1'; /* not base32 */
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	snprintf(bad, sizeof(bad), "%s", key);
	bad[20] = 'A'; /* upper case */
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	snprintf(bad, sizeof(bad), "%s", key);
	bad[15] = '-';
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);
	snprintf(bad, sizeof(bad), "%s", key);
	bad[47] = '\0'; /* one short */
	assert_int_equal(store_apikey_verify(f->s, bad, &k, &err), 1);

	/* invalid input */
	assert_int_equal(
	    store_apikey_create(f->s, f->a, "", "read", key2, NULL, &err), -1);
	assert_non_null(strstr(err, "invalid API key name"));
	assert_string_equal(key2, "");
	assert_int_equal(store_apikey_create(
			     f->s, f->a, "x", "read,delete", key2, NULL, &err),
	    -1);
	assert_non_null(strstr(err, "invalid API key scopes 'read,delete'"));
	assert_int_equal(
	    store_apikey_create(f->s, f->a, "x", "", key2, NULL, &err), -1);
	assert_int_equal(
	    store_apikey_create(f->s, f->a, "x", "read,", key2, NULL, &err),
	    -1);
	assert_int_equal(
	    store_apikey_create(f->s, f->a, "x", "read ", key2, NULL, &err),
	    -1);
	assert_int_equal(
	    store_apikey_create(f->s, 9999, "x", "read", key2, NULL, &err), -1);
	assert_string_equal(err, "no account with id 9999");
	assert_int_equal(
	    store_apikey_create(f->s, -5, "x", "read", key2, NULL, &err), -1);

	/* the operator's key: admin needed, account_id NULL */
	assert_int_equal(
	    store_apikey_create(f->s, 0, "ops", "read,write", key2, NULL, &err),
	    -1);
	assert_non_null(strstr(err, "needs the admin scope"));
	assert_int_equal(
	    store_apikey_create(f->s, 0, "ops", "admin", key2, &id2, &err), 0);
	assert_int_equal(sql_int(f->path,
			     "SELECT count(*) FROM api_keys"
			     " WHERE account_id IS NULL"),
	    1);
	assert_int_equal(store_apikey_verify(f->s, key2, &k, &err), 0);
	assert_int_equal(k.account_id, 0);
	assert_int_equal(k.id, id2);
	assert_string_equal(k.scopes, "admin");
	assert_string_not_equal(key, key2);

	/* lists: per account, operator keys apart */
	assert_int_equal(
	    store_apikey_list(f->s, f->a, key_collect, &ks, &err), 0);
	assert_int_equal(ks.n, 1);
	assert_int_equal(ks.k[0].id, id);
	ks.n = 0;
	assert_int_equal(store_apikey_list(f->s, 0, key_collect, &ks, &err), 0);
	assert_int_equal(ks.n, 1);
	assert_int_equal(ks.k[0].id, id2);
	ks.n = 0;
	assert_int_equal(
	    store_apikey_list(f->s, f->b, key_collect, &ks, &err), 0);
	assert_int_equal(ks.n, 0);
}

static void
test_apikey_revoke(void **state)
{
	struct fixture *f = *state;
	char key[STORE_APIKEY_MAX], op[STORE_APIKEY_MAX];
	struct store_apikey k;
	struct keys ks = { .n = 0 };
	const char *err = NULL;
	int64_t id, opid;

	assert_int_equal(
	    store_apikey_create(f->s, f->a, "k", "read", key, &id, &err), 0);
	assert_int_equal(
	    store_apikey_create(f->s, 0, "ops", "admin", op, &opid, &err), 0);
	/* another account, or the operator's id for it: not found */
	assert_int_equal(store_apikey_revoke(f->s, f->b, id, &err), 1);
	assert_string_equal(err, "no active API key with id 1 in this account");
	assert_int_equal(store_apikey_revoke(f->s, 0, id, &err), 1);
	assert_int_equal(store_apikey_revoke(f->s, f->a, opid, &err), 1);
	assert_int_equal(store_apikey_verify(f->s, key, &k, &err), 0);
	assert_int_equal(store_apikey_verify(f->s, op, &k, &err), 0);

	assert_int_equal(store_apikey_revoke(f->s, f->a, id, &err), 0);
	assert_int_equal(store_apikey_revoke(f->s, f->a, id, &err), 1);
	assert_int_equal(store_apikey_verify(f->s, key, &k, &err), 1);
	assert_string_equal(err, "unknown or revoked API key");
	assert_int_equal(
	    store_apikey_list(f->s, f->a, key_collect, &ks, &err), 0);
	assert_int_equal(ks.n, 1);
	assert_true(ks.k[0].revoked_at > 0);
	assert_int_equal(store_apikey_revoke(f->s, 0, opid, &err), 0);
	assert_int_equal(store_apikey_verify(f->s, op, &k, &err), 1);
	assert_int_equal(store_apikey_revoke(f->s, f->a, 9999, &err), 1);
}

/* ---- callbacks ---- */

static int
reenter(void *arg, const struct store_segment *seg)
{
	struct fixture *f = arg;
	struct store_segment other;
	const char *err = NULL;

	assert_int_equal(
	    store_segment_get(f->s, f->a, seg->id, &other, &err), -1);
	assert_non_null(strstr(err, "callbacks"));
	return 0;
}

static void
test_no_reentry(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;

	assert_int_equal(
	    store_segment_create(f->s, f->a, "s", "q", NULL, &err), 0);
	assert_int_equal(store_segment_list(f->s, f->a, reenter, f, &err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_account_get, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_account_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_create_get, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_list, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_set_state, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_import_unfinished, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_apikey_create_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_apikey_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_no_reentry, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
