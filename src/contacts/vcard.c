/*
 * vcard.c - the streaming vCard reader of vcard.h.
 *
 * Two layers, both driven one byte at a time so that the chunking of
 * the input cannot change the result:
 *
 *   1. bytes to logical lines: CR dropped; LF ends a physical line, and
 *      the next byte decides (space or tab: a fold, dropped; anything
 *      else: the logical line is complete).  In a line whose parameters
 *      (before the first unquoted ':') mention QUOTED-PRINTABLE, a "="
 *      before LF is a soft line break: both go and the line goes on.
 *      At most line_max bytes of a line are kept; the rest are counted.
 *   2. logical lines to cards: outside a card only BEGIN:VCARD matters;
 *      inside, END:VCARD delivers, BEGIN:VCARD reports and restarts, and
 *      a limit breaks the card (reported once, the rest skipped up to
 *      its END or the next BEGIN).
 *
 * A card's strings are kept in one arena as offsets (the arena moves as
 * it grows) and turned into pointers only for the callback.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contacts/vcard.h"
#include "lib/util.h"

#define NONE SIZE_MAX /* offset of a string the card does not have */

struct email_off {
	size_t value, types;
	unsigned pref;
};

struct vcard_reader {
	struct vcard_limits lim;
	vcard_cb *cb;
	void *arg;
	bool finished;
	long ncards;

	/* layer 1 */
	unsigned bom;		  /* BOM bytes matched; 3 once past it */
	char *line;		  /* line_max + 1 bytes */
	size_t len, total;	  /* bytes kept, bytes of the logical line */
	unsigned long phys;	  /* physical line being read, 1-based */
	unsigned long line_start; /* where the logical line began */
	bool eol;		  /* LF seen, the next byte decides */
	bool colon, quote, qp;	  /* see layer 1 in the header comment */
	char last;		  /* last byte of the line, for "=" LF */

	/* layer 2 */
	bool in_card, broken;
	unsigned long card_line;
	size_t card_bytes, nprops;
	char *arena;
	size_t alen, acap;
	size_t version, fn, family, given, org;
	struct email_off *emails;
	size_t nemails, ecap;
};

/* a property line cut into its parts; pointers into the line buffer */
struct prop {
	const char *name, *params, *value;
	size_t namelen, paramslen, valuelen;
};

/* the parameters of a property that matter here */
struct params {
	bool qp, latin1, pref_type;
	unsigned pref;
	char *types; /* raw "a,b" list, lower case */
	size_t typeslen;
};

static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };

void
vcard_limits_default(struct vcard_limits *l)
{
	l->line_max = VCARD_LINE_MAX;
	l->props_max = VCARD_PROPS_MAX;
	l->emails_max = VCARD_EMAILS_MAX;
	l->card_max = VCARD_CARD_MAX;
}

struct vcard_reader *
vcard_new(const struct vcard_limits *limits, vcard_cb *cb, void *arg)
{
	struct vcard_reader *r = xcalloc(1, sizeof(*r));

	vcard_limits_default(&r->lim);
	if (limits != NULL) {
		if (limits->line_max > 0)
			r->lim.line_max = limits->line_max;
		if (limits->props_max > 0)
			r->lim.props_max = limits->props_max;
		if (limits->emails_max > 0)
			r->lim.emails_max = limits->emails_max;
		if (limits->card_max > 0)
			r->lim.card_max = limits->card_max;
	}
	r->cb = cb;
	r->arg = arg;
	r->line = xmalloc(r->lim.line_max + 1);
	r->phys = r->line_start = 1;
	return r;
}

void
vcard_free(struct vcard_reader **rp)
{
	struct vcard_reader *r = *rp;

	if (r == NULL)
		return;
	free(r->line);
	free(r->arena);
	free(r->emails);
	free(r);
	*rp = NULL;
}

/* lower - ASCII lower case of c */
static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ieq - whether the n bytes at s are word, ignoring ASCII case */
static bool
ieq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n && word[i] != '\0'; i++)
		if (lower((unsigned char)s[i]) != word[i])
			return false;
	return i == n && word[i] == '\0';
}

