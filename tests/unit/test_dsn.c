/*
 * test_dsn - delivery status notifications (mail/dsn.c): one exact
 * message, then DSNs for mixed, ORCPT/ENVID, RET=FULL/HDRS, 8-bit,
 * long-diagnostic and boundary-collision cases, each parsed back by
 * Debian's Python email package (/usr/bin/python3, policy=default) to
 * check what a real MIME reader makes of it; and the dsn_wanted table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/smtp_cmd.h"
#include "support/table_check.h"

#define PYTHON "/usr/bin/python3"
#define NOW 1704110400	    /* Mon, 01 Jan 2024 12:00:00 +0000 */
#define RECEIVED 1703980800 /* Sun, 31 Dec 2023 00:00:00 +0000 */
#define DSN_WIDTH_MAX 77    /* lines Herald writes itself */

/*
 * The parser: prints one line per fact ("key value") so that the tests
 * can ask for the lines they care about.  Per-recipient groups print as
 * "rcpt N Field=value|Field=value" in the order of the message.
 */
static const char py_script[] =
    "import sys, email, email.policy\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "m = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "out = []\n"
    "def p(*a):\n"
    "    out.append(' '.join(str(x) for x in a))\n"
    "p('multipart', m.is_multipart())\n"
    "p('type', m.get_content_type())\n"
    "p('report-type', m.get_param('report-type'))\n"
    "p('boundary', m.get_boundary())\n"
    "for h in ('From', 'To', 'Subject', 'Auto-Submitted', 'MIME-Version',\n"
    "          'Content-Transfer-Encoding'):\n"
    "    p('hdr', h + '=' + str(m.get(h)))\n"
    "p('date', m['Date'].datetime.isoformat())\n"
    "p('msgid', m['Message-ID'])\n"
    "parts = m.get_payload()\n"
    "p('parts', ' '.join(x.get_content_type() for x in parts))\n"
    "defects = []\n"
    "for x in m.walk():\n"
    "    defects += x.defects\n"
    "text = parts[0]\n"
    "p('text-charset', text.get_content_charset())\n"
    "p('text-cte', text.get('Content-Transfer-Encoding'))\n"
    "p('text', ' '.join(text.get_content().split()))\n"
    "blocks = parts[1].get_payload()\n"
    "p('blocks', len(blocks))\n"
    "for k, v in blocks[0].items():\n"
    "    p('msg', k + '=' + str(v))\n"
    "for i, b in enumerate(blocks[1:]):\n"
    "    p('rcpt', i, '|'.join(k + '=' + str(v) for k, v in b.items()))\n"
    "if len(parts) > 2:\n"
    "    r = parts[2]\n"
    "    p('returned-cte', r.get('Content-Transfer-Encoding'))\n"
    "    if r.get_content_type() == 'message/rfc822':\n"
    "        inner = r.get_payload(0)\n"
    "        p('returned-subject', inner['Subject'])\n"
    "        while inner.is_multipart():\n"
    "            inner = inner.get_payload(0)\n"
    "        p('returned-body', ' '.join(inner.get_content().split()))\n"
    "    else:\n"
    "        p('returned-text', '|'.join(r.get_content().splitlines()))\n"
    "p('defects', len(defects), *[type(d).__name__ for d in defects])\n"
    "sys.stdout.write('\\n'.join(out) + '\\n')\n";

static char script_path[] = "/tmp/herald-test-dsn-py-XXXXXX";

/* A plain original message, CRLF, not dot-stuffed. */
static const char original[] = "From: Alice <alice@example.com>\r\n"
			       "To: bob@example.net\r\n"
			       "Subject: lunch\r\n"
			       "Message-ID: <m1@example.com>\r\n"
			       "\r\n"
			       "Shall we meet at noon?\r\n"
			       ".\r\n"
			       "..a line with leading dots\r\n";

/* Scripted random source: tokens in turn, then the last one again. */
static const char *fake_tokens[4];
static size_t fake_next;

/* fake_random - dsn_info.random_fn from the script, repeated to len */
static void
fake_random(char *out, size_t len)
{
	const char *t = fake_tokens[fake_next];
	size_t n = strlen(t);

	if (fake_next + 1 < NELEM(fake_tokens) && fake_tokens[fake_next + 1])
		fake_next++;
	for (size_t i = 0; i < len; i++)
		out[i] = t[i % n];
	out[len] = '\0';
}

/* fake_set - script a then b (b NULL: a every time) */
static void
fake_set(const char *a, const char *b)
{
	memset(fake_tokens, 0, sizeof(fake_tokens));
	fake_tokens[0] = a;
	fake_tokens[1] = b;
	fake_next = 0;
}

/* env_make - an envelope from alice with ret, envid; fixed arrival */
static void
env_make(struct envelope *env, int ret, const char *envid)
{
	envelope_init(env);
	envelope_set(&env->sender, "alice@example.com");
	envelope_set(&env->envid, envid);
	env->ret = ret;
	env->received_at = RECEIVED;
}

