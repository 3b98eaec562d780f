/*
 * test_http.c - the HTTP server (http/http.c) against real clients.
 *
 * A server runs on its own event_base in a thread, on 127.0.0.1 and a
 * free port; the tests drive it with the curl command line and, for what
 * curl cannot do (stall, hold sockets open, go away mid-reply), with raw
 * sockets.  A GET /stop makes the loop return.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "http/http.h"
#include "lib/util.h"

#define STREAM_TOTAL (50u * 1024 * 1024)

struct srv {
	struct event_base *base;
	struct http_server *s;
	pthread_t t;
	int port;
};

static atomic_int stream_done, forever_done, failing_done;

struct gen {
	size_t left;	/* SIZE_MAX: for ever */
	int fail_after; /* calls before an error, or 0 */
	atomic_int *done;
};

static void
h_hello(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply_json(r, 200, json_pack("{s:s}", "hello", "world"));
}

static void
h_contact(struct http_req *r, void *arg)
{
	const char *q = http_query(r, "q");

	(void)arg;
	http_reply_json(r, 200,
	    json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", http_param(r, "id"), "cid",
		http_param(r, "cid"), "q", q ? q : "(none)", "peer",
		http_peer(r), "path", http_path(r)));
}

static void
h_put(struct http_req *r, void *arg)
{
	(void)arg;
	http_reply_json(r, 204, NULL);
}

static void
h_echo(struct http_req *r, void *arg)
{
	json_t *j = http_body_json(r);

	(void)arg;
	if (j != NULL)
		http_reply_json(r, 200, j);
}

static void
h_forgot(struct http_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

static void
h_stop(struct http_req *r, void *arg)
{
	struct srv *v = arg;

	struct timeval tv = { 0, 100 * 1000 };

	/* once the reply is out */
	http_reply_raw(r, 200, "text/plain", "bye\n", 4);
	event_base_loopexit(v->base, &tv);
}

/* gen_fill - the next 64 KiB of a generated stream */
static int
gen_fill(void *arg, struct evbuffer *out)
{
	struct gen *g = arg;
	static char block[64 * 1024];
	size_t n = g->left < sizeof(block) ? g->left : sizeof(block);

	if (block[0] == '\0')
		memset(block, 'z', sizeof(block));
	if (g->fail_after > 0 && --g->fail_after == 0)
		return -1;
	evbuffer_add(out, block, n);
	if (g->left != SIZE_MAX)
		g->left -= n;
	return g->left > 0 ? 1 : 0;
}

static void
gen_done(void *arg)
{
	struct gen *g = arg;

	atomic_fetch_add(g->done, 1);
	free(g);
}

static void
h_stream(struct http_req *r, void *arg)
{
	struct gen *g = xcalloc(1, sizeof(*g));

	(void)arg;
	g->left = STREAM_TOTAL;
	g->done = &stream_done;
	http_reply_stream(
	    r, 200, "application/octet-stream", gen_fill, g, gen_done);
}

static void
h_forever(struct http_req *r, void *arg)
{
	struct gen *g = xcalloc(1, sizeof(*g));

	(void)arg;
	g->left = SIZE_MAX;
	g->done = &forever_done;
	http_reply_stream(r, 200, "text/plain", gen_fill, g, gen_done);
}

static void
h_failing(struct http_req *r, void *arg)
{
	struct gen *g = xcalloc(1, sizeof(*g));

	(void)arg;
	g->left = SIZE_MAX;
	g->fail_after = 3;
	g->done = &failing_done;
	http_reply_stream(r, 200, "text/plain", gen_fill, g, gen_done);
}

static void *
srv_loop(void *arg)
{
	struct srv *v = arg;

	event_base_dispatch(v->base);
	return NULL;
}

/* srv_start - a server with lim and the test routes, running */
static void
srv_start(struct srv *v, size_t max_body, int timeout_s, int max_conns)
{
	struct http_limits lim;
	char err[256];

	http_limits_default(&lim);
	lim.max_body = max_body;
	lim.timeout_s = timeout_s;
	lim.max_conns = max_conns;
	v->base = event_base_new();
	assert_non_null(v->base);
	v->s = http_server_new(v->base, &lim, err, sizeof(err));
	assert_non_null(v->s);
	assert_int_equal(http_route(v->s, "GET", "/hello", h_hello, NULL), 0);
	assert_int_equal(http_route(v->s, "GET", "/lists/{id}/contacts/{cid}",
			     h_contact, NULL),
	    0);
	assert_int_equal(
	    http_route(v->s, "PUT", "/lists/{id}/contacts/{cid}", h_put, NULL),
	    0);
	assert_int_equal(http_route(v->s, "POST", "/echo", h_echo, NULL), 0);
	assert_int_equal(http_route(v->s, "GET", "/forgot", h_forgot, NULL), 0);
	assert_int_equal(http_route(v->s, "GET", "/stream", h_stream, NULL), 0);
	assert_int_equal(
	    http_route(v->s, "GET", "/forever", h_forever, NULL), 0);
	assert_int_equal(http_route(v->s, "GET", "/stop", h_stop, v), 0);
	assert_int_equal(
	    http_route(v->s, "GET", "/failing", h_failing, NULL), 0);
	assert_int_equal(http_route(v->s, "GET", "/bad/{x", h_stop, v), -1);
	assert_int_equal(http_route(v->s, "TRACE", "/x", h_stop, v), -1);
	assert_int_equal(
	    http_listen(v->s, "127.0.0.1:0", &v->port, err, sizeof(err)), 0);
	assert_true(v->port > 0);
	assert_int_equal(
	    http_listen(v->s, "nonsense", NULL, err, sizeof(err)), -1);
	assert_int_equal(pthread_create(&v->t, NULL, srv_loop, v), 0);
}

/* run - run cmd with the shell; its output into out; the exit status */
static int
run(const char *cmd, char *out, size_t outlen)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0, k;

	assert_non_null(f);
	while (n < outlen - 1 && (k = fread(out + n, 1, outlen - 1 - n, f)) > 0)
		n += k;
	out[n] = '\0';
	return pclose(f);
}

