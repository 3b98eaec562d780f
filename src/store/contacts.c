/*
 * contacts.c - the store's contacts: lists by id, custom fields, contacts
 * and their values, subscriptions, listed suppressions, and the
 * transactions an import spans.
 *
 * Walls: every statement names the account (account_id = ?), directly or
 * through the contact or list it joins; an id of another account is "not
 * found".  Custom field values are one JSON object per contact
 * (contacts.attrs, migration 004): merged with SQLite's json_patch(), so
 * an import writes one row per contact.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "store/store-private.h"
#include "store/store.h"

#define STORE_CONTACT_NAME_MAX 256
#define STORE_CONSENT_SOURCE_MAX 256

enum {
	C_TX_DUMMY,
	C_LIST_GET,
	C_LIST_UPDATE,
	C_LIST_DELETE,
	C_FIELD_INSERT,
	C_FIELD_LIST,
	C_FIELD_GET,
	C_FIELD_DELETE,
	C_FIELD_STRIP,
	C_OPTIN,
	C_SUPPR_CHECK,
	C_CONTACT_FIND,
	C_CONTACT_INSERT,
	C_CONTACT_MERGE,
	C_CONTACT_GET,
	C_CONTACT_GET_EMAIL,
	C_CONTACT_UPDATE,
	C_CONTACT_DELETE,
	C_SUB_FIND,
	C_SUB_INSERT,
	C_SUB_SET,
	C_SUB_LIST,
	C_SUB_DELETE,
	C_SUPPR_LIST,
	C_SUPPR_OF_CONTACT,
	C_SUPPR_ANY,
	C_SUB_INSERT_NEW,
	C_SUB_INSERT_BULK,
	C_ACCOUNT_EXISTS,
	C_SUPPR_GET,
};

#define STMT(id, sql)                                                          \
	static const struct store_stmt stmt_##id = {                           \
		STORE_STMT_CONTACTS_BASE + C_##id, sql                         \
	}

#define CONTACT_COLS                                                           \
	"c.id, c.email, c.name, c.status, c.attrs, c.created_at, c.updated_at"

STMT(LIST_GET,
    "SELECT l.id, l.name, l.description, l.optin, l.created_at, l.tags,"
    " (SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND"
    " s.status = 'subscribed'),"
    " (SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND"
    " s.status = 'unconfirmed'),"
    " (SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND"
    " s.status = 'unsubscribed'),"
    " (SELECT count(*) FROM subscriptions s WHERE s.list_id = l.id AND"
    " s.status = 'bounced')"
    " FROM lists l WHERE l.account_id = ? AND l.id = ?");
STMT(LIST_UPDATE,
    "UPDATE lists SET name = coalesce(?1, name),"
    " description = coalesce(?2, description), optin = coalesce(?3, optin),"
    " tags = coalesce(?4, tags) WHERE account_id = ?5 AND id = ?6"
    " RETURNING id");
STMT(LIST_DELETE,
    "DELETE FROM lists WHERE account_id = ? AND id = ? RETURNING id");
STMT(FIELD_INSERT,
    "INSERT INTO fields (account_id, name, type, choices) VALUES (?, ?, ?, ?)"
    " RETURNING id");
STMT(FIELD_LIST,
    "SELECT id, name, type, choices FROM fields WHERE account_id = ?"
    " ORDER BY name");
STMT(FIELD_GET,
    "SELECT id, name, type, choices FROM fields WHERE account_id = ?"
    " AND id = ?");
STMT(FIELD_DELETE,
    "DELETE FROM fields WHERE account_id = ? AND id = ? RETURNING id");
STMT(FIELD_STRIP,
    "UPDATE contacts SET attrs = json_remove(attrs, ?)"
    " WHERE account_id = ? AND json_extract(attrs, ?) IS NOT NULL");
STMT(OPTIN, "SELECT optin FROM lists WHERE account_id = ? AND id = ?");
STMT(SUPPR_ANY, "SELECT 1 FROM suppressions WHERE account_id = ? LIMIT 1");
/* a new contact's subscription: the list was checked to be the
   account's and the contact was just made in it */
/* the deferred subscriptions of a batch of an import: the contacts the
   job made from from_id on (ids only grow), those it made in an earlier
   batch or that were there already have theirs (OR IGNORE) */
STMT(SUB_INSERT_BULK,
    "INSERT OR IGNORE INTO subscriptions (contact_id, list_id, status,"
    " created_at, updated_at, consent_source, consent_ip, consent_at)"
    " SELECT c.id, l.id, ?1, ?2, ?2, ?3, ?4, ?5 FROM contacts c"
    " JOIN lists l ON l.account_id = c.account_id"
    " WHERE c.account_id = ?6 AND l.id = ?7 AND c.id >= ?8"
    " AND c.import_job = ?9");
STMT(ACCOUNT_EXISTS, "SELECT 1 FROM accounts WHERE id = ?");
STMT(SUB_INSERT_NEW,
    "INSERT INTO subscriptions (contact_id, list_id, status,"
    " created_at, updated_at, consent_source, consent_ip, consent_at)"
    " VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)");
STMT(SUPPR_CHECK,
    "SELECT 1 FROM suppressions WHERE account_id = ? AND email = ?");
STMT(CONTACT_FIND,
    "SELECT id, name, status, import_job FROM contacts"
    " WHERE account_id = ? AND email = ?");
/* attrs: ?4 alone when there is nothing to fill under it (no JSON
   parsing on the common path); an existing address inserts nothing */
STMT(CONTACT_INSERT,
    "INSERT INTO contacts (account_id, email, name, status, attrs,"
    " created_at, updated_at, import_job)"
    " VALUES (?1, ?2, ?3, 'enabled', CASE WHEN ?5 IS NULL THEN"
    " coalesce(?4, '{}') ELSE json_patch(?5, coalesce(?4, '{}')) END,"
    " ?6, ?6, ?7) ON CONFLICT (account_id, email) DO NOTHING");
/* the fill values under the contact's, the set values over them; only a
   real change touches the row */
STMT(CONTACT_MERGE,
    "UPDATE contacts SET name = CASE WHEN ?7 AND name <> '' THEN name"
    " ELSE coalesce(?1, name) END,"
    " attrs = json_patch(json_patch(coalesce(?2, '{}'), attrs),"
    " coalesce(?3, '{}')), updated_at = ?4"
    " WHERE account_id = ?5 AND id = ?6 AND"
    " (name <> CASE WHEN ?7 AND name <> '' THEN name"
    " ELSE coalesce(?1, name) END OR"
    " attrs <> json_patch(json_patch(coalesce(?2, '{}'), attrs),"
    " coalesce(?3, '{}')))");