/* info_make - a report on rcpts of the plain original, at NOW */
static void
info_make(struct dsn_info *info, const struct envelope *env,
    const struct dsn_rcpt *rcpts, size_t n)
{
	memset(info, 0, sizeof(*info));
	info->reporting_mta = "mx.herald.test";
	info->env = env;
	info->rcpts = rcpts;
	info->nrcpts = n;
	info->original = original;
	info->original_len = sizeof(original) - 1;
	info->max_return = 1024 * 1024;
	info->now = NOW;
	info->random_fn = fake_random;
}

/*
 * check_lines - every line of b ends in CRLF (no bare CR or LF) and is
 * at most max octets long.
 */
static void
check_lines(const struct buf *b, size_t max)
{
	size_t start = 0;

	assert_true(b->len >= 2);
	assert_memory_equal(b->data + b->len - 2, "\r\n", 2);
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\r') {
			assert_true(i + 1 < b->len && b->data[i + 1] == '\n');
			if (i - start > max)
				print_error(
				    "line at %zu is %zu octets: %.60s\n", start,
				    i - start, b->data + start);
			assert_true(i - start <= max);
			start = i + 2;
		} else if (b->data[i] == '\n') {
			assert_true(i > 0 && b->data[i - 1] == '\r');
		}
	}
}

/* build - dsn_build into a fresh buf, which must succeed */
static void
build(const struct dsn_info *info, struct buf *out)
{
	char err[256] = "";
	int rc;

	buf_reset(out);
	rc = dsn_build(info, out, err, sizeof(err));
	if (rc != 0)
		print_error("dsn_build: %s\n", err);
	assert_int_equal(rc, 0);
	check_lines(out, 998);
}

/* pyparse - run the parser on msg; its output, with a leading newline */
static void
pyparse(const struct buf *msg, struct buf *py)
{
	char path[] = "/tmp/herald-test-dsn-msg-XXXXXX";
	char cmd[256], chunk[4096];
	int fd = mkstemp(path);
	FILE *f;
	size_t n;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, msg->data, msg->len), (ssize_t)msg->len);
	close(fd);
	snprintf(cmd, sizeof(cmd), PYTHON " %s %s", script_path, path);
	f = popen(cmd, "r");
	assert_non_null(f);
	buf_reset(py);
	buf_puts(py, "\n");
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(py, chunk, n);
	assert_int_equal(pclose(f), 0);
	unlink(path);
}

/* has_line - assert the parser printed exactly this line */
static void
has_line(const struct buf *py, const char *line)
{
	struct buf want = BUF_INIT;

	buf_printf(&want, "\n%s\n", line);
	if (strstr(buf_cstr(py), buf_cstr(&want)) == NULL) {
		print_error(
		    "missing line: %s\nparser said:%s", line, buf_cstr(py));
		fail();
	}
	buf_free(&want);
}

/* has_text - assert the parser printed a line starting key containing s */
static void
has_text(const struct buf *py, const char *key, const char *s)
{
	const char *p = buf_cstr(py);
	size_t klen = strlen(key);

	while ((p = strchr(p, '\n')) != NULL) {
		const char *end = strchr(++p, '\n');

		if (strncmp(p, key, klen) == 0 && p[klen] == ' ' && end &&
		    memmem(p, (size_t)(end - p), s, strlen(s)) != NULL)
			return;
	}
	print_error(
	    "no \"%s\" line with: %s\nparser said:%s", key, s, buf_cstr(py));
	fail();
}

/* check_report - what every DSN must look like to the parser */
static void
check_report(const struct buf *py, bool failed)
{
	has_line(py, "multipart True");
	has_line(py, "type multipart/report");
	has_line(py, "report-type delivery-status");
	has_line(py,
	    "hdr From=Mail Delivery System "
	    "<MAILER-DAEMON@mx.herald.test>");
	has_line(py, "hdr To=alice@example.com");
	has_line(py,
	    failed ? "hdr Subject=Undelivered Mail Returned to Sender"
		   : "hdr Subject=Delayed Mail (still being retried)");
	has_line(py, "hdr Auto-Submitted=auto-replied");
	has_line(py, "hdr MIME-Version=1.0");
	has_line(py, "date 2024-01-01T12:00:00+00:00");
	has_line(py, "text-charset utf-8");
	has_line(py, "msg Reporting-MTA=dns; mx.herald.test");
	has_line(py, "msg Arrival-Date=Sun, 31 Dec 2023 00:00:00 +0000");
	has_line(py, "defects 0");
}

static const struct dsn_rcpt rcpt_bob = { "bob@example.net", NULL, DSN_FAILED,
	"5.1.1", "mx.example.net",
	"550 5.1.1 <bob@example.net>: Recipient address rejected: User "
	"unknown",
	"the server said the mailbox does not exist", NOW - 60, 0 };