static void
srv_stop(struct srv *v)
{
	char cmd[256], out[256];

	snprintf(
	    cmd, sizeof(cmd), "curl -s -m 5 http://127.0.0.1:%d/stop", v->port);
	run(cmd, out, sizeof(out));
	pthread_join(v->t, NULL);
	http_server_free(&v->s);
	assert_null(v->s);
	event_base_free(v->base);
}

/* curl - run curl with args on the server; the output */
static char *
curl(struct srv *v, const char *args, const char *path)
{
	static char out[64 * 1024];
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "curl -s %s 'http://127.0.0.1:%d%s' 2>&1",
	    args, v->port, path);
	run(cmd, out, sizeof(out));
	return out;
}

/* raw_connect - a socket connected to the server */
static int
raw_connect(struct srv *v)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)v->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* raw_read - read what comes within ms into buf; bytes, 0 at EOF, -1 none */
static ssize_t
raw_read(int fd, char *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return -1;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = 0; /* a reset is a close too */
	buf[n] = '\0';
	return n;
}

/* vm_kb - a VmXXX: line of /proc/self/status, in kB */
static long
vm_kb(const char *key)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			kb = atol(line + strlen(key));
	fclose(f);
	return kb;
}

static void
test_routes(void **state)
{
	struct srv *v = *state;
	char *o;

	o = curl(v, "-w ' %{http_code}'",
	    "/lists/a%20b/contacts/%C3%A9?x=1&q=hello+world%21&q=2");
	assert_non_null(strstr(o, "\"id\":\"a b\""));
	assert_non_null(strstr(o, "\"cid\":\"\xc3\xa9\""));
	assert_non_null(strstr(o, "\"q\":\"hello world!\""));
	assert_non_null(strstr(o, "\"peer\":\"127.0.0.1\""));
	assert_non_null(strstr(o, "\"path\":\"/lists/a b/contacts/\xc3\xa9\""));
	assert_non_null(strstr(o, " 200"));
	o = curl(v, "-w ' %{http_code}'", "/lists/1/contacts/2");
	assert_non_null(strstr(o, "\"q\":\"(none)\""));
	/* a decoded '/' or NUL, a bad escape: 400 */
	o = curl(v, "-w ' %{http_code}'", "/lists/a%2Fb/contacts/1");
	assert_non_null(strstr(o, "\"bad_path\""));
	assert_non_null(strstr(o, " 400"));
	o = curl(v, "-w ' %{http_code}'", "/lists/a%00/contacts/1");
	assert_non_null(strstr(o, " 400"));
	o = curl(v, "-w ' %{http_code}'", "/hello?q=%zz");
	assert_non_null(strstr(o, "\"bad_query\""));
	/* an empty segment does not match a parameter */
	o = curl(v, "-w ' %{http_code}'", "/lists//contacts/1");
	assert_non_null(strstr(o, "\"not_found\""));
	assert_non_null(strstr(o, " 404"));
	o = curl(v, "-i", "/hello");
	assert_non_null(strstr(o, "Cache-Control: no-store"));
	assert_non_null(strstr(o, "Content-Type: application/json"));
	assert_non_null(strstr(o, "{\"hello\":\"world\"}"));
}

