/*
 * sqlite.c - the SQLite driver of the store (see store-private.h).
 *
 * One struct store_conn is one sqlite3 connection, opened in SQLite's
 * multi-thread mode (no connection mutex: the store is used by one thread
 * at a time).  Settings, and why:
 *
 *   journal_mode=WAL   readers never block the writer and vice versa; the
 *                      server reads while CLI commands write.
 *   synchronous=FULL   WAL with NORMAL may lose the last commits on power
 *                      loss; a credential the CLI said was revoked must
 *                      stay revoked, so every commit is fsynced.  The
 *                      message log writer asks for NORMAL
 *                      (store_set_durable): its commits survive a crash
 *                      of the process, and an event lost with the
 *                      machine only means a recipient delivered again.
 *   foreign_keys=ON    per connection in SQLite, off by default; the
 *                      account walls (ON DELETE CASCADE) rely on it.
 *   busy wait 5000 ms  several processes share the file; wait for a lock,
 *                      trying every millisecond (sqlite_busy)
 *                      rather than fail at once.
 *   defensive, untrusted schema, no double-quoted strings: hardening that
 *                      costs nothing.
 *
 * Statements are prepared on first use (SQLITE_PREPARE_PERSISTENT) and
 * kept until close, indexed by enum store_stmt_id.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>
#include <sqlite3.h>

#include "lib/util.h"
#include "store/store-private.h"

#include "migrations-sqlite.h"

#define SQLITE_BUSY_TIMEOUT_MS 5000
#define SQLITE_ERROR_MAX 512

struct store_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_STMT_COUNT];
	sqlite3_stmt *data_version_stmt;
	int64_t data_version;
	char error[SQLITE_ERROR_MAX];
};

/* sqlite_fail - format an error into buf, point *error_r at it, return -1 */
static int __attribute__((format(printf, 4, 5))) sqlite_fail(
    char *buf, size_t buflen, const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, buflen, fmt, ap);
	va_end(ap);
	*error_r = buf;
	return -1;
}

/* sqlite_db_fail - the connection's last error, after what failed if any */
static int
sqlite_db_fail(struct store_conn *c, const char *what, const char **error_r)
{
	return sqlite_fail(c->error, sizeof(c->error), error_r,
	    "sqlite: %s%s%s", what ? what : "", what ? ": " : "",
	    sqlite3_errmsg(c->db));
}

/* sqlite_pragma_text - run a pragma that returns one text row into out */
static int
sqlite_pragma_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st;
	int rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(out, outlen, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* sqlite_data_version - PRAGMA data_version into *v */
static int
sqlite_data_version(struct store_conn *c, int64_t *v, const char **error_r)
{
	int rc;

	*v = 0;
	if (c->data_version_stmt == NULL &&
	    sqlite3_prepare_v3(c->db, "PRAGMA data_version", -1,
		SQLITE_PREPARE_PERSISTENT, &c->data_version_stmt,
		NULL) != SQLITE_OK)
		return sqlite_db_fail(c, "PRAGMA data_version", error_r);
	rc = sqlite3_step(c->data_version_stmt);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(c->data_version_stmt, 0);
	sqlite3_reset(c->data_version_stmt);
	if (rc != SQLITE_ROW)
		return sqlite_db_fail(c, "PRAGMA data_version", error_r);
	return 0;
}

/*
 * sqlite_busy - wait for a lock another connection holds: try again
 * every millisecond, for SQLITE_BUSY_TIMEOUT_MS.  SQLite's own
 * busy_timeout backs off to 100 ms between tries, and a writer that
 * commits and begins again at once (an import's batches) then keeps the
 * lock for seconds: polling finds the few milliseconds it leaves free.
 */
static int
sqlite_busy(void *arg, int count)
{
	(void)arg;
	if (count >= SQLITE_BUSY_TIMEOUT_MS)
		return 0;
	usleep(1000);
	return 1;
}

/* sqlite_configure - the settings of the file header comment */
static int
sqlite_configure(struct store_conn *c, const char *path, const char **error_r)
{
	char mode[16], fk[16];

	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_handler(c->db, sqlite_busy, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DML, 0, NULL);
	sqlite3_db_config(c->db, SQLITE_DBCONFIG_DQS_DDL, 0, NULL);
	/*
	 * Switching a new file to WAL needs an exclusive lock, and SQLite
	 * does not call the busy handler for it: when processes open a new
	 * database at once, retry for as long as busy_timeout would wait.
	 */
	for (int waited = 0;; waited += 10) {
		if (sqlite_pragma_text(c->db, "PRAGMA journal_mode=WAL", mode,
			sizeof(mode)) == 0)
			break;
		if ((sqlite3_errcode(c->db) & 0xff) != SQLITE_BUSY ||
		    waited >= SQLITE_BUSY_TIMEOUT_MS)
			return sqlite_db_fail(
			    c, "PRAGMA journal_mode", error_r);
		usleep(10000);
	}
	if (strcmp(mode, "wal") != 0)
		return sqlite_fail(c->error, sizeof(c->error), error_r,
		    "sqlite: '%s' cannot use WAL mode (journal_mode is '%s')",
		    path, mode);
	if (sqlite3_exec(c->db,
		"PRAGMA synchronous=FULL;"
		"PRAGMA foreign_keys=ON",
		NULL, NULL, NULL) != SQLITE_OK)
		return sqlite_db_fail(c, "PRAGMA", error_r);
	if (sqlite_pragma_text(c->db, "PRAGMA foreign_keys", fk, sizeof(fk)) <
		0 ||
	    strcmp(fk, "1") != 0)
		return sqlite_fail(c->error, sizeof(c->error), error_r,
		    "sqlite: foreign keys are not supported by this SQLite");
	return sqlite_data_version(c, &c->data_version, error_r);
}

static void
sqlite_close(struct store_conn **cp)
{
	struct store_conn *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < STORE_STMT_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_finalize(c->data_version_stmt);
	sqlite3_close_v2(c->db);
	free(c);
	*cp = NULL;
}

/*
 * sqlite_global - process-wide settings, before the first connection:
 * no memory statistics (they take a global mutex on every allocation,
 * which showed in the import's profile; nothing reads them).
 */
static void
sqlite_global(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
sqlite_open(const char *path, struct store_conn **conn_r, const char **error_r)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	static _Thread_local char err[SQLITE_ERROR_MAX];
	struct store_conn *c;
	const char *cerr;
	int fd;

	/* Create the file ourselves so it is 0600: SQLite gives its -wal
	   and -shm files the mode of the database file.  Only when it does
	   not exist: closing a descriptor of a database file this process
	   has open elsewhere drops every POSIX lock the process holds on it
	   (fcntl semantics), and another process could then take itself
	   for the last connection and delete the WAL under our feet. */
	pthread_once(&once, sqlite_global);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST)
		return sqlite_fail(err, sizeof(err), error_r,
		    "sqlite: cannot open '%s': %s", path, strerror(errno));

	c = xcalloc(1, sizeof(*c));
	if (sqlite3_open_v2(path, &c->db,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
		    SQLITE_OPEN_NOMUTEX,
		NULL) != SQLITE_OK) {
		sqlite_fail(err, sizeof(err), error_r,
		    "sqlite: cannot open '%s': %s", path,
		    c->db ? sqlite3_errmsg(c->db) : "out of memory");
		sqlite_close(&c);
		return -1;
	}
	if (sqlite_configure(c, path, &cerr) < 0) {
		sqlite_fail(err, sizeof(err), error_r, "%s", cerr);
		sqlite_close(&c);
		return -1;
	}
	*conn_r = c;
	return 0;
}

