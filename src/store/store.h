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

#define STORE_EMAIL_MAX 254

/* A user as listed: never the password hash. */
struct store_user {
	int64_t id;
	char email[STORE_EMAIL_MAX + 1];
	char role[33]; /* 1-32 characters of [a-z_] */
	int64_t created_at;
};

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

/* store_user_list - call cb for every user of the account, by email */
int store_user_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_user *u), void *arg,
    const char **error_r);

/*
 * store_user_delete - remove the account's user user_id: 0, 1 if the
 * account has no such user (a user of another account included), -1.
 */
int store_user_delete(
    struct store *s, int64_t account_id, int64_t user_id, const char **error_r);

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
 * store_set_bulk - a connection for an import, or back to normal (not
 * inside a transaction).  On: commits are not synced one by one (each
 * import batch carries its progress, so one lost with the machine is
 * done again), rows are not checked against the rows they refer to (the
 * import checks its account and list once per transaction), the page
 * cache is cache bytes, and the write-ahead log is copied back into the
 * database only once it holds wal bytes (fewer, larger checkpoints).
 * Off: synced commits, checked references, SQLite's defaults.  0 or -1.
 */
int store_set_bulk(struct store *s, bool on, uint64_t cache, uint64_t wal,
    const char **error_r);

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

/* ---- transactions spanning several calls (imports) ---- */

/*
 * store_tx_begin - start a write transaction; until store_tx_commit() or
 * store_tx_rollback(), the functions below that write (contacts,
 * subscriptions, suppressions, import progress) join it instead of
 * committing on their own.  0 or -1.
 */
int store_tx_begin(struct store *s, const char **error_r);
int store_tx_commit(struct store *s, const char **error_r);
void store_tx_rollback(struct store *s);

/* A value bound to a '?' of a caller's SQL (segments). */
enum store_param_type { STORE_PARAM_INT, STORE_PARAM_REAL, STORE_PARAM_TEXT };
struct store_param {
	enum store_param_type type;
	int64_t i;
	double d;
	const char *s;
};

/* ---- lists (by id; see also the by-name functions above) ---- */

#define STORE_LIST_TAGS_MAX 1024 /* bytes of the JSON array of tags */

struct store_list_info {
	struct store_list list;
	char tags[STORE_LIST_TAGS_MAX + 1]; /* JSON array of strings */
	int64_t subscribed, unconfirmed, unsubscribed, bounced;
};

/* store_list_get - the account's list id: 0, 1 not found, -1 */
int store_list_get(struct store *s, int64_t account_id, int64_t id,
    struct store_list_info *out, const char **error_r);

/*
 * store_list_update - change the account's list id; NULL members are left
 * as they are.  tags: a JSON array of 0-50 strings of 1-64 bytes.
 * 0, 1 not found, -1 (a name taken, an invalid value).
 */
int store_list_update(struct store *s, int64_t account_id, int64_t id,
    const char *name, const char *description, const char *optin,
    const char *tags, const char **error_r);

/* store_list_delete_id - store_list_delete by id: 0, 1 not found, -1 */
int store_list_delete_id(
    struct store *s, int64_t account_id, int64_t id, const char **error_r);

/* store_list_tags_valid - whether tags is a JSON array store_list_update
   takes */
bool store_list_tags_valid(const char *tags);

/* ---- custom fields ---- */

#define STORE_FIELD_NAME_MAX 64
#define STORE_FIELD_CHOICES_MAX 4096

struct store_field {
	int64_t id;
	char name[STORE_FIELD_NAME_MAX + 1];
	char type[8]; /* text, number, date, boolean, one_of */
	char choices[STORE_FIELD_CHOICES_MAX + 1]; /* one_of: JSON array; "" */
};

/*
 * store_field_create - define a custom field of the account.  name:
 * [a-z_][a-z0-9_]{0,63} and not a built-in column (email, name, status,
 * created, updated, joined, list, id); type: text, number, date, boolean
 * or one_of; choices: for one_of a JSON array of 1-100 distinct strings
 * (else NULL).  0, or -1 (taken, invalid).
 */
