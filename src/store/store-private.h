/*
 * store-private - the interface between store.c and its SQL drivers.
 *
 * Only store.c and the drivers (sqlite.c, later pg.c) include this file.
 * The split follows Dovecot's lib-sql: store.c owns every query, every
 * validation rule and every error message a user sees; a driver only
 * opens a connection, runs the statements store.c hands it and reports
 * results in one common shape.  So a new backend is one new file that
 * fills a struct store_driver, plus its own migrations/ directory and one
 * line in store.c's driver table.
 *
 * The SQL that store.c hands a driver:
 *   - uses '?' placeholders, in order (a PostgreSQL driver rewrites them to
 *     $1, $2, ... once, when it prepares the statement);
 *   - uses only syntax common to SQLite >= 3.35 and PostgreSQL >= 12
 *     (INSERT/UPDATE/DELETE ... RETURNING, ON CONFLICT ... DO UPDATE);
 *   - never contains text taken from input: all input travels as
 *     parameters.
 * Migrations are the exception: they are per driver, because DDL differs.
 */
#ifndef HERALD_STORE_PRIVATE_H
#define HERALD_STORE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes of driver calls; any negative value is a failure. */
#define STORE_DB_OK 0
#define STORE_DB_FAIL (-1)	  /* anything else; the error says what */
#define STORE_DB_UNIQUE (-2)	  /* a UNIQUE or PRIMARY KEY constraint */
#define STORE_DB_FOREIGN_KEY (-3) /* a FOREIGN KEY constraint */

/* Most columns a statement of store.c returns. */
#define STORE_MAX_COLUMNS 16

enum store_value_type { STORE_NULL, STORE_INT, STORE_TEXT, STORE_REAL };

/* A parameter or a column: an integer, a text or SQL NULL. */
struct store_value {
	enum store_value_type type;
	int64_t i;
	const char *s;
	double d; /* STORE_REAL: parameters only (columns read as INT) */
};

/*
 * The statements of store.c.  A driver prepares each one the first time it
 * runs and keeps it, indexed by id, until the connection closes.
 */
enum store_stmt_id {
	STORE_STMT_MIGRATION_MAX,
	STORE_STMT_MIGRATION_HAS,
	STORE_STMT_MIGRATION_RECORD,
	STORE_STMT_ACCOUNT_INSERT,
	STORE_STMT_ACCOUNT_FIND,
	STORE_STMT_ACCOUNT_LIST,
	STORE_STMT_ACCOUNT_SET_DISABLED,
	STORE_STMT_USER_INSERT,
	STORE_STMT_USER_HASH,
	STORE_STMT_CRED_INSERT,
	STORE_STMT_CRED_LIST,
	STORE_STMT_CRED_REVOKE,
	STORE_STMT_DOMAIN_INSERT,
	STORE_STMT_DOMAIN_OWNER,
	STORE_STMT_DOMAIN_LIST,
	STORE_STMT_DOMAIN_DELETE,
	STORE_STMT_RELAY_INSERT,
	STORE_STMT_RELAY_DELETE,
	STORE_STMT_RELAY_LIST,
	STORE_STMT_POLICY_ACCOUNTS,
	STORE_STMT_POLICY_DOMAINS,
	STORE_STMT_POLICY_CREDS,
	STORE_STMT_POLICY_RELAYS,
	STORE_STMT_META_GET,
	STORE_STMT_META_SET,
	STORE_STMT_EVENT_INSERT,
	STORE_STMT_EVENT_HISTORY,
	STORE_STMT_EVENT_HISTORY_ACCOUNT,
	STORE_STMT_EVENT_PURGE,
	STORE_STMT_LIST_INSERT,
	STORE_STMT_LIST_FIND,
	STORE_STMT_LIST_LIST,
	STORE_STMT_LIST_DELETE,
	STORE_STMT_LIST_OPTIN,
	STORE_STMT_SUPPR_INSERT,
	STORE_STMT_SUPPR_CHECK,
	STORE_STMT_SUPPR_DELETE,
	STORE_STMT_USER_LIST,
	STORE_STMT_USER_DELETE,
	/* the statements of contacts.c and jobs.c: each file numbers its
	   own from its base */
	STORE_STMT_CONTACTS_BASE,
	STORE_STMT_JOBS_BASE = STORE_STMT_CONTACTS_BASE + 64,
	STORE_STMT_COUNT = STORE_STMT_JOBS_BASE + 64
};
/* the id of a statement built at run time: prepared for one run */
#define STORE_STMT_ADHOC STORE_STMT_COUNT

struct store_stmt {
	enum store_stmt_id id;
	const char *sql;
};

/* One numbered migration: the SQL of migrations/NNN_name.sql. */
struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

/*
 * store_row_cb - called by a driver for each result row with ncols
 * columns.  Text in cols is valid only during the call.  Return 0 to go
 * on, non-zero to stop (the query then still returns STORE_DB_OK).
 */
typedef int store_row_cb(
    void *arg, const struct store_value *cols, size_t ncols);

/* A driver's connection; each driver defines its own. */
struct store_conn;

