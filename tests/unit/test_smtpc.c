/*
 * test_smtpc.c - the outbound SMTP client (mta/smtpc.c).
 *
 * Most cases run the client against a scripted fake server on the same
 * event loop: a listening socket on 127.0.0.1 that plays a script of
 * (command prefix expected, reply) steps and records what it received:
 * the command lines, the message data as sent (still dot-stuffed) and
 * un-stuffed, and the raw bytes with a marker at each read, so that the
 * grouping of pipelined commands can be checked.
 *
 * The last cases talk to real peers: Postfix's smtp-sink and aiosmtpd
 * (with STARTTLS and a self-signed certificate made by openssl(1)); a
 * case skips when its program is missing.
 *
 * Every callback checks that it does not run inside an smtpc_* call,
 * and every run of the loop is bounded by a guard timer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/util.h"
#include "mail/smtp_cmd.h"
#include "mta/smtpc.h"

#define PASSWORD "s3cretpw"

static char log_path[64];
static int log_fd = -1;

/* ---- the fake server ---- */

struct step {
	const char *expect; /* command prefix; "" = the connection opened;
			       "." = end of data; "~" = the first message
			       bytes; "*" = any bytes (after STARTTLS) */
	const char *reply;  /* sent with CRLF; NULL = silence */
	bool close;	    /* hang up after the reply */
};

enum fake_mode { FK_CMD, FK_DATA, FK_BDAT, FK_RAW };

struct fake {
	struct event_base *base;
	struct evconnlistener *lst;
	int port;
	const struct step *scripts[4]; /* one per connection, last repeats */
	int nscripts, nconns;
	struct bufferevent *bev;
	const struct step *step; /* the next step */
	enum fake_mode mode;
	size_t bdat_left;
	struct buf cmds; /* command lines, each followed by "\n" */
	struct buf data; /* message data as received (stuffed) */
	struct buf msg;	 /* message data un-stuffed */
	struct buf raw;	 /* all bytes, '\001' before each read */
	char error[512]; /* the first departure from the script */
};

static void
fake_error(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	if (f->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(f->error, sizeof(f->error), fmt, ap);
	va_end(ap);
}

static void
fake_hangup(struct fake *f)
{
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	f->bev = NULL;
}

static void
fake_flushed(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;

	if (bev == f->bev)
		fake_hangup(f);
}

/* fake_hangup_soon - close once the replies queued have left */
static void
fake_hangup_soon(struct fake *f)
{
	if (evbuffer_get_length(bufferevent_get_output(f->bev)) == 0) {
		fake_hangup(f);
		return;
	}
	bufferevent_disable(f->bev, EV_READ);
	bufferevent_setcb(f->bev, NULL, fake_flushed, NULL, f);
}

/* fake_do - play the next step: its reply, then maybe hang up */
static void
fake_do(struct fake *f)
{
	const struct step *s = f->step;

	if (s->expect == NULL)
		return;
	f->step++;
	if (s->reply != NULL)
		evbuffer_add_printf(
		    bufferevent_get_output(f->bev), "%s\r\n", s->reply);
	if (s->close)
		fake_hangup_soon(f);
}

/* fake_match - a command line against the next step */
static void
fake_match(struct fake *f, const char *line)
{
	const struct step *s = f->step;

	buf_printf(&f->cmds, "%s\n", line);
	if (s->expect == NULL) {
		fake_error(f, "unexpected command after the script: %s", line);
		evbuffer_add_printf(
		    bufferevent_get_output(f->bev), "500 5.5.1 unexpected\r\n");
		return;
	}
	if (strncmp(line, s->expect, strlen(s->expect)) != 0)
		fake_error(f, "expected '%s', got '%s'", s->expect, line);
	if (strncmp(line, "BDAT ", 5) == 0) {
		f->bdat_left = strtoul(line + 5, NULL, 10);
		f->mode = FK_BDAT;
		return;
	}
	if (strcmp(s->expect, "STARTTLS") == 0 && s->reply &&
	    s->reply[0] == '2')
		f->mode = FK_RAW;
	if (s->reply && strncmp(s->reply, "354", 3) == 0)
		f->mode = FK_DATA;
	fake_do(f);
}

/* fake_data - one message line (without CRLF) in DATA mode */
static void
fake_data(struct fake *f, const char *line, size_t len)
{
	if (len == 1 && line[0] == '.') {
		f->mode = FK_CMD;
		if (strcmp(f->step->expect ? f->step->expect : "", ".") != 0)
			fake_error(f, "end of data not in the script");
		fake_do(f);
		return;
	}
	buf_append(&f->data, line, len);
	buf_append(&f->data, "\r\n", 2);
	if (line[0] == '.') {
		line++;
		len--;
	}
	buf_append(&f->msg, line, len);
	buf_append(&f->msg, "\r\n", 2);
}

static void
fake_read(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	buf_append(&f->raw, "\001", 1);
	buf_reserve(&f->raw, n);
	evbuffer_copyout(in, f->raw.data + f->raw.len, n);
	f->raw.len += n;
	f->raw.data[f->raw.len] = '\0';
	while (f->bev == bev && (bufferevent_get_enabled(bev) & EV_READ) &&
	    evbuffer_get_length(in) > 0) {
		char *line;
		size_t len;

		if (f->mode == FK_RAW ||
		    (f->mode == FK_DATA && f->step->expect &&
			strcmp(f->step->expect, "~") == 0)) {
			evbuffer_drain(in, evbuffer_get_length(in));
			f->mode = FK_CMD;
			fake_do(f);
			continue;
		}
		if (f->mode == FK_BDAT) {
			size_t take = evbuffer_get_length(in);
			char *p;

			if (take > f->bdat_left)
				take = f->bdat_left;
			p = xmalloc(take + 1);
			evbuffer_remove(in, p, take);
			buf_append(&f->data, p, take);
			buf_append(&f->msg, p, take);
			free(p);
			f->bdat_left -= take;
			if (f->bdat_left == 0) {
				f->mode = FK_CMD;
				fake_do(f);
			}
			continue;
		}
		line = evbuffer_readln(in, &len,
		    f->mode == FK_DATA ? EVBUFFER_EOL_CRLF_STRICT
				       : EVBUFFER_EOL_CRLF);
		if (line == NULL)
			return;
		if (f->mode == FK_DATA)
			fake_data(f, line, len);
		else
			fake_match(f, line);
		free(line);
	}
}

static void
fake_event(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;

	(void)what;
	if (bev == f->bev)
		fake_hangup(f);
}

static void
fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct fake *f = arg;
	int i = f->nconns < f->nscripts ? f->nconns : f->nscripts - 1;

	(void)l;
	(void)sa;
	(void)salen;
	fake_hangup(f);
	f->nconns++;
	f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(f->bev, fake_read, NULL, fake_event, f);
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
	f->mode = FK_CMD;
	f->step = f->scripts[i];
	if (f->step->expect != NULL && f->step->expect[0] == '\0')
		fake_do(f);
}

