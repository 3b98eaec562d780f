/*
 * dest - per-destination delivery settings: the destinations file, and
 * the small value syntaxes the engine's settings share.
 *
 * The file has one destination per line, like Postfix's transport and
 * TLS policy maps in one place:
 *
 *   # domain        settings
 *   *               tls=may concurrency=20
 *   gmail.com       concurrency=5 rate=10/s
 *   .example.net    relay=[10.0.0.5]:2525 tls=encrypt
 *   example.org     relay=smtp.example.org:587
 *
 * A domain is matched exactly, then by its parent domains written with a
 * leading dot, then by "*"; settings not given on the matching line come
 * from the "*" line, then from the engine's global settings.  Keys:
 * relay=HOST:PORT (deliver there, no MX lookup), tls=none|may|encrypt|
 * verify, concurrency=N, initial_concurrency=N, rate=N/s|N/m|N/h,
 * messages_per_connection=N, recipients_per_message=N.  Errors name the
 * file, the line and the key.  Lines are at most 4 KiB; at most 100,000
 * lines.
 */
#ifndef HERALD_MTA_DEST_H
#define HERALD_MTA_DEST_H

#include <stddef.h>
#include <stdint.h>

struct dest_policy {
	char *relay_host; /* NULL: MX hosts of the domain */
	int relay_port;
	int tls; /* enum smtpc_tls */
	int64_t concurrency, initial_concurrency;
	int64_t messages_per_connection, recipients_per_message;
	double rate; /* messages per second; 0 = no limit */
};

struct dest_table;

/*
 * dest_table_load - read path (NULL or a missing file with optional set:
 * no per-destination lines) over defaults (copied).  NULL with err.
 */
struct dest_table *dest_table_load(const char *path, int optional,
    const struct dest_policy *defaults, char *err, size_t errlen);
void dest_table_free(struct dest_table **tp);
/* dest_table_lookup - the settings for domain (lower case); never NULL */
const struct dest_policy *dest_table_lookup(
    const struct dest_table *t, const char *domain);

/* dest_parse_rate - "10/s", "600/m", "3600/h" to per second; "" = 0 */
int dest_parse_rate(const char *s, double *rate_r, char *err, size_t errlen);
/*
 * dest_parse_schedule - "5m,10m,1h" to milliseconds (malloc'd array of
 * at least one step).  0, or -1 with err.
 */
int dest_parse_schedule(
    const char *s, uint64_t **steps_r, size_t *n_r, char *err, size_t errlen);
/*
 * dest_parse_hostport - "host:port", "[host]:port", "[v6addr]:port" or
 * "host" (port defport).  *host_r malloc'd.  0, or -1 with err.
 */
int dest_parse_hostport(const char *s, int defport, char **host_r,
    int *port_r, char *err, size_t errlen);

#endif
