/*
 * session - one SMTP conversation, as a state machine (RFC 5321).
 *
 * smtpd.c owns listeners and loop threads and calls session_start() for
 * each accepted connection; from then on the session lives on that
 * loop's thread alone until it frees itself.
 */
#ifndef HERALD_SMTPD_SESSION_H
#define HERALD_SMTPD_SESSION_H

#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "smtpd/limits.h"
#include "smtpd/policy.h"
#include "smtpd/smtpd.h"
#include "spool/spool.h"

enum listener_kind {
	LISTENER_SUBMISSION,  /* RFC 6409, STARTTLS, AUTH */
	LISTENER_SUBMISSIONS, /* RFC 8314 implicit TLS */
	LISTENER_MX,	      /* inbound for Herald's own domains */
};

/* What every session of the server shares; read-only while serving. */
struct smtpd_shared {
	const struct smtpd_config *cfg;
	struct spool *spool;
	struct policy *policy;
	struct limits *limits;
	SSL_CTX *ssl_ctx; /* NULL when no certificate is configured */
	char *size_text;  /* max message size as text, for EHLO */
};

/* One loop thread's context. */
struct session_loop {
	struct event_base *base;
	const struct smtpd_shared *sh;
	char *scratch; /* one line or one chunk piece at a time */
	size_t scratch_len;
	int index;
	struct session *sessions; /* every live session of the loop */
};

/* session_listener_name - "submission", "submissions" or "mx" */
const char *session_listener_name(enum listener_kind kind);

/*
 * session_start - take over the accepted socket fd from sa and start the
 * conversation (greeting, or TLS handshake first on implicit TLS).
 * Checks the connection limits itself; over a limit it answers 421 and
 * closes.
 */
void session_start(struct session_loop *loop, evutil_socket_t fd,
    const struct sockaddr *sa, int salen, enum listener_kind kind);

/*
 * session_loop_drop_all - free every session of a stopped loop (the
 * server is exiting: messages being received are discarded, nothing
 * they hold was acknowledged).  Only after the loop and the spool's
 * committer have stopped.
 */
void session_loop_drop_all(struct session_loop *loop);

#endif
