/*
 * segments.c - /api/v1/segments: an account's saved segments (filters
 * over its contacts, see src/contacts/segment.c for the language).
 *
 *   GET    /api/v1/segments                  every segment, by name
 *   POST   /api/v1/segments                  {name, query}
 *   POST   /api/v1/segments/check            {query, limit?}: count and
 *                                            the first matches, unsaved
 *   GET    /api/v1/segments/{id}             one segment with its count
 *   PATCH  /api/v1/segments/{id}             {name?, query?}
 *   DELETE /api/v1/segments/{id}
 *   GET    /api/v1/segments/{id}/contacts?after=&limit=   the matches
 *
 * A query is compiled against the account's fields before it is saved;
 * one that does not compile is a 400 on "query" whose message names the
 * column.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/routes.h"
#include "contacts/export.h"
#include "lib/util.h"

static json_t *
segment_json(const struct store_segment *seg)
{
	return json_pack("{s:I, s:s, s:s, s:o, s:o}", "id", (json_int_t)seg->id,
	    "name", seg->name, "query", seg->query, "created_at",
	    api_time(seg->created_at), "updated_at", api_time(seg->updated_at));
}

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

/* compile - text into q's where/params (*seg owns them); replies 400 on
   "query" and returns false when it does not compile */
static bool
compile(struct api_ctx *c, struct http_req *r, const char *text,
    struct store_contact_query *q, struct export_segment **seg)
{
	char err[512];

	if (export_segment_sql(
		c->s, c->account, text, q, seg, err, sizeof(err)) == 0)
		return true;
	http_reply_error(r, 400, "invalid", "query", "query: %s", err);
	return false;
}

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

/* matches - the first limit contacts after after_id that q selects, as
   a new array in p->data; replies and returns false on failure */
static bool
matches(struct api_ctx *c, struct http_req *r, struct store_contact_query *q,
    struct page *p)
{
	const char *error;
	int ret;

	p->data = json_array();
	p->limit = q->limit;
	q->limit++;
	ret = store_contact_list(c->s, c->account, q, page_cb, p, &error);
	q->limit--;
	if (api_reply_store(r, ret, error)) {
		json_decref(p->data);
		return false;
	}
	return true;
}

static int
list_cb(void *arg, const struct store_segment *seg)
{
	json_array_append_new(arg, segment_json(seg));
	return 0;
}

static void
segments_get(struct api_ctx *c, struct http_req *r)
{
	json_t *data = json_array();
	const char *error;
	int ret = store_segment_list(c->s, c->account, list_cb, data, &error);

	api_reply_data(r, ret, error, data);
}

/* reply_segment - the segment id, with its count when counted */
static void
reply_segment(
    struct api_ctx *c, struct http_req *r, int64_t id, int status, bool counted)
{
	struct store_contact_query q = { 0 };
	struct export_segment *seg = NULL;
	struct store_segment sg;
	const char *error;
	int64_t count = 0;
	json_t *out;
	int ret = store_segment_get(c->s, c->account, id, &sg, &error);

	if (api_reply_store(r, ret, error))
		return;
	out = segment_json(&sg);
	if (counted) {
		if (!compile(c, r, sg.query, &q, &seg)) {
			json_decref(out);
			return;
		}
		ret = store_contact_count(c->s, c->account, &q, &count, &error);
		export_segment_free(&seg);
		if (api_reply_store(r, ret, error)) {
			json_decref(out);
			return;
		}
		json_object_set_new(out, "count", json_integer(count));
	}
	http_reply_json(r, status, out);
}

/* query_valid - whether text compiles; replies 400 when not */
static bool
query_valid(struct api_ctx *c, struct http_req *r, const char *text)
{
	struct store_contact_query q = { 0 };
	struct export_segment *seg = NULL;

	if (!compile(c, r, text, &q, &seg))
		return false;
	export_segment_free(&seg);
	return true;
}

static void
segments_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r);
	const char *name, *query, *error;
	bool bad = false;
	int64_t id;
	int ret;

	if (body == NULL)
		return;
	name = api_str(r, body, "name", true, &bad);
	query = api_str(r, body, "query", true, &bad);
	if (!bad && query_valid(c, r, query)) {
		ret = store_segment_create(
		    c->s, c->account, name, query, &id, &error);
		if (!api_reply_store(r, ret, error))
			reply_segment(c, r, id, 201, false);
	}
	json_decref(body);
}