static const char golden[] =
    "From: Mail Delivery System <MAILER-DAEMON@mx.herald.test>\r\n"
    "To: <alice@example.com>\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
    "Message-ID: <IIIIIIIIIIIIIIIIIIIIIIII@mx.herald.test>\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"=_dsn_BBBBBBBBBBBBBBBBBBBBBBBB\"\r\n"
    "\r\n"
    "This is a MIME-encapsulated message.\r\n"
    "\r\n"
    "--=_dsn_BBBBBBBBBBBBBBBBBBBBBBBB\r\n"
    "Content-Description: Notification\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "This is the mail delivery system at mx.herald.test. Your message could "
    "not be\r\n"
    "delivered to the recipients below.\r\n"
    "\r\n"
    "<bob@example.net>: delivery failed (status 5.1.1): the server said the\r\n"
    "mailbox does not exist. The server mx.example.net replied: 550 5.1.1\r\n"
    "<bob@example.net>: Recipient address rejected: User unknown\r\n"
    "\r\n"
    "The header of your message is attached.\r\n"
    "\r\n"
    "--=_dsn_BBBBBBBBBBBBBBBBBBBBBBBB\r\n"
    "Content-Description: Delivery report\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.herald.test\r\n"
    "Arrival-Date: Sun, 31 Dec 2023 00:00:00 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822; bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.net\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: Recipient address\r\n"
    " rejected: User unknown\r\n"
    "Last-Attempt-Date: Mon, 01 Jan 2024 11:59:00 +0000\r\n"
    "\r\n"
    "--=_dsn_BBBBBBBBBBBBBBBBBBBBBBBB\r\n"
    "Content-Description: Message header\r\n"
    "Content-Type: text/rfc822-headers\r\n"
    "\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net\r\n"
    "Subject: lunch\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "\r\n"
    "--=_dsn_BBBBBBBBBBBBBBBBBBBBBBBB--\r\n";

/* One failed recipient, no RET: the whole message, octet for octet. */
static void
test_one_failed(void **state)
{
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT;

	env_make(&env, SMTP_RET_NONE, NULL);
	info_make(&info, &env, &rcpt_bob, 1);
	fake_set("BBBBBBBBBBBBBBBBBBBBBBBB", "IIIIIIIIIIIIIIIIIIIIIIII");
	build(&info, &out);
	assert_string_equal(buf_cstr(&out), golden);
	check_lines(&out, DSN_WIDTH_MAX);

	pyparse(&out, &py);
	check_report(&py, true);
	has_line(&py, "msgid <IIIIIIIIIIIIIIIIIIIIIIII@mx.herald.test>");
	has_line(&py,
	    "parts text/plain message/delivery-status "
	    "text/rfc822-headers");
	has_line(&py, "blocks 2");
	has_line(&py,
	    "rcpt 0 Final-Recipient=rfc822; bob@example.net|"
	    "Action=failed|Status=5.1.1|"
	    "Remote-MTA=dns; mx.example.net|"
	    "Diagnostic-Code=smtp; 550 5.1.1 <bob@example.net>: "
	    "Recipient address rejected: User unknown|"
	    "Last-Attempt-Date=Mon, 01 Jan 2024 11:59:00 +0000");
	has_line(&py,
	    "returned-text From: Alice <alice@example.com>|"
	    "To: bob@example.net|Subject: lunch|"
	    "Message-ID: <m1@example.com>");
	buf_free(&out);
	buf_free(&py);
	envelope_clear(&env);
}

/*
 * Failed and delayed recipients in one report: the failure subject, one
 * group each in order, Will-Retry-Until only on the delay, and a local
 * failure without a remote reply.
 */
