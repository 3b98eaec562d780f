/*
 * store.c - the database API of store.h, on top of a SQL driver.
 *
 * Everything that is not SQL plumbing lives here, once for all drivers:
 * the statements (with '?' parameters; see store-private.h), validation
 * of what callers pass in, password and secret hashing, and the error
 * messages users see.  A driver (sqlite.c) only runs statements.
 *
 * Design notes:
 *  1. Every statement that reads or changes account data has
 *     "account_id = ?" in its WHERE clause (or inserts account_id), except
 *     the STORE_STMT_POLICY_* ones used by store_policy_load() and
 *     STORE_STMT_DOMAIN_OWNER, which is only compared with the caller's
 *     account id except in store_domain_owner() (for administrative
 *     tools: `herald dkim keygen`), and STORE_STMT_EVENT_HISTORY, the
 *     operator's view of the node's message log (store_event_history
 *     with account_id STORE_ANY_ACCOUNT).  Tables without account_id
 *     (subscriptions) are reached through a join or subquery on
 *     contacts.account_id = ?.
 *  2. "Not found" is decided from rows returned (RETURNING id on UPDATE
 *     and DELETE), never from a second query, so it holds under
 *     concurrent writers.
 *  3. Constraint violations come back from the driver as STORE_DB_UNIQUE
 *     or STORE_DB_FOREIGN_KEY and become messages that name the caller's
 *     input: checking first and inserting after would race with other
 *     processes.
 *  4. s->error holds the message of the last failure; drivers keep their
 *     own message in their connection, so formatting one into the other
 *     never overlaps.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sodium.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mail/address.h"
#include "store/store-private.h"
#include "store/store.h"

#define STORE_ROLE_MAX 32
#define STORE_PASSWORD_MAX 1024
#define STORE_USERNAME_MAX 127
#define STORE_META_KEY_MAX 128

/* The domain-separation key of store_secret_hash(); never change it. */
static const char store_secret_context[] = "herald-smtp-credential-v1";

/*
 * An argon2id hash of a random password nobody knows, with the
 * parameters of OPSLIMIT/MEMLIMIT_INTERACTIVE.  store_user_verify()
 * checks passwords for unknown users against it, so that an unknown
 * email costs as much time as a wrong password.
 */
static const char store_dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$Rt+w8ZUGVIBLZ0h1Sg2jNw$"
    "BJqnpyh6rQBjF0MH2fwb1yQRrEtjgYhDba5cNi8Vtqo";

/* URL schemes; a NULL driver means "known, but not built yet". */
static const struct {
	const char *scheme;
	const struct store_driver *driver;
} store_schemes[] = {
	{ "sqlite", &store_driver_sqlite },
	{ "postgresql", NULL },
	{ "postgres", NULL },
};

static const char store_schema_migrations_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at INTEGER NOT NULL)";

