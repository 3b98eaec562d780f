/*
 * test_multipart.c - the multipart/form-data reader (http/multipart.c).
 *
 * Each part is written out as "[name|filename|type|data]" and compared
 * with what it should be.  One body is made by curl -F itself: curl
 * posts to a one-shot listener of this test that keeps the request.
 * (curl, like browsers, sends a '"' of a file name as %22; the reader
 * hands the name out as sent.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/multipart.h"

struct sink {
	char buf[64 * 1024];
	size_t n;
	int stop_after;
};

/* collect - the part callback: dump the part into the sink */
static int
collect(void *arg, const struct multipart_part *p)
{
	struct sink *s = arg;

	s->n += (size_t)snprintf(s->buf + s->n, sizeof(s->buf) - s->n,
	    "[%s|%s|%s|%.*s]", p->name, p->filename ? p->filename : "-",
	    p->content_type ? p->content_type : "-", (int)p->len,
	    (const char *)p->data);
	if (s->stop_after > 0 && --s->stop_after == 0)
		return 42;
	return 0;
}

/* parse - parse body with boundary into s; the result */
static int
parse(const char *body, const char *boundary, size_t max_parts, struct sink *s,
    char *err)
{
	s->n = 0;
	s->buf[0] = '\0';
	return multipart_parse((const unsigned char *)body, strlen(body),
	    boundary, max_parts, collect, s, err, 256);
}

static void
test_boundary(void **state)
{
	char b[MULTIPART_BOUNDARY_MAX + 1], err[256];

	(void)state;
	assert_int_equal(
	    multipart_boundary("multipart/form-data; boundary=AaB03x", b,
		sizeof(b), err, sizeof(err)),
	    0);
	assert_string_equal(b, "AaB03x");
	assert_int_equal(multipart_boundary("Multipart/Form-Data;charset=x; "
					    "BOUNDARY=\"a b:c\"",
			     b, sizeof(b), err, sizeof(err)),
	    0);
	assert_string_equal(b, "a b:c");
	assert_int_equal(multipart_boundary("text/plain; boundary=x", b,
			     sizeof(b), err, sizeof(err)),
	    -1);
	assert_int_equal(multipart_boundary("multipart/form-data", b, sizeof(b),
			     err, sizeof(err)),
	    -1);
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=", b,
			     sizeof(b), err, sizeof(err)),
	    -1);
	assert_int_equal(
	    multipart_boundary("multipart/form-data; boundary=\"a\"\"", b,
		sizeof(b), err, sizeof(err)),
	    0);
	assert_int_equal(
	    multipart_boundary("multipart/form-data; boundary=\"ab ", b,
		sizeof(b), err, sizeof(err)),
	    -1);
	assert_int_equal(
	    multipart_boundary("multipart/form-data; boundary=\"ab \"", b,
		sizeof(b), err, sizeof(err)),
	    -1); /* may not end in a space */
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=a<b",
			     b, sizeof(b), err, sizeof(err)),
	    -1);
	/* 70 is the most */
	assert_int_equal(
	    multipart_boundary("multipart/form-data; boundary="
			       "0123456789012345678901234567890123"
			       "456789012345678901234567890123456789",
		b, sizeof(b), err, sizeof(err)),
	    0);
	assert_int_equal(
	    multipart_boundary("multipart/form-data; boundary="
			       "0123456789012345678901234567890123"
			       "4567890123456789012345678901234567890",
		b, sizeof(b), err, sizeof(err)),
	    -1);
	assert_int_equal(multipart_boundary("multipart/form-data; boundary=abc",
			     b, 3, err, sizeof(err)),
	    -1);
}

static void
test_rfc7578(void **state)
{
	static struct sink s;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse("--AaB03x\r\n"
		  "Content-Disposition: form-data; name=\"submit-name\"\r\n"
		  "\r\n"
		  "Larry\r\n"
		  "--AaB03x\r\n"
		  "Content-Disposition: form-data; name=\"files\"; "
		  "filename=\"file1.txt\"\r\n"
		  "Content-Type: text/plain\r\n"
		  "\r\n"
		  "... contents of file1.txt ...\r\n"
		  "--AaB03x--\r\n",
		"AaB03x", 10, &s, err),
	    0);
	assert_string_equal(s.buf,
	    "[submit-name|-|-|Larry][files|file1.txt|text/plain|... contents "
	    "of file1.txt ...]");
}

