/*
 * control.c - the control socket of control.h.
 *
 * A command is one line of at most CONTROL_LINE_MAX bytes; a client that
 * sends more, or nothing within CONTROL_TIMEOUT seconds, is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mta/control.h"

#define CONTROL_LINE_MAX 65536
#define CONTROL_TIMEOUT 10
#define CONTROL_LOW_WATER 65536 /* ask for more below this */

struct control {
	struct evconnlistener *lev;
	char *path;
	control_handler *handler;
	void *arg;
};

/* One client: its command and the answer's progress. */
struct ctl_client {
	struct control *c;
	struct bufferevent *bev;
	char *line;
	struct control_cursor cur;
	bool more; /* the handler has more to say */
};

static void
ctl_client_free(struct ctl_client *cl)
{
	bufferevent_free(cl->bev);
	free(cl->line);
	free(cl);
}

static void
ctl_client_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	ctl_client_free(arg);
}

/* ctl_answer - the next part of the answer, into the output buffer */
static void
ctl_answer(struct ctl_client *cl)
{
	struct buf out = BUF_INIT;

	cl->more = cl->c->handler(cl->c->arg, cl->line, &out, &cl->cur) != 0;
	bufferevent_write(cl->bev, out.data ? out.data : "", out.len);
	buf_free(&out);
}

/* ctl_client_written - the output went below the low-water mark */
static void
ctl_client_written(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cl = arg;

	if (cl->more)
		ctl_answer(cl);
	else if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_client_free(cl);
}

static void
ctl_client_read(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;

	if ((cl->line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) == NULL) {
		if (evbuffer_get_length(in) > CONTROL_LINE_MAX)
			ctl_client_free(cl);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	bufferevent_setwatermark(bev, EV_WRITE, CONTROL_LOW_WATER, 0);
	ctl_answer(cl);
	if (!cl->more && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_client_free(cl);
}

static void
ctl_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct ctl_client *cl = xcalloc(1, sizeof(*cl));
	struct timeval tv = { CONTROL_TIMEOUT, 0 };

	(void)sa;
	(void)salen;
	cl->c = arg;
	cl->bev = bufferevent_socket_new(
	    evconnlistener_get_base(lev), fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(
	    cl->bev, ctl_client_read, ctl_client_written, ctl_client_event, cl);
	bufferevent_set_timeouts(cl->bev, &tv, &tv);
	bufferevent_enable(cl->bev, EV_READ);
}

struct control *
control_new(struct event_base *base, const char *path, control_handler *handler,
    void *arg, char *err, size_t errlen)
{
	struct control *c;
	struct sockaddr_un sun;
	mode_t old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen,
		    "control socket path %s is too long (at most %zu bytes)",
		    path, sizeof(sun.sun_path) - 1);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	unlink(path);
	c = xcalloc(1, sizeof(*c));
	c->handler = handler;
	c->arg = arg;
	c->path = xstrdup(path);
	old = umask(0077);
	c->lev = evconnlistener_new_bind(base, ctl_accept, c,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (c->lev == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", path,
		    strerror(errno));
		free(c->path);
		free(c);
		return NULL;
	}
	return c;
}

void
control_free(struct control **cp)
{
	struct control *c = *cp;

	if (c == NULL)
		return;
	evconnlistener_free(c->lev);
	unlink(c->path);
	free(c->path);
	free(c);
	*cp = NULL;
}

int
control_request(const char *path, const char *line, struct buf *out, char *err,
    size_t errlen)
{
	struct sockaddr_un sun;
	struct timeval tv = { 30, 0 };
	char chunk[8192];
	ssize_t n;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, errlen,
		    "cannot reach the server at %s: %s (is herald serve "
		    "running?)",
		    path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
		snprintf(
		    err, errlen, "writing to %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(out, chunk, (size_t)n);
	close(fd);
	if (n < 0) {
		snprintf(
		    err, errlen, "reading from %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
