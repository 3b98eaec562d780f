/*
 * multipart.c - the multipart/form-data reader of multipart.h.
 *
 * The body is walked once: find the first delimiter ("--" boundary at
 * the start of the body or after a line end), then for each part read
 * the header lines (CRLF or LF, at most MULTIPART_MAX_HEADER bytes), and
 * find the next delimiter with memmem on "\n--boundary".  A candidate
 * counts only when followed by "--" (the close delimiter) or by optional
 * blanks and a line end; any other is data.  The CR before the LF of a
 * delimiter belongs to the delimiter, not to the data.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/multipart.h"
#include "lib/buf.h"
#include "lib/util.h"

/* RFC 2046 bchars, less the space (allowed but not last) */
#define BCHARS                                                                 \
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"       \
	"'()+_,-./:=?"

/* One part's headers as read. */
struct part_hdr {
	struct buf cd; /* Content-Disposition */
	struct buf ct; /* Content-Type */
	int cur;       /* header a continuation line adds to: 0, 1 cd, 2 ct */
	bool have_cd;
	char *name, *filename, *filename_star, *content_type;
};

static void
part_hdr_free(struct part_hdr *h)
{
	buf_free(&h->cd);
	buf_free(&h->ct);
	free(h->name);
	free(h->filename);
	free(h->filename_star);
	free(h->content_type);
	memset(h, 0, sizeof(*h));
}

/* skip_ws - s past blanks */
static const char *
skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * param_value - read a token or quoted string at *sp (backslash escapes
 * undone) into a new string and advance *sp; NULL if malformed.
 */
static char *
param_value(const char **sp)
{
	const char *s = *sp;
	struct buf b = BUF_INIT;

	if (*s == '"') {
		for (s++; *s != '"'; s++) {
			if (*s == '\0') {
				buf_free(&b);
				return NULL;
			}
			if (*s == '\\' && s[1] != '\0')
				s++;
			buf_append(&b, s, 1);
		}
		s++;
	} else {
		while (*s != '\0' && *s != ';' && *s != ' ' && *s != '\t')
			buf_append(&b, s++, 1);
	}
	*sp = s;
	buf_reserve(&b, 1);
	b.data[b.len] = '\0';
	return b.data;
}

/*
 * ext_value - decode an RFC 5987 ext-value (charset'lang'pct-encoded)
 * of charset UTF-8 or US-ASCII; a new string, or NULL if malformed, of
 * another charset, or holding a NUL.
 */
static char *
ext_value(const char *v)
{
	const char *q1 = strchr(v, '\''), *q2, *s;
	struct buf b = BUF_INIT;
	int hi, lo;
	char c;

	if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL)
		return NULL;
	if (!((q1 - v == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
		(q1 - v == 8 && strncasecmp(v, "us-ascii", 8) == 0)))
		return NULL;
	for (s = q2 + 1; *s != '\0'; s++) {
		c = *s;
		if (c == '%') {
			if ((hi = hex_digit(s[1])) < 0 ||
			    (lo = hex_digit(s[2])) < 0 || (hi | lo) == 0) {
				buf_free(&b);
				return NULL;
			}
			c = (char)(hi << 4 | lo);
			s += 2;
		}
		buf_append(&b, &c, 1);
	}
	buf_reserve(&b, 1);
	b.data[b.len] = '\0';
	return b.data;
}

/*
 * disposition - parse Content-Disposition: form-data; name=...;
 * filename=...; filename*=...  into h; 0 or -1 with the reason.
 */
static int
disposition(struct part_hdr *h, const char **why)
{
	const char *s = skip_ws(h->cd.data ? h->cd.data : "");
	const char *key;
	size_t klen;
	char *v;

	if (strncasecmp(s, "form-data", 9) != 0 ||
	    (s[9] != '\0' && s[9] != ';' && s[9] != ' ' && s[9] != '\t')) {
		*why = "Content-Disposition is not form-data";
		return -1;
	}
	s += 9;
	for (;;) {
		s = skip_ws(s);
		if (*s == '\0')
			break;
		if (*s++ != ';') {
			*why = "malformed Content-Disposition";
			return -1;
		}
		s = skip_ws(s);
		key = s;
		while (*s != '\0' && *s != '=' && *s != ';' && *s != ' ' &&
		    *s != '\t')
			s++;
		klen = (size_t)(s - key);
		s = skip_ws(s);
		if (*s != '=')
			continue; /* a parameter without value: ignore */
		s = skip_ws(s + 1);
		if ((v = param_value(&s)) == NULL) {
			*why =
			    "unterminated quoted string in Content-Disposition";
			return -1;
		}
		if (klen == 4 && strncasecmp(key, "name", 4) == 0 &&
		    h->name == NULL)
			h->name = v;
		else if (klen == 8 && strncasecmp(key, "filename", 8) == 0 &&
		    h->filename == NULL)
			h->filename = v;
		else if (klen == 9 && strncasecmp(key, "filename*", 9) == 0 &&
		    h->filename_star == NULL)
			h->filename_star = v;
		else
			free(v);
	}
	if (h->name == NULL) {
		*why = "no name in Content-Disposition";
		return -1;
	}
	return 0;
}

