/*
 * store - Herald's database: accounts, users, SMTP credentials, sender
 * domains, relay networks, a small key/value table, the message log, and
 * each account's mailing lists, contacts and suppressions.
 *
 * This header is the only interface to the database.  Behind it sit SQL
 * drivers (sqlite.c today; pg.c later) chosen by the URL given to
 * store_open(); callers never see SQL.
 *
 * Walls between accounts: every function that reads or changes account
 * data takes the account id and only ever touches rows of that account.
 * A row of another account is "not found", exactly as if it did not
 * exist, and error messages never name another account.  The one
 * exception is store_policy_load(), which reads every account at once and
 * is for the SMTP server's policy snapshot only (and store_domain_owner(),
 * for administrative tools).
 *
 * Secrets: user passwords are stored as argon2id strings; SMTP credential
 * secrets as keyed BLAKE2b hashes (store_secret_hash()).  No function
 * takes a secret and echoes it in an error.
 *
 * Threads and processes: a struct store is one database connection.  Use
 * it from one thread at a time (different stores may be used by different
 * threads at once).  Several processes and connections may use the same
 * database together (the server and CLI commands); a writer waits up to
 * five seconds for another's lock before failing with "database is
 * locked".
 *
 * Return values: 0 on success, -1 on failure with *error_r set.  Lookups,
 * removals and revocations that find nothing return 1, and set *error_r
 * to a message that says what was not found.  An error string is valid
 * until the next call on the same store (store_open(): until the next
 * store_open() in the same thread).  error_r may be NULL.
 *
 * Callbacks (the _list and _load functions): a callback returns 0 to go
 * on, or non-zero to stop; the function then returns that value, and if
 * it is -1 sets *error_r to "stopped by the caller".  Strings handed to a
 * callback are valid only during the call.  A callback must not call into
 * the same store (doing so fails with an error); it may use another one.
 *
 * Timestamps are unix seconds.
 */
#ifndef HERALD_STORE_STORE_H
#define HERALD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * store_open - connect to the database at url.
 *
 * url is a file name ("herald-data/herald.db") or "sqlite:FILE": a SQLite
 * database, created (mode 0600) if missing, in WAL mode with
 * synchronous=FULL, foreign keys on and a 5 s busy timeout.
 * "postgresql://..." is recognised but not built yet and fails.  The
 * schema is not created here: call store_migrate().  Returns the store,
 * or NULL with *error_r set (the message never repeats a URL, which may
 * hold a password).
 */
struct store *store_open(const char *url, const char **error_r);

/* store_close - close the connection and free *s; sets *s to NULL; NULL ok */
void store_close(struct store **s);

/*
 * store_migrate - bring the schema up to date.
 *
 * Applies, in order, each numbered migration (src/store/migrations/) not
 * yet recorded in the schema_migrations table, each in its own write
 * transaction together with its record, so a failed migration leaves the
 * database as it was before it.  Safe to call every time and from several
 * processes at once.  Fails if the database has a migration newer than
 * this program knows.  Returns 0 or -1.
 */
int store_migrate(struct store *s, const char **error_r);

/* ---- accounts ---- */

#define STORE_ACCOUNT_NAME_MAX 64

struct store_account {
	int64_t id;
	char name[128];
	int64_t created_at;
	bool disabled;
};

/*
 * store_account_name_valid - whether name is 1-64 characters of
 * [A-Za-z0-9._-] (names are compared exactly, case included).
 */
bool store_account_name_valid(const char *name);

/*
 * store_account_create - create an enabled account; its id goes to *id_r
 * (may be NULL).  Fails on an invalid name or if the name is taken.
 */
int store_account_create(
    struct store *s, const char *name, int64_t *id_r, const char **error_r);

/* store_account_find - look an account up by name: 0 found, 1 not, -1 */
int store_account_find(struct store *s, const char *name,
    struct store_account *out, const char **error_r);

/* store_account_list - call cb for every account, by name */
int store_account_list(struct store *s,
    int (*cb)(void *arg, const struct store_account *account), void *arg,
    const char **error_r);

/*
 * store_account_set_disabled - disable or enable an account.  A disabled
 * account keeps its data; the SMTP server refuses its mail.  Returns 0, 1
 * if there is no such account, or -1.
 */
int store_account_set_disabled(
    struct store *s, int64_t account_id, bool disabled, const char **error_r);

/* ---- users (people who log in to the web interface) ---- */

/*
 * store_user_create - add a user to an account; its id goes to *id_r (may
 * be NULL).
 *
 * email is taken as given (the caller normalizes it); it must be at most
 * 254 bytes with an '@' and no space or control byte.  role is 1-32
 * characters of [a-z_] (which roles exist is the caller's business).
 * password (1-1024 bytes) is hashed with argon2id (crypto_pwhash_str,
 * OPSLIMIT_INTERACTIVE, MEMLIMIT_INTERACTIVE: ~64 MiB and ~0.1 s) and
 * never stored.  Fails if the account has this email already, or if there
 * is no such account.
 */
