/*
 * smtpc - the outbound SMTP client: one connection to one route.
 *
 * A connection is made to the first target that answers (the route's
 * hosts and addresses in order): a connect failure or timeout, a 4xx or
 * 5xx greeting or EHLO/HELO reply, a failed TLS handshake, or (with
 * tls = encrypt/verify) a server that does not offer STARTTLS or whose
 * certificate does not verify, makes it try the next target.  Once a
 * server has said hello (EHLO, falling back to HELO when EHLO gets
 * 5xx), has done STARTTLS as the policy asks, and has accepted AUTH when
 * cfg->auth_user is set, on_ready is called and the connection carries
 * transactions one after the other (connection reuse) until the owner
 * calls smtpc_quit() or something fails; then on_close is called, once,
 * and the connection frees itself.
 *
 * A transaction sends MAIL FROM (with SIZE, BODY=8BITMIME, SMTPUTF8,
 * RET, ENVID when the server announced the extension and the message
 * has them), one RCPT TO per recipient (NOTIFY, ORCPT when the server
 * announced DSN), then the message: BDAT when the server announced
 * CHUNKING, else DATA with dot-stuffing done here.  With PIPELINING the
 * commands go in one write (RFC 2920).  Before sending anything the
 * client refuses, with a permanent result that it makes up and marks
 * local:
 *   - a message larger than the server's SIZE: 552 5.3.4;
 *   - 8-bit data to a server without 8BITMIME: 554 5.6.3;
 *   - an SMTPUTF8 message to a server without SMTPUTF8: 553 5.6.7.
 *
 * Every reply is parsed with its RFC 3463 enhanced code when present.
 * Replies and multi-line replies are bounded (SMTPC_REPLY_MAX bytes kept
 * per reply, at most 100 lines); an over-long or malformed reply is a
 * protocol error that ends the connection (temporary failure).
 *
 * Logging: one line per connection event (connect, tls, ready, close)
 * and per transaction, component "smtp", with cid=.
 *
 * The process must ignore SIGPIPE: libevent writes with plain writev().
 */
#ifndef HERALD_MTA_SMTPC_H
#define HERALD_MTA_SMTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;

#define SMTPC_REPLY_MAX 512

enum smtpc_tls {
	SMTPC_TLS_NONE,	   /* never STARTTLS */
	SMTPC_TLS_MAY,	   /* STARTTLS when offered, no verification;
			      a failed handshake retries the same host
			      without TLS once */
	SMTPC_TLS_ENCRYPT, /* STARTTLS required, no verification */
	SMTPC_TLS_VERIFY,  /* STARTTLS required, certificate verified
			      against cfg->ssl_ctx's CA and the host name */
};

struct smtpc_config {
	const char *helo_name;
	enum smtpc_tls tls;
	SSL_CTX *ssl_ctx; /* from smtpc_ssl_ctx_new(); NULL only with TLS_NONE */
	const char *auth_user, *auth_password; /* AUTH PLAIN/LOGIN; NULL = none */
	uint64_t connect_timeout;	       /* ms, TCP connect */
	uint64_t greeting_timeout;	       /* ms, banner, EHLO, STARTTLS, AUTH */
	uint64_t command_timeout;	       /* ms, MAIL, RCPT, DATA, RSET, QUIT */
	uint64_t data_timeout; /* ms, sending the message and the final reply */
	bool use_chunking;     /* BDAT when announced */
};

struct smtpc_target {
	const char *host; /* name, for SNI, verification and logs */
	struct sockaddr_storage addr; /* with the port set */
	socklen_t addrlen;
};

/* One reply (or a failure the client describes itself). */
struct smtpc_result {
	int code;	/* 250, 451, 550...; 0 = no reply (connection
			   lost, timeout): temporary */
	char enh[16];	/* "5.1.1", or "" */
	char text[SMTPC_REPLY_MAX]; /* reply text without the codes, lines
				       joined by "; ", or the client's own
				       description */
	bool local;	/* made up by the client, not sent by the server */
};

