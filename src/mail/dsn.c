/*
 * dsn.c - delivery status notifications (see dsn.h).
 *
 * Design notes.
 *
 * 1. The three parts are written into buffers of their own before the
 *    message header, so that the boundary can be checked against all
 *    it will enclose (a remote reply lands in two parts, the original in
 *    the third) and drawn again when it occurs there.  A 24-character
 *    random token makes a collision practically impossible; the check is
 *    for an original that quotes an earlier bounce, and for tests.
 * 2. Every value that came from outside (addresses, ENVID, ORCPT, the
 *    remote host and its reply, reasons) goes through put_clean():
 *    control bytes become spaces and runs of white space one space, so
 *    nothing can end a header line early or start a boundary line.
 * 3. The delivery-status part stays 7-bit: it is message/delivery-status,
 *    not message/global-delivery-status (RFC 6533).  Non-ASCII text there
 *    is written as RFC 6533 \x{HEX}, and a non-ASCII Final-Recipient
 *    becomes "utf-8; " with utf-8-addr-xtext.  The text part and the
 *    returned part keep their bytes and say "8bit" when they have any,
 *    and then so does the whole message.
 * 4. Header fields are folded at spaces before column 78.  A run of more
 *    than DSN_HARD octets without a space is cut (unfolding then reads a
 *    space there), so that no line reaches 998 octets.  The text part is
 *    wrapped the same way, without the leading space.
 * 5. dsn_wanted() and NOTIFY: no NOTIFY means FAILURE (RFC 3461 4.1) and
 *    lets the MTA decide about DELAY; dsn_wanted() answers yes for a
 *    delay then, and whether delay warnings are sent at all is the
 *    caller's configuration (as Postfix's delay_warning_time).  NOTIFY
 *    given without DELAY means no delay DSN.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mail/dsn.h"
#include "mail/smtp_cmd.h"

#define DSN_WIDTH 78		     /* fold or wrap before this column */
#define DSN_HARD 900		     /* longest run written without a space */
#define DSN_HEADER_MAX (64 * 1024)   /* returned header section cap */
#define DSN_TOKEN_LEN 24	     /* random part of boundary, Message-ID */
#define DSN_BOUNDARY_PREFIX "=_dsn_" /* "=_" is in no QP or base64 text */
#define DSN_BOUNDARY_TRIES 8

enum clean_mode {
	CLEAN_TEXT,  /* UTF-8 kept */
	CLEAN_ASCII, /* non-ASCII as RFC 6533 \x{HEX} */
	CLEAN_XTEXT, /* RFC 6533 utf-8-addr-xtext: only QCHARs as they are */
};

/* What the third part returns. */
struct returned {
	const char *data;
	size_t len;
	bool full;	/* message/rfc822, else text/rfc822-headers */
	bool too_large; /* RET=FULL asked, header only sent */
};

bool
dsn_wanted(const char *sender, unsigned notify, enum dsn_action action)
{
	if (sender == NULL || *sender == '\0')
		return false;
	if (notify & SMTP_NOTIFY_NEVER)
		return false;
	if (notify == 0)
		return true; /* note 5 */
	switch (action) {
	case DSN_FAILED:
		return (notify & SMTP_NOTIFY_FAILURE) != 0;
	case DSN_DELAYED:
		return (notify & SMTP_NOTIFY_DELAY) != 0;
	}
	return false;
}

/* set_err - format the reason into err when the caller gave room */
static int __attribute__((format(printf, 3, 4)))
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* given - whether an optional string is there and not empty */
static bool
given(const char *s)
{
	return s != NULL && *s != '\0';
}

/* has_8bit - whether any of n bytes at p is outside ASCII */
static bool
has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* occurs - whether needle is in the n bytes at hay (hay may be NULL) */
static bool
occurs(const char *hay, size_t n, const char *needle)
{
	return n > 0 && memmem(hay, n, needle, strlen(needle)) != NULL;
}

/*
 * utf8_next - decode the code point at p (NUL-terminated) into *cp;
 * returns its length, or 0 when p does not start valid UTF-8.
 */
