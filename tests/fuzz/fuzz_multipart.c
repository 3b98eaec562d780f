/*
 * fuzz_multipart - the multipart/form-data reader of http/multipart.c on
 * arbitrary bytes.
 *
 * The input is "content-type LF body": the first line goes through
 * multipart_boundary (as a Content-Type value), and the body is parsed
 * with that boundary, or with "B" when the line has none.  The first
 * byte of the line also picks max_parts (0-7) and whether the callback
 * stops at the second part.
 *
 * What must hold:
 *   1. a boundary found is 1-70 characters;
 *   2. every part lies inside the body, in order and without overlap,
 *      has a name, and no more than max_parts parts are handed out;
 *   3. the result is 0, the callback's value, or -1 with an error that
 *      names an offset no further than the end of the body;
 *   4. no crash, hang or leak (run it under ASan/LSan).
 *
 * See fuzz_main.c for how to run it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/multipart.h"

const char *const fuzz_seeds[] = {
	"multipart/form-data; boundary=AaB03x\n"
	"--AaB03x\r\nContent-Disposition: form-data; name=\"submit-name\"\r\n"
	"\r\nLarry\r\n--AaB03x\r\nContent-Disposition: form-data; "
	"name=\"files\"; filename=\"file1.txt\"\r\nContent-Type: text/plain"
	"\r\n\r\n... contents of file1.txt ...\r\n--AaB03x--\r\n",
	"multipart/form-data; boundary=\"a b\"\n"
	"preamble\n--a b\nContent-Disposition: form-data; name=x; "
	"filename=\"q\\\"uote\"; filename*=UTF-8''%e2%82%ac.txt\n\nv\n--a "
	"b--\nepilogue",
	"multipart/form-data; boundary=B\n"
	"--B\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--B\r\n"
	"Content-Disposition: form-data;\r\n name=\"f\"\r\n\r\nx--B\r\n--Bx\r\n"
	"--B--",
	"\x05multipart/mixed; boundary=B\n"
	"--B\nContent-Type: text/plain\n\nno disposition\n--B--\n",
	"multipart/form-data; boundary=B\n--B\r\nContent-Disposition: "
	"form-data; name=\"unterminated\r\n\r\ndata",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

struct check {
	const unsigned char *body;
	size_t len, max_parts, nparts;
	const unsigned char *last_end;
	int stop_at_second;
};

/* on_part - check one part */
static int
on_part(void *arg, const struct multipart_part *p)
{
	struct check *c = arg;

	CHECK(p->name != NULL);
	(void)strlen(p->name);
	if (p->filename != NULL)
		(void)strlen(p->filename);
	if (p->content_type != NULL)
		(void)strlen(p->content_type);
	CHECK(p->data >= c->body && p->data + p->len <= c->body + c->len);
	CHECK(p->data >= c->last_end);
	c->last_end = p->data + p->len;
	c->nparts++;
	CHECK(c->nparts <= c->max_parts);
	if (c->stop_at_second && c->nparts == 2)
		return 7;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char ct[512], boundary[MULTIPART_BOUNDARY_MAX + 1], err[256];
	struct check c;
	size_t ctlen;
	unsigned long off;
	int rc;

	if (size < 1 || nl == NULL)
		return 0;
	ctlen = (size_t)(nl - data);
	if (ctlen >= sizeof(ct))
		ctlen = sizeof(ct) - 1;
	memcpy(ct, data, ctlen);
	ct[ctlen] = '\0';
	if (multipart_boundary(
		ct, boundary, sizeof(boundary), err, sizeof(err)) == 0)
		CHECK(strlen(boundary) >= 1 &&
		    strlen(boundary) <= MULTIPART_BOUNDARY_MAX);
	else
		strcpy(boundary, "B");

	memset(&c, 0, sizeof(c));
	c.len = size - (size_t)(nl + 1 - data);
	/* a copy of its own, so that ASan sees any read past the end */
	c.body = malloc(c.len ? c.len : 1);
	CHECK(c.body != NULL);
	memcpy((void *)c.body, nl + 1, c.len);
	c.last_end = c.body;
	c.max_parts = data[0] < 8 ? data[0] : 1000;
	c.stop_at_second = (data[0] & 0x10) != 0;
	rc = multipart_parse(c.body, c.len, boundary, c.max_parts, on_part, &c,
	    err, sizeof(err));
	CHECK(rc == 0 || rc == -1 || rc == 7);
	if (rc == -1) {
		CHECK(sscanf(err, "offset %lu:", &off) == 1);
		CHECK(off <= c.len);
	}
	free((void *)c.body);
	return 0;
}