struct smtpc_rcpt {
	const char *addr;    /* local@domain */
	unsigned notify;     /* SMTP_NOTIFY_* (mail/smtp_cmd.h), 0 = none */
	const char *orcpt;   /* "rfc822;addr" or NULL */
	struct smtpc_result result; /* filled by the client */
};

struct smtpc_txn {
	const char *sender; /* "" = null reverse-path */
	int ret;	    /* 0 none, 1 FULL, 2 HDRS */
	const char *envid;  /* or NULL */
	bool eightbit;	    /* the body has 8-bit bytes (BODY=8BITMIME) */
	bool smtputf8;	    /* needs SMTPUTF8 */
	struct smtpc_rcpt *rcpts;
	size_t nrcpts;
	/* The message: CRLF lines, not dot-stuffed.  head is sent first
	 * (e.g. DKIM-Signature fields), then body; either may be empty.
	 * Both stay owned by the caller until on_done. */
	const char *head;
	size_t headlen;
	const char *body;
	size_t bodylen;
	/* Filled by the client: each recipient's result is final (the RCPT
	 * reply when refused, else the reply to the message data, or the
	 * MAIL reply, or a local failure).  mail_result holds the reply to
	 * the end of data (or to MAIL when that failed, or the last RCPT
	 * refusal when every recipient was refused). */
	struct smtpc_result mail_result;
};

struct smtpc;

struct smtpc_peer {
	const char *host; /* target name */
	char addr[64];	  /* "192.0.2.1" or "2001:db8::1" */
	int port;
	const char *tls_version; /* "TLSv1.3", or NULL without TLS */
	const char *tls_cipher;	 /* or NULL */
	bool tls_verified;
};

struct smtpc_callbacks {
	/* ready for smtpc_send(); called after connecting and again after
	 * each transaction (from on_done's return) */
	void (*on_ready)(void *arg, struct smtpc *c);
	/* txn finished; every result filled; the connection stays usable
	 * unless on_close follows */
	void (*on_done)(void *arg, struct smtpc *c, struct smtpc_txn *txn);
	/* the connection is gone; error is NULL after a clean QUIT,
	 * otherwise why (for a connection that never became ready: the
	 * failure of the last target, with code 5xx if that target refused
	 * with a 5xx greeting or EHLO/HELO reply; a refused AUTH ends the
	 * connection without trying other targets, code 0 with the
	 * server's reply in the text).  A transaction in progress gets
	 * on_done (with code 0 results) before on_close. */
	void (*on_close)(void *arg, struct smtpc *c,
	    const struct smtpc_result *error);
};

/*
 * smtpc_ssl_ctx_new - a client TLS context; ca_file ("" = the system's
 * default paths) is used for TLS_VERIFY.  NULL with err on failure.
 */
SSL_CTX *smtpc_ssl_ctx_new(const char *ca_file, char *err, size_t errlen);

/*
 * smtpc_connect - start connecting to targets (copied) in order.
 * Callbacks run on base's loop.  Returns NULL only when out of memory
 * or ntargets is 0.
 */
struct smtpc *smtpc_connect(struct event_base *base,
    const struct smtpc_config *cfg, const struct smtpc_target *targets,
    size_t ntargets, const struct smtpc_callbacks *cb, void *arg);

/*
 * smtpc_send - start txn (its memory stays the caller's until on_done).
 * Only when ready (after on_ready or from on_done, before another
 * send); may be called from a callback.  Returns 0.
 */
int smtpc_send(struct smtpc *c, struct smtpc_txn *txn);

/*
 * smtpc_quit - send QUIT and close; on_close(NULL) follows.  Before the
 * connection is ready it just closes; during a transaction, QUIT follows
 * its end (and its on_done).
 */
void smtpc_quit(struct smtpc *c);

/* smtpc_abort - close at once without any callback (shutdown) */
void smtpc_abort(struct smtpc *c);

/* smtpc_peer_info - the server the connection is talking to */
const struct smtpc_peer *smtpc_peer_info(const struct smtpc *c);

/* smtpc_max_rcpts_hint - 0, reserved for LIMITS (RFC 9422) later */

#endif
