/*
 * fuzz_smtpc - the outbound SMTP client (mta/smtpc.c) talking to a
 * hostile server, on a real libevent loop.
 *
 * The server is this program: a listening socket on 127.0.0.1 (one for
 * the process: a new port per input would soon run out of ports, with
 * every closed connection in TIME_WAIT) served on the same loop as the
 * client.  An input is four option bytes (their low six bits, see O_*;
 * '@' is all clear) and then the server's replies, separated by '|':
 *
 *   OOOO<greeting>|<reply to the 1st line>|<reply to the 2nd line>|...
 *
 * The server sends the next reply (called a segment: any bytes, one or
 * many replies, or garbage) when a client connects and for each line
 * the client sends (not for message data: after a reply to DATA that
 * starts with '3' it reads the data up to ".", after BDAT its chunk,
 * and after a reply to STARTTLS that starts with '2' it swallows the
 * TLS handshake).  When the loop goes quiet while the client waits for
 * more, the server sends the next segment unasked; when there is none
 * left, it hangs up.  A segment that starts with
 *   '!'   hangs up after sending the rest;
 *   '%'   sends the rest and then never answers again (a stall: the
 *         client's timeout, 100 ms, ends it);
 *   '*d'  sends the rest 2^(d & 15) times (huge replies, long lines).
 * The client has two targets (three with the option that puts a port
 * that refuses connections first), both this server, so a failure
 * before the connection is ready moves on to the next segment on a new
 * connection.  On ready it sends one or two transactions (three
 * recipients with NOTIFY and ORCPT, ENVID, RET), then quits.  The TLS
 * policy is none unless an option asks for STARTTLS: the server speaks
 * no TLS, so the handshake fails and the client must fall back to
 * plaintext (may) or give up on the target (encrypt, verify).
 *
 * Invariants (CHECK):
 *   1. callbacks never run inside an smtpc_* call; on_ready never while
 *      a transaction is open nor after quit; on_done once per send, for
 *      that transaction; on_close exactly once (none after
 *      smtpc_abort), after every on_done, and nothing after it;
 *   2. every result is filled: code 0 (then local, with a text) or
 *      200..599, text and enhanced code NUL-terminated within their
 *      arrays, no control bytes, an enhanced code of the reply's class;
 *      after the connection was ready the close reason has code 0;
 *   3. no recipient is reported delivered (2xx) unless the server
 *      received the whole message: a "." line ending DATA or all of a
 *      BDAT chunk (count, checked at the end);
 *   4. what the client sends: BDAT n LAST with n and the chunk exactly
 *      the message, SIZE= the message size, BODY=8BITMIME and SMTPUTF8
 *      as the transaction asks, STARTTLS only when the policy is not
 *      none, AUTH only with credentials and never in plaintext unless
 *      the policy is none, and while each line got exactly one
 *      well-formed reply ("in sync"): only commands outside the data,
 *      dot-stuffed data equal to the message (or empty when no
 *      recipient was accepted);
 *   5. the loop ends (bounded passes, 5 s at most), and leaves no event
 *      behind on the event base.
 *
 * See fuzz_main.c for how to run it.  An input is at most 64 KiB.  With
 * FUZZ_SMTPC_TRACE set in the environment, the conversation and the
 * client's log go to stderr (to replay one input and see what it does);
 * with FUZZ_SMTPC_STATS, counts of what the inputs reached are printed
 * at exit (to see that the mutated inputs still get somewhere).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "mail/smtp_cmd.h"
#include "mta/smtpc.h"
#include "fuzz.h"

#define INPUT_MAX (64 * 1024)
#define TIMEOUT_MS 100
#define SEGMENT_OUT_MAX (256 * 1024) /* bytes one '*' segment may expand to */
#define IDLE_PASSES 8		     /* loop passes without progress: quiet */
#define PASSES_MAX 2000000
#define DEADLINE_MS 5000
#define BIG_LEN (256 * 1024)

/* Option bits: the low six bits of the four first bytes. */
#define O_CHUNKING 0x01	       /* use BDAT when announced */
#define O_TWO_TXNS 0x02	       /* a second transaction */
#define O_EIGHTBIT 0x04	       /* 8-bit message, BODY=8BITMIME */
#define O_SMTPUTF8 0x08	       /* needs SMTPUTF8 */
#define O_DEFER 0x10	       /* send and quit from an event, not on_ready */
#define O_REFUSED 0x20	       /* a refusing port as the first target */
#define O_MSG_MASK (0x07 << 6) /* which message */
#define O_BIG (0x08 << 6)      /* a 256 KiB message instead */
#define O_ABORT (0x10 << 6)    /* smtpc_abort instead of smtpc_quit */
#define O_EAGER (0x20 << 6)    /* send and quit from on_done */
#define O_INJECT (0x01 << 12)  /* 2nd txn has a recipient with CRLF */
#define O_NULL_SENDER (0x02 << 12)
#define O_RET_FULL (0x04 << 12)
#define O_NO_ENVID (0x08 << 12)
#define O_DEBUG_LOG (0x10 << 12)   /* run the debug logging too */
#define O_ORCPT_BARE (0x20 << 12)  /* an ORCPT without its type */
#define O_TLS_MAY (0x01 << 18)	   /* STARTTLS when offered */
#define O_TLS_ENCRYPT (0x02 << 18) /* STARTTLS required (both: verify) */
#define O_AUTH (0x04 << 18)	   /* AUTH with credentials */
#define O_TLS (O_TLS_MAY | O_TLS_ENCRYPT)

