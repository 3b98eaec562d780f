/*
 * test_store - the store API against a real SQLite file in a temporary
 * directory: migrations, accounts, users, credentials, domains, relay
 * networks, the policy snapshot, change detection, meta, lists,
 * subscriptions and suppressions (with segment SQL run on that schema),
 * and the walls between accounts.  Each test gets a fresh database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "contacts/segment.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *s;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *err = NULL;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/herald.db", f->dir);
	f->s = store_open(f->path, &err);
	if (f->s == NULL)
		fail_msg("store_open: %s", err);
	if (store_migrate(f->s, &err) != 0)
		fail_msg("store_migrate: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	store_close(&f->s);
	assert_null(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* sql_int - run a one-integer query directly with SQLite, bypassing us */
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

/* ---- policy snapshot collector ---- */

struct policy {
	char text[4096]; /* one line per row, in callback order */
	int accounts, domains, credentials, relays;
};

static void policy_add(struct policy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
policy_add(struct policy *p, const char *fmt, ...)
{
	size_t n = strlen(p->text);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->text + n, sizeof(p->text) - n, fmt, ap);
	va_end(ap);
}

static int
pol_account(void *arg, int64_t id, const char *name, bool disabled)
{
	struct policy *p = arg;

	p->accounts++;
	policy_add(p, "account %lld %s%s\n", (long long)id, name,
	    disabled ? " disabled" : "");
	return 0;
}

static int
pol_domain(void *arg, int64_t account_id, const char *domain)
{
	struct policy *p = arg;

	p->domains++;
	policy_add(p, "domain %lld %s\n", (long long)account_id, domain);
	return 0;
}

static int
pol_credential(void *arg, int64_t account_id, int64_t id, const char *username,
    const char *secret_hash)
{
	struct policy *p = arg;

	assert_int_equal(strlen(secret_hash), 64);
	assert_true(id > 0);
	p->credentials++;
	policy_add(p, "credential %lld %s\n", (long long)account_id, username);
	return 0;
}

static int
pol_relay(void *arg, int64_t account_id, const char *cidr)
{
	struct policy *p = arg;

	p->relays++;
	policy_add(p, "relay %lld %s\n", (long long)account_id, cidr);
	return 0;
}

static const struct store_policy_cb policy_cb = {
	.account = pol_account,
	.domain = pol_domain,
	.credential = pol_credential,
	.relay_ip = pol_relay,
};

static void
load_policy(struct store *s, struct policy *p)
{
	const char *err = NULL;

	memset(p, 0, sizeof(*p));
	if (store_policy_load(s, &policy_cb, p, &err) != 0)
		fail_msg("store_policy_load: %s", err);
}

/* ---- tests ---- */

static void
test_migrate_idempotent(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	struct stat st;
	int64_t n;

	n = sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations");
	assert_true(n >= 1);
	assert_int_equal(store_migrate(f->s, &err), 0);
	assert_int_equal(store_migrate(f->s, &err), 0);
	assert_int_equal(
	    sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations"), n);
	assert_int_equal(
	    sql_int(f->path, "SELECT MAX(version) FROM schema_migrations"), n);

	/* a second connection migrating finds nothing to do */
	struct store *s2 = store_open(f->path, &err);
	assert_non_null(s2);
	assert_int_equal(store_migrate(s2, &err), 0);
	store_close(&s2);
	assert_int_equal(
	    sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations"), n);

	/* the data survives a migrate */
	new_account(f->s, "acme");
	assert_int_equal(store_migrate(f->s, &err), 0);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM accounts"), 1);

	/* WAL, and the file is private */
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM "
			     "pragma_journal_mode WHERE journal_mode = 'wal'"),
	    1);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void
test_migrate_newer_schema(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
			     "INSERT INTO schema_migrations "
			     "VALUES (999, 'future', 0)",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_migrate(f->s, &err), -1);
	assert_non_null(strstr(err, "newer"));
}

static void
test_open_urls(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char url[160];
	struct store *s;

	snprintf(url, sizeof(url), "sqlite:%s", f->path);
	s = store_open(url, &err);
	assert_non_null(s);
	store_close(&s);
	store_close(&s); /* NULL is fine */

	s = store_open("postgresql://herald:hunter2@db/herald", &err);
	assert_null(s);
	assert_non_null(strstr(err, "not"));
	assert_null(strstr(err, "hunter2"));
	s = store_open("postgres://herald:hunter2@db/herald", &err);
	assert_null(s);
	assert_null(strstr(err, "hunter2"));

	s = store_open("mysql://root:pw@db/x", &err);
	assert_null(s);
	assert_non_null(strstr(err, "unknown"));
	assert_null(store_open("", &err));
	assert_null(store_open("sqlite:", &err));
	assert_null(store_open("/nonexistent-dir/x/herald.db", &err));
	assert_non_null(strstr(err, "/nonexistent-dir/x/herald.db"));
}

struct names {
	char list[512];
	int n;
	int stop_at;
	int stop_with;
};

static int
collect_account(void *arg, const struct store_account *a)
{
	struct names *n = arg;
	size_t len = strlen(n->list);

	snprintf(n->list + len, sizeof(n->list) - len, "%s%s", len ? "," : "",
	    a->name);
	if (++n->n == n->stop_at)
		return n->stop_with;
	return 0;
}

