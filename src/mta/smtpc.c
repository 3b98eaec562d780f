/*
 * smtpc.c - the outbound SMTP client (RFC 5321 with PIPELINING 2920,
 * SIZE 1870, 8BITMIME 6152, SMTPUTF8 6531, DSN 3461, CHUNKING 3030,
 * STARTTLS 3207, AUTH 4954 and enhanced status codes 2034/3463): one
 * connection to one route, carrying transactions one after the other.
 * The contract is in smtpc.h.
 *
 * Design notes.
 *
 * 1. States and what moves between them:
 *
 *    state      waiting for                 next
 *    ---------  --------------------------  -------------------------------
 *    CONNECT    TCP connect (or the kick    GREETING
 *               that starts a target)
 *    GREETING   the banner                  EHLO (sent)
 *    EHLO       the EHLO reply              HELO on 5xx, else STARTTLS,
 *                                           AUTH or READY
 *    HELO       the HELO reply              AUTH or READY
 *    STARTTLS   220 to STARTTLS             TLS
 *    TLS        the handshake               EHLO (sent again)
 *    AUTH       235 (334: next LOGIN step)  READY
 *    READY      smtpc_send, smtpc_quit      MAIL, QUIT
 *    MAIL       the MAIL reply              RCPT, or RSET when refused
 *    RCPT       one reply per RCPT          DATA or BDAT, or RSET when
 *                                           every recipient was refused
 *    DATA       354                         DOT (message sent)
 *    DOT        the reply to "."            READY, or RSET after a refusal
 *    BDAT       the reply to BDAT n LAST    READY, or RSET after a refusal
 *    RSET       the RSET reply              READY
 *    QUIT       221, EOF or the timeout     CLOSED
 *    CLOSED     the kick, to report         (freed)
 *
 *    Before READY, a failure moves to the next target (CONNECT again);
 *    with TLS_MAY a failed handshake first retries the same target in
 *    plaintext.  A refused AUTH, and any failure from READY on, close.
 * 2. With PIPELINING, MAIL, every RCPT and DATA (or BDAT with the
 *    message) leave in one write; MAIL, RCPT and DATA then only count
 *    the replies as they come back, in order.
 * 3. Callbacks run only from the kick event (kick_cb): never from the
 *    API functions nor from the bufferevent callbacks.  So the owner may
 *    call any smtpc_* function from a callback, and the object is freed
 *    only by the kick, or by smtpc_abort() outside a callback.
 * 4. A bufferevent that is done with is retired, then freed by the kick,
 *    always before on_done: the message is referenced by the output
 *    buffer (evbuffer_add_reference), not copied, and becomes the
 *    caller's again with on_done.
 * 5. One timer bounds every wait.  While the message is being written
 *    it is re-armed whenever the output buffer drains a little, so
 *    data_timeout limits a stall, not the length of the transfer.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mail/smtp_cmd.h"
#include "mta/smtpc.h"

#define REPLY_LINE_MAX 4096 /* octets in one reply line, without CRLF */
#define REPLY_LINES_MAX 100 /* lines in one multi-line reply */
#define REPLY_STR_MAX (SMTPC_REPLY_MAX + 32) /* "554 5.7.1 " + text */
/* Ciphertext waiting under the TLS layer, so the message leaves as fast
 * as the network takes it rather than all at once into memory. */
#define TLS_OUTPUT_MAX (64 * 1024)

enum state {
	ST_CONNECT,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_TLS,
	ST_AUTH,
	ST_READY,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_DOT,
	ST_BDAT,
	ST_RSET,
	ST_QUIT,
	ST_CLOSED,
};

enum auth_step { AUTH_LOGIN_USER, AUTH_LOGIN_PASS, AUTH_SENT };

/* What the server announced in its EHLO reply. */
struct caps {
	bool pipelining, eightbitmime, smtputf8, dsn, chunking, starttls;
	bool auth_plain, auth_login, size;
	uint64_t size_max; /* 0 = no limit given */
};

/* The reply being read. */
struct reply {
	int code;
	unsigned nlines;
	size_t len;
	char enh[16];
	char text[SMTPC_REPLY_MAX];
};

struct smtpc {
	struct event_base *base;
	struct smtpc_config cfg; /* strings copied, ssl_ctx referenced */
	struct smtpc_target *targets;
	size_t ntargets, cur;
	struct smtpc_callbacks cb;
	void *arg;
	char cid[11];

	enum state state;
	struct bufferevent *bev, *dead_bev;
	struct evbuffer_cb_entry *out_cb;
	struct event *kick, *timer;

	/* The target being talked to. */
	struct smtpc_peer peer;
	char name[320]; /* "host[addr]" for messages */
	char tls_version[32], tls_cipher[64];
	struct caps caps;
	struct reply rp;
	bool esmtp, tls_active, no_tls, was_ready;
	enum auth_step auth_step;

	/* The transaction. */
	struct smtpc_txn *txn;	    /* in progress, or waiting to start */
	struct smtpc_txn *done_txn; /* on_done is due */
	size_t rcpt_replied, naccepted;
	bool pipelined, bdat, mail_ok, abandon;
	bool body_queued; /* the message is in the output (see body_pending) */

	/* What the kick has to do. */
	bool connect_due, ready_due, close_due, close_clean;
	bool quit_wanted, dead;
	int in_cb;
	struct smtpc_result last_err; /* last target's failure; close reason */
};