int store_field_create(struct store *s, int64_t account_id, const char *name,
    const char *type, const char *choices, int64_t *id_r, const char **error_r);

/* store_field_list - call cb for each field of the account, by name */
int store_field_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_field *f), void *arg,
    const char **error_r);

/* store_field_get - by id: 0, 1 not found, -1 */
int store_field_get(struct store *s, int64_t account_id, int64_t id,
    struct store_field *out, const char **error_r);

/*
 * store_field_delete - remove the field and its value from every contact
 * of the account: 0, 1 not found, -1.
 */
int store_field_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r);

/* store_field_name_valid - whether name may name a custom field */
bool store_field_name_valid(const char *name);

/* ---- contacts ---- */

#define STORE_ATTRS_MAX (64 * 1024) /* bytes of a contact's JSON attrs */

/* A contact as listed; pointers are valid during the callback. */
struct store_contact {
	int64_t id;
	const char *email;
	const char *name;
	const char *status; /* enabled, blocklisted */
	const char *attrs;  /* JSON object of custom field values */
	int64_t created_at, updated_at;
};

typedef int store_contact_cb(void *arg, const struct store_contact *c);

/* What store_contact_put writes. */
struct store_contact_in {
	const char *email;  /* normalized by the caller; required */
	const char *name;   /* NULL: keep (new contact: "") */
	bool name_if_empty; /* an existing contact's name only if it has none */
	/* JSON objects of custom field values (checked by the caller):
	   attrs_set are written, attrs_fill only where the contact has no
	   value yet; NULL for none */
	const char *attrs_set;
	const char *attrs_fill;
	int64_t list_id; /* subscribe to this list too; 0: none */
	const struct store_consent *consent; /* NULL: none */
	enum store_subscribe_mode mode;
	/* the import job writing (0: none): a contact this job created
	   earlier (a duplicate in the file) is merged whatever the mode */
	int64_t job_id;
	/* a new contact's subscription is left to
	   store_subscribe_new_contacts (one statement per import batch) */
	bool defer_subscription;
	int64_t *new_id_r; /* the id of a contact this call created; may be
			      NULL */
};

/*
 * store_subscribe_new_contacts - subscribe to list_id the contacts import
 * job_id created with an id of from_id or more, unless they are
 * subscribed already: what store_contact_put deferred for a batch.  The
 * status is as store_contact_put would give.  0, 1 no such list, -1.
 */
int store_subscribe_new_contacts(struct store *s, int64_t account_id,
    int64_t list_id, int64_t job_id, int64_t from_id,
    const struct store_consent *consent, const char **error_r);

/* store_account_exists - whether account_id exists: 0 or -1 */
int store_account_exists(
    struct store *s, int64_t account_id, bool *yes_r, const char **error_r);

/*
 * store_contact_put - create, update or subscribe a contact per in->mode:
 * ADD creates what is missing (the contact, its subscription) and
 * changes nothing that exists; UPSERT also updates an existing contact's
 * name and values; UPDATE only touches a contact (and, with a list, a
 * subscription) that exists.  The rules of store_contact_subscribe hold:
 * suppressed addresses are SUPPRESSED and unsubscribed or bounced
 * subscriptions REFUSED unless in->consent is given, blocklisted
 * contacts always REFUSED; a double opt-in list takes a new address as
 * 'unconfirmed' without consent.  *result_r says what happened and
 * *id_r (may be NULL) the contact's id (0 if none).  Joins a
 * store_tx_begin() transaction.  0, 1 no such list, -1.
 */
int store_contact_put(struct store *s, int64_t account_id,
    const struct store_contact_in *in, enum store_subscribe_result *result_r,
    int64_t *id_r, const char **error_r);

