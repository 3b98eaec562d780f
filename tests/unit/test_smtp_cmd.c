/*
 * test_smtp_cmd - table-driven tests of mail/smtp_cmd: every verb, the
 * lenient MAIL/RCPT forms, each ESMTP parameter and its errors, BDAT,
 * SMTPUTF8 rules, xtext, and the exact reply for every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/smtp_cmd.h"
#include "support/table_check.h"

#define AU SMTP_CMD_ALLOW_UTF8
#define TX SMTP_CMD_TXN_UTF8

struct ok_case {
	const char *line;
	unsigned opts;
	enum smtp_verb verb;
	const char *arg;
	const char *local;  /* path.local */
	const char *domain; /* path.domain_ascii */
	unsigned flags;	    /* path.flags */
	bool postmaster;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	int ret;
	const char *envid;
	const char *auth;
	unsigned notify;
	const char *orcpt;
	uint64_t bdat_size;
	bool bdat_last;
};

static const struct ok_case ok_cases[] = {
	/* HELO, EHLO and the verbs with a free argument */
	{ .line = "HELO mail.example.com",
	    .verb = SMTP_HELO,
	    .arg = "mail.example.com" },
	{ .line = "ehlo [192.0.2.1]", .verb = SMTP_EHLO, .arg = "[192.0.2.1]" },
	{ .line = "EhLo  host.example  ",
	    .verb = SMTP_EHLO,
	    .arg = "host.example" },
	{ .line = "DATA", .verb = SMTP_DATA, .arg = "" },
	{ .line = "data", .verb = SMTP_DATA, .arg = "" },
	{ .line = "DATA ", .verb = SMTP_DATA, .arg = "" },
	{ .line = "RSET", .verb = SMTP_RSET, .arg = "" },
	{ .line = "QUIT", .verb = SMTP_QUIT, .arg = "" },
	{ .line = "StartTLS", .verb = SMTP_STARTTLS, .arg = "" },
	{ .line = "NOOP", .verb = SMTP_NOOP, .arg = "" },
	{ .line = "NOOP anything at all",
	    .verb = SMTP_NOOP,
	    .arg = "anything at all" },
	{ .line = "HELP", .verb = SMTP_HELP, .arg = "" },
	{ .line = "HELP MAIL", .verb = SMTP_HELP, .arg = "MAIL" },
	{ .line = "VRFY user", .verb = SMTP_VRFY, .arg = "user" },
	{ .line = "EXPN staff-list", .verb = SMTP_EXPN, .arg = "staff-list" },
	{ .line = "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=",
	    .verb = SMTP_AUTH,
	    .arg = "PLAIN dGVzdAB0ZXN0ADEyMzQ=" },
	{ .line = "AUTH LOGIN", .verb = SMTP_AUTH, .arg = "LOGIN" },
	{ .line = "auth plain =", .verb = SMTP_AUTH, .arg = "plain =" },
	/* MAIL */
	{ .line = "MAIL FROM:<user@example.com>",
	    .verb = SMTP_MAIL,
	    .arg = "FROM:<user@example.com>",
	    .local = "user",
	    .domain = "example.com" },
	{ .line = "mail from:<User@Example.COM>",
	    .verb = SMTP_MAIL,
	    .local = "User",
	    .domain = "example.com" },
	{ .line = "MAIL FROM:<>", .verb = SMTP_MAIL, .flags = MAIL_ADDR_NULL },
	{ .line = "MAIL FROM:<> SIZE=500",
	    .verb = SMTP_MAIL,
	    .flags = MAIL_ADDR_NULL,
	    .size = 500 },
	{ .line = "MAIL FROM: <a@b.org>",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org" },
	{ .line = "MAIL FROM:   <a@b.org>",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org" },
	{ .line = "MAIL FROM:a@b.org",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org" },
	{ .line = "MAIL FROM: a@b.org SIZE=100",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = 100 },
	{ .line = "MAIL FROM:<\"john doe\"@example.com>",
	    .verb = SMTP_MAIL,
	    .local = "john doe",
	    .domain = "example.com",
	    .flags = MAIL_ADDR_QUOTED },
	{ .line = "MAIL FROM:<@r.example:a@b.org>",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .flags = MAIL_ADDR_ROUTE },
	{ .line = "MAIL FROM:<a@b.org> SIZE=12345 BODY=8BITMIME",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = 12345,
	    .body = SMTP_BODY_8BITMIME },
	{ .line = "MAIL FROM:<a@b.org> body=binarymime",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .body = SMTP_BODY_BINARYMIME },
	{ .line = "MAIL FROM:<a@b.org> BODY=7BIT",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .body = SMTP_BODY_7BIT },
	{ .line = "MAIL FROM:<a@b.org> SIZE=0",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = 0 },
	{ .line = "MAIL FROM:<a@b.org> SIZE=18446744073709551615",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = UINT64_MAX },
	{ .line = "MAIL FROM:<a@b.org> SIZE=99999999999999999999",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = UINT64_MAX },
	{ .line = "MAIL FROM:<a@b.org> SIZE=00000000000000000042",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = 42 },
	{ .line = "MAIL FROM:<a@b.org> RET=HDRS ENVID=QQ314159",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .ret = SMTP_RET_HDRS,
	    .envid = "QQ314159" },
	{ .line = "MAIL FROM:<a@b.org> ret=full envid=a+2Bb+3Dc",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .ret = SMTP_RET_FULL,
	    .envid = "a+b=c" },
	{ .line = "MAIL FROM:<a@b.org> AUTH=<>",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .auth = "<>" },
	{ .line = "MAIL FROM:<a@b.org> AUTH=e+3Dmc2@example.com",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .auth = "e=mc2@example.com" },
	{ .line = "MAIL FROM:<a@b.org>   SIZE=1   BODY=7BIT   ",
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = 1,
	    .body = SMTP_BODY_7BIT },
	{ .line = "MAIL FROM:<a@b.org> SMTPUTF8",
	    .opts = AU,
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .smtputf8 = true },
	{ .line = "MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8",
	    .opts = AU,
	    .verb = SMTP_MAIL,
	    .local = "δοκιμή",
	    .domain = "xn--hxajbheg2az3al.xn--jxalpdlp",
	    .flags = MAIL_ADDR_UTF8,
	    .smtputf8 = true },
	{ .line = "MAIL FROM:<user@bücher.example> smtputf8 BODY=8BITMIME",
	    .opts = AU,
	    .verb = SMTP_MAIL,
	    .local = "user",
	    .domain = "xn--bcher-kva.example",
	    .flags = MAIL_ADDR_UTF8,
	    .smtputf8 = true,
	    .body = SMTP_BODY_8BITMIME },
	{ .line = "MAIL FROM:<a@b.org> SIZE=9 BODY=8BITMIME SMTPUTF8 RET=FULL "
		  "ENVID=x AUTH=<>",
	    .opts = AU,
	    .verb = SMTP_MAIL,
	    .local = "a",
	    .domain = "b.org",
	    .size = 9,
	    .body = SMTP_BODY_8BITMIME,
	    .smtputf8 = true,
	    .ret = SMTP_RET_FULL,
	    .envid = "x",
	    .auth = "<>" },
	/* RCPT */
	{ .line = "RCPT TO:<user@example.com>",
	    .verb = SMTP_RCPT,
	    .local = "user",
	    .domain = "example.com" },
	{ .line = "rcpt to:<Postmaster>",
	    .verb = SMTP_RCPT,
	    .local = "Postmaster",
	    .postmaster = true },
	{ .line = "RCPT TO:<postMASTER>",
	    .verb = SMTP_RCPT,
	    .local = "postMASTER",
	    .postmaster = true },
	{ .line = "RCPT TO:postmaster",
	    .verb = SMTP_RCPT,
	    .local = "postmaster",
	    .postmaster = true },
	{ .line = "RCPT TO:<postmaster@example.com>",
	    .verb = SMTP_RCPT,
	    .local = "postmaster",
	    .domain = "example.com" },
	{ .line = "RCPT TO: <a@b.org>",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org" },
	{ .line = "RCPT TO:a@b.org",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org" },
	{ .line = "RCPT TO:<a@b.org> NOTIFY=NEVER",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .notify = SMTP_NOTIFY_NEVER },
	{ .line = "RCPT TO:<a@b.org> NOTIFY=SUCCESS,FAILURE",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE },
	{ .line = "RCPT TO:<a@b.org> notify=delay,failure,success",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .notify =
		SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
	{ .line = "RCPT TO:<a@b.org> NOTIFY=DELAY",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .notify = SMTP_NOTIFY_DELAY },
	{ .line = "RCPT TO:<a@b.org> NOTIFY=FAILURE ORCPT=rfc822;a+40b.org",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .notify = SMTP_NOTIFY_FAILURE,
	    .orcpt = "rfc822;a@b.org" },
	{ .line = "RCPT TO:<a@b.org> ORCPT=RFC822;user@x.org",
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .orcpt = "rfc822;user@x.org" },
	{ .line = "RCPT TO:<ü@x.org>",
	    .opts = AU | TX,
	    .verb = SMTP_RCPT,
	    .local = "ü",
	    .domain = "x.org",
	    .flags = MAIL_ADDR_UTF8 },
	{ .line = "RCPT TO:<a@b.org> ORCPT=utf-8;ü@x.org",
	    .opts = AU | TX,
	    .verb = SMTP_RCPT,
	    .local = "a",
	    .domain = "b.org",
	    .orcpt = "utf-8;ü@x.org" },
	/* BDAT */
	{ .line = "BDAT 1000",
	    .verb = SMTP_BDAT,
	    .arg = "1000",
	    .bdat_size = 1000 },
	{ .line = "BDAT 0 LAST",
	    .verb = SMTP_BDAT,
	    .arg = "0 LAST",
	    .bdat_last = true },
	{ .line = "bdat 512 last",
	    .verb = SMTP_BDAT,
	    .bdat_size = 512,
	    .bdat_last = true },
	{ .line = "BDAT 512  LAST ",
	    .verb = SMTP_BDAT,
	    .bdat_size = 512,
	    .bdat_last = true },
	{ .line = "BDAT 18446744073709551615 LAST",
	    .verb = SMTP_BDAT,
	    .bdat_size = UINT64_MAX,
	    .bdat_last = true },
};

static void
test_parse_ok(void **state)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct smtp_cmd cmd;
		struct smtp_error err = { 0 };

		if (smtp_cmd_parse(
			c->line, strlen(c->line), c->opts, &cmd, &err) != 0) {
			print_error("case %zu \"%s\": failed: %d %s %s\n", i,
			    c->line, err.code, err.enh, err.text);
			fail();
		}
		CHECK_INT(i, c->line, "verb", cmd.verb, c->verb);
		assert_non_null(cmd.arg);
		CHECK_INT(i, c->line, "arg_len", cmd.arg_len, strlen(cmd.arg));
		if (c->arg != NULL)
			CHECK_STR(i, c->line, "arg", cmd.arg, c->arg);
		CHECK_STR(i, c->line, "local", cmd.path.local, c->local);
		CHECK_STR(
		    i, c->line, "domain", cmd.path.domain_ascii, c->domain);
		CHECK_INT(i, c->line, "flags", cmd.path.flags, c->flags);
		CHECK_INT(
		    i, c->line, "postmaster", cmd.postmaster, c->postmaster);
		CHECK_INT(i, c->line, "size", cmd.size, c->size);
		CHECK_INT(i, c->line, "body", cmd.body, c->body);
		CHECK_INT(i, c->line, "smtputf8", cmd.smtputf8, c->smtputf8);
		CHECK_INT(i, c->line, "ret", cmd.ret, c->ret);
		CHECK_STR(i, c->line, "envid", cmd.envid, c->envid);
		CHECK_STR(i, c->line, "auth", cmd.auth, c->auth);
		CHECK_INT(i, c->line, "notify", cmd.notify, c->notify);
		CHECK_STR(i, c->line, "orcpt", cmd.orcpt, c->orcpt);
		CHECK_INT(i, c->line, "bdat_size", cmd.bdat_size, c->bdat_size);
		CHECK_INT(i, c->line, "bdat_last", cmd.bdat_last, c->bdat_last);
		CHECK_INT(i, c->line, "err untouched", err.code, 0);
		smtp_cmd_clear(&cmd);
		assert_null(cmd.arg);
		assert_null(cmd.path.local);
	}
}

struct bad_case {
	const char *line;
	unsigned opts;
	int code;
	const char *enh;
	const char *text;
};

#define UNREC 500, "5.5.1", "Command unrecognized"
#define BADCHAR 500, "5.5.2", "Invalid characters in command"
#define NOARGS 501, "5.5.4", "Syntax error (no parameters allowed)"
#define NEEDUTF8 553, "5.6.7", "Non-ASCII address requires SMTPUTF8"
#define PARAMSYN 501, "5.5.4", "Syntax error in parameters"
#define BADVAL(p) 501, "5.5.4", "Invalid value for parameter " p
#define UNSUP(p) 555, "5.5.4", "Unsupported parameter " p
#define DUP(p) 501, "5.5.4", "Duplicate parameter " p
#define MISSING(p) 501, "5.5.4", "Missing value for parameter " p
#define BADSENDER(r) 501, "5.1.7", "Bad sender address syntax: " r
#define BADRCPT(r) 501, "5.1.3", "Bad recipient address syntax: " r
#define BDATSYN 501, "5.5.4", "Syntax: BDAT size [LAST]"

static const struct bad_case bad_cases[] = {
	/* verbs */
	{ "", 0, UNREC },
	{ " ", 0, UNREC },
	{ "FOO", 0, UNREC },
	{ "MAILFROM:<a@b.org>", 0, UNREC },
	{ "DATAX", 0, UNREC },
	{ "DAT", 0, UNREC },
	{ " DATA", 0, UNREC },
	{ "STARTTLSX", 0, UNREC },
	{ "M\xc3\x84IL FROM:<a@b.org>", AU, UNREC },
	/* control characters */
	{ "HELO\tx", 0, BADCHAR },
	{ "DATA\x7f", 0, BADCHAR },
	{ "NOOP a\rb", 0, BADCHAR },
	{ "NOOP a\nb", 0, BADCHAR },
	{ "FOO\x1b[2J", 0, BADCHAR },
	{ "MAIL FROM:<a\x01@b.org>", 0, BADCHAR },
	/* arguments missing or not allowed */
	{ "HELO", 0, 501, "5.5.4", "Syntax: HELO hostname" },
	{ "EHLO   ", 0, 501, "5.5.4", "Syntax: EHLO hostname" },
	{ "VRFY", 0, 501, "5.5.4", "Syntax: VRFY address" },
	{ "EXPN ", 0, 501, "5.5.4", "Syntax: EXPN address" },
	{ "AUTH", 0, 501, "5.5.4",
	    "Syntax: AUTH mechanism [initial-response]" },
	{ "DATA x", 0, NOARGS },
	{ "RSET now", 0, NOARGS },
	{ "QUIT please", 0, NOARGS },
	{ "STARTTLS x", 0, NOARGS },
	/* MAIL syntax */
	{ "MAIL", 0, 501, "5.5.4", "Syntax: MAIL FROM:<address>" },
	{ "MAIL TO:<a@b.org>", 0, 501, "5.5.4", "Syntax: MAIL FROM:<address>" },
	{ "MAIL FROM", 0, 501, "5.5.4", "Syntax: MAIL FROM:<address>" },
	{ "MAIL FROM <a@b.org>", 0, 501, "5.5.4",
	    "Syntax: MAIL FROM:<address>" },
	{ "MAIL FROM:", 0, BADSENDER("empty address") },
	{ "MAIL FROM:   ", 0, BADSENDER("empty address") },
	{ "MAIL FROM:<a@b.org", 0, BADSENDER("missing '>'") },
	{ "MAIL FROM:<a b@c.org>", 0,
	    BADSENDER("invalid character space in local part") },
	{ "MAIL FROM:<user>", 0, BADSENDER("missing '@' and domain") },
	{ "MAIL FROM:<Postmaster>", 0, BADSENDER("missing '@' and domain") },
	{ "MAIL FROM:<a@b..org>", 0, BADSENDER("empty label in domain") },
	{ "MAIL "
	  "FROM:<"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@"
	  "b.org>",
	    0, BADSENDER("local part longer than 64 octets") },
	{ "MAIL FROM:<a@b.org>SIZE=10", 0, PARAMSYN },
	/* MAIL parameters */
	{ "MAIL FROM:<a@b.org> SIZE=10 SIZE=20", 0, DUP("SIZE") },
	{ "MAIL FROM:<a@b.org> size=10 Size=20", 0, DUP("Size") },
	{ "MAIL FROM:<a@b.org> BODY=7BIT BODY=8BITMIME", 0, DUP("BODY") },
	{ "MAIL FROM:<a@b.org> SMTPUTF8 SMTPUTF8", AU, DUP("SMTPUTF8") },
	{ "MAIL FROM:<a@b.org> RET=FULL RET=HDRS", 0, DUP("RET") },
	{ "MAIL FROM:<a@b.org> ENVID=a ENVID=b", 0, DUP("ENVID") },
	{ "MAIL FROM:<a@b.org> AUTH=<> AUTH=<>", 0, DUP("AUTH") },
	{ "MAIL FROM:<a@b.org> FOO=bar", 0, UNSUP("FOO") },
	{ "MAIL FROM:<a@b.org> X-FOO", 0, UNSUP("X-FOO") },
	{ "MAIL FROM:<a@b.org> NOTIFY=NEVER", 0, UNSUP("NOTIFY") },
	{ "MAIL FROM:<a@b.org> ORCPT=rfc822;a@b", 0, UNSUP("ORCPT") },
	{ "MAIL FROM:<a@b.org> SMTPUTF8", 0, UNSUP("SMTPUTF8") },
	{ "MAIL FROM:<a@b.org> SIZE", 0, MISSING("SIZE") },
	{ "MAIL FROM:<a@b.org> SIZE=", 0, MISSING("SIZE") },
	{ "MAIL FROM:<a@b.org> BODY", 0, MISSING("BODY") },
	{ "MAIL FROM:<a@b.org> SIZE=abc", 0, BADVAL("SIZE") },
	{ "MAIL FROM:<a@b.org> SIZE=-1", 0, BADVAL("SIZE") },
	{ "MAIL FROM:<a@b.org> SIZE=1k", 0, BADVAL("SIZE") },
	{ "MAIL FROM:<a@b.org> SIZE=123456789012345678901", 0, BADVAL("SIZE") },
	{ "MAIL FROM:<a@b.org> BODY=9BIT", 0, BADVAL("BODY") },
	{ "MAIL FROM:<a@b.org> BODY=8BIT", 0, BADVAL("BODY") },
	{ "MAIL FROM:<a@b.org> RET=ALL", 0, BADVAL("RET") },
	{ "MAIL FROM:<a@b.org> SMTPUTF8=yes", AU, 501, "5.5.4",
	    "SMTPUTF8 takes no value" },
	{ "MAIL FROM:<a@b.org> ENVID=a+zz", 0, BADVAL("ENVID") },
	{ "MAIL FROM:<a@b.org> ENVID=a+0", 0, BADVAL("ENVID") },
	{ "MAIL FROM:<a@b.org> ENVID=+00", 0, BADVAL("ENVID") },
	{ "MAIL FROM:<a@b.org> RET", 0, MISSING("RET") },
	{ "MAIL FROM:<a@b.org> ENVID", 0, MISSING("ENVID") },
	{ "MAIL FROM:<a@b.org> AUTH", 0, MISSING("AUTH") },
	{ "RCPT TO:<a@b.org> ORCPT", 0, MISSING("ORCPT") },
	{ "MAIL FROM:<a@b.org> "
	  "ENVID="
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    0, BADVAL("ENVID") },
	{ "MAIL FROM:<a@b.org> AUTH=a+", 0, BADVAL("AUTH") },
	{ "MAIL FROM:<a@b.org> AUTH=a=b", 0, 501, "5.5.4",
	    "Invalid character in parameter AUTH" },
	{ "MAIL FROM:<a@b.org> ENVID=\xc3\xbc", 0, 501, "5.5.4",
	    "Invalid character in parameter ENVID" },
	{ "MAIL FROM:<a@b.org> ENVID=\xc3\xbc", AU, BADVAL("ENVID") },
	{ "MAIL FROM:<a@b.org> ENVID=\xff", AU, 501, "5.5.4",
	    "Invalid UTF-8 in parameter ENVID" },
	{ "MAIL FROM:<a@b.org> -SIZE=1", 0, PARAMSYN },
	{ "MAIL FROM:<a@b.org> =1", 0, PARAMSYN },
	{ "MAIL FROM:<a@b.org> SI_ZE=1", 0, PARAMSYN },
	{ "MAIL FROM:<a@b.org> S\xc3\x8dZE=1", AU, PARAMSYN },
	{ "MAIL FROM:<a@b.org> "
	  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=1",
	    0, PARAMSYN },
	/* SMTPUTF8 rules */
	{ "MAIL FROM:<\xc3\xbc@x.org>", 0, NEEDUTF8 },
	{ "MAIL FROM:<\xc3\xbc@x.org>", AU, NEEDUTF8 },
	{ "MAIL FROM:<\xc3\xbc@x.org>", AU | TX, NEEDUTF8 },
	{ "MAIL FROM:<\xc3\xbc@x.org> SMTPUTF8", 0, NEEDUTF8 },
	{ "MAIL FROM:<a@b\xc3\xbc.org> BODY=8BITMIME", AU, NEEDUTF8 },
	{ "MAIL FROM:<a@b\xff.org> SMTPUTF8", AU,
	    BADSENDER("invalid UTF-8 in address") },
	{ "RCPT TO:<\xc3\xbc@x.org>", 0, NEEDUTF8 },
	{ "RCPT TO:<\xc3\xbc@x.org>", AU, NEEDUTF8 },
	{ "RCPT TO:<\xc3\xbc@x.org>", TX, NEEDUTF8 },
	{ "RCPT TO:<a@b.org> ORCPT=utf-8;\xc3\xbc@x.org", AU, 501, "5.5.4",
	    "Invalid character in parameter ORCPT" },
	/* RCPT */
	{ "RCPT", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>" },
	{ "RCPT FROM:<a@b.org>", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>" },
	{ "RCPT TO:", 0, BADRCPT("empty address") },
	{ "RCPT TO:<>", 0, BADRCPT("null address") },
	{ "RCPT TO:<user>", 0, BADRCPT("missing '@' and domain") },
	{ "RCPT TO:<\"post master\">", 0, BADRCPT("missing '@' and domain") },
	{ "RCPT TO:<a@b..org>", 0, BADRCPT("empty label in domain") },
	{ "RCPT TO:<a@[300.1.1.1]>", 0,
	    BADRCPT("invalid IPv4 address literal") },
	{ "RCPT TO:<a@b.org> SIZE=10", 0, UNSUP("SIZE") },
	{ "RCPT TO:<a@b.org> BODY=8BITMIME", 0, UNSUP("BODY") },
	{ "RCPT TO:<a@b.org> NOTIFY=NEVER,SUCCESS", 0, 501, "5.5.4",
	    "NOTIFY=NEVER cannot be combined with other values" },
	{ "RCPT TO:<a@b.org> NOTIFY=DELAY,NEVER", 0, 501, "5.5.4",
	    "NOTIFY=NEVER cannot be combined with other values" },
	{ "RCPT TO:<a@b.org> NOTIFY=SUCCESS,,DELAY", 0, BADVAL("NOTIFY") },
	{ "RCPT TO:<a@b.org> NOTIFY=SUCCESS,", 0, BADVAL("NOTIFY") },
	{ "RCPT TO:<a@b.org> NOTIFY=,SUCCESS", 0, BADVAL("NOTIFY") },
	{ "RCPT TO:<a@b.org> NOTIFY=ALWAYS", 0, BADVAL("NOTIFY") },
	{ "RCPT TO:<a@b.org> NOTIFY", 0, MISSING("NOTIFY") },
	{ "RCPT TO:<a@b.org> NOTIFY=NEVER NOTIFY=NEVER", 0, DUP("NOTIFY") },
	{ "RCPT TO:<a@b.org> ORCPT=rfc822", 0, BADVAL("ORCPT") },
	{ "RCPT TO:<a@b.org> ORCPT=;a@b", 0, BADVAL("ORCPT") },
	{ "RCPT TO:<a@b.org> ORCPT=rfc822;", 0, BADVAL("ORCPT") },
	{ "RCPT TO:<a@b.org> ORCPT=rfc_822;a@b", 0, BADVAL("ORCPT") },
	{ "RCPT TO:<a@b.org> ORCPT=rfc822;a+4", 0, BADVAL("ORCPT") },
	{ "RCPT TO:<a@b.org> ORCPT=rfc822;a ORCPT=rfc822;b", 0, DUP("ORCPT") },
	/* BDAT */
	{ "BDAT", 0, BDATSYN },
	{ "BDAT x", 0, BDATSYN },
	{ "BDAT LAST", 0, BDATSYN },
	{ "BDAT 10 MORE", 0, BDATSYN },
	{ "BDAT 10 LAST x", 0, BDATSYN },
	{ "BDAT -1", 0, BDATSYN },
	{ "BDAT +1", 0, BDATSYN },
	{ "BDAT 1.5", 0, BDATSYN },
	{ "BDAT 18446744073709551616", 0, BDATSYN },
	{ "BDAT 123456789012345678901", 0, BDATSYN },
};

static void
test_parse_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct smtp_cmd cmd;
		struct smtp_error err = { 0 };
		int rc;

		rc = smtp_cmd_parse(
		    c->line, strlen(c->line), c->opts, &cmd, &err);
		CHECK_INT(i, c->line, "rc", rc, -1);
		CHECK_INT(i, c->line, "code", err.code, c->code);
		CHECK_STR(i, c->line, "enh", err.enh, c->enh);
		CHECK_STR(i, c->line, "text", err.text, c->text);
		/* cmd is left cleared, so clearing again is harmless */
		assert_null(cmd.arg);
		assert_null(cmd.path.local);
		assert_null(cmd.envid);
		assert_null(cmd.auth);
		assert_null(cmd.orcpt);
		assert_int_equal(cmd.verb, SMTP_UNKNOWN);
		smtp_cmd_clear(&cmd);
	}
}

/* NUL bytes and lines that are not NUL-terminated */
static void
test_parse_binary(void **state)
{
	static const char nul[] = "MAIL FROM:<a@b.org>\0 SIZE=1";
	static const char nul2[] = "NOOP\0";
	struct smtp_cmd cmd;
	struct smtp_error err;

	assert_int_equal(
	    smtp_cmd_parse(nul, sizeof(nul) - 1, 0, &cmd, &err), -1);
	assert_int_equal(err.code, 500);
	assert_string_equal(err.enh, "5.5.2");
	assert_int_equal(
	    smtp_cmd_parse(nul2, sizeof(nul2) - 1, 0, &cmd, &err), -1);
	assert_int_equal(err.code, 500);
	/* only len bytes count */
	assert_int_equal(smtp_cmd_parse("DATAXYZ", 4, 0, &cmd, &err), 0);
	assert_int_equal(cmd.verb, SMTP_DATA);
	smtp_cmd_clear(&cmd);
	assert_int_equal(
	    smtp_cmd_parse("HELO a.example\r\n", 14, 0, &cmd, &err), 0);
	assert_string_equal(cmd.arg, "a.example");
	assert_int_equal(cmd.arg_len, 9);
	smtp_cmd_clear(&cmd);
	assert_int_equal(
	    smtp_cmd_parse("RCPT TO:<a@b.org> NOTIFY=NEVER", 17, 0, &cmd, &err),
	    0);
	assert_int_equal(cmd.notify, 0);
	smtp_cmd_clear(&cmd);
}

/* A long parameter name is not echoed past its 64 characters. */
static void
test_reply_text_bounded(void **state)
{
	char line[600];
	struct smtp_cmd cmd;
	struct smtp_error err;

	snprintf(line, sizeof(line), "MAIL FROM:<a@b.org> X%s=1",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(smtp_cmd_parse(line, strlen(line), 0, &cmd, &err), -1);
	assert_int_equal(err.code, 555);
	assert_int_equal(
	    strlen(err.text), strlen("Unsupported parameter ") + 64);
	/* a long reason from the address parser still fits */
	snprintf(line, sizeof(line), "RCPT TO:<a@%s>",
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bb");
	assert_int_equal(smtp_cmd_parse(line, strlen(line), 0, &cmd, &err), -1);
	assert_string_equal(err.text,
	    "Bad recipient address syntax: domain label longer than 63 octets");
}

struct xtext_case {
	const char *in;
	const char *out; /* NULL: must fail */
};

static const struct xtext_case xtext_cases[] = {
	{ "", "" },
	{ "abc", "abc" },
	{ "a+2Bb", "a+b" },
	{ "+3D", "=" },
	{ "+2b", "+" },
	{ "+41+42", "AB" },
	{ "+20", " " },
	{ "+FF", "\xff" },
	{ "QQ314159", "QQ314159" },
	{ "<>!~", "<>!~" },
	{ "a+", NULL },
	{ "a+4", NULL },
	{ "a+G0", NULL },
	{ "a+0G", NULL },
	{ "+00", NULL },
	{ "a b", NULL },
	{ "a=b", NULL },
	{ "a\x7f", NULL },
	{ "a\x01", NULL },
	{ "\xc3\xbc", NULL },
};

static void
test_xtext(void **state)
{
	for (size_t i = 0; i < sizeof(xtext_cases) / sizeof(xtext_cases[0]);
	     i++) {
		const struct xtext_case *c = &xtext_cases[i];
		char *out = NULL;
		int rc = smtp_xtext_decode(c->in, strlen(c->in), &out);

		CHECK_INT(i, c->in, "rc", rc, c->out != NULL ? 0 : -1);
		CHECK_STR(i, c->in, "out", out, c->out);
		free(out);
	}
	/* len, not the NUL, ends the input */
	char *out = NULL;
	assert_int_equal(smtp_xtext_decode("ab+41", 4, &out), -1);
	assert_int_equal(smtp_xtext_decode("ab+41", 2, &out), 0);
	assert_string_equal(out, "ab");
	free(out);
}

static void
test_verb_name(void **state)
{
	assert_string_equal(smtp_verb_name(SMTP_MAIL), "MAIL");
	assert_string_equal(smtp_verb_name(SMTP_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_AUTH), "AUTH");
	assert_string_equal(smtp_verb_name(SMTP_UNKNOWN), "UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_binary),
		cmocka_unit_test(test_reply_text_bounded),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_verb_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
