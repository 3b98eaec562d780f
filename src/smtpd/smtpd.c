/*
 * smtpd.c - listeners and event-loop threads of the SMTP server.
 *
 * Sockets are bound in smtpd_new(), before the caller drops privileges.
 * smtpd_run() starts smtpd.threads loops; each loop has its own
 * evconnlistener on a dup() of every listening socket, so the kernel
 * spreads connections over the loops and a session stays on the loop
 * that accepted it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "smtpd/limits.h"
#include "smtpd/policy.h"
#include "smtpd/session.h"
#include "smtpd/smtpd.h"
#include "smtpd/tls.h"

#define SMTPD_MAX_LISTENERS 16

struct listener {
	enum listener_kind kind;
	int fd;
	char addr[128];
};

struct loop_listener {
	struct session_loop *loop;
	enum listener_kind kind;
	struct evconnlistener *evl;
	struct event *pause; /* re-enables accepting after an error */
};

struct loop {
	struct session_loop sl;
	pthread_t thread;
	struct loop_listener ll[SMTPD_MAX_LISTENERS];
};

struct smtpd {
	struct smtpd_config cfg;
	struct smtpd_shared sh;
	struct listener listeners[SMTPD_MAX_LISTENERS];
	int nlisteners;
	struct loop *loops;
	int nloops;
	bool running;
};

/*
 * parse_hostport - "127.0.0.1:2525", "[::1]:2525", "*:25", ":25" into a
 * bound, listening, non-blocking socket.  Returns the fd, or -1 with err.
 */
static int
listen_on(const char *spec, char *err, size_t errlen)
{
	char host[256], port[16];
	const char *colon;
	struct addrinfo hints, *res = NULL;
	int fd = -1, one = 1, r;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':' ||
		    (size_t)(close - spec - 1) >= sizeof(host)) {
			snprintf(err, errlen, "bad listen address '%s'", spec);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - spec - 1),
		    spec + 1);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
			snprintf(err, errlen,
			    "bad listen address '%s' "
			    "(expected host:port)",
			    spec);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	r = getaddrinfo(
	    *host && strcmp(host, "*") != 0 ? host : NULL, port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "bad listen address '%s': %s", spec,
		    gai_strerror(r));
		return -1;
	}
	fd = socket(
	    res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* "[::]" serves IPv6 only, so "0.0.0.0" can be listed beside it. */
	if (fd >= 0 && res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 1024) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int
add_listeners(struct smtpd *s, const char *list, enum listener_kind kind,
    char *err, size_t errlen)
{
	char *copy = xstrdup(list), *tok, *save = NULL;
	int r = 0;

	for (tok = strtok_r(copy, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		struct listener *l;

		if (s->nlisteners == SMTPD_MAX_LISTENERS) {
			snprintf(err, errlen, "more than %d listen addresses",
			    SMTPD_MAX_LISTENERS);
			r = -1;
			break;
		}
		l = &s->listeners[s->nlisteners];
		if ((l->fd = listen_on(tok, err, errlen)) < 0) {
			r = -1;
			break;
		}
		l->kind = kind;
		snprintf(l->addr, sizeof(l->addr), "%s", tok);
		s->nlisteners++;
	}
	free(copy);
	return r;
}

struct smtpd *
smtpd_new(const struct smtpd_config *cfg, struct spool *spool,
    const char *store_url, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct smtpd *s = xcalloc(1, sizeof(*s));
	struct buf size = BUF_INIT;

	/* Loops are woken from other threads (spool commits): locking on. */
	pthread_once(&once, (void (*)(void))evthread_use_pthreads);

	s->cfg = *cfg;
	s->sh.cfg = &s->cfg;
	s->sh.spool = spool;
	buf_printf(&size, "%llu", (unsigned long long)cfg->max_message_size);
	s->sh.size_text = size.data;
	if (fs_exists(cfg->tls_cert) && fs_exists(cfg->tls_key)) {
		s->sh.ssl_ctx =
		    tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, errlen);
		if (s->sh.ssl_ctx == NULL)
			goto fail;
	} else if (*cfg->submissions_listen) {
		snprintf(err, errlen,
		    "smtpd.submissions_listen needs a TLS "
		    "certificate: %s and %s do not exist (run herald init)",
		    cfg->tls_cert, cfg->tls_key);
		goto fail;
	} else {
		log_write(LOG_WARN, "smtpd",
		    "event=no-tls cert=%s "
		    "reason=\"certificate or key missing; STARTTLS not "
		    "offered\"",
		    cfg->tls_cert);
	}
	if (add_listeners(s, cfg->submission_listen, LISTENER_SUBMISSION, err,
		errlen) < 0 ||
	    add_listeners(s, cfg->submissions_listen, LISTENER_SUBMISSIONS, err,
		errlen) < 0 ||
	    add_listeners(s, cfg->mx_listen, LISTENER_MX, err, errlen) < 0)
		goto fail;
	if (s->nlisteners == 0) {
		snprintf(err, errlen, "no SMTP listener configured");
		goto fail;
	}
	s->sh.policy = policy_new(
	    store_url, cfg->inbound_domains, cfg->policy_refresh, err, errlen);
	if (s->sh.policy == NULL)
		goto fail;
	s->sh.limits =
	    limits_new(cfg->max_connections, cfg->max_connections_per_ip,
		cfg->auth_max_failures, cfg->auth_lockout);
	return s;
fail:
	smtpd_free(&s);
	return NULL;
}

void
smtpd_describe(const struct smtpd *s, void (*out)(const char *line))
{
	char line[256];

	for (int i = 0; i < s->nlisteners; i++) {
		snprintf(line, sizeof(line), "listening: smtp %-11s %s%s",
		    session_listener_name(s->listeners[i].kind),
		    s->listeners[i].addr,
		    s->listeners[i].kind == LISTENER_SUBMISSIONS ? " (TLS)"
			: s->listeners[i].kind == LISTENER_SUBMISSION &&
			    s->sh.ssl_ctx
			? " (STARTTLS)"
			: "");
		out(line);
	}
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct loop_listener *ll = arg;

	(void)evl;
	session_start(ll->loop, fd, sa, salen, ll->kind);
}

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct loop_listener *ll = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(ll->evl);
}

