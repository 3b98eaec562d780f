/*
 * accounts.c - /api/v1/accounts: the node's accounts, for operator keys
 * (scope admin, checked by the dispatcher).  These routes take the
 * account from the path: they are the only ones that may.
 *
 *   GET    /api/v1/accounts              every account, by name
 *   POST   /api/v1/accounts              {name}
 *   GET    /api/v1/accounts/{id}         one account
 *   PATCH  /api/v1/accounts/{id}         {disabled}
 *   DELETE /api/v1/accounts/{id}         the account and all it owns
 *   GET    /api/v1/accounts/{id}/users   the account's users, by email
 *   POST   /api/v1/accounts/{id}/users   {email, password, role}
 *   DELETE /api/v1/accounts/{id}/users/{user_id}
 *   POST   /api/v1/accounts/{id}/keys    {name?, scopes?} (shown once)
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/api.h"
#include "api/routes.h"
#include "lib/buf.h"
#include "lib/util.h"

static json_t *
account_json(const struct store_account *a)
{
	return json_pack("{s:I, s:s, s:b, s:o}", "id", (json_int_t)a->id,
	    "name", a->name, "disabled", a->disabled, "created_at",
	    api_time(a->created_at));
}

static int
account_cb(void *arg, const struct store_account *a)
{
	json_array_append_new(arg, account_json(a));
	return 0;
}

static void
accounts_get(struct api_ctx *c, struct http_req *r)
{
	json_t *data = json_array();
	const char *error;
	int ret = store_account_list(c->s, account_cb, data, &error);

	api_reply_data(r, ret, error, data);
}

/* reply_account - account id as JSON with status, or its 404 */
static void
reply_account(struct api_ctx *c, struct http_req *r, int64_t id, int status)
{
	struct store_account a;
	const char *error;
	int ret = store_account_get(c->s, id, &a, &error);

	if (!api_reply_store(r, ret, error))
		http_reply_json(r, status, account_json(&a));
}

static void
accounts_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r);
	const char *name, *error;
	bool bad = false;
	int64_t id;
	int ret;

	if (body == NULL)
		return;
	name = api_str(r, body, "name", true, &bad);
	if (!bad) {
		ret = store_account_create(c->s, name, &id, &error);
		if (!api_reply_store(r, ret, error))
			reply_account(c, r, id, 201);
	}
	json_decref(body);
}

static void
account_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");

	if (id != 0)
		reply_account(c, r, id, 200);
}

static void
account_patch(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *error;
	json_t *body, *v;
	int ret;

	if (id == 0 || (body = http_body_json(r)) == NULL)
		return;
	v = json_object_get(body, "disabled");
	if (v != NULL && !json_is_boolean(v)) {
		http_reply_error(r, 400, "invalid", "disabled",
		    "disabled must be true or false");
		json_decref(body);
		return;
	}
	if (v != NULL) {
		ret = store_account_set_disabled(
		    c->s, id, json_is_true(v), &error);
		if (api_reply_store(r, ret, error)) {
			json_decref(body);
			return;
		}
	}
	json_decref(body);
	reply_account(c, r, id, 200);
}

static void
account_delete(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *error;
	int ret;

	if (id == 0)
		return;
	ret = store_account_delete(c->s, id, &error);
	if (!api_reply_store(r, ret, error))
		http_reply_json(r, 204, NULL);
}

/* account_exists - whether account id exists; false after replying */
static bool
account_exists(struct api_ctx *c, struct http_req *r, int64_t id)
{
	struct store_account a;
	const char *error;
	int ret = store_account_get(c->s, id, &a, &error);

	return !api_reply_store(r, ret, error);
}

static void
users_post(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id"), uid;
	const char *email, *password, *role, *error;
	bool bad = false;
	json_t *body;
	int ret;

	if (id == 0 || (body = http_body_json(r)) == NULL)
		return;
	email = api_str(r, body, "email", true, &bad);
	password = api_str(r, body, "password", true, &bad);
	role = api_str(r, body, "role", true, &bad);
	if (!bad && account_exists(c, r, id)) {
		ret = store_user_create(
		    c->s, id, email, password, role, &uid, &error);
		if (!api_reply_store(r, ret, error))
			http_reply_json(r, 201,
			    json_pack("{s:I, s:s, s:s}", "id", (json_int_t)uid,
				"email", email, "role", role));
	}
	json_decref(body);
}

static int
user_cb(void *arg, const struct store_user *u)
{
	json_array_append_new(arg,
	    json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)u->id, "email",
		u->email, "role", u->role, "created_at",
		api_time(u->created_at)));
	return 0;
}

