/*
 * jsonl.c - the streaming JSON Lines reader of jsonl.h.
 *
 * Design notes:
 *   1. Bytes are copied into the line buffer up to the next LF.  When a
 *      line grows past line_max its error row goes out at once and the
 *      rest of it is dropped as it comes (skipping), so the buffer never
 *      holds more than line_max bytes and chunking changes nothing.
 *   2. A complete line is checked for UTF-8 as a whole, then parsed by a
 *      small recursive-descent parser of RFC 8259 written for the job,
 *      not by a general library: it keeps a number's original text
 *      (integers of any size stay exact, 0.1 stays "0.1"), flattens the
 *      one level of custom fields and reports the column.
 *   3. Decoded strings go into the arena, sized before parsing at twice
 *      the line plus a little: no output is longer than its input text,
 *      plus one NUL per value, so pointers into it stay put.
 *   4. A syntax error ends the parse; an unsupported value (array,
 *      nested object, too many keys) is remembered and parsing goes on,
 *      so that a broken line always reports its syntax error first.
 *   5. Duplicate keys are found through a small open-addressing table
 *      of at most 2 * (keys_max + 1) slots; only the used slots are
 *      cleared after a line.  Entries stop being stored after keys_max,
 *      so the work per line is linear.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts/jsonl.h"
#include "lib/util.h"

#define DEPTH_MAX 64
#define KEY_SHOWN 64 /* bytes of a key quoted in an error */

enum jsonl_state { JSONL_READ, JSONL_STOPPED, JSONL_FAILED, JSONL_DONE };

/* one key/value of the line; val NULL for a null */
struct jsonl_ent {
	const char *key;
	const char *val;
	unsigned level; /* 0: the line's object, 1: flattened */
	size_t slot;	/* its slot in the duplicate table */
};

struct jsonl {
	struct jsonl_limits lim;
	jsonl_cb *cb;
	void *arg;
	enum jsonl_state state;
	int stop_rc;

	unsigned long line; /* line of the bytes being buffered */
	bool skipping;	    /* the current line went over line_max */
	char *buf;
	size_t len, cap;

	char *arena; /* decoded strings of the line being parsed */
	size_t alen, acap;
	struct jsonl_ent *ents;
	size_t nents;
	uint32_t *slots; /* entry index + 1, 0 when free */
	size_t nslots;
	const char **keys, **vals;

	char msg[256]; /* the error of the current row */
};

/* the parse of one line */
struct jp {
	struct jsonl *r;
	const unsigned char *s;
	size_t n, i;
	bool broken;	  /* a syntax error: r->msg says which */
	bool unsupported; /* r->msg says why; parsing goes on */
	bool full;	  /* entries stopped being stored */
};

static const char *const flatten_keys[] = { "attribs", "fields",
	"custom_fields", "attributes" };

/* column - the 1-based character column of byte offset i of s */
static unsigned long
column(const unsigned char *s, size_t i)
{
	unsigned long col = 1;
	size_t k;

	for (k = 0; k < i; k++)
		col += (s[k] & 0xc0) != 0x80;
	return col;
}

/* jp_fail - a syntax error at the current position; always false */
static bool
jp_fail(struct jp *p, const char *what)
{
	if (!p->broken)
		snprintf(p->r->msg, sizeof(p->r->msg),
		    "line %lu, column %lu: %s", p->r->line, column(p->s, p->i),
		    what);
	p->broken = true;
	return false;
}

/* shown_len - bytes of key to quote: at most KEY_SHOWN, whole characters */
static int
shown_len(const char *key)
{
	size_t n = strlen(key), k = 0;
	int l;

	while (k < n && k < KEY_SHOWN) {
		l = utf8_seq((const unsigned char *)key + k, n - k);
		if (l <= 0 || k + (size_t)l > KEY_SHOWN)
			break;
		k += (size_t)l;
	}
	return (int)k;
}

/* jp_unsupported - remember the first unsupported value of the line */
static void
jp_unsupported(struct jp *p, const char *key, const char *what)
{
	if (p->unsupported)
		return;
	p->unsupported = true;
	if (key == NULL)
		snprintf(p->r->msg, sizeof(p->r->msg), "line %lu: %s",
		    p->r->line, what);
	else
		snprintf(p->r->msg, sizeof(p->r->msg),
		    "line %lu: key \"%.*s%s\": %s", p->r->line, shown_len(key),
		    key, strlen(key) > (size_t)shown_len(key) ? "..." : "",
		    what);
}