const char *const fuzz_seeds[] = {
	/* a plain conversation: no extensions, one recipient refused */
	"@@@@220 mx.example ESMTP\r\n|250 mx.example\r\n|250 2.1.0 Ok\r\n"
	"|250 2.1.5 Ok\r\n|550 5.1.1 <b@rcpt.example>: no such user\r\n"
	"|250 2.1.5 Ok\r\n|354 End data with <CR><LF>.<CR><LF>\r\n"
	"|250 2.0.0 Ok: queued as 4F2A\r\n|221 2.0.0 Bye\r\n",
	/* every extension, pipelined BDAT, two transactions */
	"KBD@220 mx.example ESMTP\r\n"
	"|250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	"250-DSN\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES"
	"\r\n250 CHUNKING\r\n"
	"|250 2.1.0 Ok\r\n|250 2.1.5 Ok\r\n|250 2.1.5 Ok\r\n|250 2.1.5 Ok\r\n"
	"|250 2.0.0 Ok: 1234 bytes queued\r\n"
	"|250 2.1.0 Ok\r\n|250 2.1.5 Ok\r\n|250 2.0.0 queued\r\n"
	"|221 2.0.0 Bye\r\n",
	/* pipelined DATA, DSN, the second transaction refused at MAIL */
	"BAH@220 mx.example\r\n|250-mx.example\r\n250-PIPELINING\r\n"
	"250-DSN\r\n250 8BITMIME\r\n|250 ok\r\n|250 ok\r\n|450 4.2.1 busy\r\n"
	"|250 ok\r\n|354 go\r\n|250 2.0.0 done\r\n"
	"|550 5.7.1 sender rejected\r\n|503 5.5.1 no mail\r\n"
	"|554 5.5.1 no valid recipients\r\n|250 2.0.0 reset\r\n|221 bye\r\n",
	/* greeting refused: next target; EHLO refused: HELO */
	"@@@@421 4.3.2 too busy\r\n|220 second ESMTP\r\n"
	"|502 5.5.2 EHLO not implemented\r\n|250 hello\r\n|250 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|250 ok\r\n|354 go\r\n|250 ok\r\n|221 bye\r\n",
	/* 5xx greeting on both targets */
	"@@@@554 5.7.1 no service\r\n|554 5.7.1 still no\r\n",
	/* 4xx and 5xx at MAIL, RCPT, DATA and the end of data */
	"B@@@220 mx\r\n|250 mx\r\n|451 4.3.0 try later\r\n|250 reset\r\n"
	"|250 ok\r\n|250 ok\r\n|452 4.5.3 too many\r\n|550 nope\r\n"
	"|451 4.3.0 DATA later\r\n|250 reset\r\n|250 ok\r\n|250 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|354 go\r\n|552 5.3.4 too big\r\n|250 ok\r\n"
	"|221 bye\r\n",
	/* 354 then 250 at once: the reply before the end of the data */
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n250 2.0.0 queued early\r\n|221 bye\r\n",
	/* pipelining, every recipient refused, 354 to DATA anyway */
	"@@@@220 mx\r\n|250-mx\r\n250 PIPELINING\r\n|250 ok\r\n|550 no\r\n"
	"|550 no\r\n|550 no\r\n|354 go on\r\n|250 ok\r\n|250 reset\r\n"
	"|221 bye\r\n",
	/* a SIZE smaller than the message: refused before MAIL */
	"@@@@220 mx\r\n|250-mx\r\n250-SIZE 10\r\n250 8BITMIME\r\n|221 bye\r\n",
	/* 8-bit and SMTPUTF8 to a server without them */
	"FF@@220 mx\r\n|250-mx\r\n250 PIPELINING\r\n|221 bye\r\n",
	/* garbage */
	"@@@@hello world\r\n|\xff\xfe\r\n|",
	"@@@@220 mx\r\n|250 mx\r\n|2\r\n|250x\r\n|999 what\r\n",
	/* replies with bare LF, codes that differ, a continuation alone */
	"@@@@220 mx\n|250-mx\n251 mx\n|250 mx\r\n",
	"@@@@220 mx\r\n|250-mx\r\n|250 ok\r\n",
	/* huge multi-line replies and an over-long line */
	"@@@@220 mx\r\n|*7250-x\r\n|250 ok\r\n",
	"@@@@*<x|250 mx\r\n",
	"@@@@*6220-more and more text\r\n|220 done\r\n|250 mx\r\n",
	/* the server stalls; the server closes early */
	"@@@@220 mx\r\n|%",
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n|%",
	"@@@@220 mx\r\n|!421 4.3.2 shutting down\r\n",
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|!",
	/* extra replies pipelined by the server */
	"@@@@220 mx\r\n250 extra\r\n|250 mx\r\n",
	"@@@@220 mx\r\n|250 mx\r\n250 ok\r\n250 ok\r\n|250 ok\r\n",
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n|250 ok\r\n|250 unasked\r\n",
	/* a 2xx reply to DATA */
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|250 DATA is fine\r\n",
	/* non-ASCII and control bytes in replies */
	"@@@@220 \xc3\xa9\xff\x01\x7f mx\r\n|250-\xe2\x82\xac\r\n250 "
	"\xf0\x9f\x98\x80\r\n|550 5.1.1 \xff\xfe\tbad\r\n",
	/* BDAT without pipelining, the chunk refused; deferred and eager */
	"A@@@220 mx\r\n|250-mx\r\n250 CHUNKING\r\n|250 ok\r\n|250 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|554 5.6.0 bad chunk\r\n|250 reset\r\n"
	"|221 bye\r\n",
	"RaA@220 mx\r\n|250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
	"|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|550 no\r\n|250 ok\r\n|221 bye\r\n",
	/* a big message, a refusing first target, abort at the end */
	"`H@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n|250 ok\r\n|221 bye\r\n",
	"@P@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n|250 ok\r\n",
	/* the message variants, the injection, the null sender, logging */
	"BGO@220 mx\r\n|250-mx\r\n250 DSN\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|250 ok\r\n|354 go\r\n|250 ok\r\n|221 bye\r\n",
	"@EV@220 mx\r\n|250-mx\r\n250 PIPELINING\r\n|250 ok\r\n|250 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|354 go\r\n|250 ok\r\n|221 bye\r\n",
	/* a reply before the end of the data that refuses; QUIT stalls */
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n552 5.3.4 too big\r\n|221 bye\r\n",
	"@@@@220 mx\r\n|250 mx\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n"
	"|354 go\r\n|250 ok\r\n|%",
	/* BDAT with a head; an ORCPT without a type, with DSN */
	"AA@@220 mx\r\n|250-mx\r\n250 CHUNKING\r\n|250 ok\r\n|250 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|250 ok\r\n|221 bye\r\n",
	"@@`@220 mx\r\n|250-mx\r\n250 DSN\r\n|250 ok\r\n|250 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|354 go\r\n|250 ok\r\n|221 bye\r\n",
	/* STARTTLS (the handshake fails), refused, not offered, injected */
	"@@@A220 mx\r\n|250-mx\r\n250 STARTTLS\r\n|220 2.0.0 go ahead\r\n"
	"|garbage, not TLS\r\n|220 again\r\n|250-mx\r\n250 STARTTLS\r\n"
	"|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|354 go\r\n|250 ok\r\n",
	"@@@A220 mx\r\n|250-mx\r\n250 STARTTLS\r\n|454 4.7.0 no TLS\r\n"
	"|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|354 go\r\n|250 ok\r\n",
	"@@@B220 mx\r\n|250 mx\r\n|220 mx2\r\n|250-mx2\r\n250 STARTTLS\r\n"
	"|220 go\r\n",
	"@@@C220 mx\r\n|250-mx\r\n250 STARTTLS\r\n|220 go\r\n250 injected\r\n"
	"|220 mx2\r\n|250 mx2\r\n",
	/* AUTH PLAIN, LOGIN, refused, an extra challenge, not over TLS */
	"@@@D220 mx\r\n|250-mx\r\n250 AUTH PLAIN LOGIN\r\n|235 2.7.0 ok\r\n"
	"|250 ok\r\n|250 ok\r\n|250 ok\r\n|250 ok\r\n|354 go\r\n|250 ok\r\n",
	"@@@D220 mx\r\n|250-mx\r\n250 AUTH LOGIN\r\n|334 VXNlcm5hbWU6\r\n"
	"|334 UGFzc3dvcmQ6\r\n|235 ok\r\n|250 ok\r\n",
	"@@@D220 mx\r\n|250-mx\r\n250 AUTH=PLAIN\r\n|535 5.7.8 bad\r\n",
	"@@@D220 mx\r\n|250-mx\r\n250 AUTH PLAIN\r\n|334 \r\n"
	"|501 5.7.0 cancelled\r\n",
	"@@@E220 mx\r\n|250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n"
	"|454 4.7.0 no TLS\r\n|220 mx2\r\n|250-mx\r\n250 AUTH PLAIN\r\n",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

/* The messages (head, body): CRLF lines, not dot-stuffed. */
static const char *const messages[8][2] = {
	{ "", "Subject: hi\r\n\r\nhello\r\n" },
	{ "DKIM-Signature: v=1; a=rsa-sha256; d=x\r\n",
	    "Subject: dots\r\n\r\n.leading dot\r\n.\r\n..\r\nend\r\n" },
	{ "", "Subject: x\r\n\r\nno line end at the end" },
	{ "", "Subject: x\r\n\r\nends in CR\r" },
	{ "", "" },
	{ "", "Subject: y\r\n\r\na\n.b\n.\r\nc\r\n" },
	{ "", "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n\xe2\x82\xac 5\r\n" },
	{ "Subject: z\r\n\r\nbody in the head\r\n.\r\n", "" },
};

enum srv_mode { SM_CMD, SM_DATA, SM_CHUNK, SM_TLS };

/* The fake server's side of one connection. */
struct srv {
	struct bufferevent *bev;
	enum srv_mode mode;
	bool sync;	 /* each line so far got one well-formed reply */
	bool stalled;	 /* never answers again */
	bool closing;	 /* hangs up when its output has left */
	bool data_check; /* in sync when the data began: check it */
	int mail_code;	 /* reply to the last MAIL */
	size_t rcpt_ok;	 /* 2xx replies to RCPT since */
	uint64_t chunk_left;
	struct buf data; /* message data received, unstuffed */
};

static struct {
	struct event_base *base;
	struct event *accept_ev, *deadline_ev, *defer_ev;
	struct srv srv;
	const uint8_t *in;
	size_t inlen, pos; /* the segments not sent yet: in[pos..] */
	bool segs_left;
	unsigned long progress;
	size_t ends; /* complete message data received */
	bool deadline_hit;

	unsigned opts;
	struct smtpc *c;
	struct smtpc_txn txn[2];
	struct smtpc_rcpt rcpts[2][3];
	size_t ntxn, sent, done, ok_txns;
	int open_txn; /* sent, on_done not yet; -1 */
	bool in_api, closed, aborted, quit_called, ready_seen, defer_due;
	struct buf msg; /* head + body as it must arrive */
	const char *head, *body;
	size_t headlen, bodylen;
} fz;

static int refused_port, listen_fd = -1, listen_port, devnull = -1;
static bool trace;
static SSL_CTX *ssl_ctx;
static char *big_body; /* O_BIG */

/* What the inputs reached (FUZZ_SMTPC_STATS). */
static struct {
	unsigned long inputs, conns, ready, done, delivered, ends, clean;
} stats;

static void
stats_print(void)
{
	fprintf(stderr,
	    "fuzz_smtpc: %lu inputs, %lu connections, %lu ready, %lu "
	    "transactions done, %lu with a delivery, %lu message data "
	    "received, %lu clean QUITs\n",
	    stats.inputs, stats.conns, stats.ready, stats.done, stats.delivered,
	    stats.ends, stats.clean);
}

static void srv_free(void);

/* ---- the server ---- */

/*
 * well_formed - whether p..p+n is exactly one complete reply as smtpc
 * reads it (lines ending in LF or CRLF, the same code on every line,
 * "-" on all but the last, at most 100 lines of 4096 octets); its code.
 */
static bool
well_formed(const char *p, size_t n, int *code_r)
{
	size_t lines = 0;
	int code = -1;

	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t l, used;
		int c;

		if (nl == NULL)
			return false;
		used = (size_t)(nl - p) + 1;
		l = used - 1;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l > 4096 || l < 3 || p[0] < '2' || p[0] > '5' ||
		    p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
		    (l > 3 && p[3] != ' ' && p[3] != '-'))
			return false;
		c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if ((code >= 0 && c != code) || ++lines > 100)
			return false;
		code = c;
		if (l == 3 || p[3] == ' ') {
			*code_r = code;
			return n == used;
		}
		p += used;
		n -= used;
	}
	return false;
}