static void
test_accounts(void **state)
{
	struct fixture *f = *state;
	struct store_account a;
	const char *err = NULL;
	struct names names;
	int64_t id;
	char long_name[70];

	id = new_account(f->s, "zeta");
	new_account(f->s, "Acme.Corp_1-x");
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	new_account(f->s, long_name);

	assert_int_equal(store_account_find(f->s, "zeta", &a, &err), 0);
	assert_int_equal(a.id, id);
	assert_string_equal(a.name, "zeta");
	assert_false(a.disabled);
	assert_true(a.created_at > 1600000000);
	assert_int_equal(store_account_find(f->s, "nope", &a, &err), 1);
	assert_string_equal(err, "no account 'nope'");
	/* exact match: case is part of the name */
	assert_int_equal(store_account_find(f->s, "ZETA", &a, &err), 1);

	assert_int_equal(store_account_create(f->s, "zeta", NULL, &err), -1);
	assert_string_equal(err, "account 'zeta' already exists");

	const char *bad[] = { "", "a b", "caf\xc3\xa9", "x/y", "a;DROP",
		"tab\t", "quo'te", "new\nline" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		    store_account_create(f->s, bad[i], NULL, &err), -1);
		assert_non_null(strstr(err, "invalid account name"));
		assert_null(strchr(err, '\n'));
		assert_false(store_account_name_valid(bad[i]));
	}
	long_name[64] = 'a';
	long_name[65] = '\0';
	assert_int_equal(store_account_create(f->s, long_name, NULL, &err), -1);

	memset(&names, 0, sizeof(names));
	assert_int_equal(
	    store_account_list(f->s, collect_account, &names, &err), 0);
	assert_int_equal(names.n, 3);
	assert_non_null(strstr(names.list, "Acme.Corp_1-x,"));
	assert_non_null(strstr(names.list, ",zeta"));

	/* a callback stops the list and its value comes back */
	memset(&names, 0, sizeof(names));
	names.stop_at = 1;
	names.stop_with = 7;
	assert_int_equal(
	    store_account_list(f->s, collect_account, &names, &err), 7);
	assert_int_equal(names.n, 1);
	memset(&names, 0, sizeof(names));
	names.stop_at = 2;
	names.stop_with = -1;
	assert_int_equal(
	    store_account_list(f->s, collect_account, &names, &err), -1);
	assert_non_null(err);

	assert_int_equal(store_account_set_disabled(f->s, id, true, &err), 0);
	assert_int_equal(store_account_find(f->s, "zeta", &a, &err), 0);
	assert_true(a.disabled);
	assert_int_equal(store_account_set_disabled(f->s, 9999, true, &err), 1);
}

static void
test_users(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	int64_t b = new_account(f->s, "beta");
	int64_t uid = 0;

	assert_int_equal(store_user_create(f->s, a, "ann@acme.test",
			     "correct horse", "admin", &uid, &err),
	    0);
	assert_true(uid > 0);
	assert_int_equal(
	    store_user_verify(f->s, a, "ann@acme.test", "correct horse", &err),
	    0);
	assert_int_equal(
	    store_user_verify(f->s, a, "ann@acme.test", "correct horsf", &err),
	    1);
	assert_int_equal(
	    store_user_verify(f->s, a, "ann@acme.test", "", &err), 1);
	assert_int_equal(
	    store_user_verify(f->s, a, "bob@acme.test", "correct horse", &err),
	    1);
	/* the wall: the same user through another account is unknown */
	assert_int_equal(
	    store_user_verify(f->s, b, "ann@acme.test", "correct horse", &err),
	    1);

	/* the same email may exist in another account, not twice in one */
	assert_int_equal(store_user_create(f->s, b, "ann@acme.test", "pw",
			     "member", NULL, &err),
	    0);
	assert_int_equal(store_user_create(f->s, a, "ann@acme.test", "pw",
			     "member", NULL, &err),
	    -1);
	assert_non_null(strstr(err, "already exists"));
	assert_int_equal(
	    store_user_verify(f->s, b, "ann@acme.test", "pw", &err), 0);
	assert_int_equal(
	    store_user_verify(f->s, a, "ann@acme.test", "pw", &err), 1);

	assert_int_equal(
	    store_user_create(f->s, a, "no-at-sign", "pw", "admin", NULL, &err),
	    -1);
	assert_int_equal(
	    store_user_create(f->s, a, "a b@x", "pw", "admin", NULL, &err), -1);
	assert_int_equal(store_user_create(f->s, a, "c@acme.test", "pw",
			     "Admin!", NULL, &err),
	    -1);
	assert_int_equal(
	    store_user_create(f->s, a, "c@acme.test", "", "admin", NULL, &err),
	    -1);
	assert_int_equal(store_user_create(f->s, 4242, "c@acme.test", "pw",
			     "admin", NULL, &err),
	    -1);
	assert_non_null(strstr(err, "no account"));

	/* stored as argon2id, never in clear */
	assert_int_equal(
	    sql_int(f->path,
		"SELECT COUNT(*) FROM users WHERE "
		"password_hash LIKE '$argon2id$v=19$m=65536,t=2,p=1$%'"),
	    2);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM users WHERE "
			     "instr(password_hash, 'horse') > 0"),
	    0);
}

struct users_seen {
	struct store *s; /* to try reentry from the callback; may be NULL */
	int n;
	int stop_at;
	int stop_with;
	char list[256]; /* "email:role,..." */
	int64_t ids[8];
	int64_t created_at;
};

static int
collect_user(void *arg, const struct store_user *u)
{
	struct users_seen *seen = arg;
	size_t len = strlen(seen->list);
	const char *err = NULL;

	snprintf(seen->list + len, sizeof(seen->list) - len, "%s%s:%s",
	    len ? "," : "", u->email, u->role);
	if (seen->n < 8)
		seen->ids[seen->n] = u->id;
	seen->created_at = u->created_at;
	if (seen->s != NULL) {
		/* calling the same store from its own callback is refused */
		assert_int_equal(
		    store_user_delete(seen->s, 1, u->id, &err), -1);
		assert_non_null(strstr(err, "callback"));
	}
	if (++seen->n == seen->stop_at)
		return seen->stop_with;
	return 0;
}