/* header_line - take one header line (no line end) into h */
static void
header_line(struct part_hdr *h, const char *line, size_t n)
{
	const char *colon;
	size_t nlen;

	if (n > 0 && (line[0] == ' ' || line[0] == '\t')) {
		/* obsolete folding: continues the previous header */
		if (h->cur == 1)
			buf_append(&h->cd, line, n);
		else if (h->cur == 2)
			buf_append(&h->ct, line, n);
		return;
	}
	h->cur = 0;
	if ((colon = memchr(line, ':', n)) == NULL)
		return;
	nlen = (size_t)(colon - line);
	while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
		nlen--;
	n -= (size_t)(colon + 1 - line);
	if (nlen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0 &&
	    !h->have_cd) {
		h->cur = 1;
		h->have_cd = true;
		buf_append(&h->cd, colon + 1, n);
	} else if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0 &&
	    h->ct.len == 0) {
		h->cur = 2;
		buf_append(&h->ct, colon + 1, n);
	}
}

/*
 * read_headers - the header block at body[*pos..): fill h and move *pos
 * past the empty line; 0 or -1 with *why (and *pos at the problem).
 */
static int
read_headers(const unsigned char *body, size_t len, size_t *pos,
    struct part_hdr *h, const char **why)
{
	size_t p = *pos, avail, used, n;
	const unsigned char *nl;
	char *line;

	for (;;) {
		used = p - *pos;
		avail = len - p;
		if (avail > MULTIPART_MAX_HEADER - used)
			avail = MULTIPART_MAX_HEADER - used;
		nl = avail > 0 ? memchr(body + p, '\n', avail) : NULL;
		if (nl == NULL) {
			*why = len - p > avail ? "part headers too long"
					       : "unterminated part headers";
			*pos = p;
			return -1;
		}
		n = (size_t)(nl - (body + p));
		line = (char *)body + p;
		p += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n == 0)
			break;
		if (memchr(line, '\0', n) != NULL) {
			*why = "NUL in part headers";
			*pos = p - n - 1;
			return -1;
		}
		header_line(h, line, n);
	}
	*pos = p;
	if (!h->have_cd) {
		*why = "part without Content-Disposition";
		return -1;
	}
	buf_reserve(&h->cd, 1);
	h->cd.data[h->cd.len] = '\0';
	if (h->ct.len > 0) {
		buf_reserve(&h->ct, 1);
		h->ct.data[h->ct.len] = '\0';
		h->content_type = xstrdup(str_trim(h->ct.data));
	}
	return disposition(h, why);
}

/*
 * delim_end - whether a delimiter "--boundary" ends at body[k]: returns
 * 1 for a close delimiter ("--" follows), 0 for a plain one (blanks and
 * a line end follow; *next is after the line end), -1 for neither.
 */
static int
delim_end(const unsigned char *body, size_t len, size_t k, size_t *next)
{
	if (k + 2 <= len && body[k] == '-' && body[k + 1] == '-')
		return 1;
	while (k < len && (body[k] == ' ' || body[k] == '\t'))
		k++;
	if (k < len && body[k] == '\n') {
		*next = k + 1;
		return 0;
	}
	if (k + 1 < len && body[k] == '\r' && body[k + 1] == '\n') {
		*next = k + 2;
		return 0;
	}
	return -1;
}

/*
 * find_delim - the next delimiter at or after from: *start is where the
 * data before it ends (before CR LF), *next after its line; returns as
 * delim_end, or -2 when there is none.
 */