int store_user_create(struct store *s, int64_t account_id, const char *email,
    const char *password, const char *role, int64_t *id_r,
    const char **error_r);

/*
 * store_user_verify - check a user's password: 0 right, 1 wrong password
 * or no such user in that account (the two are not told apart, and take
 * the same time), -1 error.
 */
int store_user_verify(struct store *s, int64_t account_id, const char *email,
    const char *password, const char **error_r);

/* ---- SMTP credentials ---- */

#define STORE_SECRET_HASH_LEN 64

/*
 * store_secret_hash - the stored form of an SMTP credential secret: the
 * BLAKE2b-256 (crypto_generichash) of secret keyed with the fixed string
 * "herald-smtp-credential-v1", as 64 lower-case hex digits and a NUL.
 *
 * Why a fast hash and not argon2id: the secret is not chosen by a person
 * but generated by Herald with 196 bits from the CSPRNG, so an attacker
 * holding the hashes cannot guess it faster than by brute force over
 * 2^196 values, however fast the hash; a slow hash would only slow down
 * every SMTP AUTH (the server checks credentials on each connection).  The
 * key separates these hashes from any other BLAKE2b use, so a hash here
 * can never be replayed as a hash of something else.
 */
void store_secret_hash(const char *secret, char out[65]);

struct store_credential {
	int64_t id;
	int64_t account_id;
	char username[128];
	char secret_hash[65];
	int64_t created_at;
	int64_t revoked_at; /* 0: not revoked */
};

/*
 * store_credential_create - add an SMTP credential to an account; its id
 * goes to *id_r (may be NULL).
 *
 * username: 1-127 bytes, no space or control byte; unique across all
 * accounts and never reused, even after revocation.  secret_hash: the
 * output of store_secret_hash() (the caller generates the secret, shows
 * it once and forgets it).  Fails if the name is taken or there is no
 * such account.
 */
int store_credential_create(struct store *s, int64_t account_id,
    const char *username, const char *secret_hash, int64_t *id_r,
    const char **error_r);

/* store_credential_list - call cb for each credential of the account,
 * revoked ones included, by username */
int store_credential_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_credential *credential), void *arg,
    const char **error_r);

/*
 * store_credential_revoke - revoke the account's credential username now.
 * Returns 0, 1 if the account has no such credential not yet revoked
 * (whether or not another account has one of that name), or -1.
 */
int store_credential_revoke(struct store *s, int64_t account_id,
    const char *username, const char **error_r);

/* ---- sender domains ---- */

/*
 * store_domain_add - let the account send as domain.
 *
 * domain is an already normalized name: lower-case ASCII (IDNs as
 * A-labels), labels of [a-z0-9-] not starting or ending with '-', no
 * trailing dot, at most 253 bytes.  A domain belongs to one account at
 * most: fails if this or another account has it (the error does not say
 * which other account).
 */
int store_domain_add(struct store *s, int64_t account_id, const char *domain,
    const char **error_r);

/* store_domain_list - call cb for each domain of the account, sorted */
int store_domain_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const char *domain, int64_t created_at), void *arg,
    const char **error_r);

/* store_domain_remove - 0 removed, 1 the account has no such domain, -1 */
int store_domain_remove(struct store *s, int64_t account_id, const char *domain,
    const char **error_r);

/*
 * store_domain_owner - the id of the account that has domain (a
 * normalized name, as for store_domain_add) in *account_id_r: 0 found,
 * 1 no account has it, -1.  It reads across accounts: for
 * administrative tools (`herald dkim keygen`), never for a request made
 * on behalf of an account.
 */
int store_domain_owner(struct store *s, const char *domain,
    int64_t *account_id_r, const char **error_r);

/* ---- relay networks (clients that may send without AUTH) ---- */

/* Enough for "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128". */
#define STORE_CIDR_MAX 64

/*
 * store_cidr_canonical - check an address or network and write its
 * canonical form to out: "1.2.3.4" -> "1.2.3.4/32", "1.2.3.0/24",
 * "::1" -> "::1/128", "2001:DB8::/32" -> "2001:db8::/32".  Refused: bits
 * set past the prefix ("1.2.3.4/24"), leading zeros in the prefix, and
 * networks wider than /8 (IPv4) or /16 (IPv6), which would make Herald
 * all but an open relay.  Returns 0, or -1 with a reason in err.
 */
int store_cidr_canonical(
    const char *cidr, char out[STORE_CIDR_MAX], char *err, size_t errlen);