static void
test_lf_preamble_epilogue(void **state)
{
	static struct sink s;
	char err[256];

	(void)state;
	assert_int_equal(parse("This is the preamble.\n--b\n"
			       "content-disposition:form-data;name=a\n\n"
			       "one\ntwo\n--b  \n"
			       "CONTENT-DISPOSITION: form-data; name=\"b\"\n"
			       "\n\n--b--\nepilogue --b\n",
			     "b", 10, &s, err),
	    0);
	assert_string_equal(s.buf, "[a|-|-|one\ntwo][b|-|-|]");
}

static void
test_filenames(void **state)
{
	static struct sink s;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse("--b\r\nContent-Disposition: form-data; name=\"f\"; "
		  "filename=\"say \\\"hi\\\".txt\"\r\n\r\nx\r\n"
		  "--b\r\nContent-Disposition: form-data; name=\"g\"; "
		  "filename=\"euro.txt\"; filename*=UTF-8''%e2%82%ac%20rates."
		  "txt\r\n\r\ny\r\n"
		  "--b\r\nContent-Disposition: form-data; name=\"h\"; "
		  "filename*=utf-8'en'bad%zz; filename=\"plain\"\r\n\r\nz\r\n"
		  "--b\r\nContent-Disposition: form-data; name=\"i\"; "
		  "filename*=iso-8859-1''%e9\r\n\r\n\r\n"
		  "--b\r\nContent-Disposition: form-data; name=\"j\";\r\n"
		  "\tfilename=\"folded\"\r\n\r\nw\r\n--b--",
		"b", 10, &s, err),
	    0);
	assert_string_equal(s.buf,
	    "[f|say \"hi\".txt|-|x][g|\xe2\x82\xac rates.txt|-|y]"
	    "[h|plain|-|z][i|-|-|][j|folded|-|w]");
}

static void
test_boundary_in_data(void **state)
{
	static struct sink s;
	char err[256];

	(void)state;
	/* "--b" not at a line start, or followed by more, is data */
	assert_int_equal(
	    parse("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
		  "x--b\r\n--bb\r\n--b-\r\n--b\r\n"
		  "Content-Disposition: form-data; name=\"e\"\r\n\r\n"
		  "\r\n--b--",
		"b", 10, &s, err),
	    0);
	assert_string_equal(s.buf, "[a|-|-|x--b\r\n--bb\r\n--b-][e|-|-|]");
}

static void
test_errors(void **state)
{
	static struct sink s;
	static char big[20000];
	char err[256];
	size_t n;

	(void)state;
	assert_int_equal(
	    parse("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
		  "data without end\r\n",
		"b", 10, &s, err),
	    -1);
	assert_non_null(strstr(err, "missing closing boundary"));
	assert_string_equal(err, "offset 67: missing closing boundary");
	assert_int_equal(parse("no boundary at all", "b", 10, &s, err), -1);
	assert_string_equal(err, "offset 0: no boundary in the body");
	assert_int_equal(
	    parse("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "b", 10,
		&s, err),
	    -1);
	assert_string_equal(err, "offset 33: part without Content-Disposition");
	assert_int_equal(parse("--b\r\nContent-Disposition: form-data\r\n\r\nx"
			       "\r\n--b--",
			     "b", 10, &s, err),
	    -1);
	assert_non_null(strstr(err, "no name"));
	assert_int_equal(
	    parse("--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx"
		  "\r\n--b--",
		"b", 10, &s, err),
	    -1);
	assert_int_equal(
	    parse("--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx"
		  "\r\n--b--",
		"b", 10, &s, err),
	    -1);
	assert_non_null(strstr(err, "unterminated quoted"));
	assert_int_equal(parse("--b\r\nContent-Disposition: form-data; name=a",
			     "b", 10, &s, err),
	    -1);
	assert_non_null(strstr(err, "unterminated part headers"));
	/* max_parts, and a stop from the callback */
	assert_int_equal(parse("--b\nContent-Disposition: form-data; name=a\n\n"
			       "1\n--b\nContent-Disposition: form-data; name=b"
			       "\n\n2\n--b--",
			     "b", 1, &s, err),
	    -1);
	assert_string_equal(s.buf, "[a|-|-|1]");
	assert_non_null(strstr(err, "more than 1 parts"));
	s.stop_after = 1;
	assert_int_equal(parse("--b\nContent-Disposition: form-data; name=a\n\n"
			       "1\n--b\nContent-Disposition: form-data; name=b"
			       "\n\n2\n--b--",
			     "b", 10, &s, err),
	    42);
	s.stop_after = 0;
	/* header block over 8 KiB */
	n = (size_t)sprintf(big,
	    "--b\r\nContent-Disposition: form-data; "
	    "name=a\r\nX-Pad: ");
	memset(big + n, 'p', 9000);
	strcpy(big + n + 9000, "\r\n\r\nx\r\n--b--");
	assert_int_equal(parse(big, "b", 10, &s, err), -1);
	assert_non_null(strstr(err, "part headers too long"));
	/* just under it is fine */
	n = (size_t)sprintf(big,
	    "--b\r\nContent-Disposition: form-data; "
	    "name=a\r\nX-Pad: ");
	memset(big + n, 'p', 8000);
	strcpy(big + n + 8000, "\r\n\r\nx\r\n--b--");
	assert_int_equal(parse(big, "b", 10, &s, err), 0);
	/* empty body, bad boundary */
	assert_int_equal(parse("", "b", 10, &s, err), -1);
	assert_int_equal(parse("--\r\n", "", 10, &s, err), -1);
	/* only a close delimiter: no parts */
	assert_int_equal(parse("--b--\r\n", "b", 10, &s, err), 0);
	assert_string_equal(s.buf, "");
}