static size_t
utf8_next(const unsigned char *p, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if ((p[0] & 0xe0) == 0xc0) {
		len = 2, c = p[0] & 0x1f, min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3, c = p[0] & 0x0f, min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4, c = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	/* A NUL is not a continuation byte: no read past the end. */
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* is_qchar - RFC 6533 QCHAR: printable ASCII but '+', '=' and '\' */
static bool
is_qchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '+' && c != '=' && c != '\\';
}

/* put_nonascii - append one non-ASCII character at p by mode; its length */
static size_t
put_nonascii(struct buf *out, const unsigned char *p, enum clean_mode mode)
{
	uint32_t cp = 0xfffd;
	size_t n = utf8_next(p, &cp);

	if (mode != CLEAN_TEXT)
		buf_printf(out, "\\x{%02" PRIX32 "}", cp);
	else if (n > 0)
		buf_append(out, p, n);
	else
		buf_puts(out, "\xef\xbf\xbd"); /* U+FFFD for a stray byte */
	return n > 0 ? n : 1;
}

/*
 * put_clean - append s with white space and control bytes reduced to
 * single spaces between words (none at either end) and non-ASCII
 * encoded by mode (notes 2, 3).  In CLEAN_XTEXT mode every byte that is
 * not a QCHAR is encoded instead, white space included.
 */
static void
put_clean(struct buf *out, const char *s, enum clean_mode mode)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t start = out->len;
	bool space = false;

	while (*p != '\0') {
		if (mode != CLEAN_XTEXT && (*p <= 0x20 || *p == 0x7f)) {
			space = true;
			p++;
			continue;
		}
		if (space && out->len > start)
			buf_puts(out, " ");
		space = false;
		if (*p >= 0x80)
			p += put_nonascii(out, p, mode);
		else if (mode == CLEAN_XTEXT && !is_qchar(*p))
			buf_printf(out, "\\x{%02X}", *p++);
		else
			buf_append(out, p++, 1);
	}
}

/*
 * wrap - append the words of clean text starting at column col, breaking
 * lines before DSN_WIDTH (note 4).  fold: header mode, where every word
 * and so every continuation line starts with a space.  Adds no final
 * line end.
 */
static void
wrap(struct buf *out, const char *text, size_t col, bool fold)
{
	bool sep = fold, any = false;
	const char *p = text;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		size_t n = strcspn(p, " ");
		while (n > 0) {
			size_t take = n < DSN_HARD ? n : DSN_HARD;

			/* A cut falls between characters, not inside one. */
			while (take < n && take > 1 &&
			    ((unsigned char)p[take] & 0xc0) == 0x80)
				take--;
			if (any && col + sep + take >= DSN_WIDTH) {
				buf_puts(out, "\r\n");
				col = 0;
				sep = fold;
			}
			if (sep)
				buf_puts(out, " ");
			buf_append(out, p, take);
			col += sep + take;
			p += take;
			n -= take;
			sep = any = true;
		}
	}
}

/* put_folded - append "name: value" for a clean value, folded */
static void
put_folded(struct buf *out, const char *name, const struct buf *value)
{
	buf_printf(out, "%s:", name);
	wrap(out, buf_cstr(value), strlen(name) + 1, true);
	buf_puts(out, "\r\n");
}

/* put_field - append "name: value", value cleaned by mode after prefix */
static void
put_field(struct buf *out, const char *name, const char *prefix,
    const char *value, enum clean_mode mode)
{
	struct buf v = BUF_INIT;

	buf_puts(&v, prefix);
	put_clean(&v, value, mode);
	put_folded(out, name, &v);
	buf_free(&v);
}

/* put_date - append "name: " and t as an RFC 5322 date-time */
static void
put_date(struct buf *out, const char *name, int64_t t)
{
	char date[64];

	time_rfc5322((time_t)t, date, sizeof(date));
	buf_printf(out, "%s: %s\r\n", name, date);
}

/*
 * put_envid - Original-Envelope-Id: the decoded ENVID as it is when it
 * is all printable ASCII, else all of it xtext-encoded (RFC 3461 4).
 */
static void
put_envid(struct buf *out, const char *envid)
{
	const unsigned char *p = (const unsigned char *)envid;
	bool plain = true;

	for (const unsigned char *q = p; *q != '\0'; q++)
		if (*q <= 0x20 || *q >= 0x7f)
			plain = false;
	buf_puts(out, "Original-Envelope-Id: ");
	for (; *p != '\0'; p++) {
		if (plain || (*p > 0x20 && *p < 0x7f && *p != '+' && *p != '='))
			buf_append(out, p, 1);
		else
			buf_printf(out, "+%02X", *p);
	}
	buf_puts(out, "\r\n");
}

/*
 * put_orcpt - Original-Recipient: the ORCPT as given ("type;address",
 * decoded), its address in utf-8-addr-xtext when not ASCII (note 3).
 */