static void
test_user_list_delete(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	int64_t b = new_account(f->s, "beta");
	int64_t zed, ann, bob, other;
	struct users_seen seen;

	assert_int_equal(store_user_create(f->s, a, "zed@acme.test", "pw",
			     "member", &zed, &err),
	    0);
	assert_int_equal(store_user_create(f->s, a, "ann@acme.test", "pw",
			     "admin", &ann, &err),
	    0);
	assert_int_equal(store_user_create(f->s, a, "bob@acme.test", "pw",
			     "member", &bob, &err),
	    0);
	assert_int_equal(store_user_create(f->s, b, "ann@acme.test", "pw",
			     "admin", &other, &err),
	    0);

	/* by email, only the account's own users */
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(
	    store_user_list(f->s, a, collect_user, &seen, &err), 0);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.list,
	    "ann@acme.test:admin,bob@acme.test:member,zed@acme.test:member");
	assert_true(
	    seen.ids[0] == ann && seen.ids[1] == bob && seen.ids[2] == zed);
	assert_true(seen.created_at > 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(
	    store_user_list(f->s, b, collect_user, &seen, &err), 0);
	assert_string_equal(seen.list, "ann@acme.test:admin");
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(
	    store_user_list(f->s, 4242, collect_user, &seen, &err), 0);
	assert_int_equal(seen.n, 0);

	/* the callback stops the list; -1 is an error */
	memset(&seen, 0, sizeof(seen));
	seen.stop_at = 2;
	seen.stop_with = 7;
	assert_int_equal(
	    store_user_list(f->s, a, collect_user, &seen, &err), 7);
	assert_int_equal(seen.n, 2);
	memset(&seen, 0, sizeof(seen));
	seen.stop_at = 1;
	seen.stop_with = -1;
	assert_int_equal(
	    store_user_list(f->s, a, collect_user, &seen, &err), -1);
	assert_non_null(strstr(err, "stopped by the caller"));
	memset(&seen, 0, sizeof(seen));
	seen.s = f->s;
	assert_int_equal(
	    store_user_list(f->s, a, collect_user, &seen, &err), 0);
	assert_int_equal(seen.n, 3);

	/* the wall: another account's user is not found, and stays */
	assert_int_equal(store_user_delete(f->s, a, other, &err), 1);
	assert_non_null(strstr(err, "no user"));
	assert_int_equal(store_user_delete(f->s, b, ann, &err), 1);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM users"), 4);
	assert_int_equal(
	    store_user_verify(f->s, b, "ann@acme.test", "pw", &err), 0);

	assert_int_equal(store_user_delete(f->s, a, ann, &err), 0);
	assert_int_equal(store_user_delete(f->s, a, ann, &err), 1);
	assert_int_equal(store_user_delete(f->s, a, 0, &err), 1);
	assert_int_equal(
	    store_user_verify(f->s, a, "ann@acme.test", "pw", &err), 1);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(
	    store_user_list(f->s, a, collect_user, &seen, &err), 0);
	assert_string_equal(
	    seen.list, "bob@acme.test:member,zed@acme.test:member");
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM users"), 3);
}

struct creds {
	int n;
	int revoked;
	char last_hash[65];
	int64_t account_id;
};

static int
collect_cred(void *arg, const struct store_credential *c)
{
	struct creds *cr = arg;

	cr->n++;
	if (c->revoked_at != 0)
		cr->revoked++;
	assert_int_equal(c->account_id, cr->account_id);
	assert_true(c->created_at > 0);
	snprintf(cr->last_hash, sizeof(cr->last_hash), "%s", c->secret_hash);
	return 0;
}

