/*
 * lists.c - /api/v1/lists: an account's mailing lists.
 *
 *   GET    /api/v1/lists            every list, by name
 *   POST   /api/v1/lists            {name, description?, optin?, tags?}
 *   GET    /api/v1/lists/{id}       one list with its subscription counts
 *   PATCH  /api/v1/lists/{id}       any of name, description, optin, tags
 *   DELETE /api/v1/lists/{id}       the list and its subscriptions
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/routes.h"
#include "lib/util.h"

json_t *
api_time(int64_t t)
{
	char buf[32];

	if (t == 0)
		return json_null();
	time_iso8601((time_t)t, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *
list_json(const struct store_list_info *li)
{
	json_t *tags = json_loads(li->tags, 0, NULL);

	return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:{s:I, s:I, s:I, "
			 "s:I}}",
	    "id", (json_int_t)li->list.id, "name", li->list.name, "description",
	    li->list.description, "optin", li->list.optin, "tags",
	    tags != NULL ? tags : json_array(), "created_at",
	    api_time(li->list.created_at), "counts", "subscribed",
	    (json_int_t)li->subscribed, "unconfirmed",
	    (json_int_t)li->unconfirmed, "unsubscribed",
	    (json_int_t)li->unsubscribed, "bounced", (json_int_t)li->bounced);
}

struct list_acc {
	struct api_ctx *c;
	json_t *data;
};

static int
list_cb(void *arg, const struct store_list *l)
{
	struct list_acc *a = arg;

	json_array_append_new(a->data, json_integer(l->id));
	return 0;
}

static void
lists_get(struct api_ctx *c, struct http_req *r)
{
	struct list_acc a = { .c = c, .data = json_array() };
	json_t *out = json_array(), *id;
	const char *error;
	size_t i;
	int ret;

	/* ids first: the store is not reentered from its own callback */
	ret = store_list_list(c->s, c->account, list_cb, &a, &error);
	if (api_reply_store(r, ret, error)) {
		json_decref(a.data);
		json_decref(out);
		return;
	}
	json_array_foreach(a.data, i, id)
	{
		struct store_list_info li;

		if (store_list_get(c->s, c->account, json_integer_value(id),
			&li, &error) == 0)
			json_array_append_new(out, list_json(&li));
	}
	json_decref(a.data);
	http_reply_json(r, 200, json_pack("{s:o}", "data", out));
}

/* list_check - name and optin of a request, with the field at fault;
   false after replying 400 */
static bool
list_check(
    struct http_req *r, const char *name, const char *optin, bool creating)
{
	if ((creating || name != NULL) &&
	    (name == NULL || name[0] == '\0' ||
		strlen(name) > STORE_LIST_NAME_MAX)) {
		http_reply_error(r, 400, "invalid", "name",
		    "name: 1 to %d bytes", STORE_LIST_NAME_MAX);
		return false;
	}
	if (optin != NULL && strcmp(optin, "single") != 0 &&
	    strcmp(optin, "double") != 0) {
		http_reply_error(
		    r, 400, "invalid", "optin", "optin: single or double");
		return false;
	}
	return true;
}

/* tags_text - the "tags" member as JSON text (malloc'd), NULL if absent;
   replies 400 and sets *bad when it is not an array of strings */
static char *
tags_text(struct http_req *r, json_t *body, bool *bad)
{
	json_t *t = json_object_get(body, "tags"), *v;
	size_t i;

	if (t == NULL || *bad)
		return NULL;
	if (!json_is_array(t)) {
		*bad = true;
		http_reply_error(r, 400, "invalid", "tags",
		    "tags must be an array of strings");
		return NULL;
	}
	json_array_foreach(t, i, v)
	{
		if (!json_is_string(v)) {
			*bad = true;
			http_reply_error(r, 400, "invalid", "tags",
			    "tags must be an array of strings");
			return NULL;
		}
	}
	return json_dumps(t, JSON_COMPACT);
}

static void
reply_list(struct api_ctx *c, struct http_req *r, int64_t id, int status)
{
	struct store_list_info li;
	const char *error;
	int ret = store_list_get(c->s, c->account, id, &li, &error);

	if (!api_reply_store(r, ret, error))
		http_reply_json(r, status, list_json(&li));
}

static void
lists_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r);
	const char *name, *desc, *optin, *error;
	bool bad = false;
	char *tags;
	int64_t id;
	int ret;

	if (body == NULL)
		return;
	name = api_str(r, body, "name", true, &bad);
	desc = api_str(r, body, "description", false, &bad);
	optin = api_str(r, body, "optin", false, &bad);
	tags = tags_text(r, body, &bad);
	if (!bad && list_check(r, name, optin, true)) {
		ret = store_list_create(c->s, c->account, name, desc,
		    optin != NULL ? optin : "single", &id, &error);
		if (ret == 0 && tags != NULL)
			ret = store_list_update(c->s, c->account, id, NULL,
			    NULL, NULL, tags, &error);
		if (!api_reply_store(r, ret, error))
			reply_list(c, r, id, 201);
	}
	free(tags);
	json_decref(body);
}

static void
list_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");

	if (id != 0)
		reply_list(c, r, id, 200);
}

static void
list_patch(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *name, *desc, *optin, *error;
	bool bad = false;
	json_t *body;
	char *tags;
	int ret;

	if (id == 0 || (body = http_body_json(r)) == NULL)
		return;
	name = api_str(r, body, "name", false, &bad);
	desc = api_str(r, body, "description", false, &bad);
	optin = api_str(r, body, "optin", false, &bad);
	tags = tags_text(r, body, &bad);
	if (!bad && list_check(r, name, optin, false)) {
		ret = store_list_update(
		    c->s, c->account, id, name, desc, optin, tags, &error);
		if (!api_reply_store(r, ret, error))
			reply_list(c, r, id, 200);
	}
	free(tags);
	json_decref(body);
}

static void
list_delete(struct api_ctx *c, struct http_req *r)
{
	api_delete_id(c, r, store_list_delete_id);
}

const struct api_route api_lists_routes[] = {
	{ "GET", "/api/v1/lists", API_READ, lists_get, false },
	{ "POST", "/api/v1/lists", API_WRITE, lists_post, false },
	{ "GET", "/api/v1/lists/{id}", API_READ, list_get, false },
	{ "PATCH", "/api/v1/lists/{id}", API_WRITE, list_patch, false },
	{ "DELETE", "/api/v1/lists/{id}", API_WRITE, list_delete, false },
	{ NULL, NULL, 0, NULL, false },
};