/* store_contact_get - the account's contact id to cb: 0, 1 not found, -1 */
int store_contact_get(struct store *s, int64_t account_id, int64_t id,
    store_contact_cb *cb, void *arg, const char **error_r);

/* store_contact_find - by (normalized) address: 0, 1 not found, -1 */
int store_contact_find(struct store *s, int64_t account_id, const char *email,
    store_contact_cb *cb, void *arg, const char **error_r);

/* Which contacts store_contact_list gives. */
struct store_contact_query {
	int64_t after_id;	  /* the cursor: ids greater than this */
	int64_t limit;		  /* at most this many (1-10000) */
	const char *email_prefix; /* NULL, or addresses starting so */
	int64_t list_id;	  /* 0, or subscribed (any status) to it */
	const char *list_status;  /* with list_id: NULL any, or a status */
	/* a segment: SQL from segment_compile (its first parameter is the
	   account), NULL for none */
	const char *where;
	const struct store_param *params;
	size_t nparams;
};

/*
 * store_contact_list - the account's contacts matching q, by id, to cb
 * (a non-zero return stops).  *count_r (may be NULL) gets the number
 * given.  0, cb's value, or -1.
 */
int store_contact_list(struct store *s, int64_t account_id,
    const struct store_contact_query *q, store_contact_cb *cb, void *arg,
    const char **error_r);

/* store_contact_count - how many contacts q selects (ignoring after_id
   and limit) */
int store_contact_count(struct store *s, int64_t account_id,
    const struct store_contact_query *q, int64_t *count_r,
    const char **error_r);

/*
 * store_contact_update - change the account's contact id: name (NULL
 * keep), attrs_set (JSON object merged over its values; a null value
 * removes one), status (NULL keep; enabled or blocklisted).  0, 1 not
 * found, -1.
 */
int store_contact_update(struct store *s, int64_t account_id, int64_t id,
    const char *name, const char *attrs_set, const char *status,
    const char **error_r);

/* store_contact_delete - delete the contact and its subscriptions (the
   person's right to erasure): 0, 1 not found, -1 */
int store_contact_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r);

/* A subscription of a contact, as listed. */
struct store_subscription {
	int64_t list_id;
	const char *list_name;
	const char *status;
	int64_t created_at, updated_at;
	const char *consent_source, *consent_ip; /* NULL if none */
	int64_t consent_at;
};

/* store_subscription_list - the subscriptions of the account's contact */
int store_subscription_list(struct store *s, int64_t account_id,
    int64_t contact_id,
    int (*cb)(void *arg, const struct store_subscription *sub), void *arg,
    const char **error_r);

/*
 * store_subscription_set - set the status of the contact's subscription
 * to the list (creating it if absent): "unsubscribed" always works;
 * "subscribed"/"unconfirmed" from unsubscribed or bounced, or for a
 * suppressed address, need consent; "bounced" is for the mail system.
 * 0, 1 no such contact or list, 2 refused (consent needed), -1.
 */
int store_subscription_set(struct store *s, int64_t account_id,
    int64_t contact_id, int64_t list_id, const char *status,
    const struct store_consent *consent, const char **error_r);

/* store_subscription_delete - remove the subscription: 0, 1 none, -1 */
int store_subscription_delete(struct store *s, int64_t account_id,
    int64_t contact_id, int64_t list_id, const char **error_r);

/* ---- suppressions, listed ---- */

struct store_suppression {
	const char *email;
	const char *reason;
	int64_t created_at;
};

/* store_suppression_list - by address after after_email ("" first), at
   most limit, to cb */
int store_suppression_list(struct store *s, int64_t account_id,
    const char *after_email, int64_t limit,
    int (*cb)(void *arg, const struct store_suppression *sup), void *arg,
    const char **error_r);

/* ---- accounts by id (the admin API) ---- */

/* store_account_get - account id: 0, 1 not found, -1 */
int store_account_get(struct store *s, int64_t id, struct store_account *out,
    const char **error_r);

