/*
 * address.c - RFC 5321 paths and mailboxes (see address.h).
 *
 * Grammar followed (RFC 5321 4.1.2, 4.1.3; RFC 6531 3.3):
 *
 *   Path           = "<" [ A-d-l ":" ] Mailbox ">"
 *   A-d-l          = At-domain *( "," At-domain )
 *   Mailbox        = Local-part "@" ( Domain / address-literal )
 *   Local-part     = Dot-string / Quoted-string
 *   Dot-string     = Atom *( "." Atom ); Atom = 1*atext
 *   Quoted-string  = DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE
 *   Domain         = sub-domain *( "." sub-domain )
 *   address-literal = "[" ( IPv4 / "IPv6:" IPv6 / tag ":" content ) "]"
 *
 * With SMTPUTF8, atext, qtextSMTP and sub-domain also take UTF8-non-ascii.
 * The parser walks the bytes once with an index; nothing is read past len.
 * Lengths are measured on the wire form (quotes and backslashes count).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "mail/address.h"

const char mail_addr_error_utf8[] = "non-ASCII address requires SMTPUTF8";

static _Thread_local char addr_errbuf[160];

static const char *addr_errorf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* addr_errorf - format an error into the thread-local buffer */
static const char *
addr_errorf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(addr_errbuf, sizeof(addr_errbuf), fmt, ap);
	va_end(ap);
	return addr_errbuf;
}

/* char_desc - a byte as "'x'" when printable, else "0xNN", for errors */
static const char *
char_desc(unsigned char c, char out[8])
{
	if (c > 32 && c < 127)
		snprintf(out, 8, "'%c'", c);
	else if (c == ' ')
		snprintf(out, 8, "space");
	else
		snprintf(out, 8, "0x%02x", c);
	return out;
}

bool
mail_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		int n = utf8_seq(p + i, len - i);

		if (n <= 0)
			return false;
		i += (size_t)n;
	}
	return true;
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

bool
mail_is_atext(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/*
 * ldh_check - check an ASCII domain name of n bytes: LDH labels of 1..63
 * octets not starting or ending with '-', at most 255 octets in all.
 */
static int
ldh_check(const char *d, size_t n, const char **error_r)
{
	size_t start = 0;
	char cd[8];

	if (n > MAIL_DOMAIN_MAX) {
		*error_r = "domain longer than 255 octets";
		return -1;
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && d[i] != '.') {
			if (!is_alnum((unsigned char)d[i]) && d[i] != '-') {
				*error_r = addr_errorf(
				    "invalid character %s in domain",
				    char_desc((unsigned char)d[i], cd));
				return -1;
			}
			continue;
		}
		if (i == start) {
			*error_r = "empty label in domain";
			return -1;
		}
		if (i - start > MAIL_LABEL_MAX) {
			*error_r = "domain label longer than 63 octets";
			return -1;
		}
		if (d[start] == '-' || d[i - 1] == '-') {
			*error_r = "domain label starts or ends with '-'";
			return -1;
		}
		start = i + 1;
	}
	return 0;
}

/* lower_n - ASCII lower-case n bytes in place */
static void
lower_n(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}

/*
 * literal_check - check "[...]" of n bytes: an IPv4 address, "IPv6:"
 * and an IPv6 address.  General (tagged) literals are refused: nothing
 * can deliver to them.
 */
static int
literal_check(const char *d, size_t n, const char **error_r)
{
	char ip[64];
	unsigned char bin[16];
	size_t in_len;
	const char *in;

	if (n < 2 || d[0] != '[' || d[n - 1] != ']') {
		*error_r = "unterminated address literal";
		return -1;
	}
	in = d + 1;
	in_len = n - 2;
	if (in_len == 0) {
		*error_r = "empty address literal";
		return -1;
	}
	if (in_len >= 5 && strncasecmp(in, "IPv6:", 5) == 0) {
		if (in_len - 5 >= sizeof(ip))
			goto bad6;
		memcpy(ip, in + 5, in_len - 5);
		ip[in_len - 5] = '\0';
		if (inet_pton(AF_INET6, ip, bin) != 1)
			goto bad6;
		return 0;
	}
	if (memchr(in, ':', in_len) != NULL) {
		*error_r = "unsupported address literal tag";
		return -1;
	}
	if (in_len >= sizeof(ip))
		goto bad4;
	memcpy(ip, in, in_len);
	ip[in_len] = '\0';
	if (inet_pton(AF_INET, ip, bin) != 1)
		goto bad4;
	return 0;
bad4:
	*error_r = "invalid IPv4 address literal";
	return -1;
bad6:
	*error_r = "invalid IPv6 address literal";
	return -1;
}

