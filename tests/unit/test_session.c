/*
 * test_session.c - the SMTP session state machine (smtpd/session.c),
 * driven over a socketpair on a real event loop, with a real store,
 * spool and policy in a temporary directory.  Each case is a script of
 * (what the client sends, how the reply must begin).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <sodium.h>

#include "lib/util.h"
#include "smtpd/limits.h"
#include "smtpd/policy.h"
#include "smtpd/session.h"
#include "spool/spool.h"
#include "store/store.h"
#include "support/smtpd_fixture.h"

static struct smtpd_fixture fx;

static int
setup(void **state)
{
	(void)state;
	smtpd_fixture_setup(&fx);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	smtpd_fixture_teardown(&fx);
	return 0;
}

struct step {
	const char *send;
	const char *expect; /* prefix of the final reply line; "CLOSED" */
};

static void
run_script(enum listener_kind kind, const struct step *steps)
{
	int fd = smtpd_fixture_connect(&fx, kind);
	bool closed;

	for (const struct step *s = steps; s->expect; s++) {
		const char *got =
		    smtpd_fixture_reply(&fx, fd, s->send, &closed);

		if (strcmp(s->expect, "CLOSED") == 0) {
			if (!closed)
				got =
				    smtpd_fixture_reply(&fx, fd, NULL, &closed);
			if (!closed)
				fail_msg("after '%s': expected close, got '%s'",
				    s->send, got);
			continue;
		}
		if (strncmp(got, s->expect, strlen(s->expect)) != 0)
			fail_msg("after '%s': expected '%s', got '%s'", s->send,
			    s->expect, got);
	}
	close(fd);
}

static void
test_mx_flow(void **state)
{
	static const struct step steps[] = {
		{ "", "220 herald.test ESMTP Herald" },
		{ "MAIL FROM:<a@b.example>\r\n", "503 5.5.1" },
		{ "EHLO client.example\r\n", "250 HELP" },
		{ "RCPT TO:<x@inbound.test>\r\n", "503 5.5.1" },
		{ "DATA\r\n", "503 5.5.1" },
		{ "MAIL FROM:<a@b.example>\r\n", "250 2.1.0" },
		{ "MAIL FROM:<a@b.example>\r\n", "503 5.5.1" },
		{ "RCPT TO:<x@other.example>\r\n", "554 5.7.1" },
		{ "RCPT TO:<x%other.example@inbound.test>\r\n", "554 5.7.1" },
		{ "RCPT TO:<@inbound.test:x@other.example>\r\n", "554 5.7.1" },
		{ "RCPT TO:<\"x@other\"@inbound.test>\r\n", "554 5.7.1" },
		{ "RCPT TO:<x@[127.0.0.1]>\r\n", "554 5.7.1" },
		{ "RCPT TO:<Postmaster>\r\n", "250 2.1.5" },
		{ "RCPT TO:<x@INBOUND.test>\r\n", "250 2.1.5" },
		{ "DATA\r\n", "354 " },
		{ "Subject: t\r\n\r\n..dot\r\nhi\r\n.\r\n",
		    "250 2.0.0 Ok: queued as " },
		{ "VRFY x\r\n", "252 2.5.2" },
		{ "NOOP\r\n", "250 2.0.0" },
		{ "FOO\r\n", "500 5.5.1" },
		{ "QUIT\r\n", "221 2.0.0" },
		{ NULL, "CLOSED" },
		{ NULL, NULL },
	};

	(void)state;
	run_script(LISTENER_MX, steps);
}

static void
test_pipelining_and_bdat(void **state)
{
	static const struct step steps[] = {
		{ "", "220 " },
		{ "EHLO c\r\n", "250 HELP" },
		/* Pipelined: the replies come in order; we see the last. */
		{ "MAIL FROM:<>\r\nRCPT TO:<a@inbound.test>\r\n"
		  "RCPT TO:<b@inbound.test>\r\n",
		    "250 2.1.5" },
		{ "BDAT 12\r\nSubject: x\r\n", "250 2.0.0 Ok: 12 octets" },
		{ "DATA\r\n", "503 5.5.1" },
		{ "BDAT 8 LAST\r\n\r\nbody\r\n", "250 2.0.0 Ok: queued as " },
		{ "BDAT 5 LAST\r\nabcde", "503 5.5.1" },
		{ "RSET\r\n", "250 2.0.0" },
		{ "MAIL FROM:<a@b.example> SIZE=20000\r\n", "552 5.3.4" },
		{ "MAIL FROM:<a@b.example> BOGUS=1\r\n", "555 5.5.4" },
		{ "MAIL FROM:<a@b.example>\r\n", "250 2.1.0" },
		{ "RCPT TO:<a@inbound.test>\r\n", "250" },
		{ "RCPT TO:<b@inbound.test>\r\n", "250" },
		{ "RCPT TO:<c@inbound.test>\r\n", "250" },
		{ "RCPT TO:<d@inbound.test>\r\n", "452 4.5.3" },
		{ "DATA\r\n", "354" },
		{ "Subject: 8bit \xc3\xa9\r\n\r\n.\r\n", "554 5.6.1" },
		{ "MAIL FROM:<a@b.example> BODY=8BITMIME\r\n", "250" },
		{ "RCPT TO:<a@inbound.test>\r\n", "250" },
		{ "DATA\r\n", "354" },
		{ "Subject: 8bit \xc3\xa9\r\n\r\nbare\rCR\r\n.\r\n",
		    "554 5.6.0 Bare <CR> on line 3" },
		{ "MAIL FROM:<\xc3\xa9@b.example>\r\n", "553 5.6.7" },
		{ "MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8\r\n", "250" },
		{ "RCPT TO:<a@inbound.test>\r\n", "250" },
		{ "DATA\r\nSubject: early\r\n", "554 5.5.0" },
		{ NULL, "CLOSED" },
		{ NULL, NULL },
	};

	(void)state;
	run_script(LISTENER_MX, steps);
}

