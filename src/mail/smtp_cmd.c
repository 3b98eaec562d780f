/*
 * smtp_cmd.c - SMTP command line parser (see smtp_cmd.h).
 *
 * A line is checked for control bytes, split into verb and argument,
 * and the argument is parsed by the verb's own function.  MAIL and RCPT
 * take a path (address.c) and then ESMTP parameters (RFC 5321 4.1.2):
 *
 *   esmtp-param   = esmtp-keyword ["=" esmtp-value]
 *   esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 *   esmtp-value   = 1*(%d33-60 / %d62-126 / UTF8-non-ascii if SMTPUTF8)
 *
 * Each parameter is known to one verb through a table of handlers; a
 * parameter may appear once.  Replies only ever echo a parameter name
 * after it has been checked to be an esmtp-keyword, so nothing a client
 * sends reaches the reply text unfiltered.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "mail/smtp_cmd.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_HELO },
	{ "EHLO", SMTP_EHLO },
	{ "MAIL", SMTP_MAIL },
	{ "RCPT", SMTP_RCPT },
	{ "DATA", SMTP_DATA },
	{ "BDAT", SMTP_BDAT },
	{ "RSET", SMTP_RSET },
	{ "NOOP", SMTP_NOOP },
	{ "QUIT", SMTP_QUIT },
	{ "VRFY", SMTP_VRFY },
	{ "EXPN", SMTP_EXPN },
	{ "HELP", SMTP_HELP },
	{ "STARTTLS", SMTP_STARTTLS },
	{ "AUTH", SMTP_AUTH },
};

static int smtp_fail(struct smtp_error *err, int code, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* smtp_fail - fill err with a reply; returns -1 for "return smtp_fail()" */
static int
smtp_fail(
    struct smtp_error *err, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	err->enh = enh;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < NELEM(smtp_verbs); i++)
		if (smtp_verbs[i].verb == verb)
			return smtp_verbs[i].name;
	return "UNKNOWN";
}

/*
 * xtext_decode - smtp_xtext_decode; with allow_utf8, UTF-8 bytes stand
 * for themselves too (RFC 6533 utf-8-addr-unitext, checked by caller).
 */
static int
xtext_decode(const char *s, size_t len, bool allow_utf8, char **out_r)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			int hi, lo;

			if (len - i < 3 ||
			    (hi = hex_digit((unsigned char)s[i + 1])) < 0 ||
			    (lo = hex_digit((unsigned char)s[i + 2])) < 0 ||
			    hi * 16 + lo == 0)
				goto bad;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if ((c < 33 || c > 126 || c == '=') &&
		    !(allow_utf8 && c >= 0x80))
			goto bad;
		buf_append(&b, &c, 1);
	}
	*out_r = b.data != NULL ? b.data : xstrdup("");
	return 0;
bad:
	buf_free(&b);
	return -1;
}

int
smtp_xtext_decode(const char *s, size_t len, char **out_r)
{
	return xtext_decode(s, len, false, out_r);
}

/*
 * parse_digits - 1..20 decimal digits into *out; saturate at UINT64_MAX
 * when saturate is set, else fail on overflow.
 */
static int
parse_digits(const char *s, size_t len, bool saturate, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			if (!saturate)
				return -1;
			v = UINT64_MAX;
			continue;
		}
		if (v != UINT64_MAX)
			v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* eq - whether the len bytes at s are word, ASCII case-insensitive */
static bool
eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* One ESMTP parameter as seen on the line. */
struct param {
	const char *name;
	size_t name_len;
	const char *value; /* NULL when there was no '=' */
	size_t value_len;
	bool utf8; /* UTF-8 in values is allowed on this line */
};

typedef int param_fn(
    struct smtp_cmd *, const struct param *, struct smtp_error *);

/* need_value - the standard reply for a parameter given without a value */
static int
need_value(const struct param *p, struct smtp_error *err)
{
	if (p->value != NULL)
		return 0;
	return smtp_fail(err, 501, "5.5.4", "Missing value for parameter %.*s",
	    (int)p->name_len, p->name);
}

