/*
 * cmd_queue.c - `herald queue list|show`: read the spool directly.
 *
 * With the server running, `queue list` asks the delivery engine for the
 * live state of every recipient and the actions (flush, retry, hold,
 * release, delete) are carried out by it, through <data>/control.sock.
 * Without a server, `queue list` reads the spool files, which are the
 * truth about what is queued.  `queue show` reads the spool file and the
 * message log in the store, so it also shows finished messages.
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
#include "mta/control.h"
#include "spool/spool.h"
#include "store/store.h"

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

/* control_path - <data>/control.sock (malloc'd) */
static char *
control_path(struct cli *c)
{
	return fs_path_join(c->conf.data_dir, "control.sock");
}

/* The last reply the message log holds for each recipient of a message. */
struct last_replies {
	char **reply; /* by recipient index */
	size_t n;
};

static int
last_reply_event(void *arg, const struct store_event *ev)
{
	struct last_replies *lr = arg;

	if (ev->rcpt_idx < 0 || !ev->reply[0] ||
	    strcmp(ev->state, "queued") == 0)
		return 0;
	if ((size_t)ev->rcpt_idx >= lr->n) {
		size_t n = (size_t)ev->rcpt_idx + 1;

		lr->reply = xrealloc(lr->reply, n * sizeof(*lr->reply));
		memset(lr->reply + lr->n, 0, (n - lr->n) * sizeof(*lr->reply));
		lr->n = n;
	}
	free(lr->reply[ev->rcpt_idx]);
	lr->reply[ev->rcpt_idx] = xstrdup(ev->reply);
	return 0;
}

static void
last_replies_clear(struct last_replies *lr)
{
	for (size_t i = 0; i < lr->n; i++)
		free(lr->reply[i]);
	free(lr->reply);
	lr->reply = NULL;
	lr->n = 0;
}

/* The accounts' names by id, for the ACCOUNT column. */
struct account_names {
	int64_t *ids;
	char **names;
	size_t n;
};

static int
account_name_add(void *arg, const struct store_account *a)
{
	struct account_names *an = arg;

	an->ids = xrealloc(an->ids, (an->n + 1) * sizeof(*an->ids));
	an->names = xrealloc(an->names, (an->n + 1) * sizeof(*an->names));
	an->ids[an->n] = a->id;
	an->names[an->n++] = xstrdup(a->name);
	return 0;
}

/* account_name - the name of id, "-" for mail of no account */
static const char *
account_name(const struct account_names *an, int64_t id)
{
	for (size_t i = 0; i < an->n; i++)
		if (an->ids[i] == id)
			return an->names[i];
	return "-";
}

/*
 * print_list - the engine's list lines "ID STATE ATTEMPTS NEXT
 * ACCOUNT_ID <SENDER> RCPT IDX" printed with the account's name, without
 * IDX and with the recipient's last reply from the message log (the engine
 * keeps no reply text in memory); lines of one message come together, so the
 * log is read once per message.
 */
static void
print_list(struct cli *c, char *text, const char *end)
{
	struct store *st = cli_store(c);
	struct last_replies lr = { NULL, 0 };
	struct account_names an = { NULL, NULL, 0 };
	char cur[QUEUE_ID_LEN + 1] = "", q[600];
	char *line = text, *nl;
	const char *error;

	if (st && store_account_list(st, account_name_add, &an, &error) < 0)
		log_write(LOG_WARN, "cli", "error=\"%s\"", error);
	for (; line && line < end; line = nl ? nl + 1 : NULL) {
		char *sp, *f[7], *save = NULL;
		size_t idx;
		int nf = 0;

		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		sp = strrchr(line, ' ');
		if (sp == NULL || strlen(line) < QUEUE_ID_LEN) {
			printf("%s\n", line);
			continue;
		}
		idx = (size_t)strtoul(sp + 1, NULL, 10);
		*sp = '\0';
		if (st && strncmp(line, cur, QUEUE_ID_LEN) != 0) {
			last_replies_clear(&lr);
			memcpy(cur, line, QUEUE_ID_LEN);
			cur[QUEUE_ID_LEN] = '\0';
			if (store_event_history(st, STORE_ANY_ACCOUNT, cur,
				last_reply_event, &lr, &error) < 0)
				log_write(
				    LOG_WARN, "cli", "error=\"%s\"", error);
		}
		for (char *t = strtok_r(line, " ", &save); t && nf < 7;
		     t = strtok_r(NULL, " ", &save))
			f[nf++] = t;
		if (nf == 7)
			printf("%s %s %s %s %s %s %s", f[0], f[1], f[2], f[3],
			    account_name(&an, strtoll(f[4], NULL, 10)), f[5],
			    f[6]);
		else
			printf("%s", line);
		if (idx < lr.n && lr.reply[idx])
			printf(
			    " \"%s\"", log_quote(lr.reply[idx], q, sizeof(q)));
		printf("\n");
	}
	last_replies_clear(&lr);
	for (size_t i = 0; i < an.n; i++)
		free(an.names[i]);
	free(an.names);
	free(an.ids);
	store_close(&st);
}

