/*
 * smtp_cmd - parse one SMTP command line into a struct smtp_cmd.
 *
 * Covers the commands and parameters of RFC 5321 (base), 1869 (SIZE),
 * 6152 (8BITMIME), 3030 (CHUNKING, BINARYMIME), 3461 (DSN), 4954 (AUTH)
 * and 6531 (SMTPUTF8).  The parser is pure: it holds no session state.
 * What the session knows (SMTPUTF8 announced, the transaction's MAIL
 * carried SMTPUTF8) comes in through opts.  When a line is refused the
 * caller gets the exact reply to send (code, enhanced code, text).
 *
 * Whether a command is allowed in the current state (RCPT before MAIL,
 * BDAT after DATA, ...), and whether a parameter's extension is on offer
 * (BODY=BINARYMIME without CHUNKING), is the session's business.
 */
#ifndef HERALD_MAIL_SMTP_CMD_H
#define HERALD_MAIL_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/address.h"

enum smtp_verb {
	SMTP_UNKNOWN,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_BDAT,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_STARTTLS,
	SMTP_AUTH,
};

/* The reply for a refused line, e.g. 501, "5.5.4", "Syntax error ..." */
struct smtp_error {
	int code;
	const char *enh; /* static string */
	char text[160];
};

enum smtp_body {
	SMTP_BODY_NONE,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

#define SMTP_NOTIFY_NEVER 1
#define SMTP_NOTIFY_SUCCESS 2
#define SMTP_NOTIFY_FAILURE 4
#define SMTP_NOTIFY_DELAY 8

#define SMTP_RET_NONE 0
#define SMTP_RET_FULL 1
#define SMTP_RET_HDRS 2

/* smtp_cmd_parse opts */
#define SMTP_CMD_ALLOW_UTF8 0x01 /* the session announced SMTPUTF8 */
#define SMTP_CMD_TXN_UTF8 0x02	 /* this transaction's MAIL had SMTPUTF8 */

/* Limits on parameter values (encoded length) */
#define SMTP_ENVID_MAX 100	/* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500	/* RFC 3461 4.2 */
#define SMTP_AUTH_PARAM_MAX 500 /* AUTH=: a mailbox, as ORCPT */

struct smtp_cmd {
	enum smtp_verb verb;
	/*
	 * The text after the verb, without the spaces around it, as a
	 * malloc'd NUL-terminated copy owned by cmd (HELO/EHLO domain, AUTH
	 * mechanism and initial response, BDAT, VRFY, EXPN, HELP, NOOP
	 * argument; for MAIL and RCPT the whole "FROM:..." text); "" when
	 * there is none.  arg_len is its length.
	 */
	char *arg;
	size_t arg_len;
	struct mail_addr path; /* MAIL/RCPT, owned */
	bool postmaster;       /* RCPT TO:<Postmaster> without a domain */
	/* MAIL parameters */
	uint64_t size;	     /* SIZE=, 0 if absent; UINT64_MAX if too big */
	enum smtp_body body; /* BODY= */
	bool smtputf8;	     /* SMTPUTF8 */
	int ret;	     /* SMTP_RET_* */
	char *envid;	     /* ENVID, xtext-decoded, malloc'd, or NULL */
	char *auth; /* AUTH= (RFC 4954 5), xtext-decoded or "<>", or NULL */
	/* RCPT parameters */
	unsigned notify; /* SMTP_NOTIFY_* bits, 0 if absent */
	char *orcpt; /* "addr-type;decoded-xtext" (type lower-cased) or NULL */
	/* BDAT */
	uint64_t bdat_size;
	bool bdat_last;
};

/*
 * smtp_cmd_parse - parse one command line of len bytes (without CRLF).
 *
 * The line need not be NUL-terminated and is not kept: everything in cmd
 * is copied.  On success returns 0 with cmd filled; release it with
 * smtp_cmd_clear.  On failure returns -1, leaves cmd cleared and fills err
 * with the reply to send:
 *
 *   500 5.5.2  control characters or NUL in the line
 *   500 5.5.1  unknown verb
 *   501 5.5.4  bad syntax, bad parameter value, duplicate parameter,
 *              argument to DATA/RSET/QUIT/STARTTLS, missing argument
 *   501 5.1.7  MAIL address syntax (the text gives the reason)
 *   501 5.1.3  RCPT address syntax (the text gives the reason)
 *   553 5.6.7  non-ASCII address without SMTPUTF8
 *   555 5.5.4  parameter unknown here (or SMTPUTF8 not announced)
 *
 * A UTF-8 address is allowed on MAIL only when opts has
 * SMTP_CMD_ALLOW_UTF8 and the line carries SMTPUTF8; on RCPT only when
 * opts has both SMTP_CMD_ALLOW_UTF8 and SMTP_CMD_TXN_UTF8.  MAIL and
 * RCPT tolerate a space after the colon and a path without <>.
 */
int smtp_cmd_parse(const char *line, size_t len, unsigned opts,
    struct smtp_cmd *cmd, struct smtp_error *err);

/* smtp_cmd_clear - free what cmd owns and zero it; cmd may be zeroed */
void smtp_cmd_clear(struct smtp_cmd *cmd);

/*
 * smtp_xtext_decode - decode RFC 3461 4 xtext: printable ASCII other than
 * '+' and '=' stands for itself, "+XX" (hex, either case) for the octet
 * XX.  On success returns 0 and sets *out_r to a malloc'd NUL-terminated
 * string.  Returns -1 (and leaves *out_r alone) on any other byte, a
 * short or non-hex escape, or "+00" (a NUL cannot be carried on).
 */
int smtp_xtext_decode(const char *s, size_t len, char **out_r);

/* smtp_verb_name - the upper-case name of verb ("UNKNOWN" for none) */
const char *smtp_verb_name(enum smtp_verb verb);

#endif
