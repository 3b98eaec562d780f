/*
 * fuzz_session.c - random SMTP conversations against the session state
 * machine (smtpd/session.c), on a real event loop with a real spool.
 *
 * Each conversation is a random sequence drawn from a grammar of SMTP
 * pieces (valid commands, broken ones, DATA bodies with stray CR, LF,
 * dots, 8-bit bytes and long lines, BDAT chunks of right and wrong
 * sizes, AUTH exchanges, raw garbage), written in randomly cut pieces.
 * What must hold:
 *
 *   1. the process does not crash (run it under ASan/UBSan: make asan);
 *   2. every reply line is "NNN" then ' ' or '-', with NNN in 200..599
 *      (and enhanced codes are not checked here: the scripted tests do);
 *   3. every committed spool file is complete (spool_read accepts it);
 *   4. after all of it, a well-behaved conversation is still answered
 *      "250 2.0.0 Ok: queued as".
 *
 * Usage: fuzz_session [ITERATIONS [SEED]]; defaults 300 and 1.  The
 * environment variables FUZZ_ITERATIONS and FUZZ_SEED override them.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "mail/envelope.h"
#include "spool/spool.h"
#include "support/smtpd_fixture.h"

static struct smtpd_fixture fx;
static unsigned long long rng;

static unsigned
rnd(unsigned n)
{
	/* xorshift64*: repeatable for a seed, good enough to pick pieces */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 2685821657736338717ULL) >> 33) % (n ? n : 1);
}

static const char *const commands[] = {
	"EHLO client.example\r\n",
	"HELO client.example\r\n",
	"EHLO\r\n",
	"MAIL FROM:<a@b.example>\r\n",
	"MAIL FROM:<>\r\n",
	"MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME\r\n",
	"MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8\r\n",
	"MAIL FROM:<a@b.example> RET=HDRS ENVID=x+2By\r\n",
	"MAIL FROM:<a@b.example> SIZE=99999999999\r\n",
	"MAIL FROM:a@b.example\r\n",
	"MAIL FROM:<a@@b>\r\n",
	"RCPT TO:<x@inbound.test>\r\n",
	"RCPT TO:<Postmaster>\r\n",
	"RCPT TO:<x@inbound.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x@y\r\n",
	"RCPT TO:<x@elsewhere.example>\r\n",
	"RCPT TO:<x%y@inbound.test>\r\n",
	"RCPT TO:<@a.example:x@inbound.test>\r\n",
	"RCPT TO:<\"q\"@inbound.test>\r\n",
	"DATA\r\n",
	"RSET\r\n",
	"NOOP\r\n",
	"VRFY x\r\n",
	"EXPN x\r\n",
	"HELP\r\n",
	"STARTTLS\r\n",
	"AUTH PLAIN\r\n",
	"AUTH LOGIN\r\n",
	"AUTH PLAIN AGFwcDEAd3Jvbmc=\r\n",
	"AUTH CRAM-MD5\r\n",
	"*\r\n",
	"dXNlcg==\r\n",
	"BDAT 0 LAST\r\n",
	"BDAT x\r\n",
	"FOO BAR\r\n",
	"\r\n",
	"MAIL\r\n",
	"RCPT TO:\r\n",
};

/* body - a random message body, sometimes well-formed */
static void
body(struct buf *b)
{
	unsigned lines = rnd(40);

	if (rnd(2))
		buf_puts(b, "From: x@example.com\r\nSubject: s\r\n\r\n");
	for (unsigned i = 0; i < lines; i++) {
		unsigned len = rnd(8) == 0 ? 900 + rnd(400) : rnd(80);

		if (rnd(6) == 0)
			buf_puts(b, ".");
		for (unsigned j = 0; j < len; j++) {
			static const char alphabet[] =
			    "abc .:\t\r\n\xc3\xa9\x00";

			buf_append(b, &alphabet[rnd(rnd(20) ? 5 : 12)], 1);
		}
		buf_puts(b, rnd(30) == 0 ? "\n" : "\r\n");
	}
	if (rnd(10) != 0)
		buf_puts(b, ".\r\n");
}

/* bdat - "BDAT n [LAST]" followed by about n bytes */
static void
bdat(struct buf *b)
{
	unsigned n = rnd(3000), sent = rnd(5) == 0 ? rnd(3000) : n;

	buf_printf(b, "BDAT %u%s\r\n", n, rnd(2) ? " LAST" : "");
	for (unsigned i = 0; i < sent; i++)
		buf_append(b, &"Subject: x\r\n\r\nbody\x80"[rnd(20)], 1);
}

/* conversation - one random script */
static void
conversation(struct buf *b)
{
	unsigned steps = 1 + rnd(25);

	/* Half of them start as a real transaction, so bodies get through. */
	if (rnd(2)) {
		buf_puts(b, "EHLO fuzz.example\r\nMAIL FROM:<a@b.example>");
		buf_puts(b, rnd(2) ? " BODY=8BITMIME\r\n" : "\r\n");
		buf_puts(b, "RCPT TO:<x@inbound.test>\r\n");
		if (rnd(2)) {
			buf_puts(b, "DATA\r\n");
			body(b);
		} else {
			bdat(b);
		}
	}

	for (unsigned i = 0; i < steps; i++) {
		switch (rnd(10)) {
		case 0:
			body(b);
			break;
		case 1:
			bdat(b);
			break;
		case 2: {
			unsigned n = rnd(700);

			for (unsigned j = 0; j < n; j++) {
				char c = (char)rnd(256);

				buf_append(b, &c, 1);
			}
			break;
		}
		default:
			buf_puts(b, commands[rnd(NELEM(commands))]);
			break;
		}
	}
}