static void
test_mixed(void **state)
{
	static const struct dsn_rcpt rcpts[] = {
		{ "carol@example.org", NULL, DSN_DELAYED, "4.4.1",
		    "mx2.example.org", "421 4.4.1 try again later",
		    "the server asked to try later", NOW - 600,
		    NOW + 4 * 86400 },
		{ "bob@example.net", NULL, DSN_FAILED, "5.1.1",
		    "mx.example.net", "550 5.1.1 no such user",
		    "the server said the mailbox does not exist", NOW - 60, 0 },
		{ "dave@nowhere.example", NULL, DSN_FAILED, "5.4.4", NULL, NULL,
		    "the domain has no mail server", 0, 0 },
	};
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT;

	env_make(&env, SMTP_RET_HDRS, NULL);
	info_make(&info, &env, rcpts, NELEM(rcpts));
	info.random_fn = NULL;
	build(&info, &out);
	check_lines(&out, DSN_WIDTH_MAX);
	pyparse(&out, &py);
	check_report(&py, true);
	has_line(&py, "blocks 4");
	has_line(&py,
	    "rcpt 0 Final-Recipient=rfc822; carol@example.org|"
	    "Action=delayed|Status=4.4.1|"
	    "Remote-MTA=dns; mx2.example.org|"
	    "Diagnostic-Code=smtp; 421 4.4.1 try again later|"
	    "Last-Attempt-Date=Mon, 01 Jan 2024 11:50:00 +0000|"
	    "Will-Retry-Until=Fri, 05 Jan 2024 12:00:00 +0000");
	has_line(&py,
	    "rcpt 1 Final-Recipient=rfc822; bob@example.net|"
	    "Action=failed|Status=5.1.1|"
	    "Remote-MTA=dns; mx.example.net|"
	    "Diagnostic-Code=smtp; 550 5.1.1 no such user|"
	    "Last-Attempt-Date=Mon, 01 Jan 2024 11:59:00 +0000");
	has_line(&py,
	    "rcpt 2 Final-Recipient=rfc822; dave@nowhere.example|"
	    "Action=failed|Status=5.4.4");
	has_text(&py, "text",
	    "<carol@example.org>: delivery delayed (status 4.4.1): the "
	    "server asked to try later. Delivery will be retried until "
	    "Fri, 05 Jan 2024 12:00:00 +0000. The server mx2.example.org "
	    "replied: 421 4.4.1 try again later");
	has_text(&py, "text",
	    "<dave@nowhere.example>: delivery failed (status 5.4.4): the "
	    "domain has no mail server.");
	has_text(&py, "text", "delivery to the others is delayed");

	/* Delays only: the delay subject. */
	info.rcpts = rcpts;
	info.nrcpts = 1;
	build(&info, &out);
	pyparse(&out, &py);
	check_report(&py, false);
	has_line(&py, "blocks 2");
	has_text(&py, "text", "still being retried");
	buf_free(&out);
	buf_free(&py);
	envelope_clear(&env);
}

/* ORCPT and ENVID come back as Original-Recipient, Original-Envelope-Id. */
static void
test_orcpt_envid(void **state)
{
	static const struct dsn_rcpt rcpts[] = {
		{ "bob@example.net", "rfc822;Bob.Smith@Example.COM", DSN_FAILED,
		    "5.1.1", "mx.example.net", "550 5.1.1 no such user", NULL,
		    0, 0 },
	};
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT;

	env_make(&env, SMTP_RET_NONE, "QQ314159+x=y");
	info_make(&info, &env, rcpts, 1);
	build(&info, &out);
	pyparse(&out, &py);
	check_report(&py, true);
	has_line(&py, "msg Original-Envelope-Id=QQ314159+x=y");
	has_line(&py,
	    "rcpt 0 Original-Recipient=rfc822;Bob.Smith@Example.COM|"
	    "Final-Recipient=rfc822; bob@example.net|"
	    "Action=failed|Status=5.1.1|"
	    "Remote-MTA=dns; mx.example.net|"
	    "Diagnostic-Code=smtp; 550 5.1.1 no such user");
	/* No reason given: the text still names the recipient. */
	has_text(&py, "text",
	    "<bob@example.net>: delivery failed (status "
	    "5.1.1). The server mx.example.net replied");

	/* An ENVID that is not printable ASCII goes out as xtext. */
	envelope_set(&env.envid, "id 7+\x01\xc3\xa9");
	build(&info, &out);
	pyparse(&out, &py);
	has_line(&py, "msg Original-Envelope-Id=id+207+2B+01+C3+A9");
	buf_free(&out);
	buf_free(&py);
	envelope_clear(&env);
}

/*
 * returned_part - the bytes of the third part's content (between its
 * blank line and the closing delimiter) and its part header.
 */
static void
returned_part(const struct buf *msg, struct buf *hdr, struct buf *body)
{
	const char *b = strstr(msg->data, "boundary=\"");
	char delim[128], close[128];
	const char *p, *end;
	size_t blen;

	assert_non_null(b);
	b += strlen("boundary=\"");
	blen = strcspn(b, "\"");
	snprintf(delim, sizeof(delim), "\r\n--%.*s\r\n", (int)blen, b);
	snprintf(close, sizeof(close), "\r\n--%.*s--\r\n", (int)blen, b);
	/* the third delimiter line */
	p = msg->data;
	for (int i = 0; i < 3; i++) {
		p = strstr(p, delim);
		assert_non_null(p);
		p += strlen(delim);
	}
	end = strstr(p, "\r\n\r\n");
	assert_non_null(end);
	buf_reset(hdr);
	buf_append(hdr, p, (size_t)(end + 2 - p));
	p = end + 4;
	end = msg->data + msg->len - strlen(close);
	assert_string_equal(end, close);
	buf_reset(body);
	buf_append(body, p, (size_t)(end - p));
}

