/*
 * http.c - the HTTP server of http.h, over evhttp.
 *
 * Connections.  evhttp 2.1 neither caps nor reports connections, so the
 * server gives evhttp its bufferevents (evhttp_set_bevcb): each new one
 * is noted, and an event activated right then ("settle") runs before
 * the loop reads from any socket.  It finds the evhttp_connection that
 * now owns the bufferevent (its callback argument), closes it when
 * max_conns are already open, and otherwise counts it and sets its close
 * callback, which uncounts it and ends a stream still running on it.
 *
 * Requests.  One generic callback: copy the body, decode the path and
 * the query, try the routes in order, then 405 / prefix fallback / 404.
 * The handler replies before it returns, or starts a stream; the
 * request is freed when the handler returns, or when the stream ends.
 *
 * Streams.  evhttp_send_reply_start sends the status line; fill runs
 * from an event of the stream ("run"), activated first by
 * http_reply_stream and then by evhttp once each part has been written
 * out (evhttp_send_reply_chunk_with_cb).  A stream ends one of three
 * ways, each calling done once (stream_finish):
 *   fill returned 0     -> evhttp_send_reply_end, evhttp keeps the conn
 *   fill returned -1    -> evhttp_connection_free -> close callback
 *   the client left / timed out / server freed -> close callback; evhttp
 *     has detached the request from the connection (its request is not
 *     done), so it is freed with evhttp_send_reply_end.
 */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "http/http.h"
#include "lib/log.h"
#include "lib/util.h"

#define HTTP_MAX_SEGS 64 /* path segments; a longer path matches nothing */
#define HTTP_LISTEN_BACKLOG 128

enum {
	M_GET = 1,
	M_POST = 2,
	M_PUT = 4,
	M_PATCH = 8,
	M_DELETE = 16,
};

static const struct {
	int bit;
	const char *name;
} methods[] = {
	{ M_GET, "GET" },
	{ M_POST, "POST" },
	{ M_PUT, "PUT" },
	{ M_PATCH, "PATCH" },
	{ M_DELETE, "DELETE" },
};

struct route {
	int method;
	char **segs; /* literal, or "{name}" */
	size_t nsegs;
	http_handler *h;
	void *arg;
};

struct fallback {
	char *prefix;
	size_t len;
	http_handler *h;
	void *arg;
};

struct stream;

/* One open connection. */
struct conn {
	struct http_server *s;
	struct evhttp_connection *evcon;
	struct stream *stream; /* the stream running on it, or NULL */
	struct conn *prev, *next;
};

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	struct http_limits lim;
	struct route *routes;
	size_t nroutes;
	struct fallback *fbs;
	size_t nfbs;
	struct bufferevent **pending; /* given to evhttp, not yet settled */
	size_t npending, cappending;
	struct event *settle;
	struct conn *conns;
	int nconns;
};

struct kv {
	char *k, *v;
};

static void stream_finish(struct stream *st, const char *how);

struct http_req {
	struct http_server *s;
	struct evhttp_request *er;
	const char *method;
	char *path;
	struct kv *params, *query;
	size_t nparams, nquery;
	unsigned char *body;
	size_t body_len;
	char peer[64];
	void *data;
	bool replied, streaming;
	bool head; /* HEAD, routed as GET: a reply without body */
	uint64_t t0;
};

struct stream {
	struct http_req *r;
	struct conn *conn;
	http_stream_fill *fill;
	void *arg;
	void (*done)(void *arg);
	struct event *run;
	size_t bytes;
	int status;
	bool failed; /* fill returned -1 */
};

void
http_limits_default(struct http_limits *l)
{
	l->max_body = 10 * 1024 * 1024;
	l->max_headers = 16 * 1024;
	l->timeout_s = 30;
	l->max_conns = 256;
}

