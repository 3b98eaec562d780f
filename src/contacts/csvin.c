/*
 * csvin.c - the streaming CSV/TSV reader of csvin.h, over libcsv.
 *
 * Design notes:
 *   1. Input first fills a 64 KiB prefix buffer (or all of it, if
 *      shorter).  The prefix decides the BOM, the delimiter and the
 *      initial encoding, so every decision depends on the bytes only,
 *      never on how they were chunked.
 *   2. libcsv is fed one physical line at a time (at most PIECE_MAX
 *      bytes per call).  Before a piece that starts a line, a parser in
 *      ROW_NOT_BEGUN means any record that starts in it starts on this
 *      line: that is how line numbers are kept.
 *   3. libcsv buffers a field until it ends.  After each piece, a field
 *      whose content already exceeds the field limit is marked and its
 *      buffer rewound, so memory stays near the limits.  The content
 *      only grows, so whole and chunked input mark the same fields.
 *   4. Fields of a record are copied raw into rec; at the end of the
 *      record they are checked against the limits, converted and handed
 *      out.  A record over a limit stops being copied.
 */
#include <csv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contacts/csvin.h"
#include "lib/util.h"

#define PREFIX_MAX (64 * 1024)
#define PIECE_MAX 4096

/* libcsv parser states (csv_parser.pstate), from libcsv.c */
#define LIBCSV_ROW_NOT_BEGUN 0
#define LIBCSV_FIELD_BEGUN 2
#define LIBCSV_FIELD_MIGHT_HAVE_ENDED 3

enum csvin_state {
	CSVIN_PREFIX,
	CSVIN_PARSE,
	CSVIN_STOPPED,
	CSVIN_FAILED,
	CSVIN_DONE
};

struct csvin {
	struct csvin_limits lim;
	csvin_row_cb *cb;
	void *arg;
	struct csv_parser p;
	enum csvin_state state;
	int delim;
	bool cp1252; /* read as Windows-1252 from now on */

	unsigned char *pre; /* the prefix, while state is CSVIN_PREFIX */
	size_t npre, pre_cap;

	unsigned long line; /* line of the next byte fed to libcsv */
	bool at_bol;
	unsigned long rec_line; /* line where the current record starts */
	unsigned long nrecords;

	/* the current record, raw: fields NUL-separated */
	char *rec;
	size_t rec_len, rec_cap, rec_bytes;
	size_t *offs, *lens;
	size_t nfields, fcap;
	const char *bad; /* why the record is skipped, or NULL */
	bool field_over; /* libcsv's current field went over the limit */
	bool oom;

	/* the converted record */
	char *out;
	size_t out_cap;
	const char **fv;
};

/* Windows-1252 0x80-0x9f; the five unassigned bytes map to C1 controls */
static const unsigned short cp1252_c1[32] = { 0x20ac, 0x0081, 0x201a, 0x0192,
	0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152,
	0x008d, 0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
	0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e,
	0x0178 };

/* utf8_valid - whether s[0..n) is all valid UTF-8 */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	int k;

	while (n > 0) {
		if ((k = utf8_seq(s, n)) <= 0)
			return false;
		s += k;
		n -= (size_t)k;
	}
	return true;
}

/* cp1252_len - bytes of s[0..n) once converted to UTF-8 */
static size_t
cp1252_len(const unsigned char *s, size_t n)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < 0x80)
			len += 1;
		else if (s[i] < 0xa0)
			len += cp1252_c1[s[i] - 0x80] < 0x800 ? 2 : 3;
		else
			len += 2;
	}
	return len;
}

/* cp1252_put - convert s[0..n) to UTF-8 at out; returns the end */
static char *
cp1252_put(char *out, const unsigned char *s, size_t n)
{
	unsigned int u;
	size_t i;

	for (i = 0; i < n; i++) {
		u = s[i] >= 0x80 && s[i] < 0xa0 ? cp1252_c1[s[i] - 0x80] : s[i];
		if (u < 0x80)
			*out++ = (char)u;
		else if (u < 0x800) {
			*out++ = (char)(0xc0 | u >> 6);
			*out++ = (char)(0x80 | (u & 0x3f));
		} else {
			*out++ = (char)(0xe0 | u >> 12);
			*out++ = (char)(0x80 | ((u >> 6) & 0x3f));
			*out++ = (char)(0x80 | (u & 0x3f));
		}
	}
	return out;
}

/* csvin_grow - make *bufp hold at least need elements of size sz */
static bool
csvin_grow(void **bufp, size_t *capp, size_t need, size_t sz)
{
	size_t cap = *capp ? *capp : 64;
	void *n;

	if (need <= *capp)
		return true;
	while (cap < need)
		cap *= 2;
	if ((n = realloc(*bufp, cap * sz)) == NULL)
		return false;
	*bufp = n;
	*capp = cap;
	return true;
}

