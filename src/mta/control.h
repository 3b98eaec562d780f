/*
 * control - the engine's control socket: a Unix socket in the data
 * directory (mode 0600: only the server's user and root reach it) that
 * takes one command line per connection and answers with the lines the
 * handler wrote, then closes.  `herald queue ...` uses it.
 */
#ifndef HERALD_MTA_CONTROL_H
#define HERALD_MTA_CONTROL_H

#include <stddef.h>

#include "lib/buf.h"

struct event_base;
struct control;

/*
 * The state of one answer in progress: the handler's own position (pos)
 * and count, zero at the first call.
 */
struct control_cursor {
	size_t pos;
	size_t count;
};

/*
 * control_handler - answer line (without its newline) into out.  A long
 * answer is given in parts: return 1 to be called again (same line,
 * same cursor) once the client has read what was written, 0 when done.
 */
typedef int control_handler(
    void *arg, const char *line, struct buf *out, struct control_cursor *cur);

/*
 * control_new - listen on path (a stale socket there is replaced) and
 * call handler on base's loop.  NULL with err.
 */
struct control *control_new(struct event_base *base, const char *path,
    control_handler *handler, void *arg, char *err, size_t errlen);
void control_free(struct control **cp);

/*
 * control_request - the client side: send line to the socket at path
 * and append the answer to out.  0, or -1 with err (e.g. the server is
 * not running).
 */
int control_request(const char *path, const char *line, struct buf *out,
    char *err, size_t errlen);

#endif
