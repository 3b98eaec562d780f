/*
 * fields.c - /api/v1/fields: an account's custom contact fields.
 *
 *   GET    /api/v1/fields           every field, by name
 *   POST   /api/v1/fields           {name, type, choices?}
 *   GET    /api/v1/fields/{id}      one field
 *   DELETE /api/v1/fields/{id}      the field and its value on every contact
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/routes.h"
#include "lib/util.h"

static const char *const field_types[] = { "text", "number", "date", "boolean",
	"one_of" };

static json_t *
field_json(const struct store_field *f)
{
	json_t *choices =
	    f->choices[0] != '\0' ? json_loads(f->choices, 0, NULL) : NULL;

	return json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)f->id,
	    "name", f->name, "type", f->type, "choices",
	    choices != NULL ? choices : json_null());
}

static int
field_cb(void *arg, const struct store_field *f)
{
	json_array_append_new(arg, field_json(f));
	return 0;
}

static void
fields_get(struct api_ctx *c, struct http_req *r)
{
	json_t *data = json_array();
	const char *error;
	int ret = store_field_list(c->s, c->account, field_cb, data, &error);

	api_reply_data(r, ret, error, data);
}

/* type_valid - whether t names a field type */
static bool
type_valid(const char *t)
{
	for (size_t i = 0; i < NELEM(field_types); i++)
		if (strcmp(t, field_types[i]) == 0)
			return true;
	return false;
}

/* choices_text - the "choices" member as JSON text (malloc'd) for a
   one_of field, NULL otherwise; replies 400 and sets *bad when wrong */
static char *
choices_text(struct http_req *r, json_t *body, const char *type, bool *bad)
{
	json_t *ch = json_object_get(body, "choices"), *v;
	bool one_of = strcmp(type, "one_of") == 0;
	size_t i;

	if (ch == NULL || json_is_null(ch)) {
		if (one_of) {
			*bad = true;
			http_reply_error(r, 400, "invalid", "choices",
			    "choices is required for a one_of field");
		}
		return NULL;
	}
	if (!one_of) {
		*bad = true;
		http_reply_error(r, 400, "invalid", "choices",
		    "choices is only for a one_of field");
		return NULL;
	}
	if (!json_is_array(ch) || json_array_size(ch) == 0) {
		*bad = true;
		http_reply_error(r, 400, "invalid", "choices",
		    "choices must be a non-empty array of strings");
		return NULL;
	}
	json_array_foreach(ch, i, v)
	{
		if (!json_is_string(v)) {
			*bad = true;
			http_reply_error(r, 400, "invalid", "choices",
			    "choices must be a non-empty array of strings");
			return NULL;
		}
	}
	return json_dumps(ch, JSON_COMPACT);
}

static void
reply_field(struct api_ctx *c, struct http_req *r, int64_t id, int status)
{
	struct store_field f;
	const char *error;
	int ret = store_field_get(c->s, c->account, id, &f, &error);

	if (!api_reply_store(r, ret, error))
		http_reply_json(r, status, field_json(&f));
}

static void
fields_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r);
	const char *name, *type, *error;
	char *choices = NULL;
	bool bad = false;
	int64_t id;
	int ret;

	if (body == NULL)
		return;
	name = api_str(r, body, "name", true, &bad);
	type = api_str(r, body, "type", true, &bad);
	if (!bad && !store_field_name_valid(name)) {
		bad = true;
		http_reply_error(r, 400, "invalid", "name",
		    "invalid field name '%.64s': use [a-z_][a-z0-9_]{0,63}, "
		    "not a built-in column",
		    name);
	}
	if (!bad && !type_valid(type)) {
		bad = true;
		http_reply_error(r, 400, "invalid", "type",
		    "invalid type '%.32s': use text, number, date, boolean or "
		    "one_of",
		    type);
	}
	if (!bad)
		choices = choices_text(r, body, type, &bad);
	if (!bad) {
		ret = store_field_create(
		    c->s, c->account, name, type, choices, &id, &error);
		if (ret < 0 && strstr(error, "choices") != NULL) {
			http_reply_error(
			    r, 400, "invalid", "choices", "%s", error);
		} else if (!api_reply_store(r, ret, error))
			reply_field(c, r, id, 201);
	}
	free(choices);
	json_decref(body);
}

static void
field_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");

	if (id != 0)
		reply_field(c, r, id, 200);
}

static void
field_delete(struct api_ctx *c, struct http_req *r)
{
	api_delete_id(c, r, store_field_delete);
}

const struct api_route api_fields_routes[] = {
	{ "GET", "/api/v1/fields", API_READ, fields_get, false },
	{ "POST", "/api/v1/fields", API_WRITE, fields_post, false },
	{ "GET", "/api/v1/fields/{id}", API_READ, field_get, false },
	{ "DELETE", "/api/v1/fields/{id}", API_WRITE, field_delete, false },
	{ NULL, NULL, 0, NULL, false },
};
