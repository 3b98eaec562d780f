/*
 * smtpd - Herald's SMTP server: listeners, event-loop threads, sessions.
 *
 * One process runs server.threads event loops (libevent).  Every loop
 * accepts on every listening socket (the kernel hands each connection to
 * one of them) and serves its sessions alone, so a session never moves
 * between threads.  Blocking work stays off the loops: syncing happens in
 * the spool's committer thread, policy data (accounts, credentials,
 * sender domains, relay addresses) is read from the store by a policy
 * thread into an in-memory snapshot the loops consult.
 */
#ifndef HERALD_SMTPD_SMTPD_H
#define HERALD_SMTPD_SMTPD_H

#include <stdbool.h>
#include <stdint.h>

#include "spool/spool.h"

enum smtpd_sender_policy {
	SMTPD_SENDER_STRICT,   /* envelope sender and From: in the account's
				  domains */
	SMTPD_SENDER_ENVELOPE, /* envelope sender only */
	SMTPD_SENDER_NONE,     /* no check */
};

struct smtpd_config {
	char *hostname;
	char *submission_listen;  /* "host:port,host:port"; "" = off */
	char *submissions_listen; /* implicit TLS (RFC 8314) */
	char *mx_listen;
	char *inbound_domains;	  /* comma-separated */
	char *tls_cert, *tls_key; /* PEM files */
	int64_t threads;
	uint64_t max_message_size;
	int64_t max_recipients;
	int64_t max_connections;
	int64_t max_connections_per_ip;
	uint64_t command_line_max;
	uint64_t data_line_max;
	uint64_t max_header_size;
	uint64_t command_timeout; /* ms */
	uint64_t data_timeout;	  /* ms */
	uint64_t tls_handshake_timeout;
	int64_t max_errors;
	bool auth_over_plaintext;
	int64_t auth_max_failures;
	uint64_t auth_lockout;	  /* ms */
	uint64_t auth_fail_delay; /* ms, doubled per failure, at most 8 x */
	uint64_t greet_pause;	  /* ms */
	int sender_policy;	  /* enum smtpd_sender_policy */
	bool
	    require_8bitmime; /* reject 8-bit data sent without BODY=8BITMIME */
	uint64_t policy_refresh; /* ms between checks for store changes */
};

struct smtpd;

/*
 * smtpd_new - bind every configured listener and load the TLS
 * certificate and the policy snapshot from the store at store_url.
 * Nothing is served yet.  Returns NULL with a message in err.
 */
struct smtpd *smtpd_new(const struct smtpd_config *cfg, struct spool *spool,
    const char *store_url, char *err, size_t errlen);
/* smtpd_describe - print "listening: <kind> <address>" lines to out */
void smtpd_describe(const struct smtpd *s, void (*out)(const char *line));
/*
 * smtpd_run - start the loop threads, which serve until smtpd_stop();
 * returns at once.  Returns 0.
 */
int smtpd_run(struct smtpd *s);
/*
 * smtpd_stop - stop every loop and wait for the threads; sessions in
 * progress are dropped (nothing they hold was acknowledged).
 */
void smtpd_stop(struct smtpd *s);
/* smtpd_free - release everything; after smtpd_run returned */
void smtpd_free(struct smtpd **sp);

#endif