/* srv_close_cb - the output has left: hang up now */
static void
srv_close_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (bev == fz.srv.bev)
		srv_free();
}

/* srv_hangup - close once what was sent has left */
static void
srv_hangup(void)
{
	struct srv *s = &fz.srv;

	s->closing = true;
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		srv_free();
		return;
	}
	bufferevent_setcb(s->bev, NULL, srv_close_cb, NULL, NULL);
	bufferevent_disable(s->bev, EV_READ);
}

/*
 * srv_answer - send the next segment (asked: as the reply to a line);
 * its code when it is one well-formed reply, else -1; *first is its
 * first byte (or NUL).  No segment left: hang up.
 */
static int
srv_answer(bool asked, char *first)
{
	struct srv *s = &fz.srv;
	const char *p = (const char *)fz.in + fz.pos, *end;
	struct buf out = BUF_INIT;
	size_t n, reps = 1;
	bool hangup = false;
	int code = -1;

	*first = '\0';
	if (s->stalled || s->closing)
		return -1;
	if (!fz.segs_left) {
		s->sync = false;
		srv_hangup();
		return -1;
	}
	end = memchr(p, '|', fz.inlen - fz.pos);
	n = end ? (size_t)(end - p) : fz.inlen - fz.pos;
	fz.pos += n + 1;
	fz.segs_left = end != NULL;
	if (n > 0 && p[0] == '!') {
		hangup = true;
		p++, n--;
	} else if (n > 0 && p[0] == '%') {
		s->stalled = true;
		p++, n--;
	} else if (n > 1 && p[0] == '*') {
		reps = (size_t)1 << (p[1] & 15);
		p += 2, n -= 2;
	}
	for (size_t i = 0; i < reps && out.len + n <= SEGMENT_OUT_MAX; i++)
		buf_append(&out, p, n);
	if (!asked || !well_formed(out.data, out.len, &code))
		s->sync = false;
	*first = out.len > 0 ? out.data[0] : '\0';
	if (trace)
		fprintf(stderr, "S: %.*s%s\n",
		    (int)(out.len > 300 ? 300 : out.len),
		    out.data ? out.data : "", hangup ? " [hang up]" : "");
	if (out.len > 0)
		bufferevent_write(s->bev, out.data, out.len);
	buf_free(&out);
	if (hangup)
		srv_hangup();
	return s->sync ? code : -1;
}