static void conn_close(struct smtpc *c, const struct smtpc_result *why);
static void target_failed(struct smtpc *c, const struct smtpc_result *why);
static void send_ehlo(struct smtpc *c);
static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/* clog - a log line with the connection's id in front */
#define clog(c, level, fmt, ...)                                               \
	log_write(level, "smtp", "cid=%s " fmt, (c)->cid, ##__VA_ARGS__)

/* ---- small helpers ---- */

/* result_set - fill r; the text is formatted and cut to fit */
static void result_set(struct smtpc_result *r, int code, const char *enh,
    bool local, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
result_set(struct smtpc_result *r, int code, const char *enh, bool local,
    const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh ? enh : "");
	r->local = local;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* reply_result - the reply just read, as a result */
static void
reply_result(const struct smtpc *c, struct smtpc_result *r)
{
	result_set(r, c->rp.code, c->rp.enh, false, "%s", c->rp.text);
}

/* reply_str - the reply just read as "554 5.7.1 text" into out */
static const char *
reply_str(const struct smtpc *c, char *out, size_t outlen)
{
	snprintf(out, outlen, "%d%s%s%s%s", c->rp.code, c->rp.enh[0] ? " " : "",
	    c->rp.enh, c->rp.text[0] ? " " : "", c->rp.text);
	return out;
}

/* is_2xx - a positive completion reply */
static bool
is_2xx(int code)
{
	return code >= 200 && code < 300;
}

/*
 * body_pending - whether part of the message still waits in our output
 * buffer.  Computed, not tracked: the TLS filter may drain the buffer
 * from inside evbuffer_add(), before the caller could set a flag.
 */
static bool
body_pending(const struct smtpc *c)
{
	return c->body_queued && c->bev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;
}

/* is_ip_literal - whether host is an address rather than a name */
static bool
is_ip_literal(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1;
}

/* kick - run kick_cb soon (see note 3) */
static void
kick(struct smtpc *c)
{
	event_active(c->kick, EV_TIMEOUT, 1);
}

/* timer_arm - the current wait ends in ms milliseconds */
static void
timer_arm(struct smtpc *c, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

/* timer_rearm - start the wait that the current state stands for */
static void
timer_rearm(struct smtpc *c)
{
	switch (c->state) {
	case ST_CONNECT:
		timer_arm(c, c->cfg.connect_timeout);
		break;
	case ST_GREETING:
	case ST_EHLO:
	case ST_HELO:
	case ST_STARTTLS:
	case ST_TLS:
	case ST_AUTH:
		timer_arm(c, c->cfg.greeting_timeout);
		break;
	case ST_DOT:
	case ST_BDAT:
		timer_arm(c, c->cfg.data_timeout);
		break;
	case ST_MAIL:
	case ST_RCPT:
	case ST_DATA:
	case ST_RSET:
	case ST_QUIT:
		timer_arm(c,
		    body_pending(c) ? c->cfg.data_timeout
				    : c->cfg.command_timeout);
		break;
	case ST_READY:
	case ST_CLOSED:
		evtimer_del(c->timer);
		break;
	}
}

/* put - queue one command line (fmt without CRLF) */
static void put(struct smtpc *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct smtpc *c, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/*
 * put_xtext - add s encoded as xtext (RFC 3461 4): '+', '=' and bytes
 * outside 33..126 become "+XX".
 */
static void
put_xtext(struct evbuffer *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=')
			evbuffer_add_printf(out, "+%02X", *p);
		else
			evbuffer_add(out, p, 1);
	}
}

/* has_crlf - whether s holds a CR or LF (it would end the command) */
static bool
has_crlf(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

/* ---- the life of a bufferevent ---- */

/* out_cb - the output drained: progress while the message is written */
static void
out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct smtpc *c = arg;

	(void)buf;
	if (c->body_queued && info->n_deleted > 0)
		timer_arm(c, c->cfg.data_timeout);
}

/* bev_attach - talk through bev from now on */
static void
bev_attach(struct smtpc *c, struct bufferevent *bev)
{
	c->bev = bev;
	bufferevent_setcb(bev, read_cb, NULL, event_cb, c);
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), out_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* bev_retire - stop using the bufferevent; the kick frees it (note 4) */
static void
bev_retire(struct smtpc *c)
{
	if (c->bev == NULL)
		return;
	if (c->out_cb != NULL)
		evbuffer_remove_cb_entry(
		    bufferevent_get_output(c->bev), c->out_cb);
	c->out_cb = NULL;
	bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->dead_bev != NULL)
		bufferevent_free(c->dead_bev); /* not in its callbacks now */
	c->dead_bev = c->bev;
	c->bev = NULL;
	c->body_queued = false;
	kick(c);
}

/* smtpc_destroy - free everything, without any callback */
static void
smtpc_destroy(struct smtpc *c)
{
	bev_retire(c);
	if (c->dead_bev != NULL)
		bufferevent_free(c->dead_bev);
	event_free(c->kick);
	event_free(c->timer);
	if (c->cfg.ssl_ctx != NULL)
		SSL_CTX_free(c->cfg.ssl_ctx);
	free((char *)c->cfg.helo_name);
	free((char *)c->cfg.auth_user);
	if (c->cfg.auth_password != NULL) {
		OPENSSL_cleanse(
		    (char *)c->cfg.auth_password, strlen(c->cfg.auth_password));
		free((char *)c->cfg.auth_password);
	}
	for (size_t i = 0; i < c->ntargets; i++)
		free((char *)c->targets[i].host);
	free(c->targets);
	free(c);
}

/* ---- transactions: results ---- */

/*
 * fail_txn - a transaction cut short: every result not yet final (no
 * reply, or a 2xx that still waited for the data) becomes why, code 0.
 */
static void
fail_txn(struct smtpc_txn *t, const struct smtpc_result *why)
{
	for (size_t i = 0; i < t->nrcpts; i++) {
		struct smtpc_result *r = &t->rcpts[i].result;

		if (r->code == 0 || is_2xx(r->code))
			result_set(r, 0, "", true, "%s", why->text);
	}
	if (t->mail_result.code == 0 || is_2xx(t->mail_result.code))
		result_set(&t->mail_result, 0, "", true, "%s", why->text);
}

/* set_all - every recipient and mail_result get r */
static void
set_all(struct smtpc_txn *t, const struct smtpc_result *r)
{
	for (size_t i = 0; i < t->nrcpts; i++)
		t->rcpts[i].result = *r;
	t->mail_result = *r;
}

/*
 * become_ready - the connection is idle: start the queued transaction,
 * QUIT when asked to, else tell the owner (after any on_done due).
 */
static void
become_ready(struct smtpc *c)
{
	c->state = ST_READY;
	evtimer_del(c->timer);
	if (!c->was_ready) {
		c->was_ready = true;
		clog(c, LOG_INFO,
		    "event=ready host=%s addr=%s port=%d esmtp=%s tls=%s "
		    "pipelining=%s chunking=%s size=%" PRIu64,
		    c->peer.host, c->peer.addr, c->peer.port,
		    c->esmtp ? "yes" : "no",
		    c->tls_active ? c->tls_version : "none",
		    c->caps.pipelining ? "yes" : "no",
		    c->caps.chunking ? "yes" : "no", c->caps.size_max);
	}
	if (c->txn == NULL && c->quit_wanted) {
		c->state = ST_QUIT;
		put(c, "QUIT");
		timer_rearm(c);
		return;
	}
	if (c->txn == NULL)
		c->ready_due = true;
	kick(c);
}

/* txn_end - the transaction is over: report it, RSET when asked to */
static void
txn_end(struct smtpc *c, bool rset)
{
	struct smtpc_txn *t = c->txn;
	char q[SMTPC_REPLY_MAX];

	assert(c->done_txn == NULL);
	if (log_enabled(LOG_DEBUG))
		clog(c, LOG_DEBUG,
		    "event=txn host=%s rcpts=%zu accepted=%zu code=%d "
		    "reply=\"%s\"",
		    c->peer.host, t->nrcpts, c->naccepted, t->mail_result.code,
		    log_quote(t->mail_result.text, q, sizeof(q)));
	c->done_txn = t;
	c->txn = NULL;
	c->body_queued = false;
	if (rset) {
		c->state = ST_RSET;
		put(c, "RSET");
		timer_rearm(c);
		kick(c);
		return;
	}
	become_ready(c);
}

/* no_rcpt_result - every recipient refused: the last refusal for all */
static void
no_rcpt_result(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	if (c->mail_ok && t->nrcpts > 0)
		t->mail_result = t->rcpts[t->nrcpts - 1].result;
}

/* ---- closing ---- */

/*
 * conn_close - the connection is over: why is NULL after QUIT (or when
 * the owner asked), else the reason.  A transaction in progress (or
 * waiting) gets its on_done first; then on_close; then the kick frees.
 */
static void
conn_close(struct smtpc *c, const struct smtpc_result *why)
{
	char q[SMTPC_REPLY_MAX];

	if (c->state == ST_CLOSED)
		return;
	evtimer_del(c->timer);
	bev_retire(c);
	if (c->txn != NULL) {
		struct smtpc_result gone;

		if (why == NULL)
			result_set(&gone, 0, "", true,
			    "connection to %s closed before the transaction",
			    c->name);
		fail_txn(c->txn, why ? why : &gone);
		assert(c->done_txn == NULL);
		c->done_txn = c->txn;
		c->txn = NULL;
	}
	c->state = ST_CLOSED;
	c->ready_due = c->connect_due = false;
	c->close_due = true;
	c->close_clean = why == NULL;
	if (why != NULL)
		c->last_err = *why;
	clog(c, LOG_INFO, "event=close host=%s addr=%s reason=\"%s\"",
	    c->peer.host, c->peer.addr,
	    why ? log_quote(why->text, q, sizeof(q)) : "quit");
	kick(c);
}

/* state_when - where the conversation stood, for a failure's text */
static const char *
state_when(const struct smtpc *c)
{
	switch (c->state) {
	case ST_GREETING:
		return "while receiving the initial server greeting";
	case ST_EHLO:
		return "after EHLO";
	case ST_HELO:
		return "after HELO";
	case ST_STARTTLS:
		return "after STARTTLS";
	case ST_TLS:
		return "during the TLS handshake";
	case ST_AUTH:
		return "after AUTH";
	case ST_MAIL:
		return "after MAIL";
	case ST_RCPT:
		return "after RCPT";
	case ST_DATA:
		return "after DATA";
	case ST_DOT:
		return body_pending(c) ? "while sending message body"
				       : "after end of data";
	case ST_BDAT:
		return body_pending(c) ? "while sending message body"
				       : "after BDAT";
	case ST_RSET:
		return "after RSET";
	case ST_QUIT:
		return "after QUIT";
	case ST_READY:
		return "while idle";
	case ST_CONNECT:
	case ST_CLOSED:
		break;
	}
	return "";
}

/*
 * conn_broken - the connection failed (lost, timed out, protocol
 * error): before READY try the next target, else close.
 */
static void
conn_broken(struct smtpc *c, const struct smtpc_result *why)
{
	if (c->state < ST_READY)
		target_failed(c, why);
	else
		conn_close(c, why);
}

/* protocol_error - the server broke the protocol: what, and when */
static void
protocol_error(struct smtpc *c, const char *what)
{
	struct smtpc_result r;

	result_set(&r, 0, "", true, "protocol error from %s: %s %s", c->name,
	    what, state_when(c));
	conn_broken(c, &r);
}

/* ---- targets ---- */

/*
 * target_failed - this target will not do: remember why and move to the
 * next one (the kick connects).
 */
static void
target_failed(struct smtpc *c, const struct smtpc_result *why)
{
	char q[SMTPC_REPLY_MAX];

	clog(c, LOG_INFO,
	    "event=target-failed host=%s addr=%s port=%d reason=\"%s\"",
	    c->peer.host, c->peer.addr, c->peer.port,
	    log_quote(why->text, q, sizeof(q)));
	c->last_err = *why;
	evtimer_del(c->timer);
	bev_retire(c);
	c->cur++;
	c->no_tls = false;
	c->state = ST_CONNECT;
	c->connect_due = true;
	kick(c);
}

/*
 * tls_failed - TLS did not work out: with TLS_MAY retry the same target
 * once in plaintext, else move to the next target.
 */
static void
tls_failed(struct smtpc *c, const struct smtpc_result *why)
{
	char q[SMTPC_REPLY_MAX];

	if (c->cfg.tls != SMTPC_TLS_MAY || c->no_tls) {
		target_failed(c, why);
		return;
	}
	clog(c, LOG_WARN,
	    "event=tls-failed host=%s addr=%s reason=\"%s\" "
	    "action=retry-plaintext",
	    c->peer.host, c->peer.addr, log_quote(why->text, q, sizeof(q)));
	c->last_err = *why;
	evtimer_del(c->timer);
	bev_retire(c);
	c->no_tls = true;
	c->state = ST_CONNECT;
	c->connect_due = true;
	kick(c);
}

/* connect_failed - the TCP connect failed with errno err */
static void
connect_failed(struct smtpc *c, int err)
{
	struct smtpc_result r;

	result_set(&r, 0, "", true, "connect to %s:%d: %s", c->name,
	    c->peer.port, strerror(err ? err : ECONNREFUSED));
	target_failed(c, &r);
}

/* peer_reset - forget what the last target said; describe this one */
static void
peer_reset(struct smtpc *c, const struct smtpc_target *t)
{
	c->peer.port = sockaddr_text((const struct sockaddr *)&t->addr,
	    c->peer.addr, sizeof(c->peer.addr));
	c->peer.host = t->host[0] ? t->host : c->peer.addr;
	c->peer.tls_version = c->peer.tls_cipher = NULL;
	c->peer.tls_verified = false;
	snprintf(
	    c->name, sizeof(c->name), "%s[%s]", c->peer.host, c->peer.addr);
	memset(&c->caps, 0, sizeof(c->caps));
	memset(&c->rp, 0, sizeof(c->rp));
	c->tls_active = c->esmtp = false;
}

/*
 * target_start - connect to the current target; after the last one,
 * close with the last failure.  The connect itself is ours, not
 * libevent's, so that its errno is the real one.
 */
static void
target_start(struct smtpc *c)
{
	const struct smtpc_target *t;
	struct bufferevent *bev;
	int fd;

	if (c->cur >= c->ntargets) {
		conn_close(c, &c->last_err);
		return;
	}
	t = &c->targets[c->cur];
	peer_reset(c, t);
	c->state = ST_CONNECT;
	fd = socket(
	    t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_failed(c, errno);
		return;
	}
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 &&
	    errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		connect_failed(c, err);
		return;
	}
	bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		connect_failed(c, ENOMEM);
		return;
	}
	bev_attach(c, bev);
	/* With fd connecting, this only waits for the end of the connect. */
	if (bufferevent_socket_connect(bev, NULL, 0) < 0) {
		connect_failed(c, errno);
		return;
	}
	timer_rearm(c);
}

