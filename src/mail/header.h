/*
 * header - RFC 5322 header section helpers.
 *
 * A header block is the bytes of a message's header section as received,
 * with CRLF or bare LF line endings, up to but not including the empty
 * line.  These helpers find fields in it and read the domains of the
 * mailboxes in an address-list field (From:, Sender:, Reply-To:), which
 * is what sender policy compares against the authenticated identity.
 * RFC 6532 UTF-8 is accepted in the values.
 */
#ifndef HERALD_MAIL_HEADER_H
#define HERALD_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* Limits of header_addr_domains */
#define HEADER_ADDR_MAX 1000	    /* mailboxes in one list */
#define HEADER_COMMENT_DEPTH_MAX 32 /* nesting of ( comments ) */

/*
 * header_has_field - whether the block has a field called name (ASCII
 * case-insensitive) at the start of a line that is not a continuation
 * line.  White space between the name and the colon is tolerated
 * (RFC 5322 obs-optional).  An empty line ends the search, so a block
 * given with its body never matches in the body.  Only len bytes are read.
 */
bool header_has_field(const char *hdr, size_t len, const char *name);

/*
 * header_field_value - the value of the first field called name: the text
 * after the colon with folding undone (CRLF or LF before WSP removed, the
 * WSP kept), leading and trailing WSP dropped and the line ending
 * removed.  Returns a malloc'd string the caller frees, or NULL when there
 * is no such field.  A NUL byte in the value ends the string early.
 */
char *header_field_value(const char *hdr, size_t len, const char *name);

/*
 * header_addr_domains - the domain of every mailbox in an RFC 5322
 * address-list value (NUL-terminated, unfolded or not).
 *
 * Understands display names (atoms, quoted strings, obs-phrase dots),
 * angle-addrs with obs-route, bare addr-specs, groups ("x: a@b, c@d;",
 * also empty ones), nested comments, folding white space and empty list
 * elements (obs-addr-list).  Local parts are word *("." word); domains
 * are dot-atoms or address literals.
 *
 * On success returns 0 and sets *domains_r to a malloc'd array of *n_r
 * malloc'd domains, in order of appearance and not deduplicated, each
 * normalized by mail_domain_normalize (lower case, A-labels); free them
 * with header_domains_free.  A list of only empty groups gives n = 0 and
 * *domains_r = NULL.  On failure (an empty value, bad syntax, a mailbox
 * without a domain, a bad domain, more than HEADER_ADDR_MAX mailboxes)
 * returns -1 and sets *error_r to a reason valid until the next call in
 * the same thread.
 */
int header_addr_domains(
    const char *value, char ***domains_r, size_t *n_r, const char **error_r);

/* header_domains_free - free what header_addr_domains returned */
void header_domains_free(char **domains, size_t n);

#endif