static void
put_orcpt(struct buf *out, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	struct buf v = BUF_INIT;
	char *type;

	if (semi == NULL || !has_8bit(semi, strlen(semi))) {
		put_field(out, "Original-Recipient", "", orcpt, CLEAN_ASCII);
		return;
	}
	type = xstrndup(orcpt, (size_t)(semi - orcpt));
	put_clean(&v, type, CLEAN_ASCII);
	buf_puts(&v, ";");
	put_clean(&v, semi + 1, CLEAN_XTEXT);
	put_folded(out, "Original-Recipient", &v);
	buf_free(&v);
	free(type);
}

/* put_rcpt_status - one per-recipient group (RFC 3464 2.3) */
static void
put_rcpt_status(struct buf *out, const struct dsn_rcpt *r)
{
	if (given(r->orcpt))
		put_orcpt(out, r->orcpt);
	if (has_8bit(r->addr, strlen(r->addr)))
		put_field(
		    out, "Final-Recipient", "utf-8; ", r->addr, CLEAN_XTEXT);
	else
		put_field(
		    out, "Final-Recipient", "rfc822; ", r->addr, CLEAN_ASCII);
	buf_printf(out, "Action: %s\r\n",
	    r->action == DSN_FAILED ? "failed" : "delayed");
	buf_printf(out, "Status: %s\r\n", r->status);
	if (given(r->remote_mta))
		put_field(
		    out, "Remote-MTA", "dns; ", r->remote_mta, CLEAN_ASCII);
	if (given(r->diagnostic))
		put_field(out, "Diagnostic-Code", "smtp; ", r->diagnostic,
		    CLEAN_ASCII);
	if (r->last_attempt > 0)
		put_date(out, "Last-Attempt-Date", r->last_attempt);
	if (r->action == DSN_DELAYED && r->retry_until > 0)
		put_date(out, "Will-Retry-Until", r->retry_until);
}

/* put_status - the message/delivery-status body (RFC 3464 2.2, 2.3) */
static void
put_status(struct buf *out, const struct dsn_info *info)
{
	const struct envelope *env = info->env;

	/* In the order of RFC 3464's grammar. */
	if (env->envid != NULL)
		put_envid(out, env->envid);
	put_field(
	    out, "Reporting-MTA", "dns; ", info->reporting_mta, CLEAN_ASCII);
	if (env->received_at > 0)
		put_date(out, "Arrival-Date", env->received_at);
	for (size_t i = 0; i < info->nrcpts; i++) {
		buf_puts(out, "\r\n");
		put_rcpt_status(out, &info->rcpts[i]);
	}
}

/* put_para - append clean prose as one wrapped paragraph and a blank line */
static void
put_para(struct buf *out, const struct buf *para)
{
	wrap(out, buf_cstr(para), 0, false);
	buf_puts(out, "\r\n\r\n");
}

/* put_sentence - append s cleaned, ending it with a full stop */
static void
put_sentence(struct buf *para, const char *s)
{
	size_t start = para->len;

	put_clean(para, s, CLEAN_TEXT);
	if (para->len > start && !strchr(".!?", para->data[para->len - 1]))
		buf_puts(para, ".");
}

/* put_rcpt_text - the paragraph about one recipient */
static void
put_rcpt_text(struct buf *para, const struct dsn_rcpt *r)
{
	char date[64];

	buf_puts(para, "<");
	put_clean(para, r->addr, CLEAN_TEXT);
	buf_printf(para, ">: delivery %s (status %s)",
	    r->action == DSN_FAILED ? "failed" : "delayed", r->status);
	if (given(r->reason)) {
		buf_puts(para, ": ");
		put_sentence(para, r->reason);
	} else {
		buf_puts(para, ".");
	}
	if (r->action == DSN_DELAYED && r->retry_until > 0) {
		time_rfc5322((time_t)r->retry_until, date, sizeof(date));
		buf_printf(para, " Delivery will be retried until %s.", date);
	} else if (r->action == DSN_DELAYED) {
		buf_puts(para, " Delivery will be retried.");
	}
	if (given(r->diagnostic)) {
		buf_puts(para, " The server ");
		if (given(r->remote_mta)) {
			put_clean(para, r->remote_mta, CLEAN_TEXT);
			buf_puts(para, " ");
		}
		buf_puts(para, "replied: ");
		put_clean(para, r->diagnostic, CLEAN_TEXT);
	} else if (given(r->remote_mta)) {
		buf_puts(para, " The last server tried was ");
		put_sentence(para, r->remote_mta);
	}
}

