/*
 * export.h - an account's contacts (all, a list's, a segment's) or its
 * suppressions as CSV or JSON Lines, produced page by page so that any
 * size streams in constant memory.
 *
 * Contacts, CSV: email,name,status,created,updated and one column per
 * custom field (by name); dates as ISO 8601 UTC.  JSON Lines: one object
 * per contact, {"email","name","status","created","updated","attribs"},
 * which `herald import --format jsonl` reads back.  Suppressions:
 * email,reason,created.  Each page is read by id (or address) after the
 * last one given, so a page never holds a transaction open between
 * calls, and what changes meanwhile shows up at most once.
 */
#ifndef HERALD_CONTACTS_EXPORT_H
#define HERALD_CONTACTS_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "store/store.h"

enum export_what { EXPORT_CONTACTS, EXPORT_SUPPRESSIONS };

struct export_spec {
	enum export_what what;
	int64_t list_id;	 /* contacts: 0, or only this list's */
	const char *list_status; /* with list_id: NULL any, or a status */
	const char *segment;	 /* contacts: NULL, or a filter's text */
	const char *format;	 /* "csv" or "jsonl" */
};

struct export;

/*
 * export_new - an export of the account; checks the list and compiles
 * the segment.  NULL with err (the segment's error names its column).
 */
struct export *export_new(struct store *s, int64_t account_id,
    const struct export_spec *spec, char *err, size_t errlen);

/*
 * export_next - append the next rows (at most max_rows; the CSV header
 * first) to out.  Returns 1 if more may follow, 0 at the end, -1 with
 * err.
 */
int export_next(struct export *e, struct buf *out, size_t max_rows, char *err,
    size_t errlen);

/* export_free - free *ep (may be NULL) and set it to NULL */
void export_free(struct export **ep);

/*
 * export_segment_sql - compile a segment's text against the account's
 * fields into q's where/params (store_contact_query); *owner_r keeps
 * what they point to: free it with export_segment_free.  0 or -1 (err
 * names the column).
 */
struct export_segment;
int export_segment_sql(struct store *s, int64_t account_id, const char *text,
    struct store_contact_query *q, struct export_segment **owner_r, char *err,
    size_t errlen);
void export_segment_free(struct export_segment **sp);

#endif
