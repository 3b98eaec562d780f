/*
 * dsn - delivery status notifications (RFC 3464, RFC 3461, RFC 6522).
 *
 * dsn_build() writes the whole message Herald sends to an envelope
 * sender when recipients bounced, expired or (as a warning) were
 * delayed: a multipart/report; report-type=delivery-status with
 *   1. a text/plain part a person can read: what happened to which
 *      recipient, the remote server's reply;
 *   2. a message/delivery-status part: per-message fields
 *      (Reporting-MTA, Original-Envelope-Id when ENVID was given,
 *      Arrival-Date) then, per recipient, Original-Recipient (from
 *      ORCPT, when given), Final-Recipient, Action (failed, delayed),
 *      Status (the enhanced code), Remote-MTA and Diagnostic-Code
 *      ("smtp; 550 5.1.1 ...") when a server replied, Last-Attempt-Date,
 *      Will-Retry-Until for delays;
 *   3. the original message (message/rfc822) when RET=FULL, otherwise
 *      (RET=HDRS or no RET) only its header (text/rfc822-headers).
 *      RET=FULL of a message larger than max_return bytes returns the
 *      header only and says so in the text part.
 * The message has From: "Mail Delivery System" <MAILER-DAEMON@hostname>,
 * To: the envelope sender, Auto-Submitted: auto-replied (RFC 3834),
 * a Subject saying whether it is a failure or a delay, Date and
 * Message-ID.  Lines are CRLF and no longer than 998 octets (long
 * diagnostics are folded); the part boundary is random and checked not
 * to occur in the original.  When the original is 8-bit or SMTPUTF8 the
 * returned part keeps its bytes and the report says so (8bit transfer
 * encoding; message/global-delivery-status is not used).
 *
 * Which recipients get reported is the caller's decision (RFC 3461
 * NOTIFY: FAILURE is the default, NEVER means none, and there is never a
 * DSN to the null sender); dsn_wanted() answers it.
 */
#ifndef HERALD_MAIL_DSN_H
#define HERALD_MAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "mail/envelope.h"

enum dsn_action { DSN_FAILED, DSN_DELAYED };

struct dsn_rcpt {
	const char *addr;	  /* the recipient (Final-Recipient) */
	const char *orcpt;	  /* "rfc822;addr" from ORCPT, or NULL */
	enum dsn_action action;
	const char *status;	  /* "5.1.1"; the caller maps a reply without
				     an enhanced code to "5.0.0"/"4.0.0" */
	const char *remote_mta;	  /* host name of the server that replied, or NULL */
	const char *diagnostic;	  /* the server's reply "550 5.1.1 no such user",
				     or NULL when none (local failure) */
	const char *reason;	  /* one line for people, e.g. "the server said
				     the mailbox does not exist" or Herald's
				     own failure ("no MX host answered for 5 days") */
	int64_t last_attempt;	  /* unix seconds, 0 = none */
	int64_t retry_until;	  /* unix seconds, delays only */
};

struct dsn_info {
	const char *reporting_mta; /* our host name */
	const struct envelope *env; /* the original envelope (envid, ret,
				       received_at, sender) */
	const struct dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *original;	/* the original message (CRLF, not stuffed) */
	size_t original_len;
	uint64_t max_return;	/* RET=FULL cap in bytes */
	int64_t now;		/* unix seconds (Date:, tests pass a fixed one) */
	/* source of the random boundary and Message-ID (out gets len chars
	   and a NUL); NULL means random_token().  Tests pass their own to
	   force a boundary collision. */
	void (*random_fn)(char *out, size_t len);
};

/*
 * dsn_wanted - whether recipient notify bits (SMTP_NOTIFY_*, 0 = none
 * given) ask for a DSN for action, for a message from sender.  With no
 * NOTIFY both actions are wanted (RFC 3461 leaves DELAY to the MTA):
 * whether delay warnings are sent at all is the caller's setting.
 */
bool dsn_wanted(const char *sender, unsigned notify, enum dsn_action action);

/*
 * dsn_build - append the DSN message (header and body, CRLF lines, not
 * dot-stuffed) to out.  Returns 0, or -1 with err when info is unusable
 * (no recipients, null sender).
 */
int dsn_build(const struct dsn_info *info, struct buf *out, char *err,
    size_t errlen);

#endif