/* csvin_grow_fields - room for one more field in offs, lens and fv */
static bool
csvin_grow_fields(struct csvin *r)
{
	size_t cap = r->fcap;

	if (r->nfields < cap)
		return true;
	if (!csvin_grow(
		(void **)&r->offs, &cap, r->nfields + 1, sizeof(*r->offs)))
		return false;
	cap = r->fcap;
	if (!csvin_grow(
		(void **)&r->lens, &cap, r->nfields + 1, sizeof(*r->lens)))
		return false;
	cap = r->fcap;
	if (!csvin_grow((void **)&r->fv, &cap, r->nfields + 1, sizeof(*r->fv)))
		return false;
	r->fcap = cap;
	return true;
}

/* csvin_set_bad - mark the current record skipped, keeping the first reason */
static void
csvin_set_bad(struct csvin *r, const char *why)
{
	if (r->bad == NULL)
		r->bad = why;
}

/* csvin_field_cb - libcsv's end of field: copy it into the record */
static void
csvin_field_cb(void *s, size_t len, void *data)
{
	struct csvin *r = data;
	bool over = r->field_over || len > r->lim.max_field_bytes;

	/* the same checks in the same order, rewound by csvin_parse or not */
	r->field_over = false;
	if (r->state != CSVIN_PARSE || r->oom || r->bad != NULL)
		return;
	if (r->nfields >= r->lim.max_fields)
		csvin_set_bad(r, "too many fields");
	else if (over)
		csvin_set_bad(r, "field too long");
	else if (r->rec_bytes + len > r->lim.max_record_bytes)
		csvin_set_bad(r, "record too long");
	if (r->bad != NULL)
		return;
	if (!csvin_grow_fields(r) ||
	    !csvin_grow(
		(void **)&r->rec, &r->rec_cap, r->rec_len + len + 1, 1)) {
		r->oom = true;
		return;
	}
	if (len > 0)
		memcpy(r->rec + r->rec_len, s, len);
	r->rec[r->rec_len + len] = '\0';
	r->offs[r->nfields] = r->rec_len;
	r->lens[r->nfields++] = len;
	r->rec_len += len + 1;
	r->rec_bytes += len;
}

/* csvin_convert - the record's fields as UTF-8 into fv/lens; false if over */
static bool
csvin_convert(struct csvin *r)
{
	const unsigned char *f;
	size_t i, total = 0, l;
	char *o;

	if (!r->cp1252) {
		for (i = 0; i < r->nfields; i++) {
			f = (const unsigned char *)r->rec + r->offs[i];
			if (!utf8_valid(f, r->lens[i])) {
				r->cp1252 = true;
				break;
			}
		}
	}
	if (!r->cp1252) {
		for (i = 0; i < r->nfields; i++)
			r->fv[i] = r->rec + r->offs[i];
		return true;
	}
	for (i = 0; i < r->nfields; i++) {
		l = cp1252_len(
		    (const unsigned char *)r->rec + r->offs[i], r->lens[i]);
		if (l > r->lim.max_field_bytes) {
			csvin_set_bad(r, "field too long");
			return false;
		}
		total += l + 1;
	}
	if (total - r->nfields > r->lim.max_record_bytes) {
		csvin_set_bad(r, "record too long");
		return false;
	}
	if (!csvin_grow((void **)&r->out, &r->out_cap, total, 1)) {
		r->oom = true;
		return false;
	}
	for (i = 0, o = r->out; i < r->nfields; i++) {
		f = (const unsigned char *)r->rec + r->offs[i];
		r->fv[i] = o;
		o = cp1252_put(o, f, r->lens[i]);
		r->lens[i] = (size_t)(o - r->fv[i]);
		*o++ = '\0';
	}
	return true;
}

/* csvin_row_end - libcsv's end of record: hand it to the callback */
static void
csvin_row_end(int c, void *data)
{
	struct csvin *r = data;
	struct csvin_row row;

	(void)c;
	if (r->state != CSVIN_PARSE || r->oom)
		return;
	memset(&row, 0, sizeof(row));
	row.line = r->rec_line;
	row.flags = r->nrecords++ == 0 ? CSVIN_ROW_HEADER : 0;
	if (r->bad == NULL && csvin_convert(r)) {
		row.fields = r->fv;
		row.lens = r->lens;
		row.nfields = r->nfields;
	}
	if (r->oom)
		return;
	if (r->bad != NULL) {
		row.flags |= CSVIN_ROW_SKIPPED;
		row.reason = r->bad;
	}
	r->rec_len = r->rec_bytes = r->nfields = 0;
	r->bad = NULL;
	if (r->cb(r->arg, &row) != 0)
		r->state = CSVIN_STOPPED;
}