/* connected - TCP is up: wait for the greeting */
static void
connected(struct smtpc *c)
{
	clog(c, LOG_INFO, "event=connected host=%s addr=%s port=%d%s",
	    c->peer.host, c->peer.addr, c->peer.port,
	    c->no_tls ? " tls=disabled-after-failure" : "");
	c->state = ST_GREETING;
	timer_rearm(c);
}

/* refused - the server said no before READY: next target, its code */
static void
refused(struct smtpc *c, const char *what)
{
	struct smtpc_result r;
	char s[REPLY_STR_MAX];

	result_set(&r, c->rp.code, c->rp.enh, false, "%s %s: %s", c->name, what,
	    reply_str(c, s, sizeof(s)));
	target_failed(c, &r);
}

/* ---- EHLO, STARTTLS, AUTH ---- */

/* ehlo_cap - one EHLO line (after the first): a capability we use */
static void
ehlo_cap(struct caps *caps, const char *s)
{
	size_t n = strcspn(s, " =");
	const char *arg = s[n] ? s + n + 1 : s + n;
	char kw[16];

	if (n == 0 || n >= sizeof(kw))
		return;
	memcpy(kw, s, n);
	kw[n] = '\0';
	if (strcasecmp(kw, "PIPELINING") == 0)
		caps->pipelining = true;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		caps->eightbitmime = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		caps->smtputf8 = true;
	else if (strcasecmp(kw, "DSN") == 0)
		caps->dsn = true;
	else if (strcasecmp(kw, "CHUNKING") == 0)
		caps->chunking = true;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		caps->starttls = true;
	else if (strcasecmp(kw, "SIZE") == 0) {
		char *end;
		unsigned long long v;

		caps->size = true;
		errno = 0;
		v = strtoull(arg, &end, 10);
		caps->size_max =
		    (errno == 0 && end != arg && *arg >= '0' && *arg <= '9')
		    ? (uint64_t)v
		    : 0;
	} else if (strcasecmp(kw, "AUTH") == 0) {
		while (*arg) {
			size_t m;

			arg += strspn(arg, " ");
			m = strcspn(arg, " ");
			if (m == 5 && strncasecmp(arg, "PLAIN", 5) == 0)
				caps->auth_plain = true;
			if (m == 5 && strncasecmp(arg, "LOGIN", 5) == 0)
				caps->auth_login = true;
			arg += m;
		}
	}
}