/* status_phrase - the reason phrase of an HTTP status */
static const char *
status_phrase(int status)
{
	static const struct {
		int code;
		const char *text;
	} t[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 202, "Accepted" },
		{ 204, "No Content" },
		{ 301, "Moved Permanently" },
		{ 302, "Found" },
		{ 303, "See Other" },
		{ 304, "Not Modified" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 409, "Conflict" },
		{ 410, "Gone" },
		{ 412, "Precondition Failed" },
		{ 413, "Content Too Large" },
		{ 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Content" },
		{ 429, "Too Many Requests" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 503, "Service Unavailable" },
	};
	size_t i;

	for (i = 0; i < NELEM(t); i++)
		if (t[i].code == status)
			return t[i].text;
	return status < 400 ? "OK" : status < 500 ? "Client Error" : "Error";
}

/* method_bit - the bit of a method name, or 0 */
static int
method_bit(const char *name)
{
	size_t i;

	for (i = 0; i < NELEM(methods); i++)
		if (strcmp(methods[i].name, name) == 0)
			return methods[i].bit;
	return 0;
}

/*
 * pct_decode - percent-decode s[0..n) ('+' as a space when plus) into a
 * new string; NULL for a bad escape or a NUL.
 */
static char *
pct_decode(const char *s, size_t n, bool plus)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (n - i < 3)
				goto bad;
			if ((hi = hex_digit(s[i + 1])) < 0 ||
			    (lo = hex_digit(s[i + 2])) < 0 || (hi | lo) == 0)
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+' && plus)
			*o++ = ' ';
		else if (s[i] == '\0')
			goto bad;
		else
			*o++ = s[i];
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* req_free - free a request and what it holds (not its evhttp request) */
static void
req_free(struct http_req *r)
{
	size_t i;

	for (i = 0; i < r->nparams; i++) {
		free(r->params[i].k);
		free(r->params[i].v);
	}
	for (i = 0; i < r->nquery; i++) {
		free(r->query[i].k);
		free(r->query[i].v);
	}
	free(r->params);
	free(r->query);
	free(r->path);
	free(r->body);
	free(r);
}

/* req_log - the one line of a reply */
static void
req_log(struct http_req *r, int status, size_t bytes)
{
	char q[256];

	log_write(LOG_INFO, "http",
	    "method=%s path=\"%s\" status=%d bytes=%zu ms=%llu peer=%s",
	    r->method, log_quote(r->path ? r->path : "?", q, sizeof(q)), status,
	    bytes, (unsigned long long)(now_ms() - r->t0), r->peer);
}

/* reply_ok - whether r may still reply; logs the bug when not */
static bool
reply_ok(struct http_req *r, const char *what)
{
	char q[256];

	if (!r->replied)
		return true;
	log_write(LOG_ERROR, "http",
	    "event=bug what=\"%s after the reply\" "
	    "method=%s path=\"%s\"",
	    what, r->method, log_quote(r->path ? r->path : "?", q, sizeof(q)));
	return false;
}

/* req_send - send the reply (body may be NULL) and log it */
static void
req_send(struct http_req *r, int status, struct evbuffer *body)
{
	size_t n = body ? evbuffer_get_length(body) : 0;

	r->replied = true;
	evhttp_send_reply(r->er, status, status_phrase(status), body);
	req_log(r, status, n);
}

void
http_set_header(struct http_req *r, const char *name, const char *value)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->er);

	if (!reply_ok(r, "http_set_header"))
		return;
	evhttp_remove_header(h, name);
	if (evhttp_add_header(h, name, value) < 0)
		log_write(LOG_ERROR, "http", "event=bug what=\"bad header\"");
}

void
http_reply_raw(struct http_req *r, int status, const char *content_type,
    const void *data, size_t len)
{
	struct evbuffer *b;

	if (!reply_ok(r, "http_reply_raw"))
		return;
	if (content_type != NULL)
		http_set_header(r, "Content-Type", content_type);
	b = evbuffer_new();
	if (b == NULL || evbuffer_add(b, data, len) < 0)
		fatal("http: out of memory");
	req_send(r, status, b);
	evbuffer_free(b);
}