/* csvin_is_space - blanks trimmed around a field, tab included */
static int
csvin_is_space(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* csvin_is_space_tsv - blanks trimmed around a field of a TSV file */
static int
csvin_is_space_tsv(unsigned char c)
{
	return c == ' ';
}

struct csvin *
csvin_new(
    const struct csvin_limits *lim, int delim, csvin_row_cb *cb, void *arg)
{
	struct csvin *r;

	if (delim != 0 && delim != ',' && delim != ';' && delim != '\t' &&
	    delim != '|')
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (lim != NULL)
		r->lim = *lim;
	if (r->lim.max_fields == 0)
		r->lim.max_fields = CSVIN_MAX_FIELDS;
	if (r->lim.max_field_bytes == 0)
		r->lim.max_field_bytes = CSVIN_MAX_FIELD_BYTES;
	if (r->lim.max_record_bytes == 0)
		r->lim.max_record_bytes = CSVIN_MAX_RECORD_BYTES;
	if (csv_init(&r->p, 0) != 0) {
		free(r);
		return NULL;
	}
	r->cb = cb;
	r->arg = arg;
	r->delim = delim;
	r->line = 1;
	r->at_bol = true;
	return r;
}

/* csvin_detect_delim - the delimiter seen most outside quotes on line 1 */
static int
csvin_detect_delim(const unsigned char *s, size_t n)
{
	size_t comma = 0, semi = 0, tab = 0, pipe = 0, i;
	bool quoted = false;

	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			quoted = !quoted;
		else if (quoted)
			continue;
		else if (s[i] == '\n' || s[i] == '\r')
			break;
		else if (s[i] == ',')
			comma++;
		else if (s[i] == ';')
			semi++;
		else if (s[i] == '\t')
			tab++;
		else if (s[i] == '|')
			pipe++;
	}
	if (semi > comma && semi >= tab && semi >= pipe)
		return ';';
	if (tab > comma && tab > semi && tab >= pipe)
		return '\t';
	if (pipe > comma && pipe > semi && pipe > tab)
		return '|';
	return ',';
}

/* csvin_prefix_invalid - whether the prefix holds invalid UTF-8 */
static bool
csvin_prefix_invalid(const unsigned char *s, size_t n, bool eof)
{
	int k;

	while (n > 0) {
		if ((k = utf8_seq(s, n)) == 0)
			return true;
		if (k < 0)
			return eof; /* cut by the end of the prefix */
		s += k;
		n -= (size_t)k;
	}
	return false;
}

/* csvin_fail - out of memory: say so and make the reader unusable */
static int
csvin_fail(struct csvin *r, char *err, size_t errlen)
{
	r->state = CSVIN_FAILED;
	snprintf(err, errlen, "line %lu: out of memory", r->line);
	return -1;
}

/* csvin_parse - feed bytes to libcsv a line at a time (note 2, 3) */
static int
csvin_parse(
    struct csvin *r, const unsigned char *s, size_t n, char *err, size_t errlen)
{
	const unsigned char *nl;
	size_t k;

	while (n > 0 && r->state == CSVIN_PARSE) {
		k = n < PIECE_MAX ? n : PIECE_MAX;
		if ((nl = memchr(s, '\n', k)) != NULL)
			k = (size_t)(nl - s) + 1;
		if (r->at_bol && r->p.pstate == LIBCSV_ROW_NOT_BEGUN)
			r->rec_line = r->line;
		if (csv_parse(&r->p, s, k, csvin_field_cb, csvin_row_end, r) !=
			k ||
		    r->oom)
			return csvin_fail(r, err, errlen);
		if ((r->p.pstate == LIBCSV_FIELD_BEGUN ||
			r->p.pstate == LIBCSV_FIELD_MIGHT_HAVE_ENDED) &&
		    r->p.entry_pos > r->p.spaces &&
		    r->p.entry_pos - r->p.spaces > r->lim.max_field_bytes) {
			r->field_over = true;
			r->p.entry_pos = r->p.spaces;
		}
		r->at_bol = nl != NULL;
		if (nl != NULL)
			r->line++;
		s += k;
		n -= k;
	}
	return r->state == CSVIN_STOPPED ? 1 : 0;
}