/* send_ehlo - EHLO, forgetting what an earlier EHLO announced */
static void
send_ehlo(struct smtpc *c)
{
	memset(&c->caps, 0, sizeof(c->caps));
	c->state = ST_EHLO;
	put(c, "EHLO %s", c->cfg.helo_name);
	timer_rearm(c);
}

/* put_b64 - queue data base64-encoded as one line, then forget it */
static void
put_b64(struct smtpc *c, const char *prefix, const void *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3) + 1;
	unsigned char *b64 = xmalloc(n);

	EVP_EncodeBlock(b64, data, (int)len);
	put(c, "%s%s", prefix, (const char *)b64);
	OPENSSL_cleanse(b64, n);
	free(b64);
}

/* auth_plain_send - "AUTH PLAIN" with "\0user\0password" (RFC 4616) */
static void
auth_plain_send(struct smtpc *c, const char *prefix)
{
	size_t ul = strlen(c->cfg.auth_user);
	size_t pl = strlen(c->cfg.auth_password);
	char *msg = xmalloc(ul + pl + 2);

	msg[0] = '\0';
	memcpy(msg + 1, c->cfg.auth_user, ul);
	msg[ul + 1] = '\0';
	memcpy(msg + ul + 2, c->cfg.auth_password, pl);
	put_b64(c, prefix, msg, ul + pl + 2);
	OPENSSL_cleanse(msg, ul + pl + 2);
	free(msg);
}

/*
 * auth_begin - AUTH PLAIN when offered, else LOGIN; never in the clear
 * unless the policy is TLS_NONE.
 */
static void
auth_begin(struct smtpc *c)
{
	struct smtpc_result r;

	if (!c->tls_active && c->cfg.tls != SMTPC_TLS_NONE) {
		result_set(&r, 0, "", true,
		    "cannot authenticate to %s without TLS", c->name);
		target_failed(c, &r);
		return;
	}
	c->state = ST_AUTH;
	if (c->caps.auth_plain) {
		c->auth_step = AUTH_SENT;
		auth_plain_send(c, "AUTH PLAIN ");
	} else if (c->caps.auth_login) {
		c->auth_step = AUTH_LOGIN_USER;
		put(c, "AUTH LOGIN");
	} else {
		result_set(&r, 0, "", true,
		    "%s does not offer AUTH PLAIN or LOGIN", c->name);
		target_failed(c, &r);
		return;
	}
	timer_rearm(c);
}

/* on_auth - a reply during AUTH: 235 done, 334 next step, else fail */
static void
on_auth(struct smtpc *c)
{
	char q[128], s[REPLY_STR_MAX];
	struct smtpc_result r;

	if (is_2xx(c->rp.code)) {
		clog(c, LOG_INFO, "event=auth result=ok host=%s user=\"%s\"",
		    c->peer.host, log_quote(c->cfg.auth_user, q, sizeof(q)));
		become_ready(c);
		return;
	}
	if (c->rp.code == 334 && c->auth_step != AUTH_SENT) {
		if (c->auth_step == AUTH_LOGIN_USER) {
			c->auth_step = AUTH_LOGIN_PASS;
			put_b64(
			    c, "", c->cfg.auth_user, strlen(c->cfg.auth_user));
		} else if (c->auth_step == AUTH_LOGIN_PASS) {
			c->auth_step = AUTH_SENT;
			put_b64(c, "", c->cfg.auth_password,
			    strlen(c->cfg.auth_password));
		}
		return;
	}
	if (c->rp.code == 334) {
		/* A challenge we have no answer for: cancel (RFC 4954 4). */
		put(c, "*");
		return;
	}
	clog(c, LOG_WARN,
	    "event=auth result=failed host=%s user=\"%s\" code=%d",
	    c->peer.host, log_quote(c->cfg.auth_user, q, sizeof(q)),
	    c->rp.code);
	/*
	 * Another target would say the same about our credentials, so do
	 * not try it.  Temporary whatever the code, as Postfix's
	 * smtp_sasl_auth_soft_bounce: a credentials mistake must not bounce
	 * the mail waiting for this route.
	 */
	result_set(&r, 0, "", true, "authentication failed at %s: %s", c->name,
	    reply_str(c, s, sizeof(s)));
	conn_close(c, &r);
}

/*
 * after_hello - the server said hello (again): STARTTLS when the policy
 * wants it and the server has it, then AUTH, then ready.
 */
static void
after_hello(struct smtpc *c)
{
	struct smtpc_result r;

	if (c->cfg.tls != SMTPC_TLS_NONE && !c->tls_active && !c->no_tls) {
		if (c->caps.starttls) {
			c->state = ST_STARTTLS;
			put(c, "STARTTLS");
			timer_rearm(c);
			return;
		}
		if (c->cfg.tls != SMTPC_TLS_MAY) {
			result_set(&r, 0, "", true,
			    "TLS required but not offered by %s", c->name);
			target_failed(c, &r);
			return;
		}
	}
	if (c->cfg.auth_user != NULL) {
		auth_begin(c);
		return;
	}
	become_ready(c);
}