/* jp_ws - skip JSON white space */
static void
jp_ws(struct jp *p)
{
	while (p->i < p->n &&
	    (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' ||
		p->s[p->i] == '\n'))
		p->i++;
}

/* jp_put - append n bytes to the arena (room is there by note 3) */
static void
jp_put(struct jp *p, const void *b, size_t n)
{
	if (p->r->alen + n > p->r->acap)
		abort(); /* note 3 broken */
	memcpy(p->r->arena + p->r->alen, b, n);
	p->r->alen += n;
}

/* jp_hex4 - the 4 hex digits at s[i..]; -1 if not hex */
static long
jp_hex4(const struct jp *p, size_t i)
{
	long v = 0;
	size_t k;
	unsigned char c;

	if (p->n - i < 4)
		return -1;
	for (k = 0; k < 4; k++) {
		c = p->s[i + k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* jp_put_utf8 - append code point u as UTF-8 */
static void
jp_put_utf8(struct jp *p, unsigned long u)
{
	unsigned char b[4];
	size_t n;

	if (u < 0x80) {
		b[0] = (unsigned char)u;
		n = 1;
	} else if (u < 0x800) {
		b[0] = (unsigned char)(0xc0 | u >> 6);
		b[1] = (unsigned char)(0x80 | (u & 0x3f));
		n = 2;
	} else if (u < 0x10000) {
		b[0] = (unsigned char)(0xe0 | u >> 12);
		b[1] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (u & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | u >> 18);
		b[1] = (unsigned char)(0x80 | ((u >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((u >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (u & 0x3f));
		n = 4;
	}
	jp_put(p, b, n);
}

/* jp_escape - decode the escape at s[i] == '\\'; false on a syntax error */
static bool
jp_escape(struct jp *p)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e;
	long u, lo;

	if (p->i + 1 >= p->n)
		return jp_fail(p, "unterminated string");
	if (p->s[p->i + 1] != 'u') {
		if (p->s[p->i + 1] == '\0' ||
		    (e = strchr(from, p->s[p->i + 1])) == NULL)
			return jp_fail(p, "invalid escape in a string");
		jp_put(p, &to[e - from], 1);
		p->i += 2;
		return true;
	}
	if ((u = jp_hex4(p, p->i + 2)) < 0)
		return jp_fail(p, "invalid \\u escape");
	if (u == 0)
		return jp_fail(p, "\\u0000 is not supported");
	if (u >= 0xdc00 && u <= 0xdfff)
		return jp_fail(p, "invalid \\u escape: lone low surrogate");
	if (u >= 0xd800 && u <= 0xdbff) {
		if (p->n - p->i < 12 || p->s[p->i + 6] != '\\' ||
		    p->s[p->i + 7] != 'u' ||
		    (lo = jp_hex4(p, p->i + 8)) < 0xdc00 || lo > 0xdfff)
			return jp_fail(
			    p, "invalid \\u escape: lone high surrogate");
		u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
		p->i += 6;
	}
	jp_put_utf8(p, (unsigned long)u);
	p->i += 6;
	return true;
}

/* jp_string - the string at s[i] == '"', decoded into the arena */
static bool
jp_string(struct jp *p, const char **out)
{
	size_t start;

	*out = p->r->arena + p->r->alen;
	p->i++;
	for (;;) {
		start = p->i;
		while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
		    p->s[p->i] >= 0x20)
			p->i++;
		jp_put(p, p->s + start, p->i - start);
		if (p->i >= p->n)
			return jp_fail(p, "unterminated string");
		if (p->s[p->i] == '"')
			break;
		if (p->s[p->i] < 0x20)
			return jp_fail(p, "control character in a string");
		if (!jp_escape(p))
			return false;
	}
	p->i++;
	jp_put(p, "", 1);
	return true;
}

/* jp_digits - skip one or more digits; false if there is none */
static bool
jp_digits(struct jp *p)
{
	size_t start = p->i;

	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
		p->i++;
	return p->i > start;
}

/* jp_number - the number at s[i], its text copied into the arena */
static bool
jp_number(struct jp *p, const char **out)
{
	size_t start = p->i;

	if (p->s[p->i] == '-')
		p->i++;
	if (p->i < p->n && p->s[p->i] == '0')
		p->i++;
	else if (!jp_digits(p))
		return jp_fail(p, "invalid number");
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (!jp_digits(p))
			return jp_fail(p, "invalid number");
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (!jp_digits(p))
			return jp_fail(p, "invalid number");
	}
	*out = p->r->arena + p->r->alen;
	jp_put(p, p->s + start, p->i - start);
	jp_put(p, "", 1);
	return true;
}

/* jp_word - the literal w at s[i]; its text into *out if out */
static bool
jp_word(struct jp *p, const char *w, const char **out)
{
	size_t n = strlen(w);

	if (p->n - p->i < n || memcmp(p->s + p->i, w, n) != 0)
		return jp_fail(p, "invalid value");
	p->i += n;
	if (out != NULL) {
		*out = p->r->arena + p->r->alen;
		jp_put(p, w, n + 1);
	}
	return true;
}

static bool jp_members(struct jp *p, unsigned level, unsigned depth);

/*
 * jp_scalar - a string, number, true or false at s[i] into *out, or a
 * null (*out NULL).  Returns 1 when it was one, 0 when the value is an
 * array or object (not consumed), -1 on a syntax error.
 */
static int
jp_scalar(struct jp *p, const char **out)
{
	unsigned char c = p->s[p->i];

	*out = NULL;
	if (c == '"')
		return jp_string(p, out) ? 1 : -1;
	if (c == '-' || (c >= '0' && c <= '9'))
		return jp_number(p, out) ? 1 : -1;
	if (c == 't')
		return jp_word(p, "true", out) ? 1 : -1;
	if (c == 'f')
		return jp_word(p, "false", out) ? 1 : -1;
	if (c == 'n')
		return jp_word(p, "null", NULL) ? 1 : -1;
	if (c == '[' || c == '{')
		return 0;
	jp_fail(p, "invalid value");
	return -1;
}

/* jp_skip - check the value at s[i] (after white space) and drop it */
static bool
jp_skip(struct jp *p, unsigned depth)
{
	const char *v;
	size_t mark = p->r->alen;
	int rc;

	jp_ws(p);
	if (p->i >= p->n)
		return jp_fail(p, "value expected");
	if (depth >= DEPTH_MAX)
		return jp_fail(p, "nested too deep");
	rc = jp_scalar(p, &v);
	p->r->alen = mark;
	if (rc != 0)
		return rc > 0;
	if (p->s[p->i] == '{')
		return jp_members(p, 2, depth + 1);
	p->i++; /* '[' */
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == ']') {
		p->i++;
		return true;
	}
	for (;;) {
		if (!jp_skip(p, depth + 1))
			return false;
		jp_ws(p);
		if (p->i < p->n && p->s[p->i] == ']') {
			p->i++;
			return true;
		}
		if (p->i >= p->n || p->s[p->i] != ',')
			return jp_fail(p, "expected ',' or ']'");
		p->i++;
	}
}

/* key_hash - FNV-1a of key, with the level mixed in */
static size_t
key_hash(const char *key, unsigned level)
{
	uint64_t h = 14695981039346656037ULL ^ level;

	while (*key != '\0') {
		h ^= (unsigned char)*key++;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

/* jp_add - store key = val at level; the last of duplicates wins */
static void
jp_add(struct jp *p, const char *key, const char *val, unsigned level)
{
	struct jsonl *r = p->r;
	struct jsonl_ent *e;
	size_t s = key_hash(key, level) & (r->nslots - 1);

	if (p->full)
		return;
	while (r->slots[s] != 0) {
		e = &r->ents[r->slots[s] - 1];
		if (e->level == level && strcmp(e->key, key) == 0) {
			e->val = val;
			return;
		}
		s = (s + 1) & (r->nslots - 1);
	}
	if (r->nents >= r->lim.keys_max) {
		p->full = true;
		if (!p->unsupported) {
			p->unsupported = true;
			snprintf(r->msg, sizeof(r->msg),
			    "line %lu: more than %zu keys", r->line,
			    r->lim.keys_max);
		}
		return;
	}
	e = &r->ents[r->nents++];
	e->key = key;
	e->val = val;
	e->level = level;
	e->slot = s;
	r->slots[s] = (uint32_t)r->nents;
}

/* is_flattened - whether an object under key is read as custom fields */
static bool
is_flattened(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(flatten_keys) / sizeof(flatten_keys[0]); i++)
		if (strcmp(key, flatten_keys[i]) == 0)
			return true;
	return false;
}

/* jp_member_value - the value of key at s[i], at level */
static bool
jp_member_value(struct jp *p, const char *key, unsigned level, unsigned depth)
{
	const char *v;
	int rc;

	if (p->i >= p->n)
		return jp_fail(p, "value expected");
	if (level < 2 && (rc = jp_scalar(p, &v)) != 0) {
		if (rc > 0)
			jp_add(p, key, v, level);
		return rc > 0;
	}
	if (level == 0 && p->s[p->i] == '{' && is_flattened(key))
		return jp_members(p, 1, depth + 1);
	if (level < 2)
		jp_unsupported(p, key,
		    p->s[p->i] == '[' ? "arrays are not supported"
				      : "nested objects are not supported");
	return jp_skip(p, depth);
}

/*
 * jp_members - the object at s[i] == '{'.  Level 0 is the line's
 * object, 1 one being flattened; at 2 (inside something unsupported)
 * nothing is stored.
 */
static bool
jp_members(struct jp *p, unsigned level, unsigned depth)
{
	const char *key;
	size_t mark;

	p->i++;
	jp_ws(p);
	if (p->i < p->n && p->s[p->i] == '}') {
		p->i++;
		return true;
	}
	for (;;) {
		jp_ws(p);
		if (p->i >= p->n || p->s[p->i] != '"')
			return jp_fail(p, "expected a key in double quotes");
		mark = p->r->alen;
		if (!jp_string(p, &key))
			return false;
		if (level >= 2)
			p->r->alen = mark;
		jp_ws(p);
		if (p->i >= p->n || p->s[p->i] != ':')
			return jp_fail(p, "expected ':' after the key");
		p->i++;
		jp_ws(p);
		if (!jp_member_value(p, key, level, depth))
			return false;
		jp_ws(p);
		if (p->i < p->n && p->s[p->i] == '}') {
			p->i++;
			return true;
		}
		if (p->i >= p->n || p->s[p->i] != ',')
			return jp_fail(p, "expected ',' or '}'");
		p->i++;
	}
}

/* jsonl_grow - make *bufp hold at least need elements of size sz */
static bool
jsonl_grow(void **bufp, size_t *capp, size_t need, size_t sz)
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

/* jsonl_emit - hand a row to the callback; false when it stops */
static bool
jsonl_emit(struct jsonl *r, const char *error)
{
	struct jsonl_row row;
	size_t i, n = 0;
	unsigned level;
	int rc;

	memset(&row, 0, sizeof(row));
	row.line = r->line;
	row.error = error;
	if (error == NULL) {
		for (level = 0; level < 2; level++)
			for (i = 0; i < r->nents; i++)
				if (r->ents[i].level == level &&
				    r->ents[i].val != NULL) {
					r->keys[n] = r->ents[i].key;
					r->vals[n++] = r->ents[i].val;
				}
		row.keys = r->keys;
		row.values = r->vals;
		row.n = n;
	}
	if ((rc = r->cb(r->arg, &row)) != 0) {
		r->state = JSONL_STOPPED;
		r->stop_rc = rc;
		return false;
	}
	return true;
}

/* jsonl_parse - parse the line s[0..n) into r->ents; NULL or the error */
static const char *
jsonl_parse(struct jsonl *r, const unsigned char *s, size_t n)
{
	struct jp p;
	size_t i;

	memset(&p, 0, sizeof(p));
	p.r = r;
	p.s = s;
	p.n = n;
	r->alen = 0;
	r->nents = 0;
	jp_ws(&p);
	if (p.i >= p.n || p.s[p.i] != '{') {
		snprintf(r->msg, sizeof(r->msg), "line %lu: not a JSON object",
		    r->line);
		return r->msg;
	}
	if (jp_members(&p, 0, 0)) {
		jp_ws(&p);
		if (p.i < p.n)
			jp_fail(&p, "unexpected text after the object");
	}
	for (i = 0; i < r->nents; i++)
		r->slots[r->ents[i].slot] = 0;
	return p.broken || p.unsupported ? r->msg : NULL;
}

/* jsonl_line - one complete line s[0..n), without its LF */
static bool
jsonl_line(struct jsonl *r, const unsigned char *s, size_t n)
{
	size_t i;
	int k;

	if (r->line == 1 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		n -= 3;
	}
	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			break;
	if (i == n)
		return true;
	if (s[n - 1] == '\r')
		n--;
	for (i = 0; i < n; i += (size_t)k)
		if ((k = utf8_seq(s + i, n - i)) <= 0) {
			snprintf(r->msg, sizeof(r->msg),
			    "line %lu, column %lu: invalid UTF-8", r->line,
			    column(s, i));
			return jsonl_emit(r, r->msg);
		}
	if (!jsonl_grow((void **)&r->arena, &r->acap, 2 * n + 16, 1)) {
		r->state = JSONL_FAILED;
		return false;
	}
	return jsonl_emit(r, jsonl_parse(r, s, n));
}

struct jsonl *
jsonl_new(const struct jsonl_limits *lim, jsonl_cb *cb, void *arg)
{
	struct jsonl *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (lim != NULL)
		r->lim = *lim;
	if (r->lim.line_max == 0)
		r->lim.line_max = JSONL_LINE_MAX;
	if (r->lim.keys_max == 0)
		r->lim.keys_max = JSONL_KEYS_MAX;
	if (r->lim.keys_max > UINT32_MAX / 4)
		r->lim.keys_max = UINT32_MAX / 4;
	r->nslots = 16;
	while (r->nslots < 2 * (r->lim.keys_max + 1))
		r->nslots *= 2;
	r->ents = calloc(r->lim.keys_max, sizeof(*r->ents));
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	r->keys = calloc(r->lim.keys_max, sizeof(*r->keys));
	r->vals = calloc(r->lim.keys_max, sizeof(*r->vals));
	if (r->ents == NULL || r->slots == NULL || r->keys == NULL ||
	    r->vals == NULL) {
		jsonl_free(&r);
		return NULL;
	}
	r->cb = cb;
	r->arg = arg;
	r->line = 1;
	return r;
}

/* jsonl_append - add n bytes of the current line, or start skipping it */
static bool
jsonl_append(struct jsonl *r, const void *b, size_t n)
{
	size_t cap;

	if (r->skipping || n == 0)
		return true;
	if (n > r->lim.line_max - r->len) {
		r->skipping = true;
		r->len = 0;
		snprintf(r->msg, sizeof(r->msg),
		    "line %lu: longer than %zu bytes", r->line,
		    r->lim.line_max);
		return jsonl_emit(r, r->msg);
	}
	if (r->len + n > r->cap) {
		cap = r->cap ? r->cap : 256;
		while (cap < r->len + n)
			cap *= 2;
		cap = cap < r->lim.line_max ? cap : r->lim.line_max;
		if (!jsonl_grow((void **)&r->buf, &r->cap, cap, 1)) {
			r->state = JSONL_FAILED;
			return false;
		}
	}
	memcpy(r->buf + r->len, b, n);
	r->len += n;
	return true;
}

/* jsonl_end_line - the LF (or the end of input) of the current line */
static bool
jsonl_end_line(struct jsonl *r)
{
	bool ok = true;

	if (!r->skipping)
		ok = jsonl_line(r, (const unsigned char *)r->buf, r->len);
	r->skipping = false;
	r->len = 0;
	r->line++;
	return ok;
}

/* jsonl_result - what feed/finish return in the current state */
static int
jsonl_result(const struct jsonl *r, char *err, size_t errlen)
{
	if (r->state == JSONL_STOPPED)
		return r->stop_rc;
	if (r->state == JSONL_FAILED) {
		snprintf(err, errlen, "line %lu: out of memory", r->line);
		return -1;
	}
	return 0;
}

int
jsonl_feed(
    struct jsonl *r, const void *data, size_t len, char *err, size_t errlen)
{
	const char *p = data, *nl;
	size_t seg;

	if (r->state == JSONL_DONE) {
		snprintf(err, errlen, "jsonl_feed after jsonl_finish");
		return -1;
	}
	while (len > 0 && r->state == JSONL_READ) {
		nl = memchr(p, '\n', len);
		seg = nl != NULL ? (size_t)(nl - p) : len;
		if (!jsonl_append(r, p, seg))
			break;
		if (nl == NULL)
			break;
		p += seg + 1;
		len -= seg + 1;
		if (!jsonl_end_line(r))
			break;
	}
	return jsonl_result(r, err, errlen);
}

int
jsonl_finish(struct jsonl *r, char *err, size_t errlen)
{
	if (r->state == JSONL_DONE) {
		snprintf(err, errlen, "jsonl_finish called twice");
		return -1;
	}
	if (r->state == JSONL_READ && r->len > 0)
		jsonl_end_line(r);
	if (r->state == JSONL_READ)
		r->state = JSONL_DONE;
	return jsonl_result(r, err, errlen);
}

void
jsonl_free(struct jsonl **rp)
{
	struct jsonl *r = *rp;

	if (r == NULL)
		return;
	free(r->buf);
	free(r->arena);
	free(r->ents);
	free(r->slots);
	free(r->keys);
	free(r->vals);
	free(r);
	*rp = NULL;
}