/* has_qp - whether "quoted-printable" occurs in the n bytes at s */
static bool
has_qp(const char *s, size_t n)
{
	static const char w[] = "quoted-printable";
	size_t wl = sizeof(w) - 1;

	for (size_t i = 0; i + wl <= n; i++)
		if (ieq(s + i, wl, w))
			return true;
	return false;
}

/* trim - shrink [*s, *s + *n) past ASCII white space at both ends */
static void
trim(const char **s, size_t *n)
{
	while (*n > 0 && strchr(" \t", (*s)[0]) != NULL && (*s)[0] != '\0') {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && strchr(" \t", (*s)[*n - 1]) != NULL &&
	    (*s)[*n - 1] != '\0')
		(*n)--;
}

/* report - pass error text for the current card to the callback */
static void
report(struct vcard_reader *r, const char *fmt, ...)
{
	struct vcard c = { .line = r->card_line };
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->cb(r->arg, &c, msg);
}

/* start_card - a BEGIN:VCARD line opens a card */
static void
start_card(struct vcard_reader *r)
{
	r->in_card = true;
	r->broken = false;
	r->card_line = r->line_start;
	r->card_bytes = r->total + 1;
	r->nprops = 0;
	r->alen = 0;
	r->version = r->fn = r->family = r->given = r->org = NONE;
	r->nemails = 0;
}

/* arena_add - copy n bytes and a NUL into the arena; their offset */
static size_t
arena_add(struct vcard_reader *r, const char *s, size_t n)
{
	size_t off = r->alen;

	if (r->acap - r->alen < n + 1) {
		size_t cap = r->acap ? r->acap : 256;

		while (cap - r->alen < n + 1)
			cap *= 2;
		r->arena = xrealloc(r->arena, cap);
		r->acap = cap;
	}
	memcpy(r->arena + off, s, n);
	r->arena[off + n] = '\0';
	r->alen += n + 1;
	return off;
}

/* str - the arena string at off, or NULL for NONE */
static const char *
str(const struct vcard_reader *r, size_t off)
{
	return off == NONE ? NULL : r->arena + off;
}

/* deliver - pass a complete card to the callback */
static void
deliver(struct vcard_reader *r)
{
	struct vcard c = { .line = r->card_line };
	struct vcard_email *e = NULL;

	if (r->nemails > 0)
		e = xcalloc(r->nemails, sizeof(*e));
	for (size_t i = 0; i < r->nemails; i++) {
		e[i].value = str(r, r->emails[i].value);
		e[i].types = str(r, r->emails[i].types);
		e[i].pref = r->emails[i].pref;
	}
	c.version = str(r, r->version);
	c.fn = str(r, r->fn);
	c.family = str(r, r->family);
	c.given = str(r, r->given);
	c.org = str(r, r->org);
	c.emails = e;
	c.nemails = r->nemails;
	r->ncards++;
	r->cb(r->arg, &c, NULL);
	free(e);
}

/*
 * split_prop - cut a logical line into [group.]name, parameters and
 * value; false if it has no unquoted ':'.
 */
static bool
split_prop(const char *s, size_t n, struct prop *p)
{
	size_t i = 0, colon;
	bool quote = false;

	while (i < n && s[i] != ';' && s[i] != ':')
		i++;
	for (colon = i; colon < n; colon++) {
		if (s[colon] == '"')
			quote = !quote;
		else if (s[colon] == ':' && !quote)
			break;
	}
	if (colon >= n)
		return false;
	p->name = s;
	p->namelen = i;
	for (size_t k = i; k > 0; k--)
		if (s[k - 1] == '.') {
			p->name = s + k;
			p->namelen = i - k;
			break;
		}
	p->params = s + i;
	p->paramslen = colon - i;
	p->value = s + colon + 1;
	p->valuelen = n - colon - 1;
	trim(&p->name, &p->namelen);
	return true;
}

/* is_vcard - whether the value of p is "VCARD" */
static bool
is_vcard(const struct prop *p)
{
	const char *v = p->value;
	size_t n = p->valuelen;

	trim(&v, &n);
	return ieq(v, n, "vcard");
}