static int
bad_value(const struct param *p, struct smtp_error *err)
{
	return smtp_fail(err, 501, "5.5.4", "Invalid value for parameter %.*s",
	    (int)p->name_len, p->name);
}

static int
param_size(struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	if (need_value(p, err) < 0)
		return -1;
	if (parse_digits(p->value, p->value_len, true, &cmd->size) < 0)
		return bad_value(p, err);
	return 0;
}

static int
param_body(struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	if (need_value(p, err) < 0)
		return -1;
	if (eq(p->value, p->value_len, "7BIT"))
		cmd->body = SMTP_BODY_7BIT;
	else if (eq(p->value, p->value_len, "8BITMIME"))
		cmd->body = SMTP_BODY_8BITMIME;
	else if (eq(p->value, p->value_len, "BINARYMIME"))
		cmd->body = SMTP_BODY_BINARYMIME;
	else
		return bad_value(p, err);
	return 0;
}

static int
param_smtputf8(
    struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	if (p->value != NULL)
		return smtp_fail(err, 501, "5.5.4", "SMTPUTF8 takes no value");
	cmd->smtputf8 = true;
	return 0;
}

static int
param_ret(struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	if (need_value(p, err) < 0)
		return -1;
	if (eq(p->value, p->value_len, "FULL"))
		cmd->ret = SMTP_RET_FULL;
	else if (eq(p->value, p->value_len, "HDRS"))
		cmd->ret = SMTP_RET_HDRS;
	else
		return bad_value(p, err);
	return 0;
}

static int
param_envid(struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	if (need_value(p, err) < 0)
		return -1;
	if (p->value_len > SMTP_ENVID_MAX ||
	    smtp_xtext_decode(p->value, p->value_len, &cmd->envid) < 0)
		return bad_value(p, err);
	return 0;
}

static int
param_auth(struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	if (need_value(p, err) < 0)
		return -1;
	if (eq(p->value, p->value_len, "<>")) {
		cmd->auth = xstrdup("<>");
		return 0;
	}
	if (p->value_len > SMTP_AUTH_PARAM_MAX ||
	    smtp_xtext_decode(p->value, p->value_len, &cmd->auth) < 0)
		return bad_value(p, err);
	return 0;
}

/* param_notify - "NEVER" or a list of SUCCESS, FAILURE, DELAY */
static int
param_notify(
    struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	const char *s = p->value;
	size_t i = 0;

	if (need_value(p, err) < 0)
		return -1;
	while (i <= p->value_len) {
		const char *comma = memchr(s + i, ',', p->value_len - i);
		size_t end = comma != NULL ? (size_t)(comma - s) : p->value_len;

		if (eq(s + i, end - i, "NEVER"))
			cmd->notify |= SMTP_NOTIFY_NEVER;
		else if (eq(s + i, end - i, "SUCCESS"))
			cmd->notify |= SMTP_NOTIFY_SUCCESS;
		else if (eq(s + i, end - i, "FAILURE"))
			cmd->notify |= SMTP_NOTIFY_FAILURE;
		else if (eq(s + i, end - i, "DELAY"))
			cmd->notify |= SMTP_NOTIFY_DELAY;
		else
			return bad_value(p, err);
		i = end + 1;
	}
	if ((cmd->notify & SMTP_NOTIFY_NEVER) &&
	    cmd->notify != SMTP_NOTIFY_NEVER)
		return smtp_fail(err, 501, "5.5.4",
		    "NOTIFY=NEVER cannot be combined with other values");
	return 0;
}