/* has_alabel - whether the ASCII name has a label starting "xn--" */
static bool
has_alabel(const char *d, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if ((i == 0 || d[i - 1] == '.') &&
		    strncasecmp(d + i, "xn--", 4) == 0)
			return true;
	return false;
}

/* empty_label - whether a dot-separated name has an empty label */
static bool
empty_label(const char *d, size_t n)
{
	if (n == 0 || d[0] == '.' || d[n - 1] == '.')
		return true;
	for (size_t i = 1; i < n; i++)
		if (d[i] == '.' && d[i - 1] == '.')
			return true;
	return false;
}

/*
 * domain_normalize_n - mail_domain_normalize on n bytes that need not be
 * NUL-terminated.  A-labels given in ASCII go through libidn2 too, so that
 * broken Punycode is refused and every name has one comparison form.
 */
static int
domain_normalize_n(
    const char *d, size_t n, char **ascii_r, const char **error_r)
{
	bool non_ascii = false;
	char *copy, *out = NULL;
	int rc;

	if (n == 0) {
		*error_r = "empty domain";
		return -1;
	}
	if (n > MAIL_DOMAIN_MAX) {
		*error_r = "domain longer than 255 octets";
		return -1;
	}
	if (d[0] == '[') {
		if (literal_check(d, n, error_r) < 0)
			return -1;
		copy = xstrndup(d, n);
		lower_n(copy, n);
		*ascii_r = copy;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)d[i] >= 0x80)
			non_ascii = true;
	if (empty_label(d, n)) {
		*error_r = "empty label in domain";
		return -1;
	}
	if (!non_ascii) {
		if (ldh_check(d, n, error_r) < 0)
			return -1;
		if (!has_alabel(d, n)) {
			copy = xstrndup(d, n);
			lower_n(copy, n);
			*ascii_r = copy;
			return 0;
		}
	} else if (!mail_utf8_valid(d, n)) {
		*error_r = "invalid UTF-8 in domain";
		return -1;
	}
	copy = xstrndup(d, n);
	lower_n(copy, n);
	rc = idn2_lookup_u8((const uint8_t *)copy, (uint8_t **)&out,
	    IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
	free(copy);
	if (rc != IDN2_OK) {
		*error_r = addr_errorf(
		    "invalid internationalized domain: %s", idn2_strerror(rc));
		return -1;
	}
	/* UTS #46 mapping may have produced anything; check the result. */
	if (ldh_check(out, strlen(out), error_r) < 0) {
		idn2_free(out);
		return -1;
	}
	copy = xstrdup(out);
	idn2_free(out);
	str_lower(copy);
	*ascii_r = copy;
	return 0;
}

int
mail_domain_normalize(const char *domain, char **ascii_r, const char **error_r)
{
	return domain_normalize_n(domain, strlen(domain), ascii_r, error_r);
}

/* A cursor over the bytes of one path. */
struct cursor {
	const unsigned char *s;
	size_t len;
	size_t i;
	unsigned opts;
	unsigned flags;
};

/*
 * take_non_ascii - at a byte >= 0x80: check that UTF-8 is allowed and that
 * a well-formed sequence starts here; append it to out (if given).
 */
static int
take_non_ascii(struct cursor *c, struct buf *out, const char **error_r)
{
	int n;

	if ((c->opts & MAIL_ADDR_ALLOW_UTF8) == 0) {
		*error_r = mail_addr_error_utf8;
		return -1;
	}
	n = utf8_seq(c->s + c->i, c->len - c->i);
	if (n <= 0) {
		*error_r = "invalid UTF-8 in address";
		return -1;
	}
	if (out != NULL)
		buf_append(out, c->s + c->i, (size_t)n);
	c->i += (size_t)n;
	c->flags |= MAIL_ADDR_UTF8;
	return 0;
}

/* parse_quoted - Quoted-string at c->i (the opening quote) into out */
static int
parse_quoted(struct cursor *c, struct buf *out, const char **error_r)
{
	char cd[8];

	c->i++;
	for (;;) {
		unsigned char ch;

		if (c->i >= c->len) {
			*error_r = "unterminated quoted local part";
			return -1;
		}
		ch = c->s[c->i];
		if (ch == '"') {
			c->i++;
			break;
		}
		if (ch == '\\') {
			if (c->i + 1 >= c->len || c->s[c->i + 1] < 32 ||
			    c->s[c->i + 1] > 126) {
				*error_r = "invalid quoted-pair in local part";
				return -1;
			}
			buf_append(out, c->s + c->i + 1, 1);
			c->i += 2;
		} else if (ch >= 0x80) {
			if (take_non_ascii(c, out, error_r) < 0)
				return -1;
		} else if (ch >= 32 && ch <= 126) {
			buf_append(out, &ch, 1);
			c->i++;
		} else {
			*error_r = addr_errorf(
			    "invalid character %s in quoted local part",
			    char_desc(ch, cd));
			return -1;
		}
	}
	c->flags |= MAIL_ADDR_QUOTED;
	return 0;
}