/*
 * queue_request - send a command to the running server and print its
 * answer; the last line is "ok N" (printed as "N recipients") or "error
 * ...".  Returns 0, 1 on an error answer, or -1 when the server cannot
 * be reached.
 */
static int
queue_request(struct cli *c, const char *line, bool quiet_unreachable)
{
	char *path = control_path(c), err[512];
	struct buf out = BUF_INIT;
	char *last, *end;
	int r = 0;

	if (control_request(path, line, &out, err, sizeof(err)) < 0) {
		free(path);
		buf_free(&out);
		if (!quiet_unreachable)
			cli_fail("%s", err);
		return -1;
	}
	free(path);
	end = out.data ? out.data + out.len : NULL;
	if (end && end > out.data && end[-1] == '\n')
		*--end = '\0';
	last = out.data ? strrchr(out.data, '\n') : NULL;
	last = last ? last + 1 : (out.data ? out.data : (char *)"");
	if (strncmp(last, "ok ", 3) == 0) {
		long n = strtol(last + 3, NULL, 10);

		if (strncmp(line, "list", 4) == 0)
			print_list(c, out.data, last);
		else
			fwrite(out.data, 1, (size_t)(last - out.data), stdout);
		printf("%ld recipient%s\n", n, n == 1 ? "" : "s");
	} else {
		fwrite(out.data ? out.data : "", 1,
		    out.data ? (size_t)(last - out.data) : 0, stdout);
		cli_fail("%s", *last ? last : "no answer from the server");
		r = 1;
	}
	buf_free(&out);
	return r;
}

/* account_arg - " account=ID" for --account NAME; 0 or 1 after an error */
static int
account_arg(struct cli *c, const char *name, struct buf *cmd)
{
	struct store *st;
	int64_t id;

	if (name == NULL)
		return 0;
	if ((st = cli_store(c)) == NULL)
		return 1;
	id = cli_account(st, name);
	store_close(&st);
	if (id == 0)
		return 1;
	buf_printf(cmd, " account=%" PRId64, id);
	return 0;
}

static bool
word_ok(const char *s)
{
	return *s && strpbrk(s, " \t\r\n") == NULL;
}