static int
find_delim(const unsigned char *body, size_t len, size_t from,
    const char *needle, size_t nlen, size_t *start, size_t *next)
{
	const unsigned char *p;
	size_t i;
	int rc;

	while (from < len) {
		p = memmem(body + from, len - from, needle, nlen);
		if (p == NULL)
			return -2;
		i = (size_t)(p - body);
		rc = delim_end(body, len, i + nlen, next);
		if (rc >= 0) {
			*start = i > from && body[i - 1] == '\r' ? i - 1 : i;
			return rc;
		}
		from = i + 1;
	}
	return -2;
}

int
multipart_boundary(const char *content_type, char *buf, size_t buflen,
    char *err, size_t errlen)
{
	const char *s = content_type, *key;
	size_t klen, n;
	char *v;

	if (s == NULL || !str_casestarts(skip_ws(s), "multipart/")) {
		snprintf(err, errlen, "not a multipart Content-Type");
		return -1;
	}
	while ((s = strchr(s, ';')) != NULL) {
		key = s = skip_ws(s + 1);
		while (*s != '\0' && *s != '=' && *s != ';')
			s++;
		klen = (size_t)(s - key);
		while (
		    klen > 0 && (key[klen - 1] == ' ' || key[klen - 1] == '\t'))
			klen--;
		if (*s != '=' || klen != 8 ||
		    strncasecmp(key, "boundary", 8) != 0)
			continue;
		s = skip_ws(s + 1);
		if ((v = param_value(&s)) == NULL) {
			snprintf(err, errlen, "unterminated quoted boundary");
			return -1;
		}
		n = strlen(v);
		if (n < 1 || n > MULTIPART_BOUNDARY_MAX || v[n - 1] == ' ' ||
		    strspn(v, BCHARS " ") != n) {
			snprintf(err, errlen,
			    "malformed boundary (1-70 characters of RFC 2046)");
			free(v);
			return -1;
		}
		if (n >= buflen) {
			snprintf(
			    err, errlen, "boundary longer than the buffer");
			free(v);
			return -1;
		}
		memcpy(buf, v, n + 1);
		free(v);
		return 0;
	}
	snprintf(err, errlen, "no boundary parameter");
	return -1;
}

int
multipart_parse(const unsigned char *body, size_t len, const char *boundary,
    size_t max_parts, multipart_cb *cb, void *arg, char *err, size_t errlen)
{
	char needle[3 + MULTIPART_BOUNDARY_MAX + 1];
	size_t blen = boundary ? strlen(boundary) : 0, pos, start, next = 0;
	size_t nparts = 0;
	struct multipart_part part;
	struct part_hdr h;
	const char *why;
	int rc;

	if (blen < 1 || blen > MULTIPART_BOUNDARY_MAX) {
		snprintf(err, errlen, "bad boundary length %zu", blen);
		return -1;
	}
	snprintf(needle, sizeof(needle), "\n--%s", boundary);
	/* the first delimiter may open the body, without a line end */
	if (len >= blen + 2 && memcmp(body, needle + 1, blen + 2) == 0 &&
	    (rc = delim_end(body, len, blen + 2, &next)) >= 0)
		;
	else if ((rc = find_delim(
		      body, len, 0, needle, blen + 3, &start, &next)) == -2) {
		snprintf(err, errlen, "offset 0: no boundary in the body");
		return -1;
	}
	memset(&h, 0, sizeof(h));
	while (rc == 0) {
		pos = next;
		if (nparts == max_parts) {
			snprintf(err, errlen, "offset %zu: more than %zu parts",
			    pos, max_parts);
			return -1;
		}
		if (read_headers(body, len, &pos, &h, &why) < 0) {
			snprintf(err, errlen, "offset %zu: %s", pos, why);
			part_hdr_free(&h);
			return -1;
		}
		rc = find_delim(body, len, pos > 0 ? pos - 1 : 0, needle,
		    blen + 3, &start, &next);
		if (rc == -2) {
			snprintf(err, errlen,
			    "offset %zu: missing closing boundary", len);
			part_hdr_free(&h);
			return -1;
		}
		if (start < pos) /* the delimiter follows the empty line */
			start = pos;
		part.name = h.name;
		part.filename = h.filename;
		if (h.filename_star != NULL) {
			char *fn = ext_value(h.filename_star);
			if (fn != NULL) {
				free(h.filename);
				part.filename = h.filename = fn;
			}
		}
		part.content_type = h.content_type;
		part.data = body + pos;
		part.len = start - pos;
		nparts++;
		if (cb != NULL) {
			int crc = cb(arg, &part);
			if (crc != 0) {
				part_hdr_free(&h);
				return crc;
			}
		}
		part_hdr_free(&h);
	}
	return 0;
}