/* dot_string_error - say why no atom was found at c->i */
static void
dot_string_error(const struct cursor *c, bool first, const char **error_r)
{
	unsigned char ch = c->i < c->len ? c->s[c->i] : '\0';
	bool end = c->i >= c->len || ch == '@' || ch == '>' || ch == ' ';
	char cd[8];

	if (ch == '.' && c->i < c->len)
		*error_r = first ? "local part starts with '.'"
				 : "consecutive dots in local part";
	else if (!end)
		*error_r = addr_errorf(
		    "invalid character %s in local part", char_desc(ch, cd));
	else
		*error_r =
		    first ? "empty local part" : "local part ends with '.'";
}

/* parse_dot_string - Dot-string at c->i into out */
static int
parse_dot_string(struct cursor *c, struct buf *out, const char **error_r)
{
	for (;;) {
		size_t atom = c->i;

		while (c->i < c->len) {
			unsigned char ch = c->s[c->i];

			if (ch >= 0x80) {
				if (take_non_ascii(c, out, error_r) < 0)
					return -1;
			} else if (mail_is_atext(ch)) {
				buf_append(out, &ch, 1);
				c->i++;
			} else
				break;
		}
		if (c->i == atom) {
			dot_string_error(c, out->len == 0, error_r);
			return -1;
		}
		if (c->i >= c->len || c->s[c->i] != '.')
			return 0;
		buf_append(out, ".", 1);
		c->i++;
	}
}

/* parse_local - Local-part at c->i; *local_r gets the content */
static int
parse_local(struct cursor *c, char **local_r, const char **error_r)
{
	struct buf out = BUF_INIT;
	size_t start = c->i;
	int rc;

	if (c->i < c->len && c->s[c->i] == '"')
		rc = parse_quoted(c, &out, error_r);
	else
		rc = parse_dot_string(c, &out, error_r);
	if (rc == 0 && c->i - start > MAIL_LOCAL_MAX) {
		*error_r = "local part longer than 64 octets";
		rc = -1;
	}
	if (rc < 0) {
		buf_free(&out);
		return -1;
	}
	*local_r = xstrndup(out.data != NULL ? out.data : "", out.len);
	buf_free(&out);
	return 0;
}

/*
 * parse_domain - Domain or address-literal at c->i.  Stops at the first
 * byte that cannot be part of one; the caller checks what follows.  Sets
 * *domain_r (as given) and *ascii_r (normalized) when they are not NULL.
 */
static int
parse_domain(
    struct cursor *c, char **domain_r, char **ascii_r, const char **error_r)
{
	size_t start = c->i;
	char *ascii;

	if (c->i < c->len && c->s[c->i] == '[') {
		c->i++;
		while (c->i < c->len && c->s[c->i] != ']') {
			unsigned char ch = c->s[c->i];

			if (ch < 33 || ch > 126 || ch == '[' || ch == '\\') {
				*error_r =
				    "invalid character in address literal";
				return -1;
			}
			c->i++;
		}
		if (c->i >= c->len) {
			*error_r = "unterminated address literal";
			return -1;
		}
		c->i++;
		c->flags |= MAIL_ADDR_LITERAL;
	} else {
		while (c->i < c->len) {
			unsigned char ch = c->s[c->i];

			if (ch >= 0x80) {
				if (take_non_ascii(c, NULL, error_r) < 0)
					return -1;
			} else if (is_alnum(ch) || ch == '-' || ch == '.')
				c->i++;
			else
				break;
		}
	}
	if (c->i == start) {
		*error_r = "missing domain";
		return -1;
	}
	if (domain_normalize_n(
		(const char *)c->s + start, c->i - start, &ascii, error_r) < 0)
		return -1;
	if (ascii_r != NULL)
		*ascii_r = ascii;
	else
		free(ascii);
	if (domain_r != NULL)
		*domain_r = xstrndup((const char *)c->s + start, c->i - start);
	return 0;
}

