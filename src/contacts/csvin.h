/*
 * csvin - the streaming CSV/TSV reader for contact imports.
 *
 * Bytes go in through csvin_feed() in chunks of any size and come out
 * one record at a time through the row callback, as UTF-8 fields with
 * the line number on which the record starts.  The parsing itself is
 * libcsv's (RFC 4180 plus its usual leniencies); this module adds what
 * an importer needs around it:
 *
 *   - a UTF-8 byte order mark at the start is skipped;
 *   - the delimiter is ',' ';' TAB or '|', given or detected: the one seen
 *     most often outside quotes on the first record's line (ties go to
 *     ',' then ';' then TAB then '|'; none at all gives ',');
 *   - records end at LF, CRLF or a lone CR; blank lines give nothing;
 *   - spaces (and tabs, unless TAB is the delimiter) around a field are
 *     trimmed; inside quotes they are kept, as are newlines and "" (one
 *     quote);
 *   - encoding, decided per file: the first 64 KiB are read before any
 *     record is parsed; if they hold a byte sequence that is not valid
 *     UTF-8 the whole file is read as Windows-1252 (a superset of the
 *     printable Latin-1).  Otherwise it is UTF-8, until a record holds an
 *     invalid sequence: from that record on the file is read as
 *     Windows-1252 (records already delivered stay as they were).
 *     Every field handed out is valid UTF-8;
 *   - line numbers count LF from 1; a quoted newline advances them, so a
 *     record's number is the physical line where it starts;
 *   - limits: a record with too many fields, a field too long or a
 *     record too long (counted in UTF-8 bytes of field content) is not
 *     parsed into fields: the callback gets it with CSVIN_ROW_SKIPPED, its
 *     line and a reason, and reading goes on with the next record.
 *     Memory stays within about the limits whatever the input.
 *
 * The first record is flagged CSVIN_ROW_HEADER; whether it is a header
 * is the caller's call (csvin_map_guess() helps).
 */
#ifndef HERALD_CONTACTS_CSVIN_H
#define HERALD_CONTACTS_CSVIN_H

#include <stddef.h>

#define CSVIN_MAX_FIELDS 1000
#define CSVIN_MAX_FIELD_BYTES (64 * 1024)
#define CSVIN_MAX_RECORD_BYTES (1024 * 1024)

/* struct csvin_row flags */
#define CSVIN_ROW_HEADER 0x01  /* the first record of the input */
#define CSVIN_ROW_SKIPPED 0x02 /* over a limit or broken: no fields */

/* Limits; a zero member takes the CSVIN_MAX_ default. */
struct csvin_limits {
	size_t max_fields;	 /* fields per record */
	size_t max_field_bytes;	 /* bytes of one field, UTF-8 */
	size_t max_record_bytes; /* bytes of all fields of a record, UTF-8 */
};

/*
 * One record.  fields[i] is NUL-terminated UTF-8 (it may also hold NUL
 * bytes: trust lens[i]); everything lives until the callback returns.
 */
struct csvin_row {
	unsigned long line;	   /* physical line where the record starts */
	unsigned int flags;	   /* CSVIN_ROW_* */
	const char *reason;	   /* why, when CSVIN_ROW_SKIPPED; else NULL */
	const char *const *fields; /* nfields of them */
	const size_t *lens;
	size_t nfields;
};

/* Called per record, from inside csvin_feed/csvin_finish; non-zero stops. */
typedef int csvin_row_cb(void *arg, const struct csvin_row *row);

/* Column indexes found by csvin_map_guess; -1 when absent. */
struct csvin_map {
	long email;
	long first_name;
	long last_name;
	long full_name;
};

struct csvin;

/*
 * csvin_new - a reader.  lim may be NULL (defaults) and is copied; delim
 * is ',', ';', '\t', '|', or 0 to detect it.  Returns NULL on a bad delim or
 * when out of memory.
 */
struct csvin *csvin_new(
    const struct csvin_limits *lim, int delim, csvin_row_cb *cb, void *arg);

/*
 * csvin_feed - parse the next len bytes (the input is not kept).
 * Returns 0, 1 when the callback asked to stop (now or earlier: nothing
 * more is parsed), or -1 with the reason in err (out of memory) after
 * which the reader is unusable.
 */
int csvin_feed(
    struct csvin *r, const void *data, size_t len, char *err, size_t errlen);

/*
 * csvin_finish - end of input: deliver the last record.  Returns 0, 1
 * when stopped, or -1 with err naming the line: out of memory, or a
 * quoted field still open at the end (that record is also handed to
 * the callback as CSVIN_ROW_SKIPPED).
 */
int csvin_finish(struct csvin *r, char *err, size_t errlen);

/* csvin_delim - the delimiter in use, 0 while not decided yet. */
int csvin_delim(const struct csvin *r);

/* csvin_free - free the reader and set *rp to NULL; NULL is fine. */
void csvin_free(struct csvin **rp);

/*
 * csvin_map_guess - find the e-mail, first, last and full name columns
 * of a header record as Google Contacts, Outlook, Thunderbird, Yahoo,
 * Mailchimp and listmonk write them (case and surrounding space
 * ignored; the first matching column wins).  Returns 0 when an e-mail
 * column was found, -1 otherwise.
 */
int csvin_map_guess(const char *const *header, size_t n, struct csvin_map *out);

#endif