/* RET=FULL of a small message: message/rfc822, the original unchanged. */
static void
test_ret_full(void **state)
{
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT, hdr = BUF_INIT,
		   body = BUF_INIT;

	env_make(&env, SMTP_RET_FULL, NULL);
	info_make(&info, &env, &rcpt_bob, 1);
	info.random_fn = NULL;
	info.max_return = sizeof(original) - 1; /* exactly at the limit */
	build(&info, &out);
	returned_part(&out, &hdr, &body);
	assert_string_equal(buf_cstr(&hdr),
	    "Content-Description: Message\r\n"
	    "Content-Type: message/rfc822\r\n");
	assert_int_equal(body.len, sizeof(original) - 1);
	assert_memory_equal(body.data, original, body.len);

	pyparse(&out, &py);
	check_report(&py, true);
	has_line(&py,
	    "parts text/plain message/delivery-status "
	    "message/rfc822");
	has_line(&py, "returned-cte None");
	has_line(&py, "returned-subject lunch");
	has_line(&py,
	    "returned-body Shall we meet at noon? . ..a line with "
	    "leading dots");
	has_text(&py, "text", "Your message is attached.");
	buf_free(&out);
	buf_free(&py);
	buf_free(&hdr);
	buf_free(&body);
	envelope_clear(&env);
}

/* RET=FULL over max_return, and RET=HDRS: the header section only. */
static void
test_ret_headers(void **state)
{
	static const char want_hdr[] = "From: Alice <alice@example.com>\r\n"
				       "To: bob@example.net\r\n"
				       "Subject: lunch\r\n"
				       "Message-ID: <m1@example.com>\r\n";
	static const int rets[] = { SMTP_RET_FULL, SMTP_RET_HDRS };
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT, hdr = BUF_INIT,
		   body = BUF_INIT;
	char want[256];

	for (size_t i = 0; i < NELEM(rets); i++) {
		env_make(&env, rets[i], NULL);
		info_make(&info, &env, &rcpt_bob, 1);
		info.max_return = sizeof(original) - 2; /* one octet short */
		build(&info, &out);
		returned_part(&out, &hdr, &body);
		assert_string_equal(buf_cstr(&hdr),
		    "Content-Description: Message header\r\n"
		    "Content-Type: text/rfc822-headers\r\n");
		assert_string_equal(buf_cstr(&body), want_hdr);
		assert_null(strstr(out.data, "noon"));

		pyparse(&out, &py);
		check_report(&py, true);
		has_line(&py,
		    "parts text/plain message/delivery-status "
		    "text/rfc822-headers");
		has_line(&py,
		    "returned-text From: Alice <alice@example.com>|"
		    "To: bob@example.net|Subject: lunch|"
		    "Message-ID: <m1@example.com>");
		snprintf(want, sizeof(want),
		    "You asked for the whole message to be returned "
		    "(RET=FULL), but it is %zu bytes, larger than the limit "
		    "of %zu bytes, so only its header is attached.",
		    sizeof(original) - 1, sizeof(original) - 2);
		if (rets[i] == SMTP_RET_FULL) {
			has_text(&py, "text", want);
		} else {
			assert_null(strstr(py.data, "RET=FULL"));
			has_text(&py, "text",
			    "The header of your message is attached.");
		}
		envelope_clear(&env);
	}
	buf_free(&out);
	buf_free(&py);
	buf_free(&hdr);
	buf_free(&body);
}

/*
 * Header sections that are odd: none at all, no body, LF only, one
 * larger than the 64 KiB cap (cut at a line end).
 */
static void
test_ret_header_edges(void **state)
{
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, hdr = BUF_INIT, body = BUF_INIT,
		   big = BUF_INIT;

	env_make(&env, SMTP_RET_HDRS, NULL);
	info_make(&info, &env, &rcpt_bob, 1);

	info.original = "\r\nbody only\r\n";
	info.original_len = strlen(info.original);
	build(&info, &out);
	returned_part(&out, &hdr, &body);
	assert_int_equal(body.len, 0);

	info.original = "Subject: no body\r\nX: y\r\n";
	info.original_len = strlen(info.original);
	build(&info, &out);
	returned_part(&out, &hdr, &body);
	assert_string_equal(buf_cstr(&body), info.original);

	for (int i = 0; i < 2000; i++)
		buf_printf(&big, "X-Filler-%04d: %040d\r\n", i, i);
	buf_puts(&big, "\r\nbody\r\n");
	info.original = big.data;
	info.original_len = big.len;
	build(&info, &out);
	returned_part(&out, &hdr, &body);
	assert_true(body.len <= 64 * 1024 && body.len > 60 * 1024);
	assert_memory_equal(body.data, big.data, body.len);
	assert_memory_equal(body.data + body.len - 2, "\r\n", 2);

	info.original = NULL;
	info.original_len = 0;
	build(&info, &out);
	assert_null(strstr(out.data, "rfc822-headers"));
	assert_null(strstr(out.data, "is attached"));
	buf_free(&out);
	buf_free(&hdr);
	buf_free(&body);
	buf_free(&big);
	envelope_clear(&env);
}