/* tls_begin - wrap the socket in TLS after "220" to STARTTLS */
static void
tls_begin(struct smtpc *c)
{
	struct bufferevent *sock = c->bev, *tls;
	struct smtpc_result r;
	SSL *ssl;

	if (evbuffer_get_length(bufferevent_get_input(sock)) > 0) {
		/* Data injected before the handshake (CVE-2011-0411). */
		protocol_error(c, "data after the reply to STARTTLS");
		return;
	}
	ssl = SSL_new(c->cfg.ssl_ctx);
	if (ssl == NULL) {
		result_set(
		    &r, 0, "", true, "cannot start TLS with %s", c->name);
		tls_failed(c, &r);
		return;
	}
	if (!is_ip_literal(c->peer.host))
		SSL_set_tlsext_host_name(ssl, c->peer.host);
	if (c->cfg.tls == SMTPC_TLS_VERIFY) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (is_ip_literal(c->peer.host))
			X509_VERIFY_PARAM_set1_ip_asc(
			    SSL_get0_param(ssl), c->peer.host);
		else
			SSL_set1_host(ssl, c->peer.host);
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	}
	evbuffer_remove_cb_entry(bufferevent_get_output(sock), c->out_cb);
	c->out_cb = NULL;
	/* On failure libevent frees ssl (CLOSE_ON_FREE) but not sock. */
	tls = bufferevent_openssl_filter_new(c->base, sock, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		result_set(
		    &r, 0, "", true, "cannot start TLS with %s", c->name);
		tls_failed(c, &r);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_setwatermark(sock, EV_WRITE, 0, TLS_OUTPUT_MAX);
	bev_attach(c, tls);
	c->state = ST_TLS;
	timer_rearm(c);
}

/* tls_done - the handshake finished: check the peer, then EHLO again */
static void
tls_done(struct smtpc *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	long vr = SSL_get_verify_result(ssl);
	struct smtpc_result r;

	if (c->cfg.tls == SMTPC_TLS_VERIFY &&
	    (vr != X509_V_OK || SSL_get0_peer_certificate(ssl) == NULL)) {
		result_set(&r, 0, "", true,
		    "certificate verification failed for %s: %s", c->name,
		    vr != X509_V_OK ? X509_verify_cert_error_string(vr)
				    : "no certificate");
		target_failed(c, &r);
		return;
	}
	snprintf(
	    c->tls_version, sizeof(c->tls_version), "%s", SSL_get_version(ssl));
	snprintf(c->tls_cipher, sizeof(c->tls_cipher), "%s",
	    SSL_get_cipher_name(ssl));
	c->peer.tls_version = c->tls_version;
	c->peer.tls_cipher = c->tls_cipher;
	c->peer.tls_verified = c->cfg.tls == SMTPC_TLS_VERIFY;
	c->tls_active = true;
	clog(c, LOG_INFO,
	    "event=tls host=%s addr=%s version=%s cipher=%s verified=%s",
	    c->peer.host, c->peer.addr, c->tls_version, c->tls_cipher,
	    c->peer.tls_verified ? "yes" : "no");
	send_ehlo(c);
}

/* tls_error - the handshake failed or timed out (timeout: bev NULL) */
static void
tls_error(struct smtpc *c, struct bufferevent *bev)
{
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e = 0, last;
	struct smtpc_result r;
	char es[256];

	while (bev != NULL && (last = bufferevent_get_openssl_error(bev)) != 0)
		if (e == 0)
			e = last;
	if (c->cfg.tls == SMTPC_TLS_VERIFY && vr != X509_V_OK) {
		result_set(&r, 0, "", true,
		    "certificate verification failed for %s: %s", c->name,
		    X509_verify_cert_error_string(vr));
	} else {
		if (e != 0)
			ERR_error_string_n(e, es, sizeof(es));
		else
			snprintf(es, sizeof(es), "%s",
			    bev ? "connection closed" : "timeout");
		result_set(&r, 0, "", true, "TLS handshake with %s failed: %s",
		    c->name, es);
	}
	tls_failed(c, &r);
}

/* ---- transactions ---- */

/* msg_tail - what must follow the message so that it ends with CRLF */
static const char *
msg_tail(const struct smtpc_txn *t)
{
	char last[2] = { 0, 0 };
	size_t n = 0;

	/* The last two bytes of head + body. */
	for (size_t i = t->bodylen; i > 0 && n < 2; i--)
		last[1 - n++] = t->body[i - 1];
	for (size_t i = t->headlen; i > 0 && n < 2; i--)
		last[1 - n++] = t->head[i - 1];
	if (n == 0 || (last[0] == '\r' && last[1] == '\n'))
		return "";
	if (last[1] == '\r')
		return "\n";
	return "\r\n";
}

/* msg_size - octets of the message as sent (SIZE=, BDAT) */
static uint64_t
msg_size(const struct smtpc_txn *t)
{
	return (uint64_t)t->headlen + t->bodylen + strlen(msg_tail(t));
}

/*
 * put_stuffed - reference p..p+n into out with dot-stuffing: a '.' at
 * the start of a line gets another '.' in front.  *bol says whether p
 * starts a line.  A line starts after any LF, bare or not, so that no
 * server can find an end of data inside the message.
 */
static void
put_stuffed(struct evbuffer *out, const char *p, size_t n, bool *bol)
{
	size_t start = 0;

	if (n == 0)
		return;
	if (*bol && p[0] == '.')
		evbuffer_add(out, ".", 1);
	for (;;) {
		const char *hit = memmem(p + start, n - start, "\n.", 2);
		size_t cut;

		if (hit == NULL)
			break;
		cut = (size_t)(hit - p) + 1; /* through the LF */
		evbuffer_add_reference(out, p + start, cut - start, NULL, NULL);
		evbuffer_add(out, ".", 1);
		start = cut;
	}
	if (start < n)
		evbuffer_add_reference(out, p + start, n - start, NULL, NULL);
	*bol = p[n - 1] == '\n';
}

/* put_message - the message after 354, stuffed, then "." */
static void
put_message(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct smtpc_txn *t = c->txn;
	const char *tail = msg_tail(t);
	bool bol = true;

	c->body_queued = true;
	put_stuffed(out, t->head, t->headlen, &bol);
	put_stuffed(out, t->body, t->bodylen, &bol);
	evbuffer_add(out, tail, strlen(tail));
	evbuffer_add(out, ".\r\n", 3);
}

/* put_bdat - the whole message as one chunk: BDAT n LAST, raw bytes */
static void
put_bdat(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct smtpc_txn *t = c->txn;
	const char *tail = msg_tail(t);

	c->body_queued = true;
	put(c, "BDAT %" PRIu64 " LAST", msg_size(t));
	if (t->headlen > 0)
		evbuffer_add_reference(out, t->head, t->headlen, NULL, NULL);
	if (t->bodylen > 0)
		evbuffer_add_reference(out, t->body, t->bodylen, NULL, NULL);
	evbuffer_add(out, tail, strlen(tail));
}