STMT(CONTACT_GET,
    "SELECT " CONTACT_COLS " FROM contacts c WHERE c.account_id = ?"
    " AND c.id = ?");
STMT(CONTACT_GET_EMAIL,
    "SELECT " CONTACT_COLS " FROM contacts c WHERE c.account_id = ?"
    " AND c.email = ?");
STMT(CONTACT_UPDATE,
    "UPDATE contacts SET name = coalesce(?1, name),"
    " attrs = json_patch(attrs, coalesce(?2, '{}')),"
    " status = coalesce(?3, status), updated_at = ?4"
    " WHERE account_id = ?5 AND id = ?6 RETURNING id");
STMT(CONTACT_DELETE,
    "DELETE FROM contacts WHERE account_id = ? AND id = ? RETURNING id");
STMT(SUB_FIND,
    "SELECT s.status FROM subscriptions s JOIN contacts c ON"
    " c.id = s.contact_id WHERE c.account_id = ? AND s.contact_id = ? AND"
    " s.list_id = ?");
/* The join keeps the contact and the list in the same account. */
STMT(SUB_INSERT,
    "INSERT INTO subscriptions (contact_id, list_id, status,"
    " created_at, updated_at, consent_source, consent_ip, consent_at)"
    " SELECT c.id, l.id, ?1, ?2, ?2, ?3, ?4, ?5 FROM contacts c"
    " JOIN lists l ON l.account_id = c.account_id"
    " WHERE c.account_id = ?6 AND c.id = ?7 AND l.id = ?8");
/* consent columns change only when a consent is given */
STMT(SUB_SET,
    "UPDATE subscriptions SET status = ?1, updated_at = ?2,"
    " consent_source = coalesce(?3, consent_source),"
    " consent_ip = CASE WHEN ?3 IS NULL THEN consent_ip ELSE ?4 END,"
    " consent_at = coalesce(?5, consent_at)"
    " WHERE contact_id = ?7 AND list_id = ?8 AND contact_id IN"
    " (SELECT id FROM contacts WHERE account_id = ?6)");
STMT(SUB_LIST,
    "SELECT s.list_id, l.name, s.status, s.created_at, s.updated_at,"
    " s.consent_source, s.consent_ip, s.consent_at FROM subscriptions s"
    " JOIN lists l ON l.id = s.list_id JOIN contacts c ON c.id ="
    " s.contact_id WHERE c.account_id = ? AND l.account_id = c.account_id"
    " AND s.contact_id = ? ORDER BY l.name");
STMT(SUB_DELETE,
    "DELETE FROM subscriptions WHERE contact_id = ? AND list_id = ? AND"
    " contact_id IN (SELECT id FROM contacts WHERE account_id = ?)"
    " RETURNING contact_id");
STMT(SUPPR_LIST,
    "SELECT email, reason, created_at FROM suppressions"
    " WHERE account_id = ? AND email > ? ORDER BY email LIMIT ?");

STMT(SUPPR_OF_CONTACT,
    "SELECT 1 FROM suppressions p JOIN contacts c ON"
    " c.account_id = p.account_id AND c.email = p.email"
    " WHERE c.account_id = ? AND c.id = ?");

static const struct store_value null_value = { .type = STORE_NULL };

/* opt_text - a text parameter, or NULL for a NULL pointer */
static struct store_value
opt_text(const char *s)
{
	return s != NULL ? (struct store_value)P_TEXT(s) : null_value;
}

/* ---- transactions ---- */

int
store_tx_begin(struct store *s, const char **error_r)
{
	const char *err;

	if (s->in_tx)
		return store_fail(s, error_r, "a transaction is already open");
	if (store_begin(s, true, &err) < 0)
		return store_fail(
		    s, error_r, "beginning a transaction: %s", err);
	s->in_tx = true;
	return 0;
}

int
store_tx_commit(struct store *s, const char **error_r)
{
	const char *err;

	if (!s->in_tx)
		return store_fail(s, error_r, "no transaction is open");
	s->in_tx = false;
	if (s->driver->commit(s->conn, &err) < 0) {
		s->driver->rollback(s->conn);
		return store_fail(s, error_r, "committing: %s", err);
	}
	return 0;
}

void
store_tx_rollback(struct store *s)
{
	if (s->in_tx) {
		s->in_tx = false;
		s->driver->rollback(s->conn);
	}
}

/*
 * tx_own - begin a write transaction unless the caller has one open;
 * *own_r says whether tx_end must end it.  0 or -1 (err).
 */
static int
tx_own(struct store *s, bool *own_r, const char **err)
{
	*own_r = !s->in_tx;
	if (!*own_r)
		return 0;
	return store_begin(s, true, err);
}

/* tx_end - commit (ok) or roll back a transaction tx_own began */
static int
tx_end(struct store *s, bool own, bool ok, const char **err)
{
	if (!own)
		return ok ? 0 : -1;
	if (ok && s->driver->commit(s->conn, err) == 0)
		return 0;
	s->driver->rollback(s->conn);
	return -1;
}

/* ---- lists by id ---- */

/*
 * string_array_valid - whether text is a JSON array of min..max strings
 * of 1-64 bytes with no quote, backslash or control byte (so there are
 * no escapes to decode), pairwise different when distinct: the shape
 * of list tags and of a one_of field's choices.
 */
static bool
string_array_valid(const char *text, int min, int max, bool distinct)
{
	const char *p = text, *seen[100];
	size_t seen_len[100];
	int n = 0;

	assert(max <= (int)NELEM(seen));
	while (*p == ' ')
		p++;
	if (*p++ != '[')
		return false;
	while (*p == ' ')
		p++;
	if (*p == ']')
		return p[1] == '\0' && min == 0;
	for (;;) {
		const char *start;
		size_t len = 0;

		if (*p++ != '"' || n == max)
			return false;
		for (start = p; *p != '"'; p++, len++)
			if (*p == '\0' || *p == '\\' ||
			    (unsigned char)*p < 0x20 || len >= 64)
				return false;
		if (len == 0)
			return false;
		for (int i = 0; distinct && i < n; i++)
			if (seen_len[i] == len &&
			    memcmp(seen[i], start, len) == 0)
				return false;
		seen[n] = start;
		seen_len[n++] = len;
		p++;
		while (*p == ' ')
			p++;
		if (*p == ']')
			return p[1] == '\0' && n >= min;
		if (*p++ != ',')
			return false;
		while (*p == ' ')
			p++;
	}
}