void
http_reply_json(struct http_req *r, int status, json_t *body)
{
	char *text;

	if (!reply_ok(r, "http_reply_json")) {
		json_decref(body);
		return;
	}
	http_set_header(r, "Cache-Control", "no-store");
	if (body == NULL) {
		req_send(r, status, NULL);
		return;
	}
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL) {
		log_write(LOG_ERROR, "http", "event=bug what=\"json_dumps\"");
		http_set_header(r, "Content-Type", "application/json");
		http_reply_raw(
		    r, 500, NULL, "{\"error\":{\"code\":\"internal\"}}", 29);
		return;
	}
	http_reply_raw(r, status, "application/json", text, strlen(text));
	free(text);
}

/* json_text - a JSON string of s, its non-UTF-8 bytes made '?' */
static json_t *
json_text(const char *s)
{
	json_t *j = json_string(s);
	char *c;
	size_t i;

	if (j != NULL)
		return j;
	c = xstrdup(s);
	for (i = 0; c[i] != '\0'; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	j = json_string(c);
	free(c);
	return j;
}

void
http_reply_error(struct http_req *r, int status, const char *code,
    const char *field, const char *fmt, ...)
{
	json_t *e = json_object(), *o = json_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(e, "code", json_text(code ? code : "error"));
	json_object_set_new(e, "message", json_text(msg));
	if (field != NULL)
		json_object_set_new(e, "field", json_text(field));
	json_object_set_new(o, "error", e);
	http_reply_json(r, status, o);
}

const char *
http_method(const struct http_req *r)
{
	return r->method;
}

const char *
http_path(const struct http_req *r)
{
	return r->path;
}

/* kv_find - the value of the first pair named name, or NULL */
static const char *
kv_find(const struct kv *kv, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(kv[i].k, name) == 0)
			return kv[i].v;
	return NULL;
}

const char *
http_param(const struct http_req *r, const char *name)
{
	return kv_find(r->params, r->nparams, name);
}

const char *
http_query(const struct http_req *r, const char *name)
{
	return kv_find(r->query, r->nquery, name);
}

const char *
http_header(const struct http_req *r, const char *name)
{
	return evhttp_find_header(
	    evhttp_request_get_input_headers(r->er), name);
}

const char *
http_peer(const struct http_req *r)
{
	return r->peer;
}

const unsigned char *
http_body(const struct http_req *r, size_t *len_r)
{
	if (len_r != NULL)
		*len_r = r->body_len;
	return r->body;
}

void
http_req_set_data(struct http_req *r, void *data)
{
	r->data = data;
}

void *
http_req_data(const struct http_req *r)
{
	return r->data;
}

/* media_json - whether a Content-Type is JSON (application/json, +json) */
static bool
media_json(const char *ct)
{
	const char *s = ct, *e;
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strcspn(s, "; \t");
	n = (size_t)(e - s);
	if (n == 16 && strncasecmp(s, "application/json", 16) == 0)
		return true;
	return n > 17 && strncasecmp(s, "application/", 12) == 0 &&
	    strncasecmp(e - 5, "+json", 5) == 0;
}