/* param_orcpt - addr-type ";" xtext, kept as "type;decoded" */
static int
param_orcpt(struct smtp_cmd *cmd, const struct param *p, struct smtp_error *err)
{
	const char *semi;
	size_t tlen;
	char *addr;

	if (need_value(p, err) < 0)
		return -1;
	semi = memchr(p->value, ';', p->value_len);
	if (semi == NULL || p->value_len > SMTP_ORCPT_MAX)
		return bad_value(p, err);
	tlen = (size_t)(semi - p->value);
	if (tlen == 0 || tlen + 1 == p->value_len)
		return bad_value(p, err);
	for (size_t i = 0; i < tlen; i++) {
		char c = p->value[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '-'))
			return bad_value(p, err);
	}
	if (xtext_decode(semi + 1, p->value_len - tlen - 1, p->utf8, &addr) < 0)
		return bad_value(p, err);
	cmd->orcpt = xmalloc(tlen + 1 + strlen(addr) + 1);
	memcpy(cmd->orcpt, p->value, tlen);
	cmd->orcpt[tlen] = '\0';
	str_lower(cmd->orcpt);
	cmd->orcpt[tlen] = ';';
	strcpy(cmd->orcpt + tlen + 1, addr);
	free(addr);
	return 0;
}

static const struct param_def {
	const char *name;
	enum smtp_verb verb;
	param_fn *fn;
} param_defs[] = {
	{ "SIZE", SMTP_MAIL, param_size },
	{ "BODY", SMTP_MAIL, param_body },
	{ "SMTPUTF8", SMTP_MAIL, param_smtputf8 },
	{ "RET", SMTP_MAIL, param_ret },
	{ "ENVID", SMTP_MAIL, param_envid },
	{ "AUTH", SMTP_MAIL, param_auth },
	{ "NOTIFY", SMTP_RCPT, param_notify },
	{ "ORCPT", SMTP_RCPT, param_orcpt },
};

/* param_split - split one "name[=value]" token; check its syntax */
static int
param_split(
    const char *tok, size_t len, struct param *p, struct smtp_error *err)
{
	const char *eqs = memchr(tok, '=', len);
	size_t i;

	p->name = tok;
	p->name_len = eqs != NULL ? (size_t)(eqs - tok) : len;
	p->value = eqs != NULL ? eqs + 1 : NULL;
	p->value_len = eqs != NULL ? len - p->name_len - 1 : 0;
	for (i = 0; i < p->name_len; i++) {
		char c = tok[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || (c == '-' && i > 0)))
			break;
	}
	if (p->name_len == 0 || p->name_len > 64 || i < p->name_len)
		return smtp_fail(
		    err, 501, "5.5.4", "Syntax error in parameters");
	if (p->value != NULL && p->value_len == 0)
		return smtp_fail(err, 501, "5.5.4",
		    "Missing value for parameter %.*s", (int)p->name_len,
		    p->name);
	for (i = 0; i < p->value_len; i++) {
		unsigned char c = (unsigned char)p->value[i];

		if ((c < 33 || c > 126 || c == '=') && !(c >= 0x80 && p->utf8))
			return smtp_fail(err, 501, "5.5.4",
			    "Invalid character in parameter %.*s",
			    (int)p->name_len, p->name);
	}
	if (p->value != NULL && p->utf8 &&
	    !mail_utf8_valid(p->value, p->value_len))
		return smtp_fail(err, 501, "5.5.4",
		    "Invalid UTF-8 in parameter %.*s", (int)p->name_len,
		    p->name);
	return 0;
}

/*
 * parse_params - the ESMTP parameters of MAIL or RCPT: the len bytes at s,
 * which must be empty or start with a space.
 */
