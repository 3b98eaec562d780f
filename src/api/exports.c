/*
 * exports.c - /api/v1/exports: an account's contacts or suppressions as
 * CSV or JSON Lines, streamed.
 *
 *   GET /api/v1/exports/contacts?format=csv|jsonl&list=&status=&segment=
 *   GET /api/v1/exports/suppressions?format=csv|jsonl
 *
 * The reply is made page by page (export.h): each time the HTTP layer
 * has written the previous part, the next EXPORT_PAGE_ROWS rows are
 * read and handed over, so an export of any size holds one page in
 * memory and never keeps a transaction open between pages.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "api/api.h"
#include "api/routes.h"
#include "contacts/export.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"

#define EXPORT_PAGE_ROWS 1000

/* One streamed export. */
struct stream {
	struct export *e;
	struct buf page;
	int64_t account;
};

static int
stream_fill(void *arg, struct evbuffer *out)
{
	struct stream *st = arg;
	char err[512];
	int ret;

	buf_reset(&st->page);
	ret = export_next(st->e, &st->page, EXPORT_PAGE_ROWS, err, sizeof(err));
	if (ret < 0) {
		/* the status line is sent: all we can do is cut it short */
		log_write(LOG_ERROR, "api",
		    "event=export-error account=%" PRId64 " error=\"%s\"",
		    st->account, err);
		return -1;
	}
	if (st->page.len > 0 &&
	    evbuffer_add(out, st->page.data, st->page.len) < 0)
		return -1;
	return ret;
}

static void
stream_done(void *arg)
{
	struct stream *st = arg;

	export_free(&st->e);
	buf_free(&st->page);
	free(st);
}

/* export_start - check spec, then stream it; replies either way */
static void
export_start(
    struct api_ctx *c, struct http_req *r, const struct export_spec *spec)
{
	struct stream *st;
	struct export *e;
	char err[512];

	if (strcmp(spec->format, "csv") != 0 &&
	    strcmp(spec->format, "jsonl") != 0) {
		http_reply_error(
		    r, 400, "invalid", "format", "format: use csv or jsonl");
		return;
	}
	if ((e = export_new(c->s, c->account, spec, err, sizeof(err))) ==
	    NULL) {
		http_reply_error(r, 400, "invalid",
		    spec->segment != NULL ? "segment" : NULL, "%s", err);
		return;
	}
	st = xcalloc(1, sizeof(*st));
	st->e = e;
	st->account = c->account;
	http_reply_stream(r, 200,
	    strcmp(spec->format, "csv") == 0 ? "text/csv"
					     : "application/x-ndjson",
	    stream_fill, st, stream_done);
}

static void
export_contacts(struct api_ctx *c, struct http_req *r)
{
	struct export_spec spec = { .what = EXPORT_CONTACTS };
	const char *list = http_query(r, "list"), *format, *error;
	struct store_list_info li;
	int ret;

	format = http_query(r, "format");
	spec.format = format != NULL ? format : "csv";
	spec.list_status = http_query(r, "status");
	spec.segment = http_query(r, "segment");
	if (spec.segment != NULL && *spec.segment == '\0')
		spec.segment = NULL;
	if (list != NULL && *list != '\0') {
		if (parse_int(list, &spec.list_id) < 0 || spec.list_id <= 0) {
			http_reply_error(r, 404, "not_found", "list",
			    "no such list: '%.40s' is not an id", list);
			return;
		}
		ret =
		    store_list_get(c->s, c->account, spec.list_id, &li, &error);
		if (ret == 1) {
			http_reply_error(
			    r, 404, "not_found", "list", "%s", error);
			return;
		}
		if (api_reply_store(r, ret, error))
			return;
	} else if (spec.list_status != NULL) {
		http_reply_error(
		    r, 400, "invalid", "status", "status needs a list");
		return;
	}
	export_start(c, r, &spec);
}

static void
export_suppressions(struct api_ctx *c, struct http_req *r)
{
	struct export_spec spec = { .what = EXPORT_SUPPRESSIONS };
	const char *format = http_query(r, "format");

	spec.format = format != NULL ? format : "csv";
	export_start(c, r, &spec);
}

const struct api_route api_exports_routes[] = {
	{ "GET", "/api/v1/exports/contacts", API_READ, export_contacts, false },
	{ "GET", "/api/v1/exports/suppressions", API_READ, export_suppressions,
	    false },
	{ NULL, NULL, 0, NULL, false },
};
