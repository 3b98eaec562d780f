/*
 * api.c - the REST API's threads, authentication and shared helpers
 * (api.h).
 *
 * The HTTP thread owns an event loop, the HTTP server and one store
 * connection; handlers run on it one at a time and must be short (the
 * store calls they make are indexed look-ups or pages of at most
 * api.page_max rows; exports stream page by page).  Imports, which are
 * long, run on the import thread with its own store connection: a
 * handler only records the job and wakes that thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "api/api.h"
#include "api/routes.h"
#include "contacts/import.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"

#include "api/openapi-text.h"

struct api {
	struct api_config cfg;
	char *data_dir, *store_url;
	struct event_base *base;
	struct http_server *http;
	struct store *s;
	pthread_t http_thread;
	bool http_started;

	/* the import thread */
	pthread_t import_thread;
	bool import_started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool wake, stopping;
	volatile sig_atomic_t import_stop;
};

/* one registered route and its API */
struct bound {
	struct api *api;
	const struct api_route *route;
};

static struct bound *bounds;

/* ---- the route table ---- */

static const struct api_route *const route_tables[] = {
	api_meta_routes,
#ifdef API_HAVE_LISTS
	api_lists_routes,
#endif
#ifdef API_HAVE_FIELDS
	api_fields_routes,
#endif
#ifdef API_HAVE_CONTACTS
	api_contacts_routes,
#endif
#ifdef API_HAVE_SEGMENTS
	api_segments_routes,
#endif
#ifdef API_HAVE_SUPPRESSIONS
	api_suppressions_routes,
#endif
#ifdef API_HAVE_IMPORTS
	api_imports_routes,
#endif
#ifdef API_HAVE_EXPORTS
	api_exports_routes,
#endif
#ifdef API_HAVE_ACCOUNTS
	api_accounts_routes,
#endif
};

static struct api_route *all_routes;
static size_t all_count;

static void
routes_build(void)
{
	size_t n = 0, k = 0;

	for (size_t t = 0; t < NELEM(route_tables); t++)
		for (const struct api_route *r = route_tables[t];
		     r->method != NULL; r++)
			n++;
	all_routes = xcalloc(n + 1, sizeof(*all_routes));
	for (size_t t = 0; t < NELEM(route_tables); t++)
		for (const struct api_route *r = route_tables[t];
		     r->method != NULL; r++)
			all_routes[k++] = *r;
	all_count = n;
}

const struct api_route *
api_routes(size_t *n_r)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, routes_build);
	*n_r = all_count;
	return all_routes;
}

/* ---- helpers for handlers ---- */

int64_t
api_id(struct http_req *r, const char *name)
{
	const char *v = http_param(r, name);
	int64_t id;

	if (v == NULL || parse_int(v, &id) < 0 || id <= 0) {
		http_reply_error(r, 404, "not_found", name,
		    "no such %s: '%.40s' is not an id", name, v ? v : "");
		return 0;
	}
	return id;
}

bool
api_reply_store(struct http_req *r, int ret, const char *error)
{
	if (ret == 0)
		return false;
	if (ret == 1)
		http_reply_error(r, 404, "not_found", NULL, "%s", error);
	else if (strstr(error, "already exists") != NULL ||
	    strstr(error, "taken") != NULL)
		http_reply_error(r, 409, "conflict", NULL, "%s", error);
	else if (strstr(error, "sqlite") != NULL ||
	    strstr(error, "database") != NULL) {
		log_write(
		    LOG_ERROR, "api", "event=store-error error=\"%s\"", error);
		http_reply_error(r, 500, "internal", NULL,
		    "the database failed; the error is in the server's log");
	} else
		http_reply_error(r, 400, "invalid", NULL, "%s", error);
	return true;
}

int64_t
api_limit(struct http_req *r, int64_t def, int64_t max)
{
	const char *v = http_query(r, "limit");
	int64_t n;

	if (v == NULL)
		return def;
	if (parse_int(v, &n) < 0 || n < 1 || n > max) {
		http_reply_error(r, 400, "invalid", "limit",
		    "limit: use 1 to %" PRId64, max);
		return 0;
	}
	return n;
}