static void
segment_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");

	if (id != 0)
		reply_segment(c, r, id, 200, true);
}

static void
segment_patch(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *name, *query, *error;
	struct store_segment sg;
	bool bad = false;
	json_t *body;
	int ret;

	if (id == 0 || (body = http_body_json(r)) == NULL)
		return;
	name = api_str(r, body, "name", false, &bad);
	query = api_str(r, body, "query", false, &bad);
	/* the id first: another account's segment is not found */
	ret = bad ? 0 : store_segment_get(c->s, c->account, id, &sg, &error);
	if (!bad && !api_reply_store(r, ret, error) &&
	    (query == NULL || query_valid(c, r, query))) {
		ret = store_segment_update(
		    c->s, c->account, id, name, query, &error);
		if (!api_reply_store(r, ret, error))
			reply_segment(c, r, id, 200, false);
	}
	json_decref(body);
}

static void
segment_delete(struct api_ctx *c, struct http_req *r)
{
	api_delete_id(c, r, store_segment_delete);
}

static void
segment_contacts(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	const char *after = http_query(r, "after"), *error;
	struct store_contact_query q = { 0 };
	struct export_segment *seg = NULL;
	struct store_segment sg;
	struct page p = { 0 };
	int ret;

	if (id == 0 || (q.limit = api_limit(r, 100, 1000)) == 0)
		return;
	if (after != NULL &&
	    (parse_int(after, &q.after_id) < 0 || q.after_id < 0)) {
		http_reply_error(r, 400, "bad_query", "after",
		    "after: not a cursor this API gave");
		return;
	}
	ret = store_segment_get(c->s, c->account, id, &sg, &error);
	if (api_reply_store(r, ret, error) ||
	    !compile(c, r, sg.query, &q, &seg))
		return;
	if (matches(c, r, &q, &p))
		http_reply_json(r, 200,
		    json_pack("{s:o, s:o}", "data", p.data, "next",
			p.n > p.limit ? json_sprintf("%" PRId64, p.last)
				      : json_null()));
	export_segment_free(&seg);
}

static void
segments_check(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r), *lim;
	struct store_contact_query q = { .limit = 100 };
	struct export_segment *seg = NULL;
	struct page p = { 0 };
	const char *query, *error;
	bool bad = false;
	int64_t count;
	int ret;

	if (body == NULL)
		return;
	query = api_str(r, body, "query", true, &bad);
	lim = json_object_get(body, "limit");
	if (!bad && lim != NULL && !json_is_null(lim)) {
		if (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
		    json_integer_value(lim) > 1000) {
			bad = true;
			http_reply_error(
			    r, 400, "invalid", "limit", "limit: use 1 to 1000");
		} else
			q.limit = json_integer_value(lim);
	}
	if (bad || !compile(c, r, query, &q, &seg))
		goto out;
	ret = store_contact_count(c->s, c->account, &q, &count, &error);
	if (api_reply_store(r, ret, error))
		goto out;
	if (matches(c, r, &q, &p))
		http_reply_json(r, 200,
		    json_pack("{s:I, s:o}", "count", (json_int_t)count, "data",
			p.data));
out:
	export_segment_free(&seg);
	json_decref(body);
}

const struct api_route api_segments_routes[] = {
	{ "GET", "/api/v1/segments", API_READ, segments_get, false },
	{ "POST", "/api/v1/segments", API_WRITE, segments_post, false },
	{ "POST", "/api/v1/segments/check", API_WRITE, segments_check, false },
	{ "GET", "/api/v1/segments/{id}", API_READ, segment_get, false },
	{ "PATCH", "/api/v1/segments/{id}", API_WRITE, segment_patch, false },
	{ "DELETE", "/api/v1/segments/{id}", API_WRITE, segment_delete, false },
	{ "GET", "/api/v1/segments/{id}/contacts", API_READ, segment_contacts,
	    false },
	{ NULL, NULL, 0, NULL, false },
};