static int
parse_params(struct smtp_cmd *cmd, const char *s, size_t len, bool utf8,
    bool utf8_announced, struct smtp_error *err)
{
	unsigned seen = 0;
	size_t i = 0;

	if (len > 0 && s[0] != ' ')
		return smtp_fail(
		    err, 501, "5.5.4", "Syntax error in parameters");
	for (;;) {
		struct param p = { .utf8 = utf8 };
		size_t start, k;

		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			return 0;
		start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (param_split(s + start, i - start, &p, err) < 0)
			return -1;
		for (k = 0; k < NELEM(param_defs); k++)
			if (param_defs[k].verb == cmd->verb &&
			    eq(p.name, p.name_len, param_defs[k].name))
				break;
		if (k == NELEM(param_defs) ||
		    (param_defs[k].fn == param_smtputf8 && !utf8_announced))
			return smtp_fail(err, 555, "5.5.4",
			    "Unsupported parameter %.*s", (int)p.name_len,
			    p.name);
		if (seen & (1u << k))
			return smtp_fail(err, 501, "5.5.4",
			    "Duplicate parameter %.*s", (int)p.name_len,
			    p.name);
		seen |= 1u << k;
		if (param_defs[k].fn(cmd, &p, err) < 0)
			return -1;
	}
}

/* skip_prefix - "FROM:" / "TO:" and any spaces after; offset or -1 */
static long
skip_prefix(const struct smtp_cmd *cmd, const char *prefix)
{
	size_t n = strlen(prefix), i;

	if (cmd->arg_len < n || strncasecmp(cmd->arg, prefix, n) != 0)
		return -1;
	for (i = n; i < cmd->arg_len && cmd->arg[i] == ' '; i++)
		;
	return (long)i;
}