/* param_value - one value v (unquoted) of the parameter named name */
static void
param_value(struct params *pa, const char *name, size_t namelen, const char *v,
    size_t n)
{
	if (ieq(name, namelen, "type")) {
		if (ieq(v, n, "pref")) {
			pa->pref_type = true;
			return;
		}
		if (n == 0)
			return;
		if (pa->typeslen > 0)
			pa->types[pa->typeslen++] = ',';
		for (size_t i = 0; i < n; i++)
			pa->types[pa->typeslen++] =
			    (char)lower((unsigned char)v[i]);
	} else if (ieq(name, namelen, "pref")) {
		unsigned x = 0;
		size_t i;

		for (i = 0; i < n && v[i] >= '0' && v[i] <= '9' && x <= 100;
		     i++)
			x = x * 10 + (unsigned)(v[i] - '0');
		if (i == n && x >= 1 && x <= 100)
			pa->pref = x;
	} else if (ieq(name, namelen, "encoding")) {
		if (ieq(v, n, "quoted-printable"))
			pa->qp = true;
	} else if (ieq(name, namelen, "charset")) {
		pa->latin1 = ieq(v, n, "iso-8859-1") || ieq(v, n, "latin1") ||
		    ieq(v, n, "windows-1252") || ieq(v, n, "cp1252") ||
		    ieq(v, n, "us-ascii") || ieq(v, n, "iso-8859-15");
	}
}

/*
 * param - one ";"-separated parameter: name=v1,"v2",... or a bare 2.1
 * value (an encoding or a type).
 */
static void
param(struct params *pa, const char *s, size_t n)
{
	const char *eq = memchr(s, '=', n);
	const char *name = "type";
	size_t namelen = 4, i, start;
	bool quote = false;

	if (eq != NULL && memchr(s, '"', (size_t)(eq - s)) == NULL) {
		name = s;
		namelen = (size_t)(eq - s);
		trim(&name, &namelen);
		n -= (size_t)(eq - s) + 1;
		s = eq + 1;
	} else if (ieq(s, n, "quoted-printable")) {
		pa->qp = true;
		return;
	} else if (ieq(s, n, "base64") || ieq(s, n, "8bit") ||
	    ieq(s, n, "7bit")) {
		return;
	}
	for (i = start = 0; i <= n; i++) {
		if (i < n && s[i] == '"') {
			quote = !quote;
		} else if (i == n || (s[i] == ',' && !quote)) {
			const char *v = s + start;
			size_t vl = i - start;

			trim(&v, &vl);
			if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
				v++;
				vl -= 2;
			}
			param_value(pa, name, namelen, v, vl);
			start = i + 1;
		}
	}
}

/* parse_params - all parameters of p into *pa (types: caller's buffer) */
static void
parse_params(const struct prop *p, struct params *pa)
{
	const char *s = p->params;
	size_t n = p->paramslen, start = 1;
	bool quote = false;

	for (size_t i = 1; i <= n; i++) {
		if (i < n && s[i] == '"')
			quote = !quote;
		else if (i == n || (s[i] == ';' && !quote)) {
			if (i > start)
				param(pa, s + start, i - start);
			start = i + 1;
		}
	}
	if (pa->pref == 0 && pa->pref_type)
		pa->pref = 1;
}

/* qp_decode - quoted-printable s to out (n bytes room); length */
static size_t
qp_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] == '=' && i + 2 < n) {
			hi = hex_digit((unsigned char)s[i + 1]);
			lo = hex_digit((unsigned char)s[i + 2]);
			if (hi >= 0 && lo >= 0) {
				out[o++] = (char)(hi * 16 + lo);
				i += 2;
				continue;
			}
		}
		out[o++] = s[i];
	}
	return o;
}

/* utf8_valid - whether the n bytes at s are well-formed UTF-8 */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, min, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, min = 0x80, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, min = 0x800, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, min = 0x10000, cp = c & 0x07;
		else
			return false;
		if (n - i <= need)
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/*
 * to_utf8 - s as UTF-8 without NULs into out (2n bytes room): copied if
 * it is valid UTF-8 and not said to be Latin-1, else converted from
 * Latin-1.  Returns the length.
 */