/* put_mail - MAIL FROM with the parameters the server announced */
static void
put_mail(struct smtpc *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct smtpc_txn *t = c->txn;

	evbuffer_add_printf(out, "MAIL FROM:<%s>", t->sender);
	if (c->caps.size)
		evbuffer_add_printf(out, " SIZE=%" PRIu64, msg_size(t));
	if (t->eightbit)
		evbuffer_add_printf(out, " BODY=8BITMIME");
	if (t->smtputf8)
		evbuffer_add_printf(out, " SMTPUTF8");
	if (c->caps.dsn && t->ret == SMTP_RET_FULL)
		evbuffer_add_printf(out, " RET=FULL");
	if (c->caps.dsn && t->ret == SMTP_RET_HDRS)
		evbuffer_add_printf(out, " RET=HDRS");
	if (c->caps.dsn && t->envid != NULL) {
		evbuffer_add_printf(out, " ENVID=");
		put_xtext(out, t->envid);
	}
	evbuffer_add(out, "\r\n", 2);
}

/* put_rcpt - RCPT TO, with NOTIFY and ORCPT when the server has DSN */
static void
put_rcpt(struct smtpc *c, const struct smtpc_rcpt *r)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "RCPT TO:<%s>", r->addr);
	if (c->caps.dsn && r->notify != 0) {
		if (r->notify & SMTP_NOTIFY_NEVER) {
			evbuffer_add_printf(out, " NOTIFY=NEVER");
		} else {
			const char *sep = " NOTIFY=";

			if (r->notify & SMTP_NOTIFY_SUCCESS) {
				evbuffer_add_printf(out, "%sSUCCESS", sep);
				sep = ",";
			}
			if (r->notify & SMTP_NOTIFY_FAILURE) {
				evbuffer_add_printf(out, "%sFAILURE", sep);
				sep = ",";
			}
			if (r->notify & SMTP_NOTIFY_DELAY)
				evbuffer_add_printf(out, "%sDELAY", sep);
		}
	}
	if (c->caps.dsn && r->orcpt != NULL) {
		const char *semi = strchr(r->orcpt, ';');

		/* "type;address": the type is an atom, the address xtext */
		if (semi != NULL)
			evbuffer_add_printf(out, " ORCPT=%.*s;",
			    (int)(semi - r->orcpt), r->orcpt);
		else
			evbuffer_add_printf(out, " ORCPT=rfc822;");
		put_xtext(out, semi ? semi + 1 : r->orcpt);
	}
	evbuffer_add(out, "\r\n", 2);
}

/*
 * refuse_locally - what the server cannot take, refused before MAIL
 * (see smtpc.h); true when the transaction ends here.
 */
static bool
refuse_locally(struct smtpc *c, struct smtpc_txn *t)
{
	uint64_t size = msg_size(t);
	struct smtpc_result r;
	bool bad = has_crlf(t->sender);

	for (size_t i = 0; i < t->nrcpts; i++)
		bad = bad || has_crlf(t->rcpts[i].addr) ||
		    has_crlf(t->rcpts[i].orcpt);
	if (bad)
		result_set(&r, 501, "5.5.2", true,
		    "line break in an address, not sent to %s", c->name);
	else if (c->caps.size && c->caps.size_max > 0 &&
	    size > c->caps.size_max)
		result_set(&r, 552, "5.3.4", true,
		    "message size %" PRIu64 " exceeds size limit %" PRIu64
		    " of server %s",
		    size, c->caps.size_max, c->name);
	else if (t->eightbit && !c->caps.eightbitmime)
		result_set(&r, 554, "5.6.3", true,
		    "message has 8-bit content, but server %s does not "
		    "support 8BITMIME",
		    c->name);
	else if (t->smtputf8 && !c->caps.smtputf8)
		result_set(&r, 553, "5.6.7", true,
		    "message needs SMTPUTF8, but server %s does not support "
		    "SMTPUTF8",
		    c->name);
	else
		return false;
	set_all(t, &r);
	return true;
}

/* txn_begin - start the queued transaction (state READY) */
static void
txn_begin(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	assert(t->nrcpts > 0);
	memset(&t->mail_result, 0, sizeof(t->mail_result));
	for (size_t i = 0; i < t->nrcpts; i++)
		memset(&t->rcpts[i].result, 0, sizeof(t->rcpts[i].result));
	c->rcpt_replied = c->naccepted = 0;
	c->mail_ok = c->abandon = false;
	c->pipelined = c->caps.pipelining;
	c->bdat = c->cfg.use_chunking && c->caps.chunking;
	if (refuse_locally(c, t)) {
		c->naccepted = 0;
		txn_end(c, false);
		return;
	}
	c->state = ST_MAIL;
	put_mail(c);
	if (c->pipelined) {
		for (size_t i = 0; i < t->nrcpts; i++)
			put_rcpt(c, &t->rcpts[i]);
		if (c->bdat)
			put_bdat(c);
		else
			put(c, "DATA");
	}
	timer_rearm(c);
}

/* on_mail - the MAIL reply: refused, it is every recipient's result */
static void
on_mail(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	c->mail_ok = is_2xx(c->rp.code);
	if (!c->mail_ok) {
		struct smtpc_result r;

		reply_result(c, &r);
		set_all(t, &r);
	}
	c->state = ST_RCPT;
	if (c->pipelined)
		return;
	if (!c->mail_ok) {
		txn_end(c, true);
		return;
	}
	put_rcpt(c, &t->rcpts[0]);
}

/* on_rcpt - one RCPT reply; after the last, the message or RSET */
static void
on_rcpt(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	size_t i = c->rcpt_replied++;

	if (c->mail_ok) {
		reply_result(c, &t->rcpts[i].result);
		if (is_2xx(c->rp.code))
			c->naccepted++;
	}
	if (c->rcpt_replied < t->nrcpts) {
		if (!c->pipelined)
			put_rcpt(c, &t->rcpts[c->rcpt_replied]);
		return;
	}
	if (c->pipelined) {
		c->state = c->bdat ? ST_BDAT : ST_DATA;
		return;
	}
	if (c->naccepted == 0) {
		no_rcpt_result(c);
		txn_end(c, true);
		return;
	}
	if (c->bdat) {
		c->state = ST_BDAT;
		put_bdat(c);
	} else {
		c->state = ST_DATA;
		put(c, "DATA");
	}
}

/* on_data - the reply to DATA: 354 sends the message (or just ".") */
static void
on_data(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	struct smtpc_result r;

	if (c->rp.code / 100 == 3) {
		c->state = ST_DOT;
		if (c->mail_ok && c->naccepted > 0) {
			put_message(c);
		} else {
			/* Pipelined DATA accepted without recipients. */
			c->abandon = true;
			put(c, ".");
		}
		return;
	}
	if (is_2xx(c->rp.code)) {
		protocol_error(c, "2xx reply to DATA");
		return;
	}
	if (c->mail_ok && c->naccepted > 0) {
		reply_result(c, &r);
		for (size_t i = 0; i < t->nrcpts; i++)
			if (is_2xx(t->rcpts[i].result.code))
				t->rcpts[i].result = r;
		t->mail_result = r;
	} else {
		no_rcpt_result(c);
	}
	txn_end(c, true);
}