#define STMT(id, sql) [id] = { id, sql }
static const struct store_stmt store_stmts[STORE_STMT_COUNT] = {
	STMT(STORE_STMT_MIGRATION_MAX,
	    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"),
	STMT(STORE_STMT_MIGRATION_HAS,
	    "SELECT version FROM schema_migrations WHERE version = ?"),
	STMT(STORE_STMT_MIGRATION_RECORD,
	    "INSERT INTO schema_migrations (version, name, applied_at)"
	    " VALUES (?, ?, ?)"),
	STMT(STORE_STMT_ACCOUNT_INSERT,
	    "INSERT INTO accounts (name, created_at, disabled)"
	    " VALUES (?, ?, 0) RETURNING id"),
	STMT(STORE_STMT_ACCOUNT_FIND,
	    "SELECT id, name, created_at, disabled FROM accounts"
	    " WHERE name = ?"),
	STMT(STORE_STMT_ACCOUNT_LIST,
	    "SELECT id, name, created_at, disabled FROM accounts"
	    " ORDER BY name"),
	STMT(STORE_STMT_ACCOUNT_SET_DISABLED,
	    "UPDATE accounts SET disabled = ? WHERE id = ? RETURNING id"),
	STMT(STORE_STMT_USER_INSERT,
	    "INSERT INTO users"
	    " (account_id, email, password_hash, role, created_at)"
	    " VALUES (?, ?, ?, ?, ?) RETURNING id"),
	STMT(STORE_STMT_USER_HASH,
	    "SELECT password_hash FROM users"
	    " WHERE account_id = ? AND email = ?"),
	STMT(STORE_STMT_CRED_INSERT,
	    "INSERT INTO smtp_credentials"
	    " (account_id, username, secret_hash, created_at)"
	    " VALUES (?, ?, ?, ?) RETURNING id"),
	STMT(STORE_STMT_CRED_LIST,
	    "SELECT id, account_id, username, secret_hash, created_at,"
	    " revoked_at FROM smtp_credentials WHERE account_id = ?"
	    " ORDER BY username"),
	STMT(STORE_STMT_CRED_REVOKE,
	    "UPDATE smtp_credentials SET revoked_at = ?"
	    " WHERE account_id = ? AND username = ? AND revoked_at IS NULL"
	    " RETURNING id"),
	STMT(STORE_STMT_DOMAIN_INSERT,
	    "INSERT INTO sender_domains (account_id, domain, created_at)"
	    " VALUES (?, ?, ?)"),
	STMT(STORE_STMT_DOMAIN_OWNER,
	    "SELECT account_id FROM sender_domains WHERE domain = ?"),
	STMT(STORE_STMT_DOMAIN_LIST,
	    "SELECT domain, created_at FROM sender_domains"
	    " WHERE account_id = ? ORDER BY domain"),
	STMT(STORE_STMT_DOMAIN_DELETE,
	    "DELETE FROM sender_domains WHERE account_id = ? AND domain = ?"
	    " RETURNING id"),
	STMT(STORE_STMT_RELAY_INSERT,
	    "INSERT INTO relay_ips (account_id, cidr, created_at)"
	    " VALUES (?, ?, ?)"),
	STMT(STORE_STMT_RELAY_DELETE,
	    "DELETE FROM relay_ips WHERE account_id = ? AND cidr = ?"
	    " RETURNING id"),
	STMT(STORE_STMT_RELAY_LIST,
	    "SELECT cidr FROM relay_ips WHERE account_id = ? ORDER BY cidr"),
	STMT(STORE_STMT_POLICY_ACCOUNTS,
	    "SELECT id, name, disabled FROM accounts ORDER BY id"),
	STMT(STORE_STMT_POLICY_DOMAINS,
	    "SELECT account_id, domain FROM sender_domains"
	    " ORDER BY account_id, domain"),
	STMT(STORE_STMT_POLICY_CREDS,
	    "SELECT account_id, id, username, secret_hash"
	    " FROM smtp_credentials WHERE revoked_at IS NULL"
	    " ORDER BY account_id, username"),
	STMT(STORE_STMT_POLICY_RELAYS,
	    "SELECT account_id, cidr FROM relay_ips ORDER BY account_id, cidr"),
	STMT(STORE_STMT_META_GET, "SELECT value FROM meta WHERE key = ?"),
	STMT(STORE_STMT_META_SET,
	    "INSERT INTO meta (key, value) VALUES (?, ?)"
	    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
	STMT(STORE_STMT_EVENT_INSERT,
	    "INSERT INTO delivery_events (account_id, queue_id, rcpt_idx,"
	    " recipient, state, at, attempt, next_at, relay, reply, tls)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
	STMT(STORE_STMT_EVENT_HISTORY,
	    "SELECT account_id, queue_id, rcpt_idx, recipient, state, at,"
	    " attempt, next_at, relay, reply, tls FROM delivery_events"
	    " WHERE queue_id = ? ORDER BY id"),
	STMT(STORE_STMT_EVENT_HISTORY_ACCOUNT,
	    "SELECT account_id, queue_id, rcpt_idx, recipient, state, at,"
	    " attempt, next_at, relay, reply, tls FROM delivery_events"
	    " WHERE queue_id = ? AND account_id = ? ORDER BY id"),
	STMT(STORE_STMT_EVENT_PURGE,
	    "DELETE FROM delivery_events WHERE id IN (SELECT id FROM"
	    " delivery_events WHERE at < ? ORDER BY id LIMIT ?)"),
	STMT(STORE_STMT_LIST_INSERT,
	    "INSERT INTO lists (account_id, name, description, optin,"
	    " created_at) VALUES (?, ?, ?, ?, ?) RETURNING id"),
	STMT(STORE_STMT_LIST_FIND,
	    "SELECT id, name, description, optin, created_at FROM lists"
	    " WHERE account_id = ? AND name = ?"),
	STMT(STORE_STMT_LIST_LIST,
	    "SELECT id, name, description, optin, created_at FROM lists"
	    " WHERE account_id = ? ORDER BY name"),
	STMT(STORE_STMT_LIST_DELETE,
	    "DELETE FROM lists WHERE account_id = ? AND name = ? RETURNING id"),
	STMT(STORE_STMT_LIST_OPTIN,
	    "SELECT optin FROM lists WHERE account_id = ? AND id = ?"),
	STMT(STORE_STMT_SUPPR_INSERT,
	    "INSERT INTO suppressions (account_id, email, reason, created_at)"
	    " VALUES (?, ?, ?, ?) ON CONFLICT (account_id, email)"
	    " DO UPDATE SET reason = excluded.reason"),
	STMT(STORE_STMT_SUPPR_CHECK,
	    "SELECT 1 FROM suppressions WHERE account_id = ? AND email = ?"),
	STMT(STORE_STMT_SUPPR_DELETE,
	    "DELETE FROM suppressions WHERE account_id = ? AND email = ?"
	    " RETURNING 1"),
	STMT(STORE_STMT_USER_LIST,
	    "SELECT id, email, role, created_at FROM users"
	    " WHERE account_id = ? ORDER BY email"),
	STMT(STORE_STMT_USER_DELETE,
	    "DELETE FROM users WHERE account_id = ? AND id = ? RETURNING id"),
};
#undef STMT

/* ---- errors ---- */

static int
store_verror(
    struct store *s, const char **error_r, int ret, const char *fmt, va_list ap)
{
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	if (error_r != NULL)
		*error_r = s->error;
	return ret;
}

/* store_fail - set the store's error and return -1 */
int __attribute__((format(printf, 3, 4)))
store_fail(struct store *s, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = store_verror(s, error_r, -1, fmt, ap);
	va_end(ap);
	return ret;
}

/* store_not_found - set the store's error and return 1 */
int __attribute__((format(printf, 3, 4)))
store_not_found(struct store *s, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = store_verror(s, error_r, 1, fmt, ap);
	va_end(ap);
	return ret;
}

/*
 * store_quote - input made safe to put in a message: no quotes or control
 * bytes, at most 64 bytes.  out must hold 65.
 */
const char *
store_quote(const char *in, char out[65])
{
	return log_quote(in, out, 65);
}

/* store_stopped - the result of a list whose callback returned stop */
int
store_stopped(struct store *s, int stop, const char **error_r)
{
	if (stop == -1)
		return store_fail(s, error_r, "stopped by the caller");
	return stop;
}

/* ---- running statements ---- */

/*
 * store_query - run statement id; on failure returns the negative
 * STORE_DB_* code with the driver's message in *db_error_r.
 */
int
store_query(struct store *s, enum store_stmt_id id,
    const struct store_value *params, size_t nparams, store_row_cb *cb,
    void *arg, const char **db_error_r)
{
	assert(id < STORE_STMT_COUNT && store_stmts[id].sql != NULL);
	return store_run(
	    s, &store_stmts[id], params, nparams, cb, arg, db_error_r);
}

/* store_run - store_query for a statement of another file of the store */
int
store_run(struct store *s, const struct store_stmt *stmt,
    const struct store_value *params, size_t nparams, store_row_cb *cb,
    void *arg, const char **db_error_r)
{
	if (s->in_callback) {
		*db_error_r = "store used from inside one of its own callbacks";
		return STORE_DB_FAIL;
	}
	return s->driver->query(
	    s->conn, stmt, params, nparams, cb, arg, db_error_r);
}

static int
store_row_int(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_int_result *r = arg;

	if (r->rows++ == 0 && ncols > 0 && cols[0].type == STORE_INT)
		r->value = cols[0].i;
	return 0;
}

/* store_query_int - run a statement that returns one integer column */
int
store_query_int(struct store *s, enum store_stmt_id id,
    const struct store_value *params, size_t nparams,
    struct store_int_result *r, const char **db_error_r)
{
	r->rows = 0;
	r->value = 0;
	return store_query(
	    s, id, params, nparams, store_row_int, r, db_error_r);
}

/* store_run_int - store_query_int for another file's statement */
int
store_run_int(struct store *s, const struct store_stmt *stmt,
    const struct store_value *params, size_t nparams,
    struct store_int_result *r, const char **db_error_r)
{
	r->rows = 0;
	r->value = 0;
	return store_run(
	    s, stmt, params, nparams, store_row_int, r, db_error_r);
}

/* store_begin - start a transaction (see store_query about reentry) */
int
store_begin(struct store *s, bool write, const char **db_error_r)
{
	if (s->in_callback) {
		*db_error_r = "store used from inside one of its own callbacks";
		return -1;
	}
	return s->driver->begin(s->conn, write, db_error_r);
}

/* store_copy - copy a column's text into a fixed field, cut to fit */
void
store_copy(char *dst, size_t dstlen, const struct store_value *v)
{
	snprintf(dst, dstlen, "%s", v->type == STORE_TEXT ? v->s : "");
}

/* ---- open, close, migrate ---- */

/*
 * store_url_parse - the driver and target of url, or -1 with a message in
 * err.  A name with no "scheme:" prefix that we know is a SQLite file.
 */
static int
store_url_parse(const char *url, const struct store_driver **drv_r,
    const char **target_r, char *err, size_t errlen)
{
	size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyz0123456789+.-");

	*drv_r = &store_driver_sqlite;
	*target_r = url;
	if (n > 0 && url[n] == ':') {
		for (size_t i = 0; i < NELEM(store_schemes); i++) {
			if (strlen(store_schemes[i].scheme) != n ||
			    strncmp(url, store_schemes[i].scheme, n) != 0)
				continue;
			if (store_schemes[i].driver == NULL) {
				snprintf(err, errlen,
				    "store: %s:// URLs "
				    "need the PostgreSQL driver, which is not "
				    "built yet; use a SQLite file name",
				    store_schemes[i].scheme);
				return -1;
			}
			*drv_r = store_schemes[i].driver;
			*target_r = url + n + 1;
			break;
		}
		if (*target_r == url && strncmp(url + n, "://", 3) == 0) {
			snprintf(err, errlen,
			    "store: unknown database URL "
			    "scheme '%.*s' (use a file name, sqlite:FILE or "
			    "postgresql://...)",
			    (int)(n > 32 ? 32 : n), url);
			return -1;
		}
	}
	if (**target_r == '\0') {
		snprintf(err, errlen, "store: empty database file name");
		return -1;
	}
	return 0;
}

struct store *
store_open(const char *url, const char **error_r)
{
	static _Thread_local char err[STORE_ERROR_MAX];
	const struct store_driver *drv;
	const char *target, *db_error;
	struct store_conn *conn;
	struct store *s;

	if (error_r != NULL)
		*error_r = err;
	if (sodium_init() < 0) {
		snprintf(err, sizeof(err), "store: libsodium failed to start");
		return NULL;
	}
	if (url == NULL || *url == '\0') {
		snprintf(err, sizeof(err), "store: no database URL given");
		return NULL;
	}
	if (store_url_parse(url, &drv, &target, err, sizeof(err)) < 0)
		return NULL;
	if (drv->open(target, &conn, &db_error) < 0) {
		snprintf(err, sizeof(err), "store: %s", db_error);
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->driver = drv;
	s->conn = conn;
	return s;
}

void
store_close(struct store **sp)
{
	struct store *s = *sp;

	if (s == NULL)
		return;
	s->driver->close(&s->conn);
	free(s);
	*sp = NULL;
}

/* store_migrate_one - apply migration m unless already recorded */
static int
store_migrate_one(
    struct store *s, const struct store_migration *m, const char **error_r)
{
	struct store_value has[] = { P_INT(m->version) };
	struct store_value rec[] = { P_INT(m->version), P_TEXT(m->name),
		P_INT((int64_t)time(NULL)) };
	struct store_int_result r;
	const char *err;
	char msg[STORE_ERROR_MAX / 2];

	/* The write lock is taken before looking, so two processes
	   migrating at once apply each migration once. */
	if (store_begin(s, true, &err) < 0)
		goto fail;
	if (store_query_int(
		s, STORE_STMT_MIGRATION_HAS, has, NELEM(has), &r, &err) < 0)
		goto fail_rollback;
	if (r.rows == 0) {
		if (s->driver->exec_script(s->conn, m->sql, &err) < 0 ||
		    store_query(s, STORE_STMT_MIGRATION_RECORD, rec, NELEM(rec),
			NULL, NULL, &err) < 0)
			goto fail_rollback;
	}
	if (s->driver->commit(s->conn, &err) < 0)
		goto fail_rollback;
	return 0;
fail_rollback:
	/* copy first: the rollback may reuse the driver's message buffer */
	snprintf(msg, sizeof(msg), "%s", err);
	s->driver->rollback(s->conn);
	err = msg;
fail:
	return store_fail(s, error_r, "store: migration %03d_%s: %s",
	    m->version, m->name, err);
}

int
store_migrate(struct store *s, const char **error_r)
{
	const struct store_driver *d = s->driver;
	struct store_int_result r;
	const char *err;

	if (s->in_callback)
		return store_fail(s, error_r,
		    "store: store_migrate() called "
		    "from inside a store callback");
	if (d->exec_script(s->conn, store_schema_migrations_sql, &err) < 0 ||
	    store_query_int(s, STORE_STMT_MIGRATION_MAX, NULL, 0, &r, &err) < 0)
		return store_fail(s, error_r,
		    "store: reading the schema "
		    "version: %s",
		    err);
	if (r.value > (int64_t)d->migrations_count)
		return store_fail(s, error_r,
		    "store: the database has schema "
		    "version %lld, newer than this program knows (%zu); "
		    "upgrade Herald",
		    (long long)r.value, d->migrations_count);
	for (size_t i = 0; i < d->migrations_count; i++) {
		assert(d->migrations[i].version == (int)i + 1);
		if (store_migrate_one(s, &d->migrations[i], error_r) < 0)
			return -1;
	}
	return 0;
}

/* ---- accounts ---- */

bool
store_account_name_valid(const char *name)
{
	size_t n = strspn(name,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-");

	return n >= 1 && n <= STORE_ACCOUNT_NAME_MAX && name[n] == '\0';
}

int
store_account_create(
    struct store *s, const char *name, int64_t *id_r, const char **error_r)
{
	struct store_value p[] = { P_TEXT(name), P_INT((int64_t)time(NULL)) };
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (!store_account_name_valid(name))
		return store_fail(s, error_r,
		    "invalid account name '%s': "
		    "use 1-%d characters of A-Z a-z 0-9 . _ -",
		    store_quote(name, q), STORE_ACCOUNT_NAME_MAX);
	ret = store_query_int(
	    s, STORE_STMT_ACCOUNT_INSERT, p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(
		    s, error_r, "account '%s' already exists", name);
	if (ret < 0)
		return store_fail(
		    s, error_r, "creating account '%s': %s", name, err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

/* store_account_from_row - id, name, created_at, disabled */
static void
store_account_from_row(struct store_account *a, const struct store_value *cols)
{
	memset(a, 0, sizeof(*a));
	a->id = cols[0].i;
	store_copy(a->name, sizeof(a->name), &cols[1]);
	a->created_at = cols[2].i;
	a->disabled = cols[3].i != 0;
}

struct store_account_ctx {
	struct store *s;
	struct store_account *out; /* find */
	bool found;
	int (*cb)(void *, const struct store_account *); /* list */
	void *arg;
	int stop;
};

static int
store_account_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_account_ctx *ctx = arg;
	struct store_account a;

	assert(ncols == 4);
	store_account_from_row(&a, cols);
	if (ctx->out != NULL) {
		*ctx->out = a;
		ctx->found = true;
		return 1;
	}
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &a);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_account_find(struct store *s, const char *name, struct store_account *out,
    const char **error_r)
{
	struct store_value p[] = { P_TEXT(name) };
	struct store_account_ctx ctx = { .s = s, .out = out };
	const char *err;
	char q[65];

	if (store_query(s, STORE_STMT_ACCOUNT_FIND, p, NELEM(p),
		store_account_row, &ctx, &err) < 0)
		return store_fail(s, error_r, "looking up account '%s': %s",
		    store_quote(name, q), err);
	if (!ctx.found)
		return store_not_found(
		    s, error_r, "no account '%s'", store_quote(name, q));
	return 0;
}

int
store_account_list(struct store *s,
    int (*cb)(void *arg, const struct store_account *account), void *arg,
    const char **error_r)
{
	struct store_account_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_query(s, STORE_STMT_ACCOUNT_LIST, NULL, 0, store_account_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "listing accounts: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_account_set_disabled(
    struct store *s, int64_t account_id, bool disabled, const char **error_r)
{
	struct store_value p[] = { P_INT(disabled ? 1 : 0), P_INT(account_id) };
	struct store_int_result r;
	const char *err;

	if (store_query_int(
		s, STORE_STMT_ACCOUNT_SET_DISABLED, p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "%s account %lld: %s",
		    disabled ? "disabling" : "enabling", (long long)account_id,
		    err);
	if (r.rows == 0)
		return store_not_found(s, error_r, "no account with id %lld",
		    (long long)account_id);
	return 0;
}

/* ---- users ---- */

/* store_printable - 1..max bytes, none of them space or control */
bool
store_printable(const char *str, size_t max)
{
	size_t n = 0;

	for (; str[n] != '\0'; n++) {
		unsigned char c = (unsigned char)str[n];

		if (c <= 0x20 || c == 0x7f || n >= max)
			return false;
	}
	return n > 0;
}

bool
store_email_valid(const char *email)
{
	const char *at = strrchr(email, '@');

	return store_printable(email, STORE_EMAIL_MAX) && at != NULL &&
	    at != email && at[1] != '\0';
}

static bool
store_role_valid(const char *role)
{
	size_t n = strspn(role, "abcdefghijklmnopqrstuvwxyz_");

	return n >= 1 && n <= STORE_ROLE_MAX && role[n] == '\0';
}

int
store_user_create(struct store *s, int64_t account_id, const char *email,
    const char *password, const char *role, int64_t *id_r, const char **error_r)
{
	char hash[crypto_pwhash_STRBYTES], q[65];
	size_t pwlen = strlen(password);
	struct store_value p[] = { P_INT(account_id), P_TEXT(email),
		P_TEXT(hash), P_TEXT(role), P_INT((int64_t)time(NULL)) };
	struct store_int_result r;
	const char *err;
	int ret;

	if (!store_email_valid(email))
		return store_fail(s, error_r, "invalid email address '%s'",
		    store_quote(email, q));
	if (!store_role_valid(role))
		return store_fail(s, error_r,
		    "invalid role '%s': use 1-%d "
		    "characters of a-z _",
		    store_quote(role, q), STORE_ROLE_MAX);
	if (pwlen == 0 || pwlen > STORE_PASSWORD_MAX)
		return store_fail(s, error_r,
		    "the password must be 1-%d "
		    "bytes long",
		    STORE_PASSWORD_MAX);
	if (crypto_pwhash_str(hash, password, pwlen,
		crypto_pwhash_OPSLIMIT_INTERACTIVE,
		crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return store_fail(s, error_r,
		    "hashing the password of '%s' "
		    "failed (out of memory?)",
		    email);
	ret = store_query_int(s, STORE_STMT_USER_INSERT, p, NELEM(p), &r, &err);
	sodium_memzero(hash, sizeof(hash));
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "user '%s' already exists in "
		    "this account",
		    email);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(
		    s, error_r, "creating user '%s': %s", email, err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

struct store_hash_ctx {
	bool found;
	bool too_long;
	char hash[crypto_pwhash_STRBYTES];
};

static int
store_hash_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_hash_ctx *ctx = arg;

	assert(ncols == 1);
	ctx->found = true;
	if (cols[0].type != STORE_TEXT ||
	    strlen(cols[0].s) >= sizeof(ctx->hash))
		ctx->too_long = true;
	else
		memcpy(ctx->hash, cols[0].s, strlen(cols[0].s) + 1);
	return 1;
}

int
store_user_verify(struct store *s, int64_t account_id, const char *email,
    const char *password, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(email) };
	struct store_hash_ctx ctx = { .found = false };
	size_t pwlen = strlen(password);
	const char *err;
	char q[65];

	if (store_query(s, STORE_STMT_USER_HASH, p, NELEM(p), store_hash_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "looking up user '%s': %s",
		    store_quote(email, q), err);
	if (ctx.found &&
	    (ctx.too_long ||
		crypto_pwhash_str_needs_rehash(ctx.hash,
		    crypto_pwhash_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0))
		return store_fail(s, error_r,
		    "the stored password hash of "
		    "user '%s' is not an argon2id string",
		    email);
	/* An unknown user costs one hash too, so timing does not tell. */
	if (crypto_pwhash_str_verify(ctx.found ? ctx.hash : store_dummy_hash,
		password, pwlen) != 0 ||
	    !ctx.found)
		return store_not_found(s, error_r, "wrong email or password");
	return 0;
}

_Static_assert(sizeof(((struct store_user *)0)->role) == STORE_ROLE_MAX + 1,
    "struct store_user's role holds exactly a valid role");

struct store_user_ctx {
	struct store *s;
	int (*cb)(void *, const struct store_user *);
	void *arg;
	int stop;
};

static int
store_user_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_user_ctx *ctx = arg;
	struct store_user u;

	assert(ncols == 4);
	memset(&u, 0, sizeof(u));
	u.id = cols[0].i;
	store_copy(u.email, sizeof(u.email), &cols[1]);
	store_copy(u.role, sizeof(u.role), &cols[2]);
	u.created_at = cols[3].i;
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &u);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_user_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_user *u), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct store_user_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_query(s, STORE_STMT_USER_LIST, p, NELEM(p), store_user_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "listing users: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_user_delete(
    struct store *s, int64_t account_id, int64_t user_id, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(user_id) };
	struct store_int_result r;
	const char *err;

	if (store_query_int(s, STORE_STMT_USER_DELETE, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r, "deleting user %lld: %s",
		    (long long)user_id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no user with id %lld in this account", (long long)user_id);
	return 0;
}

/* ---- SMTP credentials ---- */

void
store_secret_hash(const char *secret, char out[65])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)secret,
	    strlen(secret), (const unsigned char *)store_secret_context,
	    sizeof(store_secret_context) - 1);
	sodium_bin2hex(out, 65, h, sizeof(h));
	sodium_memzero(h, sizeof(h));
}

static bool
store_secret_hash_valid(const char *h)
{
	return strspn(h, "0123456789abcdef") == STORE_SECRET_HASH_LEN &&
	    h[STORE_SECRET_HASH_LEN] == '\0';
}

int
store_credential_create(struct store *s, int64_t account_id,
    const char *username, const char *secret_hash, int64_t *id_r,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(username),
		P_TEXT(secret_hash), P_INT((int64_t)time(NULL)) };
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (!store_printable(username, STORE_USERNAME_MAX))
		return store_fail(s, error_r,
		    "invalid SMTP username '%s': "
		    "use 1-%d bytes without spaces or control characters",
		    store_quote(username, q), STORE_USERNAME_MAX);
	if (!store_secret_hash_valid(secret_hash))
		return store_fail(s, error_r,
		    "invalid secret hash for SMTP "
		    "username '%s': expected %d lower-case hex digits",
		    username, STORE_SECRET_HASH_LEN);
	ret = store_query_int(s, STORE_STMT_CRED_INSERT, p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "SMTP username '%s' is already "
		    "taken",
		    username);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(s, error_r,
		    "creating SMTP credential "
		    "'%s': %s",
		    username, err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

struct store_cred_ctx {
	struct store *s;
	int (*cb)(void *, const struct store_credential *);
	void *arg;
	int stop;
};

static int
store_cred_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_cred_ctx *ctx = arg;
	struct store_credential c;

	assert(ncols == 6);
	memset(&c, 0, sizeof(c));
	c.id = cols[0].i;
	c.account_id = cols[1].i;
	store_copy(c.username, sizeof(c.username), &cols[2]);
	store_copy(c.secret_hash, sizeof(c.secret_hash), &cols[3]);
	c.created_at = cols[4].i;
	c.revoked_at = cols[5].type == STORE_INT ? cols[5].i : 0;
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &c);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_credential_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_credential *credential), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct store_cred_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_query(s, STORE_STMT_CRED_LIST, p, NELEM(p), store_cred_row,
		&ctx, &err) < 0)
		return store_fail(
		    s, error_r, "listing SMTP credentials: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_credential_revoke(struct store *s, int64_t account_id,
    const char *username, const char **error_r)
{
	struct store_value p[] = { P_INT((int64_t)time(NULL)),
		P_INT(account_id), P_TEXT(username) };
	struct store_int_result r;
	const char *err;
	char q[65];

	if (store_query_int(s, STORE_STMT_CRED_REVOKE, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r,
		    "revoking SMTP credential "
		    "'%s': %s",
		    store_quote(username, q), err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no active SMTP credential "
		    "'%s' in this account",
		    store_quote(username, q));
	return 0;
}

/* ---- sender domains ---- */

/* store_domain_valid - a normalized (lower-case A-label) domain name */
static bool
store_domain_valid(const char *d)
{
	return mail_domain_is_normal(d);
}

int
store_domain_add(struct store *s, int64_t account_id, const char *domain,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(domain),
		P_INT((int64_t)time(NULL)) };
	struct store_value owner_p[] = { P_TEXT(domain) };
	struct store_int_result owner;
	const char *err;
	char q[65];
	int ret;

	if (!store_domain_valid(domain))
		return store_fail(s, error_r,
		    "invalid domain '%s': expected "
		    "a lower-case ASCII name (IDNs as xn-- labels) without "
		    "a trailing dot",
		    store_quote(domain, q));
	ret = store_query(
	    s, STORE_STMT_DOMAIN_INSERT, p, NELEM(p), NULL, NULL, &err);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret == STORE_DB_UNIQUE) {
		/* Who has it decides the message; the owner is not told. */
		if (store_query_int(s, STORE_STMT_DOMAIN_OWNER, owner_p,
			NELEM(owner_p), &owner, &err) == 0 &&
		    owner.rows > 0 && owner.value == account_id)
			return store_fail(s, error_r,
			    "domain '%s' is already "
			    "in this account",
			    domain);
		return store_fail(s, error_r,
		    "domain '%s' belongs to another "
		    "account",
		    domain);
	}
	if (ret < 0)
		return store_fail(
		    s, error_r, "adding domain '%s': %s", domain, err);
	return 0;
}

struct store_domain_ctx {
	struct store *s;
	int (*cb)(void *, const char *, int64_t);
	void *arg;
	int stop;
};

static int
store_domain_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_domain_ctx *ctx = arg;

	assert(ncols == 2 && cols[0].type == STORE_TEXT);
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, cols[0].s, cols[1].i);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_domain_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const char *domain, int64_t created_at), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct store_domain_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_query(s, STORE_STMT_DOMAIN_LIST, p, NELEM(p),
		store_domain_row, &ctx, &err) < 0)
		return store_fail(s, error_r, "listing domains: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_domain_remove(struct store *s, int64_t account_id, const char *domain,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(domain) };
	struct store_int_result r;
	const char *err;
	char q[65];

	if (store_query_int(
		s, STORE_STMT_DOMAIN_DELETE, p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "removing domain '%s': %s",
		    store_quote(domain, q), err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no domain '%s' in this "
		    "account",
		    store_quote(domain, q));
	return 0;
}

int
store_domain_owner(struct store *s, const char *domain, int64_t *account_id_r,
    const char **error_r)
{
	struct store_value p[] = { P_TEXT(domain) };
	struct store_int_result r;
	const char *err;
	char q[65];

	if (store_query_int(s, STORE_STMT_DOMAIN_OWNER, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r, "looking up domain '%s': %s",
		    store_quote(domain, q), err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "domain '%s' is not a sender domain of any account",
		    store_quote(domain, q));
	*account_id_r = r.value;
	return 0;
}

/* ---- relay networks ---- */

/* store_prefix_parse - "0".."max" without leading zeros; -1 if not */
static int
store_prefix_parse(const char *p, int max)
{
	size_t n = strspn(p, "0123456789");
	int v;

	if (n == 0 || n > 3 || p[n] != '\0' || (n > 1 && p[0] == '0'))
		return -1;
	v = atoi(p);
	return v <= max ? v : -1;
}

int
store_cidr_canonical(
    const char *cidr, char out[STORE_CIDR_MAX], char *err, size_t errlen)
{
	unsigned char addr[16], masked[16];
	char host[STORE_CIDR_MAX], text[INET6_ADDRSTRLEN], q[65];
	const char *slash = strchr(cidr, '/');
	size_t hostlen = slash ? (size_t)(slash - cidr) : strlen(cidr);
	int af = memchr(cidr, ':', hostlen) ? AF_INET6 : AF_INET;
	int bits = af == AF_INET6 ? 128 : 32;
	int min = af == AF_INET6 ? 16 : 8;
	int prefix = bits;

	if (hostlen < sizeof(host)) {
		memcpy(host, cidr, hostlen);
		host[hostlen] = '\0';
	}
	if (hostlen >= sizeof(host) || inet_pton(af, host, addr) != 1) {
		snprintf(err, errlen,
		    "'%s' is not an IPv4 or IPv6 address or "
		    "network",
		    store_quote(cidr, q));
		return -1;
	}
	if (slash != NULL &&
	    (prefix = store_prefix_parse(slash + 1, bits)) < 0) {
		snprintf(err, errlen,
		    "'%s': the prefix length must be a "
		    "number from 0 to %d",
		    store_quote(cidr, q), bits);
		return -1;
	}
	if (prefix < min) {
		snprintf(err, errlen,
		    "'%s': a network wider than /%d would "
		    "let most of the Internet relay",
		    store_quote(cidr, q), min);
		return -1;
	}
	memset(masked, 0, sizeof(masked));
	memcpy(masked, addr, (size_t)prefix / 8);
	if (prefix % 8 != 0)
		masked[prefix / 8] = addr[prefix / 8] &
		    (unsigned char)(0xff << (8 - prefix % 8));
	inet_ntop(af, masked, text, sizeof(text));
	if (memcmp(masked, addr, (size_t)bits / 8) != 0) {
		snprintf(err, errlen,
		    "'%s' has bits set past /%d; did you "
		    "mean %s/%d?",
		    store_quote(cidr, q), prefix, text, prefix);
		return -1;
	}
	snprintf(out, STORE_CIDR_MAX, "%s/%d", text, prefix);
	return 0;
}

int
store_relay_ip_add(
    struct store *s, int64_t account_id, const char *cidr, const char **error_r)
{
	char canon[STORE_CIDR_MAX], why[256];
	struct store_value p[] = { P_INT(account_id), P_TEXT(canon),
		P_INT((int64_t)time(NULL)) };
	const char *err;
	int ret;

	if (store_cidr_canonical(cidr, canon, why, sizeof(why)) < 0)
		return store_fail(s, error_r, "invalid relay network %s", why);
	ret = store_query(
	    s, STORE_STMT_RELAY_INSERT, p, NELEM(p), NULL, NULL, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "relay network %s is already in "
		    "this account",
		    canon);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(
		    s, error_r, "adding relay network %s: %s", canon, err);
	return 0;
}

int
store_relay_ip_remove(
    struct store *s, int64_t account_id, const char *cidr, const char **error_r)
{
	char canon[STORE_CIDR_MAX], why[256];
	struct store_value p[] = { P_INT(account_id), P_TEXT(canon) };
	struct store_int_result r;
	const char *err;

	if (store_cidr_canonical(cidr, canon, why, sizeof(why)) < 0)
		return store_fail(s, error_r, "invalid relay network %s", why);
	if (store_query_int(s, STORE_STMT_RELAY_DELETE, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(
		    s, error_r, "removing relay network %s: %s", canon, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no relay network %s in "
		    "this account",
		    canon);
	return 0;
}

struct store_relay_ctx {
	struct store *s;
	int (*cb)(void *, const char *);
	void *arg;
	int stop;
};

static int
store_relay_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_relay_ctx *ctx = arg;

	assert(ncols == 1 && cols[0].type == STORE_TEXT);
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, cols[0].s);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_relay_ip_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const char *cidr), void *arg, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct store_relay_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_query(s, STORE_STMT_RELAY_LIST, p, NELEM(p), store_relay_row,
		&ctx, &err) < 0)
		return store_fail(
		    s, error_r, "listing relay networks: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

/* ---- the policy snapshot ---- */

enum store_policy_kind {
	STORE_POLICY_ACCOUNTS,
	STORE_POLICY_DOMAINS,
	STORE_POLICY_CREDS,
	STORE_POLICY_RELAYS,
};

struct store_policy_ctx {
	struct store *s;
	const struct store_policy_cb *cb;
	void *arg;
	enum store_policy_kind kind;
	int stop;
};

static int
store_policy_row(void *arg, const struct store_value *c, size_t ncols)
{
	struct store_policy_ctx *ctx = arg;
	const struct store_policy_cb *cb = ctx->cb;
	void *a = ctx->arg;

	ctx->s->in_callback = true;
	switch (ctx->kind) {
	case STORE_POLICY_ACCOUNTS:
		assert(ncols == 3 && c[1].type == STORE_TEXT);
		ctx->stop = cb->account(a, c[0].i, c[1].s, c[2].i != 0);
		break;
	case STORE_POLICY_DOMAINS:
		assert(ncols == 2 && c[1].type == STORE_TEXT);
		ctx->stop = cb->domain(a, c[0].i, c[1].s);
		break;
	case STORE_POLICY_CREDS:
		assert(ncols == 4 && c[2].type == STORE_TEXT &&
		    c[3].type == STORE_TEXT);
		ctx->stop = cb->credential(a, c[0].i, c[1].i, c[2].s, c[3].s);
		break;
	case STORE_POLICY_RELAYS:
		assert(ncols == 2 && c[1].type == STORE_TEXT);
		ctx->stop = cb->relay_ip(a, c[0].i, c[1].s);
		break;
	}
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_policy_load(struct store *s, const struct store_policy_cb *cb, void *arg,
    const char **error_r)
{
	static const struct {
		enum store_policy_kind kind;
		enum store_stmt_id stmt;
		const char *what;
	} steps[] = {
		{ STORE_POLICY_ACCOUNTS, STORE_STMT_POLICY_ACCOUNTS,
		    "accounts" },
		{ STORE_POLICY_DOMAINS, STORE_STMT_POLICY_DOMAINS, "domains" },
		{ STORE_POLICY_CREDS, STORE_STMT_POLICY_CREDS, "credentials" },
		{ STORE_POLICY_RELAYS, STORE_STMT_POLICY_RELAYS,
		    "relay networks" },
	};
	const bool wanted[] = { cb->account != NULL, cb->domain != NULL,
		cb->credential != NULL, cb->relay_ip != NULL };
	struct store_policy_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;
	char msg[STORE_ERROR_MAX / 2];

	/* One read transaction: the four tables from the same instant. */
	if (store_begin(s, false, &err) < 0)
		return store_fail(
		    s, error_r, "loading the SMTP policy: %s", err);
	for (size_t i = 0; i < NELEM(steps) && ctx.stop == 0; i++) {
		if (!wanted[steps[i].kind])
			continue;
		ctx.kind = steps[i].kind;
		if (store_query(s, steps[i].stmt, NULL, 0, store_policy_row,
			&ctx, &err) < 0) {
			snprintf(msg, sizeof(msg), "%s", err);
			s->driver->rollback(s->conn);
			return store_fail(s, error_r,
			    "loading the SMTP "
			    "policy (%s): %s",
			    steps[i].what, msg);
		}
	}
	/* Nothing was written: ending the read cannot lose anything. */
	s->driver->rollback(s->conn);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_changed(struct store *s, bool *changed_r, const char **error_r)
{
	const char *err;

	if (s->in_callback)
		return store_fail(s, error_r,
		    "store used from inside one of "
		    "its own callbacks");
	if (s->driver->changed(s->conn, changed_r, &err) < 0)
		return store_fail(s, error_r, "checking for changes: %s", err);
	return 0;
}

/* ---- meta ---- */

static bool
store_meta_key_valid(const char *key)
{
	return store_printable(key, STORE_META_KEY_MAX);
}

static int
store_meta_row(void *arg, const struct store_value *cols, size_t ncols)
{
	char **value_r = arg;

	assert(ncols == 1);
	*value_r = xstrdup(cols[0].type == STORE_TEXT ? cols[0].s : "");
	return 1;
}

int
store_meta_get(
    struct store *s, const char *key, char **value_r, const char **error_r)
{
	struct store_value p[] = { P_TEXT(key) };
	const char *err;
	char q[65];

	*value_r = NULL;
	if (!store_meta_key_valid(key))
		return store_fail(
		    s, error_r, "invalid meta key '%s'", store_quote(key, q));
	if (store_query(s, STORE_STMT_META_GET, p, NELEM(p), store_meta_row,
		value_r, &err) < 0) {
		free(*value_r);
		*value_r = NULL;
		return store_fail(
		    s, error_r, "reading meta '%s': %s", key, err);
	}
	if (*value_r == NULL)
		return store_not_found(s, error_r, "no meta key '%s'", key);
	return 0;
}

int
store_meta_set(
    struct store *s, const char *key, const char *value, const char **error_r)
{
	struct store_value p[] = { P_TEXT(key), P_TEXT(value) };
	const char *err;
	char q[65];

	if (!store_meta_key_valid(key))
		return store_fail(
		    s, error_r, "invalid meta key '%s'", store_quote(key, q));
	if (store_query(s, STORE_STMT_META_SET, p, NELEM(p), NULL, NULL, &err) <
	    0)
		return store_fail(
		    s, error_r, "writing meta '%s': %s", key, err);
	return 0;
}

/* ---- the message log ---- */

int
store_events_add(struct store *s, const struct store_event *ev, size_t n,
    const char **error_r)
{
	const char *err;
	size_t i;

	if (n == 0)
		return 0;
	if (store_begin(s, true, &err) < 0)
		return store_fail(
		    s, error_r, "writing the message log: %s", err);
	for (i = 0; i < n; i++) {
		const struct store_event *e = &ev[i];
		struct store_value p[] = { P_INT(e->account_id),
			P_TEXT(e->queue_id), P_INT(e->rcpt_idx),
			P_TEXT(e->recipient), P_TEXT(e->state), P_INT(e->at),
			P_INT(e->attempt), P_INT(e->next_at),
			P_TEXT(e->relay ? e->relay : ""),
			P_TEXT(e->reply ? e->reply : ""),
			P_TEXT(e->tls ? e->tls : "") };

		if (store_query(s, STORE_STMT_EVENT_INSERT, p, NELEM(p), NULL,
			NULL, &err) < 0) {
			s->driver->rollback(s->conn);
			return store_fail(
			    s, error_r, "writing the message log: %s", err);
		}
	}
	if (s->driver->commit(s->conn, &err) < 0) {
		s->driver->rollback(s->conn);
		return store_fail(
		    s, error_r, "writing the message log: %s", err);
	}
	return 0;
}

struct store_event_ctx {
	struct store *s;
	int (*cb)(void *arg, const struct store_event *ev);
	void *arg;
	int stop;
};

static int
store_event_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_event_ctx *ctx = arg;
	struct store_event e;
	int r;

	if (ncols < 11)
		return 0;
	memset(&e, 0, sizeof(e));
	e.account_id = cols[0].i;
	e.queue_id = cols[1].type == STORE_TEXT ? cols[1].s : "";
	e.rcpt_idx = (int)cols[2].i;
	e.recipient = cols[3].type == STORE_TEXT ? cols[3].s : "";
	e.state = cols[4].type == STORE_TEXT ? cols[4].s : "";
	e.at = cols[5].i;
	e.attempt = (int)cols[6].i;
	e.next_at = cols[7].i;
	e.relay = cols[8].type == STORE_TEXT ? cols[8].s : "";
	e.reply = cols[9].type == STORE_TEXT ? cols[9].s : "";
	e.tls = cols[10].type == STORE_TEXT ? cols[10].s : "";
	ctx->s->in_callback = true;
	r = ctx->cb(ctx->arg, &e);
	ctx->s->in_callback = false;
	if (r != 0) {
		ctx->stop = r;
		return 1;
	}
	return 0;
}

int
store_event_history(struct store *s, int64_t account_id, const char *queue_id,
    int (*cb)(void *arg, const struct store_event *ev), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_TEXT(queue_id), P_INT(account_id) };
	struct store_event_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;
	int r;

	if (account_id == STORE_ANY_ACCOUNT)
		r = store_query(s, STORE_STMT_EVENT_HISTORY, p, 1,
		    store_event_row, &ctx, &err);
	else
		r = store_query(s, STORE_STMT_EVENT_HISTORY_ACCOUNT, p, 2,
		    store_event_row, &ctx, &err);
	if (r < 0)
		return store_fail(
		    s, error_r, "reading the message log: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_domain_is_account(struct store *s, int64_t account_id, const char *domain,
    bool *yes_r, const char **error_r)
{
	struct store_value p[] = { P_TEXT(domain) };
	struct store_int_result r;
	const char *err;

	*yes_r = false;
	if (store_query_int(s, STORE_STMT_DOMAIN_OWNER, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(
		    s, error_r, "reading sender domains: %s", err);
	*yes_r = r.rows > 0 && r.value == account_id;
	return 0;
}

int
store_events_purge(struct store *s, int64_t before_ms, int64_t max,
    int64_t *purged_r, const char **error_r)
{
	struct store_value p[] = { P_INT(before_ms), P_INT(max) };
	const char *err;

	*purged_r = 0;
	if (store_query(
		s, STORE_STMT_EVENT_PURGE, p, NELEM(p), NULL, NULL, &err) < 0)
		return store_fail(
		    s, error_r, "purging the message log: %s", err);
	*purged_r = s->driver->changes(s->conn);
	return 0;
}

int
store_set_bulk(struct store *s, bool on, uint64_t cache, uint64_t wal,
    const char **error_r)
{
	const char *err;
	int64_t kib = (int64_t)(cache / 1024), pages = (int64_t)(wal / 4096);

	if (s->in_tx)
		return store_fail(
		    s, error_r, "bulk mode cannot change inside a transaction");
	if (s->driver->bulk(s->conn, on, kib < 100 ? 100 : kib,
		pages < 100 ? 100 : pages, &err) < 0)
		return store_fail(s, error_r, "%s", err);
	return 0;
}

int
store_set_durable(struct store *s, bool durable, const char **error_r)
{
	const char *err;

	if (s->driver->set_durable(s->conn, durable, &err) < 0)
		return store_fail(s, error_r, "%s", err);
	return 0;
}

/* ---- lists ---- */

/* store_text_valid - at most max bytes, at least min, no control byte */
bool
store_text_valid(const char *str, size_t min, size_t max)
{
	size_t n = 0;

	for (; str[n] != '\0'; n++) {
		unsigned char c = (unsigned char)str[n];

		if (c < 0x20 || c == 0x7f || n >= max)
			return false;
	}
	return n >= min;
}

static bool
store_optin_valid(const char *optin)
{
	return strcmp(optin, "single") == 0 || strcmp(optin, "double") == 0;
}

int
store_list_create(struct store *s, int64_t account_id, const char *name,
    const char *description, const char *optin, int64_t *id_r,
    const char **error_r)
{
	const char *desc = description != NULL ? description : "";
	struct store_value p[] = { P_INT(account_id), P_TEXT(name),
		P_TEXT(desc), P_TEXT(optin), P_INT((int64_t)time(NULL)) };
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (!store_text_valid(name, 1, STORE_LIST_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid list name '%s': use 1-%d bytes, no control "
		    "characters",
		    store_quote(name, q), STORE_LIST_NAME_MAX);
	if (!store_text_valid(desc, 0, STORE_LIST_DESCRIPTION_MAX))
		return store_fail(s, error_r,
		    "invalid description of list '%s': at most %d bytes, no "
		    "control characters",
		    store_quote(name, q), STORE_LIST_DESCRIPTION_MAX);
	if (!store_optin_valid(optin))
		return store_fail(s, error_r,
		    "invalid opt-in '%s' of list '%s': use single or double",
		    store_quote(optin, q), name);
	ret = store_query_int(s, STORE_STMT_LIST_INSERT, p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "list '%s' already exists in this account",
		    store_quote(name, q));
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(s, error_r, "creating list '%s': %s",
		    store_quote(name, q), err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

struct store_list_ctx {
	struct store *s;
	struct store_list *out; /* find */
	bool found;
	int (*cb)(void *, const struct store_list *); /* list */
	void *arg;
	int stop;
};

static int
store_list_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_list_ctx *ctx = arg;
	struct store_list l;

	assert(ncols == 5);
	memset(&l, 0, sizeof(l));
	l.id = cols[0].i;
	store_copy(l.name, sizeof(l.name), &cols[1]);
	store_copy(l.description, sizeof(l.description), &cols[2]);
	store_copy(l.optin, sizeof(l.optin), &cols[3]);
	l.created_at = cols[4].i;
	if (ctx->out != NULL) {
		*ctx->out = l;
		ctx->found = true;
		return 1;
	}
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &l);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_list_find(struct store *s, int64_t account_id, const char *name,
    struct store_list *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(name) };
	struct store_list_ctx ctx = { .s = s, .out = out };
	const char *err;
	char q[65];

	if (store_query(s, STORE_STMT_LIST_FIND, p, NELEM(p), store_list_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "looking up list '%s': %s",
		    store_quote(name, q), err);
	if (!ctx.found)
		return store_not_found(s, error_r,
		    "no list '%s' in this account", store_quote(name, q));
	return 0;
}

int
store_list_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_list *list), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct store_list_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_query(s, STORE_STMT_LIST_LIST, p, NELEM(p), store_list_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "listing lists: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_list_delete(
    struct store *s, int64_t account_id, const char *name, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(name) };
	struct store_int_result r;
	const char *err;
	char q[65];

	if (store_query_int(s, STORE_STMT_LIST_DELETE, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r, "deleting list '%s': %s",
		    store_quote(name, q), err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no list '%s' in this account", store_quote(name, q));
	return 0;
}

/* ---- suppressions ---- */

static bool
store_reason_valid(const char *reason)
{
	static const char *const reasons[] = { "unsubscribed", "hard_bounce",
		"complaint", "manual" };

	for (size_t i = 0; i < NELEM(reasons); i++)
		if (strcmp(reason, reasons[i]) == 0)
			return true;
	return false;
}

int
store_suppression_add(struct store *s, int64_t account_id, const char *email,
    const char *reason, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(email),
		P_TEXT(reason), P_INT((int64_t)time(NULL)) };
	const char *err;
	char q[65];
	int ret;

	if (!store_email_valid(email))
		return store_fail(s, error_r, "invalid email address '%s'",
		    store_quote(email, q));
	if (!store_reason_valid(reason))
		return store_fail(s, error_r,
		    "invalid suppression reason '%s': use unsubscribed, "
		    "hard_bounce, complaint or manual",
		    store_quote(reason, q));
	ret = store_query(
	    s, STORE_STMT_SUPPR_INSERT, p, NELEM(p), NULL, NULL, &err);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(
		    s, error_r, "suppressing '%s': %s", email, err);
	s->tx_suppr_any = -1;
	return 0;
}

int
store_suppression_check(struct store *s, int64_t account_id, const char *email,
    bool *suppressed_r, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(email) };
	struct store_int_result r;
	const char *err;
	char q[65];

	*suppressed_r = false;
	if (store_query_int(s, STORE_STMT_SUPPR_CHECK, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r,
		    "checking suppression of '%s': %s", store_quote(email, q),
		    err);
	*suppressed_r = r.rows > 0;
	return 0;
}

int
store_suppression_remove(struct store *s, int64_t account_id, const char *email,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(email) };
	struct store_int_result r;
	const char *err;
	char q[65];

	if (store_query_int(s, STORE_STMT_SUPPR_DELETE, p, NELEM(p), &r, &err) <
	    0)
		return store_fail(s, error_r, "unsuppressing '%s': %s",
		    store_quote(email, q), err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "'%s' is not suppressed in this account",
		    store_quote(email, q));
	return 0;
}

/* ---- subscriptions ---- */

/* One text column of the first row of a statement. */
