/*
 * suppressions.c - /api/v1/suppressions: the addresses an account never
 * mails again.
 *
 *   GET    /api/v1/suppressions?after=&limit=   by address, paged
 *   POST   /api/v1/suppressions                 {email, reason?}
 *   GET    /api/v1/suppressions/{email}         one suppression
 *   DELETE /api/v1/suppressions/{email}         mail it again
 *
 * Addresses are normalized (import_email_normalize) before every store
 * call, so "A@Example.COM" and "A@example.com" are one suppression.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/routes.h"
#include "contacts/import.h"
#include "lib/util.h"

static const char *const reasons[] = { "unsubscribed", "hard_bounce",
	"complaint", "manual" };

static json_t *
suppression_json(const char *email, const char *reason, int64_t created_at)
{
	return json_pack("{s:s, s:s, s:o}", "email", email, "reason", reason,
	    "created_at", api_time(created_at));
}

struct page {
	json_t *data;
	int64_t limit, n;
	char last[STORE_EMAIL_MAX + 1];
};

static int
page_cb(void *arg, const struct store_suppression *sup)
{
	struct page *p = arg;

	/* the row past the limit only says that a next page exists */
	if (++p->n > p->limit)
		return 0;
	json_array_append_new(p->data,
	    suppression_json(sup->email, sup->reason, sup->created_at));
	snprintf(p->last, sizeof(p->last), "%s", sup->email);
	return 0;
}

static void
suppressions_get(struct api_ctx *c, struct http_req *r)
{
	struct page p = { .data = json_array() };
	const char *after = http_query(r, "after"), *error;
	int ret;

	if ((p.limit = api_limit(r, 100, 1000)) == 0) {
		json_decref(p.data);
		return;
	}
	ret = store_suppression_list(
	    c->s, c->account, after, p.limit + 1, page_cb, &p, &error);
	if (api_reply_store(r, ret, error)) {
		json_decref(p.data);
		return;
	}
	http_reply_json(r, 200,
	    json_pack("{s:o, s:o}", "data", p.data, "next",
		p.n > p.limit ? json_string(p.last) : json_null()));
}

/* normalize - addr as stored in out; replies status (field "email") and
   returns false when it is not an address */
static bool
normalize(
    struct http_req *r, const char *addr, char *out, size_t outlen, int status)
{
	const char *why;

	if (import_email_normalize(addr, out, outlen, &why) == 0)
		return true;
	http_reply_error(r, status, status == 404 ? "not_found" : "invalid",
	    "email", "'%.80s' is not an email address: %s", addr, why);
	return false;
}

static void
reply_suppression(
    struct api_ctx *c, struct http_req *r, const char *email, int status)
{
	struct store_suppression_row row;
	const char *error;
	int ret = store_suppression_get(c->s, c->account, email, &row, &error);

	if (!api_reply_store(r, ret, error))
		http_reply_json(r, status,
		    suppression_json(row.email, row.reason, row.created_at));
}

static void
suppressions_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r);
	char email[STORE_EMAIL_MAX + 1];
	const char *addr, *reason, *error;
	bool bad = false, known = false;
	int ret;

	if (body == NULL)
		return;
	addr = api_str(r, body, "email", true, &bad);
	reason = api_str(r, body, "reason", false, &bad);
	if (!bad && !normalize(r, addr, email, sizeof(email), 400))
		bad = true;
	if (!bad && reason == NULL)
		reason = "manual";
	for (size_t i = 0; !bad && i < NELEM(reasons); i++)
		known = known || strcmp(reason, reasons[i]) == 0;
	if (!bad && !known) {
		bad = true;
		http_reply_error(r, 400, "invalid", "reason",
		    "invalid reason '%.32s': use unsubscribed, hard_bounce, "
		    "complaint or manual",
		    reason);
	}
	if (!bad) {
		ret = store_suppression_add(
		    c->s, c->account, email, reason, &error);
		if (!api_reply_store(r, ret, error))
			reply_suppression(c, r, email, 201);
	}
	json_decref(body);
}

static void
suppression_get(struct api_ctx *c, struct http_req *r)
{
	char email[STORE_EMAIL_MAX + 1];

	if (normalize(r, http_param(r, "email"), email, sizeof(email), 404))
		reply_suppression(c, r, email, 200);
}

static void
suppression_delete(struct api_ctx *c, struct http_req *r)
{
	char email[STORE_EMAIL_MAX + 1];
	const char *error;
	int ret;

	if (!normalize(r, http_param(r, "email"), email, sizeof(email), 404))
		return;
	ret = store_suppression_remove(c->s, c->account, email, &error);
	if (!api_reply_store(r, ret, error))
		http_reply_json(r, 204, NULL);
}

const struct api_route api_suppressions_routes[] = {
	{ "GET", "/api/v1/suppressions", API_READ, suppressions_get, false },
	{ "POST", "/api/v1/suppressions", API_WRITE, suppressions_post, false },
	{ "GET", "/api/v1/suppressions/{email}", API_READ, suppression_get,
	    false },
	{ "DELETE", "/api/v1/suppressions/{email}", API_WRITE,
	    suppression_delete, false },
	{ NULL, NULL, 0, NULL, false },
};
