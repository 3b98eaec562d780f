/*
 * session.c - one SMTP conversation (RFC 5321 and its extensions).
 *
 * Design notes.
 *
 * 1. States and what moves between them:
 *
 *    state        input                    next
 *    ----------   ----------------------   ---------------------------
 *    GREET        greet pause over         INIT (220 sent)
 *    GREET        any byte                 closed (554, early talker)
 *    TLS          handshake done           GREET/INIT (implicit TLS) or
 *                                          INIT (after STARTTLS)
 *    INIT         EHLO/HELO                READY
 *    READY        MAIL                     MAIL
 *    MAIL         RCPT (accepted)          RCPT
 *    RCPT         DATA                     DATA (354 sent)
 *    RCPT, MAIL   BDAT n                   BDAT
 *    DATA         "." line                 COMMIT, or READY on rejection
 *    BDAT         n octets read            CHUNKED (250), or COMMIT
 *                                          after LAST
 *    CHUNKED      BDAT n                   BDAT
 *    COMMIT       spool durable            READY (250 queued as ID)
 *    AUTH         response line            READY, or AUTH again (LOGIN)
 *    any          RSET                     READY (or INIT before EHLO)
 *    any          QUIT, timeout, errors    closed
 *
 * 2. Reading stops in COMMIT, TLS handshakes and AUTH back-off, so a
 *    pipelining client's next commands wait in the input buffer and are
 *    answered in order afterwards.
 * 3. Message bytes go to the spool as they arrive.  The header section
 *    alone is held in memory (at most smtpd.max_header_size) so that
 *    Message-ID: and Date: can be added when missing and From: checked.
 * 4. A session is freed only from its free event (never inside one of its
 *    own callbacks), and never while a spool commit that points at it is
 *    pending: then it is marked dead and freed when the commit returns.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "mail/address.h"
#include "mail/envelope.h"
#include "mail/header.h"
#include "mail/smtp_cmd.h"
#include "smtpd/session.h"
#include "smtpd/tls.h"

/*
 * Replies queued for a client that does not read them stop the reading
 * of its commands at this size, so a session's memory stays bounded.
 */
#define SESSION_OUTPUT_MAX (64 * 1024)

enum state {
	ST_GREET,
	ST_TLS,
	ST_INIT,
	ST_READY,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_BDAT,
	ST_CHUNKED,
	ST_COMMIT,
	ST_AUTH,
	ST_WAIT,
	ST_CLOSING,
};

/* Why a message is refused at its end; the first problem wins. */
enum msg_error {
	MSG_OK,
	MSG_TOO_BIG,
	MSG_LINE_TOO_LONG,
	MSG_BARE_CR,
	MSG_8BIT,
	MSG_HEADER_TOO_BIG,
	MSG_NO_FROM,
	MSG_BAD_FROM,
	MSG_FROM_DOMAIN,
	MSG_IO,
};

static const char *const msg_error_names[] = { "none", "too-big",
	"line-too-long", "bare-cr", "8bit-without-8bitmime", "header-too-big",
	"no-from", "bad-from", "from-domain", "io" };

enum auth_mech { AUTH_NONE, AUTH_PLAIN, AUTH_LOGIN_USER, AUTH_LOGIN_PASS };

struct session {
	struct session *prev, *next; /* the loop's list */
	struct session_loop *loop;
	const struct smtpd_shared *sh;
	const struct smtpd_config *cfg;
	struct bufferevent *bev;
	struct event *free_ev;	 /* frees the session outside callbacks */
	struct event *timer;	 /* greet pause, AUTH back-off */
	struct event *commit_ev; /* the spool committer wakes us with it */
	enum state state;
	enum listener_kind kind;
	char id[13];
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage sa;
	char *helo;
	bool esmtp, tls, counted, dead, commit_pending, skip_line;
	bool out_blocked; /* reading stopped until replies drain */
	int errors, drain_tries;
	uint64_t started_ms;
	unsigned messages;

	/* Authentication and relay rights. */
	int64_t account_id, credential_id;
	char *auth_user;
	enum auth_mech auth_mech;
	char *login_user; /* AUTH LOGIN: the user name, until the password */

	/* The transaction. */
	struct envelope env;
	unsigned rcpt_tried;

	/* The message being received. */
	struct spool_msg *msg;
	struct buf hdr;
	size_t hdr_scanned;
	bool in_header, bdat_failed, bdat_discard, bdat_last;
	enum state bdat_prev; /* where a refused chunk returns to */
	enum msg_error msg_error;
	char msg_error_detail[160];
	long line_no, error_line;
	uint64_t msg_bytes, bdat_left;
	int commit_error;
};

static void session_process(struct session *s);
static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);

const char *
session_listener_name(enum listener_kind kind)
{
	switch (kind) {
	case LISTENER_SUBMISSION:
		return "submission";
	case LISTENER_SUBMISSIONS:
		return "submissions";
	case LISTENER_MX:
		return "mx";
	}
	return "?";
}

/* slog - a log line with the session's id in front */
#define slog(s, level, fmt, ...)                                               \
	log_write(level, "smtpd", "sid=%s " fmt, (s)->id, ##__VA_ARGS__)

/*
 * reply - queue one reply line (or several, already joined with CRLF).
 * Replies of 400 and above count as errors; too many end the session.
 */
static void reply(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct session *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(bufferevent_get_output(s->bev), line, (size_t)n + 2);
	/* The code may come from an argument ("%d ..."): look at the text. */
	if (line[0] == '4' || line[0] == '5')
		s->errors++;
}

/* session_free_later - free the session from its free event */
static void
session_free_later(struct session *s)
{
	s->state = ST_CLOSING;
	event_active(s->free_ev, 0, 0);
}

/*
 * session_close - stop reading, send what is queued, then free.  The
 * write callback (or the free event when nothing is queued) finishes.
 */
static void
session_close(struct session *s)
{
	s->state = ST_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free_later(s);
}

static void
txn_reset(struct session *s)
{
	spool_msg_abort(&s->msg);
	envelope_clear(&s->env);
	buf_free(&s->hdr);
	s->rcpt_tried = 0;
	s->msg_error = MSG_OK;
	s->bdat_failed = s->bdat_discard = s->bdat_last = false;
	s->msg_bytes = s->bdat_left = 0;
	s->line_no = s->error_line = 0;
	if (s->state != ST_INIT && s->state != ST_CLOSING)
		s->state = ST_READY;
}

static void
session_free(struct session *s)
{
	uint64_t ms = now_ms() - s->started_ms;

	slog(s, LOG_INFO,
	    "event=disconnect messages=%u errors=%d "
	    "duration_ms=%" PRIu64,
	    s->messages, s->errors, ms);
	txn_reset(s);
	if (s->prev)
		s->prev->next = s->next;
	else if (s->loop->sessions == s)
		s->loop->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->counted)
		limits_disconnect(s->sh->limits, s->ip);
	if (s->bev)
		bufferevent_free(s->bev);
	if (s->timer)
		event_free(s->timer);
	if (s->commit_ev)
		event_free(s->commit_ev);
	event_free(s->free_ev);
	free(s->helo);
	free(s->auth_user);
	free(s->login_user);
	free(s);
}