/*
 * An 8-bit original (SMTPUTF8) and a UTF-8 recipient: the returned part,
 * the text part and the whole message say 8bit; the delivery-status part
 * stays ASCII (RFC 6533 utf-8-addr-xtext).
 */
static void
test_8bit(void **state)
{
	static const char orig8[] =
	    "From: J\xc3\xb6rg <j@example.com>\r\n"
	    "Subject: Gr\xc3\xbc\xc3\x9f"
	    "e\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "Sch\xc3\xb6nen Tag\r\n";
	static const struct dsn_rcpt rcpts[] = {
		{ "j\xc3\xb6rg@b\xc3\xbc"
		  "cher.example",
		    NULL, DSN_FAILED, "5.1.1", "mx.xn--bcher-kva.example",
		    "550 5.1.1 Postfach unbekannt: j\xc3\xb6rg", NULL, 0, 0 },
	};
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT, hdr = BUF_INIT,
		   body = BUF_INIT;
	const char *ds, *ds_end;

	env_make(&env, SMTP_RET_FULL, NULL);
	env.smtputf8 = true;
	info_make(&info, &env, rcpts, 1);
	info.original = orig8;
	info.original_len = sizeof(orig8) - 1;
	build(&info, &out);
	returned_part(&out, &hdr, &body);
	assert_string_equal(buf_cstr(&hdr),
	    "Content-Description: Message\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n");
	assert_memory_equal(body.data, orig8, sizeof(orig8) - 1);
	ds = strstr(out.data, "Content-Type: message/delivery-status");
	assert_non_null(ds);
	ds_end = strstr(ds, "\r\n--");
	for (const char *p = ds; p < ds_end; p++)
		assert_true((unsigned char)*p < 0x80);

	pyparse(&out, &py);
	check_report(&py, true);
	has_line(&py, "hdr Content-Transfer-Encoding=8bit");
	has_line(&py, "text-cte 8bit");
	has_line(&py, "returned-cte 8bit");
	has_line(&py,
	    "returned-subject Gr\xc3\xbc\xc3\x9f"
	    "e");
	has_line(&py, "returned-body Sch\xc3\xb6nen Tag");
	has_line(&py,
	    "rcpt 0 Final-Recipient=utf-8; "
	    "j\\x{F6}rg@b\\x{FC}cher.example|"
	    "Action=failed|Status=5.1.1|"
	    "Remote-MTA=dns; mx.xn--bcher-kva.example|"
	    "Diagnostic-Code=smtp; 550 5.1.1 Postfach unbekannt: "
	    "j\\x{F6}rg");
	has_text(&py, "text",
	    "<j\xc3\xb6rg@b\xc3\xbc"
	    "cher.example>: "
	    "delivery failed");

	/* ASCII only: no 8bit anywhere. */
	info.original = original;
	info.original_len = sizeof(original) - 1;
	info.rcpts = &rcpt_bob;
	build(&info, &out);
	assert_null(strstr(out.data, "8bit"));
	buf_free(&out);
	buf_free(&py);
	buf_free(&hdr);
	buf_free(&body);
	envelope_clear(&env);
}

/*
 * Long diagnostics: a ~600-octet reply is folded at spaces (no line of
 * ours reaches 78) and reads back unchanged; a multi-line reply with CRLF
 * becomes one line; a 1500-octet run without spaces is cut below 998.
 */
static void
test_long_diagnostic(void **state)
{
	struct dsn_rcpt r = rcpt_bob;
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT, diag = BUF_INIT,
		   want = BUF_INIT;

	env_make(&env, SMTP_RET_HDRS, NULL);
	info_make(&info, &env, &r, 1);
	buf_puts(&diag, "550 5.7.1");
	for (int i = 0; diag.len < 600; i++)
		buf_printf(&diag, " policy-word-%d", i);
	r.diagnostic = diag.data;
	build(&info, &out);
	check_lines(&out, DSN_WIDTH_MAX);
	pyparse(&out, &py);
	check_report(&py, true);
	buf_printf(&want, "Diagnostic-Code=smtp; %s|", diag.data);
	has_text(&py, "rcpt", want.data);
	has_text(&py, "text", diag.data);

	r.diagnostic = "550-5.1.1 first line\r\n550-5.1.1 second\r\n"
		       "550 5.1.1 third\tand last";
	build(&info, &out);
	pyparse(&out, &py);
	has_text(&py, "rcpt",
	    "Diagnostic-Code=smtp; 550-5.1.1 first line 550-5.1.1 second "
	    "550 5.1.1 third and last|");

	buf_reset(&diag);
	buf_puts(&diag, "550 ");
	for (int i = 0; i < 1500; i++)
		buf_puts(&diag, "x");
	r.diagnostic = diag.data;
	build(&info, &out); /* checks every line <= 998 */
	pyparse(&out, &py);
	check_report(&py, true);
	has_text(&py, "rcpt", "Diagnostic-Code=smtp; 550 xxxx");
	buf_free(&out);
	buf_free(&py);
	buf_free(&diag);
	buf_free(&want);
	envelope_clear(&env);
}