const char *
api_str(
    struct http_req *r, json_t *o, const char *key, bool required, bool *bad)
{
	json_t *v = json_object_get(o, key);

	if (*bad)
		return NULL;
	if (v == NULL || (json_is_null(v) && !required)) {
		if (required) {
			*bad = true;
			http_reply_error(
			    r, 400, "invalid", key, "%s is required", key);
		}
		return NULL;
	}
	if (!json_is_string(v)) {
		*bad = true;
		http_reply_error(
		    r, 400, "invalid", key, "%s must be a string", key);
		return NULL;
	}
	return json_string_value(v);
}

void
api_delete_id(struct api_ctx *c, struct http_req *r,
    int (*del)(struct store *, int64_t, int64_t, const char **))
{
	int64_t id = api_id(r, "id");
	const char *error = NULL;
	int ret;

	if (id == 0)
		return;
	/* the call first: error is its output */
	ret = del(c->s, c->account, id, &error);
	if (!api_reply_store(r, ret, error))
		http_reply_json(r, 204, NULL);
}

void
api_reply_data(struct http_req *r, int ret, const char *error, json_t *data)
{
	if (api_reply_store(r, ret, error))
		json_decref(data);
	else
		http_reply_json(r, 200, json_pack("{s:o}", "data", data));
}

const struct api_config *
api_config_of(const struct api *a)
{
	return &a->cfg;
}

const char *
api_openapi(void)
{
	return api_openapi_text;
}

/* ---- authentication and dispatch ---- */