/* on_dot - the reply to the end of the message (DATA or BDAT) */
static void
on_dot(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	bool early = body_pending(c);
	struct smtpc_result r;
	char s[REPLY_STR_MAX];

	if (c->abandon || !c->mail_ok || c->naccepted == 0) {
		no_rcpt_result(c);
		txn_end(c, true);
		return;
	}
	if (early && is_2xx(c->rp.code)) {
		/* Not for this message, which will never arrive whole: the
		 * recipients accepted at RCPT get the failure (conn_close). */
		result_set(&r, 0, "", true,
		    "%s replied before the end of the message: %s", c->name,
		    reply_str(c, s, sizeof(s)));
		conn_close(c, &r);
		return;
	}
	reply_result(c, &r);
	for (size_t i = 0; i < t->nrcpts; i++)
		if (is_2xx(t->rcpts[i].result.code))
			t->rcpts[i].result = r;
	t->mail_result = r;
	if (early) {
		/* The rest of the message would be read as commands. */
		txn_end(c, false);
		result_set(&r, 0, "", true,
		    "%s replied before the end of the message", c->name);
		conn_close(c, &r);
		return;
	}
	txn_end(c, !is_2xx(c->rp.code));
}

/* on_rset - the RSET reply: ready again, or close */
static void
on_rset(struct smtpc *c)
{
	struct smtpc_result r;
	char s[REPLY_STR_MAX];

	if (is_2xx(c->rp.code)) {
		become_ready(c);
		return;
	}
	result_set(&r, 0, "", true, "%s refused RSET: %s", c->name,
	    reply_str(c, s, sizeof(s)));
	conn_close(c, &r);
}

/* ---- replies ---- */

/* on_reply - a complete reply: the state machine's transition function */
static void
on_reply(struct smtpc *c)
{
	struct smtpc_result r;
	char s[REPLY_STR_MAX];

	switch (c->state) {
	case ST_GREETING:
		if (is_2xx(c->rp.code))
			send_ehlo(c);
		else
			refused(c, "refused to talk");
		return;
	case ST_EHLO:
		if (is_2xx(c->rp.code)) {
			c->esmtp = true;
			after_hello(c);
		} else if (c->rp.code / 100 == 5) {
			memset(&c->caps, 0, sizeof(c->caps));
			c->state = ST_HELO;
			put(c, "HELO %s", c->cfg.helo_name);
		} else {
			refused(c, "refused EHLO");
		}
		return;
	case ST_HELO:
		if (is_2xx(c->rp.code))
			after_hello(c);
		else
			refused(c, "refused HELO");
		return;
	case ST_STARTTLS:
		if (is_2xx(c->rp.code)) {
			tls_begin(c);
		} else if (c->cfg.tls == SMTPC_TLS_MAY) {
			clog(c, LOG_INFO,
			    "event=starttls-refused host=%s code=%d "
			    "action=plaintext",
			    c->peer.host, c->rp.code);
			c->no_tls = true;
			after_hello(c);
		} else {
			result_set(&r, 0, "", true, "%s refused STARTTLS: %s",
			    c->name, reply_str(c, s, sizeof(s)));
			target_failed(c, &r);
		}
		return;
	case ST_AUTH:
		on_auth(c);
		return;
	case ST_MAIL:
		on_mail(c);
		return;
	case ST_RCPT:
		on_rcpt(c);
		return;
	case ST_DATA:
		on_data(c);
		return;
	case ST_DOT:
	case ST_BDAT:
		on_dot(c);
		return;
	case ST_RSET:
		on_rset(c);
		return;
	case ST_QUIT:
		conn_close(c, NULL);
		return;
	case ST_READY:
		/* Unasked: typically 421 before the server hangs up. */
		result_set(&r, 0, "", true, "%s said: %s", c->name,
		    reply_str(c, s, sizeof(s)));
		conn_close(c, &r);
		return;
	case ST_CONNECT:
	case ST_TLS:
	case ST_CLOSED:
		break;
	}
	protocol_error(c, "unexpected reply");
}

/* enh_len - length of an RFC 3463 code of class cls at s ("5.1.1"), or 0 */
static size_t
enh_len(const char *s, char cls)
{
	const char *p = s;

	if (*p != cls || p[1] != '.')
		return 0;
	p += 2;
	for (int part = 0; part < 2; part++) {
		size_t d = strspn(p, "0123456789");

		if (d < 1 || d > 3)
			return 0;
		p += d;
		if (part == 0 && *p++ != '.')
			return 0;
	}
	return *p == '\0' || *p == ' ' ? (size_t)(p - s) : 0;
}

/*
 * reply_line - add one line (len octets, no EOL) to the reply being
 * read.  Returns 1 when it was the last line, 0 when more follow, or -1
 * with *why when the line is malformed.
 */
static int
reply_line(struct smtpc *c, char *line, size_t len, const char **why)
{
	struct reply *rp = &c->rp;
	char *text = len > 4 ? line + 4 : line + len;
	int code;
	size_t n;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*why = "malformed reply";
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (rp->nlines > 0 && code != rp->code) {
		*why = "reply codes differ between lines";
		return -1;
	}
	if (++rp->nlines > REPLY_LINES_MAX) {
		*why = "too many reply lines";
		return -1;
	}
	rp->code = code;
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			*p = '?';
	if (c->state == ST_EHLO && rp->nlines > 1 && is_2xx(code))
		ehlo_cap(&c->caps, text);
	n = enh_len(text, line[0]);
	if (n > 0) {
		if (rp->nlines == 1 && n < sizeof(rp->enh))
			snprintf(
			    rp->enh, sizeof(rp->enh), "%.*s", (int)n, text);
		text += n + (text[n] == ' ');
	}
	if (rp->len < sizeof(rp->text) - 1) {
		int w = snprintf(rp->text + rp->len, sizeof(rp->text) - rp->len,
		    "%s%s", rp->nlines > 1 ? "; " : "", text);

		rp->len += (size_t)w;
		if (rp->len > sizeof(rp->text) - 1)
			rp->len = sizeof(rp->text) - 1;
	}
	return len == 3 || line[3] == ' ';
}

/* read_cb - read reply lines and act on each complete reply */
static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (c->bev == bev && c->state != ST_CLOSED) {
		struct evbuffer_ptr eol =
		    evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF);
		const char *why = NULL;
		size_t len;
		char *line;
		int r;

		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > REPLY_LINE_MAX + 1)
				protocol_error(c, "reply line too long");
			return;
		}
		if ((size_t)eol.pos > REPLY_LINE_MAX) {
			protocol_error(c, "reply line too long");
			return;
		}
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			return;
		r = reply_line(c, line, len, &why);
		free(line);
		if (r < 0) {
			protocol_error(c, why);
			return;
		}
		if (r == 1) {
			on_reply(c);
			memset(&c->rp, 0, sizeof(c->rp));
			if (c->bev == bev && c->state != ST_CLOSED)
				timer_rearm(c);
		}
	}
}