static size_t
to_utf8(const char *s, size_t n, bool latin1, char *out)
{
	const unsigned char *u = (const unsigned char *)s;
	bool conv = latin1 || !utf8_valid(u, n);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (u[i] == 0)
			continue;
		if (conv && u[i] >= 0x80) {
			out[o++] = (char)(0xc0 | u[i] >> 6);
			out[o++] = (char)(0x80 | (u[i] & 0x3f));
		} else {
			out[o++] = (char)u[i];
		}
	}
	return o;
}

/*
 * component - the unescaped component idx of the n bytes at s, split
 * on unescaped ';' when split is set, stored trimmed in the arena;
 * NONE if missing or empty.
 */
static size_t
component(struct vcard_reader *r, const char *s, size_t n, unsigned idx,
    bool split, char *tmp)
{
	size_t o = 0, i = 0;
	unsigned k = 0;
	const char *t;

	for (; i < n; i++) {
		if (split && s[i] == ';') {
			if (k++ == idx)
				break;
			continue;
		}
		if (s[i] == '\\' && i + 1 < n) {
			char c = s[++i];

			if (c == 'n' || c == 'N')
				c = '\n';
			else if (strchr(",;:\\", c) == NULL || c == '\0') {
				if (k == idx)
					tmp[o++] = '\\';
			}
			if (k == idx)
				tmp[o++] = c;
			continue;
		}
		if (k == idx)
			tmp[o++] = s[i];
	}
	if (k < idx)
		return NONE;
	t = tmp;
	trim(&t, &o);
	return o == 0 ? NONE : arena_add(r, t, o);
}

/* break_card - report why the current card is skipped and skip it */
static void
break_card(struct vcard_reader *r, const char *why, size_t limit)
{
	report(r, "line %lu: %s %zu, card skipped", r->line_start, why, limit);
	r->broken = true;
	r->alen = 0;
	r->nemails = 0;
}

/* add_email - an EMAIL property of the card */
static void
add_email(struct vcard_reader *r, const char *v, size_t n,
    const struct params *pa, char *tmp)
{
	size_t value = component(r, v, n, 0, false, tmp), tl;

	if (value == NONE)
		return;
	if (r->nemails >= r->lim.emails_max) {
		break_card(r, "more EMAIL properties than", r->lim.emails_max);
		return;
	}
	if (r->nemails == r->ecap) {
		r->ecap = r->ecap ? r->ecap * 2 : 8;
		r->emails = xrealloc(r->emails, r->ecap * sizeof(*r->emails));
	}
	tl = to_utf8(pa->types, pa->typeslen, false, tmp);
	r->emails[r->nemails].value = value;
	r->emails[r->nemails].types = arena_add(r, tmp, tl);
	r->emails[r->nemails].pref = pa->pref;
	r->nemails++;
}

/* property - a property line of an open, unbroken card */
static void
property(struct vcard_reader *r, const struct prop *p)
{
	struct params pa = { 0 };
	char *val, *tmp;
	size_t n;

	if (!ieq(p->name, p->namelen, "fn") && !ieq(p->name, p->namelen, "n") &&
	    !ieq(p->name, p->namelen, "org") &&
	    !ieq(p->name, p->namelen, "email") &&
	    !ieq(p->name, p->namelen, "version"))
		return;
	pa.types = xmalloc(p->paramslen + 1);
	parse_params(p, &pa);
	val = xmalloc(2 * p->valuelen + 1);
	tmp = xmalloc(2 * (p->valuelen + p->paramslen) + 1);
	n = p->valuelen;
	if (pa.qp)
		n = qp_decode(p->value, n, tmp);
	else
		memcpy(tmp, p->value, n);
	n = to_utf8(tmp, n, pa.latin1, val);
	if (ieq(p->name, p->namelen, "email"))
		add_email(r, val, n, &pa, tmp);
	else if (ieq(p->name, p->namelen, "fn") && r->fn == NONE)
		r->fn = component(r, val, n, 0, false, tmp);
	else if (ieq(p->name, p->namelen, "org") && r->org == NONE)
		r->org = component(r, val, n, 0, true, tmp);
	else if (ieq(p->name, p->namelen, "version") && r->version == NONE)
		r->version = component(r, val, n, 0, false, tmp);
	else if (ieq(p->name, p->namelen, "n") && r->family == NONE &&
	    r->given == NONE) {
		r->family = component(r, val, n, 0, true, tmp);
		r->given = component(r, val, n, 1, true, tmp);
	}
	free(pa.types);
	free(val);
	free(tmp);
}