static void
test_404_405(void **state)
{
	struct srv *v = *state;
	char *o;

	o = curl(v, "-i", "/nope");
	assert_non_null(strstr(o, "HTTP/1.1 404"));
	assert_non_null(strstr(o, "{\"error\":{\"code\":\"not_found\""));
	o = curl(v, "-i -X DELETE", "/lists/1/contacts/2");
	assert_non_null(strstr(o, "HTTP/1.1 405"));
	assert_non_null(strstr(o, "Allow: GET, HEAD, PUT"));
	assert_non_null(strstr(o, "\"method_not_allowed\""));
	o = curl(v, "-i -X PUT", "/lists/1/contacts/2");
	assert_non_null(strstr(o, "HTTP/1.1 204"));
	o = curl(v, "-I", "/hello");
	assert_non_null(strstr(o, "HTTP/1.1 200"));
	/* methods and headers evhttp refuses itself */
	o = curl(v, "-i -X OPTIONS", "/hello");
	assert_non_null(strstr(o, "HTTP/1.1 501"));
	o = curl(v, "-i -H \"X-Big: $(head -c 20000 /dev/zero | tr '\\0' x)\"",
	    "/hello");
	assert_non_null(strstr(o, "HTTP/1.1 400"));
	/* a handler that forgets to reply: 500, logged */
	o = curl(v, "-i", "/forgot");
	assert_non_null(strstr(o, "HTTP/1.1 500"));
	assert_non_null(strstr(o, "\"internal\""));
}

static void
test_json(void **state)
{
	struct srv *v = *state;
	char *o;
	FILE *f;

	o = curl(v,
	    "-w ' %{http_code}' -H 'Content-Type: application/json' "
	    "--data-binary '{\"a\":[1,2]}'",
	    "/echo");
	assert_non_null(strstr(o, "{\"a\":[1,2]} 200"));
	f = fopen("/tmp/test_http.json", "w");
	assert_non_null(f);
	fputs("{\"a\":1,\n\"b\":}", f);
	fclose(f);
	o = curl(v,
	    "-w ' %{http_code}' -H 'Content-Type: application/json' "
	    "--data-binary @/tmp/test_http.json",
	    "/echo");
	unlink("/tmp/test_http.json");
	assert_non_null(strstr(o, "\"bad_json\""));
	assert_non_null(strstr(o, "line 2 column"));
	assert_non_null(strstr(o, " 400"));
	o = curl(v,
	    "-w ' %{http_code}' -H 'Content-Type: application/json' "
	    "--data-binary '[1]'",
	    "/echo");
	assert_non_null(strstr(o, "must be a JSON object"));
	o = curl(v,
	    "-w ' %{http_code}' -H 'Content-Type: text/plain' "
	    "--data-binary '{}'",
	    "/echo");
	assert_non_null(strstr(o, "\"unsupported_media_type\""));
	assert_non_null(strstr(o, " 415"));
	/* no Content-Type, no Content-Length: an empty body */
	o = curl(v, "-w ' %{http_code}' -X POST", "/echo");
	assert_non_null(strstr(o, " 400"));
	/* too large: evhttp's 413 */
	o = curl(v,
	    "-w ' %{http_code}' -H 'Content-Type: application/json' "
	    "--data-binary @/proc/self/exe",
	    "/echo");
	assert_non_null(strstr(o, " 413"));
}

static void
test_stall_timeout(void **state)
{
	struct srv *v = *state;
	const char half[] = "GET /hello HTTP/1.1\r\nHost: x\r\n";
	char buf[4096];
	uint64_t t0 = now_ms(), ms;
	int fd = raw_connect(v);

	assert_int_equal(write(fd, half, sizeof(half) - 1), sizeof(half) - 1);
	/* timeout_s = 1: closed after about a second, with no reply */
	while (raw_read(fd, buf, sizeof(buf), 4000) > 0)
		;
	ms = now_ms() - t0;
	assert_true(ms >= 900 && ms < 3500);
	close(fd);
	/* an idle keep-alive connection likewise */
	fd = raw_connect(v);
	t0 = now_ms();
	assert_int_equal(
	    write(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32), 32);
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	assert_non_null(strstr(buf, "200 OK"));
	assert_int_equal(raw_read(fd, buf, sizeof(buf), 4000), 0);
	ms = now_ms() - t0;
	assert_true(ms >= 900 && ms < 3500);
	close(fd);
}

static void
test_keepalive(void **state)
{
	struct srv *v = *state;
	char cmd[512], out[16384];

	snprintf(cmd, sizeof(cmd),
	    "curl -sv -o /dev/null -o /dev/null http://127.0.0.1:%d/hello "
	    "http://127.0.0.1:%d/lists/1/contacts/2 2>&1",
	    v->port, v->port);
	assert_int_equal(run(cmd, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "Re-using existing connection"));
}

