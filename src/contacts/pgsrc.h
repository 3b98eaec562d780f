/*
 * pgsrc - rows for an import, read from an account's own PostgreSQL
 * database with libpq.
 *
 * The account gives a connection (a libpq URI or key=value string) and
 * one SELECT (or WITH ... SELECT).  pgsrc_open connects and runs
 *
 *   BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY
 *   SET LOCAL statement_timeout = ...
 *   DECLARE herald_import NO SCROLL CURSOR FOR <query>
 *
 * and pgsrc_next hands out rows as text, fetching fetch_rows at a time,
 * so memory stays within one batch.  The read-only transaction is the
 * real guard against a query that writes (a data-modifying CTE, a
 * function that deletes); the checks on the query text (a single
 * statement: no ';' outside literals, quoted identifiers and comments)
 * and the extended protocol (one statement per message) only make the
 * mistake clearer.
 *
 * The connection runs on the Herald server, so nothing in it may make
 * libpq read the server's own files or reach its local sockets: the
 * options passfile, service, sslcert, sslkey, sslrootcert, sslcrl and
 * sslcrldir are refused, a host must be given and must not be a socket
 * directory, and the server user's ~/.pgpass and client certificate are
 * never read.  sslmode and the other options are allowed.
 *
 * Errors carry PostgreSQL's or libpq's message on one line and never the
 * password.
 */
#ifndef HERALD_CONTACTS_PGSRC_H
#define HERALD_CONTACTS_PGSRC_H

#include <stddef.h>
#include <stdint.h>

#define PGSRC_CONNECT_TIMEOUT_S 10
#define PGSRC_STATEMENT_TIMEOUT_S 300
#define PGSRC_FETCH_ROWS 1000
#define PGSRC_VALUE_MAX (64 * 1024)
#define PGSRC_QUERY_MAX (64 * 1024)

/* Limits of one source; a zero member means its default above. */
struct pgsrc_limits {
	int connect_timeout_s;	 /* to connect */
	int statement_timeout_s; /* per statement (DECLARE, each FETCH) */
	int fetch_rows;		 /* rows per FETCH */
	size_t value_max;	 /* bytes of one value */
};

struct pgsrc;

/*
 * pgsrc_open - connect with conninfo and open the cursor for query (both
 * copied as needed; lim may be NULL).  Returns the source, or NULL with
 * err: a refused option or query, or PostgreSQL's error.
 */
struct pgsrc *pgsrc_open(const char *conninfo, const char *query,
    const struct pgsrc_limits *lim, char *err, size_t errlen);

/*
 * pgsrc_columns - the query's column names (*n_r of them), valid until
 * pgsrc_close.  Returns 0.
 */
int pgsrc_columns(
    const struct pgsrc *p, const char *const **names_r, size_t *n_r);

/*
 * pgsrc_skip - skip the next n rows (to resume a job).  Returns 0 (also
 * when fewer rows were left) or -1 with err.
 */
int pgsrc_skip(struct pgsrc *p, uint64_t n, char *err, size_t errlen);

/*
 * pgsrc_next - the next row: *values_r has *n_r (the column count)
 * NUL-terminated texts, NULL for an SQL NULL, valid until the next call.
 * Returns 1 for a row, 0 at the end, or -1 with err.  A row holding a
 * value longer than value_max gives -1 with err naming the row and the
 * column; the next call goes on with the row after it.  After any other
 * error the source is unusable (further calls give -1).
 */
int pgsrc_next(struct pgsrc *p, const char *const **values_r, size_t *n_r,
    char *err, size_t errlen);

/* pgsrc_close - roll back, disconnect, free; sets *pp to NULL; NULL is fine */
void pgsrc_close(struct pgsrc **pp);

/*
 * pgsrc_conninfo_split - parse conninfo (URI or key=value) with libpq
 * and part it: *public_r is the same connection without the password
 * as "key='value' ..." text (quoted and escaped per libpq's rules),
 * *password_r the password or NULL when there is none; both malloc'd.
 * The refused options (see above) are refused here too.  Returns 0, or
 * -1 with err (libpq's parse error, with quoted parts blanked when the
 * string may hold a password).
 */
int pgsrc_conninfo_split(const char *conninfo, char **public_r,
    char **password_r, char *err, size_t errlen);

/*
 * pgsrc_conninfo_join - public_ci plus " password='...'" (escaped) as a
 * new string; password may be NULL (a copy of public_ci).  NULL when out
 * of memory.
 */
char *pgsrc_conninfo_join(const char *public_ci, const char *password);

#endif
