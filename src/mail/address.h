/*
 * address - RFC 5321 paths and mailboxes, RFC 6531 (SMTPUTF8) and IDN.
 *
 * mail_addr_parse_path() reads the Path of a MAIL FROM or RCPT TO
 * command: "<" [A-d-l ":"] Mailbox ">", or "<>".  The local part is kept
 * as content (quotes and quoted-pair backslashes removed); the domain is
 * kept as given and also in a normalized form (lower case, A-labels) that
 * is the one to compare, look up and store.  mail_addr_format() turns the
 * parts back into text, quoting the local part when it must.
 *
 * Policy (percent hacks, bang paths, who may send what) is not decided
 * here: anything RFC 5321 allows parses.
 *
 * Error strings returned through error_r are static or live in a
 * thread-local buffer that the next call into this module in the same
 * thread may overwrite.
 */
#ifndef HERALD_MAIL_ADDRESS_H
#define HERALD_MAIL_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1 size limits, in octets */
#define MAIL_LOCAL_MAX 64
#define MAIL_DOMAIN_MAX 255
#define MAIL_LABEL_MAX 63
#define MAIL_PATH_MAX 256

/* struct mail_addr flags */
#define MAIL_ADDR_QUOTED 0x01  /* local part was a Quoted-string */
#define MAIL_ADDR_LITERAL 0x02 /* domain is an address literal */
#define MAIL_ADDR_UTF8 0x04    /* local part or domain has non-ASCII */
#define MAIL_ADDR_ROUTE 0x08   /* a source route was given and dropped */
#define MAIL_ADDR_NULL 0x10    /* the null path "<>" */

/* mail_addr_parse_path opts */
#define MAIL_ADDR_ALLOW_UTF8 0x01 /* RFC 6531 UTF-8 local part, U-labels */
#define MAIL_ADDR_ALLOW_NOBRACKETS 0x02 /* accept a bare mailbox without <> */
#define MAIL_ADDR_ALLOW_NODOMAIN 0x04	/* accept "<local>" (Postmaster) */

struct mail_addr {
	char *local;  /* local part content; NULL for the null path */
	char *domain; /* as given: name (maybe U-labels) or "[...]"; or NULL */
	char *domain_ascii; /* lower case, A-labels; or NULL */
	unsigned flags;	    /* MAIL_ADDR_* */
};

/*
 * mail_addr_error_utf8 - the error string (compare the pointer) that
 * mail_addr_parse_path() gives for non-ASCII input when
 * MAIL_ADDR_ALLOW_UTF8 is not set, so that a caller can answer with the
 * RFC 6531 reply rather than a plain syntax error.
 */
extern const char mail_addr_error_utf8[];

/*
 * mail_addr_parse_path - parse an RFC 5321 Path from the len bytes at s.
 *
 * The Path must start at s[0].  On success returns 0, fills *out (owned
 * by the caller, release with mail_addr_clear) and sets *consumed to the
 * number of bytes used: up to and including the '>', or, for a bare
 * mailbox (MAIL_ADDR_ALLOW_NOBRACKETS), up to the first space or len.
 * Bytes after that are not looked at.  "<>" gives local == domain == NULL
 * and MAIL_ADDR_NULL.  A source route is checked and dropped
 * (MAIL_ADDR_ROUTE).  Without MAIL_ADDR_ALLOW_NODOMAIN a mailbox needs
 * "@domain"; with it, "<local>" gives domain == domain_ascii == NULL.
 *
 * On failure returns -1, leaves *out zeroed and sets *error_r to a short
 * description of what is wrong (mail_addr_error_utf8 for non-ASCII that
 * was not allowed).  s need not be NUL-terminated and may hold any bytes.
 */
int mail_addr_parse_path(const char *s, size_t len, unsigned opts,
    struct mail_addr *out, size_t *consumed, const char **error_r);

/* mail_addr_clear - free the members of a and zero it; a may be zeroed */
void mail_addr_clear(struct mail_addr *a);

/*
 * mail_addr_format - a as text: "local@domain" with the domain as given
 * and the local part written as an RFC 5321 Quoted-string when it is not
 * a Dot-string; "local" when there is no domain; "" for the null path.
 * Returns a malloc'd string the caller frees.
 */
char *mail_addr_format(const struct mail_addr *a);

/*
 * mail_domain_normalize - check a domain and return its comparison form.
 *
 * domain is a NUL-terminated name of dot-separated labels (ASCII LDH or,
 * when it is valid UTF-8, U-labels) or an address literal "[1.2.3.4]",
 * "[IPv6:...]".  On success returns 0 and sets *ascii_r to a malloc'd
 * lower-case copy with U-labels converted to A-labels (IDNA2008 lookup
 * via libidn2, UTS #46 non-transitional); literals are checked with
 * inet_pton and only lower-cased.  Labels must be 1..63 octets of
 * letters, digits and hyphens, not starting or ending with a hyphen;
 * the whole name at most 255 octets.  On failure returns -1, sets
 * *error_r and leaves *ascii_r untouched.
 */
int mail_domain_normalize(
    const char *domain, char **ascii_r, const char **error_r);

/*
 * mail_domain_is_normal - whether d is already in the form
 * mail_domain_normalize returns for a name (not a literal): lower-case
 * labels of [a-z0-9-], 1..63 octets, no leading or trailing hyphen, no
 * trailing dot, at most 253 octets.  What the store keeps and what may
 * name a directory.
 */
bool mail_domain_is_normal(const char *d);

/* mail_is_atext - RFC 5321 atext (RFC 5322 3.2.3), ASCII only */
bool mail_is_atext(unsigned char c);

/*
 * mail_utf8_valid - whether the len bytes at s are well-formed UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
 * NUL bytes count as valid here; callers that care reject them first.
 */
bool mail_utf8_valid(const char *s, size_t len);

#endif