static int
sqlite_exec_script(struct store_conn *c, const char *sql, const char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		sqlite_fail(c->error, sizeof(c->error), error_r, "sqlite: %s",
		    msg ? msg : sqlite3_errmsg(c->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
sqlite_begin(struct store_conn *c, bool write, const char **error_r)
{
	/* IMMEDIATE takes the write lock now, waiting (busy_timeout) if
	   need be; a deferred transaction that writes later could instead
	   fail with SQLITE_BUSY at once when another connection wrote. */
	if (sqlite3_exec(c->db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL,
		NULL) != SQLITE_OK)
		return sqlite_db_fail(c, "BEGIN", error_r);
	return 0;
}

static int
sqlite_commit(struct store_conn *c, const char **error_r)
{
	if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return sqlite_db_fail(c, "COMMIT", error_r);
	return 0;
}

static void
sqlite_rollback(struct store_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		(void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

/* sqlite_code - a failed step's extended result code as a STORE_DB_* code */
static int
sqlite_code(int rc)
{
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return STORE_DB_UNIQUE;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return STORE_DB_FOREIGN_KEY;
	default:
		return STORE_DB_FAIL;
	}
}

/* sqlite_stmt - the prepared statement of stmt, preparing it once */
static sqlite3_stmt *
sqlite_stmt(
    struct store_conn *c, const struct store_stmt *stmt, const char **error_r)
{
	sqlite3_stmt **st = &c->stmts[stmt->id];

	if (*st == NULL &&
	    sqlite3_prepare_v3(c->db, stmt->sql, -1, SQLITE_PREPARE_PERSISTENT,
		st, NULL) != SQLITE_OK) {
		sqlite_db_fail(c, "prepare", error_r);
		*st = NULL;
	}
	return *st;
}

/* sqlite_bind - bind params to st; -1 if the count or a bind is wrong */
static int
sqlite_bind(struct store_conn *c, sqlite3_stmt *st,
    const struct store_value *params, size_t nparams, const char **error_r)
{
	int rc = SQLITE_OK;

	if ((size_t)sqlite3_bind_parameter_count(st) != nparams)
		return sqlite_fail(c->error, sizeof(c->error), error_r,
		    "sqlite: statement takes %d parameters, given %zu",
		    sqlite3_bind_parameter_count(st), nparams);
	for (size_t i = 0; i < nparams && rc == SQLITE_OK; i++) {
		int col = (int)i + 1;

		switch (params[i].type) {
		case STORE_NULL:
			rc = sqlite3_bind_null(st, col);
			break;
		case STORE_INT:
			rc = sqlite3_bind_int64(st, col, params[i].i);
			break;
		case STORE_REAL:
			rc = sqlite3_bind_double(st, col, params[i].d);
			break;
		case STORE_TEXT:
			/* STATIC: params outlive the statement's use */
			rc = sqlite3_bind_text(
			    st, col, params[i].s, -1, SQLITE_STATIC);
			break;
		}
	}
	return rc == SQLITE_OK ? 0 : sqlite_db_fail(c, "bind", error_r);
}

/* sqlite_row - the current row of st as values */
static size_t
sqlite_row(sqlite3_stmt *st, struct store_value *cols)
{
	size_t n = (size_t)sqlite3_column_count(st);

	if (n > STORE_MAX_COLUMNS)
		n = STORE_MAX_COLUMNS;
	for (size_t i = 0; i < n; i++) {
		switch (sqlite3_column_type(st, (int)i)) {
		case SQLITE_NULL:
			cols[i] = (struct store_value){ .type = STORE_NULL };
			break;
		case SQLITE_INTEGER:
		case SQLITE_FLOAT:
			cols[i] = (struct store_value){ .type = STORE_INT,
				.i = sqlite3_column_int64(st, (int)i) };
			break;
		default:
			cols[i] = (struct store_value){ .type = STORE_TEXT,
				.s = (const char *)sqlite3_column_text(
				    st, (int)i) };
			if (cols[i].s == NULL) /* out of memory */
				cols[i] =
				    (struct store_value){ .type = STORE_NULL };
			break;
		}
	}
	return n;
}

static int
sqlite_query(struct store_conn *c, const struct store_stmt *stmt,
    const struct store_value *params, size_t nparams, store_row_cb *cb,
    void *arg, const char **error_r)
{
	struct store_value cols[STORE_MAX_COLUMNS];
	bool adhoc = stmt->id == STORE_STMT_ADHOC;
	sqlite3_stmt *st = NULL;
	int rc, ret = STORE_DB_OK;

	if (adhoc) {
		if (sqlite3_prepare_v2(c->db, stmt->sql, -1, &st, NULL) !=
		    SQLITE_OK)
			return sqlite_db_fail(c, "prepare", error_r);
	} else if ((st = sqlite_stmt(c, stmt, error_r)) == NULL) {
		return STORE_DB_FAIL;
	}
	if (sqlite_bind(c, st, params, nparams, error_r) < 0) {
		if (adhoc)
			sqlite3_finalize(st);
		else
			sqlite3_clear_bindings(st);
		return STORE_DB_FAIL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t n = sqlite_row(st, cols);

		if (cb != NULL && cb(arg, cols, n) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = sqlite_code(rc);
		sqlite_db_fail(c, NULL, error_r);
	}
	if (adhoc) {
		sqlite3_finalize(st);
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return ret;
}

static int
sqlite_changed(struct store_conn *c, bool *changed_r, const char **error_r)
{
	int64_t v = 0;

	if (sqlite_data_version(c, &v, error_r) < 0)
		return -1;
	*changed_r = v != c->data_version;
	c->data_version = v;
	return 0;
}

static int
sqlite_set_durable(struct store_conn *c, bool durable, const char **error_r)
{
	if (sqlite3_exec(c->db,
		durable ? "PRAGMA synchronous=FULL"
			: "PRAGMA synchronous=NORMAL",
		NULL, NULL, NULL) != SQLITE_OK)
		return sqlite_db_fail(c, "PRAGMA synchronous", error_r);
	return 0;
}

static int64_t
sqlite_changes(struct store_conn *c)
{
	return (int64_t)sqlite3_changes(c->db);
}

static int
sqlite_bulk(struct store_conn *c, bool on, int64_t cache_kib, int64_t wal_pages,
    const char **error_r)
{
	char sql[256];

	if (on)
		snprintf(sql, sizeof(sql),
		    "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
		    "PRAGMA cache_size=-%lld; PRAGMA wal_autocheckpoint=%lld",
		    (long long)cache_kib, (long long)wal_pages);
	else
		snprintf(sql, sizeof(sql),
		    "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
		    "PRAGMA cache_size=-2000; PRAGMA wal_autocheckpoint=1000");
	if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite_db_fail(c, "PRAGMA", error_r);
	return 0;
}

static int64_t
sqlite_last_id(struct store_conn *c)
{
	return (int64_t)sqlite3_last_insert_rowid(c->db);
}

const struct store_driver store_driver_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.exec_script = sqlite_exec_script,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.query = sqlite_query,
	.changed = sqlite_changed,
	.changes = sqlite_changes,
	.last_id = sqlite_last_id,
	.bulk = sqlite_bulk,
	.set_durable = sqlite_set_durable,
	.migrations = sqlite_migrations,
	.migrations_count = NELEM(sqlite_migrations),
};
