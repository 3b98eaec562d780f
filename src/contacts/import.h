/*
 * import.h - import jobs: contacts (or suppressions) from a CSV/TSV,
 * vCard or JSON Lines file, or from a PostgreSQL query, into an account.
 *
 * A job is a row of import_jobs (store.h).  import_run() reads its
 * source from the start, skips the rows_done rows an earlier run
 * committed, and writes the rest in batches: each batch's contacts and
 * the job's counters commit in one transaction, so a run killed at any
 * point resumes exactly where its last batch ended, and memory stays the
 * same whatever the size of the source.
 *
 * Options (the job's JSON object; import_options_check validates it):
 *   "mode":      "add" (default) | "upsert" | "update"
 *   "map":       { "Column header": target, ... } with target "email",
 *                "name", "first_name", "last_name", "reason"
 *                (suppressions), "ignore", or a custom field's name;
 *                without a map the columns are guessed (csvin_map_guess
 *                for the address and names; a header equal to a field's
 *                name, case and spaces aside, goes to that field)
 *   "overwrite": { "name" or field: "always" (default) | "if_empty" |
 *                "never" } for contacts that already exist
 *   "consent":   { "source": "...", "ip": "..." } - the record that lets
 *                this import subscribe again addresses that unsubscribed,
 *                bounced or are suppressed; without it they stay so
 *   "delimiter": "," | ";" | "\t" | "|" (CSV; default: detected)
 */
#ifndef HERALD_CONTACTS_IMPORT_H
#define HERALD_CONTACTS_IMPORT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define IMPORT_BATCH_ROWS 50000
#define IMPORT_CACHE (4 * 1024 * 1024)
#define IMPORT_WAL (200 * 1024 * 1024)
#define IMPORT_ERRORS_KEPT 1000

struct import_env {
	const char *data_dir; /* secrets/master.key: database sources */
	size_t batch_rows;    /* rows per transaction; 0: IMPORT_BATCH_ROWS */
	/* 0 members below take their IMPORT_ default */
	size_t errors_kept; /* bad rows kept per job; 0: IMPORT_ERRORS_KEPT */
	uint64_t cache;	    /* bytes of database page cache */
	uint64_t wal;	    /* bytes of write-ahead log between checkpoints */
	/* called after each batch commits, with the job as stored */
	void (*progress)(void *arg, const struct store_import_job *job);
	void *arg;
	/* when it becomes non-zero the run stops after the current batch,
	   leaving the job running (to resume later); may be NULL */
	volatile sig_atomic_t *stop;
};

/*
 * import_run - run (or resume) job id.  Returns 0 when the job ended
 * (done, or cancelled through store_import_set_state to 'cancelling'),
 * 1 when env->stop stopped it (still 'running'), -1 when it failed (its
 * state is 'failed' with the reason, also in err).
 */
int import_run(struct store *s, int64_t id, const struct import_env *env,
    char *err, size_t errlen);

/*
 * import_options_check - whether options (a JSON object) are valid for a
 * job of format in the account: unknown keys, modes, rules and fields
 * are errors naming the key.  0 or -1.
 */
int import_options_check(struct store *s, int64_t account_id,
    const char *format, const char *options, char *err, size_t errlen);

/*
 * import_email_normalize - the comparison form of an address from a
 * file: white space trimmed, "Name <addr>" and "mailto:" unwrapped, the
 * domain lower-cased with U-labels as A-labels (libidn2); the local part
 * is kept as given (RFC 5321: only the receiving host may fold its
 * case).  0, or -1 with *why_r.
 */
int import_email_normalize(
    const char *in, char *out, size_t outlen, const char **why_r);

/* import_format_valid - csv, tsv, vcard, jsonl, postgresql, suppressions */
int import_format_valid(const char *format);

#endif