/*
 * The operations of a driver.  Every error message a driver returns is in
 * a buffer of the connection, valid until its next call, and starts with
 * the driver's name ("sqlite: ...").
 */
struct store_driver {
	/* "sqlite": the URL scheme, and the prefix of its errors */
	const char *name;
	/* open - connect to target (the URL without "scheme:"); 0 or -1 */
	int (*open)(const char *target, struct store_conn **conn_r,
	    const char **error_r);
	/* close - finalize statements, disconnect, set *conn to NULL */
	void (*close)(struct store_conn **conn);
	/* exec_script - run SQL text of several statements, no parameters */
	int (*exec_script)(
	    struct store_conn *conn, const char *sql, const char **error_r);
	/* begin - start a transaction; write: take the write lock now */
	int (*begin)(struct store_conn *conn, bool write, const char **error_r);
	int (*commit)(struct store_conn *conn, const char **error_r);
	/* rollback - end the transaction, if any, dropping its changes */
	void (*rollback)(struct store_conn *conn);
	/*
	 * query - run stmt with params, calling cb (may be NULL) for each
	 * row; returns STORE_DB_OK or a negative STORE_DB_* code.
	 */
	int (*query)(struct store_conn *conn, const struct store_stmt *stmt,
	    const struct store_value *params, size_t nparams, store_row_cb *cb,
	    void *arg, const char **error_r);
	/*
	 * changed - whether another connection committed since the last call
	 * (or since open, on the first call); 0 or -1.
	 */
	int (*changed)(
	    struct store_conn *conn, bool *changed_r, const char **error_r);
	/* changes - rows changed by the last INSERT, UPDATE or DELETE */
	int64_t (*changes)(struct store_conn *conn);
	/* last_id - the id of the last row inserted (no RETURNING needed:
	   SQLite buffers RETURNING rows in a temporary table, which costs
	   more than the insert) */
	int64_t (*last_id)(struct store_conn *conn);
	/* set_durable - false: commits survive a crash of the process but
	 * not of the machine (no sync per commit); 0 or -1 */
	int (*set_durable)(
	    struct store_conn *conn, bool durable, const char **error_r);
	/* bulk - on: no sync per commit, no foreign key checks, a page
	   cache of cache_kib and the WAL checkpointed only past wal_pages;
	   off: the connection's defaults (not in a transaction) */
	int (*bulk)(struct store_conn *conn, bool on, int64_t cache_kib,
	    int64_t wal_pages, const char **error_r);
	/* the driver's migrations, in version order from 1 without gaps */
	const struct store_migration *migrations;
	size_t migrations_count;
};

/* ---- shared by the store's files (store.c, contacts.c) ---- */

#define STORE_ERROR_MAX 1024

struct store {
	const struct store_driver *driver;
	struct store_conn *conn;
	/* set while a caller's callback runs: the store must not be reentered
	 */
	bool in_callback;
	/* inside store_tx_begin() ... store_tx_commit(): functions that
	   write join that transaction instead of starting their own */
	bool in_tx;
	/* what store_contact_put looked up once per transaction (valid
	   while in_tx: the transaction holds the write lock) */
	int64_t tx_list_id, tx_list_account;
	char tx_optin[8];
	int64_t tx_suppr_account; /* tx_suppr_any is about this account */
	int tx_suppr_any;	  /* -1 unknown, 0 none, 1 some */
	char error[STORE_ERROR_MAX];
};

#define P_INT(v)                                                               \
	{                                                                      \
		.type = STORE_INT, .i = (v)                                    \
	}
#define P_TEXT(v)                                                              \
	{                                                                      \
		.type = STORE_TEXT, .s = (v)                                   \
	}

/* STORE_STMT_ADHOC: a statement built at run time (segments): prepared
   for one run, not cached */

struct store_int_result {
	int64_t rows;
	int64_t value;
};

int store_fail(struct store *s, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int store_not_found(struct store *s, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *store_quote(const char *in, char out[65]);
int store_stopped(struct store *s, int stop, const char **error_r);
int store_query(struct store *s, enum store_stmt_id id,
    const struct store_value *params, size_t nparams, store_row_cb *cb,
    void *arg, const char **db_error_r);
int store_run(struct store *s, const struct store_stmt *stmt,
    const struct store_value *params, size_t nparams, store_row_cb *cb,
    void *arg, const char **db_error_r);
int store_query_int(struct store *s, enum store_stmt_id id,
    const struct store_value *params, size_t nparams,
    struct store_int_result *r, const char **db_error_r);
int store_run_int(struct store *s, const struct store_stmt *stmt,
    const struct store_value *params, size_t nparams,
    struct store_int_result *r, const char **db_error_r);
int store_begin(struct store *s, bool write, const char **db_error_r);
void store_copy(char *dst, size_t dstlen, const struct store_value *v);
bool store_text_valid(const char *str, size_t min, size_t max);
bool store_email_valid(const char *email);
bool store_printable(const char *str, size_t max);

extern const struct store_driver store_driver_sqlite;

#endif