/* store_account_delete - delete account id and everything it owns
   (lists, contacts, keys...): 0, 1 not found, -1 */
int store_account_delete(struct store *s, int64_t id, const char **error_r);

/* ---- saved segments ---- */

#define STORE_SEGMENT_NAME_MAX 128
#define STORE_SEGMENT_QUERY_MAX 4096

struct store_segment {
	int64_t id;
	char name[STORE_SEGMENT_NAME_MAX + 1];
	char query[STORE_SEGMENT_QUERY_MAX + 1]; /* the filter text */
	int64_t created_at, updated_at;
};

/* store_segment_create - save a segment (the caller compiled query
   first); name unique in the account.  0 or -1. */
int store_segment_create(struct store *s, int64_t account_id, const char *name,
    const char *query, int64_t *id_r, const char **error_r);
/* store_segment_get - 0, 1 not found, -1 */
int store_segment_get(struct store *s, int64_t account_id, int64_t id,
    struct store_segment *out, const char **error_r);
/* store_segment_list - the account's segments by name */
int store_segment_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_segment *seg), void *arg,
    const char **error_r);
/* store_segment_update - NULL members kept: 0, 1 not found, -1 */
int store_segment_update(struct store *s, int64_t account_id, int64_t id,
    const char *name, const char *query, const char **error_r);
/* store_segment_delete - 0, 1 not found, -1 */
int store_segment_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r);

/* ---- database sources (PostgreSQL) ---- */

#define STORE_SOURCE_NAME_MAX 128
#define STORE_SOURCE_CONNINFO_MAX 4096

struct store_source {
	int64_t id;
	char name[STORE_SOURCE_NAME_MAX + 1];
	char conninfo[STORE_SOURCE_CONNINFO_MAX + 1]; /* without password */
	char password_box[1024]; /* hex of the sealed password, or "" */
	int64_t created_at;
};

/* store_source_create - 0 or -1 (name taken, too long) */
int store_source_create(struct store *s, int64_t account_id, const char *name,
    const char *conninfo, const char *password_box, int64_t *id_r,
    const char **error_r);
/* store_source_get - 0, 1 not found, -1 */
int store_source_get(struct store *s, int64_t account_id, int64_t id,
    struct store_source *out, const char **error_r);
int store_source_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_source *src), void *arg,
    const char **error_r);
/* store_source_delete - 0, 1 not found, -1 */
int store_source_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r);

/* ---- import jobs ---- */

#define STORE_JOB_SOURCE_MAX 4096
#define STORE_JOB_OPTIONS_MAX 8192
#define STORE_JOB_ERROR_MAX 512

struct store_import_job {
	int64_t id, account_id;
	int64_t list_id;   /* 0: none */
	int64_t source_id; /* postgresql: the db_sources row; else 0 */
	char state[12];	   /* queued running cancelling cancelled done failed */
	char runner[8];	   /* server, cli */
	char format[16];   /* csv tsv vcard jsonl postgresql suppressions */
	char source[STORE_JOB_SOURCE_MAX + 1];	 /* file path, or the query */
	char options[STORE_JOB_OPTIONS_MAX + 1]; /* JSON object */
	int64_t rows_done, created, updated, skipped, errors;
	int64_t bytes_done, bytes_total;
	char error[STORE_JOB_ERROR_MAX + 1]; /* why it failed, or "" */
	int64_t created_at, started_at, updated_at, finished_at; /* 0: not */
};

/* store_import_create - a new job in state 'queued' from the members of
   job that describe it (account_id, list_id, source_id, runner, format,
   source, options, bytes_total); its id to *id_r.  0 or -1. */
int store_import_create(struct store *s, const struct store_import_job *job,
    int64_t *id_r, const char **error_r);
/* store_import_get - the job id of the account (STORE_ANY_ACCOUNT: any
   account): 0, 1 not found, -1 */
int store_import_get(struct store *s, int64_t account_id, int64_t id,
    struct store_import_job *out, const char **error_r);