/* The one-shot listener: keeps the headers and body of one request. */
struct capture {
	int lfd, port;
	char req[64 * 1024];
	size_t n, body_off;
};

/* capture_run - accept one client, read its request, answer 200 */
static void *
capture_run(void *arg)
{
	struct capture *c = arg;
	const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
			  "Connection: close\r\n\r\n";
	char *e, *cl;
	ssize_t k;
	int fd = accept(c->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	while (c->n < sizeof(c->req) - 1 &&
	    (k = read(fd, c->req + c->n, sizeof(c->req) - 1 - c->n)) > 0) {
		c->n += (size_t)k;
		c->req[c->n] = '\0';
		if ((e = strstr(c->req, "\r\n\r\n")) == NULL)
			continue;
		c->body_off = (size_t)(e + 4 - c->req);
		cl = strcasestr(c->req, "\r\nContent-Length:");
		if (cl == NULL ||
		    c->n >= c->body_off + strtoul(cl + 17, NULL, 10))
			break;
	}
	if (write(fd, ok, sizeof(ok) - 1) < 0)
		perror("write");
	close(fd);
	return NULL;
}

static void
test_curl_body(void **state)
{
	static struct capture c;
	static struct sink s;
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char dir[] = "/tmp/test_multipart.XXXXXX", path[256], cmd[1024];
	char ct[256], b[MULTIPART_BOUNDARY_MAX + 1], err[256], *h, *e;
	pthread_t t;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/data.bin", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("line one\r\n--not-a-boundary\r\n", f);
	fclose(f);
	c.lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(c.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(c.lfd, 4), 0);
	getsockname(c.lfd, (struct sockaddr *)&sin, &sl);
	assert_int_equal(pthread_create(&t, NULL, capture_run, &c), 0);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -o /dev/null -H 'Expect:' -F 'name=Jos\xc3\xa9' "
	    "-F 'empty=' -F 'file=@%s;type=application/x-test;"
	    "filename=rep\"ort.bin' http://127.0.0.1:%d/upload",
	    path, ntohs(sin.sin_port));
	assert_int_equal(system(cmd), 0);
	pthread_join(t, NULL);
	close(c.lfd);
	unlink(path);
	rmdir(dir);

	h = strcasestr(c.req, "\r\nContent-Type: ");
	assert_non_null(h);
	e = strstr(h + 2, "\r\n");
	snprintf(ct, sizeof(ct), "%.*s", (int)(e - h - 16), h + 16);
	assert_int_equal(
	    multipart_boundary(ct, b, sizeof(b), err, sizeof(err)), 0);
	s.n = 0;
	assert_int_equal(
	    multipart_parse((unsigned char *)c.req + c.body_off,
		c.n - c.body_off, b, 10, collect, &s, err, sizeof(err)),
	    0);
	assert_string_equal(s.buf,
	    "[name|-|-|Jos\xc3\xa9][empty|-|-|][file|rep%22ort.bin|"
	    "application/x-test|line one\r\n--not-a-boundary\r\n]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_rfc7578),
		cmocka_unit_test(test_lf_preamble_epilogue),
		cmocka_unit_test(test_filenames),
		cmocka_unit_test(test_boundary_in_data),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_curl_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