static int
parse_mail(struct smtp_cmd *cmd, unsigned opts, struct smtp_error *err)
{
	bool announced = (opts & SMTP_CMD_ALLOW_UTF8) != 0;
	unsigned aopts = MAIL_ADDR_ALLOW_NOBRACKETS;
	const char *error;
	size_t used;
	long off;

	if ((off = skip_prefix(cmd, "FROM:")) < 0)
		return smtp_fail(
		    err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	if (announced)
		aopts |= MAIL_ADDR_ALLOW_UTF8;
	if (mail_addr_parse_path(cmd->arg + off, cmd->arg_len - (size_t)off,
		aopts, &cmd->path, &used, &error) < 0) {
		if (error == mail_addr_error_utf8)
			goto need_utf8;
		return smtp_fail(
		    err, 501, "5.1.7", "Bad sender address syntax: %s", error);
	}
	off += (long)used;
	if (parse_params(cmd, cmd->arg + off, cmd->arg_len - (size_t)off,
		announced, announced, err) < 0)
		return -1;
	if ((cmd->path.flags & MAIL_ADDR_UTF8) && !cmd->smtputf8)
		goto need_utf8;
	return 0;
need_utf8:
	return smtp_fail(
	    err, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
}

static int
parse_rcpt(struct smtp_cmd *cmd, unsigned opts, struct smtp_error *err)
{
	bool utf8 = (opts & SMTP_CMD_ALLOW_UTF8) && (opts & SMTP_CMD_TXN_UTF8);
	unsigned aopts = MAIL_ADDR_ALLOW_NOBRACKETS | MAIL_ADDR_ALLOW_NODOMAIN;
	const char *error;
	size_t used;
	long off;

	if ((off = skip_prefix(cmd, "TO:")) < 0)
		return smtp_fail(
		    err, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	if (utf8)
		aopts |= MAIL_ADDR_ALLOW_UTF8;
	if (mail_addr_parse_path(cmd->arg + off, cmd->arg_len - (size_t)off,
		aopts, &cmd->path, &used, &error) < 0) {
		if (error == mail_addr_error_utf8)
			return smtp_fail(err, 553, "5.6.7",
			    "Non-ASCII address requires SMTPUTF8");
		return smtp_fail(err, 501, "5.1.3",
		    "Bad recipient address syntax: %s", error);
	}
	if (cmd->path.flags & MAIL_ADDR_NULL)
		return smtp_fail(err, 501, "5.1.3",
		    "Bad recipient address syntax: null address");
	if (cmd->path.domain == NULL) {
		if (strcasecmp(cmd->path.local, "postmaster") != 0)
			return smtp_fail(err, 501, "5.1.3",
			    "Bad recipient address syntax: missing '@' and "
			    "domain");
		cmd->postmaster = true;
	}
	off += (long)used;
	return parse_params(cmd, cmd->arg + off, cmd->arg_len - (size_t)off,
	    utf8, (opts & SMTP_CMD_ALLOW_UTF8) != 0, err);
}

/* parse_bdat - "size [LAST]" */
static int
parse_bdat(struct smtp_cmd *cmd, struct smtp_error *err)
{
	const char *s = cmd->arg, *sp = strchr(s, ' ');
	size_t n = sp != NULL ? (size_t)(sp - s) : cmd->arg_len;

	if (parse_digits(s, n, false, &cmd->bdat_size) < 0)
		goto bad;
	if (sp != NULL) {
		while (*sp == ' ')
			sp++;
		if (strcasecmp(sp, "LAST") != 0)
			goto bad;
		cmd->bdat_last = true;
	}
	return 0;
bad:
	return smtp_fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
}

/* parse_arg - check the argument of the verbs with no grammar of their own */
static int
parse_arg(struct smtp_cmd *cmd, struct smtp_error *err)
{
	switch (cmd->verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
		if (cmd->arg_len == 0)
			return smtp_fail(err, 501, "5.5.4",
			    "Syntax: %s hostname", smtp_verb_name(cmd->verb));
		return 0;
	case SMTP_VRFY:
	case SMTP_EXPN:
		if (cmd->arg_len == 0)
			return smtp_fail(err, 501, "5.5.4",
			    "Syntax: %s address", smtp_verb_name(cmd->verb));
		return 0;
	case SMTP_AUTH:
		if (cmd->arg_len == 0)
			return smtp_fail(err, 501, "5.5.4",
			    "Syntax: AUTH mechanism [initial-response]");
		return 0;
	case SMTP_DATA:
	case SMTP_RSET:
	case SMTP_QUIT:
	case SMTP_STARTTLS:
		if (cmd->arg_len != 0)
			return smtp_fail(err, 501, "5.5.4",
			    "Syntax error (no parameters allowed)");
		return 0;
	default:
		return 0;
	}
}

int
smtp_cmd_parse(const char *line, size_t len, unsigned opts,
    struct smtp_cmd *cmd, struct smtp_error *err)
{
	const char *sp;
	size_t vlen, a, e;
	int rc;

	memset(cmd, 0, sizeof(*cmd));
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 32 || c == 127)
			return smtp_fail(
			    err, 500, "5.5.2", "Invalid characters in command");
	}
	sp = memchr(line, ' ', len);
	vlen = sp != NULL ? (size_t)(sp - line) : len;
	for (size_t i = 0; i < NELEM(smtp_verbs); i++)
		if (eq(line, vlen, smtp_verbs[i].name))
			cmd->verb = smtp_verbs[i].verb;
	if (cmd->verb == SMTP_UNKNOWN)
		return smtp_fail(err, 500, "5.5.1", "Command unrecognized");
	for (a = vlen; a < len && line[a] == ' '; a++)
		;
	for (e = len; e > a && line[e - 1] == ' '; e--)
		;
	cmd->arg = xstrndup(line + a, e - a);
	cmd->arg_len = e - a;
	switch (cmd->verb) {
	case SMTP_MAIL:
		rc = parse_mail(cmd, opts, err);
		break;
	case SMTP_RCPT:
		rc = parse_rcpt(cmd, opts, err);
		break;
	case SMTP_BDAT:
		rc = parse_bdat(cmd, err);
		break;
	default:
		rc = parse_arg(cmd, err);
		break;
	}
	if (rc < 0)
		smtp_cmd_clear(cmd);
	return rc;
}

void
smtp_cmd_clear(struct smtp_cmd *cmd)
{
	free(cmd->arg);
	mail_addr_clear(&cmd->path);
	free(cmd->envid);
	free(cmd->auth);
	free(cmd->orcpt);
	memset(cmd, 0, sizeof(*cmd));
}
