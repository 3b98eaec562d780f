/*
 * header.c - RFC 5322 header section helpers (see header.h).
 *
 * header_addr_domains() is a small recursive-descent parser over a token
 * stream.  The lexer drops CFWS (white space, line breaks and nested
 * comments) and hands out atoms, quoted strings, domain literals and the
 * specials < > : ; @ , . - which is all the address grammar needs:
 *
 *   address-list = [address] *("," [address])        (obs-addr-list)
 *   address      = mailbox / group
 *   group        = phrase ":" [mailbox *("," [mailbox])] ";"
 *   mailbox      = [phrase] "<" [obs-route] addr-spec ">" / addr-spec
 *   phrase       = 1*(word / ".")                      (obs-phrase)
 *   addr-spec    = word *("." word) "@" domain
 *   domain       = atom *("." atom) / domain-literal
 *
 * Recursion is bounded: groups do not nest, and comments are counted,
 * not recursed into.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "mail/address.h"
#include "mail/header.h"

/*
 * field_start - if a field called name (nlen bytes) begins at hdr[pos],
 * the offset just after its colon; else 0 (a match is never at 0).
 */
static size_t
field_start(
    const char *hdr, size_t len, size_t pos, const char *name, size_t nlen)
{
	size_t i;

	if (len - pos < nlen || strncasecmp(hdr + pos, name, nlen) != 0)
		return 0;
	for (i = pos + nlen; i < len && (hdr[i] == ' ' || hdr[i] == '\t'); i++)
		;
	return i < len && hdr[i] == ':' ? i + 1 : 0;
}

/* find_field - offset after the colon of the first field name, or 0 */
static size_t
find_field(const char *hdr, size_t len, const char *name)
{
	size_t nlen = strlen(name), pos = 0;

	if (nlen == 0)
		return 0;
	while (pos < len) {
		const char *nl;
		size_t v;

		/* An empty line ends the header, whatever comes after. */
		if (hdr[pos] == '\n' ||
		    (hdr[pos] == '\r' && pos + 1 < len && hdr[pos + 1] == '\n'))
			break;
		if (hdr[pos] != ' ' && hdr[pos] != '\t' &&
		    (v = field_start(hdr, len, pos, name, nlen)) != 0)
			return v;
		nl = memchr(hdr + pos, '\n', len - pos);
		if (nl == NULL)
			break;
		pos = (size_t)(nl - hdr) + 1;
	}
	return 0;
}

bool
header_has_field(const char *hdr, size_t len, const char *name)
{
	return find_field(hdr, len, name) != 0;
}

char *
header_field_value(const char *hdr, size_t len, const char *name)
{
	size_t i = find_field(hdr, len, name), start, end;
	struct buf b = BUF_INIT;
	char *v;

	if (i == 0)
		return NULL;
	while (i < len) {
		char c = hdr[i];

		if (c == '\n' ||
		    (c == '\r' && i + 1 < len && hdr[i + 1] == '\n')) {
			size_t next = c == '\n' ? i + 1 : i + 2;

			if (next < len &&
			    (hdr[next] == ' ' || hdr[next] == '\t')) {
				i = next;
				continue;
			}
			break;
		}
		buf_append(&b, &c, 1);
		i++;
	}
	v = b.data != NULL ? b.data : xstrdup("");
	/* strlen, not b.len: a NUL in the value ends the string */
	end = strlen(v);
	while (end > 0 &&
	    (v[end - 1] == ' ' || v[end - 1] == '\t' || v[end - 1] == '\r'))
		end--;
	v[end] = '\0';
	for (start = 0; v[start] == ' ' || v[start] == '\t'; start++)
		;
	memmove(v, v + start, end - start + 1);
	return v;
}

/* Address-list parsing */

enum tok_type {
	TOK_END,
	TOK_ERROR,
	TOK_ATOM,
	TOK_QUOTED,
	TOK_LITERAL,
	TOK_SPECIAL
};

struct tok {
	enum tok_type type;
	const char *s; /* ATOM, LITERAL: the text; SPECIAL: the character */
	size_t len;
};

struct parser {
	const char *p;	 /* next byte to lex */
	struct tok next; /* the peeked token, when have_next */
	bool have_next;
	const char *error; /* the first error wins */
	char **domains;
	size_t n;
};

static _Thread_local char hdr_errbuf[160];

static const char words_error[] = "local part has words not joined by '.'";

static int fail(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fail - record the first error; returns -1 */
static int
fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->error != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(hdr_errbuf, sizeof(hdr_errbuf), fmt, ap);
	va_end(ap);
	ps->error = hdr_errbuf;
	return -1;
}

/* is_atext - atext, UTF-8 bytes included (RFC 6532) */
static bool
is_atext(unsigned char c)
{
	return c >= 0x80 || mail_is_atext(c);
}