/* put_intro - the opening paragraph: whose report, and what kind */
static void
put_intro(struct buf *para, const struct dsn_info *info)
{
	size_t nfailed = 0;

	for (size_t i = 0; i < info->nrcpts; i++)
		if (info->rcpts[i].action == DSN_FAILED)
			nfailed++;
	buf_puts(para, "This is the mail delivery system at ");
	put_sentence(para, info->reporting_mta);
	if (nfailed == info->nrcpts)
		buf_puts(para,
		    " Your message could not be delivered to "
		    "the recipients below.");
	else if (nfailed > 0)
		buf_puts(para,
		    " Your message could not be delivered to some "
		    "of the recipients below; delivery to the "
		    "others is delayed and still being retried, "
		    "so you need not send it again to them.");
	else
		buf_puts(para,
		    " Delivery of your message to the recipients "
		    "below is delayed.  It is still being retried; "
		    "you need not send it again.");
}

/* put_text - the text/plain part for people (RFC 6522 3) */
static void
put_text(
    struct buf *out, const struct dsn_info *info, const struct returned *ret)
{
	struct buf para = BUF_INIT;

	put_intro(&para, info);
	put_para(out, &para);
	for (size_t i = 0; i < info->nrcpts; i++) {
		buf_reset(&para);
		put_rcpt_text(&para, &info->rcpts[i]);
		put_para(out, &para);
	}
	buf_reset(&para);
	if (ret->too_large)
		buf_printf(&para,
		    "You asked for the whole message to be returned "
		    "(RET=FULL), but it is %zu bytes, larger than the limit "
		    "of %" PRIu64 " bytes, so only its header is attached.",
		    info->original_len, info->max_return);
	else if (ret->full)
		buf_puts(&para, "Your message is attached.");
	else if (ret->data != NULL)
		buf_puts(&para, "The header of your message is attached.");
	if (para.len > 0)
		put_para(out, &para);
	out->len -= 2; /* no blank line before the delimiter's own CRLF */
	out->data[out->len] = '\0';
	buf_free(&para);
}

/*
 * header_len - the length of m's header section through the line end of
 * its last field; when that is over DSN_HEADER_MAX, as much of it as
 * ends on a line end within the cap.
 */
static size_t
header_len(const char *m, size_t len)
{
	size_t cap = len < DSN_HEADER_MAX ? len : DSN_HEADER_MAX;

	if (m[0] == '\n' || (len > 1 && m[0] == '\r' && m[1] == '\n'))
		return 0;
	for (size_t i = 0; i < cap; i++) {
		if (m[i] != '\n')
			continue;
		if (i + 1 < len && m[i + 1] == '\n')
			return i + 1;
		if (i + 2 < len && m[i + 1] == '\r' && m[i + 2] == '\n')
			return i + 1;
	}
	if (len <= DSN_HEADER_MAX)
		return len; /* no body */
	for (size_t i = cap; i > 0; i--)
		if (m[i - 1] == '\n')
			return i;
	return cap;
}

/* pick_returned - what of the original goes into the third part */
static void
pick_returned(const struct dsn_info *info, struct returned *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (info->original == NULL || info->original_len == 0)
		return;
	ret->data = info->original;
	if (info->env->ret == SMTP_RET_FULL &&
	    (uint64_t)info->original_len <= info->max_return) {
		ret->full = true;
		ret->len = info->original_len;
		return;
	}
	ret->too_large = info->env->ret == SMTP_RET_FULL;
	ret->len = header_len(info->original, info->original_len);
}

/*
 * pick_boundary - a boundary that occurs in none of the parts (note 1),
 * into out (>= sizeof(DSN_BOUNDARY_PREFIX) + DSN_TOKEN_LEN); 0, or -1
 * when every try collided.
 */
static int
pick_boundary(void (*rnd)(char *, size_t), const struct buf *text,
    const struct buf *status, const struct returned *ret, char *out)
{
	size_t plen = strlen(DSN_BOUNDARY_PREFIX);

	for (int i = 0; i < DSN_BOUNDARY_TRIES; i++) {
		memcpy(out, DSN_BOUNDARY_PREFIX, plen);
		rnd(out + plen, DSN_TOKEN_LEN);
		if (!occurs(text->data, text->len, out) &&
		    !occurs(status->data, status->len, out) &&
		    !occurs(ret->data, ret->len, out))
			return 0;
	}
	return -1;
}

/* status_valid - whether s is an RFC 3463 code: class.subject.detail */
static bool
status_valid(const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0' || !strchr("245", s[0]) || s[1] != '.')
		return false;
	s += 2;
	n = strspn(s, "0123456789");
	if (n < 1 || n > 3 || s[n] != '.')
		return false;
	s += n + 1;
	n = strspn(s, "0123456789");
	return n >= 1 && n <= 3 && s[n] == '\0';
}