/* msg_equal - whether the data received is the message */
static bool
msg_equal(const struct buf *b)
{
	return b->len == fz.msg.len &&
	    (b->len == 0 || memcmp(b->data, fz.msg.data, b->len) == 0);
}

/* srv_mail - a MAIL line: its parameters against the transaction */
static void
srv_mail(const char *cmd)
{
	const char *size = strstr(cmd, " SIZE=");
	bool eightbit = fz.opts & O_EIGHTBIT, utf8 = fz.opts & O_SMTPUTF8;

	if (size != NULL)
		CHECK(strtoull(size + 6, NULL, 10) == fz.msg.len);
	CHECK((strstr(cmd, " BODY=8BITMIME") != NULL) == eightbit);
	CHECK((strstr(cmd, " SMTPUTF8") != NULL) == utf8);
	CHECK(strchr(cmd, '\r') == NULL);
}

/* srv_command - one command line (with its line end) */
static void
srv_command(const char *line, size_t len)
{
	struct srv *s = &fz.srv;
	char cmd[1024];
	char first;
	int code;

	if (s->sync)
		CHECK(len >= 2 && line[len - 2] == '\r');
	if (trace)
		fprintf(stderr, "C: %.*s", (int)len, line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	snprintf(cmd, sizeof(cmd), "%.*s", (int)len, line);
	if (strncmp(cmd, "STARTTLS", 8) == 0)
		CHECK(fz.opts & O_TLS);
	if (strncmp(cmd, "AUTH", 4) == 0) /* never in plaintext with TLS */
		CHECK((fz.opts & O_AUTH) && !(fz.opts & O_TLS));
	if (s->sync)
		CHECK(strncmp(cmd, "EHLO ", 5) == 0 ||
		    strncmp(cmd, "HELO ", 5) == 0 ||
		    strncmp(cmd, "MAIL FROM:<", 11) == 0 ||
		    strncmp(cmd, "RCPT TO:<", 9) == 0 ||
		    strcmp(cmd, "DATA") == 0 || strncmp(cmd, "BDAT ", 5) == 0 ||
		    strcmp(cmd, "RSET") == 0 || strcmp(cmd, "QUIT") == 0 ||
		    strcmp(cmd, "STARTTLS") == 0 ||
		    strncmp(cmd, "AUTH ", 5) == 0);
	if (strcmp(cmd, ".") == 0)
		fz.ends++; /* the end of data the server did not expect */
	if (strncmp(cmd, "BDAT ", 5) == 0) {
		char *end;

		s->chunk_left = strtoull(cmd + 5, &end, 10);
		CHECK(s->chunk_left == fz.msg.len && strcmp(end, " LAST") == 0);
		s->mode = SM_CHUNK;
		buf_reset(&s->data);
		return; /* the reply follows the chunk */
	}
	if (strncmp(cmd, "MAIL FROM:<", 11) == 0)
		srv_mail(cmd);
	code = srv_answer(true, &first);
	if (s->bev == NULL)
		return; /* hung up */
	if (strcmp(cmd, "STARTTLS") == 0 || strncmp(cmd, "AUTH ", 5) == 0)
		s->sync = false; /* TLS records or SASL lines follow */
	if (strncmp(cmd, "MAIL FROM:<", 11) == 0) {
		s->mail_code = code;
		s->rcpt_ok = 0;
	} else if (strncmp(cmd, "RCPT TO:<", 9) == 0 && code >= 200 &&
	    code < 300) {
		s->rcpt_ok++;
	} else if (strcmp(cmd, "STARTTLS") == 0 && first == '2') {
		s->mode = SM_TLS; /* a ClientHello: swallowed */
	} else if (strcmp(cmd, "DATA") == 0 && first == '3') {
		s->mode = SM_DATA;
		s->data_check = s->sync;
		buf_reset(&s->data);
	}
}

/* srv_data_line - one line of message data (with its line end) */
static void
srv_data_line(const char *line, size_t len)
{
	struct srv *s = &fz.srv;
	char first;

	if (len == 3 && memcmp(line, ".\r\n", 3) == 0) {
		bool accepted =
		    s->mail_code >= 200 && s->mail_code < 300 && s->rcpt_ok > 0;

		fz.ends++;
		if (s->data_check)
			CHECK(
			    accepted ? msg_equal(&s->data) : s->data.len == 0);
		s->mode = SM_CMD;
		srv_answer(true, &first);
		return;
	}
	if (line[0] == '.') {
		if (s->data_check)
			CHECK(len > 1 && line[1] == '.'); /* stuffed */
		line++, len--;
	}
	buf_append(&s->data, line, len);
}

/* srv_chunk - BDAT data; at its end, the reply */
static void
srv_chunk(struct evbuffer *in)
{
	struct srv *s = &fz.srv;
	size_t n = evbuffer_get_length(in);
	char first;

	if (n > s->chunk_left)
		n = (size_t)s->chunk_left;
	if (n > 0) {
		buf_reserve(&s->data, n);
		evbuffer_remove(in, s->data.data + s->data.len, n);
		s->data.len += n;
		s->chunk_left -= n;
	}
	if (s->chunk_left > 0)
		return;
	CHECK(msg_equal(&s->data)); /* BDAT data is never transformed */
	fz.ends++;
	s->mode = SM_CMD;
	srv_answer(true, &first);
}

/* srv_input - act on what has been received */
static void
srv_input(struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	while (fz.srv.bev == bev) {
		struct evbuffer_ptr eol;
		size_t len;
		char *line;

		if (fz.srv.mode == SM_TLS) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		if (fz.srv.mode == SM_CHUNK) {
			srv_chunk(in);
			if (fz.srv.bev == bev && fz.srv.mode == SM_CHUNK)
				return;
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos < 0)
			return;
		len = (size_t)eol.pos + 1;
		line = malloc(len + 1);
		CHECK(line != NULL);
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		if (fz.srv.mode == SM_DATA)
			srv_data_line(line, len);
		else
			srv_command(line, len);
		free(line);
	}
}

static void
srv_read_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	fz.progress++;
	srv_input(bev);
}

