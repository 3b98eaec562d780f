/*
 * fuzz_dsn - dsn_build() (mail/dsn.c) on recipients, diagnostics,
 * reasons, remote host names, ORCPT, ENVID, the sender and the original
 * message all taken from the input.
 *
 * The input is fields separated by '|':
 *
 *   FF|reporting-mta|sender|envid|addr|orcpt|status|remote-mta|
 *       diagnostic|reason|...(six per recipient)...|original
 *
 * FF are two option bytes (their low six bits, see O_*; '@' is all
 * clear), which also give the number of recipients (1 to 4); what comes
 * after the last recipient's fields, '|' included, is the original
 * message.  An empty optional field (orcpt, remote-mta, diagnostic,
 * reason, envid) is NULL.  Missing fields are empty.
 *
 * What must hold:
 *   1. dsn_build returns 0 when the info is valid-shaped (a sender, a
 *      reporting MTA, every recipient with an address and an x.y.z
 *      status), else -1 with an error and nothing appended; with the
 *      weak random source (O_WEAK: tokens that the input can contain)
 *      it may also refuse for want of a boundary, and then the input
 *      (or the original made of it) holds the tokens it would have
 *      used;
 *   2. the boundary delimits exactly the parts: "--boundary" occurs
 *      only on the delimiter lines (so never inside the returned
 *      original, nor in any text taken from the input);
 *   3. the message/delivery-status part is printable ASCII, the text
 *      part valid UTF-8, and the header says 8bit when the body has
 *      8-bit bytes;
 *   4. dsn_wanted() follows RFC 3461 as dsn.h puts it (NOTIFY from the
 *      first byte of each address);
 *   5. with O_SHAPED (the original made CRLF lines of at most 998
 *      octets, the sender and ENVID cut to their SMTP limits, the
 *      reporting MTA a host name, as the configuration has it): the whole
 * message has CRLF line ends only (no bare CR or LF), no line over 998 octets,
 * and a header section of fields and continuation lines only (nothing from the
 * input starts a field of its own).
 *
 * See fuzz_main.c for how to run it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "mail/address.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/smtp_cmd.h"
#include "fuzz.h"

#define INPUT_MAX (64 * 1024)
#define NRCPTS_MAX 4
#define LINE_MAX_OCTETS 998
#define BIG_REPEAT 24 /* O_BIG: the original this many times */
#define TOKEN_A "=_dsn_AAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "=_dsn_BBBBBBBBBBBBBBBBBBBBBBBB"
#define X64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define E10                                                                    \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3" \
	"\xa9\xc3\xa9"
#define E100 E10 E10 E10 E10 E10 E10 E10 E10 E10 E10

/* Option bits: the low six bits of the two first bytes. */
#define O_RET_MASK 0x03	  /* 0 none, 1 FULL, 2 HDRS, 3 FULL */
#define O_SHAPED 0x04	  /* invariant 5 (see above) */
#define O_WEAK 0x08	  /* tokens "AAA..." and "BBB..." in turn */
#define O_SMALL_MAX 0x10  /* max_return 100 octets */
#define O_NO_ARRIVAL 0x20 /* received_at 0 */
#define O_NRCPTS_MASK (0x03 << 6)
#define O_DELAYED (0x04 << 6) /* every recipient delayed */
#define O_MIXED (0x08 << 6)   /* every other recipient delayed */
#define O_DATES (0x10 << 6)   /* Last-Attempt-Date, Will-Retry-Until */
#define O_BIG (0x20 << 6)     /* the original repeated (over 64 KiB) */

