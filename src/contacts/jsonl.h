/*
 * jsonl - the streaming JSON Lines reader for contact imports.
 *
 * Bytes go in through jsonl_feed() in chunks of any size; each line is
 * one JSON object and comes out through the row callback as a flat list
 * of key/value texts, with its 1-based line number.  What is read:
 *
 *   - a UTF-8 byte order mark at the very start is skipped; lines end
 *     at LF, a CR before it is dropped; a line of only white space is
 *     skipped silently;
 *   - values: a string as it is (escapes decoded); a number as its
 *     original JSON text, so integers of any size stay exact; true and
 *     false as "true" and "false"; null leaves the key out;
 *   - an object under "attribs", "fields", "custom_fields" or
 *     "attributes" (listmonk's export keeps custom fields in "attribs")
 *     is flattened: its keys follow the outer keys, a clash keeps both.
 *     Its values must be scalars; two such objects are merged;
 *   - a key given twice at the same level: the last value wins, in the
 *     first one's place (null removes the key);
 *   - a line that cannot be used is still handed to the callback, with
 *     an error naming the line (and the column, counted in characters,
 *     for a syntax error) and no keys, and reading goes on with the next
 *     line: a syntax error, a line that is not an object, an array or an
 *     object nested anywhere else, invalid UTF-8, "\u0000", more keys
 *     than keys_max (null ones included, a duplicate once), a line
 *     longer than line_max (its bytes are dropped as they come, not
 *     buffered).
 *
 * Memory stays within about three times line_max whatever the input.
 * Keys and values handed out are NUL-terminated valid UTF-8 without NUL
 * bytes.
 */
#ifndef HERALD_CONTACTS_JSONL_H
#define HERALD_CONTACTS_JSONL_H

#include <stddef.h>

#define JSONL_LINE_MAX (1024 * 1024) /* bytes of a line, CR included */
#define JSONL_KEYS_MAX 1000	     /* keys of a row, after flattening */

/* Limits of one reader; a zero member means its default above. */
struct jsonl_limits {
	size_t line_max;
	size_t keys_max;
};

/* One line; everything lives until the callback returns. */
struct jsonl_row {
	unsigned long line;	 /* 1-based line number */
	const char *error;	 /* NULL, or why the line is skipped (n = 0) */
	const char *const *keys; /* n keys, UTF-8, NUL-terminated */
	const char *const *values; /* n values as text */
	size_t n;
};

/*
 * Called per non-blank line, from inside jsonl_feed/jsonl_finish;
 * a non-zero return stops the reader and is returned by them.
 */
typedef int jsonl_cb(void *arg, const struct jsonl_row *row);

struct jsonl;

/*
 * jsonl_new - a reader.  lim may be NULL (defaults) and is copied.
 * Returns NULL when out of memory.
 */
struct jsonl *jsonl_new(
    const struct jsonl_limits *lim, jsonl_cb *cb, void *arg);

/*
 * jsonl_feed - read the next len bytes (not kept).  Returns 0, the
 * callback's non-zero value when it asked to stop (now or earlier:
 * nothing more is read), or -1 with the reason in err (out of memory,
 * or called after jsonl_finish), after which the reader is unusable.
 */
int jsonl_feed(
    struct jsonl *r, const void *data, size_t len, char *err, size_t errlen);

/*
 * jsonl_finish - end of input: read the last line if it has no newline.
 * Returns like jsonl_feed; calling it twice is an error.
 */
int jsonl_finish(struct jsonl *r, char *err, size_t errlen);

/* jsonl_free - free the reader and set *rp to NULL; NULL is fine. */
void jsonl_free(struct jsonl **rp);

#endif
