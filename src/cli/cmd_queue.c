/*
 * cmd_queue.c - `herald queue list|show`: read the spool directly.
 *
 * The spool files are the truth about what is queued, so these commands
 * work whether or not the server runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "mail/envelope.h"
#include "mail/header.h"
#include "spool/spool.h"

struct list_state {
	const char *account; /* filter: account id as text, or NULL */
	long count;
};

static int
print_entry(void *arg, const char *path, const struct envelope *e)
{
	struct list_state *ls = arg;
	char when[32], acc[24];

	(void)path;
	snprintf(acc, sizeof(acc), "%" PRId64, e->account_id);
	if (ls->account && strcmp(ls->account, acc) != 0)
		return 0;
	time_iso8601((time_t)e->received_at, when, sizeof(when));
	printf("%-16s %-20s %9" PRIu64 " %-7s %-10s <%s> -> %zu rcpt%s\n",
	    e->id, when, e->size, acc, "queued", e->sender, e->nrcpts,
	    e->nrcpts == 1 ? "" : "s");
	ls->count++;
	return 0;
}

int
cmd_queue_list(struct cli *c, int argc, char **argv)
{
	struct list_state ls = { NULL, 0 };
	const char *error;
	bool bad = false;
	char *dir;
	int r;

	ls.account = cli_opt(&argc, argv, "--account-id", &bad);
	if (bad || argc != 1)
		return cli_usage_error(c, "unexpected argument");
	dir = fs_path_join(c->conf.data_dir, "spool");
	printf("%-16s %-20s %9s %-7s %-10s %s\n", "ID", "RECEIVED", "SIZE",
	    "ACCOUNT", "STATE", "ENVELOPE");
	r = spool_foreach(dir, print_entry, &ls, &error);
	free(dir);
	if (r < 0)
		return cli_fail("%s", error);
	printf("%ld message%s\n", ls.count, ls.count == 1 ? "" : "s");
	return 0;
}

static const char *
notify_text(unsigned n, char *out, size_t len)
{
	static const char *const names[] = { "NEVER", "SUCCESS", "FAILURE",
		"DELAY" };

	out[0] = '\0';
	for (int i = 0; i < 4; i++) {
		if (n & (1u << i)) {
			if (*out)
				strncat(out, ",", len - strlen(out) - 1);
			strncat(out, names[i], len - strlen(out) - 1);
		}
	}
	return *out ? out : "-";
}

/*
 * show_message - print the header fields people look for (From,
 * Subject, Message-ID), with control bytes replaced: the text is the
 * sender's; with dump, copy the whole stored message to stdout.
 */
static int
show_message(const char *path, off_t body, bool dump)
{
	static const char *const fields[] = { "From", "To", "Subject",
		"Message-ID" };
	char head[65536], q[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cli_fail("%s: %s", path, strerror(errno));
	n = pread(fd, head, sizeof(head) - 1, body);
	if (n < 0)
		n = 0;
	head[n] = '\0';
	for (size_t i = 0; i < NELEM(fields) && !dump; i++) {
		char *v = header_field_value(head, (size_t)n, fields[i]);

		if (v != NULL)
			printf("%-12s %s\n", fields[i],
			    log_quote(v, q, sizeof(q)));
		free(v);
	}
	if (dump) {
		char buf[65536];
		off_t off = body;

		fflush(stdout);
		while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
			if (fs_write_all(1, buf, (size_t)n) < 0)
				break;
			off += n;
		}
	}
	close(fd);
	return 0;
}

int
cmd_queue_show(struct cli *c, int argc, char **argv)
{
	struct envelope e;
	struct buf path = BUF_INIT;
	const char *error;
	char when[32], nt[64];
	bool dump = false;
	off_t body;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--message") == 0) {
			dump = true;
			memmove(&argv[i], &argv[i + 1],
			    (size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	}
	if (argc != 2)
		return cli_usage_error(c, "expected one queue ID");
	if (!queue_id_valid(argv[1]))
		return cli_fail("'%s' is not a queue id", argv[1]);
	buf_printf(&path, "%s/spool/queue/%s", c->conf.data_dir, argv[1]);
	envelope_init(&e);
	if (spool_read(path.data, &e, &body, &error) < 0) {
		buf_free(&path);
		return cli_fail("no queued message %s (%s)", argv[1], error);
	}
	if (dump) {
		int r = show_message(path.data, body, true);

		envelope_clear(&e);
		buf_free(&path);
		return r;
	}
	time_iso8601((time_t)e.received_at, when, sizeof(when));
	printf("id:          %s\nstate:       queued\nreceived:    %s\n"
	       "size:        %" PRIu64 " bytes\naccount:     %" PRId64 "\n"
	       "source:      %s\nclient:      %s (helo %s)\n",
	    e.id, when, e.size, e.account_id, e.source ? e.source : "-",
	    e.client_ip ? e.client_ip : "-", e.helo ? e.helo : "-");
	printf("auth:        %s\nsender:      <%s>\nbody:        %s%s\n"
	       "dsn:         ret=%s envid=%s\nfile:        %s\n",
	    e.auth_user ? e.auth_user : "-", e.sender,
	    e.body == 2	      ? "8BITMIME"
		: e.body == 3 ? "BINARYMIME"
			      : "7BIT",
	    e.smtputf8 ? " SMTPUTF8" : "",
	    e.ret == 1	     ? "FULL"
		: e.ret == 2 ? "HDRS"
			     : "-",
	    e.envid ? e.envid : "-", path.data);
	for (size_t i = 0; i < e.nrcpts; i++)
		printf("recipient:   <%s> notify=%s orcpt=%s state=queued\n",
		    e.rcpts[i].addr,
		    notify_text(e.rcpts[i].notify, nt, sizeof(nt)),
		    e.rcpts[i].orcpt ? e.rcpts[i].orcpt : "-");
	show_message(path.data, body, false);
	envelope_clear(&e);
	buf_free(&path);
	return 0;
}