bool
store_list_tags_valid(const char *tags)
{
	return strlen(tags) <= STORE_LIST_TAGS_MAX &&
	    string_array_valid(tags, 0, 50, false);
}

struct list_info_ctx {
	struct store_list_info *out;
	bool found;
};

static int
list_info_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct list_info_ctx *ctx = arg;
	struct store_list_info *o = ctx->out;

	assert(ncols == 10);
	memset(o, 0, sizeof(*o));
	o->list.id = cols[0].i;
	store_copy(o->list.name, sizeof(o->list.name), &cols[1]);
	store_copy(o->list.description, sizeof(o->list.description), &cols[2]);
	store_copy(o->list.optin, sizeof(o->list.optin), &cols[3]);
	o->list.created_at = cols[4].i;
	store_copy(o->tags, sizeof(o->tags), &cols[5]);
	o->subscribed = cols[6].i;
	o->unconfirmed = cols[7].i;
	o->unsubscribed = cols[8].i;
	o->bounced = cols[9].i;
	ctx->found = true;
	return 1;
}

int
store_list_get(struct store *s, int64_t account_id, int64_t id,
    struct store_list_info *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct list_info_ctx ctx = { .out = out };
	const char *err;

	if (store_run(
		s, &stmt_LIST_GET, p, NELEM(p), list_info_row, &ctx, &err) < 0)
		return store_fail(
		    s, error_r, "reading list %lld: %s", (long long)id, err);
	if (!ctx.found)
		return store_not_found(s, error_r,
		    "no list with id %lld in this account", (long long)id);
	return 0;
}

