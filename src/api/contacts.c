/*
 * contacts.c - /api/v1/contacts: an account's contacts, their custom
 * field values and their subscriptions.
 *
 *   GET    /api/v1/contacts?after=&limit=&email=&list=&status=&segment=
 *   POST   /api/v1/contacts                     {email, name?, attribs?,
 *                                                lists?, mode?, consent?}
 *   GET    /api/v1/contacts/{id}                with its subscriptions
 *   PATCH  /api/v1/contacts/{id}                {name?, attribs?, status?}
 *   DELETE /api/v1/contacts/{id}                erase the person's data
 *   GET    /api/v1/contacts/{id}/subscriptions
 *   PUT    /api/v1/contacts/{id}/subscriptions/{list_id}  {status, consent?}
 *   DELETE /api/v1/contacts/{id}/subscriptions/{list_id}
 *
 * Custom field values are checked against the field's type here (the
 * store takes them as given): number a JSON number, date an ISO date or
 * time (UTC) or Unix seconds, stored as integer seconds, boolean a JSON
 * boolean, one_of one of its choices, text a string of at most 4096
 * bytes.  The consent rules (no re-subscription of what was turned away
 * without a consent record) are the store's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/routes.h"
#include "contacts/export.h"
#include "contacts/import.h"
#include "lib/util.h"

#define LISTS_MAX 100	    /* lists named in one POST */
#define TEXT_VALUE_MAX 4096 /* bytes of a text field's value */

/* ---- JSON of contacts and subscriptions ---- */

static json_t *
contact_json(const struct store_contact *ct)
{
	json_t *attrs = json_loads(ct->attrs, 0, NULL);

	return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:o}", "id",
	    (json_int_t)ct->id, "email", ct->email, "name", ct->name, "status",
	    ct->status, "attribs", attrs != NULL ? attrs : json_object(),
	    "created_at", api_time(ct->created_at), "updated_at",
	    api_time(ct->updated_at));
}

static int
contact_one_cb(void *arg, const struct store_contact *ct)
{
	json_t **out = arg;

	json_decref(*out);
	*out = contact_json(ct);
	return 0;
}

static json_t *
subscription_json(const struct store_subscription *sub)
{
	json_t *consent = json_null();

	if (sub->consent_source != NULL)
		consent =
		    json_pack("{s:s, s:s?, s:o}", "source", sub->consent_source,
			"ip", sub->consent_ip, "at", api_time(sub->consent_at));
	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "list_id",
	    (json_int_t)sub->list_id, "list_name", sub->list_name, "status",
	    sub->status, "created_at", api_time(sub->created_at), "updated_at",
	    api_time(sub->updated_at), "consent", consent);
}

static int
subscription_cb(void *arg, const struct store_subscription *sub)
{
	json_array_append_new(arg, subscription_json(sub));
	return 0;
}

/* subscriptions - the contact's subscriptions as a new array, or NULL
   after replying */
static json_t *
subscriptions(struct api_ctx *c, struct http_req *r, int64_t id)
{
	json_t *data = json_array();
	const char *error;
	int ret = store_subscription_list(
	    c->s, c->account, id, subscription_cb, data, &error);

	if (api_reply_store(r, ret, error)) {
		json_decref(data);
		return NULL;
	}
	return data;
}

/* contact_get_json - the account's contact id as a new object, or NULL
   after replying (404 when there is none) */