/* boundary_of - the boundary parameter of a built message, copied */
static void
boundary_of(const struct buf *msg, char *out, size_t outlen)
{
	const char *b = strstr(msg->data, "boundary=\"");

	assert_non_null(b);
	b += strlen("boundary=\"");
	snprintf(out, outlen, "%.*s", (int)strcspn(b, "\""), b);
}

/*
 * An original that holds the boundary the first draw gives (a bounce
 * of a bounce): the second draw is used, and the original comes back
 * whole.  A source that always collides is an error, not a broken DSN.
 */
static void
test_boundary_collision(void **state)
{
	static const char a[] = "AAAAAAAAAAAAAAAAAAAAAAAA";
	static const char b[] = "BBBBBBBBBBBBBBBBBBBBBBBB";
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT, orig = BUF_INIT,
		   hdr = BUF_INIT, body = BUF_INIT;
	struct dsn_rcpt r = rcpt_bob;
	char first[128], second[128], err[128];

	env_make(&env, SMTP_RET_FULL, NULL);
	info_make(&info, &env, &rcpt_bob, 1);
	fake_set(a, NULL);
	build(&info, &out);
	boundary_of(&out, first, sizeof(first));
	assert_non_null(strstr(first, a));

	buf_printf(&orig,
	    "Subject: bounce\r\n"
	    "Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "\r\n"
	    "inner\r\n"
	    "--%s--\r\n",
	    first, first, first);
	info.original = orig.data;
	info.original_len = orig.len;
	fake_set(a, b);
	build(&info, &out);
	boundary_of(&out, second, sizeof(second));
	assert_non_null(strstr(second, b));
	assert_null(memmem(orig.data, orig.len, second, strlen(second)));
	returned_part(&out, &hdr, &body);
	assert_int_equal(body.len, orig.len);
	assert_memory_equal(body.data, orig.data, orig.len);
	pyparse(&out, &py);
	check_report(&py, true);
	has_line(&py, "returned-subject bounce");
	has_line(&py, "returned-body inner");

	/* A remote reply quoting it is a collision too. */
	fake_set(a, b);
	info.original = original;
	info.original_len = sizeof(original) - 1;
	r.diagnostic = first;
	info.rcpts = &r;
	build(&info, &out);
	boundary_of(&out, second, sizeof(second));
	assert_non_null(strstr(second, b));

	fake_set(a, NULL);
	buf_reset(&out);
	assert_int_equal(dsn_build(&info, &out, err, sizeof(err)), -1);
	assert_int_equal(out.len, 0);
	assert_non_null(strstr(err, "boundary"));
	buf_free(&out);
	buf_free(&py);
	buf_free(&orig);
	buf_free(&hdr);
	buf_free(&body);
	envelope_clear(&env);
}

/* The real random source: fresh boundary and Message-ID each time. */
static void
test_random(void **state)
{
	struct envelope env;
	struct dsn_info info;
	struct buf out = BUF_INIT, py = BUF_INIT;
	char b1[128], b2[128];
	const char *id1;
	char *saved;

	env_make(&env, SMTP_RET_FULL, NULL);
	info_make(&info, &env, &rcpt_bob, 1);
	info.random_fn = NULL;
	build(&info, &out);
	boundary_of(&out, b1, sizeof(b1));
	assert_int_equal(strlen(b1), 6 + 24);
	assert_null(memmem(original, sizeof(original) - 1, b1, strlen(b1)));
	pyparse(&out, &py);
	check_report(&py, true);
	id1 = strstr(py.data, "\nmsgid <");
	assert_non_null(id1);
	saved = xstrndup(id1, strcspn(id1 + 1, "\n") + 1);
	build(&info, &out);
	boundary_of(&out, b2, sizeof(b2));
	assert_string_not_equal(b1, b2);
	pyparse(&out, &py);
	assert_null(strstr(py.data, saved));
	free(saved);
	buf_free(&out);
	buf_free(&py);
	envelope_clear(&env);
}