/* parse_route - A-d-l ":" at c->i (an '@'); checked, then dropped */
static int
parse_route(struct cursor *c, const char **error_r)
{
	unsigned flags = c->flags;
	char cd[8];

	for (;;) {
		if (c->i >= c->len || c->s[c->i] != '@') {
			*error_r = "invalid source route";
			return -1;
		}
		c->i++;
		if (parse_domain(c, NULL, NULL, error_r) < 0)
			return -1;
		if (c->i < c->len && c->s[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->i < c->len && c->s[c->i] == ':') {
			c->i++;
			break;
		}
		if (c->i < c->len && c->s[c->i] != '>')
			*error_r = addr_errorf("invalid character %s in source "
					       "route",
			    char_desc(c->s[c->i], cd));
		else
			*error_r = "invalid source route";
		return -1;
	}
	/* Only the mailbox's own domain decides LITERAL and UTF8. */
	c->flags = flags | MAIL_ADDR_ROUTE;
	return 0;
}

/* at_end - whether c->i is where the mailbox must end */
static bool
at_end(const struct cursor *c, bool bracketed)
{
	if (bracketed)
		return c->i < c->len && c->s[c->i] == '>';
	return c->i >= c->len || c->s[c->i] == ' ';
}

/* parse_mailbox - Mailbox at c->i into out, up to the end of the path */
static int
parse_mailbox(struct cursor *c, bool bracketed, struct mail_addr *out,
    const char **error_r)
{
	char cd[8];

	if (parse_local(c, &out->local, error_r) < 0)
		return -1;
	if (c->i < c->len && c->s[c->i] == '@') {
		c->i++;
		if (parse_domain(c, &out->domain, &out->domain_ascii, error_r) <
		    0)
			return -1;
		if (at_end(c, bracketed))
			return 0;
		if (c->i >= c->len)
			*error_r = "missing '>'";
		else
			*error_r = addr_errorf("invalid character %s in domain",
			    char_desc(c->s[c->i], cd));
		return -1;
	}
	if (at_end(c, bracketed)) {
		if (c->opts & MAIL_ADDR_ALLOW_NODOMAIN)
			return 0;
		*error_r = "missing '@' and domain";
	} else if (c->i >= c->len)
		*error_r = "missing '>'";
	else
		*error_r = addr_errorf("invalid character %s in local part",
		    char_desc(c->s[c->i], cd));
	return -1;
}

int
mail_addr_parse_path(const char *s, size_t len, unsigned opts,
    struct mail_addr *out, size_t *consumed, const char **error_r)
{
	struct cursor c = { (const unsigned char *)s, len, 0, opts, 0 };
	bool bracketed = len > 0 && s[0] == '<';
	size_t wire;

	memset(out, 0, sizeof(*out));
	if (!bracketed && (opts & MAIL_ADDR_ALLOW_NOBRACKETS) == 0) {
		*error_r = len == 0 ? "empty address" : "missing '<'";
		return -1;
	}
	if (bracketed) {
		c.i = 1;
		if (len > 1 && s[1] == '>') {
			out->flags = MAIL_ADDR_NULL;
			*consumed = 2;
			return 0;
		}
	} else if (len == 0 || s[0] == ' ') {
		*error_r = "empty address";
		return -1;
	}
	if (c.i < c.len && c.s[c.i] == '@' && parse_route(&c, error_r) < 0)
		goto fail;
	if (parse_mailbox(&c, bracketed, out, error_r) < 0)
		goto fail;
	if (bracketed)
		c.i++;
	wire = bracketed ? c.i : c.i + 2;
	if (wire > MAIL_PATH_MAX) {
		*error_r = "path longer than 256 octets";
		goto fail;
	}
	out->flags = c.flags;
	*consumed = c.i;
	return 0;
fail:
	mail_addr_clear(out);
	return -1;
}

void
mail_addr_clear(struct mail_addr *a)
{
	free(a->local);
	free(a->domain);
	free(a->domain_ascii);
	memset(a, 0, sizeof(*a));
}

/* is_dot_string - whether a local part can be written without quotes */
static bool
is_dot_string(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (ch < 0x80 && !mail_is_atext(ch))
			return false;
	}
	return true;
}

char *
mail_addr_format(const struct mail_addr *a)
{
	struct buf b = BUF_INIT;

	if (a->local == NULL)
		return xstrdup("");
	if (is_dot_string(a->local))
		buf_puts(&b, a->local);
	else {
		buf_append(&b, "\"", 1);
		for (const char *p = a->local; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_append(&b, "\\", 1);
			buf_append(&b, p, 1);
		}
		buf_append(&b, "\"", 1);
	}
	if (a->domain != NULL) {
		buf_append(&b, "@", 1);
		buf_puts(&b, a->domain);
	}
	return b.data != NULL ? b.data : xstrdup("");
}

bool
mail_domain_is_normal(const char *d)
{
	size_t total = strlen(d);

	if (total == 0 || total > 253)
		return false;
	for (;;) {
		size_t n = strspn(d, "abcdefghijklmnopqrstuvwxyz0123456789-");

		if (n == 0 || n > 63 || d[0] == '-' || d[n - 1] == '-')
			return false;
		if (d[n] == '\0')
			return true;
		if (d[n] != '.')
			return false;
		d += n + 1;
	}
}