static void
test_limits(void **state)
{
	static char longline[700], longdata[1200];
	struct step steps[] = {
		{ "", "220 " },
		{ "EHLO c\r\n", "250 HELP" },
		{ longline, "500 5.5.2" },
		{ "MAIL FROM:<a@b.example>\r\n", "250" },
		{ "RCPT TO:<a@inbound.test>\r\n", "250" },
		{ "DATA\r\n", "354" },
		{ longdata, "554 5.6.0 Line 2 is longer than 1000" },
		{ "MAIL FROM:<a@b.example>\r\n", "250" },
		{ "RCPT TO:<a@inbound.test>\r\n", "250" },
		{ "DATA\r\n", "354" },
		{ "Subject: x\r\n\r\nbare\nLF\r\n.\r\n", "521 5.5.2" },
		{ NULL, "CLOSED" },
		{ NULL, NULL },
	};

	(void)state;
	memset(longline, 'A', sizeof(longline) - 3);
	memcpy(longline, "NOOP ", 5);
	strcpy(longline + sizeof(longline) - 3, "\r\n");
	memset(longdata, 'b', sizeof(longdata));
	memcpy(longdata, "Subject: x\r\n", 12);
	strcpy(longdata + sizeof(longdata) - 8, "\r\n.\r\n");
	run_script(LISTENER_MX, steps);
}

static void
test_submission_auth(void **state)
{
	static char plain[128], bad[128];
	unsigned char raw[128];
	size_t n;
	struct step steps[] = {
		{ "", "220 " },
		{ "EHLO c\r\n", "250 HELP" },
		{ "MAIL FROM:<a@example.com>\r\n", "530 5.7.0" },
		{ "AUTH CRAM-MD5\r\n", "504 5.5.4" },
		{ bad, "535 5.7.8" },
		{ "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6" },
		{ "*\r\n", "501 5.7.0" },
		{ plain, "235 2.7.0" },
		{ plain, "503 5.5.1" },
		{ "MAIL FROM:<a@other.example>\r\n", "553 5.7.1" },
		{ "MAIL FROM:<a@EXAMPLE.com>\r\n", "250 2.1.0" },
		{ "RCPT TO:<anyone@anywhere.example>\r\n", "250 2.1.5" },
		{ "DATA\r\n", "354" },
		{ "From: Joe <joe@other.example>\r\n\r\nx\r\n.\r\n",
		    "550 5.7.1 From: domain other.example" },
		{ "MAIL FROM:<a@example.com>\r\n", "250" },
		{ "RCPT TO:<anyone@anywhere.example>\r\n", "250" },
		{ "DATA\r\n", "354" },
		{ "Subject: no from\r\n\r\nx\r\n.\r\n",
		    "550 5.7.1 Message has no From:" },
		{ "MAIL FROM:<a@example.com>\r\n", "250" },
		{ "RCPT TO:<anyone@anywhere.example>\r\n", "250" },
		{ "DATA\r\n", "354" },
		{ "From: \"Joe, Jr\" <joe@example.com>\r\n\r\nx\r\n.\r\n",
		    "250 2.0.0 Ok: queued as" },
		{ NULL, NULL },
	};

	(void)state;
	n = 0;
	memcpy(raw, "\0app1\0" SMTPD_FIXTURE_SECRET,
	    6 + strlen(SMTPD_FIXTURE_SECRET));
	n = 6 + strlen(SMTPD_FIXTURE_SECRET);
	snprintf(plain, sizeof(plain), "AUTH PLAIN ");
	sodium_bin2base64(plain + 11, sizeof(plain) - 11, raw, n,
	    sodium_base64_VARIANT_ORIGINAL);
	strcat(plain, "\r\n");
	memcpy(raw, "\0app1\0wrong", 11);
	snprintf(bad, sizeof(bad), "AUTH PLAIN ");
	sodium_bin2base64(bad + 11, sizeof(bad) - 11, raw, 11,
	    sodium_base64_VARIANT_ORIGINAL);
	strcat(bad, "\r\n");
	run_script(LISTENER_SUBMISSION, steps);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_flow),
		cmocka_unit_test(test_pipelining_and_bdat),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_submission_auth),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