/* Unusable input: -1, a reason, and nothing appended. */
static void
test_errors(void **state)
{
	static const struct {
		const char *sender;
		const char *addr;
		const char *status;
		size_t nrcpts;
		const char *mta;
		const char *err;
	} cases[] = {
		{ "", "b@x", "5.1.1", 1, "mx", "null sender" },
		{ NULL, "b@x", "5.1.1", 1, "mx", "null sender" },
		{ "a@x", "b@x", "5.1.1", 0, "mx", "no recipients" },
		{ "a@x", "b@x", "5.1.1", 1, "", "no reporting MTA" },
		{ "a@x", "", "5.1.1", 1, "mx", "recipient 1: no address" },
		{ "a@x", "b@x", NULL, 1, "mx", "status \"(none)\"" },
		{ "a@x", "b@x", "550", 1, "mx", "status \"550\"" },
		{ "a@x", "b@x", "3.1.1", 1, "mx", "status \"3.1.1\"" },
		{ "a@x", "b@x", "5.1", 1, "mx", "status \"5.1\"" },
		{ "a@x", "b@x", "5.1.1.", 1, "mx", "status \"5.1.1.\"" },
		{ "a@x", "b@x", "5.1234.1", 1, "mx", "status" },
		{ "a@x", "b@x", "5..1", 1, "mx", "status" },
		{ "a@x", "b@x", "5.1.1 x", 1, "mx", "status" },
		{ "a@x", "b@x", "5.100.999", 1, "mx", NULL },
	};
	struct buf out = BUF_INIT;

	for (size_t i = 0; i < NELEM(cases); i++) {
		struct dsn_rcpt r = { cases[i].addr, NULL, DSN_FAILED,
			cases[i].status, NULL, NULL, NULL, 0, 0 };
		struct envelope env;
		struct dsn_info info;
		char err[128] = "";
		int rc;

		env_make(&env, SMTP_RET_NONE, NULL);
		envelope_set(&env.sender, cases[i].sender);
		info_make(&info, &env, &r, cases[i].nrcpts);
		info.reporting_mta = cases[i].mta;
		buf_reset(&out);
		rc = dsn_build(&info, &out, err, sizeof(err));
		CHECK_INT(i, cases[i].err ? cases[i].err : "ok", "rc", rc,
		    cases[i].err ? -1 : 0);
		if (cases[i].err != NULL) {
			CHECK_INT(i, cases[i].err, "out.len", out.len, 0);
			if (strstr(err, cases[i].err) == NULL) {
				print_error("case %zu: err \"%s\", want "
					    "\"%s\" in it\n",
				    i, err, cases[i].err);
				fail();
			}
		}
		/* No room for the reason is allowed. */
		rc = dsn_build(&info, &out, NULL, 0);
		CHECK_INT(i, "no err buffer", "rc", rc, cases[i].err ? -1 : 0);
		envelope_clear(&env);
	}
	buf_free(&out);
}

/* dsn_wanted against RFC 3461 NOTIFY (see dsn.c note 5). */
static void
test_wanted(void **state)
{
	static const struct {
		const char *sender;
		unsigned notify;
		bool failed, delayed;
	} cases[] = {
		{ "a@x", 0, true, true },
		{ "a@x", SMTP_NOTIFY_NEVER, false, false },
		{ "a@x", SMTP_NOTIFY_FAILURE, true, false },
		{ "a@x", SMTP_NOTIFY_DELAY, false, true },
		{ "a@x", SMTP_NOTIFY_SUCCESS, false, false },
		{ "a@x", SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, true, true },
		{ "a@x", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, true,
		    false },
		{ "a@x", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY, false, true },
		{ "a@x",
		    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
			SMTP_NOTIFY_DELAY,
		    true, true },
		{ "a@x", SMTP_NOTIFY_NEVER | SMTP_NOTIFY_FAILURE, false,
		    false },
		{ "", 0, false, false },
		{ "", SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, false, false },
		{ NULL, SMTP_NOTIFY_FAILURE, false, false },
	};

	for (size_t i = 0; i < NELEM(cases); i++) {
		const char *in = cases[i].sender ? cases[i].sender : "(null)";

		CHECK_INT(i, in, "failed",
		    dsn_wanted(cases[i].sender, cases[i].notify, DSN_FAILED),
		    cases[i].failed);
		CHECK_INT(i, in, "delayed",
		    dsn_wanted(cases[i].sender, cases[i].notify, DSN_DELAYED),
		    cases[i].delayed);
	}
}

static int
setup(void **state)
{
	int fd;

	/* Dates in the report are local time: make that UTC. */
	setenv("TZ", "UTC", 1);
	tzset();
	fd = mkstemp(script_path);
	if (fd < 0)
		return -1;
	if (write(fd, py_script, sizeof(py_script) - 1) !=
	    (ssize_t)(sizeof(py_script) - 1)) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	unlink(script_path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_failed),
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_orcpt_envid),
		cmocka_unit_test(test_ret_full),
		cmocka_unit_test(test_ret_headers),
		cmocka_unit_test(test_ret_header_edges),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_long_diagnostic),
		cmocka_unit_test(test_boundary_collision),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_wanted),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
