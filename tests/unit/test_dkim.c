/*
 * test_dkim - DKIM signing (mail/dkim.c) checked by an independent
 * verifier: every signed message is verified by Debian's python3-dkim
 * (/usr/bin/python3), with a DNS lookup function that returns the TXT
 * record dkim_keygen() made.  RSA signatures come from libopendkim,
 * Ed25519 ones from dkim.c's own canonicalization: for the same message
 * both must have the same bh= and h=, and the Ed25519 field the tags and
 * folding of libopendkim's.  Also: relaxed canonicalization tolerance,
 * oversigned From, the order of repeated fields, refusals (no From, bad
 * key, wrong kind of key, bad header lines, limits), key generation,
 * and the key files of a data directory (dkim_keys_list,
 * dkim_keys_load).  Run under ASan, the Ed25519 signatures show that
 * nothing leaks (libopendkim's Ed25519 path leaked the key).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/util.h"
#include "mail/dkim.h"

#define PYTHON "/usr/bin/python3"

/*
 * The verifier: python3-dkim checks every DKIM-Signature field of the
 * message (argv[1]), resolving selectors through the "name=TXT" pairs
 * that follow; argv[2] is how many signatures there must be.  The exit
 * status has bit i set when signature i (from the top) does not verify:
 * 0 when all do; 64 when the count is wrong, 65 for any other error.
 */
static const char verify_py[] =
    "import sys, dkim\n"
    "msg = open(sys.argv[1], 'rb').read()\n"
    "want = int(sys.argv[2])\n"
    "recs = {}\n"
    "for a in sys.argv[3:]:\n"
    "    name, txt = a.split('=', 1)\n"
    "    recs[name.encode()] = txt.encode()\n"
    "def dns(name, timeout=5):\n"
    "    return recs.get(name)\n"
    "try:\n"
    "    d = dkim.DKIM(msg)\n"
    "    n = sum(1 for h in d.headers if h[0].lower() == b'dkim-signature')\n"
    "    if n != want:\n"
    "        print('signatures: %d, expected %d' % (n, want),\n"
    "              file=sys.stderr)\n"
    "        sys.exit(64)\n"
    "    bad = 0\n"
    "    for i in range(n):\n"
    "        try:\n"
    "            ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dns)\n"
    "        except dkim.DKIMException as e:\n"
    "            print('signature %d: %s' % (i, e), file=sys.stderr)\n"
    "            ok = False\n"
    "        if not ok:\n"
    "            print('signature %d does not verify' % i, file=sys.stderr)\n"
    "            bad |= 1 << i\n"
    "except Exception as e:\n"
    "    print('verifier: %r' % e, file=sys.stderr)\n"
    "    sys.exit(65)\n"
    "sys.exit(bad)\n";

/* One generated key and the TXT record of its public half. */
struct tkey {
	char *pem, *txt;
	struct dkim_key key;
};

struct fixture {
	char dir[64];
	char script[128];
	struct dkim_signer *signer;
	struct tkey rsa, ed;
};

static struct fixture *fx; /* the group's; keys take a while to make */

static void
make_key(struct tkey *t, enum dkim_algo algo, const char *selector)
{
	char err[256];

	if (dkim_keygen(algo, 0, &t->pem, &t->txt, err, sizeof(err)) < 0)
		fail_msg("dkim_keygen: %s", err);
	t->key.domain = "example.com";
	t->key.selector = selector;
	t->key.algo = algo;
	t->key.pem = t->pem;
	t->key.pemlen = strlen(t->pem);
}

static int
group_setup(void **state)
{
	char err[256];
	int fd;

	fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_dkim.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->script, sizeof(fx->script), "%s/verify.py", fx->dir);
	fd = open(fx->script, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, verify_py, strlen(verify_py)), 0);
	close(fd);
	if ((fx->signer = dkim_signer_new(err, sizeof(err))) == NULL)
		fail_msg("dkim_signer_new: %s", err);
	make_key(&fx->rsa, DKIM_RSA_SHA256, "rsa1");
	make_key(&fx->ed, DKIM_ED25519_SHA256, "ed1");
	*state = fx;
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	dkim_signer_free(&fx->signer);
	assert_null(fx->signer);
	free(fx->rsa.pem);
	free(fx->rsa.txt);
	free(fx->ed.pem);
	free(fx->ed.txt);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* sign - the DKIM-Signature fields for msg with keys, or fail the test */
static void
sign(const struct dkim_key *keys, size_t n, const char *msg, size_t len,
    struct buf *out)
{
	char err[512];

	if (dkim_sign_message(
		fx->signer, keys, n, msg, len, out, err, sizeof(err)) < 0)
		fail_msg("dkim_sign_message: %s", err);
}

/*
 * verify - run python3-dkim on sigs + msg, expecting nsigs signatures,
 * with the records of both test keys.  Returns its exit status: 0 when
 * all verify, else bit i set for each signature i that does not.
 */