int
cmd_queue_list(struct cli *c, int argc, char **argv)
{
	struct list_state ls = { NULL, 0 };
	const char *error, *state, *dest, *account;
	struct buf cmd = BUF_INIT;
	bool bad = false;
	char *dir;
	int r;

	ls.account = cli_opt(&argc, argv, "--account-id", &bad);
	state = cli_opt(&argc, argv, "--state", &bad);
	dest = cli_opt(&argc, argv, "--destination", &bad);
	account = cli_opt(&argc, argv, "--account", &bad);
	if (bad || argc != 1)
		return cli_usage_error(c, "unexpected argument");
	if ((state && !word_ok(state)) || (dest && !word_ok(dest)))
		return cli_usage_error(c, "bad --state or --destination");
	buf_puts(&cmd, "list");
	if (state)
		buf_printf(&cmd, " state=%s", state);
	if (dest)
		buf_printf(&cmd, " destination=%s", dest);
	if (ls.account)
		buf_printf(&cmd, " account=%s", ls.account);
	if (account_arg(c, account, &cmd) != 0) {
		buf_free(&cmd);
		return 1;
	}
	r = queue_request(c, cmd.data, true);
	buf_free(&cmd);
	if (r >= 0)
		return r;
	/* no server: what the spool holds */
	if (state || dest || account)
		return cli_fail("--state, --destination and --account need "
				"the running server (herald serve)");
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

static int
count_event(void *arg, const struct store_event *ev)
{
	(void)ev;
	(*(int *)arg)++;
	return 0;
}

static int
print_event(void *arg, const struct store_event *ev)
{
	char when[32], q[600];
	time_t t = (time_t)(ev->at / 1000);

	time_iso8601(t, when, sizeof(when));
	printf("%s %-9s <%s>", when, ev->state, ev->recipient);
	if (ev->relay[0])
		printf(" relay=%s", ev->relay);
	if (ev->tls[0])
		printf(" tls=\"%s\"", log_quote(ev->tls, q, sizeof(q)));
	printf(" attempt=%d", ev->attempt);
	if (ev->reply[0])
		printf(" reply=\"%s\"", log_quote(ev->reply, q, sizeof(q)));
	printf("\n");
	(*(int *)arg)++;
	return 0;
}

/*
 * show_history - print the message log of id; returns the number of
 * events, or -1 after printing an error.
 */
static int
show_history(struct cli *c, const char *id, bool print)
{
	struct store *st = cli_store(c);
	const char *error;
	int n = 0;

	if (st == NULL)
		return -1;
	if (store_event_history(st, STORE_ANY_ACCOUNT, id,
		print ? print_event : count_event, &n, &error) < 0) {
		store_close(&st);
		cli_fail("%s", error);
		return -1;
	}
	store_close(&st);
	return n;
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
		if (dump)
			return cli_fail(
			    "no queued message %s (%s)", argv[1], error);
		/* finished (or never here): the message log may know it */
		{
			int n = show_history(c, argv[1], false);

			if (n < 0)
				return 1;
			if (n == 0)
				return cli_fail("no message %s in the queue or "
						"the message log (%s)",
				    argv[1], error);
			printf("id:          %s\nstate:       finished (not in "
			       "the queue)\nhistory:\n",
			    argv[1]);
			return show_history(c, argv[1], true) < 0 ? 1 : 0;
		}
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
	{
		int r;

		printf("history:\n");
		r = show_history(c, e.id, true);
		envelope_clear(&e);
		buf_free(&path);
		return r < 0 ? 1 : 0;
	}
}

/*
 * queue_act - `herald queue flush|retry|hold|release|delete`: ids or
 * --destination, carried out by the running server.
 */
static int
queue_act(struct cli *c, const char *verb, int argc, char **argv)
{
	struct buf cmd = BUF_INIT;
	const char *dest;
	bool bad = false;
	int r;

	dest = cli_opt(&argc, argv, "--destination", &bad);
	if (bad)
		return cli_usage_error(c, "--destination needs a domain");
	buf_puts(&cmd, verb);
	if (dest) {
		if (!word_ok(dest)) {
			buf_free(&cmd);
			return cli_usage_error(c, "bad --destination");
		}
		buf_printf(&cmd, " destination=%s", dest);
	}
	for (int i = 1; i < argc; i++) {
		if (!queue_id_valid(argv[i])) {
			buf_free(&cmd);
			return cli_fail("'%s' is not a queue id", argv[i]);
		}
		buf_printf(&cmd, " id=%s", argv[i]);
	}
	if (strcmp(verb, "flush") != 0 && argc == 1 && dest == NULL) {
		buf_free(&cmd);
		return cli_usage_error(
		    c, "expected queue IDs or --destination");
	}
	r = queue_request(c, cmd.data, false);
	buf_free(&cmd);
	return r < 0 ? 1 : r;
}

int
cmd_queue_flush(struct cli *c, int argc, char **argv)
{
	if (argc > 1)
		return cli_usage_error(c, "unexpected argument '%s'", argv[1]);
	return queue_act(c, "flush", argc, argv);
}

int
cmd_queue_retry(struct cli *c, int argc, char **argv)
{
	return queue_act(c, "retry", argc, argv);
}

int
cmd_queue_hold(struct cli *c, int argc, char **argv)
{
	return queue_act(c, "hold", argc, argv);
}

int
cmd_queue_release(struct cli *c, int argc, char **argv)
{
	return queue_act(c, "release", argc, argv);
}

int
cmd_queue_delete(struct cli *c, int argc, char **argv)
{
	return queue_act(c, "delete", argc, argv);
}
