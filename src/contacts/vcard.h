/*
 * vcard - a streaming reader of vCard files for contact imports.
 *
 * Reads vCard 4.0 (RFC 6350), 3.0 (RFC 2426) and the 2.1 that old
 * Outlook versions and phones export.  Bytes go in with vcard_feed() in
 * chunks of any size; each complete card comes out through the callback
 * with what an import needs: FN, N (family, given), ORG and every EMAIL
 * in order with its TYPE list and preference.  Other properties are
 * counted against the limits and otherwise ignored.
 *
 * What is understood: several cards per file; a UTF-8 BOM; CRLF or LF;
 * folded lines (a line break then a space or tab); in a property whose
 * parameters say QUOTED-PRINTABLE, a "=" at the end of a line also
 * continues it (2.1's soft line break); groups ("item1.EMAIL"); names
 * and parameters in any case; quoted parameter values and comma lists;
 * 2.1's bare parameters ("EMAIL;INTERNET;PREF:"); 3.0's "type=pref" and
 * 4.0's "PREF=1"; ENCODING=QUOTED-PRINTABLE with CHARSET=UTF-8 or a
 * Latin-1 charset; the backslash escapes \n \N \, \; \: \\ (any other
 * backslash is kept as it is).  Of N the first two components are
 * given, of ORG the first; the first FN, N, ORG and VERSION count.
 *
 * Output strings are valid UTF-8 without NUL bytes: a value whose
 * CHARSET names ISO-8859-1 (or latin1, windows-1252, us-ascii) is
 * converted from Latin-1; any other value that is not valid UTF-8 is
 * taken as Latin-1 and converted as a whole.  So a string is at most
 * twice the line limit.  Bare CR bytes are dropped everywhere.
 *
 * A card that is broken is skipped and reported through the same
 * callback (with an error string naming the line), and reading goes on
 * with the next BEGIN:VCARD: a BEGIN:VCARD inside a card (the inner one
 * starts a new card), a card with no END:VCARD at the end of the input,
 * a card over one of the limits.  Lines outside cards are ignored.
 */
#ifndef HERALD_CONTACTS_VCARD_H
#define HERALD_CONTACTS_VCARD_H

#include <stddef.h>

#define VCARD_LINE_MAX (64 * 1024)   /* octets of a line after unfolding */
#define VCARD_PROPS_MAX 1000	     /* properties per card */
#define VCARD_EMAILS_MAX 100	     /* EMAIL properties per card */
#define VCARD_CARD_MAX (1024 * 1024) /* octets from BEGIN to END */

/* Limits of one reader; a zero member means its default above. */
struct vcard_limits {
	size_t line_max;
	size_t props_max;
	size_t emails_max;
	size_t card_max;
};

struct vcard_email {
	const char *value; /* the address as given, trimmed */
	const char *types; /* lower case, comma-separated: "internet,work";
			      "" if none; "pref" is not listed here */
	unsigned pref;	   /* 1 (most preferred) to 100; 0 if not said */
};

struct vcard {
	unsigned long line;  /* line of its BEGIN:VCARD (1-based) */
	const char *version; /* "2.1", "3.0", "4.0" as given, or NULL */
	const char *fn;	     /* formatted name, or NULL */
	const char *family;  /* N: first component, or NULL */
	const char *given;   /* N: second component, or NULL */
	const char *org;     /* ORG: first component (the name), or NULL */
	const struct vcard_email *emails; /* in the order of the card */
	size_t nemails;
};

/*
 * vcard_cb - called once per card, in input order.  For a card that was
 * read, error is NULL.  For a card that was skipped, error says where
 * and why ("line 12: ...") and card has only line set (the rest NULL or
 * 0).  card and everything it points to live until the callback
 * returns; copy what you keep.  Do not free the reader from inside.
 */
typedef void vcard_cb(void *arg, const struct vcard *card, const char *error);

/* vcard_limits_default - fill *l with the default limits */
void vcard_limits_default(struct vcard_limits *l);

/*
 * vcard_new - a reader with the limits *limits (copied; NULL for the
 * defaults) that calls cb(arg, ...) for each card.  Never NULL.
 */
struct vcard_reader *vcard_new(
    const struct vcard_limits *limits, vcard_cb *cb, void *arg);

/*
 * vcard_feed - read the next len bytes of the input; cards completed by
 * them are passed to the callback before it returns.  Returns 0, or -1
 * with a reason in err when called after vcard_finish().  Problems in
 * the input never fail the call: they are reported per card.
 */
int vcard_feed(struct vcard_reader *r, const void *data, size_t len, char *err,
    size_t errlen);

/*
 * vcard_finish - the input is complete: read its last line and report a
 * card left open.  Returns the number of cards read (not skipped), or
 * -1 with a reason in err if called twice.
 */
long vcard_finish(struct vcard_reader *r, char *err, size_t errlen);

/* vcard_free - free *rp (may be NULL) and set it to NULL */
void vcard_free(struct vcard_reader **rp);

#endif