const char *const fuzz_seeds[] = {
	"A@|mx.herald.test|alice@example.com|QQ314159|bob@example.net|"
	"rfc822;bob@example.net|5.1.1|mx.example.net|"
	"550 5.1.1 <bob@example.net>: Recipient address rejected|"
	"the server said the mailbox does not exist|"
	"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\n"
	"\r\nHello Bob.\r\n.\r\n..dots\r\n",
	"FI|mx.herald.test|alice@example.com||carol@example.org||4.4.1|||"
	"no MX host answered for 5 days|"
	"a@b.example|utf-8;\xc3\xa9@b.example|5.7.1|[192.0.2.1]|"
	"554 5.7.1 Message refused\r\n as spam|spam|"
	"Subject: x\r\n\r\nbody\r\n",
	"E[|mx.herald.test|\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
	"cole.example|"
	"id+2Bwith+3Dxtext \x01|\xc3\xbc@\xc3\xa9xample.com|"
	"rfc822;\xc3\xbc@\xc3\xa9xample.com|4.2.2|mx\xc3\xa9.example|"
	"452 4.2.2 mailbox full\t\ttry later|it is full|"
	"\xc3\xa9t\xc3\xa9@x||5.0.0||||"
	"\xe2\x82\xac@x||2.0.0|||\xff\xfe stray bytes|"
	"d@x||5.9.999||||"
	"Subject: =?UTF-8?B?w6k=?=\r\nX: \xc3\xa9\r\n\r\n\xe2\x82\xac\r\n",
	/* bare CR and LF, a long line, a header only, no blank line */
	"A@|mx|s@x||r@x||5.1.1||||a\rb\nc\r\n\r\nd\n.\n\r\r\n",
	"B@|mx|s@x||r@x||5.1.1||||Subject: only a header\r\nX: y\r\n",
	"D@|mx|s@x||r@x||5.1.1||"
	"550 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"||\r\nbody line that is not so long\r\n",
	/* a word over 900 octets, cut where a character is not split */
	"D@|mx|s@x||r@x||5.1.1|||x" E100 E100 E100 E100 E100 "|",
	/* a boundary in the original, with the weak random source */
	"I@|mx|s@x||r@x||5.1.1||||Subject: b\r\n\r\n--" TOKEN_A "\r\nx\r\n",
	"I@|mx|s@x||r@x||5.1.1||||--" TOKEN_A "\r\n--" TOKEN_B "\r\n",
	"L@|mx|s@x||r@x||5.1.1|" TOKEN_A "|" TOKEN_B "|||",
	/* RET=FULL over max_return; a big original; the refusals */
	"Q@|mx|s@x|e|r@x||5.1.1||||Subject: big\r\n\r\n"
	"0123456789012345678901234567890123456789012345678901234567890123\r\n"
	"0123456789012345678901234567890123456789012345678901234567890123\r\n",
	"E`|mx|s@x||r@x||5.1.1||||Subject: big\r\nX: "
	"0123456789012345678901234567890123456789012345678901234567890123\r\n",
	/* a header section over 64 KiB (24 times this one), RET=HDRS */
	"F`|mx|s@x||r@x||5.1.1||||X: " X64 X64 "\r\nY: " X64 X64
	"\r\nZ: " X64 X64 "\r\nX: " X64 X64 "\r\nY: " X64 X64 "\r\nZ: " X64 X64
	"\r\nX: " X64 X64 "\r\nY: " X64 X64 "\r\nZ: " X64 X64 "\r\nX: " X64 X64
	"\r\nY: " X64 X64 "\r\nZ: " X64 X64 "\r\nX: " X64 X64 "\r\nY: " X64 X64
	"\r\nZ: " X64 X64 "\r\nX: " X64 X64 "\r\nY: " X64 X64 "\r\nZ: " X64 X64
	"\r\nX: " X64 X64 "\r\nY: " X64 X64 "\r\nZ: " X64 X64 "\r\nX: " X64 X64
	"\r\nY: " X64 X64 "\r\nZ: " X64 X64 "\r\n",
	"@@|mx|||r@x||5.1.1||||",
	"@@||s@x||r@x||5.1.1||||",
	"@@|mx|s@x||||5.1.1||||",
	"@@|mx|s@x||r@x||5.1||||",
	"@@|mx|s@x||r@x||6.1.1||||",
	"@@|mx|s@x||r@x||5.1.1000||||",
	"@@|mx|s@x||r@x||5.1.1 ||||",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

static unsigned weak_calls;

/* weak_random - O_WEAK: "AAA..." and "BBB..." in turn */
static void
weak_random(char *out, size_t len)
{
	memset(out, weak_calls++ % 2 ? 'B' : 'A', len);
	out[len] = '\0';
}

static uint64_t rng_state;

/* fixed_random - repeatable tokens from the input's hash */
static void
fixed_random(char *out, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
				       "mnopqrstuvwxyz0123456789-_";

	for (size_t i = 0; i < len; i++) {
		rng_state ^= rng_state >> 12;
		rng_state ^= rng_state << 25;
		rng_state ^= rng_state >> 27;
		out[i] = alphabet[(rng_state * 0x2545f4914f6cdd1dULL) >> 58];
	}
	out[len] = '\0';
}

/* field - the next '|'-separated field of in as a string (NUL at the
 * first NUL byte); *p moves past it */
static char *
field(const char *in, size_t len, size_t *p)
{
	const char *s = in + *p, *bar;
	size_t n;
	char *f;

	if (*p >= len)
		return strdup("");
	bar = memchr(s, '|', len - *p);
	n = bar ? (size_t)(bar - s) : len - *p;
	*p += n + 1;
	f = strndup(s, n);
	CHECK(f != NULL);
	return f;
}

/* cut - truncate s to at most n octets (O_SHAPED) */
static void
cut(char *s, size_t n)
{
	if (strlen(s) > n)
		s[n] = '\0';
}

/* hostname - s made a host name: letters, digits, '.', '-', 255 octets */
static void
hostname(char *s)
{
	for (char *p = s; *p; p++)
		if (!strchr(
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789.-",
			*p))
			*p = 'x';
	cut(s, 255);
}

/*
 * shape - the original as CRLF lines of at most 998 octets: bare CR
 * and bare LF become CRLF, longer lines are broken.
 */
static void
shape(const char *p, size_t n, struct buf *out)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\n') {
			buf_puts(out, "\r\n");
			col = 0;
			if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
				i++;
			continue;
		}
		if (col == LINE_MAX_OCTETS) {
			buf_puts(out, "\r\n");
			col = 0;
		}
		buf_append(out, &p[i], 1);
		col++;
	}
}