/* check_info - whether info can make a DSN; -1 with err when not */
static int
check_info(const struct dsn_info *info, char *err, size_t errlen)
{
	if (info->env == NULL)
		return set_err(err, errlen, "no envelope");
	if (!given(info->env->sender))
		return set_err(
		    err, errlen, "null sender: no DSN is sent to <>");
	if (info->rcpts == NULL || info->nrcpts == 0)
		return set_err(err, errlen, "no recipients to report");
	if (!given(info->reporting_mta))
		return set_err(err, errlen, "no reporting MTA host name");
	for (size_t i = 0; i < info->nrcpts; i++) {
		const struct dsn_rcpt *r = &info->rcpts[i];
		const char *s = r->status;

		if (!given(r->addr))
			return set_err(
			    err, errlen, "recipient %zu: no address", i + 1);
		if (!status_valid(s))
			return set_err(err, errlen,
			    "recipient %zu: status \"%s\" is not x.y.z", i + 1,
			    s ? s : "(none)");
	}
	return 0;
}

/* put_header - the message header (RFC 5322, RFC 3834, RFC 6522) */
static void
put_header(struct buf *out, const struct dsn_info *info, const char *boundary,
    const char *msgid, bool eightbit)
{
	bool failed = false;

	for (size_t i = 0; i < info->nrcpts; i++)
		if (info->rcpts[i].action == DSN_FAILED)
			failed = true;
	buf_puts(out, "From: Mail Delivery System <MAILER-DAEMON@");
	put_clean(out, info->reporting_mta, CLEAN_ASCII);
	buf_puts(out, ">\r\n");
	buf_puts(out, "To: <");
	put_clean(out, info->env->sender, CLEAN_TEXT);
	buf_puts(out, ">\r\n");
	buf_printf(out, "Subject: %s\r\n",
	    failed ? "Undelivered Mail Returned to Sender"
		   : "Delayed Mail (still being retried)");
	put_date(out, "Date", info->now);
	buf_printf(out, "Message-ID: <%s@", msgid);
	put_clean(out, info->reporting_mta, CLEAN_ASCII);
	buf_puts(out, ">\r\n");
	buf_puts(out,
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n");
	buf_printf(out, "\tboundary=\"%s\"\r\n", boundary);
	if (eightbit)
		buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
	buf_puts(out,
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n");
}

/* put_parts - the three body parts, each after its delimiter line */
static void
put_parts(struct buf *out, const char *boundary, const struct buf *text,
    const struct buf *status, const struct returned *ret)
{
	buf_printf(out, "\r\n--%s\r\n", boundary);
	buf_puts(out,
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n");
	if (has_8bit(text->data, text->len))
		buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
	buf_puts(out, "\r\n");
	buf_append(out, text->data, text->len);
	buf_printf(out, "\r\n--%s\r\n", boundary);
	buf_puts(out,
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n");
	buf_append(out, status->data, status->len);
	if (ret->data != NULL) {
		buf_printf(out, "\r\n--%s\r\n", boundary);
		buf_puts(out,
		    ret->full ? "Content-Description: Message\r\n"
				"Content-Type: message/rfc822\r\n"
			      : "Content-Description: Message header\r\n"
				"Content-Type: text/rfc822-headers\r\n");
		if (has_8bit(ret->data, ret->len))
			buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
		buf_puts(out, "\r\n");
		buf_append(out, ret->data, ret->len);
	}
	buf_printf(out, "\r\n--%s--\r\n", boundary);
}

int
dsn_build(
    const struct dsn_info *info, struct buf *out, char *err, size_t errlen)
{
	void (*rnd)(char *, size_t) =
	    info->random_fn != NULL ? info->random_fn : random_token;
	struct buf text = BUF_INIT, status = BUF_INIT;
	char boundary[sizeof(DSN_BOUNDARY_PREFIX) + DSN_TOKEN_LEN];
	char msgid[DSN_TOKEN_LEN + 1];
	struct returned ret;
	int rc = -1;

	if (check_info(info, err, errlen) < 0)
		return -1;
	pick_returned(info, &ret);
	put_text(&text, info, &ret);
	put_status(&status, info);
	if (pick_boundary(rnd, &text, &status, &ret, boundary) < 0) {
		set_err(err, errlen,
		    "no boundary free of the message text after %d tries",
		    DSN_BOUNDARY_TRIES);
		goto done;
	}
	rnd(msgid, DSN_TOKEN_LEN);
	put_header(out, info, boundary, msgid,
	    has_8bit(text.data, text.len) || has_8bit(ret.data, ret.len));
	put_parts(out, boundary, &text, &status, &ret);
	rc = 0;
done:
	buf_free(&text);
	buf_free(&status);
	return rc;
}