/*
 * store_relay_ip_add - let clients from cidr send for the account without
 * AUTH; stored in canonical form (store_cidr_canonical()).  Fails if the
 * account has it already.  Two accounts may list the same network.
 */
int store_relay_ip_add(struct store *s, int64_t account_id, const char *cidr,
    const char **error_r);

/* store_relay_ip_remove - cidr in any form that has the same canonical
 * form; 0 removed, 1 the account has no such entry, -1 */
int store_relay_ip_remove(struct store *s, int64_t account_id, const char *cidr,
    const char **error_r);

/* store_relay_ip_list - call cb for each canonical network of the account */
int store_relay_ip_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const char *cidr), void *arg, const char **error_r);

/* ---- the SMTP server's snapshot ---- */

/*
 * The callbacks of store_policy_load(); any may be NULL to skip that kind
 * of row.  Each returns 0 to go on, non-zero to stop.
 */
struct store_policy_cb {
	int (*account)(void *arg, int64_t id, const char *name, bool disabled);
	int (*domain)(void *arg, int64_t account_id, const char *domain);
	/* not revoked credentials only */
	int (*credential)(void *arg, int64_t account_id, int64_t credential_id,
	    const char *username, const char *secret_hash);
	int (*relay_ip)(void *arg, int64_t account_id, const char *cidr);
};

/*
 * store_policy_load - read everything the SMTP server decides with: all
 * accounts (disabled ones too), then all domains, all credentials that are
 * not revoked, and all relay networks, from one consistent snapshot of the
 * database (one read transaction).  The only function that reads across
 * accounts; for the server only.
 */
int store_policy_load(struct store *s, const struct store_policy_cb *cb,
    void *arg, const char **error_r);

/*
 * store_changed - whether any other connection committed since the last
 * call on s (the first call: since store_open()).  Cheap (SQLite: PRAGMA
 * data_version, no disk I/O), so the server can poll it to know when to
 * reload its snapshot.  Commits made through s itself do not count.
 */
int store_changed(struct store *s, bool *changed_r, const char **error_r);

/* ---- meta: small settings of the installation ---- */

/*
 * store_meta_get - the value of key in *value_r, allocated (free() it):
 * 0 found, 1 absent (*value_r = NULL), -1 error.
 */
int store_meta_get(
    struct store *s, const char *key, char **value_r, const char **error_r);

/* store_meta_set - set key to value, replacing any old value */
int store_meta_set(
    struct store *s, const char *key, const char *value, const char **error_r);

/* ---- the message log (delivery events) ---- */

/* store_event_history's account_id for the operator's view of the node */
#define STORE_ANY_ACCOUNT (-1)

/* One state change of one recipient of one queued message. */
struct store_event {
	int64_t account_id;
	const char *queue_id;
	int rcpt_idx;	       /* the recipient's place in the envelope */
	const char *recipient; /* its address */
	const char *state;     /* deferred, delivered, bounced, expired, held,
				  released, deleted, dsn */
	int64_t at;	       /* unix milliseconds */
	int attempt;	       /* delivery attempts so far */
	int64_t next_at;       /* deferred: next attempt, unix seconds */
	const char *relay;     /* "host[addr]:port", or "" */
	const char *reply;     /* the remote reply or Herald's reason */
	const char *tls;       /* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" */
};

/*
 * store_events_add - append n events in one transaction (all or none).
 * Returns 0, or -1 with *error_r.
 */
int store_events_add(struct store *s, const struct store_event *ev, size_t n,
    const char **error_r);

/*
 * store_event_history - call cb for each event of queue_id in the order
 * they happened; only the account's events, unless account_id is
 * STORE_ANY_ACCOUNT (the operator's CLI on the node).  Text is valid
 * during the call.  Returns 0, cb's non-zero value, or -1 with *error_r.
 */
int store_event_history(struct store *s, int64_t account_id,
    const char *queue_id, int (*cb)(void *arg, const struct store_event *ev),
    void *arg, const char **error_r);

/*
 * store_set_durable - with false, this connection's commits are not
 * synced to disk one by one: they survive a crash of the process (the
 * operating system has them) but the last ones may be lost with the
 * machine.  For the message log, where that costs a repeated delivery
 * at worst.  0 or -1.
 */
int store_set_durable(struct store *s, bool durable, const char **error_r);

/*
 * store_events_purge - delete at most max events older than before_ms
 * (unix milliseconds), oldest first; *purged_r says how many.  0 or -1.
 */
int store_events_purge(struct store *s, int64_t before_ms, int64_t max,
    int64_t *purged_r, const char **error_r);

/*
 * store_domain_is_account - whether domain is a sender domain of
 * account_id (the delivery engine signs only then).  0 or -1.
 */
