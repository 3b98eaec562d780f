/*
 * multipart - a multipart/form-data reader (RFC 7578, RFC 2046 section
 * 5.1) over a request body already in memory.
 *
 * Parts are handed out one at a time; their data points into the body
 * (nothing is copied but the header values).  Lines of the part headers
 * may end in CRLF or a bare LF; a preamble before the first boundary and
 * an epilogue after the closing one are ignored.  The file name comes
 * from filename*= (RFC 5987, UTF-8 or US-ASCII, percent-decoded) when
 * present, else from filename= (a quoted string with backslash escapes).
 */
#ifndef HERALD_HTTP_MULTIPART_H
#define HERALD_HTTP_MULTIPART_H

#include <stddef.h>

/* the most bytes of the header block of one part */
#define MULTIPART_MAX_HEADER 8192
/* the longest boundary RFC 2046 allows */
#define MULTIPART_BOUNDARY_MAX 70

struct multipart_part {
	const char *name;	   /* form field name, NUL-terminated copy */
	const char *filename;	   /* or NULL */
	const char *content_type;  /* or NULL */
	const unsigned char *data; /* points into the body */
	size_t len;
};

/*
 * multipart_boundary - the boundary parameter of a Content-Type value
 * "multipart/form-data; boundary=..." (quoted or not; 1-70 characters
 * of RFC 2046's bchars) into buf, which must hold at least 71 bytes for
 * every boundary to fit.  Returns 0, or -1 with the reason in err.
 */
int multipart_boundary(const char *content_type, char *buf, size_t buflen,
    char *err, size_t errlen);

/*
 * multipart_cb - one part; the part and its strings are valid during the
 * call only.  A non-zero return stops the parse and is returned.
 */
typedef int multipart_cb(void *arg, const struct multipart_part *part);

/*
 * multipart_parse - split body[0..len) at boundary into at most
 * max_parts parts and call cb for each in order.  Returns 0, cb's
 * non-zero value, or -1 with err naming the byte offset of the problem
 * (no boundary, missing closing boundary, part headers over
 * MULTIPART_MAX_HEADER bytes, no Content-Disposition or name, too many
 * parts).  Parts before the problem were already handed to cb.
 */
int multipart_parse(const unsigned char *body, size_t len, const char *boundary,
    size_t max_parts, multipart_cb *cb, void *arg, char *err, size_t errlen);

#endif
