/*
 * envelope - what SMTP says about a message besides its bytes: who sent
 * it, to whom, through which listener and credential, with which DSN
 * requests (RFC 3461).  The spool stores it in front of the message in a
 * line-based text form that envelope_serialize() writes and
 * envelope_parse() reads back.
 */
#ifndef HERALD_MAIL_ENVELOPE_H
#define HERALD_MAIL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/util.h"

struct envelope_rcpt {
	char *addr;	 /* as the client gave it, local@domain */
	unsigned notify; /* SMTP_NOTIFY_* bits from smtp_cmd.h, 0 if none */
	char *orcpt;	 /* "addr-type;address", or NULL */
};

struct envelope {
	char id[QUEUE_ID_LEN + 1];
	int64_t account_id;    /* 0 when received on the MX listener */
	int64_t credential_id; /* 0 when not authenticated */
	char *source;	       /* "submission" or "mx" */
	char *client_ip;
	char *helo;
	char *auth_user; /* NULL when not authenticated */
	char *sender;	 /* "" for the null reverse-path */
	int body;	 /* enum smtp_body */
	bool smtputf8;
	int ret;	     /* 0 none, 1 FULL, 2 HDRS */
	char *envid;	     /* RFC 3461 ENVID, decoded, or NULL */
	int64_t received_at; /* unix seconds */
	uint64_t size;	     /* message octets (filled by the spool) */
	struct envelope_rcpt *rcpts;
	size_t nrcpts, rcpts_cap;
};

/* envelope_init - an empty envelope */
void envelope_init(struct envelope *e);
/* envelope_clear - free what e owns and make it empty again */
void envelope_clear(struct envelope *e);
/* envelope_set - replace *field with a copy of value (NULL allowed) */
void envelope_set(char **field, const char *value);
/* envelope_add_rcpt - append a recipient; strings are copied */
void envelope_add_rcpt(
    struct envelope *e, const char *addr, unsigned notify, const char *orcpt);
/* envelope_serialize - append the text form ("key value" lines) to out */
void envelope_serialize(const struct envelope *e, struct buf *out);
/*
 * envelope_parse - read the text form of len bytes into e (which must be
 * initialized).  Returns 0, or -1 with *error_r naming the bad line.
 */
int envelope_parse(
    const char *text, size_t len, struct envelope *e, const char **error_r);

#endif