static void
test_secret_hash(void **state)
{
	unsigned char h[32];
	char hex[65], out[65];
	const char *key = "herald-smtp-credential-v1";

	(void)state;
	/* independently: keyed BLAKE2b-256 of the secret, as hex */
	crypto_generichash(h, sizeof(h), (const unsigned char *)"s3cret", 6,
	    (const unsigned char *)key, strlen(key));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	store_secret_hash("s3cret", out);
	assert_string_equal(out, hex);
	store_secret_hash("s3cres", hex);
	assert_string_not_equal(out, hex);
	/* not the unkeyed hash */
	crypto_generichash(
	    h, sizeof(h), (const unsigned char *)"s3cret", 6, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	assert_string_not_equal(out, hex);
}

static void
test_credentials(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	int64_t b = new_account(f->s, "beta");
	char h1[65], h2[65], h3[65];
	struct creds cr;
	struct policy p;
	int64_t id = 0;

	store_secret_hash("secret-one", h1);
	store_secret_hash("secret-two", h2);
	store_secret_hash("secret-three", h3);
	assert_int_equal(
	    store_credential_create(f->s, a, "app1", h1, &id, &err), 0);
	assert_true(id > 0);
	assert_int_equal(
	    store_credential_create(f->s, a, "app2", h2, NULL, &err), 0);
	/* usernames are global: another account cannot take one */
	assert_int_equal(
	    store_credential_create(f->s, b, "app1", h3, NULL, &err), -1);
	assert_string_equal(err, "SMTP username 'app1' is already taken");
	assert_null(strstr(err, "acme"));
	assert_int_equal(
	    store_credential_create(f->s, b, "beta-app", h3, NULL, &err), 0);

	/* bad input */
	assert_int_equal(store_credential_create(
			     f->s, a, "app3", "secret-in-clear", NULL, &err),
	    -1);
	assert_int_equal(
	    store_credential_create(f->s, a, "app 3", h3, NULL, &err), -1);
	assert_int_equal(
	    store_credential_create(f->s, a, "", h3, NULL, &err), -1);
	assert_int_equal(
	    store_credential_create(f->s, 777, "app4", h3, NULL, &err), -1);
	assert_non_null(strstr(err, "no account"));

	memset(&cr, 0, sizeof(cr));
	cr.account_id = a;
	assert_int_equal(
	    store_credential_list(f->s, a, collect_cred, &cr, &err), 0);
	assert_int_equal(cr.n, 2);
	assert_int_equal(cr.revoked, 0);
	assert_string_equal(cr.last_hash, h2);

	/* the wall: B cannot revoke A's credential, and A's still works */
	assert_int_equal(store_credential_revoke(f->s, b, "app1", &err), 1);
	assert_non_null(strstr(err, "no active SMTP credential"));
	load_policy(f->s, &p);
	assert_int_equal(p.credentials, 3);

	assert_int_equal(store_credential_revoke(f->s, a, "app1", &err), 0);
	assert_int_equal(store_credential_revoke(f->s, a, "app1", &err), 1);
	assert_int_equal(store_credential_revoke(f->s, a, "nope", &err), 1);

	memset(&cr, 0, sizeof(cr));
	cr.account_id = a;
	assert_int_equal(
	    store_credential_list(f->s, a, collect_cred, &cr, &err), 0);
	assert_int_equal(cr.n, 2);
	assert_int_equal(cr.revoked, 1);

	load_policy(f->s, &p);
	assert_int_equal(p.credentials, 2);
	assert_null(strstr(p.text, "app1"));
	assert_non_null(strstr(p.text, "app2"));
	assert_non_null(strstr(p.text, "beta-app"));
	/* a revoked name is never reused */
	assert_int_equal(
	    store_credential_create(f->s, a, "app1", h3, NULL, &err), -1);

	/* secrets are not in the database */
	assert_int_equal(
	    sql_int(f->path,
		"SELECT COUNT(*) FROM "
		"smtp_credentials WHERE instr(secret_hash, 'secret') > 0"),
	    0);
}

struct domains {
	char list[256];
};

static int
collect_domain(void *arg, const char *domain, int64_t created)
{
	struct domains *d = arg;
	size_t len = strlen(d->list);

	assert_true(created > 0);
	snprintf(d->list + len, sizeof(d->list) - len, "%s%s", len ? "," : "",
	    domain);
	return 0;
}

static void
test_domains(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	int64_t b = new_account(f->s, "beta");
	struct domains d;

	assert_int_equal(store_domain_add(f->s, a, "example.com", &err), 0);
	assert_int_equal(
	    store_domain_add(f->s, a, "xn--bcher-kva.example", &err), 0);
	assert_int_equal(store_domain_add(f->s, a, "example.com", &err), -1);
	assert_string_equal(err,
	    "domain 'example.com' is already in this "
	    "account");
	/* one domain, one account; the owner is not named */
	assert_int_equal(store_domain_add(f->s, b, "example.com", &err), -1);
	assert_string_equal(err,
	    "domain 'example.com' belongs to another "
	    "account");
	assert_int_equal(store_domain_add(f->s, b, "sub.example.com", &err), 0);
	assert_int_equal(
	    store_domain_add(f->s, 999, "other.example", &err), -1);
	assert_non_null(strstr(err, "no account"));

	const char *bad[] = { "", "Example.com", "example.com.", "-a.com",
		"a-.com", "a..com", ".a.com", "a_b.com",
		"b\xc3\xbc"
		"cher.de",
		"a com",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aa"
		".com" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(store_domain_add(f->s, a, bad[i], &err), -1);
		assert_non_null(strstr(err, "invalid domain"));
	}

	memset(&d, 0, sizeof(d));
	assert_int_equal(
	    store_domain_list(f->s, a, collect_domain, &d, &err), 0);
	assert_string_equal(d.list, "example.com,xn--bcher-kva.example");
	memset(&d, 0, sizeof(d));
	assert_int_equal(
	    store_domain_list(f->s, b, collect_domain, &d, &err), 0);
	assert_string_equal(d.list, "sub.example.com");

	/* B cannot remove A's domain; after A removes it B may add it */
	assert_int_equal(store_domain_remove(f->s, b, "example.com", &err), 1);
	assert_int_equal(store_domain_remove(f->s, a, "example.com", &err), 0);
	assert_int_equal(store_domain_remove(f->s, a, "example.com", &err), 1);
	assert_int_equal(store_domain_add(f->s, b, "example.com", &err), 0);
}

static int
collect_relay(void *arg, const char *cidr)
{
	struct domains *d = arg;
	size_t len = strlen(d->list);

	snprintf(
	    d->list + len, sizeof(d->list) - len, "%s%s", len ? "," : "", cidr);
	return 0;
}

static void
test_cidr_canonical(void **state)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
		{ "1.2.3.4", "1.2.3.4/32" },
		{ "1.2.3.4/32", "1.2.3.4/32" },
		{ "1.2.3.0/24", "1.2.3.0/24" },
		{ "10.0.0.0/8", "10.0.0.0/8" },
		{ "192.168.128.0/17", "192.168.128.0/17" },
		{ "::1", "::1/128" },
		{ "2001:db8::/32", "2001:db8::/32" },
		{ "2001:DB8:0:0::/32", "2001:db8::/32" },
		{ "2001:0db8:0000:0000:0000:0000:0000:0001",
		    "2001:db8::1/128" },
		{ "::ffff:192.0.2.1", "::ffff:192.0.2.1/128" },
		{ "1.2.3.4/24", NULL }, /* host bits set */
		{ "192.168.129.0/17", NULL },
		{ "1.2.3.4/33", NULL },
		{ "::1/129", NULL },
		{ "1.2.3.0/024", NULL },
		{ "1.2.3.0/", NULL },
		{ "1.2.3.0/+24", NULL },
		{ "1.2.3.0/24/1", NULL },
		{ "0.0.0.0/0", NULL }, /* an open relay */
		{ "10.0.0.0/7", NULL },
		{ "::/0", NULL },
		{ "2000::/3", NULL },
		{ "1.2.3", NULL },
		{ "01.2.3.4", NULL },
		{ "1.2.3.256", NULL },
		{ "1.2.3.4 ", NULL },
		{ "example.com", NULL },
		{ "fe80::1%eth0", NULL },
		{ "", NULL },
		{ "/24", NULL },
	};
	char out[STORE_CIDR_MAX], err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r =
		    store_cidr_canonical(cases[i].in, out, err, sizeof(err));

		if (cases[i].out == NULL) {
			if (r != -1)
				fail_msg(
				    "'%s' accepted as '%s'", cases[i].in, out);
			assert_true(strlen(err) > 0);
		} else {
			if (r != 0)
				fail_msg("'%s' refused: %s", cases[i].in, err);
			assert_string_equal(out, cases[i].out);
		}
	}
	assert_int_equal(
	    store_cidr_canonical("1.2.3.4/24", out, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "1.2.3.0/24"));
}

static void
test_relay_ips(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	int64_t b = new_account(f->s, "beta");
	struct domains d;

	assert_int_equal(store_relay_ip_add(f->s, a, "192.0.2.0/24", &err), 0);
	assert_int_equal(store_relay_ip_add(f->s, a, "2001:DB8::/32", &err), 0);
	assert_int_equal(store_relay_ip_add(f->s, a, "127.0.0.1", &err), 0);
	/* the same network in another spelling is a duplicate */
	assert_int_equal(store_relay_ip_add(f->s, a, "127.0.0.1/32", &err), -1);
	assert_non_null(strstr(err, "already"));
	/* but another account may list it */
	assert_int_equal(store_relay_ip_add(f->s, b, "127.0.0.1", &err), 0);
	assert_int_equal(store_relay_ip_add(f->s, a, "192.0.2.1/24", &err), -1);
	assert_non_null(strstr(err, "invalid relay network"));
	assert_int_equal(store_relay_ip_add(f->s, a, "0.0.0.0/0", &err), -1);
	assert_int_equal(
	    store_relay_ip_add(f->s, 31337, "192.0.2.7", &err), -1);

	memset(&d, 0, sizeof(d));
	assert_int_equal(
	    store_relay_ip_list(f->s, a, collect_relay, &d, &err), 0);
	assert_string_equal(d.list, "127.0.0.1/32,192.0.2.0/24,2001:db8::/32");

	assert_int_equal(
	    store_relay_ip_remove(f->s, b, "192.0.2.0/24", &err), 1);
	assert_int_equal(
	    store_relay_ip_remove(f->s, a, "2001:db8:0::/32", &err), 0);
	assert_int_equal(
	    store_relay_ip_remove(f->s, a, "2001:db8::/32", &err), 1);
	assert_int_equal(store_relay_ip_remove(f->s, a, "bogus", &err), -1);
	memset(&d, 0, sizeof(d));
	assert_int_equal(
	    store_relay_ip_list(f->s, a, collect_relay, &d, &err), 0);
	assert_string_equal(d.list, "127.0.0.1/32,192.0.2.0/24");
}