/* card_line - one logical line while a card is open */
static void
card_line(struct vcard_reader *r, const struct prop *p, bool isprop)
{
	r->card_bytes += r->total + 1;
	if (isprop && ieq(p->name, p->namelen, "end") && is_vcard(p)) {
		if (!r->broken)
			deliver(r);
		r->in_card = false;
		return;
	}
	if (r->broken)
		return;
	if (r->total > r->lim.line_max)
		break_card(r, "line longer than", r->lim.line_max);
	else if (r->card_bytes > r->lim.card_max)
		break_card(r, "card longer than", r->lim.card_max);
	else if (isprop && ++r->nprops > r->lim.props_max)
		break_card(r, "more properties than", r->lim.props_max);
	else if (isprop)
		property(r, p);
}

/* end_line - a logical line is complete: take it and start the next */
static void
end_line(struct vcard_reader *r)
{
	struct prop p = { 0 };
	bool isprop = split_prop(r->line, r->len, &p);

	if (isprop && ieq(p.name, p.namelen, "begin") && is_vcard(&p)) {
		if (r->in_card && !r->broken)
			report(r,
			    "line %lu: BEGIN:VCARD inside the card begun at "
			    "line %lu, card skipped",
			    r->line_start, r->card_line);
		start_card(r);
	} else if (r->in_card) {
		card_line(r, &p, isprop);
	}
	r->len = r->total = 0;
	r->colon = r->quote = r->qp = false;
	r->last = 0;
	r->line_start = r->phys;
}

/* append - one byte of a logical line */
static void
append(struct vcard_reader *r, char c)
{
	if (!r->colon) {
		if (c == '"') {
			r->quote = !r->quote;
		} else if (c == ':' && !r->quote) {
			r->colon = true;
			r->qp = has_qp(r->line, r->len);
		}
	}
	if (r->len < r->lim.line_max)
		r->line[r->len++] = c;
	r->total++;
	r->last = c;
}

/* byte - layer 1 on one byte past the BOM */
static void
byte(struct vcard_reader *r, char c)
{
	if (c == '\r')
		return;
	if (r->eol) {
		r->eol = false;
		if (c == ' ' || c == '\t')
			return;
		end_line(r);
	}
	if (c != '\n') {
		append(r, c);
		return;
	}
	r->phys++;
	if (r->qp && r->last == '=') {
		/* a soft line break: drop the "=" and go on */
		if (r->len == r->total)
			r->len--;
		r->total--;
		r->last = 0;
		return;
	}
	r->eol = true;
}

int
vcard_feed(struct vcard_reader *r, const void *data, size_t len, char *err,
    size_t errlen)
{
	const unsigned char *s = data;

	if (r->finished) {
		snprintf(err, errlen, "vcard_feed after vcard_finish");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (r->bom < 3 && s[i] == bom[r->bom]) {
			r->bom++;
			continue;
		}
		if (r->bom < 3) {
			for (unsigned k = 0; k < r->bom; k++)
				byte(r, (char)bom[k]);
			r->bom = 3;
		}
		byte(r, (char)s[i]);
	}
	return 0;
}

long
vcard_finish(struct vcard_reader *r, char *err, size_t errlen)
{
	if (r->finished) {
		snprintf(err, errlen, "vcard_finish called twice");
		return -1;
	}
	unsigned long last;

	for (unsigned k = 0; r->bom < 3 && k < r->bom; k++)
		byte(r, (char)bom[k]);
	r->bom = 3;
	last = r->eol && r->phys > 1 ? r->phys - 1 : r->phys;
	if (r->eol || r->total > 0)
		end_line(r);
	if (r->in_card && !r->broken)
		report(r,
		    "line %lu: no END:VCARD for the card begun at line %lu",
		    last, r->card_line);
	r->in_card = false;
	r->finished = true;
	return r->ncards;
}