static void
srv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	(void)what;
	fz.progress++;
	if (bev == fz.srv.bev)
		srv_free();
}

static void
srv_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)arg;
	fz.progress++;
}

/*
 * srv_free - hang up.  What the client managed to send is read first,
 * so that data it finished writing counts (invariant 3) and no reply
 * goes out meanwhile (closing).
 */
static void
srv_free(void)
{
	struct srv *s = &fz.srv;
	struct bufferevent *bev = s->bev;

	if (bev == NULL)
		return;
	s->closing = true;
	while (evbuffer_read(bufferevent_get_input(bev), bufferevent_getfd(bev),
		   65536) > 0)
		;
	srv_input(bev);
	bufferevent_free(bev);
	buf_free(&s->data);
	memset(s, 0, sizeof(*s));
	fz.progress++;
}

/* accept_cb - a client connects: the greeting is the next segment */
static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	int fd;

	(void)what;
	(void)arg;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
	    0) {
		struct srv *s = &fz.srv;
		char first;

		fz.progress++;
		stats.conns++;
		srv_free(); /* the client gave up on it: no message there */
		buf_free(&s->data);
		memset(s, 0, sizeof(*s));
		s->bev =
		    bufferevent_socket_new(fz.base, fd, BEV_OPT_CLOSE_ON_FREE);
		CHECK(s->bev != NULL);
		bufferevent_setcb(
		    s->bev, srv_read_cb, srv_write_cb, srv_event_cb, NULL);
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		s->sync = true;
		s->mail_code = -1;
		srv_answer(true, &first);
	}
}