/* skip_cfws - white space, line breaks and (nested (comments)) */
static int
skip_cfws(struct parser *ps)
{
	for (;;) {
		int depth = 0;

		while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' ||
		    *ps->p == '\n')
			ps->p++;
		if (*ps->p != '(')
			return 0;
		do {
			char c = *ps->p;

			if (c == '\0')
				return fail(ps, "unterminated comment");
			if (c == '\\' && ps->p[1] != '\0')
				ps->p++;
			else if (c == '(' && ++depth > HEADER_COMMENT_DEPTH_MAX)
				return fail(ps, "comments nested too deeply");
			else if (c == ')')
				depth--;
			ps->p++;
		} while (depth > 0);
	}
}

/* lex_delimited - a quoted string or domain literal ending at close */
static int
lex_delimited(struct parser *ps, char close, struct tok *t)
{
	const char *start = ps->p++;

	for (;;) {
		char c = *ps->p;

		if (c == '\0')
			return fail(ps,
			    close == '"' ? "unterminated quoted string"
					 : "unterminated domain literal");
		if (c == '\\' && ps->p[1] != '\0')
			ps->p++;
		else if (c == close)
			break;
		else if (close == ']' && c == '[')
			return fail(ps, "'[' inside a domain literal");
		ps->p++;
	}
	ps->p++;
	t->type = close == '"' ? TOK_QUOTED : TOK_LITERAL;
	t->s = start;
	t->len = (size_t)(ps->p - start);
	return 0;
}

/* lex - the next token after any CFWS */
static void
lex(struct parser *ps, struct tok *t)
{
	unsigned char c;

	t->type = TOK_ERROR;
	if (skip_cfws(ps) < 0)
		return;
	c = (unsigned char)*ps->p;
	t->s = ps->p;
	t->len = 1;
	if (c == '\0')
		t->type = TOK_END;
	else if (c == '"' || c == '[')
		lex_delimited(ps, c == '"' ? '"' : ']', t);
	else if (c != '\0' && strchr("<>:;@,.", c) != NULL) {
		t->type = TOK_SPECIAL;
		ps->p++;
	} else if (is_atext(c)) {
		while (is_atext((unsigned char)*ps->p))
			ps->p++;
		t->type = TOK_ATOM;
		t->len = (size_t)(ps->p - t->s);
	} else if (c > 32 && c < 127)
		fail(ps, "unexpected '%c'", c);
	else
		fail(ps, "invalid character 0x%02x", c);
}

static const struct tok *
peek(struct parser *ps)
{
	if (!ps->have_next) {
		lex(ps, &ps->next);
		ps->have_next = true;
	}
	return &ps->next;
}

/* take - consume the peeked token (never END or ERROR) */
static void
take(struct parser *ps)
{
	ps->have_next = false;
}

static bool
is_special(const struct tok *t, char c)
{
	return t->type == TOK_SPECIAL && t->s[0] == c;
}

static bool
is_word(const struct tok *t)
{
	return t->type == TOK_ATOM || t->type == TOK_QUOTED;
}

/* unexpected - the error for token t where something else was needed */
static int
unexpected(struct parser *ps, const struct tok *t, const char *wanted)
{
	if (t->type == TOK_ERROR)
		return -1;
	if (t->type == TOK_END)
		return fail(ps, "%s at end of list", wanted);
	if (t->type == TOK_SPECIAL)
		return fail(ps, "%s before '%c'", wanted, t->s[0]);
	return fail(ps, "%s before '%.*s'", wanted,
	    (int)(t->len > 40 ? 40 : t->len), t->s);
}

/*
 * parse_domain - domain after '@': atoms joined by dots, or a literal.
 * With keep, normalize it and add it to the result.
 */
static int
parse_domain(struct parser *ps, bool keep)
{
	const struct tok *t = peek(ps);
	struct buf d = BUF_INIT;
	const char *error;
	char *ascii;

	if (t->type == TOK_LITERAL) {
		buf_append(&d, t->s, t->len);
		take(ps);
	} else if (t->type == TOK_ATOM) {
		for (;;) {
			buf_append(&d, t->s, t->len);
			take(ps);
			if (!is_special(peek(ps), '.'))
				break;
			take(ps);
			buf_append(&d, ".", 1);
			t = peek(ps);
			if (t->type != TOK_ATOM) {
				buf_free(&d);
				return unexpected(
				    ps, t, "empty label in domain");
			}
		}
	} else
		return unexpected(ps, t, "missing domain");
	if (mail_domain_normalize(buf_cstr(&d), &ascii, &error) < 0) {
		fail(ps, "%s", error);
		buf_free(&d);
		return -1;
	}
	buf_free(&d);
	if (!keep) {
		free(ascii);
		return 0;
	}
	if (ps->n >= HEADER_ADDR_MAX) {
		free(ascii);
		return fail(ps, "more than %d mailboxes", HEADER_ADDR_MAX);
	}
	ps->domains = xrealloc(ps->domains, (ps->n + 1) * sizeof(*ps->domains));
	ps->domains[ps->n++] = ascii;
	return 0;
}

/*
 * parse_local - a local part: words and dots, at least one word, no two
 * words side by side.  Stray dots are let through: real mail carries
 * "a..b@" and "a.@" (obs, and some mobile carriers) and only the domain
 * matters here.
 */