static int
verify(const struct buf *sigs, const char *msg, size_t len, int nsigs)
{
	char path[128], count[16], rsa[1024], ed[256];
	int fd, status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/msg.eml", fx->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, sigs->data, sigs->len), 0);
	assert_int_equal(fs_write_all(fd, msg, len), 0);
	close(fd);
	snprintf(count, sizeof(count), "%d", nsigs);
	snprintf(
	    rsa, sizeof(rsa), "rsa1._domainkey.example.com.=%s", fx->rsa.txt);
	snprintf(ed, sizeof(ed), "ed1._domainkey.example.com.=%s", fx->ed.txt);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(PYTHON, PYTHON, fx->script, path, count, rsa, ed,
		    (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* sign_verify - sign msg with keys and assert that every signature holds */
static void
sign_verify(const struct dkim_key *keys, size_t n, const char *msg)
{
	struct buf sigs = BUF_INIT;

	sign(keys, n, msg, strlen(msg), &sigs);
	assert_int_equal(verify(&sigs, msg, strlen(msg), (int)n), 0);
	buf_free(&sigs);
}

/* both - run sign_verify with the RSA key, then the Ed25519 key */
static void
both(const char *msg)
{
	sign_verify(&fx->rsa.key, 1, msg);
	sign_verify(&fx->ed.key, 1, msg);
}

static const char simple_msg[] = "From: Alice <alice@example.com>\r\n"
				 "To: bob@example.org\r\n"
				 "Subject: hello\r\n"
				 "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
				 "Message-ID: <1@example.com>\r\n"
				 "\r\n"
				 "Hello Bob.\r\n"
				 "\r\n"
				 "-- \r\n"
				 "Alice\r\n";

static void
test_simple(void **state)
{
	both(simple_msg);
}

static void
test_folded_headers(void **state)
{
	both("From: \"A very long display name, with a comma\"\r\n"
	     "\t<alice@example.com>\r\n"
	     "To: bob@example.org,\r\n"
	     "  carol@example.org,\r\n"
	     "\tdave@example.org\r\n"
	     "Subject: a subject that goes on\r\n"
	     " and on\r\n"
	     "        and on\r\n"
	     "References: <a@example.com>\r\n"
	     "\t<b@example.com>\r\n"
	     "Received: from somewhere\r\n"
	     "\tby somewhere else; Sat, 21 Nov 2026 10:00:00 +0000\r\n"
	     "\r\n"
	     "body\r\n");
}

static void
test_multiple_to(void **state)
{
	static const char msg[] = "From: alice@example.com\r\n"
				  "To: bob@example.org\r\n"
				  "To: carol@example.org\r\n"
				  "Cc: dave@example.org\r\n"
				  "Cc: erin@example.org\r\n"
				  "Subject: two To fields\r\n"
				  "\r\n"
				  "body\r\n";
	static const char swapped[] = "From: alice@example.com\r\n"
				      "To: carol@example.org\r\n"
				      "To: bob@example.org\r\n"
				      "Cc: dave@example.org\r\n"
				      "Cc: erin@example.org\r\n"
				      "Subject: two To fields\r\n"
				      "\r\n"
				      "body\r\n";
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf sigs = BUF_INIT;

	both(msg);
	/* repeated fields are hashed bottom-up: their order is signed */
	sign(keys, 2, msg, strlen(msg), &sigs);
	assert_int_equal(verify(&sigs, msg, strlen(msg), 2), 0);
	assert_int_equal(verify(&sigs, swapped, strlen(swapped), 2), 3);
	buf_free(&sigs);
}

static void
test_header_shapes(void **state)
{
	/* a value that starts on a continuation line, an empty value */
	both("From: alice@example.com\r\n"
	     "Subject:\r\n"
	     "\tfolded at once\r\n"
	     "Cc:\r\n"
	     "To:bob@example.org\r\n"
	     "\r\n"
	     "body\r\n");
	/* white space at both ends of values, names in any case */
	both("fROM:   alice@example.com \t \r\n"
	     "SUBJECT: \t x \t\t y  \r\n"
	     "   \t \r\n"
	     "message-id:<1@example.com>\r\n"
	     "\r\n"
	     "body\r\n");
}

static void
test_8bit(void **state)
{
	both("From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.com>\r\n"
	     "To: bob@example.org\r\n"
	     "Subject: Gr\xc3\xbc\xc3\x9f\x65 aus M\xc3\xbcnchen\r\n"
	     "MIME-Version: 1.0\r\n"
	     "Content-Type: text/plain; charset=utf-8\r\n"
	     "Content-Transfer-Encoding: 8bit\r\n"
	     "\r\n"
	     "Gr\xc3\xbc\xc3\x9f\x65 \xe2\x80\x94 \xf0\x9f\x93\xa7\r\n"
	     "\xff\xfe binary-ish bytes \x80\x81\r\n");
}

static void
test_empty_body(void **state)
{
	both("From: alice@example.com\r\nSubject: empty\r\n\r\n");
	/* no empty line at all: a message that is only a header */
	both("From: alice@example.com\r\nSubject: no body\r\n");
	/* blank lines only: relaxed reduces them to nothing */
	both("From: alice@example.com\r\n\r\n\r\n\r\n  \r\n");
}

static void
test_no_final_crlf(void **state)
{
	static const char wsp[] = "From: alice@example.com\r\n\r\n"
				  "line\r\nlast  \t ";
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf sigs = BUF_INIT, sent = BUF_INIT;

	both("From: alice@example.com\r\n\r\nno line end at the end");
	/*
	 * Signed as SMTP sends it, with a CRLF after the last line; white
	 * space before it is then at a line end, which relaxed drops.
	 */
	sign(keys, 2, wsp, strlen(wsp), &sigs);
	buf_printf(&sent, "%s\r\n", wsp);
	assert_int_equal(verify(&sigs, sent.data, sent.len, 2), 0);
	buf_free(&sent);
	buf_free(&sigs);
}

static void
test_dual(void **state)
{
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf sigs = BUF_INIT;
	const char *second;

	sign(keys, 2, simple_msg, strlen(simple_msg), &sigs);
	assert_true(
	    strncmp(sigs.data, "DKIM-Signature: v=1; a=rsa-sha256;", 34) == 0);
	second = strstr(sigs.data + 1, "\r\nDKIM-Signature: ");
	assert_non_null(second);
	assert_true(strncmp(second + 2,
			"DKIM-Signature: v=1; a=ed25519-sha256;", 38) == 0);
	assert_null(strstr(second + 1, "\r\nDKIM-Signature: "));
	assert_true(
	    sigs.len >= 2 && memcmp(sigs.data + sigs.len - 2, "\r\n", 2) == 0);
	assert_int_equal(verify(&sigs, simple_msg, strlen(simple_msg), 2), 0);
	buf_free(&sigs);
}

/* unfolded - the fields with folding removed, as a C string */
static char *
unfolded(const struct buf *b)
{
	char *s = xstrndup(b->data, b->len), *w = s;

	for (const char *r = s; *r; r++) {
		if (r[0] == '\r' && r[1] == '\n' &&
		    (r[2] == '\t' || r[2] == ' '))
			r += 1;
		else
			*w++ = *r;
	}
	*w = '\0';
	return s;
}

/*
 * sig_tag - the value of tag name in DKIM-Signature field n (from 0) of
 * sigs, with its white space taken out; malloc'd, NULL when missing.
 * With name NULL, the names of all its tags, in order, joined by ' '.
 */
static char *
sig_tag(const struct buf *sigs, int n, const char *name)
{
	char *u = unfolded(sigs), *f = u - 1, *end, *t, *save;
	struct buf names = BUF_INIT;
	char *r = NULL;

	for (int i = 0; i <= n && f != NULL; i++)
		f = strstr(f + 1, "DKIM-Signature:");
	if (f == NULL)
		goto out;
	f += strlen("DKIM-Signature:");
	if ((end = strstr(f, "\r\n")) != NULL)
		*end = '\0';
	for (t = strtok_r(f, ";", &save); t != NULL && r == NULL;
	     t = strtok_r(NULL, ";", &save)) {
		char *w = t, *eq;

		for (const char *c = t; *c != '\0'; c++)
			if (*c != ' ' && *c != '\t')
				*w++ = *c;
		*w = '\0';
		if ((eq = strchr(t, '=')) == NULL)
			continue;
		*eq = '\0';
		if (name == NULL)
			buf_printf(&names, "%s%s", names.len > 0 ? " " : "", t);
		else if (strcmp(t, name) == 0)
			r = xstrdup(eq + 1);
	}
	if (name == NULL)
		r = xstrdup(buf_cstr(&names));
out:
	buf_free(&names);
	free(u);
	return r;
}

/* assert_same_tag - tag name has the same value in fields 0 and 1 */
static void
assert_same_tag(const struct buf *sigs, const char *name)
{
	char *a = sig_tag(sigs, 0, name), *b = sig_tag(sigs, 1, name);

	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void
test_signed_fields(void **state)
{
	static const char msg[] =
	    "Received: from x by y\r\n"
	    "From: alice@example.com\r\n"
	    "To: bob@example.org\r\n"
	    "Subject: s\r\n"
	    "X-Mailer: m\r\n"
	    "List-Unsubscribe: <https://example.com/u>\r\n"
	    "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
	    "\r\n"
	    "b\r\n";
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf sigs = BUF_INIT;
	char *h;

	sign(keys, 2, msg, strlen(msg), &sigs);
	assert_int_equal(verify(&sigs, msg, strlen(msg), 2), 0);
	/* From oversigned; Received and X-Mailer not signed */
	for (int i = 0; i < 2; i++) {
		h = sig_tag(&sigs, i, "h");
		assert_non_null(h);
		assert_true(strcasecmp(h,
				"From:To:Subject:List-Unsubscribe:"
				"List-Unsubscribe-Post:From") == 0);
		free(h);
		h = sig_tag(&sigs, i, "c");
		assert_string_equal(h, "relaxed/relaxed");
		free(h);
		assert_null(sig_tag(&sigs, i, "l"));
	}
	/* the Ed25519 field lists them as libopendkim does for RSA */
	assert_same_tag(&sigs, "h");
	buf_free(&sigs);
}

static void
test_relaxed_tolerance(void **state)
{
	static const char refolded[] = "from:   Alice   <alice@example.com>\r\n"
				       "TO: bob@example.org\r\n"
				       "Subject:\thello\r\n"
				       "Date: Sat, 21 Nov 2026\r\n"
				       "   10:00:00 +0000   \r\n"
				       "Message-ID: <1@example.com>\r\n"
				       "\r\n"
				       "Hello   Bob.   \r\n"
				       "\r\n"
				       "-- \r\n"
				       "Alice\r\n"
				       "\r\n\r\n";
	static const char changed[] =
	    "From: Alice <alice@example.com>\r\n"
	    "To: bob@example.org\r\n"
	    "Subject: hello!\r\n"
	    "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
	    "Message-ID: <1@example.com>\r\n"
	    "\r\n"
	    "Hello Bob.\r\n"
	    "\r\n"
	    "-- \r\n"
	    "Alice\r\n";
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf sigs = BUF_INIT, from2 = BUF_INIT;

	sign(keys, 2, simple_msg, strlen(simple_msg), &sigs);
	assert_int_equal(verify(&sigs, simple_msg, strlen(simple_msg), 2), 0);
	/* white space refolded, names re-cased, trailing blank lines */
	assert_int_equal(verify(&sigs, refolded, strlen(refolded), 2), 0);
	/* the verifier is not vacuous: a changed subject fails, both */
	assert_int_equal(verify(&sigs, changed, strlen(changed), 2), 3);
	/*
	 * a second From: added in transit fails: From is oversigned (and
	 * python3-dkim hashes one From more than h= lists in any case)
	 */
	buf_puts(&from2, "From: mallory@example.net\r\n");
	buf_puts(&from2, simple_msg);
	assert_int_equal(verify(&sigs, from2.data, from2.len, 2), 3);
	buf_free(&from2);
	buf_free(&sigs);
}

/* Bodies both signers must hash alike. */
static const struct {
	const char *body;
	bool verifiable; /* python3-dkim reads it as the signers do */
} bodies[] = {
	{ "", true },
	{ "\r\n", true },
	{ "\r\n\r\n  \r\n\t\r\n", true },
	{ "Hello.\r\n", true },
	{ "trailing   \t \r\nspace\t\r\n", true },
	{ "  leading and   inner\t\truns \t of  WSP\r\n", true },
	{ "blank\r\n\r\n\r\nlines inside\r\n\r\n \r\n\r\n", true },
	{ "\r\n\r\nleading blank lines\r\n", true },
	{ "last line without CRLF", true },
	{ "last line with white space, no CRLF \t ", true },
	{ "8-bit: Gr\xc3\xbc\xc3\x9f"
	  "e \xff\xfe\x80 \xe2\x80\x94\r\n",
	    true },
	{ "--\r\n-- \r\n.\r\n..\r\n", true },
	/* bare LF: smtpd refuses it; python3-dkim reads it as CRLF */
	{ "a\nb\r\nc \n d\r\n\n\r\n", false },
};

/*
 * check_bh - sign a message with body (len bytes) with both keys: the
 * two bh= are equal, and, when verifiable, both signatures verify on
 * the message as SMTP sends it (a CRLF after a last line without one).
 */
static void
check_bh(const char *body, size_t len, bool verifiable)
{
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf msg = BUF_INIT, sigs = BUF_INIT;

	buf_puts(&msg, "From: alice@example.com\r\nSubject: bh\r\n\r\n");
	buf_append(&msg, body, len);
	sign(keys, 2, msg.data, msg.len, &sigs);
	assert_same_tag(&sigs, "bh");
	if (verifiable) {
		if (len > 0 &&
		    (len < 2 || memcmp(body + len - 2, "\r\n", 2) != 0))
			buf_puts(&msg, "\r\n");
		assert_int_equal(verify(&sigs, msg.data, msg.len, 2), 0);
	}
	buf_free(&msg);
	buf_free(&sigs);
}

/* The Ed25519 bh= is libopendkim's, body by body. */
static void
test_body_hash(void **state)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < NELEM(bodies); i++)
		check_bh(bodies[i].body, strlen(bodies[i].body),
		    bodies[i].verifiable);
	/* many lines: more than the hashing buffer holds */
	for (int i = 0; i < 3000; i++)
		buf_printf(&b, "line %d \t with  runs%s\r\n%s", i,
		    i % 7 ? "" : "   ", i % 5 ? "" : "\r\n \r\n");
	check_bh(b.data, b.len, true);
	/* one run of 10000 bytes, then one of 5000 words */
	buf_reset(&b);
	for (int i = 0; i < 10000; i++)
		buf_puts(&b, "x");
	buf_puts(&b, "\r\n");
	for (int i = 0; i < 5000; i++)
		buf_puts(&b, i % 2 ? "y\t" : "z  ");
	buf_puts(&b, "\r\n\r\n");
	check_bh(b.data, b.len, true);
	buf_free(&b);
}

/*
 * A CR without LF ends no line (RFC 6376 section 3.4.4, python3-dkim):
 * here libopendkim's relaxed body is not the verifiers', so only the
 * Ed25519 signature, hashed in dkim.c, is checked.
 */
static void
test_bare_cr(void **state)
{
	sign_verify(&fx->ed.key, 1,
	    "From: alice@example.com\r\n\r\na\rb\r\nc \r d\r\nend\r\r\n");
}

/*
 * check_lines - each line of the fields in sigs ends in CRLF, has no
 * white space at its end, starts a field or is indented, and is at most
 * 76 columns wide (a tab counts 8): libopendkim's margin of 75, plus
 * the ';' it lets pass it.
 */
static void
check_lines(const struct buf *sigs)
{
	const char *p = sigs->data, *end = sigs->data + sigs->len;

	assert_true(sigs->len >= 2 && memcmp(end - 2, "\r\n", 2) == 0);
	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		size_t cols = 0;

		assert_non_null(eol);
		assert_true(eol > p && eol[-1] != ' ' && eol[-1] != '\t');
		assert_true(
		    strncmp(p, "DKIM-Signature: ", 16) == 0 || p[0] == '\t');
		for (const char *c = p; c < eol; c++)
			cols = *c == '\t' ? (cols / 8 + 1) * 8 : cols + 1;
		if (cols > 76)
			fail_msg("line of %zu columns: %.*s", cols,
			    (int)(eol - p), p);
		p = eol + 2;
	}
}

/* test_ed25519_form - the Ed25519 field looks like libopendkim's RSA one */
static void
test_ed25519_form(void **state)
{
	static const char msg[] = "From: Alice <alice@example.com>\r\n"
				  "Sender: alice@example.com\r\n"
				  "Reply-To: alice@example.com\r\n"
				  "To: bob@example.org\r\n"
				  "Cc: carol@example.org\r\n"
				  "Subject: many signed fields\r\n"
				  "Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n"
				  "Message-ID: <2@example.com>\r\n"
				  "In-Reply-To: <1@example.com>\r\n"
				  "References: <1@example.com>\r\n"
				  "List-Id: <list.example.com>\r\n"
				  "List-Help: <mailto:help@example.com>\r\n"
				  "List-Unsubscribe: <mailto:u@example.com>\r\n"
				  "List-Unsubscribe-Post: "
				  "List-Unsubscribe=One-Click\r\n"
				  "List-Post: <mailto:list@example.com>\r\n"
				  "List-Archive: <https://example.com/a>\r\n"
				  "MIME-Version: 1.0\r\n"
				  "Content-Type: text/plain; charset=utf-8\r\n"
				  "Content-Transfer-Encoding: 8bit\r\n"
				  "Feedback-ID: 1:2:3:example\r\n"
				  "\r\n"
				  "body\r\n";
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf sigs = BUF_INIT;
	const char *ed, *h0, *h1;
	time_t before, after;
	char *v;

	before = time(NULL);
	sign(keys, 2, msg, strlen(msg), &sigs);
	after = time(NULL);
	assert_int_equal(verify(&sigs, msg, strlen(msg), 2), 0);
	/* libopendkim's tags in libopendkim's order */
	v = sig_tag(&sigs, 1, NULL);
	assert_string_equal(v, "v a c d s t bh h b");
	free(v);
	assert_same_tag(&sigs, NULL);
	assert_same_tag(&sigs, "v");
	assert_same_tag(&sigs, "c");
	assert_same_tag(&sigs, "d");
	assert_same_tag(&sigs, "bh");
	assert_same_tag(&sigs, "h");
	v = sig_tag(&sigs, 1, "a");
	assert_string_equal(v, "ed25519-sha256");
	free(v);
	v = sig_tag(&sigs, 1, "s");
	assert_string_equal(v, "ed1");
	free(v);
	v = sig_tag(&sigs, 1, "t");
	assert_true(strtoll(v, NULL, 10) >= (long long)before &&
	    strtoll(v, NULL, 10) <= (long long)after);
	free(v);
	v = sig_tag(&sigs, 1, "b"); /* 64 bytes of signature */
	assert_int_equal(strlen(v), 88);
	assert_string_equal(v + 86, "==");
	free(v);
	/* folded alike: the long h= is broken at the same places */
	check_lines(&sigs);
	ed = strstr(sigs.data, "\r\nDKIM-Signature: ");
	assert_non_null(ed);
	h0 = strstr(sigs.data, "\th=");
	h1 = strstr(ed, "\th=");
	assert_true(h0 != NULL && h0 < ed && h1 != NULL);
	assert_int_equal(strcspn(h0, ";"), strcspn(h1, ";"));
	assert_memory_equal(h0, h1, strcspn(h0, ";"));
	assert_non_null(memchr(h0, '\n', strcspn(h0, ";"))); /* folded */
	buf_free(&sigs);
}

/* sign_fails - dkim_sign_message refuses; err contains each of the words */
static void
sign_fails(const struct dkim_key *keys, size_t n, const char *msg, size_t len,
    const char *w1, const char *w2)
{
	struct buf out = BUF_INIT;
	char err[512] = "";

	buf_puts(&out, "untouched");
	assert_int_equal(dkim_sign_message(fx->signer, keys, n, msg, len, &out,
			     err, sizeof(err)),
	    -1);
	assert_string_equal(buf_cstr(&out), "untouched");
	if (strstr(err, w1) == NULL || (w2 != NULL && strstr(err, w2) == NULL))
		fail_msg(
		    "error '%s' lacks '%s' or '%s'", err, w1, w2 ? w2 : "");
	buf_free(&out);
}

static void
test_refusals(void **state)
{
	static const char no_from[] =
	    "To: bob@example.org\r\nSubject: x\r\n\r\nbody\r\n";
	static const char from_in_body[] =
	    "To: bob@example.org\r\n\r\nFrom: alice@example.com\r\n";
	static const char fromage[] = "Fromage: brie\r\n\r\nb\r\n";
	static const char bad_line[] =
	    "From: a@example.com\r\nthis is not a field\r\n\r\nb\r\n";
	static const char leading_wsp[] = " From: a@example.com\r\n\r\nb\r\n";
	static const char obs_colon[] = "From : a@example.com\r\n\r\nb\r\n";
	struct dkim_key keys[2] = { fx->rsa.key, fx->ed.key };
	struct buf many = BUF_INIT;

	sign_fails(keys, 2, no_from, strlen(no_from), "no From", NULL);
	sign_fails(
	    keys, 1, from_in_body, strlen(from_in_body), "no From", NULL);
	sign_fails(keys, 1, fromage, strlen(fromage), "no From", NULL);
	sign_fails(keys, 1, bad_line, strlen(bad_line), "line 2", NULL);
	sign_fails(keys, 1, leading_wsp, strlen(leading_wsp), "line 1", NULL);
	sign_fails(keys, 1, "", 0, "no From", NULL);
	buf_puts(&many, "From: a@example.com\r\n");
	for (int i = 0; i < DKIM_FIELDS_MAX; i++)
		buf_puts(&many, "X-Field: x\r\n");
	buf_puts(&many, "\r\nbody\r\n");
	sign_fails(keys, 1, many.data, many.len, "header fields", NULL);
	buf_free(&many);
	/* obs-optional white space before a colon: refused, not mis-signed */
	sign_fails(keys, 1, obs_colon, strlen(obs_colon), "line 1", "colon");
}

static void
test_bad_keys(void **state)
{
	static const char garbage[] = "-----BEGIN PRIVATE KEY-----\nnope\n"
				      "-----END PRIVATE KEY-----\n";
	struct dkim_key bad = { "example.net", "sel9", DKIM_RSA_SHA256, garbage,
		sizeof(garbage) - 1 };
	struct dkim_key ed_bad = { "example.net", "sel8", DKIM_ED25519_SHA256,
		garbage, sizeof(garbage) - 1 };
	struct dkim_key keys[2] = { fx->rsa.key, bad };
	struct dkim_key mismatch = fx->ed.key, name = fx->ed.key;
	char *small = NULL, *txt = NULL, err[256];

	sign_fails(
	    &bad, 1, simple_msg, strlen(simple_msg), "example.net", "sel9");
	sign_fails(
	    &ed_bad, 1, simple_msg, strlen(simple_msg), "example.net", "sel8");
	/* an Ed25519 field that fails is not appended either */
	keys[0] = fx->ed.key;
	sign_fails(
	    keys, 2, simple_msg, strlen(simple_msg), "example.net", "sel9");
	keys[0] = fx->rsa.key;
	/* a selector or domain that would end the tag or the field */
	name.selector = "ed1; l=0";
	sign_fails(&name, 1, simple_msg, strlen(simple_msg), "ed1; l=0",
	    "invalid selector");
	name = fx->rsa.key;
	name.domain = "example.com\r\nX-Evil: 1";
	sign_fails(&name, 1, simple_msg, strlen(simple_msg), "rsa1",
	    "invalid selector or domain");
	/* the good first key's field is not appended either */
	sign_fails(
	    keys, 2, simple_msg, strlen(simple_msg), "example.net", "sel9");
	bad.pem = "";
	bad.pemlen = 0;
	sign_fails(&bad, 1, simple_msg, strlen(simple_msg), "sel9", NULL);
	/* an RSA key said to be Ed25519 and the other way round */
	mismatch.pem = fx->rsa.pem;
	mismatch.pemlen = strlen(fx->rsa.pem);
	sign_fails(
	    &mismatch, 1, simple_msg, strlen(simple_msg), "not ed25519", "ed1");
	mismatch = fx->rsa.key;
	mismatch.pem = fx->ed.pem;
	mismatch.pemlen = strlen(fx->ed.pem);
	sign_fails(
	    &mismatch, 1, simple_msg, strlen(simple_msg), "not rsa", "rsa1");
	/* keys under 1024 bits are refused (RFC 8301) */
	assert_int_equal(
	    dkim_keygen(DKIM_RSA_SHA256, 512, &small, &txt, err, sizeof(err)),
	    -1);
	assert_null(small);
	assert_non_null(strstr(err, "1024"));
	assert_int_equal(
	    dkim_keygen(DKIM_RSA_SHA256, 8192, &small, &txt, err, sizeof(err)),
	    -1);
}

static void
test_keygen(void **state)
{
	enum dkim_algo algo;
	char *txt = NULL, *pem = NULL, err[256];

	assert_true(strncmp(fx->rsa.txt, "v=DKIM1; k=rsa; p=MII", 21) == 0);
	assert_true(strncmp(fx->ed.txt, "v=DKIM1; k=ed25519; p=", 22) == 0);
	/* Ed25519: the bare 32-byte key, 44 base64 characters */
	assert_int_equal(strlen(fx->ed.txt), 22 + 44);
	assert_non_null(strstr(fx->rsa.pem, "-----BEGIN PRIVATE KEY-----"));
	assert_non_null(strstr(fx->ed.pem, "-----BEGIN PRIVATE KEY-----"));
	assert_int_equal(dkim_public_txt(fx->rsa.pem, strlen(fx->rsa.pem),
			     &algo, &txt, err, sizeof(err)),
	    0);
	assert_int_equal(algo, DKIM_RSA_SHA256);
	assert_string_equal(txt, fx->rsa.txt);
	free(txt);
	assert_int_equal(dkim_public_txt(fx->ed.pem, strlen(fx->ed.pem), &algo,
			     &txt, err, sizeof(err)),
	    0);
	assert_int_equal(algo, DKIM_ED25519_SHA256);
	assert_string_equal(txt, fx->ed.txt);
	free(txt);
	assert_int_equal(
	    dkim_public_txt("junk", 4, &algo, &txt, err, sizeof(err)), -1);
	assert_null(txt);
	/* a 1024-bit key signs and verifies as well */
	assert_int_equal(
	    dkim_keygen(DKIM_RSA_SHA256, 1024, &pem, &txt, err, sizeof(err)),
	    0);
	assert_true(strlen(txt) < strlen(fx->rsa.txt));
	free(pem);
	free(txt);
	assert_string_equal(dkim_algo_name(DKIM_RSA_SHA256), "rsa-sha256");
	assert_string_equal(
	    dkim_algo_name(DKIM_ED25519_SHA256), "ed25519-sha256");
}

static void
test_names(void **state)
{
	assert_true(dkim_selector_valid("herald202611-rsa"));
	assert_true(dkim_selector_valid("s1"));
	assert_false(dkim_selector_valid(""));
	assert_false(dkim_selector_valid("-a"));
	assert_false(dkim_selector_valid("a-"));
	assert_false(dkim_selector_valid("A1"));
	assert_false(dkim_selector_valid("a.b"));
	assert_false(dkim_selector_valid("../x"));
	assert_false(dkim_selector_valid("a123456789012345678901234567890123456"
					 "789012345678901234567890123"));
	assert_true(dkim_domain_valid("example.com"));
	assert_true(dkim_domain_valid("xn--mnchen-3ya.example"));
	assert_false(dkim_domain_valid("Example.com"));
	assert_false(dkim_domain_valid("example.com."));
	assert_false(dkim_domain_valid(".."));
	assert_false(dkim_domain_valid("../etc"));
	assert_false(dkim_domain_valid("a/b"));
	assert_false(dkim_domain_valid("[1.2.3.4]"));
	assert_false(dkim_domain_valid(""));
}

/* put - write a key file with mtime t (seconds) under data */
static void
put(const char *data, const char *domain, const char *name, const char *text,
    time_t t)
{
	char dir[256], path[512];
	struct timespec times[2] = { { t, 0 }, { t, 0 } };
	int fd;

	snprintf(dir, sizeof(dir), "%s/dkim/%s", data, domain);
	assert_int_equal(fs_mkdirs(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
	assert_int_equal(futimens(fd, times), 0);
	close(fd);
}

static int
collect(void *arg, const struct dkim_key_file *f)
{
	struct buf *b = arg;

	buf_printf(
	    b, "%s %s %s|", f->domain, f->selector, dkim_algo_tag(f->algo));
	return 0;
}

static int
stop_at_first(void *arg, const struct dkim_key_file *f)
{
	(*(int *)arg)++;
	return 7;
}

static void
test_key_files(void **state)
{
	struct dkim_keyset ks;
	struct buf b = BUF_INIT;
	char data[128], err[256], *p;
	int calls = 0;

	snprintf(data, sizeof(data), "%s/data", fx->dir);
	/* nothing yet: no keys, no error */
	assert_int_equal(
	    dkim_keys_load(data, "example.com", &ks, err, sizeof(err)), 0);
	assert_int_equal(ks.n, 0);
	dkim_keyset_free(&ks);
	assert_int_equal(
	    dkim_keys_list(data, NULL, collect, &b, err, sizeof(err)), 0);
	assert_int_equal(b.len, 0);

	put(data, "example.com", "old.rsa.pem", fx->rsa.pem, 1000);
	put(data, "example.com", "new.rsa.pem", fx->rsa.pem, 2000);
	put(data, "example.com", "ed1.ed25519.pem", fx->ed.pem, 1500);
	put(data, "example.com", "ed0.ed25519.pem", fx->ed.pem, 1500);
	put(data, "example.com", "x.rsa.pem.tmp", "junk", 3000);
	put(data, "example.com", "Upper.rsa.pem", "junk", 3000);
	put(data, "example.com", "notes.txt", "junk", 3000);
	put(data, "example.com", "a.dsa.pem", "junk", 3000);
	put(data, "example.org", "s1.rsa.pem", fx->rsa.pem, 1000);
	put(data, "Not-A-Domain..", "s1.rsa.pem", fx->rsa.pem, 1000);

	assert_int_equal(
	    dkim_keys_list(data, NULL, collect, &b, err, sizeof(err)), 0);
	assert_string_equal(buf_cstr(&b),
	    "example.com ed0 ed25519|example.com ed1 ed25519|"
	    "example.com new rsa|example.com old rsa|example.org s1 rsa|");
	buf_reset(&b);
	assert_int_equal(
	    dkim_keys_list(data, "example.org", collect, &b, err, sizeof(err)),
	    0);
	assert_string_equal(buf_cstr(&b), "example.org s1 rsa|");
	assert_int_equal(
	    dkim_keys_list(data, NULL, stop_at_first, &calls, err, sizeof(err)),
	    7);
	assert_int_equal(calls, 1);
	assert_int_equal(
	    dkim_keys_list(data, "../etc", collect, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "../etc"));

	/* newest per algorithm, RSA first; a tie goes to the greater name */
	assert_int_equal(
	    dkim_keys_load(data, "EXAMPLE.com", &ks, err, sizeof(err)), 0);
	assert_int_equal(ks.n, 2);
	assert_string_equal(ks.keys[0].domain, "example.com");
	assert_string_equal(ks.keys[0].selector, "new");
	assert_int_equal(ks.keys[0].algo, DKIM_RSA_SHA256);
	assert_int_equal(ks.keys[0].pemlen, strlen(fx->rsa.pem));
	assert_memory_equal(ks.keys[0].pem, fx->rsa.pem, ks.keys[0].pemlen);
	assert_string_equal(ks.keys[1].selector, "ed1");
	assert_int_equal(ks.keys[1].algo, DKIM_ED25519_SHA256);
	/* what was loaded signs, and verifies with the published records */
	ks.keys[0].selector = "rsa1";
	ks.keys[1].selector = "ed1";
	sign_verify(ks.keys, ks.n, simple_msg);
	dkim_keyset_free(&ks);
	assert_int_equal(ks.n, 0);
	assert_null(ks.domain);
	dkim_keyset_free(&ks); /* twice is harmless */

	/* an unreadable key names its file */
	p = dkim_key_path(data, "example.org", "s1", DKIM_RSA_SHA256);
	assert_int_equal(chmod(p, 0), 0);
	if (geteuid() != 0) {
		assert_int_equal(
		    dkim_keys_load(data, "example.org", &ks, err, sizeof(err)),
		    -1);
		assert_non_null(strstr(err, p));
		assert_int_equal(ks.n, 0);
		dkim_keyset_free(&ks);
	}
	free(p);
	assert_int_equal(
	    dkim_keys_load(data, "a/../b", &ks, err, sizeof(err)), -1);
	dkim_keyset_free(&ks);

	p = dkim_key_dir(data, "example.com");
	assert_true(strlen(p) > 12 &&
	    strcmp(p + strlen(p) - 17, "/dkim/example.com") == 0);
	free(p);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_folded_headers),
		cmocka_unit_test(test_multiple_to),
		cmocka_unit_test(test_header_shapes),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_empty_body),
		cmocka_unit_test(test_no_final_crlf),
		cmocka_unit_test(test_dual),
		cmocka_unit_test(test_signed_fields),
		cmocka_unit_test(test_relaxed_tolerance),
		cmocka_unit_test(test_body_hash),
		cmocka_unit_test(test_bare_cr),
		cmocka_unit_test(test_ed25519_form),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_keygen),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_key_files),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