static json_t *
contact_get_json(struct api_ctx *c, struct http_req *r, int64_t id)
{
	json_t *out = NULL;
	const char *error;
	int ret = store_contact_get(
	    c->s, c->account, id, contact_one_cb, &out, &error);

	if (ret == 0 && out == NULL) {
		http_reply_error(r, 404, "not_found", NULL,
		    "no contact with id %" PRId64 " in this account", id);
		return NULL;
	}
	if (api_reply_store(r, ret, error)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- custom field values ---- */

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* iso_date - "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS][Z]" (UTC) as Unix
   seconds */
static bool
iso_date(const char *v, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, m2 = 0;
	const char *t;

	if (sscanf(v, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	t = v + 10;
	if (*t == 'T' || *t == ' ') {
		if (sscanf(t + 1, "%2d:%2d%n", &h, &mi, &m2) != 2 || m2 != 5)
			return false;
		t += 6;
		if (*t == ':') {
			if (sscanf(t + 1, "%2d%n", &sec, &m2) != 1 || m2 != 2)
				return false;
			t += 3;
		}
		if (*t == 'Z')
			t++;
	}
	if (*t != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return false;
	*out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
	    h * 3600 + mi * 60 + sec;
	return true;
}

/* value_check - v as the stored value of a field of type (choices for
   one_of), a new reference; NULL with why */
static json_t *
value_check(const char *type, json_t *choices, json_t *v, const char **why)
{
	int64_t t;
	size_t i;
	json_t *ch;

	if (strcmp(type, "text") == 0) {
		*why = "a string of at most 4096 bytes";
		if (json_is_string(v) &&
		    json_string_length(v) <= TEXT_VALUE_MAX)
			return json_incref(v);
	} else if (strcmp(type, "number") == 0) {
		*why = "a number";
		if (json_is_number(v))
			return json_incref(v);
	} else if (strcmp(type, "date") == 0) {
		*why = "a date (YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix "
		       "seconds)";
		if (json_is_integer(v))
			return json_incref(v);
		if (json_is_string(v) && iso_date(json_string_value(v), &t))
			return json_integer(t);
	} else if (strcmp(type, "boolean") == 0) {
		*why = "true or false";
		if (json_is_boolean(v))
			return json_incref(v);
	} else {
		*why = "one of the field's choices";
		if (json_is_string(v))
			json_array_foreach(choices, i, ch)
			{
				if (json_equal(ch, v))
					return json_incref(v);
			}
	}
	return NULL;
}

static int
field_cb(void *arg, const struct store_field *f)
{
	json_t *choices =
	    f->choices[0] != '\0' ? json_loads(f->choices, 0, NULL) : NULL;

	json_object_set_new(arg, f->name,
	    json_pack("{s:s, s:o}", "type", f->type, "choices",
		choices != NULL ? choices : json_array()));
	return 0;
}

/*
 * attribs_text - the "attribs" member checked against the account's
 * fields, as JSON text to store (malloc'd; a null value removes one),
 * NULL if absent.  Replies 400 (field "attribs.NAME") and sets *bad when
 * a value is wrong.
 */
static char *
attribs_text(struct api_ctx *c, struct http_req *r, json_t *body, bool *bad)
{
	json_t *a = json_object_get(body, "attribs"), *fields, *out, *v;
	const char *key, *error, *why;
	char *text = NULL;
	int ret;

	if (*bad || a == NULL || json_is_null(a))
		return NULL;
	if (!json_is_object(a)) {
		*bad = true;
		http_reply_error(r, 400, "invalid", "attribs",
		    "attribs must be an object of field: value");
		return NULL;
	}
	fields = json_object();
	ret = store_field_list(c->s, c->account, field_cb, fields, &error);
	if (api_reply_store(r, ret, error)) {
		*bad = true;
		json_decref(fields);
		return NULL;
	}
	out = json_object();
	json_object_foreach(a, key, v)
	{
		json_t *f = json_object_get(fields, key), *val;
		char member[STORE_FIELD_NAME_MAX + 16];

		snprintf(member, sizeof(member), "attribs.%.*s",
		    STORE_FIELD_NAME_MAX, key);
		if (f == NULL) {
			*bad = true;
			http_reply_error(r, 400, "invalid", member,
			    "no custom field '%.64s' in this account", key);
			break;
		}
		if (json_is_null(v)) {
			json_object_set(out, key, v);
			continue;
		}
		val = value_check(json_string_value(json_object_get(f, "type")),
		    json_object_get(f, "choices"), v, &why);
		if (val == NULL) {
			*bad = true;
			http_reply_error(r, 400, "invalid", member,
			    "%s: must be %s", member, why);
			break;
		}
		json_object_set_new(out, key, val);
	}
	if (!*bad)
		text = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	json_decref(fields);
	return text;
}

/* consent_of - the "consent" member into *cs; false if absent; replies
   400 and sets *bad when it is wrong */
static bool
consent_of(
    struct http_req *r, json_t *body, struct store_consent *cs, bool *bad)
{
	json_t *o = json_object_get(body, "consent"), *src, *ip;

	if (*bad || o == NULL || json_is_null(o))
		return false;
	src = json_object_get(o, "source");
	ip = json_object_get(o, "ip");
	if (!json_is_object(o) || !json_is_string(src) ||
	    json_string_length(src) == 0 ||
	    (ip != NULL && !json_is_null(ip) && !json_is_string(ip))) {
		*bad = true;
		http_reply_error(r, 400, "invalid", "consent",
		    "consent must be {\"source\": string, \"ip\"?: string}");
		return false;
	}
	memset(cs, 0, sizeof(*cs));
	cs->source = json_string_value(src);
	cs->ip = json_is_string(ip) ? json_string_value(ip) : NULL;
	return true;
}

/* ---- GET /contacts ---- */

struct page {
	json_t *data;
	int64_t limit, n, last;
};

static int
page_cb(void *arg, const struct store_contact *ct)
{
	struct page *p = arg;

	/* the row past the limit only says that a next page exists */
	if (++p->n > p->limit)
		return 0;
	json_array_append_new(p->data, contact_json(ct));
	p->last = ct->id;
	return 0;
}

static const char *const sub_statuses[] = { "subscribed", "unconfirmed",
	"unsubscribed", "bounced" };

/* query_of - the query arguments into *q (a segment's SQL in *seg);
   replies 400/404 and returns false when one is wrong */
static bool
query_of(struct api_ctx *c, struct http_req *r, struct store_contact_query *q,
    struct export_segment **seg)
{
	const char *after = http_query(r, "after"),
		   *list = http_query(r, "list");
	const char *status = http_query(r, "status"), *error;
	const char *segment = http_query(r, "segment");
	struct store_list_info li;
	bool known = status == NULL;
	char err[512];
	int ret;

	if ((q->limit = api_limit(r, 100, 1000)) == 0)
		return false;
	if (after != NULL &&
	    (parse_int(after, &q->after_id) < 0 || q->after_id < 0)) {
		http_reply_error(r, 400, "bad_query", "after",
		    "after: not a cursor this API gave");
		return false;
	}
	q->email_prefix = http_query(r, "email");
	if (list != NULL &&
	    (parse_int(list, &q->list_id) < 0 || q->list_id <= 0)) {
		http_reply_error(
		    r, 400, "bad_query", "list", "list: not a list id");
		return false;
	}
	if (q->list_id != 0) {
		ret = store_list_get(c->s, c->account, q->list_id, &li, &error);
		if (api_reply_store(r, ret, error))
			return false;
	}
	for (size_t i = 0; !known && i < NELEM(sub_statuses); i++)
		known = strcmp(status, sub_statuses[i]) == 0;
	if (!known || (status != NULL && q->list_id == 0)) {
		http_reply_error(r, 400, "bad_query", "status",
		    "status: with list, one of subscribed, unconfirmed, "
		    "unsubscribed, bounced");
		return false;
	}
	q->list_status = status;
	if (segment != NULL &&
	    export_segment_sql(
		c->s, c->account, segment, q, seg, err, sizeof(err)) < 0) {
		http_reply_error(
		    r, 400, "invalid", "segment", "segment: %s", err);
		return false;
	}
	return true;
}

static void
contacts_get(struct api_ctx *c, struct http_req *r)
{
	struct store_contact_query q = { 0 };
	struct export_segment *seg = NULL;
	struct page p = { 0 };
	const char *error;
	int ret;

	if (!query_of(c, r, &q, &seg))
		return;
	p.data = json_array();
	p.limit = q.limit;
	q.limit++;
	ret = store_contact_list(c->s, c->account, &q, page_cb, &p, &error);
	export_segment_free(&seg);
	if (api_reply_store(r, ret, error)) {
		json_decref(p.data);
		return;
	}
	http_reply_json(r, 200,
	    json_pack("{s:o, s:o}", "data", p.data, "next",
		p.n > p.limit ? json_sprintf("%" PRId64, p.last)
			      : json_null()));
}

/* ---- POST /contacts ---- */

static const char *const result_names[] = {
	[STORE_SUBSCRIBE_CREATED] = "created",
	[STORE_SUBSCRIBE_UPDATED] = "updated",
	[STORE_SUBSCRIBE_UNCHANGED] = "unchanged",
	[STORE_SUBSCRIBE_SKIPPED] = "skipped",
	[STORE_SUBSCRIBE_SUPPRESSED] = "suppressed",
	[STORE_SUBSCRIBE_REFUSED] = "refused",
};

/* rank - which of several lists' results the reply names: what changed
   first, then what was turned away */
static int
rank(enum store_subscribe_result res)
{
	switch (res) {
	case STORE_SUBSCRIBE_CREATED:
		return 5;
	case STORE_SUBSCRIBE_UPDATED:
		return 4;
	case STORE_SUBSCRIBE_SUPPRESSED:
		return 3;
	case STORE_SUBSCRIBE_REFUSED:
		return 2;
	case STORE_SUBSCRIBE_UNCHANGED:
		return 1;
	default:
		return 0;
	}
}

struct status_of {
	int64_t list_id;
	char status[16];
};

static int
status_cb(void *arg, const struct store_subscription *sub)
{
	struct status_of *so = arg;

	if (sub->list_id == so->list_id)
		snprintf(so->status, sizeof(so->status), "%s", sub->status);
	return 0;
}

/*
 * reconsent - in "add" mode the store leaves an existing subscription
 * alone; a consent given with the request is nevertheless the proof that
 * lets an unsubscribed or bounced one be subscribed again.
 */
static int
reconsent(struct api_ctx *c, const struct store_contact_in *in, int64_t id,
    enum store_subscribe_result *res, const char **error)
{
	struct status_of so = { .list_id = in->list_id };
	int ret;

	if (*res != STORE_SUBSCRIBE_SKIPPED || in->consent == NULL ||
	    in->list_id == 0 || id == 0 || in->mode != STORE_SUBSCRIBE_ADD)
		return 0;
	ret = store_subscription_list(
	    c->s, c->account, id, status_cb, &so, error);
	if (ret != 0)
		return ret;
	if (strcmp(so.status, "unsubscribed") != 0 &&
	    strcmp(so.status, "bounced") != 0)
		return 0;
	ret = store_subscription_set(c->s, c->account, id, in->list_id,
	    "subscribed", in->consent, error);
	if (ret == 0)
		*res = STORE_SUBSCRIBE_UPDATED;
	return ret == 2 ? 0 : ret;
}

/* lists_of - the "lists" member into ids (at most LISTS_MAX), *n_r the
   count; replies and returns false when wrong or not the account's */
static bool
lists_of(struct api_ctx *c, struct http_req *r, json_t *body, int64_t *ids,
    size_t *n_r)
{
	json_t *l = json_object_get(body, "lists"), *v;
	struct store_list_info li;
	const char *error;
	size_t i;

	*n_r = 0;
	if (l == NULL || json_is_null(l))
		return true;
	if (!json_is_array(l) || json_array_size(l) > LISTS_MAX) {
		http_reply_error(r, 400, "invalid", "lists",
		    "lists must be an array of at most %d list ids", LISTS_MAX);
		return false;
	}
	json_array_foreach(l, i, v)
	{
		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			http_reply_error(r, 400, "invalid", "lists",
			    "lists must be an array of list ids");
			return false;
		}
		ids[i] = json_integer_value(v);
		if (store_list_get(c->s, c->account, ids[i], &li, &error) ==
		    1) {
			http_reply_error(r, 404, "not_found", "lists",
			    "no list with id %" PRId64 " in this account",
			    ids[i]);
			return false;
		}
	}
	*n_r = i;
	return true;
}

/* mode_of - the "mode" member; replies 400 and sets *bad if wrong */
static enum store_subscribe_mode
mode_of(struct http_req *r, json_t *body, bool *bad)
{
	const char *m = api_str(r, body, "mode", false, bad);

	if (m == NULL || strcmp(m, "add") == 0)
		return STORE_SUBSCRIBE_ADD;
	if (strcmp(m, "upsert") == 0)
		return STORE_SUBSCRIBE_UPSERT;
	if (strcmp(m, "update") == 0)
		return STORE_SUBSCRIBE_UPDATE;
	*bad = true;
	http_reply_error(r, 400, "invalid", "mode",
	    "invalid mode '%.32s': use add, upsert or update", m);
	return STORE_SUBSCRIBE_ADD;
}

/* put_all - store_contact_put once per list (or once without), in one
   transaction: 0, 1, -1 as the store */
static int
put_all(struct api_ctx *c, struct store_contact_in *in, const int64_t *ids,
    size_t n, enum store_subscribe_result *res, int64_t *id_r,
    const char **error)
{
	enum store_subscribe_result one;
	int64_t id;
	int ret = 0;

	*res = STORE_SUBSCRIBE_SKIPPED;
	*id_r = 0;
	if (store_tx_begin(c->s, error) < 0)
		return -1;
	for (size_t i = 0; i < (n ? n : 1) && ret == 0; i++) {
		in->list_id = n ? ids[i] : 0;
		ret = store_contact_put(c->s, c->account, in, &one, &id, error);
		if (ret == 0)
			ret = reconsent(c, in, id, &one, error);
		if (ret == 0 && rank(one) >= rank(*res))
			*res = one;
		if (ret == 0 && id != 0)
			*id_r = id;
	}
	if (ret != 0) {
		store_tx_rollback(c->s);
		return ret;
	}
	return store_tx_commit(c->s, error);
}

static void
contacts_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r), *ct = NULL;
	struct store_contact_in in = { 0 };
	struct store_consent cs;
	enum store_subscribe_result res;
	char email[STORE_EMAIL_MAX + 1], *attrs = NULL;
	const char *addr, *why, *error;
	int64_t ids[LISTS_MAX], id;
	bool bad = false;
	size_t n = 0;
	int ret;

	if (body == NULL)
		return;
	addr = api_str(r, body, "email", true, &bad);
	if (!bad &&
	    import_email_normalize(addr, email, sizeof(email), &why) < 0) {
		bad = true;
		http_reply_error(r, 400, "invalid", "email",
		    "'%.80s' is not an email address: %s", addr, why);
	}
	in.email = email;
	in.name = api_str(r, body, "name", false, &bad);
	in.mode = mode_of(r, body, &bad);
	if (consent_of(r, body, &cs, &bad))
		in.consent = &cs;
	if (!bad)
		attrs = attribs_text(c, r, body, &bad);
	in.attrs_set = attrs;
	if (bad || !lists_of(c, r, body, ids, &n))
		goto out;
	ret = put_all(c, &in, ids, n, &res, &id, &error);
	if (api_reply_store(r, ret, error))
		goto out;
	if (id == 0)
		store_contact_find(
		    c->s, c->account, email, contact_one_cb, &ct, NULL);
	else if ((ct = contact_get_json(c, r, id)) == NULL)
		goto out;
	http_reply_json(r, res == STORE_SUBSCRIBE_CREATED ? 201 : 200,
	    json_pack("{s:o, s:s}", "contact", ct != NULL ? ct : json_null(),
		"result", result_names[res]));
out:
	free(attrs);
	json_decref(body);
}

/* ---- one contact ---- */

static void
contact_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	json_t *ct, *subs;

	if (id == 0 || (ct = contact_get_json(c, r, id)) == NULL)
		return;
	if ((subs = subscriptions(c, r, id)) == NULL) {
		json_decref(ct);
		return;
	}
	json_object_set_new(ct, "subscriptions", subs);
	http_reply_json(r, 200, ct);
}

static void
contact_patch(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *name, *status, *error;
	json_t *body, *ct;
	bool bad = false;
	char *attrs = NULL;
	int ret;

	if (id == 0 || (body = http_body_json(r)) == NULL)
		return;
	name = api_str(r, body, "name", false, &bad);
	status = api_str(r, body, "status", false, &bad);
	if (!bad && status != NULL && strcmp(status, "enabled") != 0 &&
	    strcmp(status, "blocklisted") != 0) {
		bad = true;
		http_reply_error(r, 400, "invalid", "status",
		    "invalid status '%.32s': use enabled or blocklisted",
		    status);
	}
	/* the id first: another account's contact is not found before any
	   of its values are judged */
	if (!bad && (ct = contact_get_json(c, r, id)) != NULL) {
		json_decref(ct);
		attrs = attribs_text(c, r, body, &bad);
		if (!bad) {
			ret = store_contact_update(
			    c->s, c->account, id, name, attrs, status, &error);
			if (!api_reply_store(r, ret, error) &&
			    (ct = contact_get_json(c, r, id)) != NULL)
				http_reply_json(r, 200, ct);
		}
	}
	free(attrs);
	json_decref(body);
}

static void
contact_delete(struct api_ctx *c, struct http_req *r)
{
	api_delete_id(c, r, store_contact_delete);
}

/* ---- subscriptions ---- */

static void
subs_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	json_t *ct, *subs;

	if (id == 0 || (ct = contact_get_json(c, r, id)) == NULL)
		return;
	json_decref(ct);
	if ((subs = subscriptions(c, r, id)) != NULL)
		http_reply_json(r, 200, json_pack("{s:o}", "data", subs));
}