static int failures;

/* check_replies - invariant 2 on everything the server said */
static void
check_replies(const char *text, size_t len, unsigned iter)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (nl == NULL)
			break; /* cut by our buffer; the next read has the rest
				*/
		n = (size_t)(nl - p);
		if (n < 5 || p[n - 1] != '\r' || p[0] < '2' || p[0] > '5' ||
		    p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
		    (p[3] != ' ' && p[3] != '-')) {
			fprintf(stderr,
			    "iteration %u: malformed reply line "
			    "'%.*s'\n",
			    iter, (int)(n > 80 ? 80 : n), p);
			failures++;
			return;
		}
		p = nl + 1;
	}
}

/* run_one - send script in random pieces, reading all the while */
static void
run_one(const struct buf *script, unsigned iter)
{
	int fd = smtpd_fixture_connect(
	    &fx, rnd(2) ? LISTENER_MX : LISTENER_SUBMISSION);
	char got[65536];
	size_t off = 0, have = 0;
	int idle = 0;

	while (idle < 20) {
		ssize_t n;

		if (off < script->len) {
			size_t piece = 1 + rnd(rnd(4) ? 64 : 4096);

			if (piece > script->len - off)
				piece = script->len - off;
			n = write(fd, script->data + off, piece);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				break; /* the server closed */
		}
		smtpd_fixture_pump(&fx, 2);
		n = read(fd, got + have, sizeof(got) - have);
		if (n == 0)
			break;
		if (n > 0) {
			have += (size_t)n;
			check_replies(got, have, iter);
			/* keep only an unfinished last line */
			{
				char *last = memrchr(got, '\n', have);

				if (last) {
					size_t keep =
					    have - (size_t)(last + 1 - got);

					memmove(got, last + 1, keep);
					have = keep;
				}
				if (have == sizeof(got))
					have = 0;
			}
			idle = 0;
		} else if (off >= script->len) {
			idle++;
			usleep(500);
		}
	}
	close(fd);
	smtpd_fixture_pump(&fx, 5);
}

static int
check_spool(void)
{
	char dir[160];
	struct dirent *de;
	DIR *d;
	int files = 0;

	snprintf(dir, sizeof(dir), "%s/spool/queue", fx.dir);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char path[512], head[16] = "";
		struct envelope e;
		const char *error;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			if (fread(head, 1, 15, f) != 15)
				head[0] = '\0';
			fclose(f);
		}
		if (strncmp(head, "HERALD-SPOOL 1 ", 15) != 0)
			continue; /* a session still writing it */
		envelope_init(&e);
		if (spool_read(path, &e, NULL, &error) < 0) {
			fprintf(stderr, "bad spool file: %s\n", error);
			failures++;
		}
		envelope_clear(&e);
		files++;
	}
	closedir(d);
	return files;
}

int
main(int argc, char **argv)
{
	const char *env_iter = getenv("FUZZ_ITERATIONS");
	const char *env_seed = getenv("FUZZ_SEED");
	unsigned iterations = 300;
	bool closed;
	int fd, queued;
	const char *r;

	if (argc > 1)
		iterations = (unsigned)strtoul(argv[1], NULL, 10);
	else if (env_iter)
		iterations = (unsigned)strtoul(env_iter, NULL, 10);
	rng = argc > 2 ? strtoull(argv[2], NULL, 10)
	    : env_seed ? strtoull(env_seed, NULL, 10)
		       : 1;
	rng = rng * 0x9E3779B97F4A7C15ULL + 1;
	smtpd_fixture_setup(&fx);
	for (unsigned i = 0; i < iterations; i++) {
		struct buf script = BUF_INIT;

		conversation(&script);
		run_one(&script, i);
		buf_free(&script);
	}
	queued = check_spool();

	/* Invariant 4: the server still serves a well-behaved client. */
	fd = smtpd_fixture_connect(&fx, LISTENER_MX);
	r = smtpd_fixture_reply(&fx, fd, "", &closed);
	r = smtpd_fixture_reply(&fx, fd, "EHLO ok.example\r\n", &closed);
	r = smtpd_fixture_reply(
	    &fx, fd, "MAIL FROM:<a@b.example>\r\n", &closed);
	r = smtpd_fixture_reply(
	    &fx, fd, "RCPT TO:<x@inbound.test>\r\n", &closed);
	r = smtpd_fixture_reply(&fx, fd, "DATA\r\n", &closed);
	r = smtpd_fixture_reply(
	    &fx, fd, "Subject: ok\r\n\r\nok\r\n.\r\n", &closed);
	if (strncmp(r, "250 2.0.0 Ok: queued as ", 24) != 0) {
		fprintf(stderr, "final conversation: got '%s'\n", r);
		failures++;
	}
	close(fd);
	smtpd_fixture_teardown(&fx);
	printf("fuzz_session: %u conversations, %d messages committed, "
	       "%d invariant failures\n",
	    iterations, queued, failures);
	printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
	return failures ? 1 : 0;
}