/* fake_start - listen on 127.0.0.1, a free port, with these scripts */
static void
fake_start(struct fake *f, struct event_base *base, const struct step *s1,
    const struct step *s2)
{
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->base = base;
	f->scripts[f->nscripts++] = s1;
	if (s2 != NULL)
		f->scripts[f->nscripts++] = s2;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lst = evconnlistener_new_bind(base, fake_accept, f,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(f->lst);
	getsockname(
	    evconnlistener_get_fd(f->lst), (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
}

static void
fake_stop(struct fake *f)
{
	fake_hangup(f);
	if (f->lst != NULL)
		evconnlistener_free(f->lst);
	f->lst = NULL;
	buf_free(&f->cmds);
	buf_free(&f->data);
	buf_free(&f->msg);
	buf_free(&f->raw);
}

/* fake_check - the script was followed to its end */
static void
fake_check(const struct fake *f)
{
	if (f->error[0])
		fail_msg("fake server: %s\nreceived:\n%s", f->error,
		    buf_cstr(&f->cmds));
	if (f->step != NULL && f->step->expect != NULL)
		fail_msg("fake server: script stopped at '%s'\nreceived:\n%s",
		    f->step->expect, buf_cstr(&f->cmds));
}

/* one_read - whether from..to of the raw bytes arrived in one read */
static bool
one_read(const struct fake *f, const char *from, const char *to)
{
	const char *a = strstr(buf_cstr(&f->raw), from);
	const char *b = a ? strstr(a, to) : NULL;

	return b != NULL && memchr(a, '\001', (size_t)(b - a)) == NULL;
}

/* ---- the client's owner ---- */

static bool in_api; /* set around every smtpc_* call */

struct drv {
	struct event_base *base;
	struct smtpc *c;
	struct smtpc_txn *txns[4];
	size_t ntxns, next;
	char events[32]; /* R ready, D done, C close, in order */
	bool idle;	 /* on_ready: neither send nor quit */
	bool abort_in_done, quit_in_done, send_in_done;
	bool closed, close_null, timed_out;
	struct smtpc_result close_err;
	char tls_version[32];
	bool tls_verified;
	int port;
};

static void
drv_event(struct drv *d, char e)
{
	size_t n = strlen(d->events);

	if (n + 1 < sizeof(d->events))
		d->events[n] = e;
}

static void
drv_peer(struct drv *d, struct smtpc *c)
{
	const struct smtpc_peer *p = smtpc_peer_info(c);

	snprintf(d->tls_version, sizeof(d->tls_version), "%s",
	    p->tls_version ? p->tls_version : "");
	d->tls_verified = p->tls_verified;
	d->port = p->port;
}

static void
drv_send_or_quit(struct drv *d, struct smtpc *c)
{
	in_api = true;
	if (d->next < d->ntxns)
		smtpc_send(c, d->txns[d->next++]);
	else
		smtpc_quit(c);
	in_api = false;
}

static void
on_ready(void *arg, struct smtpc *c)
{
	struct drv *d = arg;

	assert_false(in_api);
	drv_event(d, 'R');
	drv_peer(d, c);
	if (!d->idle)
		drv_send_or_quit(d, c);
}

static void
on_done(void *arg, struct smtpc *c, struct smtpc_txn *txn)
{
	struct drv *d = arg;

	(void)txn;
	assert_false(in_api);
	drv_event(d, 'D');
	drv_peer(d, c);
	if (d->abort_in_done) {
		in_api = true;
		smtpc_abort(c);
		in_api = false;
		d->c = NULL;
		d->closed = true;
		event_base_loopbreak(d->base);
	} else if (d->quit_in_done) {
		in_api = true;
		smtpc_quit(c);
		in_api = false;
	} else if (d->send_in_done && d->next < d->ntxns) {
		in_api = true;
		smtpc_send(c, d->txns[d->next++]);
		in_api = false;
	}
}

static void
on_close(void *arg, struct smtpc *c, const struct smtpc_result *error)
{
	struct drv *d = arg;

	(void)c;
	assert_false(in_api);
	drv_event(d, 'C');
	d->closed = true;
	d->close_null = error == NULL;
	if (error != NULL)
		d->close_err = *error;
	d->c = NULL;
	event_base_loopbreak(d->base);
}

static const struct smtpc_callbacks cbs = { on_ready, on_done, on_close };

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	struct drv *d = arg;

	(void)fd;
	(void)what;
	d->timed_out = true;
	event_base_loopbreak(d->base);
}

static struct smtpc_config
config(void)
{
	struct smtpc_config cfg = { 0 };

	cfg.helo_name = "client.test";
	cfg.tls = SMTPC_TLS_NONE;
	cfg.connect_timeout = 2000;
	cfg.greeting_timeout = 2000;
	cfg.command_timeout = 2000;
	cfg.data_timeout = 2000;
	return cfg;
}

static struct smtpc_target
target(const char *host, int port)
{
	struct smtpc_target t = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&t.addr;

	t.host = host;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t.addrlen = sizeof(*sin);
	return t;
}

/* run - connect and run the loop until on_close (at most limit_ms) */
static void
run(struct drv *d, struct event_base *base, const struct smtpc_config *cfg,
    const struct smtpc_target *targets, size_t n, int limit_ms)
{
	struct timeval tv = { limit_ms / 1000, (limit_ms % 1000) * 1000 };
	struct event *guard = evtimer_new(base, guard_cb, d);

	d->base = base;
	in_api = true;
	d->c = smtpc_connect(base, cfg, targets, n, &cbs, d);
	in_api = false;
	assert_non_null(d->c);
	evtimer_add(guard, &tv);
	event_base_dispatch(base);
	event_free(guard);
	if (d->timed_out && d->c != NULL) {
		smtpc_abort(d->c);
		d->c = NULL;
	}
	assert_false(d->timed_out);
}

/* ---- transactions ---- */

struct tx {
	struct smtpc_txn t;
	struct smtpc_rcpt r[4];
};

static struct smtpc_txn *
tx_make(struct tx *x, const char *head, const char *body, size_t nrcpts)
{
	static const char *const addrs[] = { "b@y.test", "c@y.test", "d@y.test",
		"e@y.test" };

	memset(x, 0, sizeof(*x));
	x->t.sender = "a@x.test";
	x->t.head = head;
	x->t.headlen = strlen(head);
	x->t.body = body;
	x->t.bodylen = strlen(body);
	x->t.rcpts = x->r;
	x->t.nrcpts = nrcpts;
	for (size_t i = 0; i < nrcpts; i++)
		x->r[i].addr = addrs[i];
	return &x->t;
}

static void
check_result(
    const struct smtpc_result *r, int code, const char *enh, const char *text)
{
	if (r->code != code || strcmp(r->enh, enh) != 0 ||
	    strstr(r->text, text) == NULL)
		fail_msg("result %d '%s' '%s', expected %d '%s' '...%s...'",
		    r->code, r->enh, r->text, code, enh, text);
}

static struct event_base *
base_new(void)
{
	struct event_base *base = event_base_new();

	assert_non_null(base);
	return base;
}

#define EHLO_FULL                                                              \
	"250-fake.test Hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n"        \
	"250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n"                          \
	"250-ENHANCEDSTATUSCODES\r\n250 CHUNKING"
#define EHLO_SIMPLE "250-fake.test\r\n250 8BITMIME"

/* ---- cases ---- */

/*
 * EHLO capabilities, the MAIL and RCPT parameters (SIZE, BODY, RET,
 * ENVID and ORCPT in xtext, NOTIFY), and PIPELINING: MAIL, every RCPT
 * and DATA in one write.
 */
static void
test_pipelining_params(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO client.test", EHLO_FULL, false },
		{ "MAIL FROM:<a@x.test>", "250 2.1.0 Ok", false },
		{ "RCPT TO:<b@y.test>", "250 2.1.5 Ok", false },
		{ "RCPT TO:<c@y.test>", "250 2.1.5 Ok", false },
		{ "RCPT TO:<d@y.test>", "250 2.1.5 Ok", false },
		{ "DATA", "354 go ahead", false },
		{ ".", "250 2.0.0 Ok: queued as 12345", false },
		{ "QUIT", "221 2.0.0 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x;
	struct smtpc_config cfg = config();
	struct smtpc_target t;
	char want[1024];

	(void)state;
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	d.txns[d.ntxns++] = tx_make(&x, "Subject: hi\r\n\r\n", "body\r\n", 3);
	x.t.eightbit = true;
	x.t.ret = SMTP_RET_HDRS;
	x.t.envid = "id+x=y \xc3\xa9";
	x.r[0].notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
	x.r[0].orcpt = "rfc822;b+tag@y.test";
	x.r[1].notify =
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY;
	x.r[2].notify = SMTP_NOTIFY_NEVER;
	x.r[2].orcpt = "utf-8;d=1@y.test";
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	snprintf(want, sizeof(want),
	    "EHLO client.test\n"
	    "MAIL FROM:<a@x.test> SIZE=%zu BODY=8BITMIME RET=HDRS "
	    "ENVID=id+2Bx+3Dy+20+C3+A9\n"
	    "RCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;b+2Btag@y.test\n"
	    "RCPT TO:<c@y.test> NOTIFY=SUCCESS,FAILURE,DELAY\n"
	    "RCPT TO:<d@y.test> NOTIFY=NEVER ORCPT=utf-8;d+3D1@y.test\n"
	    "DATA\nQUIT\n",
	    x.t.headlen + x.t.bodylen);
	assert_string_equal(buf_cstr(&f.cmds), want);
	assert_true(one_read(&f, "MAIL FROM", "DATA\r\n"));
	assert_string_equal(d.events, "RDRC");
	assert_true(d.close_null);
	for (size_t i = 0; i < 3; i++)
		check_result(
		    &x.r[i].result, 250, "2.0.0", "Ok: queued as 12345");
	check_result(&x.t.mail_result, 250, "2.0.0", "queued as 12345");
	assert_false(x.t.mail_result.local);
	assert_string_equal(d.tls_version, "");
	assert_int_equal(d.port, f.port);
	assert_string_equal(buf_cstr(&f.msg), "Subject: hi\r\n\r\nbody\r\n");
	fake_stop(&f);
	event_base_free(base);
}

/*
 * Dot-stuffing across head and body, after bare LFs too, a message that
 * does not end with CRLF, and a large body streamed by reference.
 */
static void
test_dot_stuffing(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_SIMPLE, false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go ahead", false },
		{ ".", "250 Ok 1", false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go ahead", false },
		{ ".", "250 Ok 2", false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go ahead", false },
		{ ".", "250 Ok 3", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x1, x2, x3;
	struct smtpc_config cfg = config();
	struct smtpc_target t;
	struct buf big = BUF_INIT, want = BUF_INIT;

	(void)state;
	/* 1: head ends a line, body starts with '.', no final CRLF */
	d.txns[d.ntxns++] = tx_make(&x1, "Subject: dots\r\n\r\n",
	    ".first\r\nok\r\n..second\r\n.\r\nx\n.bare\r\nlast line", 1);
	/* 2: empty head, ends with a lone CR */
	d.txns[d.ntxns++] = tx_make(&x2, "", ".\r\nend\r", 1);
	/* 3: 2 MB, one line in three starting with '.' */
	for (int i = 0; big.len < 2 * 1024 * 1024; i++)
		buf_printf(&big, "%sline %d of the big body\r\n",
		    i % 3 == 0 ? "." : "", i);
	d.txns[d.ntxns++] = tx_make(&x3, "Subject: big\r\n\r\n", big.data, 1);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 8000);
	fake_check(&f);
	assert_string_equal(d.events, "RDRDRDRC");
	check_result(&x1.r[0].result, 250, "", "Ok 1");
	check_result(&x2.r[0].result, 250, "", "Ok 2");
	check_result(&x3.r[0].result, 250, "", "Ok 3");
	buf_puts(&want,
	    "Subject: dots\r\n\r\n..first\r\nok\r\n...second\r\n..\r\n"
	    "x\n..bare\r\nlast line\r\n"
	    "..\r\nend\r\n"
	    "Subject: big\r\n\r\n");
	/* the server took "x\n..bare" as one line: compare the stuffed
	 * form for the first two messages, the un-stuffed for the big one */
	assert_memory_equal(f.data.data, want.data, want.len);
	assert_int_equal(f.msg.len, want.len - 4 + big.len);
	assert_memory_equal(
	    f.msg.data + f.msg.len - big.len, big.data, big.len);
	buf_free(&big);
	buf_free(&want);
	fake_stop(&f);
	event_base_free(base);
}

/* BDAT: the raw message (no stuffing) after MAIL and RCPT, one write */
static void
test_bdat(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_FULL, false },
		{ "MAIL", "250 2.1.0 Ok", false },
		{ "RCPT", "250 2.1.5 Ok", false },
		{ "RCPT", "550 5.1.1 No such user", false },
		{ "BDAT 28 LAST", "250 2.0.0 Ok: 28 octets", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x;
	struct smtpc_config cfg = config();
	struct smtpc_target t;

	(void)state;
	cfg.use_chunking = true;
	d.txns[d.ntxns++] =
	    tx_make(&x, "Subject: b\r\n\r\n", ".dot\r\nno end", 2);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_true(one_read(&f, "MAIL FROM", "no end\r\n"));
	assert_int_equal(f.data.len, 28);
	assert_memory_equal(
	    f.data.data, "Subject: b\r\n\r\n.dot\r\nno end\r\n", 28);
	check_result(&x.r[0].result, 250, "2.0.0", "Ok: 28 octets");
	check_result(&x.r[1].result, 550, "5.1.1", "No such user");
	assert_string_equal(d.events, "RDRC");
	fake_stop(&f);
	event_base_free(base);
}

/*
 * Local refusals: SIZE, 8-bit and SMTPUTF8, made before MAIL; the
 * connection stays usable (no RSET needed).
 */
static void
test_local_refusals(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 100",
		    false },
		{ "MAIL FROM:<a@x.test> SIZE=6", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x1, x2, x3, x4;
	struct smtpc_config cfg = config();
	struct smtpc_target t;
	char big[201];

	(void)state;
	memset(big, 'x', 200);
	big[200] = '\0';
	d.txns[d.ntxns++] = tx_make(&x1, "", big, 2);
	d.txns[d.ntxns++] = tx_make(&x2, "", "8bit\r\n", 1);
	x2.t.eightbit = true;
	d.txns[d.ntxns++] = tx_make(&x3, "", "utf8\r\n", 1);
	x3.t.smtputf8 = true;
	d.txns[d.ntxns++] = tx_make(&x4, "", "fine\r\n", 1);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_string_equal(d.events, "RDRDRDRDRC");
	check_result(&x1.r[0].result, 552, "5.3.4", "exceeds size limit 100");
	check_result(&x1.r[1].result, 552, "5.3.4", "fake.test[127.0.0.1]");
	check_result(&x1.t.mail_result, 552, "5.3.4", "message size 202");
	assert_true(x1.r[0].result.local);
	check_result(&x2.r[0].result, 554, "5.6.3", "8BITMIME");
	assert_true(x2.r[0].result.local);
	check_result(&x3.r[0].result, 553, "5.6.7", "SMTPUTF8");
	assert_true(x3.r[0].result.local);
	check_result(&x4.r[0].result, 250, "", "Ok");
	fake_stop(&f);
	event_base_free(base);
}

/*
 * Replies: multi-line, enhanced codes, text joined and cut; malformed
 * and over-long replies are protocol errors that end the connection.
 */
struct reply_case {
	const char *reply; /* to the only RCPT */
	int code;
	const char *enh, *text;
	bool broken; /* a protocol error: code 0 and on_close */
};

static void
test_replies(void **state)
{
	static char longline[5000], manylines[2000], longtext[2000];
	static const struct reply_case cases[] = {
		{ "550-5.1.1 No such user\r\n550-5.1.1 here\r\n550 5.1.1 Bye",
		    550, "5.1.1", "No such user; here; Bye", false },
		{ "450 4.2.0 Try later", 450, "4.2.0", "Try later", false },
		{ "550 No enhanced code", 550, "", "No enhanced code", false },
		{ "550 4.1.1 Wrong class", 550, "", "4.1.1 Wrong class",
		    false },
		{ "550 5.1.1", 550, "5.1.1", "", false },
		{ "550", 550, "", "", false },
		{ "550-5.1.1 a\r\n551 5.1.1 b", 0, "",
		    "protocol error from fake.test[127.0.0.1]: reply codes "
		    "differ",
		    true },
		{ "hello", 0, "", "malformed reply after RCPT", true },
		{ "55 short", 0, "", "malformed reply", true },
		{ "550_5.1.1 x", 0, "", "malformed reply", true },
		{ longline, 0, "", "reply line too long", true },
		{ manylines, 0, "", "too many reply lines", true },
		{ longtext, 550, "5.1.1", "aaaa; aaaa", false }, /* cut */
	};

	(void)state;
	memset(longline, 0, sizeof(longline));
	memcpy(longline, "550 ", 4);
	memset(longline + 4, 'x', 4500);
	manylines[0] = '\0';
	for (int i = 0; i < 101; i++)
		strcat(manylines, i < 100 ? "550-x\r\n" : "550 x");
	longtext[0] = '\0';
	for (int i = 0; i < 100; i++)
		strcat(
		    longtext, i < 99 ? "550-5.1.1 aaaa\r\n" : "550 5.1.1 aaaa");
	for (size_t i = 0; i < NELEM(cases); i++) {
		const struct reply_case *rc = &cases[i];
		struct step s[] = {
			{ "", "220 fake.test ESMTP", false },
			{ "EHLO", EHLO_SIMPLE, false },
			{ "MAIL", "250 Ok", false },
			{ "RCPT", rc->reply, false },
			{ rc->broken ? NULL : "RSET", "250 Ok", false },
			{ "QUIT", "221 Bye", false },
			{ NULL, NULL, false },
		};
		struct event_base *base = base_new();
		struct fake f;
		struct drv d = { 0 };
		struct tx x;
		struct smtpc_config cfg = config();
		struct smtpc_target t;

		d.txns[d.ntxns++] = tx_make(&x, "", "m\r\n", 1);
		fake_start(&f, base, s, NULL);
		t = target("fake.test", f.port);
		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&f);
		check_result(&x.r[0].result, rc->code, rc->enh, rc->text);
		assert_true(strlen(x.r[0].result.text) < SMTPC_REPLY_MAX);
		if (rc->broken) {
			assert_string_equal(d.events, "RDC");
			assert_false(d.close_null);
			check_result(&d.close_err, 0, "", rc->text);
		} else {
			assert_string_equal(d.events, "RDRC");
			/* refused recipient: its reply is mail_result too */
			check_result(
			    &x.t.mail_result, rc->code, rc->enh, rc->text);
		}
		fake_stop(&f);
		event_base_free(base);
	}
}

/* Some recipients refused: each gets its own result; then a 4xx to
 * DATA, RSET, and a second transaction on the same connection. */
static void
test_partial_and_reuse(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_FULL, false },
		{ "MAIL", "250 2.1.0 Ok", false },
		{ "RCPT TO:<b@y.test>", "250 2.1.5 Ok", false },
		{ "RCPT TO:<c@y.test>", "550 5.1.1 <c@y.test>: unknown",
		    false },
		{ "RCPT TO:<d@y.test>", "452 4.2.2 Mailbox full", false },
		{ "RCPT TO:<e@y.test>", "250 2.1.5 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 2.0.0 Ok: queued", false },
		{ "MAIL", "250 2.1.0 Ok", false },
		{ "RCPT", "250 2.1.5 Ok", false },
		{ "DATA", "451 4.3.0 Try again", false },
		{ "RSET", "250 2.0.0 Ok", false },
		{ "MAIL", "250 2.1.0 Ok", false },
		{ "RCPT", "250 2.1.5 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "554 5.7.1 Spam", false },
		{ "RSET", "250 2.0.0 Ok", false },
		{ "MAIL", "250 2.1.0 Ok", false },
		{ "RCPT", "550 5.1.1 no", false },
		{ "DATA", "554 5.5.1 No valid recipients", false },
		{ "RSET", "250 2.0.0 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x1, x2, x3, x4;
	struct smtpc_config cfg = config();
	struct smtpc_target t;

	(void)state;
	d.txns[d.ntxns++] = tx_make(&x1, "", "one\r\n", 4);
	d.txns[d.ntxns++] = tx_make(&x2, "", "two\r\n", 1);
	d.txns[d.ntxns++] = tx_make(&x3, "", "three\r\n", 1);
	d.txns[d.ntxns++] = tx_make(&x4, "", "four\r\n", 1);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_string_equal(d.events, "RDRDRDRDRC");
	check_result(&x1.r[0].result, 250, "2.0.0", "Ok: queued");
	check_result(&x1.r[1].result, 550, "5.1.1", "<c@y.test>: unknown");
	check_result(&x1.r[2].result, 452, "4.2.2", "Mailbox full");
	check_result(&x1.r[3].result, 250, "2.0.0", "Ok: queued");
	check_result(&x2.r[0].result, 451, "4.3.0", "Try again");
	check_result(&x2.t.mail_result, 451, "4.3.0", "Try again");
	check_result(&x3.r[0].result, 554, "5.7.1", "Spam");
	check_result(&x4.r[0].result, 550, "5.1.1", "no");
	check_result(&x4.t.mail_result, 550, "5.1.1", "no");
	/* the message of 4 was not sent: only three messages arrived */
	assert_string_equal(buf_cstr(&f.msg), "one\r\nthree\r\n");
	fake_stop(&f);
	event_base_free(base);
}

/* Without PIPELINING: one command at a time; MAIL refused; RSET. */
static void
test_no_pipelining(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 DSN", false },
		{ "MAIL", "451 4.3.0 Later", false },
		{ "RSET", "250 Ok", false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "550 5.1.1 no", false },
		{ "RCPT", "550 5.1.2 no either", false },
		{ "RSET", "250 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x1, x2;
	struct smtpc_config cfg = config();
	struct smtpc_target t;

	(void)state;
	d.txns[d.ntxns++] = tx_make(&x1, "", "one\r\n", 2);
	d.txns[d.ntxns++] = tx_make(&x2, "", "two\r\n", 2);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_false(one_read(&f, "MAIL FROM", "RCPT TO"));
	check_result(&x1.r[0].result, 451, "4.3.0", "Later");
	check_result(&x1.r[1].result, 451, "4.3.0", "Later");
	check_result(&x1.t.mail_result, 451, "4.3.0", "Later");
	check_result(&x2.r[0].result, 550, "5.1.1", "no");
	check_result(&x2.r[1].result, 550, "5.1.2", "no either");
	check_result(&x2.t.mail_result, 550, "5.1.2", "no either");
	assert_string_equal(d.events, "RDRDRC");
	fake_stop(&f);
	event_base_free(base);
}

/* EHLO refused with 5xx: HELO, and then no extension at all. */
static void
test_helo_fallback(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO client.test", "502 5.5.1 What?", false },
		{ "HELO client.test", "250 fake.test", false },
		{ "MAIL FROM:<a@x.test>", "250 Ok", false },
		{ "RCPT TO:<b@y.test>", "250 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x;
	struct smtpc_config cfg = config();
	struct smtpc_target t;

	(void)state;
	d.txns[d.ntxns++] = tx_make(&x, "", "hello\r\n", 1);
	x.t.envid = "e";
	x.t.ret = SMTP_RET_FULL;
	x.r[0].notify = SMTP_NOTIFY_NEVER;
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_string_equal(buf_cstr(&f.cmds),
	    "EHLO client.test\nHELO client.test\nMAIL FROM:<a@x.test>\n"
	    "RCPT TO:<b@y.test>\nDATA\nQUIT\n");
	check_result(&x.r[0].result, 250, "", "Ok");
	fake_stop(&f);
	event_base_free(base);
}

/* The server hangs up in the middle of the message. */
static void
test_disconnect_in_data(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 PIPELINING", false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "RCPT", "550 5.1.1 no", false },
		{ "DATA", "354 go", false },
		{ "~", NULL, true },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x;
	struct smtpc_config cfg = config();
	struct smtpc_target t;
	char *big = xmalloc(16 * 1024 * 1024 + 1);

	(void)state;
	memset(big, 'x', 16 * 1024 * 1024);
	big[16 * 1024 * 1024] = '\0';
	d.txns[d.ntxns++] = tx_make(&x, "", big, 2);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_string_equal(d.events, "RDC");
	check_result(&x.r[0].result, 0, "",
	    "lost connection with fake.test[127.0.0.1] while sending "
	    "message body");
	assert_true(x.r[0].result.local);
	check_result(&x.r[1].result, 550, "5.1.1", "no");
	check_result(&x.t.mail_result, 0, "", "lost connection");
	assert_false(d.close_null);
	check_result(&d.close_err, 0, "", "lost connection");
	free(big);
	fake_stop(&f);
	event_base_free(base);
}

/* A server that stops answering: the command timeout. */
static void
test_timeout(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_SIMPLE, false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", NULL, false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct drv d = { 0 };
	struct tx x;
	struct smtpc_config cfg = config();
	struct smtpc_target t;
	uint64_t t0 = now_ms();

	(void)state;
	cfg.command_timeout = 300;
	d.txns[d.ntxns++] = tx_make(&x, "", "m\r\n", 1);
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_true(now_ms() - t0 >= 300 && now_ms() - t0 < 2000);
	assert_string_equal(d.events, "RDC");
	check_result(&x.r[0].result, 0, "",
	    "conversation with fake.test[127.0.0.1] timed out after RCPT");
	check_result(&d.close_err, 0, "", "timed out after RCPT");
	fake_stop(&f);
	event_base_free(base);
}

/* closed_port - a port on 127.0.0.1 where nothing listens */
static int
closed_port(void)
{
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

/*
 * Targets in order: a closed port, a 554 greeting, a silent greeting
 * and a 4xx to EHLO move on to the next; when every one fails, on_close
 * has the last failure (its code when a 5xx refusal).
 */
static void
test_targets(void **state)
{
	static const struct step refuse[] = {
		{ "", "554 5.7.1 go away", false },
		{ "QUIT", "221 Bye", false }, /* not reached */
		{ NULL, NULL, false },
	};
	static const struct step silent[] = {
		{ "", NULL, false },
		{ NULL, NULL, false },
	};
	static const struct step busy[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "421 4.3.2 busy", true },
		{ NULL, NULL, false },
	};
	static const struct step ok[] = {
		{ "", "220 ok.test ESMTP", false },
		{ "EHLO", EHLO_SIMPLE, false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake fr, fs, fb, fo;
	struct smtpc_config cfg = config();
	int dead = closed_port();

	(void)state;
	cfg.greeting_timeout = 300;
	fake_start(&fr, base, refuse, NULL);
	fake_start(&fs, base, silent, NULL);
	fake_start(&fb, base, busy, NULL);
	fake_start(&fo, base, ok, NULL);
	{
		struct smtpc_target t[] = { target("dead.test", dead),
			target("refuse.test", fr.port),
			target("silent.test", fs.port),
			target("busy.test", fb.port),
			target("ok.test", fo.port) };
		struct drv d = { 0 };
		struct tx x;

		d.txns[d.ntxns++] = tx_make(&x, "", "m\r\n", 1);
		run(&d, base, &cfg, t, NELEM(t), 5000);
		assert_string_equal(d.events, "RDRC");
		check_result(&x.r[0].result, 250, "", "Ok");
		assert_int_equal(d.port, fo.port);
		assert_int_equal(fr.nconns, 1);
		assert_int_equal(fs.nconns, 1);
		assert_int_equal(fb.nconns, 1);
		fake_check(&fo);
	}
	{
		/* all fail: the last failure, a 5xx greeting */
		struct smtpc_target t[] = { target("dead.test", dead),
			target("mx1", fr.port) };
		struct drv d = { 0 };

		run(&d, base, &cfg, t, NELEM(t), 5000);
		assert_string_equal(d.events, "C");
		check_result(&d.close_err, 554, "5.7.1",
		    "mx1[127.0.0.1] refused to talk: 554 5.7.1 go away");
	}
	{
		/* all fail: the last failure, a refused connect */
		struct smtpc_target t[] = { target("mx1", fr.port),
			target("mx1.example.com", dead) };
		struct drv d = { 0 };
		char want[128];

		run(&d, base, &cfg, t, NELEM(t), 5000);
		assert_string_equal(d.events, "C");
		snprintf(want, sizeof(want),
		    "connect to mx1.example.com[127.0.0.1]:%d: Connection "
		    "refused",
		    dead);
		check_result(&d.close_err, 0, "", want);
		assert_true(d.close_err.local);
	}
	{
		/* all fail: a silent server, a 421 to EHLO */
		struct smtpc_target t[] = { target("silent.test", fs.port),
			target("busy.test", fb.port) };
		struct drv d = { 0 };

		run(&d, base, &cfg, t, NELEM(t), 5000);
		check_result(&d.close_err, 421, "4.3.2",
		    "busy.test[127.0.0.1] refused EHLO: 421 4.3.2 busy");
	}
	fake_stop(&fr);
	fake_stop(&fs);
	fake_stop(&fb);
	fake_stop(&fo);
	event_base_free(base);
}

/*
 * A connect that hangs (a listener whose accept queue is full drops the
 * SYN): the connect timeout, then the next target.
 */
static void
test_connect_timeout(void **state)
{
	static const struct step ok[] = {
		{ "", "220 ok.test ESMTP", false },
		{ "EHLO", EHLO_SIMPLE, false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), filler;
	struct pollfd pfd;
	struct fake fo;
	struct smtpc_config cfg = config();
	struct drv d = { 0 };
	uint64_t t0;

	(void)state;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	getsockname(lfd, (struct sockaddr *)&sin, &len);
	filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(filler, (struct sockaddr *)&sin, sizeof(sin));
	pfd.fd = filler;
	pfd.events = POLLOUT;
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	fake_start(&fo, base, ok, NULL);
	cfg.connect_timeout = 200;
	{
		struct smtpc_target t[] = { target("hang.test",
						ntohs(sin.sin_port)),
			target("ok.test", fo.port) };
		char want[128];

		t0 = now_ms();
		run(&d, base, &cfg, t, NELEM(t), 5000);
		assert_true(now_ms() - t0 >= 200);
		assert_string_equal(d.events, "RC");
		assert_int_equal(d.port, fo.port);
		fake_check(&fo);
		/* alone, it is the connection's error */
		memset(&d, 0, sizeof(d));
		run(&d, base, &cfg, t, 1, 5000);
		snprintf(want, sizeof(want),
		    "connect to hang.test[127.0.0.1]:%d: Connection timed out",
		    ntohs(sin.sin_port));
		check_result(&d.close_err, 0, "", want);
	}
	close(filler);
	close(lfd);
	fake_stop(&fo);
	event_base_free(base);
}

/*
 * RSET refused after a failed transaction: the connection ends; a
 * transaction the owner sent from on_done meanwhile gets code 0.
 */
static void
test_rset_refused(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_SIMPLE, false },
		{ "MAIL", "451 4.3.0 Later", false },
		{ "RSET", "500 5.5.1 No", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f;
	struct smtpc_config cfg = config();
	struct smtpc_target t;
	struct drv d = { 0 };
	struct tx x1, x2;

	(void)state;
	fake_start(&f, base, s, NULL);
	t = target("fake.test", f.port);
	d.send_in_done = true;
	d.txns[d.ntxns++] = tx_make(&x1, "", "1\r\n", 1);
	d.txns[d.ntxns++] = tx_make(&x2, "", "2\r\n", 1);
	run(&d, base, &cfg, &t, 1, 5000);
	fake_check(&f);
	assert_string_equal(d.events, "RDDC");
	check_result(&x1.r[0].result, 451, "4.3.0", "Later");
	check_result(&x2.r[0].result, 0, "",
	    "fake.test[127.0.0.1] refused RSET: 500 5.5.1 No");
	check_result(&d.close_err, 0, "", "refused RSET");
	fake_stop(&f);
	event_base_free(base);
}

/* AUTH PLAIN, AUTH LOGIN, and a refusal that tries no other target. */
static void
test_auth(void **state)
{
	static const struct step plain[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 AUTH LOGIN PLAIN", false },
		{ "AUTH PLAIN AHVzZXIAczNjcmV0cHc=", "235 2.7.0 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	static const struct step login[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 AUTH=LOGIN", false },
		{ "AUTH LOGIN", "334 VXNlcm5hbWU6", false },
		{ "dXNlcg==", "334 UGFzc3dvcmQ6", false },
		{ "czNjcmV0cHc=", "235 2.7.0 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	static const struct step refuse[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 AUTH PLAIN", false },
		{ "AUTH PLAIN", "535 5.7.8 Authentication credentials invalid",
		    false },
		{ NULL, NULL, false },
	};
	static const struct step none[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 AUTH CRAM-MD5", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake fp, fl, fr, fn;
	struct smtpc_config cfg = config();

	(void)state;
	cfg.auth_user = "user";
	cfg.auth_password = PASSWORD;
	fake_start(&fp, base, plain, NULL);
	fake_start(&fl, base, login, NULL);
	fake_start(&fr, base, refuse, NULL);
	fake_start(&fn, base, none, NULL);
	{
		struct smtpc_target t = target("fake.test", fp.port);
		struct drv d = { 0 };

		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&fp);
		assert_string_equal(d.events, "RC");
		assert_true(d.close_null);
	}
	{
		struct smtpc_target t = target("fake.test", fl.port);
		struct drv d = { 0 };

		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&fl);
		assert_string_equal(d.events, "RC");
	}
	{
		/* no AUTH we know: next target; refused AUTH: stop there */
		struct smtpc_target t[] = { target("none.test", fn.port),
			target("fake.test", fr.port),
			target("fake.test", fp.port) };
		struct drv d = { 0 };

		run(&d, base, &cfg, t, NELEM(t), 5000);
		fake_check(&fr);
		assert_string_equal(d.events, "C");
		check_result(&d.close_err, 0, "",
		    "authentication failed at fake.test[127.0.0.1]: 535 "
		    "5.7.8 Authentication credentials invalid");
		assert_int_equal(fn.nconns, 1);
		assert_int_equal(fp.nconns, 1); /* only the first case */
	}
	{
		/* with TLS_MAY and no STARTTLS: never AUTH in the clear */
		struct smtpc_target t = target("fake.test", fp.port);
		struct drv d = { 0 };
		char err[256];

		cfg.tls = SMTPC_TLS_MAY;
		cfg.ssl_ctx = smtpc_ssl_ctx_new("", err, sizeof(err));
		assert_non_null(cfg.ssl_ctx);
		run(&d, base, &cfg, &t, 1, 5000);
		check_result(&d.close_err, 0, "",
		    "cannot authenticate to fake.test[127.0.0.1] without TLS");
		SSL_CTX_free(cfg.ssl_ctx);
	}
	fake_stop(&fp);
	fake_stop(&fl);
	fake_stop(&fr);
	fake_stop(&fn);
	event_base_free(base);
}

/*
 * The owner calls back into smtpc from its callbacks: smtpc_send and
 * smtpc_quit from on_done, smtpc_abort from on_done (no on_close); an
 * idle connection that the server ends with 421.
 */
static void
test_reentry(void **state)
{
	static const struct step s[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_FULL, false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 Ok 1", false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 Ok 2", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	static const struct step idle[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250 fake.test\r\n421 4.4.2 idle too long", true },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake f, fi;
	struct smtpc_config cfg = config();
	struct smtpc_target t;

	(void)state;
	fake_start(&f, base, s, s);
	fake_start(&fi, base, idle, NULL);
	t = target("fake.test", f.port);
	{
		/* send from on_done, then quit from on_done */
		struct drv d = { 0 };
		struct tx x1, x2;

		d.send_in_done = true;
		d.txns[d.ntxns++] = tx_make(&x1, "", "1\r\n", 1);
		d.txns[d.ntxns++] = tx_make(&x2, "", "2\r\n", 1);
		run(&d, base, &cfg, &t, 1, 5000);
		assert_string_equal(d.events, "RDDRC");
		check_result(&x2.r[0].result, 250, "", "Ok 2");
	}
	{
		struct drv d = { 0 };
		struct tx x1;

		d.quit_in_done = true;
		d.txns[d.ntxns++] = tx_make(&x1, "", "1\r\n", 1);
		run(&d, base, &cfg, &t, 1, 5000);
		assert_string_equal(d.events, "RDC");
		assert_true(d.close_null);
	}
	{
		struct drv d = { 0 };
		struct tx x1;

		d.abort_in_done = true;
		d.txns[d.ntxns++] = tx_make(&x1, "", "1\r\n", 1);
		run(&d, base, &cfg, &t, 1, 5000);
		assert_string_equal(d.events, "RD");
		/* let the fake server see the close */
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	{
		struct drv d = { 0 };

		d.idle = true;
		t = target("fake.test", fi.port);
		run(&d, base, &cfg, &t, 1, 5000);
		assert_false(d.close_null);
		check_result(&d.close_err, 0, "",
		    "fake.test[127.0.0.1] said: 421 4.4.2 idle too long");
	}
	{
		/* abort outside any callback, before anything happened */
		struct drv d = { 0 };
		struct smtpc *c;

		in_api = true;
		c = smtpc_connect(base, &cfg, &t, 1, &cbs, &d);
		smtpc_abort(c);
		in_api = false;
		event_base_loop(base, EVLOOP_NONBLOCK);
		assert_string_equal(d.events, "");
	}
	fake_stop(&f);
	fake_stop(&fi);
	event_base_free(base);
}

/*
 * TLS policy with fake servers: encrypt without STARTTLS offered; may
 * with a handshake that fails (retried in plaintext on the same
 * target); may with STARTTLS refused (goes on in plaintext).
 */
static void
test_tls_policy(void **state)
{
	static const struct step notls[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", EHLO_SIMPLE, false },
		{ NULL, NULL, false },
	};
	static const struct step broken[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 STARTTLS", false },
		{ "STARTTLS", "220 2.0.0 go ahead", false },
		{ "*", "this is not TLS", true },
		{ NULL, NULL, false },
	};
	static const struct step plain[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 STARTTLS", false },
		{ "MAIL", "250 Ok", false },
		{ "RCPT", "250 Ok", false },
		{ "DATA", "354 go", false },
		{ ".", "250 Ok", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	static const struct step mute[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 STARTTLS", false },
		{ "STARTTLS", "220 2.0.0 go ahead", false },
		{ "*", NULL, false },
		{ NULL, NULL, false },
	};
	static const struct step refused[] = {
		{ "", "220 fake.test ESMTP", false },
		{ "EHLO", "250-fake.test\r\n250 STARTTLS", false },
		{ "STARTTLS", "454 4.7.0 TLS not available", false },
		{ "QUIT", "221 Bye", false },
		{ NULL, NULL, false },
	};
	struct event_base *base = base_new();
	struct fake fn, fb, fr, fm;
	struct smtpc_config cfg = config();
	char err[256];

	(void)state;
	cfg.ssl_ctx = smtpc_ssl_ctx_new("", err, sizeof(err));
	assert_non_null(cfg.ssl_ctx);
	fake_start(&fn, base, notls, NULL);
	fake_start(&fb, base, broken, plain);
	fake_start(&fr, base, refused, NULL);
	fake_start(&fm, base, mute, plain);
	{
		struct smtpc_target t = target("fake.test", fn.port);
		struct drv d = { 0 };

		cfg.tls = SMTPC_TLS_ENCRYPT;
		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&fn);
		check_result(&d.close_err, 0, "",
		    "TLS required but not offered by fake.test[127.0.0.1]");
	}
	{
		struct smtpc_target t = target("fake.test", fb.port);
		struct drv d = { 0 };
		struct tx x;

		cfg.tls = SMTPC_TLS_MAY;
		d.txns[d.ntxns++] = tx_make(&x, "", "m\r\n", 1);
		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&fb);
		assert_int_equal(fb.nconns, 2);
		assert_string_equal(d.events, "RDRC");
		check_result(&x.r[0].result, 250, "", "Ok");
		assert_string_equal(d.tls_version, "");
	}
	{
		/* the same under encrypt: no plaintext retry */
		struct smtpc_target t = target("fake.test", fb.port);
		struct drv d = { 0 };

		fb.nconns = 0;
		cfg.tls = SMTPC_TLS_ENCRYPT;
		run(&d, base, &cfg, &t, 1, 5000);
		assert_int_equal(fb.nconns, 1);
		check_result(&d.close_err, 0, "",
		    "TLS handshake with fake.test[127.0.0.1] failed");
	}
	{
		struct smtpc_target t = target("fake.test", fr.port);
		struct drv d = { 0 };

		cfg.tls = SMTPC_TLS_MAY;
		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&fr);
		assert_string_equal(d.events, "RC");
		assert_true(d.close_null);
	}
	{
		/* a handshake that never ends: the timeout, then plaintext */
		struct smtpc_target t = target("fake.test", fm.port);
		struct drv d = { 0 };
		struct tx x;

		cfg.tls = SMTPC_TLS_MAY;
		cfg.greeting_timeout = 300;
		d.txns[d.ntxns++] = tx_make(&x, "", "m\r\n", 1);
		run(&d, base, &cfg, &t, 1, 5000);
		fake_check(&fm);
		assert_int_equal(fm.nconns, 2);
		check_result(&x.r[0].result, 250, "", "Ok");
	}
	SSL_CTX_free(cfg.ssl_ctx);
	fake_stop(&fn);
	fake_stop(&fb);
	fake_stop(&fr);
	fake_stop(&fm);
	event_base_free(base);
}

/* ---- real peers ---- */

static int
free_port(void)
{
	return closed_port();
}

/* wait_port - until something listens on 127.0.0.1:port (5 s at most) */
static bool
wait_port(int port)
{
	struct smtpc_target t = target("", port);

	for (int i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int r = connect(fd, (struct sockaddr *)&t.addr, t.addrlen);

		close(fd);
		if (r == 0)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static pid_t children[4]; /* started here, stopped by stop() or teardown */
static char tmpdir[64];	  /* certificate and key, removed by teardown */

/* spawn - run argv with output to /dev/null; its pid */
static pid_t
spawn(char *const argv[])
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	for (size_t i = 0; pid > 0 && i < NELEM(children); i++)
		if (children[i] == 0) {
			children[i] = pid;
			break;
		}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* stop - end a process we started, by its pid (at most 2 s, then KILL) */
static void
stop(pid_t pid)
{
	for (size_t i = 0; i < NELEM(children); i++)
		if (children[i] == pid)
			children[i] = 0;
	kill(pid, SIGTERM);
	for (int i = 0; i < 40; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* stop_all - a failed case left processes or files behind: clean up */
static int
stop_all(void **state)
{
	char path[128];

	(void)state;
	for (size_t i = 0; i < NELEM(children); i++)
		if (children[i] > 0)
			stop(children[i]);
	if (tmpdir[0]) {
		snprintf(path, sizeof(path), "%s/cert.pem", tmpdir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/key.pem", tmpdir);
		unlink(path);
		rmdir(tmpdir);
		tmpdir[0] = '\0';
	}
	return 0;
}

/* deliver - one message with two recipients; expect 250 for both */
static void
deliver(struct event_base *base, struct smtpc_config *cfg, const char *host,
    int port, struct drv *d)
{
	struct smtpc_target t = target(host, port);
	struct tx x1, x2;

	d->txns[d->ntxns++] =
	    tx_make(&x1, "Subject: real\r\n\r\n", ".dot line\r\nbody\r\n", 2);
	x1.r[0].notify = SMTP_NOTIFY_FAILURE;
	x1.t.envid = "real+1";
	d->txns[d->ntxns++] = tx_make(&x2, "Subject: again\r\n\r\n", "b", 1);
	run(d, base, cfg, &t, 1, 8000);
	assert_string_equal(d->events, "RDRDRC");
	assert_true(d->close_null);
	check_result(&x1.r[0].result, 250, x1.r[0].result.enh, "");
	check_result(&x1.r[1].result, 250, x1.r[1].result.enh, "");
	check_result(&x2.r[0].result, 250, x2.r[0].result.enh, "");
}

static void
test_real_smtp_sink(void **state)
{
	const char *sink = "/usr/sbin/smtp-sink";
	struct event_base *base;
	struct smtpc_config cfg = config();
	char addr[64], err[256];
	pid_t pid;
	int port;

	(void)state;
	if (access(sink, X_OK) != 0)
		skip();
	port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	{
		char *argv[] = { (char *)sink, "-u", "nobody", addr, "10",
			NULL };
		char *argv_user[] = { (char *)sink, addr, "10", NULL };

		pid = spawn(geteuid() == 0 ? argv : argv_user);
	}
	if (!wait_port(port)) {
		stop(pid);
		fail_msg("smtp-sink did not start");
	}
	base = base_new();
	{
		struct drv d = { 0 };

		deliver(base, &cfg, "localhost", port, &d);
	}
	{
		/* smtp-sink offers AUTH PLAIN and takes anything */
		struct drv d = { 0 };

		cfg.auth_user = "user";
		cfg.auth_password = PASSWORD;
		deliver(base, &cfg, "localhost", port, &d);
		cfg.auth_user = cfg.auth_password = NULL;
	}
	{
		struct smtpc_target t = target("localhost", port);
		struct drv d = { 0 };

		cfg.tls = SMTPC_TLS_ENCRYPT;
		cfg.ssl_ctx = smtpc_ssl_ctx_new("", err, sizeof(err));
		run(&d, base, &cfg, &t, 1, 5000);
		check_result(&d.close_err, 0, "",
		    "TLS required but not offered by localhost[127.0.0.1]");
		SSL_CTX_free(cfg.ssl_ctx);
	}
	stop(pid);
	event_base_free(base);
}

static void
test_real_aiosmtpd(void **state)
{
	const char *py = "/usr/bin/python3";
	char cmd[512], cert[128], key[128];
	char addr[64], err[256];
	struct event_base *base;
	struct smtpc_config cfg = config();
	pid_t plain, tls;
	int pport, tport;

	(void)state;
	if (access(py, X_OK) != 0 ||
	    system("/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null") != 0)
		skip();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_smtpc.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	snprintf(cmd, sizeof(cmd),
	    "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost "
	    "-addext subjectAltName=DNS:localhost -days 1 -keyout %s -out %s "
	    ">/dev/null 2>&1",
	    key, cert);
	assert_int_equal(system(cmd), 0);
	pport = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", pport);
	{
		char *argv[] = { (char *)py, "-m", "aiosmtpd", "-n", "-l", addr,
			NULL };

		plain = spawn(argv);
	}
	tport = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", tport);
	{
		char *argv[] = { (char *)py, "-m", "aiosmtpd", "-n", "-l", addr,
			"--tlscert", cert, "--tlskey", key, NULL };

		tls = spawn(argv);
	}
	if (!wait_port(pport) || !wait_port(tport)) {
		stop(plain);
		stop(tls);
		fail_msg("aiosmtpd did not start");
	}
	base = base_new();
	{
		struct drv d = { 0 };

		deliver(base, &cfg, "localhost", pport, &d);
		assert_string_equal(d.tls_version, "");
	}
	cfg.ssl_ctx = smtpc_ssl_ctx_new("", err, sizeof(err));
	assert_non_null(cfg.ssl_ctx);
	{
		struct drv d = { 0 };

		cfg.tls = SMTPC_TLS_MAY;
		deliver(base, &cfg, "localhost", tport, &d);
		assert_true(strncmp(d.tls_version, "TLSv1.", 6) == 0);
		assert_false(d.tls_verified);
	}
	{
		/* encrypt, against the server without STARTTLS */
		struct smtpc_target t = target("localhost", pport);
		struct drv d = { 0 };

		cfg.tls = SMTPC_TLS_ENCRYPT;
		run(&d, base, &cfg, &t, 1, 5000);
		check_result(&d.close_err, 0, "",
		    "TLS required but not offered by localhost[127.0.0.1]");
	}
	{
		/* verify with the default CAs: the self-signed one fails */
		struct smtpc_target t = target("localhost", tport);
		struct drv d = { 0 };

		cfg.tls = SMTPC_TLS_VERIFY;
		run(&d, base, &cfg, &t, 1, 5000);
		check_result(&d.close_err, 0, "",
		    "certificate verification failed for localhost[127.0.0.1]");
	}
	SSL_CTX_free(cfg.ssl_ctx);
	cfg.ssl_ctx = smtpc_ssl_ctx_new(cert, err, sizeof(err));
	assert_non_null(cfg.ssl_ctx);
	{
		/* verify with the certificate as CA and the right name */
		struct drv d = { 0 };

		deliver(base, &cfg, "localhost", tport, &d);
		assert_true(d.tls_verified);
	}
	{
		/* ... and a name the certificate does not have */
		struct smtpc_target t = target("mx.wrong.test", tport);
		struct drv d = { 0 };

		run(&d, base, &cfg, &t, 1, 5000);
		check_result(&d.close_err, 0, "",
		    "certificate verification failed for "
		    "mx.wrong.test[127.0.0.1]");
	}
	SSL_CTX_free(cfg.ssl_ctx);
	{
		char e2[256];

		assert_null(
		    smtpc_ssl_ctx_new("/nonexistent.pem", e2, sizeof(e2)));
		assert_non_null(strstr(e2, "/nonexistent.pem"));
	}
	stop_all(NULL);
	event_base_free(base);
}

/* The log has tls and connection events, and never the password. */
static void
test_log(void **state)
{
	struct stat st;
	char *text;
	int fd;

	(void)state;
	fd = open(log_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	text = xmalloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, text, (size_t)st.st_size), st.st_size);
	text[st.st_size] = '\0';
	close(fd);
	assert_null(strstr(text, PASSWORD));
	assert_null(strstr(text, "czNjcmV0cHc")); /* base64 of it */
	assert_non_null(strstr(text, "event=connected host=fake.test"));
	assert_non_null(strstr(text, "event=ready"));
	assert_non_null(strstr(text, "event=auth result=failed"));
	assert_non_null(strstr(text, "action=retry-plaintext"));
	assert_non_null(strstr(text, "failed: timeout\" action=retry"));
	free(text);
}

int
main(void)
{
	int rc;

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelining_params),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_local_refusals),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_partial_and_reuse),
		cmocka_unit_test(test_no_pipelining),
		cmocka_unit_test(test_helo_fallback),
		cmocka_unit_test(test_disconnect_in_data),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_rset_refused),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_reentry),
		cmocka_unit_test(test_tls_policy),
		cmocka_unit_test_teardown(test_real_smtp_sink, stop_all),
		cmocka_unit_test_teardown(test_real_aiosmtpd, stop_all),
		cmocka_unit_test(test_log),
	};

	signal(SIGPIPE, SIG_IGN);
	snprintf(log_path, sizeof(log_path), "/tmp/test_smtpc.log.XXXXXX");
	log_fd = mkstemp(log_path);
	if (log_fd < 0)
		return 1;
	log_init(LOG_DEBUG, log_fd);
	fprintf(stderr, "# smtpc log: %s (kept on failure)\n", log_path);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (rc == 0)
		unlink(log_path);
	return rc;
}