int store_domain_is_account(struct store *s, int64_t account_id,
    const char *domain, bool *yes_r, const char **error_r);

/* ---- lists, contacts, subscriptions, suppressions ---- */

#define STORE_LIST_NAME_MAX 128
#define STORE_LIST_DESCRIPTION_MAX 1024

struct store_list {
	int64_t id;
	char name[STORE_LIST_NAME_MAX + 1];
	char description[STORE_LIST_DESCRIPTION_MAX + 1];
	char optin[8]; /* "single" or "double" */
	int64_t created_at;
};

/*
 * store_list_create - add a mailing list to the account; its id goes to
 * *id_r (may be NULL).  name: 1-128 bytes, no control byte, unique in the
 * account; description: at most 1024 bytes, no control byte (NULL: "");
 * optin: "single" or "double".  Fails if the account has the name
 * already, or if there is no such account.
 */
int store_list_create(struct store *s, int64_t account_id, const char *name,
    const char *description, const char *optin, int64_t *id_r,
    const char **error_r);

/* store_list_find - the account's list name in *out: 0, 1 not found, -1 */
int store_list_find(struct store *s, int64_t account_id, const char *name,
    struct store_list *out, const char **error_r);

/* store_list_list - call cb for each list of the account, by name */
int store_list_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_list *list), void *arg,
    const char **error_r);

/*
 * store_list_delete - delete the account's list name and its
 * subscriptions (the contacts stay): 0, 1 not found, -1.
 */
int store_list_delete(struct store *s, int64_t account_id, const char *name,
    const char **error_r);

/*
 * store_suppression_add - never mail email (normalized by the caller)
 * from this account again, whether or not it is a contact.  reason:
 * "unsubscribed", "hard_bounce", "complaint" or "manual".  Adding an
 * address already there replaces its reason.  0 or -1.
 */
int store_suppression_add(struct store *s, int64_t account_id,
    const char *email, const char *reason, const char **error_r);

/* store_suppression_check - whether the account suppresses email: 0, -1 */
int store_suppression_check(struct store *s, int64_t account_id,
    const char *email, bool *suppressed_r, const char **error_r);

/* store_suppression_remove - 0 removed, 1 not suppressed, -1 */
int store_suppression_remove(struct store *s, int64_t account_id,
    const char *email, const char **error_r);

/* The proof that an address agreed to a subscription. */
struct store_consent {
	const char *source; /* "form", "import:file.csv", "api"...; required */
	const char *ip;	    /* the subscriber's address, or NULL */
	int64_t at;	    /* when; 0: now */
};

/* store_contact_subscribe's mode */
enum store_subscribe_mode {
	STORE_SUBSCRIBE_ADD,	/* only a new subscription */
	STORE_SUBSCRIBE_UPSERT, /* a new one, or update an existing one */
	STORE_SUBSCRIBE_UPDATE, /* only an existing subscription */
};

/* store_contact_subscribe's *result_r */
enum store_subscribe_result {
	STORE_SUBSCRIBE_CREATED, /* a new subscription */
	STORE_SUBSCRIBE_UPDATED, /* an existing one (or its contact) changed */
	STORE_SUBSCRIBE_UNCHANGED,  /* already so: nothing to change */
	STORE_SUBSCRIBE_SKIPPED,    /* the mode said not to touch it */
	STORE_SUBSCRIBE_SUPPRESSED, /* the address is suppressed */
	STORE_SUBSCRIBE_REFUSED,    /* unsubscribed, bounced or blocklisted */
};

/*
 * store_contact_subscribe - subscribe email (normalized by the caller) to
 * the account's list list_id, creating its contact if needed, in one
 * write transaction; what happened goes to *result_r.
 *
 * name (NULL: keep the contact's name, or "" for a new contact) is at
 * most 256 bytes.  A new subscription is 'subscribed', or 'unconfirmed'
 * on a double opt-in list unless consent is given.  An update sets the
 * contact's name (when given and different), and turns 'unsubscribed'
 * or 'bounced' into 'subscribed' only with consent.
 *
 * Without consent (consent NULL) nothing is ever subscribed again that
 * the recipient or the mail system turned away: a suppressed address is
 * SUPPRESSED and a subscription that is 'unsubscribed' or 'bounced' is
 * REFUSED, with no change.  With consent, the consent record is stored
 * on the subscription and those blocks are lifted (the suppression
 * itself stays: remove it with store_suppression_remove()).  A
 * blocklisted contact is always REFUSED.
 *
 * Returns 0, 1 if the account has no list list_id, or -1.
 */
int store_contact_subscribe(struct store *s, int64_t account_id,
    int64_t list_id, const char *email, const char *name,
    const struct store_consent *consent, enum store_subscribe_mode mode,
    enum store_subscribe_result *result_r, const char **error_r);

#endif