/* lost - EOF or an error on the connection */
static void
lost(struct smtpc *c, int err)
{
	struct smtpc_result r;

	if (err != 0 && err != EAGAIN)
		result_set(&r, 0, "", true, "lost connection with %s %s: %s",
		    c->name, state_when(c), strerror(err));
	else
		result_set(&r, 0, "", true, "lost connection with %s %s",
		    c->name, state_when(c));
	conn_broken(c, &r);
}

/* event_cb - connected, handshake done, EOF or error */
static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (bev != c->bev)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == ST_CONNECT)
			connected(c);
		else if (c->state == ST_TLS)
			tls_done(c);
		return;
	}
	switch (c->state) {
	case ST_CONNECT:
		connect_failed(c, err);
		break;
	case ST_TLS:
		tls_error(c, bev);
		break;
	case ST_QUIT:
		conn_close(c, NULL);
		break;
	default:
		lost(c, (what & BEV_EVENT_ERROR) ? err : 0);
		break;
	}
}

/* timer_cb - the current wait took too long */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_result r;

	(void)fd;
	(void)what;
	switch (c->state) {
	case ST_CONNECT:
		connect_failed(c, ETIMEDOUT);
		return;
	case ST_TLS:
		tls_error(c, NULL);
		return;
	case ST_QUIT:
		conn_close(c, NULL);
		return;
	case ST_READY:
	case ST_CLOSED:
		return;
	default:
		result_set(&r, 0, "", true, "conversation with %s timed out %s",
		    c->name, state_when(c));
		conn_broken(c, &r);
		return;
	}
}

/* ---- the kick: deferred work and every callback (note 3) ---- */

/*
 * kick_cb - do what is due, in this order: free a retired bufferevent,
 * connect, on_done, on_close (then free), start a queued transaction,
 * on_ready.  Loops until nothing is left, since a callback may make more
 * work.
 */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	for (;;) {
		if (c->dead_bev != NULL) {
			bufferevent_free(c->dead_bev);
			c->dead_bev = NULL;
		}
		if (c->dead) {
			smtpc_destroy(c);
			return;
		}
		if (c->connect_due) {
			c->connect_due = false;
			target_start(c);
		} else if (c->done_txn != NULL) {
			struct smtpc_txn *t = c->done_txn;

			c->done_txn = NULL;
			c->in_cb++;
			c->cb.on_done(c->arg, c, t);
			c->in_cb--;
		} else if (c->close_due) {
			struct smtpc_result err = c->last_err;

			c->close_due = false;
			c->in_cb++;
			c->cb.on_close(c->arg, c, c->close_clean ? NULL : &err);
			c->in_cb--;
			smtpc_destroy(c);
			return;
		} else if (c->state == ST_READY && c->txn != NULL) {
			txn_begin(c);
		} else if (c->state == ST_READY && c->ready_due) {
			c->ready_due = false;
			c->in_cb++;
			c->cb.on_ready(c->arg, c);
			c->in_cb--;
		} else {
			return;
		}
	}
}

/* ---- the API ---- */

SSL_CTX *
smtpc_ssl_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char es[256];
	int ok;

	if (ctx == NULL) {
		ERR_error_string_n(ERR_get_error(), es, sizeof(es));
		snprintf(err, errlen, "cannot create a TLS context: %s", es);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (ca_file != NULL && *ca_file != '\0')
		ok = SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (!ok) {
		ERR_error_string_n(ERR_get_error(), es, sizeof(es));
		snprintf(err, errlen, "cannot load CA certificates from %s: %s",
		    ca_file && *ca_file ? ca_file : "the default paths", es);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct smtpc *
smtpc_connect(struct event_base *base, const struct smtpc_config *cfg,
    const struct smtpc_target *targets, size_t ntargets,
    const struct smtpc_callbacks *cb, void *arg)
{
	struct smtpc *c;

	if (ntargets == 0)
		return NULL;
	assert(cfg->helo_name != NULL);
	assert(cfg->tls == SMTPC_TLS_NONE || cfg->ssl_ctx != NULL);
	assert(cfg->auth_user == NULL || cfg->auth_password != NULL);
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->cfg = *cfg;
	c->cfg.helo_name = xstrdup(cfg->helo_name);
	c->cfg.auth_user = cfg->auth_user ? xstrdup(cfg->auth_user) : NULL;
	c->cfg.auth_password =
	    cfg->auth_password ? xstrdup(cfg->auth_password) : NULL;
	if (c->cfg.tls == SMTPC_TLS_NONE)
		c->cfg.ssl_ctx = NULL;
	if (c->cfg.ssl_ctx != NULL)
		SSL_CTX_up_ref(c->cfg.ssl_ctx);
	c->targets = xcalloc(ntargets, sizeof(*c->targets));
	for (size_t i = 0; i < ntargets; i++) {
		c->targets[i] = targets[i];
		c->targets[i].host =
		    xstrdup(targets[i].host ? targets[i].host : "");
	}
	c->ntargets = ntargets;
	c->cb = *cb;
	c->arg = arg;
	random_alnum(c->cid, sizeof(c->cid) - 1);
	c->kick = event_new(base, -1, 0, kick_cb, c);
	c->timer = evtimer_new(base, timer_cb, c);
	if (c->kick == NULL || c->timer == NULL)
		fatal("smtpc: cannot create events");
	c->state = ST_CONNECT;
	c->connect_due = true;
	kick(c);
	return c;
}

int
smtpc_send(struct smtpc *c, struct smtpc_txn *txn)
{
	assert(c->txn == NULL);
	c->ready_due = false;
	if (c->state == ST_CLOSED) {
		/* Gone since on_ready: on_done (code 0), then on_close. */
		struct smtpc_result r;

		result_set(&r, 0, "", true, "%s", c->last_err.text);
		if (c->close_clean)
			result_set(&r, 0, "", true, "connection to %s closed",
			    c->name);
		set_all(txn, &r);
		assert(c->done_txn == NULL);
		c->done_txn = txn;
		kick(c);
		return 0;
	}
	assert(c->state == ST_READY || c->state == ST_RSET);
	c->txn = txn;
	kick(c);
	return 0;
}

void
smtpc_quit(struct smtpc *c)
{
	c->ready_due = false;
	if (c->state == ST_CLOSED || c->state == ST_QUIT)
		return;
	if (c->state < ST_READY) {
		conn_close(c, NULL);
		return;
	}
	c->quit_wanted = true;
	if (c->state == ST_READY && c->txn == NULL)
		become_ready(c);
}

void
smtpc_abort(struct smtpc *c)
{
	if (c == NULL)
		return;
	if (c->in_cb > 0) {
		/* Our callback is on the stack: the kick frees after it. */
		c->dead = true;
		kick(c);
		return;
	}
	smtpc_destroy(c);
}

const struct smtpc_peer *
smtpc_peer_info(const struct smtpc *c)
{
	return &c->peer;
}