/* store_import_list - the account's jobs, newest first, at most limit */
int store_import_list(struct store *s, int64_t account_id, int64_t limit,
    int (*cb)(void *arg, const struct store_import_job *job), void *arg,
    const char **error_r);
/*
 * store_import_progress - record the counters (rows_done, created,
 * updated, skipped, errors, bytes_done) of job, and *state_r gets the
 * job's state as stored (so that a runner sees 'cancelling').  Joins a
 * store_tx_begin() transaction: call it in the batch's transaction.
 * 0 or -1.
 */
int store_import_progress(struct store *s, const struct store_import_job *job,
    char state_r[12], const char **error_r);
/*
 * store_import_set_state - move job id from one of the states in from
 * (comma-separated, e.g. "queued,running") to state, with error (NULL:
 * none); sets started_at when it becomes running and finished_at when
 * it ends.  0, 1 not in one of those states (or not found), -1.
 */
int store_import_set_state(struct store *s, int64_t account_id, int64_t id,
    const char *from, const char *state, const char *error,
    const char **error_r);
/* store_import_error_add - keep a bad row of the job (joins a
   transaction); duplicates of (line, reason) are ignored.  0 or -1. */
int store_import_error_add(struct store *s, int64_t job_id, unsigned long line,
    const char *reason, const char **error_r);
/* store_import_errors - the kept bad rows of the account's job, by line,
   at most limit */
int store_import_errors(struct store *s, int64_t account_id, int64_t job_id,
    int64_t limit, int (*cb)(void *arg, unsigned long line, const char *reason),
    void *arg, const char **error_r);
/* store_import_unfinished - the jobs of runner in state queued, running
   or cancelling, oldest first (for resuming at start) */
int store_import_unfinished(struct store *s, const char *runner,
    int (*cb)(void *arg, const struct store_import_job *job), void *arg,
    const char **error_r);

/* ---- API keys ---- */

#define STORE_APIKEY_MAX 80 /* bytes of a key's text, with NUL */

struct store_apikey {
	int64_t id;
	int64_t account_id; /* 0: an operator's key for the whole node */
	char name[129];
	char prefix[13];
	char scopes[64]; /* comma-separated: read, write, admin */
	int64_t created_at, last_used_at, revoked_at; /* 0: never */
};

/*
 * store_apikey_create - a new key for account_id (0: the node's operator;
 * scopes must then include admin).  scopes: comma-separated subset of
 * read, write, admin.  The key ("hk_" + 12-char prefix + "_" + 32-char
 * secret, base32) goes to key_out, once: only its keyed hash is kept.
 * 0 or -1.
 */
int store_apikey_create(struct store *s, int64_t account_id, const char *name,
    const char *scopes, char key_out[STORE_APIKEY_MAX], int64_t *id_r,
    const char **error_r);
/*
 * store_apikey_verify - the key's record in *out when key is a live key:
 * 0, 1 unknown/revoked/malformed (the same answer for each, in constant
 * time for the secret), -1.  Updates last_used_at at most once a minute.
 */
int store_apikey_verify(struct store *s, const char *key,
    struct store_apikey *out, const char **error_r);
/* store_apikey_list - the keys of account_id (0: operator keys) */
int store_apikey_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_apikey *k), void *arg,
    const char **error_r);
/* store_apikey_revoke - 0, 1 not found (or already revoked), -1 */
int store_apikey_revoke(
    struct store *s, int64_t account_id, int64_t id, const char **error_r);

/* ---- one suppression ---- */

struct store_suppression_row {
	char email[STORE_EMAIL_MAX + 1];
	char reason[16]; /* unsubscribed, hard_bounce, complaint, manual */
	int64_t created_at;
};

/* store_suppression_get - the account's suppression of email (normalized
   by the caller) in *out: 0, 1 not suppressed, -1 */
int store_suppression_get(struct store *s, int64_t account_id,
    const char *email, struct store_suppression_row *out, const char **error_r);

#endif