/* srv_idle - the loop is quiet and the client waits: the next segment */
static void
srv_idle(void)
{
	char first;

	fz.srv.sync = false;
	fz.srv.mode = SM_CMD;
	srv_answer(false, &first);
}

/* ---- the client ---- */

/* check_result - invariant 2 for one result */
static void
check_result(const struct smtpc_result *r)
{
	size_t n = strnlen(r->text, sizeof(r->text));

	CHECK(n < sizeof(r->text));
	CHECK(strnlen(r->enh, sizeof(r->enh)) < sizeof(r->enh));
	CHECK(r->code == 0 || (r->code >= 200 && r->code <= 599));
	if (r->code == 0)
		CHECK(r->local && n > 0);
	for (size_t i = 0; i < n; i++)
		CHECK((unsigned char)r->text[i] >= 32 && r->text[i] != 127);
	if (r->enh[0] != '\0')
		CHECK(r->enh[0] == '0' + r->code / 100 && r->enh[1] == '.');
}

/* api - note that an smtpc_* call is on the stack (invariant 1) */
#define api(call)                                                              \
	do {                                                                   \
		fz.in_api = true;                                              \
		call;                                                          \
		fz.in_api = false;                                             \
	} while (0)

/* next_step - the next transaction, or the end of the connection */
static void
next_step(void)
{
	if (fz.sent < fz.ntxn) {
		fz.open_txn = (int)fz.sent;
		api(smtpc_send(fz.c, &fz.txn[fz.sent++]));
	} else if (fz.opts & O_ABORT) {
		fz.aborted = true;
		api(smtpc_abort(fz.c));
	} else {
		fz.quit_called = true;
		api(smtpc_quit(fz.c));
	}
}

static void
cb_enter(struct smtpc *c)
{
	CHECK(!fz.in_api && !fz.closed && !fz.aborted && c == fz.c);
	fz.progress++;
}

static void
on_ready(void *arg, struct smtpc *c)
{
	(void)arg;
	cb_enter(c);
	CHECK(fz.open_txn < 0 && !fz.quit_called && !fz.defer_due);
	if (!fz.ready_seen)
		stats.ready++;
	fz.ready_seen = true;
	if (fz.opts & O_DEFER) {
		fz.defer_due = true;
		event_active(fz.defer_ev, EV_TIMEOUT, 1);
		return;
	}
	next_step();
}

static void
on_done(void *arg, struct smtpc *c, struct smtpc_txn *txn)
{
	bool ok = false;

	(void)arg;
	cb_enter(c);
	CHECK(fz.open_txn >= 0 && txn == &fz.txn[fz.open_txn]);
	fz.open_txn = -1;
	fz.done++;
	check_result(&txn->mail_result);
	for (size_t i = 0; i < txn->nrcpts; i++) {
		const struct smtpc_result *r = &txn->rcpts[i].result;

		check_result(r);
		ok = ok || (r->code >= 200 && r->code < 300);
	}
	if (ok)
		fz.ok_txns++;
	if ((fz.opts & O_EAGER) && !fz.quit_called)
		next_step();
}