/* csvin_start - decide BOM, delimiter and encoding, parse the prefix */
static int
csvin_start(struct csvin *r, bool eof, char *err, size_t errlen)
{
	const unsigned char *s = r->pre;
	size_t n = r->npre;
	int rc;

	if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		n -= 3;
	}
	if (r->delim == 0)
		r->delim = csvin_detect_delim(s, n);
	csv_set_delim(&r->p, (unsigned char)r->delim);
	csv_set_space_func(
	    &r->p, r->delim == '\t' ? csvin_is_space_tsv : csvin_is_space);
	r->cp1252 = csvin_prefix_invalid(s, n, eof);
	r->state = CSVIN_PARSE;
	rc = csvin_parse(r, s, n, err, errlen);
	free(r->pre);
	r->pre = NULL;
	return rc;
}

int
csvin_feed(
    struct csvin *r, const void *data, size_t len, char *err, size_t errlen)
{
	const unsigned char *s = data;
	size_t k;
	int rc;

	if (r->state == CSVIN_PREFIX) {
		k = PREFIX_MAX - r->npre < len ? PREFIX_MAX - r->npre : len;
		if (k > 0 &&
		    !csvin_grow((void **)&r->pre, &r->pre_cap, r->npre + k, 1))
			return csvin_fail(r, err, errlen);
		if (k > 0)
			memcpy(r->pre + r->npre, s, k);
		r->npre += k;
		s += k;
		len -= k;
		if (r->npre < PREFIX_MAX)
			return 0;
		if ((rc = csvin_start(r, false, err, errlen)) != 0)
			return rc;
	}
	switch (r->state) {
	case CSVIN_PARSE:
		return csvin_parse(r, s, len, err, errlen);
	case CSVIN_STOPPED:
		return 1;
	default:
		snprintf(err, errlen, "line %lu: reader %s", r->line,
		    r->state == CSVIN_DONE ? "already finished" : "failed");
		return -1;
	}
}

int
csvin_finish(struct csvin *r, char *err, size_t errlen)
{
	bool open_quote;
	int rc;

	if (r->state == CSVIN_PREFIX &&
	    (rc = csvin_start(r, true, err, errlen)) != 0)
		return rc;
	if (r->state != CSVIN_PARSE)
		return csvin_feed(r, "", 0, err, errlen);
	open_quote = r->p.pstate == LIBCSV_FIELD_BEGUN && r->p.quoted;
	if (open_quote)
		r->bad = "unterminated quoted field";
	if (csv_fini(&r->p, csvin_field_cb, csvin_row_end, r) != 0 || r->oom)
		return csvin_fail(r, err, errlen);
	if (r->state == CSVIN_STOPPED && !open_quote)
		return 1;
	r->state = CSVIN_DONE;
	if (open_quote) {
		snprintf(err, errlen, "line %lu: unterminated quoted field",
		    r->rec_line);
		return -1;
	}
	return 0;
}

int
csvin_delim(const struct csvin *r)
{
	return r->state == CSVIN_PREFIX ? 0 : r->delim;
}

void
csvin_free(struct csvin **rp)
{
	struct csvin *r = *rp;

	if (r == NULL)
		return;
	csv_free(&r->p);
	free(r->pre);
	free(r->rec);
	free(r->offs);
	free(r->lens);
	free(r->out);
	free(r->fv);
	free(r);
	*rp = NULL;
}

/* csvin_header_is - whether header h, trimmed, is one of names */
static bool
csvin_header_is(const char *h, const char *const *names)
{
	size_t n;

	if (h == NULL)
		return false;
	while (*h == ' ' || *h == '\t')
		h++;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	for (; *names != NULL; names++)
		if (strlen(*names) == n && strncasecmp(h, *names, n) == 0)
			return true;
	return false;
}

/* csvin_find - the first column of header named one of names, or -1 */
static long
csvin_find(const char *const *header, size_t n, const char *const *names)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (csvin_header_is(header[i], names))
			return (long)i;
	return -1;
}

int
csvin_map_guess(const char *const *header, size_t n, struct csvin_map *out)
{
	static const char *const email[] = { "email", "e-mail", "email address",
		"e-mail address", "e-mail 1 - value", "primary email", "mail",
		"email 1", NULL };
	static const char *const first[] = { "first name", "given name",
		"first", "firstname", "first_name", NULL };
	static const char *const last[] = { "last name", "family name", "last",
		"lastname", "last_name", "surname", NULL };
	static const char *const full[] = { "display name", "name", "full name",
		"fullname", "formatted name", NULL };

	out->email = csvin_find(header, n, email);
	out->first_name = csvin_find(header, n, first);
	out->last_name = csvin_find(header, n, last);
	out->full_name = csvin_find(header, n, full);
	return out->email >= 0 ? 0 : -1;
}