static void
users_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *error;
	json_t *data;
	int ret;

	if (id == 0 || !account_exists(c, r, id))
		return;
	data = json_array();
	ret = store_user_list(c->s, id, user_cb, data, &error);
	api_reply_data(r, ret, error, data);
}

static void
user_delete(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id"), uid;
	const char *error;
	int ret;

	if (id == 0 || (uid = api_id(r, "user_id")) == 0 ||
	    !account_exists(c, r, id))
		return;
	ret = store_user_delete(c->s, id, uid, &error);
	if (!api_reply_store(r, ret, error))
		http_reply_json(r, 204, NULL);
}

/*
 * scopes_text - the "scopes" member (an array of strings, or one
 * comma-separated string; absent: read,write) into out; false after
 * replying 400.  An account's key never gets admin.
 */
static bool
scopes_text(struct http_req *r, json_t *body, struct buf *out)
{
	json_t *v = json_object_get(body, "scopes"), *s;
	size_t i;

	if (v == NULL || json_is_null(v))
		buf_puts(out, "read,write");
	else if (json_is_string(v))
		buf_puts(out, json_string_value(v));
	else if (json_is_array(v)) {
		json_array_foreach(v, i, s)
		{
			if (!json_is_string(s))
				goto bad;
			buf_printf(out, "%s%s", i > 0 ? "," : "",
			    json_string_value(s));
		}
	} else
		goto bad;
	if (strstr(buf_cstr(out), "admin") != NULL) {
		http_reply_error(r, 400, "invalid", "scopes",
		    "an account's key cannot have the admin scope");
		return false;
	}
	return true;
bad:
	http_reply_error(r, 400, "invalid", "scopes",
	    "scopes must be an array of \"read\" and \"write\"");
	return false;
}

/* scopes_json - comma-separated scopes as a JSON array */
static json_t *
scopes_json(const char *scopes)
{
	json_t *a = json_array();

	for (const char *p = scopes; *p != '\0';) {
		size_t n = strcspn(p, ",");

		if (n > 0)
			json_array_append_new(a, json_stringn(p, n));
		p += n + (p[n] == ',');
	}
	return a;
}

struct key_find {
	int64_t id;
	char scopes[64];
};

static int
key_cb(void *arg, const struct store_apikey *k)
{
	struct key_find *f = arg;

	if (k->id == f->id)
		snprintf(f->scopes, sizeof(f->scopes), "%s", k->scopes);
	return 0;
}

static void
keys_post(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *name, *error;
	struct key_find f = { 0 };
	char key[STORE_APIKEY_MAX];
	struct buf scopes = BUF_INIT;
	bool bad = false;
	json_t *body;
	int ret;

	if (id == 0 || (body = http_body_json(r)) == NULL)
		return;
	name = api_str(r, body, "name", false, &bad);
	if (!bad && scopes_text(r, body, &scopes) && account_exists(c, r, id)) {
		ret = store_apikey_create(c->s, id, name != NULL ? name : "api",
		    buf_cstr(&scopes), key, &f.id, &error);
		if (!api_reply_store(r, ret, error)) {
			/* the scopes as stored (normalized) */
			snprintf(f.scopes, sizeof(f.scopes), "%s",
			    buf_cstr(&scopes));
			store_apikey_list(c->s, id, key_cb, &f, &error);
			http_reply_json(r, 201,
			    json_pack("{s:I, s:s, s:o}", "id", (json_int_t)f.id,
				"key", key, "scopes", scopes_json(f.scopes)));
		}
		sodium_memzero(key, sizeof(key));
	}
	buf_free(&scopes);
	json_decref(body);
}

const struct api_route api_accounts_routes[] = {
	{ "GET", "/api/v1/accounts", API_ADMIN, accounts_get, false },
	{ "POST", "/api/v1/accounts", API_ADMIN, accounts_post, false },
	{ "GET", "/api/v1/accounts/{id}", API_ADMIN, account_get, false },
	{ "PATCH", "/api/v1/accounts/{id}", API_ADMIN, account_patch, false },
	{ "DELETE", "/api/v1/accounts/{id}", API_ADMIN, account_delete, false },
	{ "GET", "/api/v1/accounts/{id}/users", API_ADMIN, users_get, false },
	{ "POST", "/api/v1/accounts/{id}/users", API_ADMIN, users_post, false },
	{ "DELETE", "/api/v1/accounts/{id}/users/{user_id}", API_ADMIN,
	    user_delete, false },
	{ "POST", "/api/v1/accounts/{id}/keys", API_ADMIN, keys_post, false },
	{ NULL, NULL, 0, NULL, false },
};