static void
on_close(void *arg, struct smtpc *c, const struct smtpc_result *error)
{
	(void)arg;
	cb_enter(c);
	CHECK(fz.open_txn < 0 && fz.done == fz.sent);
	CHECK(error != NULL || fz.quit_called);
	if (error != NULL) {
		check_result(error);
		CHECK(error->text[0] != '\0');
		if (fz.ready_seen)
			CHECK(error->code == 0);
	}
	if (error == NULL)
		stats.clean++;
	fz.closed = true;
	fz.c = NULL;
}

static const struct smtpc_callbacks callbacks = { on_ready, on_done, on_close };

/* defer_cb - O_DEFER: act on on_ready from outside the callback */
static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fz.progress++;
	fz.defer_due = false;
	if (!fz.closed && !fz.aborted)
		next_step();
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fz.deadline_hit = true;
	fz.progress++;
}

/* ---- one input ---- */

/* listen_local - the listening socket on 127.0.0.1; its port */
static int
listen_local(int *port_r)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(listen(fd, 16) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

/* listen_drain - close connections a previous input left unaccepted */
static void
listen_drain(void)
{
	int fd;

	while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
}

static void
init_once(void)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char err[256];
	int fd;

	signal(SIGPIPE, SIG_IGN);
	CHECK(sodium_init() >= 0);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK(devnull >= 0);
	trace = getenv("FUZZ_SMTPC_TRACE") != NULL;
	if (getenv("FUZZ_SMTPC_STATS") != NULL)
		atexit(stats_print);
	/* Bound and never listening: connecting to it is refused. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	refused_port = ntohs(sin.sin_port);
	listen_fd = listen_local(&listen_port);
	ssl_ctx = smtpc_ssl_ctx_new("", err, sizeof(err));
	CHECK(ssl_ctx != NULL);
	big_body = malloc(BIG_LEN + 1);
	CHECK(big_body != NULL);
	for (size_t i = 0; i < BIG_LEN; i++) {
		size_t col = i % 78;

		big_body[i] = col == 76	     ? '\r'
		    : col == 77		     ? '\n'
		    : col == 0 && i % 7 == 0 ? '.'
					     : (char)('a' + i % 26);
	}
	big_body[BIG_LEN] = '\0';
}

static void
target_set(struct smtpc_target *t, const char *host, int port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

	memset(t, 0, sizeof(*t));
	t->host = host;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons((uint16_t)port);
	t->addrlen = sizeof(*sin);
}

/* setup_txns - the transactions and the message, from the options */
static void
setup_txns(void)
{
	static const char *const addrs[2][3] = {
		{ "a@rcpt.example", "b@rcpt.example", "c+tag@rcpt.example" },
		{ "d@rcpt.example", "e@rcpt.example\r\nRSET",
		    "f@rcpt.example" },
	};
	static const unsigned notify[3] = {
		SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
		SMTP_NOTIFY_NEVER,
		SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE,
	};
	static const char *const orcpt[3] = {
		"rfc822;a@rcpt.example",
		NULL,
		"utf-8;C+t\xc3\xa9=g@orig.example",
	};
	unsigned m = (fz.opts & O_MSG_MASK) >> 6;

	fz.head = messages[m][0];
	fz.body = fz.opts & O_BIG ? big_body : messages[m][1];
	fz.headlen = strlen(fz.head);
	fz.bodylen = strlen(fz.body);
	buf_append(&fz.msg, fz.head, fz.headlen);
	buf_append(&fz.msg, fz.body, fz.bodylen);
	/* smtpc.h: the message is sent so that it ends with CRLF */
	if (fz.msg.len > 0 && fz.msg.data[fz.msg.len - 1] == '\r')
		buf_puts(&fz.msg, "\n");
	else if (fz.msg.len > 0 &&
	    !(fz.msg.len >= 2 && fz.msg.data[fz.msg.len - 1] == '\n' &&
		fz.msg.data[fz.msg.len - 2] == '\r'))
		buf_puts(&fz.msg, "\r\n");
	fz.ntxn = fz.opts & O_TWO_TXNS ? 2 : 1;
	for (size_t t = 0; t < 2; t++) {
		struct smtpc_txn *x = &fz.txn[t];

		for (size_t i = 0; i < 3; i++) {
			fz.rcpts[t][i].addr = addrs[t][i];
			fz.rcpts[t][i].notify = notify[i];
			fz.rcpts[t][i].orcpt = orcpt[i];
		}
		if (t == 1 && !(fz.opts & O_INJECT))
			fz.rcpts[t][1].addr = "e@rcpt.example";
		if (fz.opts & O_ORCPT_BARE)
			fz.rcpts[t][0].orcpt = "a+b=c@orig.example";
		x->sender = fz.opts & O_NULL_SENDER ? "" : "s@sender.example";
		x->ret = fz.opts & O_RET_FULL ? SMTP_RET_FULL : SMTP_RET_HDRS;
		x->envid = fz.opts & O_NO_ENVID ? NULL : "QQ+31=4 \x01\xc3\xa9";
		x->eightbit = fz.opts & O_EIGHTBIT;
		x->smtputf8 = fz.opts & O_SMTPUTF8;
		x->rcpts = fz.rcpts[t];
		x->nrcpts = t == 0 ? 3 : 2;
		x->head = fz.head;
		x->headlen = fz.headlen;
		x->body = fz.body;
		x->bodylen = fz.bodylen;
	}
}

/* run_loop - until the client and the server are done (invariant 5) */
static void
run_loop(void)
{
	unsigned long passes = 0;
	int idle = 0;

	for (;;) {
		unsigned long before = fz.progress;

		if (++passes > PASSES_MAX || fz.deadline_hit) {
			fprintf(stderr, "fuzz_smtpc: the loop did not end\n");
			abort();
		}
		event_base_loop(fz.base, EVLOOP_NONBLOCK);
		if (fz.progress != before) {
			idle = 0;
			continue;
		}
		if (++idle < IDLE_PASSES)
			continue;
		idle = 0;
		if ((fz.closed || fz.aborted) && fz.srv.bev == NULL)
			break;
		if (fz.srv.bev != NULL && !fz.srv.stalled && !fz.srv.closing &&
		    evbuffer_get_length(bufferevent_get_output(fz.srv.bev)) ==
			0) {
			srv_idle();
			continue;
		}
		/* Waiting on a timer or the peer: block until something. */
		event_base_loop(fz.base, EVLOOP_ONCE);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	struct smtpc_config cfg = {
		.helo_name = "client.fuzz.example",
		.tls = SMTPC_TLS_NONE,
		.connect_timeout = TIMEOUT_MS,
		.greeting_timeout = TIMEOUT_MS,
		.command_timeout = TIMEOUT_MS,
		.data_timeout = TIMEOUT_MS,
	};
	struct smtpc_target targets[3];
	struct timeval deadline = { DEADLINE_MS / 1000,
		(DEADLINE_MS % 1000) * 1000 };
	size_t nt = 0;
	int base_events;

	if (size > INPUT_MAX)
		return 0;
	if (!inited) {
		init_once();
		inited = true;
	}
	memset(&fz, 0, sizeof(fz));
	for (size_t i = 0; i < 4; i++)
		fz.opts |= (i < size ? data[i] & 63u : 0) << (6 * i);
	fz.in = data;
	fz.inlen = size;
	fz.pos = size < 4 ? size : 4;
	fz.segs_left = true;
	fz.open_txn = -1;
	if (trace)
		log_init(LOG_DEBUG, 2);
	else
		log_init(
		    fz.opts & O_DEBUG_LOG ? LOG_DEBUG : LOG_FATAL, devnull);
	setup_txns();
	cfg.use_chunking = fz.opts & O_CHUNKING;
	if (fz.opts & O_TLS) {
		static const enum smtpc_tls policy[4] = { SMTPC_TLS_NONE,
			SMTPC_TLS_MAY, SMTPC_TLS_ENCRYPT, SMTPC_TLS_VERIFY };

		cfg.tls = policy[(fz.opts & O_TLS) >> 18];
		cfg.ssl_ctx = ssl_ctx;
	}
	if (fz.opts & O_AUTH) {
		cfg.auth_user = "fuzz@sender.example";
		cfg.auth_password = "pw";
	}

	fz.base = event_base_new();
	CHECK(fz.base != NULL);
	base_events =
	    event_base_get_num_events(fz.base, EVENT_BASE_COUNT_ADDED);
	listen_drain();
	fz.accept_ev = event_new(
	    fz.base, listen_fd, EV_READ | EV_PERSIST, accept_cb, NULL);
	fz.deadline_ev = evtimer_new(fz.base, deadline_cb, NULL);
	fz.defer_ev = event_new(fz.base, -1, 0, defer_cb, NULL);
	CHECK(fz.accept_ev && fz.deadline_ev && fz.defer_ev);
	event_add(fz.accept_ev, NULL);
	evtimer_add(fz.deadline_ev, &deadline);

	if (fz.opts & O_REFUSED)
		target_set(
		    &targets[nt++], "refused.fuzz.example", refused_port);
	target_set(&targets[nt++], "mx1.fuzz.example", listen_port);
	target_set(&targets[nt++], "mx2.fuzz.example", listen_port);
	api(fz.c = smtpc_connect(fz.base, &cfg, targets, nt, &callbacks, NULL));
	CHECK(fz.c != NULL);

	run_loop();

	stats.inputs++;
	stats.ends += fz.ends;
	stats.delivered += fz.ok_txns;
	stats.done += fz.done;
	CHECK(fz.closed != fz.aborted); /* on_close once, unless aborted */
	CHECK(fz.done == fz.sent && fz.ok_txns <= fz.ends);
	event_free(fz.accept_ev);
	event_free(fz.deadline_ev);
	event_free(fz.defer_ev);
	CHECK(event_base_get_num_events(fz.base, EVENT_BASE_COUNT_ADDED) ==
	    base_events);
	CHECK(event_base_get_num_events(fz.base, EVENT_BASE_COUNT_ACTIVE) == 0);
	event_base_free(fz.base);
	buf_free(&fz.msg);
	return 0;
}