static void
test_policy_load(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	int64_t b = new_account(f->s, "beta");
	char h[65], expect[1024];
	struct policy p;

	load_policy(f->s, &p);
	assert_int_equal(p.accounts, 2);
	assert_int_equal(p.domains + p.credentials + p.relays, 0);

	store_secret_hash("x", h);
	assert_int_equal(store_domain_add(f->s, a, "acme.example", &err), 0);
	assert_int_equal(store_domain_add(f->s, b, "beta.example", &err), 0);
	assert_int_equal(
	    store_credential_create(f->s, a, "acme-app", h, NULL, &err), 0);
	assert_int_equal(
	    store_credential_create(f->s, b, "beta-app", h, NULL, &err), 0);
	assert_int_equal(
	    store_relay_ip_add(f->s, b, "198.51.100.0/24", &err), 0);
	assert_int_equal(store_account_set_disabled(f->s, b, true, &err), 0);

	load_policy(f->s, &p);
	snprintf(expect, sizeof(expect),
	    "account %lld acme\n"
	    "account %lld beta disabled\n"
	    "domain %lld acme.example\n"
	    "domain %lld beta.example\n"
	    "credential %lld acme-app\n"
	    "credential %lld beta-app\n"
	    "relay %lld 198.51.100.0/24\n",
	    (long long)a, (long long)b, (long long)a, (long long)b,
	    (long long)a, (long long)b, (long long)b);
	assert_string_equal(p.text, expect);

	/* NULL callbacks skip that kind of row */
	struct store_policy_cb only_domains = { .domain = pol_domain };
	memset(&p, 0, sizeof(p));
	assert_int_equal(store_policy_load(f->s, &only_domains, &p, &err), 0);
	assert_int_equal(p.domains, 2);
	assert_int_equal(p.accounts, 0);
}

static int
reenter_cb(void *arg, const struct store_account *a)
{
	struct fixture *f = arg;
	struct store_account other;
	const char *err = NULL;

	/* calling the same store from its own callback is refused */
	assert_int_equal(store_account_find(f->s, a->name, &other, &err), -1);
	assert_non_null(strstr(err, "callback"));
	return 0;
}

static void
test_reentry_refused(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;

	new_account(f->s, "acme");
	assert_int_equal(store_account_list(f->s, reenter_cb, f, &err), 0);
	/* and the store works again afterwards */
	new_account(f->s, "beta");
}

static void
test_changed(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	struct store *s2;
	bool changed = true;

	s2 = store_open(f->path, &err);
	assert_non_null(s2);
	assert_int_equal(store_changed(f->s, &changed, &err), 0);
	assert_false(changed);

	/* a commit through another connection is seen, once */
	new_account(s2, "acme");
	assert_int_equal(store_changed(f->s, &changed, &err), 0);
	assert_true(changed);
	assert_int_equal(store_changed(f->s, &changed, &err), 0);
	assert_false(changed);

	/* our own commits are not "changes by others" */
	new_account(f->s, "beta");
	assert_int_equal(store_changed(f->s, &changed, &err), 0);
	assert_false(changed);
	/* but the other connection sees them */
	assert_int_equal(store_changed(s2, &changed, &err), 0);
	assert_true(changed);

	store_close(&s2);
}

static void
test_meta(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	char *v = (char *)"sentinel";

	assert_int_equal(store_meta_get(f->s, "node.id", &v, &err), 1);
	assert_null(v);
	assert_int_equal(store_meta_set(f->s, "node.id", "n1", &err), 0);
	assert_int_equal(store_meta_get(f->s, "node.id", &v, &err), 0);
	assert_string_equal(v, "n1");
	free(v);
	assert_int_equal(store_meta_set(f->s, "node.id", "", &err), 0);
	assert_int_equal(store_meta_get(f->s, "node.id", &v, &err), 0);
	assert_string_equal(v, "");
	free(v);
	assert_int_equal(store_meta_set(f->s, "", "x", &err), -1);
	assert_int_equal(store_meta_set(f->s, "bad key", "x", &err), -1);
}

struct ev_list {
	char lines[8][160];
	int n;
};

static int
collect_event(void *arg, const struct store_event *ev)
{
	struct ev_list *l = arg;

	if (l->n < 8)
		snprintf(l->lines[l->n++], sizeof(l->lines[0]),
		    "%lld %s %d %s %s %d %s %s", (long long)ev->account_id,
		    ev->queue_id, ev->rcpt_idx, ev->recipient, ev->state,
		    ev->attempt, ev->relay, ev->reply);
	return 0;
}

/* The message log: a batch is all or nothing, history is per account
 * unless the operator asks, old events are purged oldest first. */