/* status_ok - an RFC 3463 code as dsn.h asks: [245].1-3 digits.1-3 */
static bool
status_ok(const char *s)
{
	size_t a, b;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return false;
	if (s[1] != '.')
		return false;
	a = strspn(s + 2, "0123456789");
	if (a < 1 || a > 3 || s[2 + a] != '.')
		return false;
	b = strspn(s + 3 + a, "0123456789");
	return b >= 1 && b <= 3 && s[3 + a + b] == '\0';
}

/* utf8_valid - whether p..p+n is valid UTF-8 (no overlong, surrogate) */
static bool
utf8_valid(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = p[i], len, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (unsigned k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* check_wanted - invariant 4 for one recipient's NOTIFY bits */
static void
check_wanted(const char *sender, unsigned notify)
{
	for (int a = DSN_FAILED; a <= DSN_DELAYED; a++) {
		bool w = dsn_wanted(sender, notify, (enum dsn_action)a);
		unsigned bit =
		    a == DSN_FAILED ? SMTP_NOTIFY_FAILURE : SMTP_NOTIFY_DELAY;

		CHECK(!dsn_wanted("", notify, (enum dsn_action)a));
		CHECK(!dsn_wanted(NULL, notify, (enum dsn_action)a));
		if (sender[0] == '\0' || (notify & SMTP_NOTIFY_NEVER))
			CHECK(!w);
		else
			CHECK(w == (notify == 0 || (notify & bit) != 0));
	}
}

/* count - occurrences of needle in p..p+n (p may be NULL when n is 0) */
static size_t
count(const char *p, size_t n, const char *needle)
{
	size_t k = 0, m = strlen(needle);
	const char *q = p;

	if (n == 0)
		return 0;
	while ((q = memmem(q, n - (size_t)(q - p), needle, m)) != NULL) {
		k++;
		q++;
	}
	return k;
}

/* part - the body of the part whose header ends with "ctype\r\n\r\n" */
static const char *
part(const char *p, size_t len, const char *ctype, const char *delim, size_t *n)
{
	const char *s = memmem(p, len, ctype, strlen(ctype)), *e;

	CHECK(s != NULL);
	s += strlen(ctype);
	e = memmem(s, len - (size_t)(s - p), delim, strlen(delim));
	CHECK(e != NULL);
	*n = (size_t)(e - s);
	return s;
}

/* check_shaped - invariant 5 */
static void
check_shaped(const struct buf *m)
{
	size_t start = 0;
	bool in_header = true;

	CHECK(m->len >= 2 && m->data[m->len - 2] == '\r' &&
	    m->data[m->len - 1] == '\n');
	for (size_t i = 0; i < m->len; i++) {
		if (m->data[i] == '\n')
			CHECK(i > 0 && m->data[i - 1] == '\r');
		if (m->data[i] != '\r')
			continue;
		CHECK(i + 1 < m->len && m->data[i + 1] == '\n');
		CHECK(i - start <= LINE_MAX_OCTETS);
		if (in_header && i == start) {
			in_header = false;
		} else if (in_header) {
			const char *l = m->data + start;
			size_t name = strcspn(l, ": \t\r");

			/* a field "Name:" or a continuation line */
			CHECK(l[0] == ' ' || l[0] == '\t' ||
			    (name > 0 && l[name] == ':'));
		}
		start = i + 2;
	}
}

/*
 * check_message - invariants 2 and 3 on a built DSN (nparts: 2 or 3).
 * The header may hold anything from the input (To: has the sender), but
 * no line of it can start with "--": only the body is checked.
 */
static void
check_message(const struct buf *m, size_t nparts)
{
	const char *b, *e, *body, *s;
	char delim[128];
	size_t blen, n;

	CHECK(m->data != NULL);
	b = memmem(m->data, m->len, "boundary=\"", 10);
	body = memmem(m->data, m->len, "\r\n\r\n", 4);
	CHECK(b != NULL && body != NULL && b < body);
	b += 10;
	e = memchr(b, '"', (size_t)(body - b));
	CHECK(e != NULL && e - b > 0 && e - b < 100);
	snprintf(delim, sizeof(delim), "\r\n--%.*s", (int)(e - b), b);
	blen = m->len - (size_t)(body - m->data);
	/* Invariant 2: the delimiters and the close, nothing else. */
	CHECK(count(body, blen, delim + 2) == nparts + 1);
	CHECK(count(body, blen, delim) == nparts + 1);
	n = strlen(delim);
	CHECK(blen > n + 4 && memcmp(body + blen - n - 4, delim, n) == 0 &&
	    memcmp(body + blen - 4, "--\r\n", 4) == 0);
	/* Invariant 3. */
	s = part(body, blen, "Content-Type: message/delivery-status\r\n\r\n",
	    delim, &n);
	for (size_t i = 0; i < n; i++)
		CHECK((s[i] >= 0x20 && s[i] < 0x7f) || s[i] == '\r' ||
		    s[i] == '\n');
	s = part(body, blen, "Content-Type: text/plain; charset=utf-8\r\n",
	    delim, &n);
	CHECK(utf8_valid((const unsigned char *)s, n));
	for (size_t i = 0; i < blen; i++)
		if ((unsigned char)body[i] >= 0x80) {
			CHECK(memmem(m->data, (size_t)(body - m->data),
				  "\r\nContent-Transfer-Encoding: 8bit",
				  33) != NULL);
			break;
		}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct dsn_rcpt rcpts[NRCPTS_MAX];
	char *f[3 + 6 * NRCPTS_MAX], err[256] = "";
	struct buf raw = BUF_INIT, original = BUF_INIT, out = BUF_INIT;
	struct envelope env;
	struct dsn_info info;
	unsigned opts = 0;
	size_t p = 0, nf = 0, nrcpts;
	bool valid;
	int rc;

	if (size > INPUT_MAX)
		return 0;
	for (size_t i = 0; i < 2; i++)
		opts |= (i < size ? data[i] & 63u : 0) << (6 * i);
	p = size < 2 ? size : 2;
	if (p < size && in[p] == '|')
		p++;
	nrcpts = 1 + ((opts & O_NRCPTS_MASK) >> 6);
	for (nf = 0; nf < 3 + 6 * nrcpts; nf++)
		f[nf] = field(in, size, &p);
	for (int r = (opts & O_BIG) ? BIG_REPEAT : 1; r > 0 && p < size; r--)
		buf_append(&raw, in + p, size - p);
	if (opts & O_SHAPED)
		shape(raw.data, raw.len, &original);
	else if (raw.len > 0)
		buf_append(&original, raw.data, raw.len);
	if (opts & O_SHAPED) {
		hostname(f[0]);		   /* ours: from the configuration */
		cut(f[1], MAIL_PATH_MAX);  /* what MAIL FROM takes */
		cut(f[2], SMTP_ENVID_MAX); /* decoded: at most this */
	}

	envelope_init(&env);
	envelope_set(&env.sender, f[1]);
	envelope_set(&env.envid, f[2][0] ? f[2] : NULL);
	env.ret =
	    (opts & O_RET_MASK) == 3 ? SMTP_RET_FULL : (int)(opts & O_RET_MASK);
	env.received_at = opts & O_NO_ARRIVAL ? 0 : 1700000000;
	valid = f[0][0] != '\0' && f[1][0] != '\0';
	for (size_t i = 0; i < nrcpts; i++) {
		char **g = &f[3 + 6 * i];
		bool delayed =
		    (opts & O_DELAYED) || ((opts & O_MIXED) && i % 2 == 1);

		memset(&rcpts[i], 0, sizeof(rcpts[i]));
		rcpts[i].addr = g[0];
		rcpts[i].orcpt = g[1][0] ? g[1] : NULL;
		rcpts[i].status = g[2];
		rcpts[i].remote_mta = g[3][0] ? g[3] : NULL;
		rcpts[i].diagnostic = g[4][0] ? g[4] : NULL;
		rcpts[i].reason = g[5][0] ? g[5] : NULL;
		rcpts[i].action = delayed ? DSN_DELAYED : DSN_FAILED;
		if (opts & O_DATES) {
			rcpts[i].last_attempt = 1700003600 + (int64_t)i;
			rcpts[i].retry_until = 1700432000;
		}
		valid = valid && g[0][0] != '\0' && status_ok(g[2]);
		check_wanted(f[1], (unsigned char)g[0][0] & 15u);
	}

	memset(&info, 0, sizeof(info));
	info.reporting_mta = f[0];
	info.env = &env;
	info.rcpts = rcpts;
	info.nrcpts = nrcpts;
	info.original = original.len > 0 ? original.data : NULL;
	info.original_len = original.len;
	info.max_return = opts & O_SMALL_MAX ? 100 : 1024 * 1024;
	info.now = 1700500000;
	weak_calls = 0;
	rng_state = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < size; i++)
		rng_state = (rng_state ^ data[i]) * 0x100000001b3ULL;
	rng_state |= 1;
	info.random_fn = opts & O_WEAK ? weak_random : fixed_random;

	rc = dsn_build(&info, &out, err, sizeof(err));
	if (!valid) {
		/* Invariant 1: refused, with a reason, nothing written. */
		CHECK(rc == -1 && err[0] != '\0' && out.len == 0);
	} else if (rc < 0) {
		/* Only the weak source may run out of boundaries. */
		CHECK((opts & O_WEAK) && strstr(err, "boundary") != NULL);
		CHECK(count(in, size, TOKEN_A) +
			    count(raw.data, raw.len, TOKEN_A) >
			0 &&
		    count(in, size, TOKEN_B) +
			    count(raw.data, raw.len, TOKEN_B) >
			0);
		CHECK(out.len == 0);
	} else {
		CHECK(rc == 0 && out.len > 0);
		check_message(&out, original.len > 0 ? 3 : 2);
		if (opts & O_SHAPED)
			check_shaped(&out);
	}

	buf_free(&out);
	buf_free(&original);
	buf_free(&raw);
	envelope_clear(&env);
	for (size_t i = 0; i < nf; i++)
		free(f[i]);
	return 0;
}