json_t *
http_body_json(struct http_req *r)
{
	const char *ct = http_header(r, "Content-Type");
	json_error_t je;
	json_t *j;

	if (ct != NULL && !media_json(ct)) {
		http_reply_error(r, 415, "unsupported_media_type", NULL,
		    "the body must be application/json");
		return NULL;
	}
	j = json_loadb((const char *)r->body, r->body_len, 0, &je);
	if (j == NULL) {
		http_reply_error(r, 400, "bad_json", NULL,
		    "invalid JSON at line %d column %d: %s", je.line, je.column,
		    je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		http_reply_error(
		    r, 400, "bad_json", NULL, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* parse_query - split and decode q into r->query; 0 or -1 */
static int
parse_query(struct http_req *r, const char *q)
{
	const char *p = q, *amp, *eq;
	size_t n, cap = 0;
	char *k, *v;

	while (*p != '\0') {
		amp = p + strcspn(p, "&");
		n = (size_t)(amp - p);
		if (n > 0) {
			eq = memchr(p, '=', n);
			k = pct_decode(p, eq ? (size_t)(eq - p) : n, true);
			v = eq
			    ? pct_decode(eq + 1, (size_t)(amp - eq - 1), true)
			    : xstrdup("");
			if (k == NULL || v == NULL) {
				free(k);
				free(v);
				return -1;
			}
			if (r->nquery == cap) {
				cap = cap ? cap * 2 : 8;
				r->query =
				    xrealloc(r->query, cap * sizeof(*r->query));
			}
			r->query[r->nquery].k = k;
			r->query[r->nquery++].v = v;
		}
		p = *amp ? amp + 1 : amp;
	}
	return 0;
}

/*
 * split_path - the decoded segments of raw path p (after the leading
 * '/') into segs; their count, HTTP_MAX_SEGS + 1 when too many, or -1
 * for a bad escape or a decoded '/' or NUL.
 */
static int
split_path(const char *p, char **segs)
{
	const char *e;
	int n = 0;

	p++;
	for (;;) {
		if (n == HTTP_MAX_SEGS) {
			while (n-- > 0)
				free(segs[n]);
			return HTTP_MAX_SEGS + 1;
		}
		e = p + strcspn(p, "/");
		if ((segs[n] = pct_decode(p, (size_t)(e - p), false)) == NULL ||
		    strchr(segs[n], '/') != NULL) {
			free(segs[n]);
			while (n-- > 0)
				free(segs[n]);
			return -1;
		}
		n++;
		if (*e == '\0')
			return n;
		p = e + 1;
	}
}

/* route_match - whether rt matches segs; captures go to r when set */
static bool
route_match(const struct route *rt, char **segs, size_t n, struct http_req *r)
{
	size_t i, len;

	if (rt->nsegs != n)
		return false;
	for (i = 0; i < n; i++) {
		if (rt->segs[i][0] == '{') {
			if (segs[i][0] == '\0')
				return false;
		} else if (strcmp(rt->segs[i], segs[i]) != 0)
			return false;
	}
	if (r == NULL)
		return true;
	r->params = xcalloc(n, sizeof(*r->params));
	for (i = 0; i < n; i++) {
		if (rt->segs[i][0] != '{')
			continue;
		len = strlen(rt->segs[i]);
		r->params[r->nparams].k = xstrndup(rt->segs[i] + 1, len - 2);
		r->params[r->nparams++].v = xstrdup(segs[i]);
	}
	return true;
}

/* reply_405 - the path matches routes of the methods in mask only */
static void
reply_405(struct http_req *r, int mask)
{
	char allow[64] = "";
	size_t i;

	for (i = 0; i < NELEM(methods); i++) {
		if (!(mask & methods[i].bit))
			continue;
		if (allow[0] != '\0')
			strcat(allow, ", ");
		strcat(allow, methods[i].name);
		if (methods[i].bit == M_GET)
			strcat(allow, ", HEAD");
	}
	http_set_header(r, "Allow", allow);
	http_reply_error(r, 405, "method_not_allowed", NULL,
	    "%s is not allowed here (allowed: %s)", r->method, allow);
}

/* dispatch - find the handler of r and call it */
static void
dispatch(struct http_req *r, const char *raw_path)
{
	struct http_server *s = r->s;
	char *segs[HTTP_MAX_SEGS];
	int n, mask = 0, bit = method_bit(r->method);
	const struct fallback *fb = NULL;
	size_t i;

	n = split_path(raw_path, segs);
	if (n < 0) {
		http_reply_error(r, 400, "bad_path", NULL,
		    "malformed escape, '/' or NUL in a path segment");
		return;
	}
	for (i = 0; n <= HTTP_MAX_SEGS && i < s->nroutes; i++) {
		if (!route_match(&s->routes[i], segs, (size_t)n, NULL))
			continue;
		if (s->routes[i].method != bit) {
			mask |= s->routes[i].method;
			continue;
		}
		route_match(&s->routes[i], segs, (size_t)n, r);
		break;
	}
	for (n = n <= HTTP_MAX_SEGS ? n : 0; n > 0; n--)
		free(segs[n - 1]);
	if (i < s->nroutes) {
		s->routes[i].h(r, s->routes[i].arg);
		return;
	}
	if (mask != 0) {
		reply_405(r, mask);
		return;
	}
	for (i = 0; i < s->nfbs; i++)
		if (strncmp(r->path, s->fbs[i].prefix, s->fbs[i].len) == 0 &&
		    (fb == NULL || s->fbs[i].len > fb->len))
			fb = &s->fbs[i];
	if (fb != NULL)
		fb->h(r, fb->arg);
	else
		http_reply_error(r, 404, "not_found", NULL, "no such resource");
}

/* req_new - the request of er, its body copied */
static struct http_req *
req_new(struct http_server *s, struct evhttp_request *er)
{
	struct http_req *r = xcalloc(1, sizeof(*r));
	struct evhttp_connection *evcon = evhttp_request_get_connection(er);
	struct evbuffer *in = evhttp_request_get_input_buffer(er);
	char *addr = NULL;
	ev_uint16_t port;

	r->s = s;
	r->er = er;
	r->t0 = now_ms();
	switch (evhttp_request_get_command(er)) {
	case EVHTTP_REQ_POST:
		r->method = "POST";
		break;
	case EVHTTP_REQ_PUT:
		r->method = "PUT";
		break;
	case EVHTTP_REQ_PATCH:
		r->method = "PATCH";
		break;
	case EVHTTP_REQ_DELETE:
		r->method = "DELETE";
		break;
	default:
		r->method = "GET";
		break;
	}
	r->head = evhttp_request_get_command(er) == EVHTTP_REQ_HEAD;
	if (evcon != NULL)
		evhttp_connection_get_peer(evcon, &addr, &port);
	snprintf(r->peer, sizeof(r->peer), "%s", addr ? addr : "?");
	r->body_len = evbuffer_get_length(in);
	r->body = xmalloc(r->body_len + 1);
	evbuffer_copyout(in, r->body, r->body_len);
	r->body[r->body_len] = '\0';
	return r;
}

/* on_request - evhttp's callback for every request */
static void
on_request(struct evhttp_request *er, void *arg)
{
	struct http_server *s = arg;
	struct http_req *r = req_new(s, er);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(er);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
	char qbuf[256];

	if (raw == NULL || raw[0] != '/')
		raw = "/";
	r->path = pct_decode(raw, strlen(raw), false);
	if (r->path == NULL)
		http_reply_error(r, 400, "bad_path", NULL,
		    "malformed escape or NUL in the path");
	else if (q != NULL && parse_query(r, q) < 0)
		http_reply_error(r, 400, "bad_query", NULL,
		    "malformed escape or NUL in the query");
	else
		dispatch(r, raw);
	if (!r->replied) {
		log_write(LOG_ERROR, "http",
		    "event=bug what=\"handler returned without a reply\" "
		    "method=%s path=\"%s\"",
		    r->method,
		    log_quote(r->path ? r->path : "?", qbuf, sizeof(qbuf)));
		http_reply_error(r, 500, "internal", NULL, "internal error");
	}
	if (!r->streaming)
		req_free(r);
}

/* conn_closed - evhttp's close callback of a counted connection */
static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct http_server *s = c->s;
	struct stream *st = c->stream;

	(void)evcon;
	if (st != NULL) {
		c->stream = NULL;
		st->conn = NULL;
		/* a request evhttp detached is ours to free */
		if (evhttp_request_get_connection(st->r->er) == NULL)
			evhttp_send_reply_end(st->r->er);
		stream_finish(st, st->failed ? "error" : "closed");
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nconns--;
	free(c);
}

/* settle_run - count or refuse the connections evhttp just made */
static void
settle_run(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;
	struct evhttp_connection *evcon;
	struct conn *c;
	void *cbarg = NULL;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < s->npending; i++) {
		bufferevent_getcb(s->pending[i], NULL, NULL, NULL, &cbarg);
		evcon = cbarg;
		if (evcon == NULL ||
		    evhttp_connection_get_bufferevent(evcon) != s->pending[i]) {
			log_write(LOG_ERROR, "http",
			    "event=bug what=\"connection not found\"");
			continue;
		}
		if (s->nconns >= s->lim.max_conns) {
			log_write(LOG_WARN, "http",
			    "event=refused reason=max_conns max_conns=%d",
			    s->lim.max_conns);
			evhttp_connection_free(evcon);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->s = s;
		c->evcon = evcon;
		c->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		evhttp_connection_set_closecb(evcon, conn_closed, c);
	}
	s->npending = 0;
}

/* new_bev - evhttp's bufferevent of a new connection, noted for settle */
static struct bufferevent *
new_bev(struct event_base *base, void *arg)
{
	struct http_server *s = arg;
	struct bufferevent *bev;

	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatal("http: out of memory");
	if (s->npending == s->cappending) {
		s->cappending = s->cappending ? s->cappending * 2 : 16;
		s->pending =
		    xrealloc(s->pending, s->cappending * sizeof(*s->pending));
	}
	s->pending[s->npending++] = bev;
	event_active(s->settle, EV_TIMEOUT, 0);
	return bev;
}

struct http_server *
http_server_new(struct event_base *base, const struct http_limits *lim,
    char *err, size_t errlen)
{
	struct http_server *s;

	if (lim->max_body < 1 || lim->max_body > (size_t)EV_SSIZE_MAX ||
	    lim->max_headers < 256 || lim->max_headers > (size_t)EV_SSIZE_MAX ||
	    lim->timeout_s < 1 || lim->max_conns < 1) {
		snprintf(err, errlen,
		    "http limits out of range (max_body >= 1, max_headers >= "
		    "256, timeout_s >= 1, max_conns >= 1)");
		return NULL;
	}
	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->lim = *lim;
	s->http = evhttp_new(base);
	s->settle = event_new(base, -1, 0, settle_run, s);
	if (s->http == NULL || s->settle == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		http_server_free(&s);
		return NULL;
	}
	evhttp_set_max_body_size(s->http, (ev_ssize_t)lim->max_body);
	evhttp_set_max_headers_size(s->http, (ev_ssize_t)lim->max_headers);
	evhttp_set_timeout(s->http, lim->timeout_s);
	evhttp_set_allowed_methods(s->http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
		EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	evhttp_set_default_content_type(s->http, "text/plain; charset=utf-8");
	evhttp_set_bevcb(s->http, new_bev, s);
	evhttp_set_gencb(s->http, on_request, s);
	return s;
}

/* split_addr - "host:port", "[v6]:port", "*:port" into host and port */
static int
split_addr(
    const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *h = addr;
	size_t n;

	if (addr[0] == '[') {
		if ((colon = strchr(addr, ']')) == NULL || colon[1] != ':')
			return -1;
		h = addr + 1;
		n = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL)
			return -1;
		n = (size_t)(colon - addr);
		if (memchr(addr, ':', n) != NULL)
			return -1; /* an IPv6 address needs brackets */
	}
	if (n == 0 || n >= hostlen || strlen(colon + 1) >= portlen ||
	    colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    atol(colon + 1) > 65535)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

int
http_listen(struct http_server *s, const char *addr, int *port_r, char *err,
    size_t errlen)
{
	struct addrinfo hints, *ai = NULL;
	struct evconnlistener *lev = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char host[128], port[8], ip[64];
	int rc;

	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "%s: not host:port", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	rc = getaddrinfo(
	    strcmp(host, "*") == 0 ? "::" : host, port, &hints, &ai);
	if (rc != 0 && strcmp(host, "*") == 0)
		rc = getaddrinfo("0.0.0.0", port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	lev = evconnlistener_new_bind(s->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    HTTP_LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (lev == NULL) {
		snprintf(err, errlen, "%s: %s", addr, strerror(errno));
		return -1;
	}
	if (evhttp_bind_listener(s->http, lev) == NULL) {
		evconnlistener_free(lev);
		snprintf(err, errlen, "%s: evhttp_bind_listener failed", addr);
		return -1;
	}
	if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&ss,
		&sslen) < 0) {
		snprintf(
		    err, errlen, "%s: getsockname: %s", addr, strerror(errno));
		return -1;
	}
	rc = sockaddr_text((struct sockaddr *)&ss, ip, sizeof(ip));
	if (port_r != NULL)
		*port_r = rc;
	log_write(LOG_INFO, "http", "event=listen addr=%s port=%d", ip, rc);
	return 0;
}

int
http_route(struct http_server *s, const char *method, const char *pattern,
    http_handler *h, void *arg)
{
	struct route rt = { 0 };
	const char *p, *e;
	size_t n;

	if ((rt.method = method_bit(method)) == 0 || pattern[0] != '/' ||
	    h == NULL)
		return -1;
	for (p = pattern + 1;; p = e + 1) {
		e = p + strcspn(p, "/");
		n = (size_t)(e - p);
		if (rt.nsegs == HTTP_MAX_SEGS ||
		    (memchr(p, '{', n) != NULL &&
			(p[0] != '{' || p[n - 1] != '}' || n < 3 ||
			    memchr(p + 1, '{', n - 2) != NULL ||
			    memchr(p + 1, '}', n - 2) != NULL))) {
			while (rt.nsegs > 0)
				free(rt.segs[--rt.nsegs]);
			free(rt.segs);
			return -1;
		}
		rt.segs = xrealloc(rt.segs, (rt.nsegs + 1) * sizeof(char *));
		rt.segs[rt.nsegs++] = xstrndup(p, n);
		if (*e == '\0')
			break;
	}
	rt.h = h;
	rt.arg = arg;
	s->routes = xrealloc(s->routes, (s->nroutes + 1) * sizeof(rt));
	s->routes[s->nroutes++] = rt;
	return 0;
}

void
http_set_prefix_fallback(
    struct http_server *s, const char *prefix, http_handler *h, void *arg)
{
	s->fbs = xrealloc(s->fbs, (s->nfbs + 1) * sizeof(*s->fbs));
	s->fbs[s->nfbs].prefix = xstrdup(prefix);
	s->fbs[s->nfbs].len = strlen(prefix);
	s->fbs[s->nfbs].h = h;
	s->fbs[s->nfbs++].arg = arg;
}

void
http_server_free(struct http_server **sp)
{
	struct http_server *s = *sp;
	size_t i, j;

	if (s == NULL)
		return;
	*sp = NULL;
	/* settle first, so that every connection has its close callback */
	if (s->settle != NULL)
		settle_run(-1, 0, s);
	if (s->http != NULL)
		evhttp_free(s->http);
	if (s->settle != NULL)
		event_free(s->settle);
	for (i = 0; i < s->nroutes; i++) {
		for (j = 0; j < s->routes[i].nsegs; j++)
			free(s->routes[i].segs[j]);
		free(s->routes[i].segs);
	}
	for (i = 0; i < s->nfbs; i++)
		free(s->fbs[i].prefix);
	free(s->routes);
	free(s->fbs);
	free(s->pending);
	free(s);
}

/* stream_finish - the end of a stream: done, log, free */
static void
stream_finish(struct stream *st, const char *how)
{
	char q[256];

	event_free(st->run);
	if (st->done != NULL)
		st->done(st->arg);
	log_write(LOG_INFO, "http",
	    "method=%s path=\"%s\" status=%d bytes=%zu ms=%llu peer=%s "
	    "stream=%s",
	    st->r->method, log_quote(st->r->path, q, sizeof(q)), st->status,
	    st->bytes, (unsigned long long)(now_ms() - st->r->t0), st->r->peer,
	    how);
	req_free(st->r);
	free(st);
}

/* stream_written - evhttp wrote the last part out: ask for the next */
static void
stream_written(struct evhttp_connection *evcon, void *arg)
{
	struct stream *st = arg;

	(void)evcon;
	event_active(st->run, EV_TIMEOUT, 0);
}

/* stream_run - one call of fill, and what follows from its answer */
static void
stream_run(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	struct evbuffer *out = evbuffer_new();
	struct evhttp_connection *evcon;
	size_t n;
	int rc;

	(void)fd;
	(void)what;
	if (out == NULL)
		fatal("http: out of memory");
	/* HEAD: evhttp sends no body, so fill has nothing to do */
	rc = st->r->head ? 0 : st->fill(st->arg, out);
	n = evbuffer_get_length(out);
	if (rc < 0) {
		st->failed = true;
		evbuffer_free(out);
		evcon = evhttp_request_get_connection(st->r->er);
		if (st->conn != NULL && evcon != NULL) {
			evhttp_connection_free(evcon); /* -> conn_closed */
			return;
		}
		if (evcon != NULL)
			evhttp_connection_free(evcon);
		else
			evhttp_send_reply_end(st->r->er); /* frees it */
		stream_finish(st, "error");
		return;
	}
	st->bytes += n;
	if (rc > 0) {
		if (n > 0)
			evhttp_send_reply_chunk_with_cb(
			    st->r->er, out, stream_written, st);
		else
			event_active(st->run, EV_TIMEOUT, 0);
		evbuffer_free(out);
		return;
	}
	if (n > 0)
		evhttp_send_reply_chunk(st->r->er, out);
	evbuffer_free(out);
	if (st->conn != NULL)
		st->conn->stream = NULL;
	evhttp_send_reply_end(st->r->er);
	stream_finish(st, "done");
}

/* conn_find - the counted connection of evcon, or NULL */
static struct conn *
conn_find(struct http_server *s, struct evhttp_connection *evcon)
{
	struct conn *c;

	for (c = s->conns; c != NULL; c = c->next)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

void
http_reply_stream(struct http_req *r, int status, const char *content_type,
    http_stream_fill *fill, void *arg, void (*done)(void *arg))
{
	struct stream *st;

	if (!reply_ok(r, "http_reply_stream")) {
		if (done != NULL)
			done(arg);
		return;
	}
	if (content_type != NULL)
		http_set_header(r, "Content-Type", content_type);
	st = xcalloc(1, sizeof(*st));
	st->r = r;
	st->fill = fill;
	st->arg = arg;
	st->done = done;
	st->status = status;
	st->run = event_new(r->s->base, -1, 0, stream_run, st);
	if (st->run == NULL)
		fatal("http: out of memory");
	st->conn = conn_find(r->s, evhttp_request_get_connection(r->er));
	if (st->conn == NULL)
		log_write(LOG_ERROR, "http",
		    "event=bug what=\"stream on an "
		    "uncounted connection\"");
	else
		st->conn->stream = st;
	r->replied = r->streaming = true;
	evhttp_send_reply_start(r->er, status, status_phrase(status));
	event_active(st->run, EV_TIMEOUT, 0);
}