static void
test_delivery_events(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	struct ev_list l;
	int64_t purged;
	struct store_event ev[3] = {
		{ 1, "k0tg000000000001", 0, "a@x.test", "queued", 1000, 0, 0,
		    NULL, NULL, NULL },
		{ 1, "k0tg000000000001", 0, "a@x.test", "deferred", 2000, 1, 60,
		    "mx[192.0.2.1]:25", "451 4.3.0 later", "" },
		{ 2, "k0tg000000000002", 1, "b@y.test", "delivered", 3000, 1, 0,
		    "mx[192.0.2.2]:25", "250 ok", "TLSv1.3" },
	};

	assert_int_equal(store_events_add(f->s, ev, 3, &err), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_event_history(f->s, STORE_ANY_ACCOUNT,
			     "k0tg000000000001", collect_event, &l, &err),
	    0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.lines[0],
	    "1 k0tg000000000001 0 a@x.test "
	    "queued 0  ");
	assert_string_equal(l.lines[1],
	    "1 k0tg000000000001 0 a@x.test "
	    "deferred 1 mx[192.0.2.1]:25 451 4.3.0 "
	    "later");
	/* another account sees nothing of it */
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_event_history(f->s, 2, "k0tg000000000001",
			     collect_event, &l, &err),
	    0);
	assert_int_equal(l.n, 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_event_history(f->s, 2, "k0tg000000000002",
			     collect_event, &l, &err),
	    0);
	assert_int_equal(l.n, 1);
	/* purge: older than 2500 ms, one at a time */
	assert_int_equal(store_events_purge(f->s, 2500, 1, &purged, &err), 0);
	assert_int_equal(purged, 1);
	assert_int_equal(store_events_purge(f->s, 2500, 10, &purged, &err), 0);
	assert_int_equal(purged, 1);
	assert_int_equal(store_events_purge(f->s, 2500, 10, &purged, &err), 0);
	assert_int_equal(purged, 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_event_history(f->s, STORE_ANY_ACCOUNT,
			     "k0tg000000000002", collect_event, &l, &err),
	    0);
	assert_int_equal(l.n, 1);
}

static void
test_sql_injection_is_data(void **state)
{
	struct fixture *f = *state;
	const char *err = NULL;
	int64_t a = new_account(f->s, "acme");
	char *v = NULL;

	assert_int_equal(
	    store_meta_set(f->s, "k'--", "'); DROP TABLE accounts; --", &err),
	    0);
	assert_int_equal(store_meta_get(f->s, "k'--", &v, &err), 0);
	assert_string_equal(v, "'); DROP TABLE accounts; --");
	free(v);
	assert_int_equal(
	    store_user_verify(f->s, a, "x' OR '1'='1", "x' OR '1'='1", &err),
	    1);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM accounts"), 1);
}

/* child_work - one process: open, migrate, create accounts; exit status */
static int
child_work(const char *path, int n)
{
	const char *err = NULL;
	struct store *s = store_open(path, &err);
	char name[32];

	if (s == NULL || store_migrate(s, &err) != 0) {
		fprintf(stderr, "child %d: %s\n", n, err);
		return 1;
	}
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "p%d-%d", n, i);
		if (store_account_create(s, name, NULL, &err) != 0) {
			fprintf(stderr, "child %d: %s\n", n, err);
			return 1;
		}
	}
	store_close(&s);
	return 0;
}

static void
test_concurrent_processes(void **state)
{
	struct fixture *f = *state;
	char path[160];
	pid_t pids[4];
	int status;

	/* a fresh file: the processes race to create and migrate it too */
	snprintf(path, sizeof(path), "%s/race.db", f->dir);
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(child_work(path, i));
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(sql_int(path, "SELECT COUNT(*) FROM accounts"), 100);
	assert_int_equal(
	    sql_int(path, "SELECT COUNT(*) FROM schema_migrations"),
	    sql_int(f->path, "SELECT COUNT(*) FROM schema_migrations"));
}

/* ---- lists, contacts, subscriptions, suppressions ---- */

/* sql_exec - run SQL directly with SQLite (foreign keys on), bypassing us */
static void
sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static int64_t
new_list(struct store *s, int64_t account, const char *name, const char *optin)
{
	const char *err = NULL;
	int64_t id = 0;

	if (store_list_create(s, account, name, "", optin, &id, &err) != 0)
		fail_msg("store_list_create(%s): %s", name, err);
	assert_true(id > 0);
	return id;
}

static int
count_list(void *arg, const struct store_list *l)
{
	int *n = arg;

	assert_true(l->id > 0 && l->name[0] != '\0');
	(*n)++;
	return 0;
}

static enum store_subscribe_result
subscribe(struct store *s, int64_t account, int64_t list, const char *email,
    const char *name, const struct store_consent *consent,
    enum store_subscribe_mode mode)
{
	enum store_subscribe_result res = -1;
	const char *err = NULL;

	if (store_contact_subscribe(
		s, account, list, email, name, consent, mode, &res, &err) != 0)
		fail_msg("store_contact_subscribe(%s): %s", email, err);
	return res;
}