/*
 * accept_error_cb - accept(2) failed (out of descriptors, most likely).
 * The socket stays readable, so retrying at once would spin: stop
 * accepting on this loop for 100 ms.
 */
static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct loop_listener *ll = arg;
	struct timeval tv = { 0, 100000 };
	int e = EVUTIL_SOCKET_ERROR();

	log_write(LOG_ERROR, "smtpd",
	    "event=accept-failed error=\"%s\" action=pause-100ms",
	    evutil_socket_error_to_string(e));
	evconnlistener_disable(evl);
	event_add(ll->pause, &tv);
}

static void *
loop_thread(void *arg)
{
	struct loop *l = arg;

	event_base_dispatch(l->sl.base);
	return NULL;
}

int
smtpd_run(struct smtpd *s)
{
	size_t scratch = s->cfg.data_line_max;

	if (scratch < s->cfg.command_line_max + 2)
		scratch = s->cfg.command_line_max + 2;
	if (scratch < 65536)
		scratch = 65536;
	s->nloops = (int)s->cfg.threads;
	s->loops = xcalloc((size_t)s->nloops, sizeof(*s->loops));
	for (int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];

		struct event_config *ec = event_config_new();

		/* Coalesce the epoll_ctl calls of one loop iteration. */
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		l->sl.base = event_base_new_with_config(ec);
		event_config_free(ec);
		if (l->sl.base == NULL)
			fatal("cannot create an event loop");
		l->sl.sh = &s->sh;
		l->sl.index = i;
		l->sl.scratch_len = scratch;
		l->sl.scratch = xmalloc(scratch + 1);
		for (int j = 0; j < s->nlisteners; j++) {
			int fd = dup(s->listeners[j].fd);

			if (fd < 0)
				fatal("dup listener: %s", strerror(errno));
			l->ll[j].loop = &l->sl;
			l->ll[j].kind = s->listeners[j].kind;
			l->ll[j].evl =
			    evconnlistener_new(l->sl.base, accept_cb, &l->ll[j],
				LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				-1, fd);
			if (l->ll[j].evl == NULL)
				fatal("cannot listen on %s",
				    s->listeners[j].addr);
			evconnlistener_set_error_cb(
			    l->ll[j].evl, accept_error_cb);
			l->ll[j].pause = evtimer_new(
			    l->sl.base, accept_resume_cb, &l->ll[j]);
		}
	}
	for (int i = 0; i < s->nloops; i++)
		if (pthread_create(&s->loops[i].thread, NULL, loop_thread,
			&s->loops[i]) != 0)
			fatal("cannot start loop thread %d", i);
	s->running = true;
	return 0;
}

void
smtpd_stop(struct smtpd *s)
{
	if (!s->running)
		return;
	for (int i = 0; i < s->nloops; i++)
		event_base_loopbreak(s->loops[i].sl.base);
	for (int i = 0; i < s->nloops; i++)
		pthread_join(s->loops[i].thread, NULL);
	s->running = false;
}

void
smtpd_free(struct smtpd **sp)
{
	struct smtpd *s = *sp;

	if (s == NULL)
		return;
	smtpd_stop(s);
	for (int i = 0; i < s->nloops; i++) {
		struct loop *l = &s->loops[i];

		for (int j = 0; j < s->nlisteners; j++) {
			if (l->ll[j].evl)
				evconnlistener_free(l->ll[j].evl);
			if (l->ll[j].pause)
				event_free(l->ll[j].pause);
		}
		/* Sessions still open are dropped: the process is exiting,
		 * and nothing they hold is acknowledged. */
		session_loop_drop_all(&l->sl);
		event_base_free(l->sl.base);
		free(l->sl.scratch);
	}
	free(s->loops);
	for (int i = 0; i < s->nlisteners; i++)
		close(s->listeners[i].fd);
	policy_free(&s->sh.policy);
	limits_free(&s->sh.limits);
	if (s->sh.ssl_ctx)
		SSL_CTX_free(s->sh.ssl_ctx);
	free(s->sh.size_text);
	free(s);
	*sp = NULL;
}