static void
sub_put(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id"), list_id;
	const char *status, *error;
	struct store_consent cs;
	json_t *body, *subs, *v;
	bool bad = false, consent;
	size_t i;
	int ret;

	if (id == 0 || (list_id = api_id(r, "list_id")) == 0 ||
	    (body = http_body_json(r)) == NULL)
		return;
	status = api_str(r, body, "status", true, &bad);
	consent = consent_of(r, body, &cs, &bad);
	if (bad)
		goto out;
	ret = store_subscription_set(c->s, c->account, id, list_id, status,
	    consent ? &cs : NULL, &error);
	if (ret == 2) {
		http_reply_error(
		    r, 409, "consent_required", "consent", "%s", error);
		goto out;
	}
	if (ret < 0 && strstr(error, "status") != NULL) {
		http_reply_error(r, 400, "invalid", "status", "%s", error);
		goto out;
	}
	if (api_reply_store(r, ret, error) ||
	    (subs = subscriptions(c, r, id)) == NULL)
		goto out;
	json_array_foreach(subs, i, v)
	{
		if (json_integer_value(json_object_get(v, "list_id")) ==
		    list_id) {
			http_reply_json(r, 200, json_incref(v));
			break;
		}
	}
	if (i == json_array_size(subs))
		http_reply_error(r, 404, "not_found", NULL,
		    "no subscription to list %" PRId64, list_id);
	json_decref(subs);
out:
	json_decref(body);
}

static void
sub_delete(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id"), list_id;
	const char *error;
	int ret;

	if (id == 0 || (list_id = api_id(r, "list_id")) == 0)
		return;
	ret = store_subscription_delete(c->s, c->account, id, list_id, &error);
	if (!api_reply_store(r, ret, error))
		http_reply_json(r, 204, NULL);
}

const struct api_route api_contacts_routes[] = {
	{ "GET", "/api/v1/contacts", API_READ, contacts_get, false },
	{ "POST", "/api/v1/contacts", API_WRITE, contacts_post, false },
	{ "GET", "/api/v1/contacts/{id}", API_READ, contact_get, false },
	{ "PATCH", "/api/v1/contacts/{id}", API_WRITE, contact_patch, false },
	{ "DELETE", "/api/v1/contacts/{id}", API_WRITE, contact_delete, false },
	{ "GET", "/api/v1/contacts/{id}/subscriptions", API_READ, subs_get,
	    false },
	{ "PUT", "/api/v1/contacts/{id}/subscriptions/{list_id}", API_WRITE,
	    sub_put, false },
	{ "DELETE", "/api/v1/contacts/{id}/subscriptions/{list_id}", API_WRITE,
	    sub_delete, false },
	{ NULL, NULL, 0, NULL, false },
};