static void
test_lists(void **state)
{
	struct fixture *f = *state;
	int64_t a = new_account(f->s, "a"), b = new_account(f->s, "b");
	int64_t news = 0;
	struct store_list l;
	const char *err = NULL;
	int n = 0;

	assert_int_equal(store_list_create(f->s, a, "News", "Weekly news",
			     "double", &news, &err),
	    0);
	new_list(f->s, a, "Only A", "single");
	new_list(f->s, b, "News", "single"); /* names are per account */
	assert_int_equal(
	    store_list_create(f->s, a, "News", NULL, "single", NULL, &err), -1);
	assert_non_null(strstr(err, "'News' already exists"));
	assert_int_equal(
	    store_list_create(f->s, a, "X", NULL, "triple", NULL, &err), -1);
	assert_non_null(strstr(err, "'triple'"));
	assert_int_equal(
	    store_list_create(f->s, a, "", NULL, "single", NULL, &err), -1);
	assert_int_equal(
	    store_list_create(f->s, a, "a\nb", NULL, "single", NULL, &err), -1);
	assert_int_equal(
	    store_list_create(f->s, 9999, "X", NULL, "single", NULL, &err), -1);
	assert_non_null(strstr(err, "no account"));

	assert_int_equal(store_list_find(f->s, a, "News", &l, &err), 0);
	assert_int_equal(l.id, news);
	assert_string_equal(l.description, "Weekly news");
	assert_string_equal(l.optin, "double");
	/* b has its own "News"; a's "Only A" does not exist for b */
	assert_int_equal(store_list_find(f->s, b, "News", &l, &err), 0);
	assert_true(l.id != news);
	assert_string_equal(l.optin, "single");
	assert_int_equal(store_list_find(f->s, b, "Only A", &l, &err), 1);
	assert_non_null(strstr(err, "no list 'Only A'"));
	assert_int_equal(store_list_delete(f->s, b, "Only A", &err), 1);
	assert_int_equal(store_list_find(f->s, a, "Only A", &l, &err), 0);

	assert_int_equal(store_list_list(f->s, a, count_list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_list_delete(f->s, a, "Only A", &err), 0);
	assert_int_equal(store_list_delete(f->s, a, "Only A", &err), 1);
	n = 0;
	assert_int_equal(store_list_list(f->s, a, count_list, &n, &err), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(store_list_list(f->s, b, count_list, &n, &err), 0);
	assert_int_equal(n, 1);
}

static void
test_subscribe_modes(void **state)
{
	struct fixture *f = *state;
	int64_t a = new_account(f->s, "a"), b = new_account(f->s, "b");
	int64_t single = new_list(f->s, a, "Single", "single");
	int64_t dbl = new_list(f->s, a, "Double", "double");
	int64_t other = new_list(f->s, b, "B list", "single");
	struct store_consent consent = { "form", "192.0.2.1", 1700000000 };
	enum store_subscribe_result res;
	const char *err = NULL;

	assert_int_equal(subscribe(f->s, a, single, "x@example.com", "X", NULL,
			     STORE_SUBSCRIBE_ADD),
	    STORE_SUBSCRIBE_CREATED);
	assert_int_equal(subscribe(f->s, a, single, "x@example.com", "New X",
			     NULL, STORE_SUBSCRIBE_ADD),
	    STORE_SUBSCRIBE_SKIPPED);
	assert_int_equal(subscribe(f->s, a, single, "x@example.com", "X", NULL,
			     STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_UNCHANGED);
	assert_int_equal(subscribe(f->s, a, single, "x@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_UPDATE),
	    STORE_SUBSCRIBE_UNCHANGED);
	assert_int_equal(subscribe(f->s, a, single, "x@example.com", "New X",
			     NULL, STORE_SUBSCRIBE_UPDATE),
	    STORE_SUBSCRIBE_UPDATED);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM contacts"
			     " WHERE name = 'New X'"),
	    1);
	/* update only: an unknown address is not added */
	assert_int_equal(subscribe(f->s, a, single, "y@example.com", "Y", NULL,
			     STORE_SUBSCRIBE_UPDATE),
	    STORE_SUBSCRIBE_SKIPPED);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM contacts"), 1);

	/* double opt-in: unconfirmed, unless there is a consent record */
	assert_int_equal(subscribe(f->s, a, dbl, "x@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_CREATED);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM subscriptions"
			     " WHERE status = 'unconfirmed'"),
	    1);
	assert_int_equal(subscribe(f->s, a, dbl, "z@example.com", NULL,
			     &consent, STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_CREATED);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM subscriptions"
			     " WHERE status = 'subscribed' AND consent_source"
			     " = 'form' AND consent_ip = '192.0.2.1' AND"
			     " consent_at = 1700000000"),
	    1);
	/* one contact for x, on two lists */
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM contacts"), 2);

	/* another account's list is "not found", and nothing is written */
	assert_int_equal(
	    store_contact_subscribe(f->s, a, other, "w@example.com", NULL, NULL,
		STORE_SUBSCRIBE_UPSERT, &res, &err),
	    1);
	assert_non_null(strstr(err, "no list with id"));
	assert_int_equal(
	    store_contact_subscribe(f->s, b, single, "w@example.com", NULL,
		NULL, STORE_SUBSCRIBE_UPSERT, &res, &err),
	    1);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM contacts"), 2);

	assert_int_equal(store_contact_subscribe(f->s, a, single, "no-at", NULL,
			     NULL, STORE_SUBSCRIBE_ADD, &res, &err),
	    -1);
	assert_non_null(strstr(err, "'no-at'"));
	assert_int_equal(
	    store_contact_subscribe(f->s, a, single, "x@example.com",
		"bad\x01name", NULL, STORE_SUBSCRIBE_ADD, &res, &err),
	    -1);
	consent.source = "";
	assert_int_equal(
	    store_contact_subscribe(f->s, a, single, "x@example.com", NULL,
		&consent, STORE_SUBSCRIBE_ADD, &res, &err),
	    -1);
	/* the store is still usable: no transaction was left open */
	assert_int_equal(subscribe(f->s, a, single, "v@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_ADD),
	    STORE_SUBSCRIBE_CREATED);
}

static void
test_suppressions(void **state)
{
	struct fixture *f = *state;
	int64_t a = new_account(f->s, "a"), b = new_account(f->s, "b");
	int64_t list = new_list(f->s, a, "L", "single");
	struct store_consent consent = { "form", NULL, 0 };
	const char *err = NULL;
	bool sup = false;

	assert_int_equal(
	    store_suppression_add(f->s, a, "x@example.com", "complaint", &err),
	    0);
	assert_int_equal(
	    store_suppression_add(f->s, a, "x@example.com", "manual", &err), 0);
	assert_int_equal(
	    store_suppression_add(f->s, a, "x@example.com", "bored", &err), -1);
	assert_non_null(strstr(err, "'bored'"));
	assert_int_equal(
	    store_suppression_add(f->s, a, "nobody", "manual", &err), -1);
	assert_int_equal(
	    store_suppression_check(f->s, a, "x@example.com", &sup, &err), 0);
	assert_true(sup);
	assert_int_equal(
	    store_suppression_check(f->s, b, "x@example.com", &sup, &err), 0);
	assert_false(sup);

	/* suppressed: no subscription, no contact, in any mode */
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_SUPPRESSED);
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_ADD),
	    STORE_SUBSCRIBE_SUPPRESSED);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM contacts"), 0);
	/* an explicit consent lifts the block; the suppression stays */
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL,
			     &consent, STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_CREATED);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM subscriptions WHERE"
			     " status = 'subscribed' AND consent_ip IS NULL"
			     " AND consent_at > 0"),
	    1);
	assert_int_equal(
	    store_suppression_check(f->s, a, "x@example.com", &sup, &err), 0);
	assert_true(sup);

	assert_int_equal(
	    store_suppression_remove(f->s, b, "x@example.com", &err), 1);
	assert_int_equal(
	    store_suppression_remove(f->s, a, "x@example.com", &err), 0);
	assert_int_equal(
	    store_suppression_remove(f->s, a, "x@example.com", &err), 1);
	assert_non_null(strstr(err, "not suppressed"));
	assert_int_equal(
	    store_suppression_check(f->s, a, "x@example.com", &sup, &err), 0);
	assert_false(sup);
}

