/*
 * mta - the delivery engine: takes committed messages from the spool and
 * delivers each recipient to its destination, with retries, throttling,
 * DKIM signatures, bounces (DSNs) and a message log.
 *
 * Threads: one event loop (the engine thread) owns every queue structure,
 * the DNS resolver and every outbound connection; worker threads do the
 * blocking work (reading spool files, DKIM signing, writing DSNs into the
 * spool); one log writer thread writes delivery events to the store in
 * batches and, once a finished message's events are written, removes its
 * spool file.  The control socket (<data>/control.sock) is served by the
 * engine thread, so `herald queue ...` commands act on the live queue.
 */
#ifndef HERALD_MTA_MTA_H
#define HERALD_MTA_MTA_H

#include <stdbool.h>
#include <stdint.h>

#include "spool/spool.h"

struct mta_config {
	bool enabled;
	char *helo_name; /* "" = the host name given to mta_new */
	int64_t smtp_port;
	char *relayhost; /* "" = none; "host:port" or "[host]:port" */
	char *relayhost_user, *relayhost_password;
	char *destinations; /* per-destination file; "" = <data>/destinations */
	int tls;	    /* enum smtpc_tls */
	char *tls_ca_file;
	int64_t concurrency, initial_concurrency;
	char *rate; /* "" or "N/s", "N/m", "N/h" */
	int64_t messages_per_connection, recipients_per_message;
	int64_t max_connections, account_concurrency;
	char *retry_schedule; /* "5m,10m,..." */
	uint64_t max_queue_lifetime; /* ms */
	uint64_t delay_warning;	     /* ms; 0 = none */
		uint64_t connect_timeout, greeting_timeout, command_timeout,
	    data_timeout; /* ms */
	uint64_t connection_cache_time; /* ms an idle connection is kept */
	int64_t workers;
	uint64_t dsn_max_return; /* bytes of the original returned in full */
	uint64_t log_retention;	 /* ms the message log is kept; 0 = ever */
	char *dns_local_data, *dns_resolv_conf;
	bool dns_ipv6;
};

struct mta;

/*
 * mta_new - check the configuration (destinations file, retry schedule,
 * DNS local data, TLS CA) and open what the engine needs; nothing runs
 * yet.  data_dir holds control.sock and the DKIM keys.  Returns NULL
 * with a message in err.
 */
struct mta *mta_new(const struct mta_config *cfg, const char *hostname,
    const char *data_dir, const char *store_url, struct spool *spool,
    char *err, size_t errlen);
/*
 * mta_run - start the threads: the spool is scanned for queued messages
 * (recovery) and new ones are taken as they are committed.  Returns 0,
 * or -1 with err (e.g. the control socket cannot be bound).
 */
int mta_run(struct mta *m, char *err, size_t errlen);
/* mta_stop - stop delivering; connections in progress are dropped */
void mta_stop(struct mta *m);
/* mta_free - after mta_stop */
void mta_free(struct mta **mp);

#endif
