/*
 * http - the HTTP/1.1 server the REST API and the web pages run on,
 * over libevent 2.1's evhttp, with a limit on everything a client can
 * make it hold.
 *
 * Handlers are registered per method and path pattern; a handler gets an
 * opaque request, reads it with the accessors, and replies exactly once
 * before it returns (http_reply_json, _error, _raw) or starts a streamed
 * reply (http_reply_stream) that goes on after it returns.  A handler
 * that returns without either is a bug: it is logged and the client gets
 * a 500.  Every reply is logged at info level as
 *   method=GET path="/x" status=200 bytes=12 ms=0 peer=127.0.0.1
 *
 * What evhttp answers itself, without JSON and unlogged: a body over
 * max_body (413), request line and headers over max_headers (400 in
 * 2.1), a malformed request (400), a method other than GET, HEAD, POST,
 * PUT, PATCH, DELETE (501).  HEAD is routed as GET.  A connection beyond
 * max_conns is accepted and closed at once, before any reply.
 *
 * Everything runs on the event_base of the server; nothing here is
 * thread-safe.
 */
#ifndef HERALD_HTTP_HTTP_H
#define HERALD_HTTP_HTTP_H

#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

struct evbuffer;

struct http_limits {
	size_t max_body;    /* bytes of a request body; more -> 413 */
	size_t max_headers; /* bytes of request line + headers; evhttp's 4xx */
	int timeout_s; /* read/write timeout per connection, also keep-alive */
	int max_conns; /* open connections; new ones beyond are closed */
};

/* http_limits_default - 10 MiB, 16 KiB, 30 s, 256 */
void http_limits_default(struct http_limits *l);

struct http_server;
struct http_req; /* opaque; valid until the handler returns or, for a
		  * stream, until done */

typedef void http_handler(struct http_req *req, void *arg);

/*
 * http_server_new - a server on base with the limits *lim (copied);
 * NULL with the reason in err on failure (a limit out of range).
 */
struct http_server *http_server_new(struct event_base *base,
    const struct http_limits *lim, char *err, size_t errlen);

/*
 * http_listen - listen on addr: "127.0.0.1:8080", "[::1]:8080" or
 * "*:8080" (every address, IPv6 and IPv4 when the system allows).  Port
 * 0 takes a free port; the bound port goes to *port_r when not NULL.
 * Returns 0, or -1 with the reason in err.
 */
int http_listen(struct http_server *s, const char *addr, int *port_r, char *err,
    size_t errlen);

/*
 * http_route - call h(req, arg) for method ("GET", "POST", "PUT",
 * "PATCH", "DELETE") on paths matching pattern, such as
 * "/api/v1/lists/{id}/contacts": a {name} segment matches one non-empty
 * path segment, percent-decoded, read with http_param(req, "name").  A
 * path segment that decodes to a '/' or a NUL gets a 400 "bad_path".
 * Routes are tried in the order of registration.  Returns 0, or -1 for
 * a bad method or pattern.
 */
int http_route(struct http_server *s, const char *method, const char *pattern,
    http_handler *h, void *arg);

/*
 * http_set_prefix_fallback - call h(req, arg) for requests whose path
 * starts with prefix and match no route of any method (instead of the
 * JSON 404); the longest matching prefix wins.  A path that matches a
 * route of another method still gets the 405.  prefix is copied.
 */
void http_set_prefix_fallback(
    struct http_server *s, const char *prefix, http_handler *h, void *arg);

/*
 * http_server_free - close the listeners and every connection (streams
 * get their done callback), free the server and set *sp to NULL.
 */
void http_server_free(struct http_server **sp);

/* http_method - "GET", "POST", ... ("GET" for HEAD) */
const char *http_method(const struct http_req *r);
/* http_path - the percent-decoded path, without the query */
const char *http_path(const struct http_req *r);
/* http_param - the {name} capture of the route, or NULL */
const char *http_param(const struct http_req *r, const char *name);
/*
 * http_query - the decoded value ('+' is a space) of query argument
 * name, the first when repeated; "" for "?name" alone; NULL if absent
 */
const char *http_query(const struct http_req *r, const char *name);
/* http_header - a request header by name, case-insensitive, or NULL */
const char *http_header(const struct http_req *r, const char *name);
/* http_peer - the client's address as text ("127.0.0.1", "::1") */
const char *http_peer(const struct http_req *r);
/*
 * http_body - the whole request body; *len_r gets its length (the
 * bytes are followed by a NUL not counted in it).  Never NULL.
 */
const unsigned char *http_body(const struct http_req *r, size_t *len_r);
/*
 * http_body_json - the body parsed as a JSON object (owned by the
 * caller).  On failure it replies 415 "unsupported_media_type" (a
 * Content-Type other than application/json), or 400 "bad_json" with the
 * line and column, and returns NULL: the handler just returns.
 */
json_t *http_body_json(struct http_req *r);
/* http_req_set_data, http_req_data - a pointer for the handler chain */
void http_req_set_data(struct http_req *r, void *data);
void *http_req_data(const struct http_req *r);

/*
 * http_reply_json - reply status with body (stolen) as JSON, with
 * Cache-Control: no-store; body NULL sends no body (for 204).
 */
void http_reply_json(struct http_req *r, int status, json_t *body);
/*
 * http_reply_error - reply status with
 * {"error":{"code":code,"message":msg,"field":field}}; "field" is left
 * out when NULL.
 */
void http_reply_error(struct http_req *r, int status, const char *code,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* http_reply_raw - reply status with len bytes of data (copied) */
void http_reply_raw(struct http_req *r, int status, const char *content_type,
    const void *data, size_t len);
/* http_set_header - set a reply header (replacing one of that name) */
void http_set_header(struct http_req *r, const char *name, const char *value);

/*
 * http_stream_fill - append the next part of a streamed reply to out
 * (say up to 64 KiB); return 1 when more is to come, 0 when done (out
 * may hold a last part), -1 on error (the connection is closed, as the
 * status line is already sent).
 */
typedef int http_stream_fill(void *arg, struct evbuffer *out);

/*
 * http_reply_stream - reply status with a body made by fill, sent with
 * chunked transfer encoding (or until close for HTTP/1.0).  fill is
 * called from the event loop, never from http_reply_stream itself, and
 * again only once the previous part was written to the socket, so the
 * memory held stays bounded whatever the size.  done(arg), if not NULL,
 * is called exactly once at the end: after the last part, on error,
 * when the client goes away or times out, or when the server is freed.
 */
void http_reply_stream(struct http_req *r, int status, const char *content_type,
    http_stream_fill *fill, void *arg, void (*done)(void *arg));

#endif