static void
test_unsubscribed_stays(void **state)
{
	struct fixture *f = *state;
	int64_t a = new_account(f->s, "a");
	int64_t list = new_list(f->s, a, "L", "single");
	struct store_consent consent = { "import:consented.csv", NULL, 0 };

	assert_int_equal(subscribe(f->s, a, list, "x@example.com", "X", NULL,
			     STORE_SUBSCRIBE_ADD),
	    STORE_SUBSCRIBE_CREATED);
	sql_exec(f->path, "UPDATE subscriptions SET status = 'unsubscribed'");
	/* a re-import without consent changes nothing, not even the name */
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", "Y", NULL,
			     STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_REFUSED);
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_UPDATE),
	    STORE_SUBSCRIBE_REFUSED);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM subscriptions"
			     " WHERE status = 'unsubscribed'"),
	    1);
	assert_int_equal(
	    sql_int(f->path, "SELECT COUNT(*) FROM contacts WHERE name = 'X'"),
	    1);
	sql_exec(f->path, "UPDATE subscriptions SET status = 'bounced'");
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL, NULL,
			     STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_REFUSED);
	/* with a consent record it is subscribed again */
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL,
			     &consent, STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_UPDATED);
	assert_int_equal(sql_int(f->path,
			     "SELECT COUNT(*) FROM subscriptions WHERE status"
			     " = 'subscribed' AND consent_source ="
			     " 'import:consented.csv'"),
	    1);
	/* a blocklisted contact is refused even with consent */
	sql_exec(f->path, "UPDATE contacts SET status = 'blocklisted'");
	assert_int_equal(subscribe(f->s, a, list, "x@example.com", NULL,
			     &consent, STORE_SUBSCRIBE_UPSERT),
	    STORE_SUBSCRIBE_REFUSED);
}

static void
test_contacts_account_delete(void **state)
{
	struct fixture *f = *state;
	int64_t a = new_account(f->s, "a"), b = new_account(f->s, "b");
	int64_t la = new_list(f->s, a, "L", "single");
	int64_t lb = new_list(f->s, b, "L", "single");
	const char *err = NULL;
	char sql[256];

	subscribe(
	    f->s, a, la, "x@example.com", NULL, NULL, STORE_SUBSCRIBE_ADD);
	subscribe(
	    f->s, b, lb, "x@example.com", NULL, NULL, STORE_SUBSCRIBE_ADD);
	assert_int_equal(
	    store_suppression_add(f->s, a, "s@example.com", "manual", &err), 0);
	assert_int_equal(
	    store_suppression_add(f->s, b, "s@example.com", "manual", &err), 0);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO fields (account_id, name, type) VALUES (%lld, 'city',"
	    " 'text');"
	    "UPDATE contacts SET attrs = '{\"city\":\"Paris\"}';",
	    (long long)a);
	sql_exec(f->path, sql);

	snprintf(sql, sizeof(sql),
	    "PRAGMA foreign_keys = ON; DELETE FROM accounts WHERE id = %lld",
	    (long long)a);
	sql_exec(f->path, sql);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM lists"), 1);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM contacts"), 1);
	assert_int_equal(
	    sql_int(f->path, "SELECT COUNT(*) FROM subscriptions"), 1);
	assert_int_equal(
	    sql_int(f->path, "SELECT COUNT(*) FROM suppressions"), 1);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM fields"), 0);
	/* deleting a list drops its subscriptions, not its contacts */
	assert_int_equal(store_list_delete(f->s, b, "L", &err), 0);
	assert_int_equal(
	    sql_int(f->path, "SELECT COUNT(*) FROM subscriptions"), 0);
	assert_int_equal(sql_int(f->path, "SELECT COUNT(*) FROM contacts"), 1);
}

/* segment_count - how many of account's contacts the segment text selects */
static int
segment_count(const char *path, int64_t account, const char *text)
{
	struct segment_sql out;
	char err[256], *sql;
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0;

	if (segment_compile(text, NULL, 1700000000, &out, err, sizeof(err)) !=
	    0)
		fail_msg("segment_compile(%s): %s", text, err);
	out.params[0].i = account;
	assert_true(asprintf(&sql, "SELECT c.id FROM contacts c WHERE %s",
			out.where) > 0);
	assert_int_equal(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	for (size_t i = 0; i < out.nparams; i++) {
		const struct segment_param *p = &out.params[i];
		int col = (int)i + 1;

		if (p->type == SEGMENT_PARAM_INT)
			sqlite3_bind_int64(st, col, p->i);
		else if (p->type == SEGMENT_PARAM_DOUBLE)
			sqlite3_bind_double(st, col, p->d);
		else
			sqlite3_bind_text(st, col, p->s, -1, SQLITE_STATIC);
	}
	while (sqlite3_step(st) == SQLITE_ROW)
		n++;
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	segment_sql_free(&out);
	return n;
}

static void
test_segment_on_schema(void **state)
{
	struct fixture *f = *state;
	int64_t a = new_account(f->s, "a"), b = new_account(f->s, "b");
	int64_t news = new_list(f->s, a, "News", "single");
	int64_t other = new_list(f->s, a, "Other", "single");
	int64_t bnews = new_list(f->s, b, "News", "single");

	subscribe(f->s, a, news, "x@example.com", "Xavier", NULL,
	    STORE_SUBSCRIBE_ADD);
	subscribe(
	    f->s, a, other, "y@example.org", "Yann", NULL, STORE_SUBSCRIBE_ADD);
	subscribe(
	    f->s, b, bnews, "z@example.com", "Zoe", NULL, STORE_SUBSCRIBE_ADD);
	assert_int_equal(segment_count(f->path, a, "list = \"News\""), 1);
	assert_int_equal(segment_count(f->path, b, "list = \"News\""), 1);
	assert_int_equal(
	    segment_count(f->path, a, "email ends_with \"example.com\""), 1);
	assert_int_equal(segment_count(f->path, a,
			     "status = \"enabled\" and not list = \"News\""),
	    1);
	assert_int_equal(
	    segment_count(f->path, a, "joined within 30000 days"), 2);
	assert_int_equal(segment_count(f->path, a, "name contains \"an\""), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_migrate_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_migrate_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_urls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_user_list_delete, setup, teardown),
		cmocka_unit_test(test_secret_hash),
		cmocka_unit_test_setup_teardown(
		    test_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test(test_cidr_canonical),
		cmocka_unit_test_setup_teardown(
		    test_relay_ips, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_policy_load, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_reentry_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_delivery_events, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sql_injection_is_data, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_concurrent_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_subscribe_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_suppressions, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unsubscribed_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_contacts_account_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_segment_on_schema, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