static int
parse_local(struct parser *ps)
{
	bool last_word = false, any = false;

	for (;;) {
		const struct tok *t = peek(ps);

		if (is_word(t)) {
			if (last_word)
				return fail(ps, "%s", words_error);
			last_word = any = true;
		} else if (is_special(t, '.'))
			last_word = false;
		else if (!any)
			return unexpected(ps, t, "missing local part");
		else
			return 0;
		take(ps);
	}
}

/* parse_addr_spec - local-part "@" domain */
static int
parse_addr_spec(struct parser *ps)
{
	const struct tok *t;

	if (parse_local(ps) < 0)
		return -1;
	t = peek(ps);
	if (!is_special(t, '@')) {
		if (is_special(t, '>'))
			return fail(ps, "mailbox without domain");
		return unexpected(ps, t, "expected '@'");
	}
	take(ps);
	return parse_domain(ps, true);
}

/* parse_route - obs-route: "@" domain *("," ["@" domain]) ":" */
static int
parse_route(struct parser *ps)
{
	for (;;) {
		const struct tok *t = peek(ps);

		if (is_special(t, '@')) {
			take(ps);
			if (parse_domain(ps, false) < 0)
				return -1;
		} else if (is_special(t, ',')) {
			take(ps);
		} else if (is_special(t, ':')) {
			take(ps);
			return 0;
		} else
			return unexpected(ps, t, "invalid route");
	}
}

/* parse_angle - after '<': [obs-route] addr-spec ">" */
static int
parse_angle(struct parser *ps)
{
	const struct tok *t = peek(ps);

	if (is_special(t, '>'))
		return fail(ps, "empty address <>");
	if (is_special(t, '@') && parse_route(ps) < 0)
		return -1;
	if (parse_addr_spec(ps) < 0)
		return -1;
	t = peek(ps);
	if (!is_special(t, '>'))
		return unexpected(ps, t, "missing '>'");
	take(ps);
	return 0;
}

static int parse_group(struct parser *ps);

/*
 * parse_address - one mailbox or group.  The words before '<', ':' or
 * '@' are a display name, a group name or a local part: which one shows
 * only at that point, so they are read first and judged then.
 */
static int
parse_address(struct parser *ps, bool in_group)
{
	bool adjacent = false, last_word = false, any = false;
	const struct tok *t;

	for (;;) {
		t = peek(ps);
		if (is_word(t)) {
			adjacent |= last_word;
			last_word = any = true;
		} else if (is_special(t, '.'))
			last_word = false;
		else
			break;
		take(ps);
	}
	if (is_special(t, '<')) {
		take(ps);
		return parse_angle(ps);
	}
	if (is_special(t, ':') && any) {
		if (in_group)
			return fail(ps, "group inside a group");
		take(ps);
		return parse_group(ps);
	}
	if (!any)
		return unexpected(ps, t, "missing address");
	if (!is_special(t, '@'))
		return t->type == TOK_ERROR
		    ? -1
		    : fail(ps, "mailbox without domain");
	if (adjacent)
		return fail(ps, "%s", words_error);
	take(ps);
	return parse_domain(ps, true);
}

/* parse_group - after "name:": [mailbox *("," [mailbox])] ";" */
static int
parse_group(struct parser *ps)
{
	for (;;) {
		const struct tok *t = peek(ps);

		if (is_special(t, ';')) {
			take(ps);
			return 0;
		}
		if (is_special(t, ',')) {
			take(ps);
			continue;
		}
		if (t->type == TOK_END)
			return fail(ps, "missing ';' at end of group");
		if (parse_address(ps, true) < 0)
			return -1;
		t = peek(ps);
		if (t->type == TOK_END)
			return fail(ps, "missing ';' at end of group");
		if (!is_special(t, ',') && !is_special(t, ';'))
			return unexpected(ps, t, "expected ',' or ';'");
	}
}

int
header_addr_domains(
    const char *value, char ***domains_r, size_t *n_r, const char **error_r)
{
	struct parser ps = { .p = value };
	size_t addresses = 0;

	for (;;) {
		const struct tok *t = peek(&ps);

		if (t->type == TOK_END)
			break;
		if (is_special(t, ',')) {
			take(&ps);
			continue;
		}
		if (parse_address(&ps, false) < 0)
			goto fail;
		addresses++;
		t = peek(&ps);
		if (t->type != TOK_END && !is_special(t, ',')) {
			unexpected(&ps, t, "expected ','");
			goto fail;
		}
	}
	if (ps.error == NULL && addresses == 0)
		fail(&ps, "empty address list");
	if (ps.error != NULL)
		goto fail;
	*domains_r = ps.domains;
	*n_r = ps.n;
	return 0;
fail:
	header_domains_free(ps.domains, ps.n);
	*error_r = ps.error != NULL ? ps.error : "malformed address list";
	return -1;
}

void
header_domains_free(char **domains, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(domains[i]);
	free(domains);
}