int
store_list_update(struct store *s, int64_t account_id, int64_t id,
    const char *name, const char *description, const char *optin,
    const char *tags, const char **error_r)
{
	struct store_value p[] = { opt_text(name), opt_text(description),
		opt_text(optin), opt_text(tags), P_INT(account_id), P_INT(id) };
	struct store_int_result r;
	const char *err;
	char q[65];
	int ret;

	if (name != NULL && !store_text_valid(name, 1, STORE_LIST_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid list name '%s': use 1-%d bytes, no control "
		    "characters",
		    store_quote(name, q), STORE_LIST_NAME_MAX);
	if (description != NULL &&
	    !store_text_valid(description, 0, STORE_LIST_DESCRIPTION_MAX))
		return store_fail(s, error_r,
		    "invalid list description: at most %d bytes, no control "
		    "characters",
		    STORE_LIST_DESCRIPTION_MAX);
	if (optin != NULL && strcmp(optin, "single") != 0 &&
	    strcmp(optin, "double") != 0)
		return store_fail(s, error_r,
		    "invalid opt-in '%s': use single or double",
		    store_quote(optin, q));
	if (tags != NULL && !store_list_tags_valid(tags))
		return store_fail(s, error_r,
		    "invalid tags: a JSON array of at most 50 strings of 1-64 "
		    "bytes without quotes, backslashes or control characters");
	ret = store_run_int(s, &stmt_LIST_UPDATE, p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "list '%s' already exists in this account",
		    store_quote(name, q));
	if (ret < 0)
		return store_fail(
		    s, error_r, "updating list %lld: %s", (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no list with id %lld in this account", (long long)id);
	return 0;
}

int
store_list_delete_id(
    struct store *s, int64_t account_id, int64_t id, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct store_int_result r;
	const char *err;

	if (store_run_int(s, &stmt_LIST_DELETE, p, NELEM(p), &r, &err) < 0)
		return store_fail(
		    s, error_r, "deleting list %lld: %s", (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no list with id %lld in this account", (long long)id);
	return 0;
}

/* ---- custom fields ---- */

static const char *const field_reserved[] = { "email", "name", "status",
	"created", "updated", "joined", "list", "id", "attrs" };
static const char *const field_types[] = { "text", "number", "date", "boolean",
	"one_of" };

bool
store_field_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STORE_FIELD_NAME_MAX ||
	    !((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
			(name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
			return false;
	for (size_t i = 0; i < NELEM(field_reserved); i++)
		if (strcmp(name, field_reserved[i]) == 0)
			return false;
	return true;
}

/* choices_valid - a JSON array of 1-100 distinct simple strings */
static bool
choices_valid(const char *choices)
{
	return strlen(choices) <= STORE_FIELD_CHOICES_MAX &&
	    string_array_valid(choices, 1, 100, true);
}

int
store_field_create(struct store *s, int64_t account_id, const char *name,
    const char *type, const char *choices, int64_t *id_r, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(name),
		P_TEXT(type), opt_text(choices) };
	struct store_int_result r;
	bool type_ok = false;
	const char *err;
	char q[65];
	int ret;

	if (!store_field_name_valid(name))
		return store_fail(s, error_r,
		    "invalid field name '%s': use [a-z_][a-z0-9_]{0,63}, not "
		    "a built-in name (email, name, status, created, updated, "
		    "joined, list, id)",
		    store_quote(name, q));
	for (size_t i = 0; i < NELEM(field_types); i++)
		type_ok |= strcmp(type, field_types[i]) == 0;
	if (!type_ok)
		return store_fail(s, error_r,
		    "invalid type '%s' of field '%s': use text, number, date, "
		    "boolean or one_of",
		    store_quote(type, q), name);
	if ((strcmp(type, "one_of") == 0) != (choices != NULL))
		return store_fail(s, error_r,
		    "field '%s': choices are needed for one_of, and only "
		    "for it",
		    name);
	if (choices != NULL && !choices_valid(choices))
		return store_fail(s, error_r,
		    "field '%s': choices must be a JSON array of 1-100 "
		    "distinct "
		    "strings of 1-64 bytes without quotes, backslashes or "
		    "control characters",
		    name);
	ret = store_run_int(s, &stmt_FIELD_INSERT, p, NELEM(p), &r, &err);
	if (ret == STORE_DB_UNIQUE)
		return store_fail(s, error_r,
		    "field '%s' already exists in this account", name);
	if (ret == STORE_DB_FOREIGN_KEY)
		return store_fail(s, error_r, "no account with id %lld",
		    (long long)account_id);
	if (ret < 0)
		return store_fail(
		    s, error_r, "creating field '%s': %s", name, err);
	if (id_r != NULL)
		*id_r = r.value;
	return 0;
}

struct field_ctx {
	struct store *s;
	struct store_field *out;
	bool found;
	int (*cb)(void *, const struct store_field *);
	void *arg;
	int stop;
};

static int
field_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct field_ctx *ctx = arg;
	struct store_field f, *o = ctx->out != NULL ? ctx->out : &f;

	assert(ncols == 4);
	memset(o, 0, sizeof(*o));
	o->id = cols[0].i;
	store_copy(o->name, sizeof(o->name), &cols[1]);
	store_copy(o->type, sizeof(o->type), &cols[2]);
	store_copy(o->choices, sizeof(o->choices), &cols[3]);
	ctx->found = true;
	if (ctx->cb == NULL)
		return 1;
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, o);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_field_list(struct store *s, int64_t account_id,
    int (*cb)(void *arg, const struct store_field *f), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct field_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_run(s, &stmt_FIELD_LIST, p, NELEM(p), field_row, &ctx, &err) <
	    0)
		return store_fail(s, error_r, "listing fields: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_field_get(struct store *s, int64_t account_id, int64_t id,
    struct store_field *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct field_ctx ctx = { .s = s, .out = out };
	const char *err;

	if (store_run(s, &stmt_FIELD_GET, p, NELEM(p), field_row, &ctx, &err) <
	    0)
		return store_fail(
		    s, error_r, "reading field %lld: %s", (long long)id, err);
	if (!ctx.found)
		return store_not_found(s, error_r,
		    "no field with id %lld in this account", (long long)id);
	return 0;
}

int
store_field_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r)
{
	struct store_field f;
	struct store_int_result r;
	char path[STORE_FIELD_NAME_MAX + 8];
	const char *err;
	bool own;
	int ret = store_field_get(s, account_id, id, &f, error_r);

	if (ret != 0)
		return ret;
	snprintf(path, sizeof(path), "$.\"%s\"", f.name);
	{
		struct store_value pd[] = { P_INT(account_id), P_INT(id) };
		struct store_value ps[] = { P_TEXT(path), P_INT(account_id),
			P_TEXT(path) };

		if (tx_own(s, &own, &err) < 0)
			return store_fail(
			    s, error_r, "deleting field: %s", err);
		ret = store_run_int(
			  s, &stmt_FIELD_DELETE, pd, NELEM(pd), &r, &err) < 0 ||
		    store_run(s, &stmt_FIELD_STRIP, ps, NELEM(ps), NULL, NULL,
			&err) < 0;
		if (tx_end(s, own, ret == 0, &err) < 0)
			return store_fail(
			    s, error_r, "deleting field '%s': %s", f.name, err);
	}
	return 0;
}

/* ---- contacts ---- */

struct contact_ctx {
	struct store *s;
	store_contact_cb *cb;
	void *arg;
	int stop;
	int64_t rows;
};

static int
contact_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct contact_ctx *ctx = arg;
	struct store_contact c = {
		.id = cols[0].i,
		.email = cols[1].type == STORE_TEXT ? cols[1].s : "",
		.name = cols[2].type == STORE_TEXT ? cols[2].s : "",
		.status = cols[3].type == STORE_TEXT ? cols[3].s : "",
		.attrs = cols[4].type == STORE_TEXT ? cols[4].s : "{}",
		.created_at = cols[5].i,
		.updated_at = cols[6].i,
	};

	assert(ncols == 7);
	ctx->rows++;
	if (ctx->cb == NULL)
		return 0;
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &c);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_contact_get(struct store *s, int64_t account_id, int64_t id,
    store_contact_cb *cb, void *arg, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct contact_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_run(
		s, &stmt_CONTACT_GET, p, NELEM(p), contact_row, &ctx, &err) < 0)
		return store_fail(
		    s, error_r, "reading contact %lld: %s", (long long)id, err);
	if (ctx.rows == 0)
		return store_not_found(s, error_r,
		    "no contact with id %lld in this account", (long long)id);
	return 0;
}

int
store_contact_find(struct store *s, int64_t account_id, const char *email,
    store_contact_cb *cb, void *arg, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(email) };
	struct contact_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;
	char q[65];

	if (store_run(s, &stmt_CONTACT_GET_EMAIL, p, NELEM(p), contact_row,
		&ctx, &err) < 0)
		return store_fail(s, error_r, "looking up '%s': %s",
		    store_quote(email, q), err);
	if (ctx.rows == 0)
		return store_not_found(s, error_r,
		    "no contact '%s' in this account", store_quote(email, q));
	return 0;
}

/*
 * contact_sql - the SELECT of q into b (count: SELECT count(*)) and its
 * parameters into p (at most pmax); the text is built only from fixed
 * pieces and the segment compiler's output.  Returns the number of
 * parameters, or -1 if they do not fit.
 */
static int
contact_sql(struct buf *b, int64_t account_id,
    const struct store_contact_query *q, bool count, struct store_value *p,
    size_t pmax)
{
	size_t n = 0;

	if (q->nparams + 8 > pmax)
		return -1;
	buf_printf(b, "SELECT %s FROM contacts c WHERE c.account_id = ?",
	    count ? "count(*)" : CONTACT_COLS);
	p[n++] = (struct store_value)P_INT(account_id);
	if (!count) {
		buf_printf(b, " AND c.id > ?");
		p[n++] = (struct store_value)P_INT(q->after_id);
	}
	if (q->email_prefix != NULL && q->email_prefix[0] != '\0') {
		/* a range on the (account_id, email) index; char(1114111)
		   sorts after every character */
		buf_printf(
		    b, " AND c.email >= ? AND c.email < ? || char(1114111)");
		p[n++] = (struct store_value)P_TEXT(q->email_prefix);
		p[n++] = (struct store_value)P_TEXT(q->email_prefix);
	}
	if (q->list_id != 0) {
		buf_printf(b,
		    " AND EXISTS (SELECT 1 FROM subscriptions s WHERE"
		    " s.contact_id = c.id AND s.list_id = ?%s)",
		    q->list_status != NULL ? " AND s.status = ?" : "");
		p[n++] = (struct store_value)P_INT(q->list_id);
		if (q->list_status != NULL)
			p[n++] = (struct store_value)P_TEXT(q->list_status);
	}
	if (q->where != NULL) {
		buf_printf(b, " AND (%s)", q->where);
		for (size_t i = 0; i < q->nparams; i++) {
			const struct store_param *sp = &q->params[i];

			switch (sp->type) {
			case STORE_PARAM_INT:
				p[n++] = (struct store_value)P_INT(sp->i);
				break;
			case STORE_PARAM_REAL:
				p[n++] =
				    (struct store_value){ .type = STORE_REAL,
					    .d = sp->d };
				break;
			case STORE_PARAM_TEXT:
				p[n++] = (struct store_value)P_TEXT(sp->s);
				break;
			}
		}
	}
	if (!count) {
		buf_printf(b, " ORDER BY c.id LIMIT ?");
		p[n++] = (struct store_value)P_INT(q->limit);
	}
	return (int)n;
}

#define CONTACT_QUERY_PARAMS_MAX 256

int
store_contact_list(struct store *s, int64_t account_id,
    const struct store_contact_query *q, store_contact_cb *cb, void *arg,
    const char **error_r)
{
	struct store_value p[CONTACT_QUERY_PARAMS_MAX];
	struct contact_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	struct store_stmt st = { .id = STORE_STMT_ADHOC };
	struct buf b;
	const char *err;
	int n, ret;

	if (q->limit < 1 || q->limit > 10000)
		return store_fail(s, error_r, "invalid limit %lld: use 1-10000",
		    (long long)q->limit);
	memset(&b, 0, sizeof(b));
	n = contact_sql(&b, account_id, q, false, p, NELEM(p));
	if (n < 0) {
		buf_free(&b);
		return store_fail(s, error_r, "too many segment parameters");
	}
	st.sql = buf_cstr(&b);
	ret = store_run(s, &st, p, (size_t)n, contact_row, &ctx, &err);
	buf_free(&b);
	if (ret < 0)
		return store_fail(s, error_r, "listing contacts: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

int
store_contact_count(struct store *s, int64_t account_id,
    const struct store_contact_query *q, int64_t *count_r, const char **error_r)
{
	struct store_value p[CONTACT_QUERY_PARAMS_MAX];
	struct store_stmt st = { .id = STORE_STMT_ADHOC };
	struct store_int_result r;
	struct buf b;
	const char *err;
	int n, ret;

	memset(&b, 0, sizeof(b));
	n = contact_sql(&b, account_id, q, true, p, NELEM(p));
	if (n < 0) {
		buf_free(&b);
		return store_fail(s, error_r, "too many segment parameters");
	}
	st.sql = buf_cstr(&b);
	ret = store_run_int(s, &st, p, (size_t)n, &r, &err);
	buf_free(&b);
	if (ret < 0)
		return store_fail(s, error_r, "counting contacts: %s", err);
	*count_r = r.value;
	return 0;
}

int
store_contact_update(struct store *s, int64_t account_id, int64_t id,
    const char *name, const char *attrs_set, const char *status,
    const char **error_r)
{
	struct store_value p[] = { opt_text(name), opt_text(attrs_set),
		opt_text(status), P_INT((int64_t)time(NULL)), P_INT(account_id),
		P_INT(id) };
	struct store_int_result r;
	const char *err;

	if (name != NULL && !store_text_valid(name, 0, STORE_CONTACT_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid name: at most %d bytes, no control characters",
		    STORE_CONTACT_NAME_MAX);
	if (status != NULL && strcmp(status, "enabled") != 0 &&
	    strcmp(status, "blocklisted") != 0)
		return store_fail(s, error_r,
		    "invalid contact status: use enabled or blocklisted");
	if (attrs_set != NULL && strlen(attrs_set) > STORE_ATTRS_MAX)
		return store_fail(s, error_r,
		    "custom field values over %d bytes", STORE_ATTRS_MAX);
	if (store_run_int(s, &stmt_CONTACT_UPDATE, p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "updating contact %lld: %s",
		    (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no contact with id %lld in this account", (long long)id);
	return 0;
}

int
store_contact_delete(
    struct store *s, int64_t account_id, int64_t id, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(id) };
	struct store_int_result r;
	const char *err;

	if (store_run_int(s, &stmt_CONTACT_DELETE, p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "deleting contact %lld: %s",
		    (long long)id, err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "no contact with id %lld in this account", (long long)id);
	return 0;
}

/* ---- store_contact_put ---- */

struct found_contact {
	bool found;
	int64_t id;
	char name[STORE_CONTACT_NAME_MAX + 1];
	bool blocklisted;
	int64_t job;
};

static int
found_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct found_contact *c = arg;

	assert(ncols == 4);
	c->found = true;
	c->id = cols[0].i;
	store_copy(c->name, sizeof(c->name), &cols[1]);
	c->blocklisted =
	    cols[2].type == STORE_TEXT && strcmp(cols[2].s, "blocklisted") == 0;
	c->job = cols[3].type == STORE_INT ? cols[3].i : 0;
	return 1;
}

struct text_result {
	bool found;
	char text[16];
};

static int
text_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct text_result *r = arg;

	assert(ncols >= 1);
	r->found = true;
	store_copy(r->text, sizeof(r->text), &cols[0]);
	return 1;
}

/* consent_params - ?3 source, ?4 ip, ?5 at of SUB_INSERT and SUB_SET */
static void
consent_params(
    const struct store_consent *c, int64_t now, struct store_value *p)
{
	p[0] = c != NULL ? (struct store_value)P_TEXT(c->source) : null_value;
	p[1] = c != NULL && c->ip != NULL ? (struct store_value)P_TEXT(c->ip)
					  : null_value;
	p[2] = c != NULL ? (struct store_value)P_INT(c->at != 0 ? c->at : now)
			 : null_value;
}

/* sub_write - insert (insert) or set a subscription's status; -1 + err */
static int
sub_write(struct store *s, bool insert, int64_t account_id, int64_t contact_id,
    int64_t list_id, const char *status, const struct store_consent *consent,
    int64_t now, const char **err)
{
	struct store_value p[8];

	p[0] = (struct store_value)P_TEXT(status);
	p[1] = (struct store_value)P_INT(now);
	consent_params(consent, now, &p[2]);
	p[5] = (struct store_value)P_INT(account_id);
	p[6] = (struct store_value)P_INT(contact_id);
	p[7] = (struct store_value)P_INT(list_id);
	if (store_run(s, insert ? &stmt_SUB_INSERT : &stmt_SUB_SET, p, NELEM(p),
		NULL, NULL, err) < 0)
		return -1;
	if (s->driver->changes(s->conn) == 0) {
		*err = "the list or contact went away";
		return -1;
	}
	return 0;
}

/* put_decide - store_contact_put inside its transaction: 0, 1 no list, -1 */
static int
put_decide(struct store *s, int64_t account_id,
    const struct store_contact_in *in, enum store_subscribe_result *res,
    int64_t *id_r, const char **err)
{
	struct store_value pe[] = { P_INT(account_id), P_TEXT(in->email) };
	struct text_result optin = { 0 }, sub = { 0 };
	struct found_contact c = { 0 };
	struct store_int_result r;
	int64_t now = (int64_t)time(NULL);
	bool merge, changed = false;

	*id_r = 0;
	if (in->list_id != 0) {
		struct store_value pl[] = { P_INT(account_id),
			P_INT(in->list_id) };

		if (s->in_tx && s->tx_list_id == in->list_id &&
		    s->tx_list_account == account_id) {
			optin.found = true;
			memcpy(optin.text, s->tx_optin, sizeof(s->tx_optin));
		} else if (store_run(s, &stmt_OPTIN, pl, NELEM(pl), text_row,
			       &optin, err) < 0) {
			return -1;
		}
		if (!optin.found)
			return 1;
		if (s->in_tx) {
			s->tx_list_id = in->list_id;
			s->tx_list_account = account_id;
			memcpy(s->tx_optin, optin.text, sizeof(s->tx_optin));
		}
	}
	/* an account without suppressions (known once per transaction)
	   needs no look-up per address */
	if (!s->in_tx || s->tx_suppr_any != 0 ||
	    s->tx_suppr_account != account_id) {
		if (s->in_tx &&
		    (s->tx_suppr_any < 0 ||
			s->tx_suppr_account != account_id)) {
			struct store_value pa[] = { P_INT(account_id) };

			if (store_run_int(
				s, &stmt_SUPPR_ANY, pa, NELEM(pa), &r, err) < 0)
				return -1;
			s->tx_suppr_any = r.rows > 0;
			s->tx_suppr_account = account_id;
		}
		if (!s->in_tx || s->tx_suppr_any) {
			if (store_run_int(s, &stmt_SUPPR_CHECK, pe, NELEM(pe),
				&r, err) < 0)
				return -1;
			if (r.rows > 0 && in->consent == NULL) {
				*res = STORE_SUBSCRIBE_SUPPRESSED;
				return 0;
			}
		}
	}
	if (in->mode != STORE_SUBSCRIBE_UPDATE) {
		struct store_value pc[] = { P_INT(account_id),
			P_TEXT(in->email), P_TEXT(in->name ? in->name : ""),
			opt_text(in->attrs_set), opt_text(in->attrs_fill),
			P_INT(now),
			in->job_id != 0 ? (struct store_value)P_INT(in->job_id)
					: null_value };

		if (store_run(s, &stmt_CONTACT_INSERT, pc, NELEM(pc), NULL,
			NULL, err) < 0)
			return -1;
		if (s->driver->changes(s->conn) > 0) {
			*id_r = s->driver->last_id(s->conn);
			if (in->new_id_r != NULL)
				*in->new_id_r = *id_r;
			if (in->list_id != 0 && !in->defer_subscription) {
				struct store_value ps[7];

				ps[0] = (struct store_value)P_INT(*id_r);
				ps[1] = (struct store_value)P_INT(in->list_id);
				ps[2] = (struct store_value)P_TEXT(
				    strcmp(optin.text, "double") == 0 &&
					    in->consent == NULL
					? "unconfirmed"
					: "subscribed");
				ps[3] = (struct store_value)P_INT(now);
				consent_params(in->consent, now, &ps[4]);
				if (store_run(s, &stmt_SUB_INSERT_NEW, ps,
					NELEM(ps), NULL, NULL, err) < 0)
					return -1;
			}
			*res = STORE_SUBSCRIBE_CREATED;
			return 0;
		}
	}
	if (store_run(
		s, &stmt_CONTACT_FIND, pe, NELEM(pe), found_row, &c, err) < 0)
		return -1;
	if (!c.found) {
		*res = STORE_SUBSCRIBE_SKIPPED; /* update only: none */
		return 0;
	}
	*id_r = c.id;
	if (c.blocklisted) {
		*res = STORE_SUBSCRIBE_REFUSED;
		return 0;
	}
	/* a duplicate of a row this job wrote: merge it in */
	merge = in->job_id != 0 && c.job == in->job_id;
	if (in->list_id != 0) {
		struct store_value ps[] = { P_INT(account_id), P_INT(c.id),
			P_INT(in->list_id) };

		if (store_run(s, &stmt_SUB_FIND, ps, NELEM(ps), text_row, &sub,
			err) < 0)
			return -1;
		/* The recipient (or the mail system) said no: only a new
		   consent says yes again. */
		if (sub.found &&
		    (strcmp(sub.text, "unsubscribed") == 0 ||
			strcmp(sub.text, "bounced") == 0) &&
		    in->consent == NULL) {
			*res = STORE_SUBSCRIBE_REFUSED;
			return 0;
		}
		if (!merge &&
		    ((sub.found && in->mode == STORE_SUBSCRIBE_ADD) ||
			(!sub.found && in->mode == STORE_SUBSCRIBE_UPDATE))) {
			*res = STORE_SUBSCRIBE_SKIPPED;
			return 0;
		}
	} else if (!merge && in->mode == STORE_SUBSCRIBE_ADD) {
		*res = STORE_SUBSCRIBE_SKIPPED;
		return 0;
	}
	if ((merge || in->mode != STORE_SUBSCRIBE_ADD) &&
	    (in->name != NULL || in->attrs_set != NULL ||
		in->attrs_fill != NULL)) {
		struct store_value pm[] = { opt_text(in->name),
			opt_text(in->attrs_fill), opt_text(in->attrs_set),
			P_INT(now), P_INT(account_id), P_INT(c.id),
			P_INT(in->name_if_empty) };

		if (store_run(s, &stmt_CONTACT_MERGE, pm, NELEM(pm), NULL, NULL,
			err) < 0)
			return -1;
		changed = s->driver->changes(s->conn) > 0;
	}
	if (in->list_id != 0 && !sub.found) {
		if (sub_write(s, true, account_id, c.id, in->list_id,
			strcmp(optin.text, "double") == 0 && in->consent == NULL
			    ? "unconfirmed"
			    : "subscribed",
			in->consent, now, err) < 0)
			return -1;
		*res = STORE_SUBSCRIBE_CREATED;
		return 0;
	}
	if (in->list_id != 0 && in->consent != NULL) {
		if (sub_write(s, false, account_id, c.id, in->list_id,
			"subscribed", in->consent, now, err) < 0)
			return -1;
		changed = true;
	}
	*res = changed ? STORE_SUBSCRIBE_UPDATED : STORE_SUBSCRIBE_UNCHANGED;
	return 0;
}

int
store_contact_put(struct store *s, int64_t account_id,
    const struct store_contact_in *in, enum store_subscribe_result *result_r,
    int64_t *id_r, const char **error_r)
{
	const struct store_consent *consent = in->consent;
	const char *err = NULL;
	char q[65], msg[STORE_ERROR_MAX / 2];
	int64_t id;
	bool own;
	int ret;

	if (!store_email_valid(in->email))
		return store_fail(s, error_r, "invalid email address '%s'",
		    store_quote(in->email, q));
	if (in->name != NULL &&
	    !store_text_valid(in->name, 0, STORE_CONTACT_NAME_MAX))
		return store_fail(s, error_r,
		    "invalid name of '%s': at most %d bytes, no control "
		    "characters",
		    in->email, STORE_CONTACT_NAME_MAX);
	if (in->mode != STORE_SUBSCRIBE_ADD &&
	    in->mode != STORE_SUBSCRIBE_UPSERT &&
	    in->mode != STORE_SUBSCRIBE_UPDATE)
		return store_fail(
		    s, error_r, "invalid subscribe mode %d", (int)in->mode);
	if ((in->attrs_set != NULL &&
		strlen(in->attrs_set) > STORE_ATTRS_MAX) ||
	    (in->attrs_fill != NULL &&
		strlen(in->attrs_fill) > STORE_ATTRS_MAX))
		return store_fail(s, error_r,
		    "custom field values of '%s' over %d bytes", in->email,
		    STORE_ATTRS_MAX);
	if (consent != NULL &&
	    (consent->source == NULL ||
		!store_text_valid(
		    consent->source, 1, STORE_CONSENT_SOURCE_MAX) ||
		(consent->ip != NULL && !store_printable(consent->ip, 64))))
		return store_fail(s, error_r,
		    "invalid consent record for '%s': a source of 1-%d bytes "
		    "and an IP address are needed",
		    in->email, STORE_CONSENT_SOURCE_MAX);
	if (tx_own(s, &own, &err) < 0)
		return store_fail(
		    s, error_r, "writing '%s': %s", in->email, err);
	ret = put_decide(s, account_id, in, result_r, &id, &err);
	if (ret < 0)
		snprintf(msg, sizeof(msg), "%s", err);
	if (tx_end(s, own, ret >= 0, &err) < 0) {
		if (ret >= 0)
			snprintf(msg, sizeof(msg), "%s", err);
		if (ret == 1)
			return store_not_found(s, error_r,
			    "no list with id %lld in this account",
			    (long long)in->list_id);
		return store_fail(
		    s, error_r, "writing '%s': %s", in->email, msg);
	}
	if (ret == 1)
		return store_not_found(s, error_r,
		    "no list with id %lld in this account",
		    (long long)in->list_id);
	if (id_r != NULL)
		*id_r = id;
	return 0;
}

int
store_contact_subscribe(struct store *s, int64_t account_id, int64_t list_id,
    const char *email, const char *name, const struct store_consent *consent,
    enum store_subscribe_mode mode, enum store_subscribe_result *result_r,
    const char **error_r)
{
	struct store_contact_in in = { .email = email,
		.name = name,
		.list_id = list_id,
		.consent = consent,
		.mode = mode };

	return store_contact_put(s, account_id, &in, result_r, NULL, error_r);
}

/* ---- subscriptions ---- */

struct sub_ctx {
	struct store *s;
	int (*cb)(void *, const struct store_subscription *);
	void *arg;
	int stop;
};

static int
sub_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct sub_ctx *ctx = arg;
	struct store_subscription sub = {
		.list_id = cols[0].i,
		.list_name = cols[1].type == STORE_TEXT ? cols[1].s : "",
		.status = cols[2].type == STORE_TEXT ? cols[2].s : "",
		.created_at = cols[3].i,
		.updated_at = cols[4].i,
		.consent_source = cols[5].type == STORE_TEXT ? cols[5].s : NULL,
		.consent_ip = cols[6].type == STORE_TEXT ? cols[6].s : NULL,
		.consent_at = cols[7].type == STORE_INT ? cols[7].i : 0,
	};

	assert(ncols == 8);
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &sub);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_subscription_list(struct store *s, int64_t account_id, int64_t contact_id,
    int (*cb)(void *arg, const struct store_subscription *sub), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_INT(contact_id) };
	struct sub_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (store_run(s, &stmt_SUB_LIST, p, NELEM(p), sub_row, &ctx, &err) < 0)
		return store_fail(s, error_r, "listing subscriptions: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

/* sub_set_decide - store_subscription_set in its transaction: 0, 1, 2, -1 */
static int
sub_set_decide(struct store *s, int64_t account_id, int64_t contact_id,
    int64_t list_id, const char *status, const struct store_consent *consent,
    const char **err)
{
	struct store_value pl[] = { P_INT(account_id), P_INT(list_id) };
	struct store_value pc[] = { P_INT(account_id), P_INT(contact_id) };
	struct store_value ps[] = { P_INT(account_id), P_INT(contact_id),
		P_INT(list_id) };
	struct text_result optin = { 0 }, sub = { 0 };
	struct contact_ctx cc = { .s = s };
	int64_t now = (int64_t)time(NULL);
	bool live = strcmp(status, "subscribed") == 0 ||
	    strcmp(status, "unconfirmed") == 0;

	if (store_run(s, &stmt_OPTIN, pl, NELEM(pl), text_row, &optin, err) < 0)
		return -1;
	if (store_run(
		s, &stmt_CONTACT_GET, pc, NELEM(pc), contact_row, &cc, err) < 0)
		return -1;
	if (!optin.found || cc.rows == 0)
		return 1;
	if (store_run(s, &stmt_SUB_FIND, ps, NELEM(ps), text_row, &sub, err) <
	    0)
		return -1;
	if (live && consent == NULL) {
		struct store_int_result r;

		if (sub.found &&
		    (strcmp(sub.text, "unsubscribed") == 0 ||
			strcmp(sub.text, "bounced") == 0))
			return 2;
		/* a suppressed address needs consent too */
		if (store_run_int(
			s, &stmt_SUPPR_OF_CONTACT, pc, NELEM(pc), &r, err) < 0)
			return -1;
		if (r.rows > 0)
			return 2;
	}
	return sub_write(s, !sub.found, account_id, contact_id, list_id, status,
		   consent, now, err) < 0
	    ? -1
	    : 0;
}

int
store_subscription_set(struct store *s, int64_t account_id, int64_t contact_id,
    int64_t list_id, const char *status, const struct store_consent *consent,
    const char **error_r)
{
	const char *err = NULL;
	char msg[STORE_ERROR_MAX / 2] = "";
	bool own;
	int ret;

	if (strcmp(status, "subscribed") != 0 &&
	    strcmp(status, "unconfirmed") != 0 &&
	    strcmp(status, "unsubscribed") != 0 &&
	    strcmp(status, "bounced") != 0)
		return store_fail(s, error_r,
		    "invalid subscription status: use subscribed, "
		    "unconfirmed, unsubscribed or bounced");
	if (consent != NULL &&
	    (consent->source == NULL ||
		!store_text_valid(
		    consent->source, 1, STORE_CONSENT_SOURCE_MAX) ||
		(consent->ip != NULL && !store_printable(consent->ip, 64))))
		return store_fail(s, error_r,
		    "invalid consent record: a source of 1-%d bytes is needed",
		    STORE_CONSENT_SOURCE_MAX);
	if (tx_own(s, &own, &err) < 0)
		return store_fail(s, error_r, "subscription: %s", err);
	ret = sub_set_decide(
	    s, account_id, contact_id, list_id, status, consent, &err);
	if (ret < 0)
		snprintf(msg, sizeof(msg), "%s", err);
	if (tx_end(s, own, ret == 0, &err) < 0 && ret == 0)
		snprintf(msg, sizeof(msg), "%s", err);
	if (ret == 1)
		return store_not_found(s, error_r,
		    "no contact %lld or list %lld in this account",
		    (long long)contact_id, (long long)list_id);
	if (ret == 2) {
		store_fail(s, error_r,
		    "contact %lld unsubscribed, bounced or is suppressed: "
		    "subscribing again needs a consent record",
		    (long long)contact_id);
		return 2;
	}
	if (msg[0] != '\0')
		return store_fail(s, error_r, "subscription: %s", msg);
	return 0;
}

int
store_subscription_delete(struct store *s, int64_t account_id,
    int64_t contact_id, int64_t list_id, const char **error_r)
{
	struct store_value p[] = { P_INT(contact_id), P_INT(list_id),
		P_INT(account_id) };
	struct store_int_result r;
	const char *err;

	if (store_run_int(s, &stmt_SUB_DELETE, p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "deleting subscription: %s", err);
	if (r.rows == 0)
		return store_not_found(s, error_r,
		    "contact %lld has no subscription to list %lld in this "
		    "account",
		    (long long)contact_id, (long long)list_id);
	return 0;
}

/* ---- suppressions, listed ---- */

struct suppr_ctx {
	struct store *s;
	int (*cb)(void *, const struct store_suppression *);
	void *arg;
	int stop;
};

static int
suppr_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct suppr_ctx *ctx = arg;
	struct store_suppression sup = {
		.email = cols[0].type == STORE_TEXT ? cols[0].s : "",
		.reason = cols[1].type == STORE_TEXT ? cols[1].s : "",
		.created_at = cols[2].i,
	};

	assert(ncols == 3);
	ctx->s->in_callback = true;
	ctx->stop = ctx->cb(ctx->arg, &sup);
	ctx->s->in_callback = false;
	return ctx->stop;
}

int
store_suppression_list(struct store *s, int64_t account_id,
    const char *after_email, int64_t limit,
    int (*cb)(void *arg, const struct store_suppression *sup), void *arg,
    const char **error_r)
{
	struct store_value p[] = { P_INT(account_id),
		P_TEXT(after_email != NULL ? after_email : ""), P_INT(limit) };
	struct suppr_ctx ctx = { .s = s, .cb = cb, .arg = arg };
	const char *err;

	if (limit < 1 || limit > 10000)
		return store_fail(s, error_r, "invalid limit %lld: use 1-10000",
		    (long long)limit);
	if (store_run(s, &stmt_SUPPR_LIST, p, NELEM(p), suppr_row, &ctx, &err) <
	    0)
		return store_fail(s, error_r, "listing suppressions: %s", err);
	return store_stopped(s, ctx.stop, error_r);
}

/* ---- one suppression ---- */

STMT(SUPPR_GET,
    "SELECT email, reason, created_at FROM suppressions"
    " WHERE account_id = ? AND email = ?");

static int
suppr_get_row(void *arg, const struct store_value *cols, size_t ncols)
{
	struct store_suppression_row *out = arg;

	assert(ncols == 3);
	store_copy(out->email, sizeof(out->email), &cols[0]);
	store_copy(out->reason, sizeof(out->reason), &cols[1]);
	out->created_at = cols[2].i;
	return 0;
}

int
store_suppression_get(struct store *s, int64_t account_id, const char *email,
    struct store_suppression_row *out, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id), P_TEXT(email) };
	const char *err;

	memset(out, 0, sizeof(*out));
	out->created_at = -1;
	if (store_run(
		s, &stmt_SUPPR_GET, p, NELEM(p), suppr_get_row, out, &err) < 0)
		return store_fail(s, error_r, "reading suppression: %s", err);
	if (out->created_at < 0)
		return store_not_found(s, error_r,
		    "'%s' is not suppressed in this account", email);
	return 0;
}

int
store_subscribe_new_contacts(struct store *s, int64_t account_id,
    int64_t list_id, int64_t job_id, int64_t from_id,
    const struct store_consent *consent, const char **error_r)
{
	struct store_value pl[] = { P_INT(account_id), P_INT(list_id) };
	struct text_result optin = { 0 };
	struct store_value p[9];
	int64_t now = (int64_t)time(NULL);
	const char *err;
	bool own;
	int ret;

	if (tx_own(s, &own, &err) < 0)
		return store_fail(s, error_r, "subscribing: %s", err);
	ret = store_run(s, &stmt_OPTIN, pl, NELEM(pl), text_row, &optin, &err);
	if (ret == 0 && optin.found) {
		p[0] = (struct store_value)P_TEXT(
		    strcmp(optin.text, "double") == 0 && consent == NULL
			? "unconfirmed"
			: "subscribed");
		p[1] = (struct store_value)P_INT(now);
		consent_params(consent, now, &p[2]);
		p[5] = (struct store_value)P_INT(account_id);
		p[6] = (struct store_value)P_INT(list_id);
		p[7] = (struct store_value)P_INT(from_id);
		p[8] = (struct store_value)P_INT(job_id);
		ret = store_run(
		    s, &stmt_SUB_INSERT_BULK, p, NELEM(p), NULL, NULL, &err);
	}
	if (tx_end(s, own, ret == 0, &err) < 0 || ret < 0)
		return store_fail(s, error_r, "subscribing: %s", err);
	if (!optin.found)
		return store_not_found(s, error_r,
		    "no list with id %lld in this account", (long long)list_id);
	return 0;
}

int
store_account_exists(
    struct store *s, int64_t account_id, bool *yes_r, const char **error_r)
{
	struct store_value p[] = { P_INT(account_id) };
	struct store_int_result r;
	const char *err;

	if (store_run_int(s, &stmt_ACCOUNT_EXISTS, p, NELEM(p), &r, &err) < 0)
		return store_fail(s, error_r, "%s", err);
	*yes_r = r.rows > 0;
	return 0;
}