static void
test_stream(void **state)
{
	struct srv *v = *state;
	long hwm0, rss0;
	char *o;

	atomic_store(&stream_done, 0);
	hwm0 = vm_kb("VmHWM:");
	rss0 = vm_kb("VmRSS:");
	o = curl(
	    v, "-o /dev/null -w '%{size_download} %{http_code}'", "/stream");
	assert_string_equal(o, "52428800 200");
	assert_int_equal(atomic_load(&stream_done), 1);
	/* fill fails after two parts: the connection is closed */
	o = curl(v, "-o /dev/null -w '%{size_download}'", "/failing");
	assert_string_equal(o, "131072");
	assert_int_equal(atomic_load(&failing_done), 1);
	/* HEAD: no body, and the stream still ends */
	o = curl(v, "-I -m 5 -w '%{http_code}'", "/stream");
	assert_non_null(strstr(o, "HTTP/1.1 200"));
	assert_int_equal(atomic_load(&stream_done), 2);
	print_message("rss %ld -> %ld kB, peak %ld -> %ld kB\n", rss0,
	    vm_kb("VmRSS:"), hwm0, vm_kb("VmHWM:"));
#ifndef __SANITIZE_ADDRESS__ /* ASan's quarantine holds freed memory */
	assert_true(vm_kb("VmHWM:") - hwm0 < 16 * 1024);
	assert_true(vm_kb("VmRSS:") - rss0 < 16 * 1024);
#endif
}

static void
test_stream_client_leaves(void **state)
{
	struct srv *v = *state;
	const char req[] = "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[65536];
	size_t got = 0;
	ssize_t n;
	int fd = raw_connect(v), i;

	atomic_store(&forever_done, 0);
	assert_int_equal(write(fd, req, sizeof(req) - 1), sizeof(req) - 1);
	while (got < 300000 && (n = raw_read(fd, buf, sizeof(buf), 2000)) > 0)
		got += (size_t)n;
	assert_true(got >= 300000);
	assert_int_equal(atomic_load(&forever_done), 0);
	close(fd);
	for (i = 0; i < 50 && atomic_load(&forever_done) == 0; i++)
		usleep(100 * 1000);
	usleep(200 * 1000);
	assert_int_equal(atomic_load(&forever_done), 1);
	/* the server still serves */
	assert_non_null(strstr(curl(v, "", "/hello"), "world"));
}

static void
test_max_conns(void **state)
{
	struct srv v;
	const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[4096];
	int fd[4], i;

	(void)state;
	srv_start(&v, 1024, 5, 2);
	for (i = 0; i < 3; i++) {
		fd[i] = raw_connect(&v);
		usleep(100 * 1000);
	}
	/* the third is closed at once */
	assert_int_equal(raw_read(fd[2], buf, sizeof(buf), 2000), 0);
	close(fd[2]);
	for (i = 0; i < 2; i++) {
		assert_int_equal(
		    write(fd[i], req, sizeof(req) - 1), sizeof(req) - 1);
		assert_true(raw_read(fd[i], buf, sizeof(buf), 2000) > 0);
		assert_non_null(strstr(buf, "200 OK"));
	}
	/* one goes, a new one is served */
	close(fd[0]);
	usleep(200 * 1000);
	fd[3] = raw_connect(&v);
	assert_int_equal(write(fd[3], req, sizeof(req) - 1), sizeof(req) - 1);
	assert_true(raw_read(fd[3], buf, sizeof(buf), 2000) > 0);
	assert_non_null(strstr(buf, "200 OK"));
	close(fd[1]);
	close(fd[3]);
	usleep(200 * 1000);
	srv_stop(&v);
}

static void
test_server_free_mid_stream(void **state)
{
	struct srv v;
	const char req[] = "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n";
	char buf[65536];
	int fd;

	(void)state;
	srv_start(&v, 1024, 5, 8);
	atomic_store(&forever_done, 0);
	fd = raw_connect(&v);
	assert_int_equal(write(fd, req, sizeof(req) - 1), sizeof(req) - 1);
	assert_true(raw_read(fd, buf, sizeof(buf), 2000) > 0);
	srv_stop(&v); /* the stream ends with the server */
	assert_int_equal(atomic_load(&forever_done), 1);
	close(fd);
}

static int
setup(void **state)
{
	static struct srv v;

	srv_start(&v, 4096, 1, 64);
	*state = &v;
	return 0;
}

static int
teardown(void **state)
{
	srv_stop(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_404_405),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_stall_timeout),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_stream_client_leaves),
		cmocka_unit_test(test_max_conns),
		cmocka_unit_test(test_server_free_mid_stream),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