static void
session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	struct bufferevent *under;

	(void)fd;
	(void)what;
	if (s->commit_pending) {
		/* The committer still holds a pointer: finish in commit_done.
		 */
		s->dead = true;
		return;
	}
	/*
	 * With TLS the last reply may still sit, encrypted, in the socket
	 * layer's buffer: give it a moment (at most 2 s) to leave.
	 */
	under = s->bev ? bufferevent_get_underlying(s->bev) : NULL;
	if (under != NULL && s->drain_tries++ < 200 &&
	    evbuffer_get_length(bufferevent_get_output(under)) > 0) {
		struct timeval tv = { 0, 10000 };

		event_add(s->free_ev, &tv);
		return;
	}
	session_free(s);
}

/* too_many_errors - close the session after smtpd.max_errors errors */
static bool
too_many_errors(struct session *s)
{
	if (s->errors < s->cfg->max_errors)
		return false;
	slog(s, LOG_INFO, "event=too-many-errors errors=%d", s->errors);
	reply(s, "421 4.7.0 %s Error: too many errors, closing connection",
	    s->cfg->hostname);
	session_close(s);
	return true;
}

static void
set_timeout(struct session *s, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void
send_greeting(struct session *s)
{
	s->state = ST_INIT;
	reply(s, "220 %s ESMTP Herald", s->cfg->hostname);
}

/*
 * improper_pipelining - the client sent more than it may before our
 * reply (RFC 2920 3.1): answer, log and close.
 */
static void
improper_pipelining(struct session *s, const char *after, const char *why)
{
	slog(s, LOG_WARN, "event=improper-pipelining command=%s", after);
	reply(s, "554 5.5.0 Improper use of pipelining %s, closing connection",
	    why);
	session_close(s);
}

/* ---- EHLO, HELO and the other simple commands ---- */

static bool
auth_offered(const struct session *s)
{
	return s->kind != LISTENER_MX &&
	    (s->tls || s->cfg->auth_over_plaintext);
}

static void
cmd_ehlo(struct session *s, const struct smtp_cmd *cmd, bool esmtp)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	const char *name = cmd->arg;

	if (*name == '\0') {
		reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	if (strlen(name) > 255 || strpbrk(name, " \t") != NULL) {
		reply(s, "501 5.5.4 Invalid %s argument",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(name);
	s->esmtp = esmtp;
	s->state = ST_READY;
	if (!esmtp) {
		reply(s, "250 %s", s->cfg->hostname);
		return;
	}
	evbuffer_add_printf(
	    out, "250-%s Hello %s [%s]\r\n", s->cfg->hostname, name, s->ip);
	evbuffer_add_printf(out,
	    "250-PIPELINING\r\n250-SIZE %s\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-CHUNKING\r\n250-DSN\r\n",
	    s->sh->size_text);
	if (s->sh->ssl_ctx != NULL && !s->tls &&
	    s->kind != LISTENER_SUBMISSIONS)
		evbuffer_add_printf(out, "250-STARTTLS\r\n");
	if (auth_offered(s) && s->auth_user == NULL)
		evbuffer_add_printf(out, "250-AUTH PLAIN LOGIN\r\n");
	evbuffer_add_printf(out, "250 HELP\r\n");
}

static void
cmd_help(struct session *s)
{
	reply(s,
	    "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP"
	    "\r\n214-2.0.0 QUIT VRFY HELP STARTTLS AUTH\r\n"
	    "214 2.0.0 See RFC 5321");
}

/* ---- STARTTLS ---- */

/*
 * session_callbacks - route bev's events to the session.  Input beyond
 * two scratch buffers' worth waits in the kernel: the session consumes
 * what it reads, so more would only be a client running ahead.
 */
static void
session_callbacks(struct session *s, struct bufferevent *bev)
{
	bufferevent_setcb(
	    bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, s->loop->scratch_len * 2);
}

static void
tls_begin(struct session *s, struct bufferevent *bev)
{
	s->bev = bev;
	s->state = ST_TLS;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	session_callbacks(s, bev);
	set_timeout(s, s->cfg->tls_handshake_timeout);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
cmd_starttls(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tlsbev;
	SSL *ssl;

	if (s->sh->ssl_ctx == NULL || s->kind == LISTENER_SUBMISSIONS) {
		reply(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (s->tls) {
		reply(s, "503 5.5.1 TLS already active");
		return;
	}
	if (evbuffer_get_length(in) > 0) {
		/* Commands injected before the handshake (CVE-2011-0411). */
		improper_pipelining(s, "STARTTLS", "after STARTTLS");
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	ssl = SSL_new(s->sh->ssl_ctx);
	tlsbev = bufferevent_openssl_filter_new(s->loop->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tlsbev == NULL) {
		SSL_free(ssl);
		slog(s, LOG_ERROR,
		    "event=tls-failed reason=\"cannot start TLS\"");
		session_close(s);
		return;
	}
	txn_reset(s);
	tls_begin(s, tlsbev);
}

/* tls_ready - the handshake finished: forget what was said before it */
static void
tls_ready(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls = true;
	slog(s, LOG_INFO, "event=tls version=%s cipher=%s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	set_timeout(s, s->cfg->command_timeout);
	/* On implicit TLS the handshake was the pause: greet now. */
	if (s->kind == LISTENER_SUBMISSIONS)
		send_greeting(s);
	else
		s->state = ST_INIT;
	/*
	 * libevent decrypts what arrived with the client's Finished (GnuTLS
	 * sends EHLO in the same flight) before it reports CONNECTED; that
	 * read callback found us in ST_TLS, so run the input now.
	 */
	session_process(s);
}

/* ---- AUTH (RFC 4954) ---- */

static void auth_timer_cb(evutil_socket_t fd, short what, void *arg);

/*
 * auth_check - verify user and secret; on failure answer after a delay
 * that doubles with each failure of the client address (at most 8x).
 */
static void
auth_check(struct session *s, const char *user, const char *secret)
{
	char q[128];
	int64_t account, credential;
	int failures;

	s->auth_mech = AUTH_NONE;
	s->state = ST_READY;
	if (limits_auth_locked(s->sh->limits, s->ip, user)) {
		slog(s, LOG_WARN, "event=auth-locked user=\"%s\"",
		    log_quote(user, q, sizeof(q)));
		reply(s,
		    "454 4.7.0 Too many authentication failures, try "
		    "again later");
		return;
	}
	if (policy_auth(s->sh->policy, user, secret, &account, &credential)) {
		limits_auth_ok(s->sh->limits, s->ip, user);
		s->account_id = account;
		s->credential_id = credential;
		s->auth_user = xstrdup(user);
		slog(s, LOG_INFO,
		    "event=auth result=ok user=\"%s\" account=%" PRId64,
		    log_quote(user, q, sizeof(q)), account);
		reply(s, "235 2.7.0 Authentication successful");
		return;
	}
	failures = limits_auth_failed(s->sh->limits, s->ip, user);
	slog(s, LOG_WARN, "event=auth result=failed user=\"%s\" failures=%d",
	    log_quote(user, q, sizeof(q)), failures);
	{
		uint64_t ms = s->cfg->auth_fail_delay
		    << (failures > 4 ? 3 : failures - 1);
		struct timeval tv = { (time_t)(ms / 1000),
			(suseconds_t)(ms % 1000) * 1000 };

		s->state = ST_WAIT;
		bufferevent_disable(s->bev, EV_READ);
		evtimer_add(s->timer, &tv);
	}
}

static void
auth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (s->state == ST_GREET) {
		send_greeting(s);
		return;
	}
	s->state = ST_READY;
	reply(s, "535 5.7.8 Authentication credentials invalid");
	if (too_many_errors(s))
		return;
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* b64_decode - decode base64 text into a NUL-terminated malloc'd string */
static char *
b64_decode(const char *text, size_t *len_r)
{
	size_t tlen = strlen(text), max = tlen / 4 * 3 + 3, len;
	char *out = xmalloc(max + 1);

	if (sodium_base642bin((unsigned char *)out, max, text, tlen, NULL, &len,
		NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	*len_r = len;
	return out;
}

/* auth_abort - end the AUTH exchange without checking a secret */
static void
auth_abort(struct session *s, const char *why, const char *answer)
{
	s->state = ST_READY;
	s->auth_mech = AUTH_NONE;
	free(s->login_user);
	s->login_user = NULL;
	slog(s, LOG_INFO, "event=auth result=aborted reason=\"%s\"", why);
	reply(s, "%s", answer);
}

/* auth_plain - "[authzid] NUL authcid NUL passwd" (RFC 4616) */
static void
auth_plain(struct session *s, const char *resp)
{
	size_t len;
	char *d = b64_decode(resp, &len);
	const char *authz, *user, *pass;

	if (d == NULL || memchr(d, '\0', len) == NULL) {
		free(d);
		auth_abort(s, "undecodable PLAIN response",
		    "501 5.5.2 Cannot decode AUTH PLAIN response");
		return;
	}
	authz = d;
	user = d + strlen(authz) + 1;
	if (user >= d + len || (pass = user + strlen(user) + 1) > d + len ||
	    pass + strlen(pass) != d + len) {
		sodium_memzero(d, len);
		free(d);
		auth_abort(s, "malformed PLAIN response",
		    "501 5.5.2 Malformed AUTH PLAIN response");
		return;
	}
	if (*authz && strcmp(authz, user) != 0) {
		sodium_memzero(d, len);
		free(d);
		auth_abort(s, "authorization identity differs",
		    "535 5.7.8 Authorization identity not allowed");
		return;
	}
	auth_check(s, user, pass);
	sodium_memzero(d, len);
	free(d);
}

/* auth_response - a line from the client during AUTH */
static void
auth_response(struct session *s, const char *line)
{
	size_t len;
	char *d;

	if (strcmp(line, "*") == 0) {
		auth_abort(s, "cancelled by client",
		    "501 5.7.0 Authentication cancelled");
		return;
	}
	if (s->auth_mech == AUTH_PLAIN) {
		auth_plain(s, line);
		return;
	}
	d = b64_decode(line, &len);
	if (d == NULL || strlen(d) != len) {
		free(d);
		auth_abort(s, "undecodable LOGIN response",
		    "501 5.5.2 Cannot decode AUTH LOGIN response");
		return;
	}
	if (s->auth_mech == AUTH_LOGIN_USER) {
		free(s->login_user);
		s->login_user = d;
		s->auth_mech = AUTH_LOGIN_PASS;
		reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	auth_check(s, s->login_user, d);
	sodium_memzero(d, len);
	free(d);
	free(s->login_user);
	s->login_user = NULL;
}

static void
cmd_auth(struct session *s, const struct smtp_cmd *cmd)
{
	char mech[32];
	const char *initial;
	size_t n = strcspn(cmd->arg, " ");

	if (!auth_offered(s)) {
		if (s->kind != LISTENER_MX && !s->tls)
			reply(s,
			    "538 5.7.11 Encryption required for requested "
			    "authentication mechanism");
		else
			reply(s, "502 5.5.1 AUTH not available");
		return;
	}
	if (s->auth_user != NULL) {
		reply(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (s->state == ST_INIT) {
		reply(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->state != ST_READY) {
		reply(
		    s, "503 5.5.1 AUTH not allowed during a mail transaction");
		return;
	}
	if (n == 0 || n >= sizeof(mech)) {
		reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	memcpy(mech, cmd->arg, n);
	mech[n] = '\0';
	initial = cmd->arg[n] == ' ' ? cmd->arg + n + 1 : NULL;
	if (strcasecmp(mech, "PLAIN") == 0) {
		s->state = ST_AUTH;
		s->auth_mech = AUTH_PLAIN;
		if (initial == NULL)
			reply(s, "334 ");
		else if (strcmp(initial, "=") == 0)
			auth_plain(s, "");
		else
			auth_plain(s, initial);
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->state = ST_AUTH;
		s->auth_mech = AUTH_LOGIN_USER;
		if (initial == NULL)
			reply(s, "334 VXNlcm5hbWU6");
		else
			auth_response(s, initial);
	} else {
		reply(s, "504 5.5.4 Unrecognized authentication mechanism");
	}
}

/* ---- MAIL, RCPT ---- */

/* relay_account - the account this client sends for, or 0 */
static int64_t
relay_account(struct session *s)
{
	if (s->account_id != 0)
		return s->account_id;
	return policy_relay_account(s->sh->policy, (struct sockaddr *)&s->sa);
}

/*
 * mail_refused - whether MAIL cannot start a transaction for account:
 * answers and returns true, or returns false.  The sender's domain is
 * checked separately (it needs the formatted address for the reply).
 */
static bool
mail_refused(struct session *s, const struct smtp_cmd *cmd, int64_t account)
{
	if (s->state == ST_INIT)
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if (s->state != ST_READY)
		reply(s, "503 5.5.1 Error: nested MAIL command");
	else if (s->kind != LISTENER_MX && account == 0)
		reply(s, "530 5.7.0 Authentication required");
	else if (cmd->size > s->cfg->max_message_size)
		reply(s,
		    "552 5.3.4 Message size exceeds fixed limit of %s bytes",
		    s->sh->size_text);
	else if ((cmd->body == SMTP_BODY_8BITMIME ||
		     cmd->body == SMTP_BODY_BINARYMIME || cmd->smtputf8) &&
	    !s->esmtp)
		reply(s, "503 5.5.1 ESMTP parameters need EHLO");
	else if (cmd->body == SMTP_BODY_BINARYMIME)
		reply(s, "504 5.5.4 BODY=BINARYMIME is not supported");
	else
		return false;
	return true;
}

/* txn_begin - the envelope of a new transaction; takes sender */
static void
txn_begin(struct session *s, const struct smtp_cmd *cmd, int64_t account,
    char *sender)
{
	envelope_init(&s->env);
	queue_id_new(s->env.id);
	s->env.account_id = account;
	s->env.credential_id = s->credential_id;
	envelope_set(&s->env.source, account == 0 ? "mx" : "submission");
	envelope_set(&s->env.client_ip, s->ip);
	envelope_set(&s->env.helo, s->helo);
	envelope_set(&s->env.auth_user, s->auth_user);
	s->env.sender = sender;
	s->env.body = cmd->body;
	s->env.smtputf8 = cmd->smtputf8;
	s->env.ret = cmd->ret;
	envelope_set(&s->env.envid, cmd->envid);
	s->state = ST_MAIL;
}

static void
cmd_mail(struct session *s, const struct smtp_cmd *cmd)
{
	const struct mail_addr *a = &cmd->path;
	int64_t account = s->state == ST_READY ? relay_account(s) : 0;
	char *sender, q[300];

	if (mail_refused(s, cmd, account))
		return;
	sender = mail_addr_format(a);
	if (account != 0 && s->cfg->sender_policy != SMTPD_SENDER_NONE &&
	    a->domain_ascii != NULL &&
	    !policy_domain_owned(s->sh->policy, account, a->domain_ascii)) {
		slog(s, LOG_INFO,
		    "event=reject command=MAIL code=553 from=\"%s\" "
		    "account=%" PRId64 " reason=sender-domain",
		    log_quote(sender, q, sizeof(q)), account);
		reply(s,
		    "553 5.7.1 <%s>: Sender address is not in a domain of "
		    "this account",
		    sender);
		free(sender);
		return;
	}
	txn_begin(s, cmd, account, sender);
	slog(s, LOG_DEBUG, "event=mail from=\"%s\"",
	    log_quote(sender, q, sizeof(q)));
	reply(s, "250 2.1.0 Ok");
}

/*
 * rcpt_refused_relay - for a client with no relay rights, whether the
 * recipient is anything but a plain address in an inbound domain.
 * Percent hacks, bang paths, quoted local parts, source routes and
 * address literals are all refused, whatever the domain.
 */
static const char *
rcpt_refused_relay(struct session *s, const struct smtp_cmd *cmd)
{
	const struct mail_addr *a = &cmd->path;

	if (cmd->postmaster)
		return NULL;
	if (a->domain_ascii == NULL || (a->flags & MAIL_ADDR_LITERAL))
		return "Relay access denied";
	if (a->flags & (MAIL_ADDR_ROUTE | MAIL_ADDR_QUOTED))
		return "Relay access denied";
	if (strpbrk(a->local, "%!@") != NULL)
		return "Relay access denied";
	if (!policy_inbound(s->sh->policy, a->domain_ascii))
		return "Relay access denied";
	return NULL;
}

static void
cmd_rcpt(struct session *s, const struct smtp_cmd *cmd)
{
	const char *refusal;
	char *rcpt, q[300];

	if (s->state != ST_MAIL && s->state != ST_RCPT) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	s->rcpt_tried++;
	if ((int64_t)s->env.nrcpts >= s->cfg->max_recipients) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	rcpt = cmd->postmaster ? xstrdup("postmaster")
			       : mail_addr_format(&cmd->path);
	if (s->env.account_id == 0 && (refusal = rcpt_refused_relay(s, cmd))) {
		slog(s, LOG_INFO,
		    "event=reject command=RCPT code=554 "
		    "to=\"%s\" reason=relay",
		    log_quote(rcpt, q, sizeof(q)));
		reply(s, "554 5.7.1 <%s>: %s", rcpt, refusal);
		free(rcpt);
		return;
	}
	envelope_add_rcpt(&s->env, rcpt, cmd->notify, cmd->orcpt);
	free(rcpt);
	s->state = ST_RCPT;
	reply(s, "250 2.1.5 Ok");
}

/* ---- the message ---- */

static void
msg_fail(struct session *s, enum msg_error e, const char *detail)
{
	if (s->msg_error != MSG_OK)
		return;
	s->msg_error = e;
	s->error_line = s->line_no;
	snprintf(s->msg_error_detail, sizeof(s->msg_error_detail), "%s",
	    detail ? detail : "");
}

/* msg_begin - open the spool file for the transaction's message */
static bool
msg_begin(struct session *s)
{
	const char *error;

	s->env.received_at = time(NULL);
	s->msg = spool_msg_new(s->sh->spool, &s->env, &error);
	if (s->msg == NULL) {
		slog(s, LOG_ERROR, "event=spool-failed error=\"%s\"", error);
		return false;
	}
	s->in_header = true;
	s->hdr_scanned = 0;
	s->msg_bytes = 0;
	s->msg_error = MSG_OK;
	s->line_no = 0;
	buf_reset(&s->hdr);
	return true;
}

static const char *
protocol_name(const struct session *s)
{
	/* RFC 3848 */
	if (s->env.smtputf8)
		return s->tls ? (s->auth_user ? "UTF8SMTPSA" : "UTF8SMTPS")
			      : (s->auth_user ? "UTF8SMTPA" : "UTF8SMTP");
	if (!s->esmtp)
		return "SMTP";
	return s->tls ? (s->auth_user ? "ESMTPSA" : "ESMTPS")
		      : (s->auth_user ? "ESMTPA" : "ESMTP");
}

/* check_from - the From: rule of smtpd.sender_policy = strict */
static void
check_from(struct session *s, const char *hdr, size_t len)
{
	char *value, **domains = NULL;
	const char *error;
	size_t n = 0;

	if (s->env.account_id == 0 ||
	    s->cfg->sender_policy != SMTPD_SENDER_STRICT)
		return;
	value = header_field_value(hdr, len, "From");
	if (value == NULL) {
		msg_fail(s, MSG_NO_FROM, NULL);
		return;
	}
	if (header_addr_domains(value, &domains, &n, &error) < 0) {
		msg_fail(s, MSG_BAD_FROM, error);
	} else if (n == 0) {
		/* "From: undisclosed:;" names nobody (RFC 5322 3.6.2). */
		msg_fail(s, MSG_NO_FROM, NULL);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (!policy_domain_owned(
				s->sh->policy, s->env.account_id, domains[i])) {
				msg_fail(s, MSG_FROM_DOMAIN, domains[i]);
				break;
			}
		}
		header_domains_free(domains, n);
	}
	free(value);
}

/*
 * header_finish - the header section is complete (hlen bytes, without
 * the empty line): check it, then write Herald's fields, the section and
 * whatever followed it (tail).
 */
static void
header_finish(struct session *s, size_t hlen)
{
	struct buf pre = BUF_INIT;
	char date[64];
	const char *hdr = buf_cstr(&s->hdr);
	SSL *ssl = s->tls ? bufferevent_openssl_get_ssl(s->bev) : NULL;

	s->in_header = false;
	check_from(s, hdr, hlen);
	time_rfc5322(s->env.received_at, date, sizeof(date));
	/* TCP-info as an address literal (RFC 5321 4.1.3, 4.4). */
	buf_printf(&pre, "Received: from %s ([%s%s])\r\n\tby %s (Herald)",
	    s->helo ? s->helo : "unknown", strchr(s->ip, ':') ? "IPv6:" : "",
	    s->ip, s->cfg->hostname);
	if (ssl != NULL)
		buf_printf(&pre, " (using %s with cipher %s)",
		    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	buf_printf(&pre, "\r\n\twith %s id %s", protocol_name(s), s->env.id);
	if (s->env.nrcpts == 1)
		buf_printf(&pre, "\r\n\tfor <%s>", s->env.rcpts[0].addr);
	buf_printf(&pre, "; %s\r\n", date);
	if (strcmp(s->env.source, "submission") == 0) {
		/* RFC 6409 8.2 and 8.3: the MSA completes the message. */
		if (!header_has_field(hdr, hlen, "Message-ID")) {
			char rnd[13];

			random_token(rnd, 12);
			buf_printf(&pre, "Message-ID: <%s.%s@%s>\r\n",
			    s->env.id, rnd, s->cfg->hostname);
		}
		if (!header_has_field(hdr, hlen, "Date"))
			buf_printf(&pre, "Date: %s\r\n", date);
	}
	if (s->msg_error == MSG_OK &&
	    (spool_msg_write(s->msg, pre.data, pre.len) < 0 ||
		spool_msg_write(s->msg, s->hdr.data, s->hdr.len) < 0))
		msg_fail(s, MSG_IO, strerror(errno));
	buf_free(&pre);
	buf_free(&s->hdr);
}

/* header_end - offset of the end of the header section in hdr, or 0 */
static size_t
header_end(struct session *s, size_t *hlen_r)
{
	const char *h = s->hdr.data;
	size_t len = s->hdr.len;

	if (len >= 1 && h[0] == '\n') {
		*hlen_r = 0;
		return 1;
	}
	if (len >= 2 && h[0] == '\r' && h[1] == '\n') {
		*hlen_r = 0;
		return 2;
	}
	for (size_t i = s->hdr_scanned; i + 1 < len; i++) {
		if (h[i] != '\n')
			continue;
		if (h[i + 1] == '\n') {
			*hlen_r = i + 1;
			return i + 2;
		}
		if (i + 2 < len && h[i + 1] == '\r' && h[i + 2] == '\n') {
			*hlen_r = i + 1;
			return i + 3;
		}
	}
	/* Resume where a "\n\r\n" cut by the chunk boundary could start. */
	s->hdr_scanned = len >= 3 ? len - 3 : 0;
	return 0;
}

static bool
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return true;
	return false;
}

/* msg_feed - n more bytes of the message, already unstuffed */
static void
msg_feed(struct session *s, const char *p, size_t n)
{
	size_t end, hlen;

	s->msg_bytes += n;
	if (s->msg_bytes > s->cfg->max_message_size)
		msg_fail(s, MSG_TOO_BIG, NULL);
	if (s->msg_error != MSG_OK)
		return;
	if (s->cfg->require_8bitmime && s->env.body != SMTP_BODY_8BITMIME &&
	    !s->env.smtputf8 && has_8bit(p, n)) {
		msg_fail(s, MSG_8BIT, NULL);
		return;
	}
	if (!s->in_header) {
		if (spool_msg_write(s->msg, p, n) < 0)
			msg_fail(s, MSG_IO, strerror(errno));
		return;
	}
	buf_append(&s->hdr, p, n);
	end = header_end(s, &hlen);
	if (end == 0) {
		if (s->hdr.len > s->cfg->max_header_size)
			msg_fail(s, MSG_HEADER_TOO_BIG, NULL);
		return;
	}
	if (end < s->hdr.len) {
		/* Body bytes came with the end of the header (BDAT). */
		size_t tail_len = s->hdr.len - end;
		char *tail = xstrndup(s->hdr.data + end, tail_len);

		s->hdr.len = end;
		header_finish(s, hlen);
		if (s->msg_error == MSG_OK &&
		    spool_msg_write(s->msg, tail, tail_len) < 0)
			msg_fail(s, MSG_IO, strerror(errno));
		free(tail);
		return;
	}
	header_finish(s, hlen);
}

/* msg_refusal - the reply for a refused message */
static void
msg_refuse(struct session *s)
{
	char q[200];

	switch (s->msg_error) {
	case MSG_TOO_BIG:
		reply(s,
		    "552 5.3.4 Message size exceeds fixed limit of %s bytes",
		    s->sh->size_text);
		break;
	case MSG_LINE_TOO_LONG:
		reply(s,
		    "554 5.6.0 Line %ld is longer than %" PRIu64 " octets "
		    "(RFC 5321 4.5.3.1.6)",
		    s->error_line, s->cfg->data_line_max);
		break;
	case MSG_BARE_CR:
		reply(s,
		    "554 5.6.0 Bare <CR> on line %ld: lines must end with "
		    "<CR><LF>",
		    s->error_line);
		break;
	case MSG_8BIT:
		reply(s,
		    "554 5.6.1 8-bit data on line %ld without BODY=8BITMIME",
		    s->error_line);
		break;
	case MSG_HEADER_TOO_BIG:
		reply(s, "552 5.3.4 Header section exceeds %" PRIu64 " bytes",
		    s->cfg->max_header_size);
		break;
	case MSG_NO_FROM:
		reply(s, "550 5.7.1 Message has no From: header field");
		break;
	case MSG_BAD_FROM:
		reply(s, "550 5.6.0 Cannot parse the From: header field: %s",
		    s->msg_error_detail);
		break;
	case MSG_FROM_DOMAIN:
		reply(s,
		    "550 5.7.1 From: domain %s is not a domain of this "
		    "account",
		    s->msg_error_detail);
		break;
	case MSG_IO:
		reply(s,
		    "451 4.3.0 Local error writing the message, try again "
		    "later");
		break;
	case MSG_OK:
		break;
	}
	slog(s, LOG_INFO,
	    "event=reject command=%s id=%s error=%s line=%ld "
	    "detail=\"%s\"",
	    s->state == ST_DATA ? "DATA" : "BDAT", s->env.id,
	    msg_error_names[s->msg_error], s->error_line,
	    log_quote(s->msg_error_detail, q, sizeof(q)));
}

static void commit_cb(void *arg, int error);

/* msg_end - the whole message is in: refuse it, or commit and wait */
static void
msg_end(struct session *s)
{
	if (s->msg_error == MSG_OK && s->in_header)
		header_finish(s, s->hdr.len);
	if (s->msg_error != MSG_OK) {
		msg_refuse(s);
		txn_reset(s);
		return;
	}
	s->env.size = spool_msg_size(s->msg);
	s->state = ST_COMMIT;
	bufferevent_disable(s->bev, EV_READ);
	s->commit_pending = true;
	if (spool_msg_commit(&s->msg, commit_cb, s) < 0) {
		s->commit_pending = false;
		s->state = ST_READY;
		bufferevent_enable(s->bev, EV_READ);
		reply(s,
		    "451 4.3.0 Local error committing the message, try "
		    "again later");
		txn_reset(s);
	}
}

/* commit_cb - on the committer thread: hand the result to our loop */
static void
commit_cb(void *arg, int error)
{
	struct session *s = arg;

	s->commit_error = error;
	event_active(s->commit_ev, 0, 0);
}

static void
commit_done(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	char q[300];

	(void)fd;
	(void)what;
	s->commit_pending = false;
	if (s->commit_error != 0) {
		slog(s, LOG_ERROR, "event=commit-failed id=%s error=\"%s\"",
		    s->env.id, strerror(s->commit_error));
		if (!s->dead)
			reply(s,
			    "451 4.3.0 Local error committing the message, "
			    "try again later");
	} else {
		s->messages++;
		slog(s, LOG_INFO,
		    "event=queued id=%s from=\"%s\" rcpts=%zu "
		    "size=%" PRIu64 " account=%" PRId64 " source=%s%s",
		    s->env.id, log_quote(s->env.sender, q, sizeof(q)),
		    s->env.nrcpts, s->env.size, s->env.account_id,
		    s->env.source, s->dead ? " client=gone" : "");
		if (!s->dead)
			reply(s, "250 2.0.0 Ok: queued as %s", s->env.id);
	}
	if (s->dead) {
		session_free(s);
		return;
	}
	s->state = ST_READY;
	txn_reset(s);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* ---- DATA ---- */

static void
cmd_data(struct session *s)
{
	if (s->state == ST_MAIL && s->rcpt_tried > 0) {
		reply(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (s->state != ST_RCPT) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		improper_pipelining(
		    s, "DATA", "(message content sent before the 354 reply)");
		return;
	}
	if (!msg_begin(s)) {
		reply(
		    s, "451 4.3.0 Local error in processing, try again later");
		txn_reset(s);
		return;
	}
	s->state = ST_DATA;
	set_timeout(s, s->cfg->data_timeout);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/*
 * data_step - consume complete lines of DATA input.  Returns 1 when the
 * state changed (end of data), 0 when more input is needed, -1 when the
 * session is closing.
 */
static int
data_step(struct session *s, struct evbuffer *in)
{
	size_t max = s->cfg->data_line_max;
	char *line = s->loop->scratch;

	for (;;) {
		struct evbuffer_ptr eol =
		    evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		size_t n;
		char *p, dot;

		if (eol.pos < 0) {
			n = evbuffer_get_length(in);
			if (n > max) {
				/* Keep the last byte: it may be the CR of CRLF.
				 */
				s->line_no += s->skip_line ? 0 : 1;
				msg_fail(s, MSG_LINE_TOO_LONG, NULL);
				s->skip_line = true;
				evbuffer_drain(in, n - 1);
			}
			return 0;
		}
		n = (size_t)eol.pos + 1;
		/* The dot added for transparency does not count (4.5.3.1.6). */
		if (s->skip_line ||
		    n > max +
			    (evbuffer_copyout(in, &dot, 1) == 1 &&
				dot == '.')) {
			if (!s->skip_line) {
				s->line_no++;
				msg_fail(s, MSG_LINE_TOO_LONG, NULL);
			}
			s->skip_line = false;
			evbuffer_drain(in, n);
			continue;
		}
		evbuffer_remove(in, line, n);
		s->line_no++;
		if (n < 2 || line[n - 2] != '\r') {
			/*
			 * A bare LF could end the data for one server and not
			 * for the next (SMTP smuggling); refuse and close.
			 */
			slog(s, LOG_WARN, "event=bare-lf line=%ld id=%s",
			    s->line_no, s->env.id);
			reply(s,
			    "521 5.5.2 Bare <LF> received on line %ld; lines "
			    "must end with <CR><LF>, closing connection",
			    s->line_no);
			spool_msg_abort(&s->msg);
			session_close(s);
			return -1;
		}
		if (n == 3 && line[0] == '.') {
			set_timeout(s, s->cfg->command_timeout);
			msg_end(s);
			return 1;
		}
		p = line;
		if (line[0] == '.') {
			p++;
			n--;
		}
		if (s->msg_error == MSG_OK && memchr(p, '\r', n - 2) != NULL)
			msg_fail(s, MSG_BARE_CR, NULL);
		msg_feed(s, p, n);
	}
}

/* ---- BDAT (RFC 3030) ---- */

static void
cmd_bdat(struct session *s, const struct smtp_cmd *cmd)
{
	s->bdat_left = cmd->bdat_size;
	s->bdat_last = cmd->bdat_last;
	s->bdat_discard = false;
	if (s->state == ST_MAIL && s->rcpt_tried > 0) {
		reply(s, "554 5.5.1 Error: no valid recipients");
		s->bdat_discard = true;
	} else if (s->state != ST_RCPT && s->state != ST_CHUNKED) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		s->bdat_discard = true;
	} else if (s->bdat_failed) {
		reply(s, "503 5.5.1 Error: an earlier BDAT failed, send RSET");
		s->bdat_discard = true;
	} else if (s->state == ST_RCPT && !msg_begin(s)) {
		reply(
		    s, "451 4.3.0 Local error in processing, try again later");
		s->bdat_discard = true;
	}
	s->bdat_prev = s->state;
	s->state = ST_BDAT;
	set_timeout(s, s->cfg->data_timeout);
}

/* bdat_step - consume chunk octets; 1 when the chunk is done, else 0 */
static int
bdat_step(struct session *s, struct evbuffer *in)
{
	while (s->bdat_left > 0) {
		size_t n = evbuffer_get_length(in);

		if (n == 0)
			return 0;
		if (n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (n > s->loop->scratch_len)
			n = s->loop->scratch_len;
		if (s->bdat_discard) {
			evbuffer_drain(in, n);
		} else {
			evbuffer_remove(in, s->loop->scratch, n);
			msg_feed(s, s->loop->scratch, n);
		}
		s->bdat_left -= n;
	}
	set_timeout(s, s->cfg->command_timeout);
	if (s->bdat_discard) {
		/* The reply was sent when the command was refused. */
		s->bdat_discard = false;
		s->state = s->bdat_prev;
		return 1;
	}
	if (s->msg_error != MSG_OK) {
		s->state = ST_CHUNKED;
		msg_refuse(s);
		spool_msg_abort(&s->msg);
		s->bdat_failed = true;
		return 1;
	}
	if (s->bdat_last) {
		msg_end(s);
		return 1;
	}
	s->state = ST_CHUNKED;
	reply(s, "250 2.0.0 Ok: %" PRIu64 " octets received", s->msg_bytes);
	return 1;
}

/* ---- dispatch ---- */

static void
session_command(struct session *s, char *line, size_t len)
{
	struct smtp_cmd cmd;
	struct smtp_error err;
	unsigned opts = SMTP_CMD_ALLOW_UTF8;

	if (s->state == ST_AUTH) {
		auth_response(s, line);
		return;
	}
	if (s->env.smtputf8)
		opts |= SMTP_CMD_TXN_UTF8;
	memset(&cmd, 0, sizeof(cmd));
	if (smtp_cmd_parse(line, len, opts, &cmd, &err) < 0) {
		char q[200];

		slog(s, LOG_INFO, "event=bad-command code=%d reason=\"%s\"",
		    err.code, log_quote(err.text, q, sizeof(q)));
		reply(s, "%d %s %s", err.code, err.enh, err.text);
		smtp_cmd_clear(&cmd);
		return;
	}
	if (s->state == ST_CHUNKED && cmd.verb != SMTP_BDAT &&
	    cmd.verb != SMTP_RSET && cmd.verb != SMTP_QUIT &&
	    cmd.verb != SMTP_NOOP) {
		reply(s,
		    "503 5.5.1 Error: BDAT transaction in progress, send "
		    "BDAT or RSET");
		smtp_cmd_clear(&cmd);
		return;
	}
	switch (cmd.verb) {
	case SMTP_EHLO:
		cmd_ehlo(s, &cmd, true);
		break;
	case SMTP_HELO:
		cmd_ehlo(s, &cmd, false);
		break;
	case SMTP_MAIL:
		cmd_mail(s, &cmd);
		break;
	case SMTP_RCPT:
		cmd_rcpt(s, &cmd);
		break;
	case SMTP_DATA:
		cmd_data(s);
		break;
	case SMTP_BDAT:
		cmd_bdat(s, &cmd);
		break;
	case SMTP_RSET:
		txn_reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_QUIT:
		reply(s, "221 2.0.0 Bye");
		session_close(s);
		break;
	case SMTP_VRFY:
		reply(s,
		    "252 2.5.2 Cannot VRFY user, but will accept message "
		    "and attempt delivery");
		break;
	case SMTP_EXPN:
		reply(s, "502 5.5.1 EXPN not available");
		break;
	case SMTP_HELP:
		cmd_help(s);
		break;
	case SMTP_STARTTLS:
		cmd_starttls(s);
		break;
	case SMTP_AUTH:
		cmd_auth(s, &cmd);
		break;
	case SMTP_UNKNOWN:
		reply(s, "500 5.5.1 Command unrecognized");
		break;
	}
	smtp_cmd_clear(&cmd);
}

/*
 * command_step - take one command line from in and run it.  Returns 1
 * when a line was handled, 0 when more input is needed.
 */
static int
command_step(struct session *s, struct evbuffer *in)
{
	struct evbuffer_ptr eol =
	    evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	size_t max = s->cfg->command_line_max, n;
	char *line = s->loop->scratch;

	if (eol.pos < 0) {
		n = evbuffer_get_length(in);
		if (n > max + 2) {
			evbuffer_drain(in, n);
			if (!s->skip_line) {
				slog(s, LOG_INFO, "event=line-too-long");
				reply(s,
				    "500 5.5.2 Error: line too long (more than "
				    "%" PRIu64 " octets)",
				    s->cfg->command_line_max);
			}
			s->skip_line = true;
			return 1;
		}
		return 0;
	}
	n = (size_t)eol.pos + 1;
	if (s->skip_line || n > max + 2) {
		evbuffer_drain(in, n);
		if (!s->skip_line) {
			slog(s, LOG_INFO, "event=line-too-long");
			reply(s,
			    "500 5.5.2 Error: line too long (more than %" PRIu64
			    " octets)",
			    s->cfg->command_line_max);
		}
		s->skip_line = false;
		return 1;
	}
	evbuffer_remove(in, line, n);
	n--;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	session_command(s, line, n);
	sodium_memzero(line, n); /* AUTH responses carry secrets */
	if (!s->esmtp && s->state != ST_CLOSING && s->state != ST_TLS &&
	    s->state != ST_AUTH && s->state != ST_DATA && s->state != ST_BDAT &&
	    evbuffer_get_length(in) > 0 && s->helo != NULL) {
		/* PIPELINING was not offered (HELO): one command at a time. */
		improper_pipelining(s, "HELO", "(not offered after HELO)");
	}
	return 1;
}

/* session_process - run the input we have, as far as the state allows */
static void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	/* A zero-size chunk (BDAT 0 LAST) ends with no octets to wait for. */
	while (evbuffer_get_length(in) > 0 ||
	    (s->state == ST_BDAT && s->bdat_left == 0)) {
		int r;

		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    SESSION_OUTPUT_MAX) {
			/* A client that pipelines but does not read: wait. */
			s->out_blocked = true;
			bufferevent_disable(s->bev, EV_READ);
			return;
		}

		switch (s->state) {
		case ST_GREET:
			slog(s, LOG_WARN, "event=early-talker");
			reply(s,
			    "554 5.5.0 Protocol error: data sent before the "
			    "greeting, closing connection");
			session_close(s);
			return;
		case ST_DATA:
			r = data_step(s, in);
			break;
		case ST_BDAT:
			r = bdat_step(s, in);
			break;
		case ST_TLS:
		case ST_COMMIT:
		case ST_WAIT:
		case ST_CLOSING:
			return;
		default:
			r = command_step(s, in);
			break;
		}
		if (r <= 0 || s->state == ST_CLOSING || too_many_errors(s))
			return;
	}
}

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	(void)bev;
	if (s->state == ST_CLOSING) {
		session_free_later(s);
	} else if (s->out_blocked) {
		s->out_blocked = false;
		if (s->state != ST_COMMIT && s->state != ST_WAIT &&
		    s->state != ST_TLS)
			bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	char e[256];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_ready(s);
		return;
	}
	if (s->state == ST_TLS &&
	    (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))) {
		unsigned long ssl_err = bufferevent_get_openssl_error(bev);

		if (ssl_err)
			ERR_error_string_n(ssl_err, e, sizeof(e));
		else
			snprintf(e, sizeof(e), "%s",
			    what & BEV_EVENT_TIMEOUT ? "handshake timeout"
						     : "connection closed");
		slog(s, LOG_WARN, "event=tls-failed reason=\"%s\"", e);
		session_free_later(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    s->state != ST_CLOSING) {
		slog(s, LOG_INFO, "event=timeout state=%d", (int)s->state);
		reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->cfg->hostname);
		session_close(s);
		{
			/* Stop waiting to read; give the 421 ten seconds to
			 * leave. */
			struct timeval wtv = { 10, 0 };

			bufferevent_set_timeouts(s->bev, NULL, &wtv);
		}
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (s->state != ST_CLOSING && s->state != ST_INIT &&
		    s->state != ST_READY)
			slog(s, LOG_INFO, "event=lost-connection state=%d",
			    (int)s->state);
		session_free_later(s);
	}
}

/*
 * admit - count the connection against smtpd.max_connections and
 * smtpd.max_connections_per_ip; over a limit, answer 421 (without TLS,
 * on a best-effort write), close fd and return false.
 */
static bool
admit(const struct smtpd_shared *sh, evutil_socket_t fd, const char *ip,
    enum listener_kind kind)
{
	enum limits_verdict v = limits_connect(sh->limits, ip);
	const char *msg = v == LIMITS_TOTAL
	    ? "421 4.3.2 Too many connections, try again later\r\n"
	    : "421 4.7.0 Too many connections from your address\r\n";

	if (v == LIMITS_OK)
		return true;
	log_write(LOG_WARN, "smtpd", "event=refused ip=%s reason=%s", ip,
	    v == LIMITS_TOTAL ? "max-connections" : "max-connections-per-ip");
	if (kind != LISTENER_SUBMISSIONS &&
	    send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* The client is gone already; nothing to do. */
	}
	evutil_closesocket(fd);
	return false;
}

/* session_new - a session for a counted connection, with its events */
static struct session *
session_new(struct session_loop *loop, const struct sockaddr *sa, int salen,
    const char *ip, enum listener_kind kind)
{
	struct session *s = xcalloc(1, sizeof(*s));
	unsigned char r[6];

	s->loop = loop;
	s->sh = loop->sh;
	s->cfg = loop->sh->cfg;
	s->kind = kind;
	s->counted = true;
	s->started_ms = now_ms();
	memcpy(&s->sa, sa,
	    (size_t)salen < sizeof(s->sa) ? (size_t)salen : sizeof(s->sa));
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(s->id, sizeof(s->id), r, sizeof(r));
	s->free_ev = event_new(loop->base, -1, 0, session_free_cb, s);
	s->timer = evtimer_new(loop->base, auth_timer_cb, s);
	s->commit_ev = event_new(loop->base, -1, 0, commit_done, s);
	s->next = loop->sessions;
	if (loop->sessions)
		loop->sessions->prev = s;
	loop->sessions = s;
	return s;
}

/* session_open_bev - the session's bufferevent over fd; false on failure */
static bool
session_open_bev(struct session *s, evutil_socket_t fd)
{
	struct event_base *base = s->loop->base;
	SSL *ssl;

	if (s->kind != LISTENER_SUBMISSIONS) {
		s->bev =
		    bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
		return s->bev != NULL;
	}
	ssl = SSL_new(s->sh->ssl_ctx);
	s->bev = bufferevent_openssl_socket_new(
	    base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL)
		SSL_free(ssl);
	return s->bev != NULL;
}

void
session_start(struct session_loop *loop, evutil_socket_t fd,
    const struct sockaddr *sa, int salen, enum listener_kind kind)
{
	char ip[INET6_ADDRSTRLEN];
	int port = sockaddr_text(sa, ip, sizeof(ip));
	struct session *s;

	if (!admit(loop->sh, fd, ip, kind))
		return;
	s = session_new(loop, sa, salen, ip, kind);
	log_write(LOG_INFO, "smtpd",
	    "sid=%s event=connect ip=%s port=%d listener=%s", s->id, ip, port,
	    session_listener_name(kind));
	if (!session_open_bev(s, fd)) {
		evutil_closesocket(fd);
		session_free_later(s);
		return;
	}
	if (kind == LISTENER_SUBMISSIONS) {
		tls_begin(s, s->bev); /* the greeting follows the handshake */
		return;
	}
	session_callbacks(s, s->bev);
	set_timeout(s, s->cfg->command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (s->cfg->greet_pause > 0) {
		struct timeval tv = { (time_t)(s->cfg->greet_pause / 1000),
			(suseconds_t)(s->cfg->greet_pause % 1000) * 1000 };

		s->state = ST_GREET;
		evtimer_add(s->timer, &tv);
	} else {
		send_greeting(s);
	}
}

void
session_loop_drop_all(struct session_loop *loop)
{
	while (loop->sessions != NULL)
		session_free(loop->sessions);
}