static bool
scope_has(const char *scopes, const char *want)
{
	size_t n = strlen(want);

	for (const char *p = scopes; p != NULL && *p != '\0';) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncmp(p, want, n) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/* dispatch - every route's HTTP handler: authenticate, then the route */
static void
dispatch(struct http_req *r, void *arg)
{
	struct bound *b = arg;
	const struct api_route *rt = b->route;
	struct api_ctx c = {
		.api = b->api, .s = b->api->s, .data_dir = b->api->data_dir
	};
	const char *auth, *key = NULL, *error, *want;
	struct store_apikey k;
	size_t len;
	int ret;

	if (!rt->upload) {
		http_body(r, &len);
		if (len > b->api->cfg.max_body) {
			http_reply_error(r, 413, "too_large", NULL,
			    "request body over %" PRIu64 " bytes",
			    b->api->cfg.max_body);
			return;
		}
	}
	if (rt->scope == API_PUBLIC) {
		rt->fn(&c, r);
		return;
	}
	if ((auth = http_header(r, "Authorization")) != NULL &&
	    strncasecmp(auth, "Bearer ", 7) == 0)
		key = auth + 7;
	else
		key = http_header(r, "X-API-Key");
	if (key == NULL) {
		http_set_header(r, "WWW-Authenticate", "Bearer");
		http_reply_error(r, 401, "unauthorized", NULL,
		    "an API key is needed: Authorization: Bearer KEY");
		return;
	}
	ret = store_apikey_verify(c.s, key, &k, &error);
	if (ret != 0) {
		if (ret < 0)
			log_write(LOG_ERROR, "api",
			    "event=store-error error=\"%s\"", error);
		http_set_header(r, "WWW-Authenticate", "Bearer");
		http_reply_error(
		    r, 401, "unauthorized", NULL, "unknown or revoked API key");
		return;
	}
	c.key_id = k.id;
	c.operator= k.account_id == 0;
	want = rt->scope == API_READ ? "read"
	    : rt->scope == API_WRITE ? "write"
				     : "admin";
	if (!scope_has(k.scopes, want) ||
	    (rt->scope == API_ADMIN && !c.operator)) {
		http_reply_error(r, 403, "forbidden", NULL,
		    "this key lacks the %s scope%s", want,
		    rt->scope == API_ADMIN ? " of an operator key" : "");
		return;
	}
	if (rt->scope == API_ADMIN) {
		c.account = 0;
	} else if (!c.operator) {
		c.account = k.account_id;
	} else {
		const char *h = http_header(r, "Herald-Account");
		struct store_account acc;
		int64_t id;

		if (h == NULL || parse_int(h, &id) < 0 || id <= 0) {
			http_reply_error(r, 400, "account_required",
			    "Herald-Account",
			    "an operator key names the account it acts for "
			    "in the Herald-Account header (an id)");
			return;
		}
		ret = store_account_get(c.s, id, &acc, &error);
		if (api_reply_store(r, ret, error))
			return;
		c.account = id;
	}
	rt->fn(&c, r);
}

static void
openapi_get(struct api_ctx *c, struct http_req *r)
{
	(void)c;
	http_reply_raw(r, 200, "application/json", api_openapi_text,
	    strlen(api_openapi_text));
}

const struct api_route api_meta_routes[] = {
	{ "GET", "/api/v1/openapi.json", API_PUBLIC, openapi_get, false },
	{ NULL, NULL, 0, NULL, false },
};

/* ---- threads ---- */

static void *
http_main(void *arg)
{
	struct api *a = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	event_base_dispatch(a->base);
	return NULL;
}

static int
unfinished_cb(void *arg, const struct store_import_job *job)
{
	int64_t **ids = arg;
	size_t n = 0;

	while ((*ids)[n] != 0)
		n++;
	*ids = xrealloc(*ids, (n + 2) * sizeof(**ids));
	(*ids)[n] = job->id;
	(*ids)[n + 1] = 0;
	return 0;
}

static void *
import_main(void *arg)
{
	struct api *a = arg;
	struct import_env env = { .data_dir = a->data_dir,
		.batch_rows = (size_t)a->cfg.import_batch,
		.errors_kept = (size_t)a->cfg.import_errors,
		.cache = a->cfg.import_cache,
		.wal = a->cfg.import_wal,
		.stop = &a->import_stop };
	struct store *s;
	const char *error;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if ((s = store_open(a->store_url, &error)) == NULL) {
		log_write(LOG_ERROR, "import", "event=store-error error=\"%s\"",
		    error);
		return NULL;
	}
	for (;;) {
		int64_t *ids = xcalloc(1, sizeof(*ids));

		pthread_mutex_lock(&a->mu);
		while (!a->wake && !a->stopping)
			pthread_cond_wait(&a->cond, &a->mu);
		a->wake = false;
		pthread_mutex_unlock(&a->mu);
		if (a->stopping) {
			free(ids);
			break;
		}
		if (store_import_unfinished(
			s, "server", unfinished_cb, &ids, &error) < 0)
			log_write(LOG_ERROR, "import",
			    "event=store-error error=\"%s\"", error);
		for (size_t i = 0; ids[i] != 0 && !a->stopping; i++) {
			char err[512];
			struct store_import_job job;
			int ret;

			if (store_import_get(s, STORE_ANY_ACCOUNT, ids[i], &job,
				&error) != 0)
				continue;
			if (strcmp(job.state, "cancelling") == 0) {
				store_import_set_state(s, job.account_id,
				    job.id, "cancelling", "cancelled", NULL,
				    &error);
				continue;
			}
			log_write(LOG_INFO, "import",
			    "event=start job=%" PRId64 " account=%" PRId64
			    " format=%s rows_done=%" PRId64,
			    job.id, job.account_id, job.format, job.rows_done);
			ret = import_run(s, job.id, &env, err, sizeof(err));
			if (store_import_get(s, STORE_ANY_ACCOUNT, ids[i], &job,
				&error) == 0)
				log_write(ret < 0 ? LOG_WARN : LOG_INFO,
				    "import",
				    "event=%s job=%" PRId64 " rows=%" PRId64
				    " created=%" PRId64 " updated=%" PRId64
				    " skipped=%" PRId64 " errors=%" PRId64
				    "%s%s%s",
				    ret == 1 ? "paused" : job.state, job.id,
				    job.rows_done, job.created, job.updated,
				    job.skipped, job.errors,
				    ret < 0 ? " error=\"" : "",
				    ret < 0 ? err : "", ret < 0 ? "\"" : "");
			/* an uploaded file is not needed once the job ended */
			if (ret == 0 || ret < 0) {
				if (strcmp(job.format, "postgresql") != 0 &&
				    strncmp(job.source, a->data_dir,
					strlen(a->data_dir)) == 0 &&
				    strstr(job.source, "/imports/") != NULL)
					unlink(job.source);
			}
		}
		free(ids);
	}
	store_close(&s);
	return NULL;
}

void
api_import_wake(struct api *a)
{
	pthread_mutex_lock(&a->mu);
	a->wake = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

struct api *
api_start(const struct api_config *cfg, const char *store_url,
    const char *data_dir, void (*print)(const char *line), char *err,
    size_t errlen)
{
	struct api *a = xcalloc(1, sizeof(*a));
	struct http_limits lim;
	const struct api_route *rt;
	const char *error;
	char line[512], *dir;
	size_t n;
	int port;

	a->cfg = *cfg;
	/* absolute: import jobs name their uploaded files by full path */
	if ((a->data_dir = realpath(data_dir, NULL)) == NULL)
		a->data_dir = xstrdup(data_dir);
	a->store_url = xstrdup(store_url);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	dir = fs_path_join(data_dir, "imports");
	if (fs_mkdirs(dir, 0700) < 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		free(dir);
		goto fail;
	}
	free(dir);
	if ((a->s = store_open(store_url, &error)) == NULL) {
		snprintf(err, errlen, "%s", error);
		goto fail;
	}
	if ((a->base = event_base_new()) == NULL) {
		snprintf(err, errlen, "api: cannot make an event loop");
		goto fail;
	}
	http_limits_default(&lim);
	lim.max_body =
	    (size_t)(cfg->max_upload > cfg->max_body ? cfg->max_upload
						     : cfg->max_body);
	lim.timeout_s = (int)((cfg->timeout + 999) / 1000);
	lim.max_conns = (int)cfg->max_connections;
	if ((a->http = http_server_new(a->base, &lim, err, errlen)) == NULL)
		goto fail;
	rt = api_routes(&n);
	bounds = xcalloc(n, sizeof(*bounds));
	for (size_t i = 0; i < n; i++) {
		bounds[i].api = a;
		bounds[i].route = &rt[i];
		if (http_route(a->http, rt[i].method, rt[i].pattern, dispatch,
			&bounds[i]) < 0) {
			snprintf(err, errlen, "api: route %s %s refused",
			    rt[i].method, rt[i].pattern);
			goto fail;
		}
	}
	if (http_listen(a->http, cfg->listen, &port, err, errlen) < 0)
		goto fail;
	snprintf(line, sizeof(line),
	    "listening: http api        %s (REST API: http://%s/api/v1/)",
	    cfg->listen, cfg->listen);
	if (print != NULL)
		print(line);
	if (pthread_create(&a->http_thread, NULL, http_main, a) != 0) {
		snprintf(err, errlen, "api: cannot start a thread");
		goto fail;
	}
	a->http_started = true;
	if (pthread_create(&a->import_thread, NULL, import_main, a) != 0) {
		snprintf(err, errlen, "api: cannot start a thread");
		goto fail;
	}
	a->import_started = true;
	api_import_wake(a); /* resume what the last run left */
	log_write(LOG_INFO, "api", "event=listening address=%s port=%d",
	    cfg->listen, port);
	return a;
fail:
	api_stop(&a);
	return NULL;
}

void
api_stop(struct api **ap)
{
	struct api *a = *ap;

	if (a == NULL)
		return;
	if (a->http_started) {
		event_base_loopbreak(a->base);
		pthread_join(a->http_thread, NULL);
	}
	if (a->import_started) {
		a->import_stop = 1;
		pthread_mutex_lock(&a->mu);
		a->stopping = true;
		pthread_cond_signal(&a->cond);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->import_thread, NULL);
	}
	http_server_free(&a->http);
	if (a->base != NULL)
		event_base_free(a->base);
	store_close(&a->s);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	free(bounds);
	bounds = NULL;
	free(a->data_dir);
	free(a->store_url);
	free(a);
	*ap = NULL;
}
