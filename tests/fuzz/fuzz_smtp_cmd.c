/*
 * fuzz_smtp_cmd - smtp_cmd_parse() on arbitrary bytes, with each set of
 * session options, plus smtp_xtext_decode().  Beyond "no crash, no leak,
 * no overread" it checks what a reply may contain and what a parsed
 * command promises (see check_ok / check_error).  See fuzz_main.c for
 * how to run it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_cmd.h"
#include "fuzz.h"

const char *const fuzz_seeds[] = {
	"HELO mail.example.com",
	"EHLO [192.0.2.1]",
	"MAIL FROM:<user@example.com> SIZE=12345 BODY=8BITMIME",
	"MAIL FROM:<> RET=HDRS ENVID=QQ314159 AUTH=<>",
	"MAIL FROM: a@b.org SIZE=100",
	"MAIL FROM:<\"john doe\"@example.com> AUTH=e+3Dmc2@example.com",
	"MAIL FROM:<@a.example,@b.example:user@c.example>",
	"MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8",
	"MAIL FROM:<user@bücher.example> SMTPUTF8 BODY=8BITMIME",
	"MAIL FROM:<user@[IPv6:2001:db8::1]> BODY=BINARYMIME",
	"RCPT TO:<Postmaster>",
	"RCPT TO:<user@[192.0.2.1]> NOTIFY=SUCCESS,FAILURE,DELAY",
	"RCPT TO:<a@b.org> NOTIFY=NEVER ORCPT=rfc822;a+40b.org",
	"RCPT TO:<ü@x.org> ORCPT=utf-8;ü@x.org",
	"RCPT TO:<\"a\\\"b\"@x.org>",
	"BDAT 1000 LAST",
	"DATA",
	"AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=",
	"VRFY postmaster",
	"NOOP",
	"STARTTLS",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

static const unsigned fuzz_opts[] = {
	0,
	SMTP_CMD_ALLOW_UTF8,
	SMTP_CMD_TXN_UTF8,
	SMTP_CMD_ALLOW_UTF8 | SMTP_CMD_TXN_UTF8,
};

/* A reply never carries control bytes: they would break the protocol. */
static void
check_error(const struct smtp_error *err)
{
	size_t n = strnlen(err->text, sizeof(err->text));

	CHECK(n > 0 && n < sizeof(err->text));
	CHECK(err->enh != NULL);
	CHECK(err->code == 500 || err->code == 501 || err->code == 553 ||
	    err->code == 555);
	CHECK(err->enh[0] == '5' && err->enh[1] == '.');
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)err->text[i] >= 32 &&
		    (unsigned char)err->text[i] != 127);
}

static void
check_ok(const struct smtp_cmd *cmd, unsigned opts)
{
	CHECK(cmd->verb != SMTP_UNKNOWN);
	CHECK(cmd->arg != NULL && strlen(cmd->arg) == cmd->arg_len);
	if (cmd->verb == SMTP_MAIL || cmd->verb == SMTP_RCPT) {
		const struct mail_addr *a = &cmd->path;

		if (a->flags & MAIL_ADDR_NULL)
			CHECK(cmd->verb == SMTP_MAIL && a->local == NULL);
		else {
			CHECK(a->local != NULL);
			CHECK((a->domain == NULL) == (a->domain_ascii == NULL));
			CHECK(a->domain != NULL || cmd->postmaster);
		}
		if (a->flags & MAIL_ADDR_UTF8)
			CHECK(opts & SMTP_CMD_ALLOW_UTF8);
		if ((a->flags & MAIL_ADDR_UTF8) && cmd->verb == SMTP_MAIL)
			CHECK(cmd->smtputf8);
		if ((a->flags & MAIL_ADDR_UTF8) && cmd->verb == SMTP_RCPT)
			CHECK(opts & SMTP_CMD_TXN_UTF8);
		if (a->domain_ascii != NULL)
			for (const char *p = a->domain_ascii; *p; p++)
				CHECK((unsigned char)*p < 0x80 &&
				    !(*p >= 'A' && *p <= 'Z'));
	}
	if (cmd->notify & SMTP_NOTIFY_NEVER)
		CHECK(cmd->notify == SMTP_NOTIFY_NEVER);
	if (cmd->envid != NULL)
		CHECK(strlen(cmd->envid) <= SMTP_ENVID_MAX);
	if (cmd->orcpt != NULL)
		CHECK(strchr(cmd->orcpt, ';') != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	char *out;

	for (size_t i = 0; i < sizeof(fuzz_opts) / sizeof(fuzz_opts[0]); i++) {
		struct smtp_cmd cmd;
		struct smtp_error err;

		if (smtp_cmd_parse(line, size, fuzz_opts[i], &cmd, &err) == 0)
			check_ok(&cmd, fuzz_opts[i]);
		else {
			check_error(&err);
			CHECK(cmd.arg == NULL && cmd.path.local == NULL);
		}
		smtp_cmd_clear(&cmd);
	}
	if (smtp_xtext_decode(line, size, &out) == 0) {
		CHECK(strlen(out) <= size);
		free(out);
	}
	return 0;
}
