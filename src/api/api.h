/*
 * api.h - the REST API (/api/v1): a thread with its own event loop, HTTP
 * server and store connection, and a thread that runs import jobs.
 *
 * Every route is in one table (api_routes(), built from each resource's
 * file), which registers the handlers and is what the OpenAPI test
 * checks openapi.json against.  A handler gets a struct api_ctx: the
 * caller's key has been verified and its scope checked, and ctx->account
 * is the account every store call must name - the wall between accounts
 * is that no handler ever takes an account from the request.  Operator
 * keys (no account) reach the admin routes, and the account routes with
 * a "Herald-Account: ID" header.
 */
#ifndef HERALD_API_API_H
#define HERALD_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http/http.h"
#include "store/store.h"

struct api_config {
	char *listen;		 /* "127.0.0.1:8025"; "" for none */
	uint64_t max_body;	 /* bytes of a JSON request */
	uint64_t max_upload;	 /* bytes of an import upload */
	uint64_t timeout;	 /* ms: read/write/keep-alive per connection */
	int64_t max_connections; /* open HTTP connections */
	int64_t import_batch;	 /* rows per import transaction */
	int64_t import_errors;	 /* bad rows kept per import */
	uint64_t import_cache;	 /* bytes of page cache of an import */
	uint64_t import_wal;	 /* bytes of log between checkpoints */
};

enum api_scope { API_PUBLIC, API_READ, API_WRITE, API_ADMIN };

struct api;

/* What a handler knows about its request. */
struct api_ctx {
	struct api *api;
	struct store *s; /* the API thread's connection */
	int64_t account; /* the account acted for; 0 on admin routes */
	int64_t key_id;	 /* the API key */
	bool operator;	 /* an operator key (no account of its own) */
	const char *data_dir;
};

typedef void api_handler(struct api_ctx *c, struct http_req *r);

struct api_route {
	const char *method;  /* GET POST PUT PATCH DELETE */
	const char *pattern; /* "/api/v1/lists/{id}" */
	enum api_scope scope;
	api_handler *fn;
	bool upload; /* takes a body up to max_upload (imports) */
};

/* api_routes - every route, ending with a NULL method; *n_r the count */
const struct api_route *api_routes(size_t *n_r);

/*
 * api_start - open the store (url), listen on cfg->listen, and start the
 * HTTP thread and the import thread (which resumes the server's
 * unfinished jobs).  print(line) says where it listens.  NULL with err.
 */
struct api *api_start(const struct api_config *cfg, const char *store_url,
    const char *data_dir, void (*print)(const char *line), char *err,
    size_t errlen);

/* api_stop - stop both threads (a running import stops after its batch,
   to resume at the next start) and free; NULL is fine */
void api_stop(struct api **ap);

/* api_openapi - the OpenAPI 3 description (static text) */
const char *api_openapi(void);

/* ---- for the handlers ---- */

/* api_id - path parameter name as a positive id; on failure replies 404
   and returns 0 */
int64_t api_id(struct http_req *r, const char *name);

/* api_reply_store - reply to a store call's result ret (0 ok is not
   replied; 1 -> 404 not_found; -1 -> 400 invalid or 409 conflict with
   the store's message).  Returns true when it replied. */
bool api_reply_store(struct http_req *r, int ret, const char *error);

/* api_limit - the "limit" query argument (default def, 1..max); on a bad
   value replies 400 and returns 0 */
int64_t api_limit(struct http_req *r, int64_t def, int64_t max);

/* api_str - o[key] as a string, NULL if absent; a present non-string
   replies 400 (field key) and sets *bad */
const char *api_str(
    struct http_req *r, json_t *o, const char *key, bool required, bool *bad);

/* api_delete_id - DELETE .../{id} through del(store, c->account, id,
   &error): 204, or the store's answer (404 for another account's id) */
void api_delete_id(struct api_ctx *c, struct http_req *r,
    int (*del)(struct store *, int64_t, int64_t, const char **));

/* api_reply_data - 200 {"data": data}, or the store's error for ret
   (then data is freed) */
void api_reply_data(
    struct http_req *r, int ret, const char *error, json_t *data);

/* api_time - Unix seconds as an ISO 8601 UTC string; 0 is null */
json_t *api_time(int64_t t);

/* api_import_wake - tell the import thread a job was queued */
void api_import_wake(struct api *a);

/* api_config_of - the API's configuration */
const struct api_config *api_config_of(const struct api *a);

#endif
