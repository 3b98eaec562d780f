/*
 * mta.c - the delivery engine: queue, scheduler, workers, message log.
 *
 * Design notes.
 *
 *  1. Everything in the queue belongs to the engine thread.  Workers get
 *     a struct work with copies of what they need and hand it back
 *     through a done list (mutex + event_active); the log writer gets
 *     copies of events.  No queue structure is touched off the loop.
 *
 *  2. In memory a recipient is a struct qrcpt (about 48 bytes); its
 *     address lives in one string block per message (struct qmsg), so a
 *     large queue costs little more than its addresses.  Message bodies
 *     are never kept: a worker reads the spool file for each attempt.
 *
 *  3. A recipient's state:
 *
 *       READY ---take---> ACTIVE ---2xx---> DONE (delivered)
 *         ^                 |  \---5xx---> BOUNCING --DSN queued--> DONE
 *         |                 \---4xx---> DEFERRED (in the retry heap)
 *         +----due/flush/retry-------------/
 *       READY/DEFERRED --hold--> HELD --release--> READY
 *       READY/DEFERRED/HELD --delete--> DONE (deleted)
 *
 *     A READY recipient waits either on its domain (until the domain's
 *     route is resolved) or on its route, in its account's queue.
 *
 *  4. A domain resolves to a route: the relay host of its destinations
 *     line, else mta.relayhost, else its MX hosts.  Domains with the same
 *     MX host names (and TLS policy) share one route, so they share
 *     connections and limits; the route takes its limits from the first
 *     of its domains that needed it.  A route has a concurrency limit that
 * starts at initial_concurrency, grows by one per successful transaction up to
 *     concurrency and shrinks on failed connections; when a route has no
 *     connection left and the last one failed, it is dead until its next
 *     retry time: its recipients are deferred without trying, so a dead
 *     destination costs no connection attempts and does not slow the
 *     others.
 *
 *  5. Fairness: a route keeps one queue per account and takes from them
 *     in turn; an account with mta.account_concurrency deliveries in
 *     flight is skipped.
 *
 *  6. At-least-once: a recipient becomes DONE only when delivered, when
 *     its DSN was committed to the spool (or none was wanted), when it
 *     expired the same way, or when an operator deleted it.  The message
 *     log is the record of final states: at start, every spool file is
 *     loaded and its recipients' last logged state restored.  A spool
 *     file is removed by the log writer only after the events that
 *     finished it are written.  A crash between a delivery and its event
 *     delivers that recipient again (counted in tests); sending pauses
 *     while more than LOG_BACKLOG_MAX events wait to be written, which
 *     bounds those repeats.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "mail/dkim.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/header.h"
#include "mail/smtp_cmd.h"
#include "mta/control.h"
#include "mta/dest.h"
#include "mta/dns.h"
#include "mta/mta.h"
#include "mta/smtpc.h"
#include "store/store.h"

#define HASH_SIZE 65536 /* buckets of the message id table */
#define LOG_BATCH_MAX 4096
#define LIST_CHUNK 262144  /* bytes of a `queue list` answer per part */
#define LOG_BACKLOG_MAX 64 /* unwritten deliveries before sending pauses */
#define TICK_MS 100	   /* the retry timer */
#define TICK_MAX 10000	   /* recipients made ready per tick at most */

enum where { W_NONE, W_DOMAIN, W_ROUTE };

enum rstate {
	R_READY,
	R_ACTIVE,
	R_DEFERRED,
	R_HELD,
	R_BOUNCING,
	R_DONE,
};

static const char *const rstate_names[] = { "queued", "delivering", "deferred",
	"held", "bouncing", "done" };

struct qmsg;
struct domain;
struct route;

struct qrcpt {
	struct qmsg *msg;
	struct domain *dom;
	TAILQ_ENTRY(qrcpt) link; /* domain's waiting list or account queue */
	uint32_t next_try;	 /* unix seconds, when DEFERRED */
	uint32_t heap_idx;
	uint32_t addr_off; /* in msg->strs */
	uint16_t attempts;
	uint8_t state;
	uint8_t notify;
	uint8_t where; /* enum where: the list link is on */
	uint8_t first; /* first of its message's run in an account queue */
};
TAILQ_HEAD(qrcpt_list, qrcpt);

struct qmsg {
	struct qmsg *hnext;
	char id[QUEUE_ID_LEN + 1];
	bool warned; /* a delay DSN was sent */
	int64_t account_id;
	int64_t received_at;
	uint32_t nrcpts, npending;
	char *strs; /* sender '\0' rcpt '\0' rcpt ... */
	struct qrcpt rcpts[];
};

struct acctq {
	int64_t account_id;
	struct qrcpt_list q;
	struct acctq *next; /* ring of the route's accounts */
};

struct conn;
LIST_HEAD(conn_list, conn);

struct route {
	struct route *hnext;
	char *key;
	char *name; /* for logs: "mx1.example.com" or "relay host:port" */
	struct dest_policy pol;
	struct smtpc_target *targets;
	size_t ntargets;
	char **target_names;
	int64_t limit, active;
	int64_t connecting;  /* connections not ready yet */
	bool smarthost;	     /* mta.relayhost: AUTH with its credentials */
	uint32_t dead_until; /* unix seconds */
	char dead_reason[SMTPC_REPLY_MAX + 32];
	double tokens;
	uint64_t tokens_at;
	struct acctq *ring; /* current account queue */
	size_t nready;
	size_t njobs; /* runs of one message's recipients: transactions */
	struct event *pump_ev, *rate_ev;
	struct conn_list conns;
	struct mta *m;
};

struct domain {
	struct domain *hnext;
	char *name;
	const struct dest_policy *pol;
	struct route *route;
	int64_t route_expires; /* unix seconds */
	struct dns_query *q;
	struct qrcpt_list waiting;
	struct mta *m;
};

struct job;

struct conn {
	LIST_ENTRY(conn) link;
	struct route *rt;
	struct smtpc *c;
	struct job *job;
	int64_t msgs;
	bool ready_once;
	bool idle;	       /* parked, waiting for work */
	struct event *idle_ev; /* closes it when nothing came */
};

struct acct {
	struct acct *hnext;
	int64_t id;
	int64_t inflight;
};

/* ---- work handed to worker threads ---- */

enum work_kind { W_SCAN, W_LOAD, W_PREPARE, W_DSN };

struct work {
	enum work_kind kind;
	struct work *next;
	char id[QUEUE_ID_LEN + 1];
	/* W_SCAN, W_LOAD: messages loaded */
	struct qmsg **msgs;
	size_t nmsgs, cap;
	bool scan_done;
	/* W_PREPARE */
	struct job *job;
	/* W_DSN */
	struct qmsg *msg;
	struct qrcpt **rcpts;
	struct dsn_rcpt *dr;
	size_t n;
	int action; /* enum dsn_action */
	char **strs;
	size_t nstrs;
	char dsn_id[QUEUE_ID_LEN + 1];
	int error;
	char err[512];
};

struct job {
	struct conn *conn;
	struct qmsg *msg;
	struct qrcpt **rcpts;
	size_t n;
	struct envelope env;
	char *data;
	size_t len;
	off_t body_off;
	struct buf head;
	struct smtpc_rcpt *srcpts;
	struct smtpc_txn txn;
	int error;
	char err[256];
	bool signed_dkim;
	bool sent; /* handed to the client (no longer a worker's) */
};

/* ---- the message log ---- */

struct logrec {
	struct logrec *next;
	struct store_event ev;
	char reclaim[QUEUE_ID_LEN + 1]; /* "" or a finished message */
	bool delivered;			/* counted in l_delivered */
	char strs[];			/* the event's text, in one block */
};

struct mta {
	struct mta_config cfg;
	char *hostname, *helo, *data_dir, *store_url, *ctl_path;
	struct spool *spool;
	struct dest_table *dests;
	struct dest_policy defaults;
	uint64_t *schedule;
	size_t nschedule;
	SSL_CTX *ssl;
	struct smtpc_config ccfg;

	pthread_t thread;
	struct event_base *base;
	struct dns *dns;
	struct control *ctl;
	struct event *tick_ev, *intake_ev, *done_ev, *stop_ev;
	bool running, stopping;

	/* intake from the spool hook */
	pthread_mutex_t in_mu;
	char (*in_ids)[QUEUE_ID_LEN + 1];
	size_t in_n, in_cap;

	/* workers */
	pthread_t *workers;
	size_t nworkers;
	pthread_mutex_t w_mu;
	pthread_cond_t w_cv;
	struct work *w_head, **w_tail;
	struct work *d_head, **d_tail;
	bool w_stop;

	/* log writer */
	pthread_t log_thread;
	struct event *resume_ev; /* the log writer caught up */
	bool log_blocked;	 /* a connection waits for it (atomic) */
	pthread_mutex_t l_mu;
	pthread_cond_t l_cv;
	struct logrec *l_head, **l_tail;
	size_t l_n;
	size_t l_delivered; /* of which deliveries (atomic) */
	bool l_stop;

	/* the queue */
	struct qmsg **msgs; /* hash by id */
	size_t nmsgs;
	struct domain **domains;
	size_t ndomains_cap;
	struct route **routes;
	size_t nroutes_cap;
	struct acct **accts;
	struct qrcpt **heap;
	size_t nheap, heap_cap;
	int64_t nconns;
};

static void route_pump_soon(struct route *rt);
static void rcpt_ready(struct mta *m, struct qrcpt *r);
static void conn_next(struct conn *cn);

/* ---- small helpers ---- */

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

static int64_t
now_unix(void)
{
	return (int64_t)time(NULL);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
rcpt_addr(const struct qrcpt *r)
{
	return r->msg->strs + r->addr_off;
}

static size_t
rcpt_index(const struct qrcpt *r)
{
	return (size_t)(r - r->msg->rcpts);
}

/* addr_domain - the domain of local@domain, lower-cased into out */
static void
addr_domain(const char *addr, char *out, size_t outlen)
{
	const char *at = strrchr(addr, '@');

	snprintf(out, outlen, "%s", at ? at + 1 : addr);
	str_lower(out);
}

/* reply_text - "451 4.3.0 text" of a result, for logs and the message log */
static void
reply_text(const struct smtpc_result *res, char *out, size_t outlen)
{
	if (res->code == 0)
		snprintf(out, outlen, "%s", res->text);
	else if (res->enh[0])
		snprintf(
		    out, outlen, "%d %s %s", res->code, res->enh, res->text);
	else
		snprintf(out, outlen, "%d %s", res->code, res->text);
}

/* ---- the message log writer ---- */

static void
log_event(struct mta *m, const struct qrcpt *r, const char *state,
    const char *relay, const char *reply, const char *tls, int64_t next_at)
{
	const char *v[6] = { r->msg->id, rcpt_addr(r), state,
		relay ? relay : "", reply ? reply : "", tls ? tls : "" };
	size_t len[6], total = 0, off = 0;
	const char *p[6];
	struct logrec *l;

	for (int i = 0; i < 6; i++)
		total += (len[i] = strlen(v[i]) + 1);
	/* one allocation per event: a dead destination's whole queue may be
	 * deferred at once */
	l = xmalloc(sizeof(*l) + total);
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < 6; i++) {
		memcpy(l->strs + off, v[i], len[i]);
		p[i] = l->strs + off;
		off += len[i];
	}
	l->ev.account_id = r->msg->account_id;
	l->ev.queue_id = p[0];
	l->ev.rcpt_idx = (int)rcpt_index(r);
	l->ev.recipient = p[1];
	l->ev.state = p[2];
	l->ev.at = wall_ms();
	l->ev.attempt = r->attempts;
	l->ev.next_at = next_at;
	l->ev.relay = p[3];
	l->ev.reply = p[4];
	l->ev.tls = p[5];
	pthread_mutex_lock(&m->l_mu);
	*m->l_tail = l;
	m->l_tail = &l->next;
	__atomic_add_fetch(&m->l_n, 1, __ATOMIC_RELAXED);
	if ((l->delivered = strcmp(state, "delivered") == 0))
		__atomic_add_fetch(&m->l_delivered, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&m->l_cv);
	pthread_mutex_unlock(&m->l_mu);
}

/* log_reclaim - remove id's spool file once the events before are written */
static void
log_reclaim(struct mta *m, const char *id)
{
	struct logrec *l = xcalloc(1, sizeof(*l));

	memcpy(l->reclaim, id, sizeof(l->reclaim));
	pthread_mutex_lock(&m->l_mu);
	*m->l_tail = l;
	m->l_tail = &l->next;
	pthread_cond_signal(&m->l_cv);
	pthread_mutex_unlock(&m->l_mu);
}

static void
logrec_free(struct logrec *l)
{
	free(l);
}

/*
 * log_purge - once an hour, delete message log events older than
 * mta.log_retention, in slices of 10,000 so the writer never holds the
 * database long.
 */
static void
log_purge(struct mta *m, struct store **stp, int64_t *purged_at)
{
	int64_t now = wall_ms(), n = 0, total = 0;
	const char *error;

	if (m->cfg.log_retention == 0 || now - *purged_at < 3600 * 1000)
		return;
	*purged_at = now;
	if (*stp == NULL &&
	    ((*stp = store_open(m->store_url, &error)) == NULL ||
		store_set_durable(*stp, false, &error) < 0)) {
		store_close(stp);
		return;
	}
	do {
		if (store_events_purge(*stp,
			now - (int64_t)m->cfg.log_retention, 10000, &n,
			&error) < 0) {
			log_write(LOG_ERROR, "delivery",
			    "event=log-purge-failed error=\"%s\"", error);
			return;
		}
		total += n;
	} while (n == 10000 && !m->l_stop);
	if (total > 0)
		log_write(LOG_INFO, "delivery",
		    "event=log-purged events=%" PRId64, total);
}

/*
 * log_writer - write events in batches of up to LOG_BATCH_MAX in one
 * transaction; then remove the spool files of the messages they finished.
 * A failed write is retried every second: the spool files stay meanwhile.
 */
static void *
log_writer(void *arg)
{
	struct mta *m = arg;
	struct store *st = NULL;
	struct store_event *evs = xcalloc(LOG_BATCH_MAX, sizeof(*evs));
	const char *error;
	size_t since_trim = 0;
	bool drained;
	int64_t purged_at = 0;

	for (;;) {
		struct logrec *batch, *l, *next, **cut;
		size_t n = 0;

		log_purge(m, &st, &purged_at);
		pthread_mutex_lock(&m->l_mu);
		while (m->l_head == NULL && !m->l_stop) {
			struct timespec until;

			/* wake once a minute for the retention purge */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 60;
			if (pthread_cond_timedwait(
				&m->l_cv, &m->l_mu, &until) == ETIMEDOUT)
				break;
		}
		if (m->l_head == NULL && !m->l_stop) {
			pthread_mutex_unlock(&m->l_mu);
			continue;
		}
		if (m->l_head == NULL) {
			pthread_mutex_unlock(&m->l_mu);
			break;
		}
		batch = m->l_head;
		for (cut = &m->l_head; *cut && n < LOG_BATCH_MAX;
		     cut = &(*cut)->next)
			if ((*cut)->reclaim[0] == '\0')
				evs[n++] = (*cut)->ev;
		m->l_head = *cut;
		*cut = NULL;
		if (m->l_head == NULL)
			m->l_tail = &m->l_head;
		__atomic_sub_fetch(&m->l_n, n, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&m->l_mu);

		while (n > 0) {
			if (st == NULL &&
			    ((st = store_open(m->store_url, &error)) == NULL ||
				store_set_durable(st, false, &error) < 0)) {
				log_write(LOG_ERROR, "delivery",
				    "event=log-open-failed error=\"%s\"",
				    error);
				store_close(&st);
			} else if (store_events_add(st, evs, n, &error) == 0)
				break;
			else {
				log_write(LOG_ERROR, "delivery",
				    "event=log-write-failed events=%zu "
				    "error=\"%s\"",
				    n, error);
				store_close(&st);
			}
			if (m->l_stop)
				break;
			sleep(1);
		}
		for (l = batch; l; l = next) {
			next = l->next;
			if (l->reclaim[0])
				spool_remove(m->spool, l->reclaim);
			if (l->delivered)
				__atomic_sub_fetch(
				    &m->l_delivered, 1, __ATOMIC_RELAXED);
			logrec_free(l);
		}
		if (__atomic_load_n(&m->log_blocked, __ATOMIC_RELAXED) &&
		    __atomic_load_n(&m->l_delivered, __ATOMIC_RELAXED) <=
			LOG_BACKLOG_MAX / 2) {
			__atomic_store_n(
			    &m->log_blocked, false, __ATOMIC_RELAXED);
			event_active(m->resume_ev, 0, 0);
		}
		/* a burst (a dead destination's whole queue deferred at once)
		 * leaves much free heap behind: give it back once drained */
		since_trim += n;
		pthread_mutex_lock(&m->l_mu);
		drained = m->l_head == NULL;
		pthread_mutex_unlock(&m->l_mu);
		if (drained && since_trim >= 10000) {
			malloc_trim(0);
			since_trim = 0;
		}
	}
	store_close(&st);
	free(evs);
	return NULL;
}

/* ---- messages ---- */

static struct qmsg *
msg_find(struct mta *m, const char *id)
{
	struct qmsg *q;

	for (q = m->msgs[hash_str(id) % HASH_SIZE]; q; q = q->hnext)
		if (strcmp(q->id, id) == 0)
			return q;
	return NULL;
}

static void
msg_unlink(struct mta *m, struct qmsg *q)
{
	struct qmsg **pp = &m->msgs[hash_str(q->id) % HASH_SIZE];

	while (*pp && *pp != q)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = q->hnext;
	m->nmsgs--;
}

/*
 * msg_from_envelope - the in-memory form of a queued message: one
 * allocation for the struct and its recipients, one for the strings.
 */
static struct qmsg *
msg_from_envelope(const struct envelope *e)
{
	struct qmsg *q;
	size_t len = strlen(e->sender) + 1, off;

	for (size_t i = 0; i < e->nrcpts; i++)
		len += strlen(e->rcpts[i].addr) + 1;
	q = xcalloc(1, sizeof(*q) + e->nrcpts * sizeof(struct qrcpt));
	memcpy(q->id, e->id, sizeof(q->id));
	q->account_id = e->account_id;
	q->received_at = e->received_at;
	q->nrcpts = q->npending = (uint32_t)e->nrcpts;
	q->strs = xmalloc(len);
	off = strlen(e->sender) + 1;
	memcpy(q->strs, e->sender, off);
	for (size_t i = 0; i < e->nrcpts; i++) {
		size_t l = strlen(e->rcpts[i].addr) + 1;
		struct qrcpt *r = &q->rcpts[i];

		memcpy(q->strs + off, e->rcpts[i].addr, l);
		r->msg = q;
		r->addr_off = (uint32_t)off;
		r->state = R_READY;
		r->notify = (uint8_t)e->rcpts[i].notify;
		off += l;
	}
	return q;
}

static void
msg_free(struct qmsg *q)
{
	free(q->strs);
	free(q);
}

/* ---- accounts ---- */

static struct acct *
acct_get(struct mta *m, int64_t id)
{
	struct acct **b = &m->accts[(uint64_t)id % 1024], *a;

	for (a = *b; a; a = a->hnext)
		if (a->id == id)
			return a;
	a = xcalloc(1, sizeof(*a));
	a->id = id;
	a->hnext = *b;
	*b = a;
	return a;
}

/* ---- the retry heap (min-heap on next_try) ---- */

static void
heap_swap(struct mta *m, size_t a, size_t b)
{
	struct qrcpt *t = m->heap[a];

	m->heap[a] = m->heap[b];
	m->heap[b] = t;
	m->heap[a]->heap_idx = (uint32_t)a;
	m->heap[b]->heap_idx = (uint32_t)b;
}

static void
heap_up(struct mta *m, size_t i)
{
	while (i > 0 && m->heap[(i - 1) / 2]->next_try > m->heap[i]->next_try) {
		heap_swap(m, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct mta *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;

		if (l < m->nheap && m->heap[l]->next_try < m->heap[s]->next_try)
			s = l;
		if (r < m->nheap && m->heap[r]->next_try < m->heap[s]->next_try)
			s = r;
		if (s == i)
			return;
		heap_swap(m, i, s);
		i = s;
	}
}

static void
heap_push(struct mta *m, struct qrcpt *r)
{
	if (m->nheap == m->heap_cap) {
		m->heap_cap = m->heap_cap ? m->heap_cap * 2 : 1024;
		m->heap = xrealloc(m->heap, m->heap_cap * sizeof(*m->heap));
	}
	m->heap[m->nheap] = r;
	r->heap_idx = (uint32_t)m->nheap++;
	heap_up(m, r->heap_idx);
}

static void
heap_remove(struct mta *m, struct qrcpt *r)
{
	size_t i = r->heap_idx;

	assert(i < m->nheap && m->heap[i] == r);
	m->nheap--;
	if (i != m->nheap) {
		m->heap[i] = m->heap[m->nheap];
		m->heap[i]->heap_idx = (uint32_t)i;
		heap_down(m, i);
		heap_up(m, i);
	}
}

/* ---- taking a recipient out of wherever it waits ---- */

static struct acctq *
route_acctq(struct route *rt, int64_t account_id, bool create)
{
	struct acctq *a = rt->ring;

	if (a != NULL)
		do {
			if (a->account_id == account_id)
				return a;
			a = a->next;
		} while (a != rt->ring);
	if (!create)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	a->account_id = account_id;
	TAILQ_INIT(&a->q);
	if (rt->ring == NULL) {
		a->next = a;
		rt->ring = a;
	} else {
		a->next = rt->ring->next;
		rt->ring->next = a;
	}
	return a;
}

/*
 * aq_add, aq_remove - the only ways into and out of an account queue:
 * they keep the route's counts of ready recipients and of transactions
 * (runs of one message's recipients; connections are opened per
 * transaction, not per recipient).
 */
static void
aq_add(struct route *rt, struct acctq *a, struct qrcpt *r, bool head)
{
	struct qrcpt *nb =
	    head ? TAILQ_FIRST(&a->q) : TAILQ_LAST(&a->q, qrcpt_list);

	if (head) {
		if (nb && nb->msg == r->msg && nb->first) {
			nb->first = 0;
			rt->njobs--;
		}
		TAILQ_INSERT_HEAD(&a->q, r, link);
		r->first = 1;
	} else {
		TAILQ_INSERT_TAIL(&a->q, r, link);
		r->first = nb == NULL || nb->msg != r->msg;
	}
	rt->njobs += r->first;
	r->where = W_ROUTE;
	rt->nready++;
}

static void
aq_remove(struct route *rt, struct acctq *a, struct qrcpt *r)
{
	struct qrcpt *next = TAILQ_NEXT(r, link);

	if (r->first) {
		if (next && next->msg == r->msg && !next->first)
			next->first = 1;
		else
			rt->njobs--;
	}
	TAILQ_REMOVE(&a->q, r, link);
	r->first = 0;
	r->where = W_NONE;
	rt->nready--;
}

/* rcpt_detach - remove a READY or DEFERRED recipient from its list/heap */
static void
rcpt_detach(struct mta *m, struct qrcpt *r)
{
	if (r->state == R_DEFERRED) {
		heap_remove(m, r);
	} else if (r->where == W_DOMAIN) {
		TAILQ_REMOVE(&r->dom->waiting, r, link);
	} else if (r->where == W_ROUTE) {
		struct route *rt = r->dom->route;
		struct acctq *a = route_acctq(rt, r->msg->account_id, false);

		assert(a != NULL);
		aq_remove(rt, a, r);
	}
	r->where = W_NONE;
}

/* ---- final states, DSNs ---- */

static void work_submit(struct mta *m, struct work *w);

/* msg_finish - all recipients final: forget the message, reclaim its file */
static void
msg_finish(struct mta *m, struct qmsg *q)
{
	msg_unlink(m, q);
	log_reclaim(m, q->id);
	log_write(LOG_INFO, "delivery", "event=finished id=%s", q->id);
	msg_free(q);
}

static void
rcpt_final(struct mta *m, struct qrcpt *r, const char *state, const char *relay,
    const char *reply, const char *tls)
{
	struct qmsg *q = r->msg;

	r->state = R_DONE;
	log_event(m, r, state, relay, reply, tls, 0);
	if (--q->npending == 0)
		msg_finish(m, q);
}

/*
 * rcpts_fail - bounce (or expire) n recipients of one message: those
 * whose NOTIFY asks for it get a DSN, written by a worker; all become
 * DONE once it is committed (or at once when none is wanted).
 */
static void
rcpts_fail(struct mta *m, struct qrcpt **rs, const struct smtpc_result *res,
    size_t n, const char *state, const char *relay, const char *remote_host)
{
	struct qmsg *q = rs[0]->msg;
	const char *sender = q->strs;
	struct work *w = NULL;
	char reply[SMTPC_REPLY_MAX + 32];

	for (size_t i = 0; i < n; i++) {
		struct qrcpt *r = rs[i];

		reply_text(&res[i], reply, sizeof(reply));
		log_write(LOG_INFO, "delivery",
		    "event=%s id=%s rcpt=%s relay=%s attempt=%d reply=\"%s\"",
		    state, q->id, rcpt_addr(r), relay ? relay : "none",
		    r->attempts, reply);
		if (!dsn_wanted(sender, r->notify, DSN_FAILED)) {
			rcpt_final(m, r, state, relay, reply, NULL);
			continue;
		}
		if (w == NULL) {
			w = xcalloc(1, sizeof(*w));
			w->kind = W_DSN;
			w->msg = q;
			w->action = DSN_FAILED;
			w->rcpts = xcalloc(n, sizeof(*w->rcpts));
			w->dr = xcalloc(n, sizeof(*w->dr));
			w->strs = xcalloc(n * 4 + 2, sizeof(char *));
			memcpy(w->id, q->id, sizeof(w->id));
		}
		{
			struct dsn_rcpt *d = &w->dr[w->n];
			char status[16];

			r->state = R_BOUNCING;
			w->rcpts[w->n] = r;
			if (res[i].enh[0])
				snprintf(
				    status, sizeof(status), "%s", res[i].enh);
			else
				snprintf(status, sizeof(status), "%s",
				    res[i].code >= 500 || res[i].code == 0
					? "5.0.0"
					: "4.0.0");
			if (strcmp(state, "expired") == 0 && !res[i].enh[0])
				snprintf(status, sizeof(status), "4.4.7");
			d->addr = w->strs[w->nstrs++] = xstrdup(rcpt_addr(r));
			d->action = DSN_FAILED;
			d->status = w->strs[w->nstrs++] = xstrdup(status);
			d->remote_mta =
			    remote_host && res[i].code != 0 && !res[i].local
			    ? (w->strs[w->nstrs++] = xstrdup(remote_host))
			    : NULL;
			if (res[i].code != 0 && !res[i].local)
				d->diagnostic = w->strs[w->nstrs++] =
				    xstrdup(reply);
			else
				d->reason = w->strs[w->nstrs++] =
				    xstrdup(reply);
			d->last_attempt = now_unix();
			w->n++;
		}
	}
	if (w != NULL)
		work_submit(m, w);
}

/* rcpt_fail1 - rcpts_fail for one recipient with a text of Herald's own */
static void
rcpt_fail_local(struct mta *m, struct qrcpt *r, int code, const char *enh,
    const char *text, const char *state)
{
	struct smtpc_result res;

	memset(&res, 0, sizeof(res));
	res.code = code;
	snprintf(res.enh, sizeof(res.enh), "%s", enh);
	snprintf(res.text, sizeof(res.text), "%s", text);
	res.local = true;
	rcpts_fail(m, &r, &res, 1, state, NULL, NULL);
}

/*
 * rcpt_defer - a temporary failure: retry per the schedule, or expire
 * when the message has been queued for max_queue_lifetime.
 */
static void rcpt_defer_ex(struct mta *m, struct qrcpt *r, const char *relay,
    const char *reply, bool count_attempt, const struct smtpc_result *res,
    const char *remote_host);

static void
rcpt_defer(struct mta *m, struct qrcpt *r, const char *relay, const char *reply,
    bool count_attempt)
{
	rcpt_defer_ex(m, r, relay, reply, count_attempt, NULL, NULL);
}

/*
 * rcpt_defer_ex - rcpt_defer with the server's reply (res, from
 * remote_host) when one caused it, for the delay DSN's Status,
 * Remote-MTA and Diagnostic-Code.
 */
static void
rcpt_defer_ex(struct mta *m, struct qrcpt *r, const char *relay,
    const char *reply, bool count_attempt, const struct smtpc_result *res,
    const char *remote_host)
{
	int64_t now = now_unix();
	size_t step;
	uint64_t wait;

	if (count_attempt && r->attempts < UINT16_MAX)
		r->attempts++;
	if ((uint64_t)(now - r->msg->received_at) * 1000 >=
	    m->cfg.max_queue_lifetime) {
		char text[SMTPC_REPLY_MAX + 64];

		snprintf(text, sizeof(text),
		    "delivery time expired after %d attempts; last error: %s",
		    r->attempts, reply);
		rcpt_fail_local(m, r, 0, "4.4.7", text, "expired");
		return;
	}
	step = r->attempts == 0 ? 0 : (size_t)r->attempts - 1;
	if (step >= m->nschedule)
		step = m->nschedule - 1;
	wait = m->schedule[step] / 1000;
	if (wait == 0)
		wait = 1;
	r->state = R_DEFERRED;
	/* whole seconds, rounded up: never earlier than the schedule says */
	r->next_try = (uint32_t)(now + (int64_t)wait + 1);
	heap_push(m, r);
	log_write(LOG_INFO, "delivery",
	    "event=deferred id=%s rcpt=%s relay=%s attempt=%d next=%" PRIu64
	    "s reply=\"%s\"",
	    r->msg->id, rcpt_addr(r), relay ? relay : "none", r->attempts, wait,
	    reply);
	log_event(m, r, "deferred", relay, reply, NULL, r->next_try);
	if (m->cfg.delay_warning > 0 && !r->msg->warned &&
	    (uint64_t)(now - r->msg->received_at) * 1000 >=
		m->cfg.delay_warning &&
	    dsn_wanted(r->msg->strs, r->notify, DSN_DELAYED)) {
		struct work *w = xcalloc(1, sizeof(*w));

		r->msg->warned = true;
		w->kind = W_DSN;
		w->msg = NULL; /* nothing to finish */
		w->action = DSN_DELAYED;
		w->n = 1;
		w->dr = xcalloc(1, sizeof(*w->dr));
		w->strs = xcalloc(6, sizeof(char *));
		memcpy(w->id, r->msg->id, sizeof(w->id));
		w->dr[0].addr = w->strs[w->nstrs++] = xstrdup(rcpt_addr(r));
		w->dr[0].action = DSN_DELAYED;
		w->dr[0].status = w->strs[w->nstrs++] =
		    xstrdup(res && res->enh[0] == '4' ? res->enh : "4.0.0");
		if (res && res->code != 0 && !res->local) {
			w->dr[0].diagnostic = w->strs[w->nstrs++] =
			    xstrdup(reply);
			if (remote_host)
				w->dr[0].remote_mta = w->strs[w->nstrs++] =
				    xstrdup(remote_host);
		} else
			w->dr[0].reason = w->strs[w->nstrs++] = xstrdup(reply);
		w->dr[0].last_attempt = now;
		w->dr[0].retry_until = r->msg->received_at +
		    (int64_t)(m->cfg.max_queue_lifetime / 1000);
		work_submit(m, w);
	}
}

/* ---- domains and routes ---- */

static struct route *
route_get(struct mta *m, const char *key, const char *name,
    const struct dest_policy *pol)
{
	uint32_t h = hash_str(key) % (uint32_t)m->nroutes_cap;
	struct route *rt;

	for (rt = m->routes[h]; rt; rt = rt->hnext)
		if (strcmp(rt->key, key) == 0)
			return rt;
	rt = xcalloc(1, sizeof(*rt));
	rt->m = m;
	rt->key = xstrdup(key);
	rt->name = xstrdup(name);
	rt->pol = *pol;
	rt->pol.relay_host = NULL;
	rt->limit = pol->initial_concurrency;
	rt->tokens = 1;
	rt->tokens_at = now_ms();
	LIST_INIT(&rt->conns);
	rt->hnext = m->routes[h];
	m->routes[h] = rt;
	return rt;
}

static void
route_set_targets(struct route *rt, const struct dns_route *dr, int port)
{
	size_t n = 0;

	for (size_t i = 0; i < rt->ntargets; i++)
		free(rt->target_names[i]);
	free(rt->targets);
	free(rt->target_names);
	for (size_t i = 0; i < dr->nhosts; i++)
		n += dr->hosts[i].naddrs;
	rt->targets = xcalloc(n ? n : 1, sizeof(*rt->targets));
	rt->target_names = xcalloc(n ? n : 1, sizeof(char *));
	rt->ntargets = 0;
	for (size_t i = 0; i < dr->nhosts; i++)
		for (size_t j = 0; j < dr->hosts[i].naddrs; j++) {
			struct smtpc_target *t = &rt->targets[rt->ntargets];

			rt->target_names[rt->ntargets] =
			    xstrdup(dr->hosts[i].name);
			t->host = rt->target_names[rt->ntargets];
			memcpy(
			    &t->addr, &dr->hosts[i].addrs[j], sizeof(t->addr));
			t->addrlen = dr->hosts[i].addrlens[j];
			if (t->addr.ss_family == AF_INET)
				((struct sockaddr_in *)&t->addr)->sin_port =
				    htons((uint16_t)port);
			else
				((struct sockaddr_in6 *)&t->addr)->sin6_port =
				    htons((uint16_t)port);
			rt->ntargets++;
		}
}

static void
route_add(struct route *rt, struct qrcpt *r)
{
	struct mta *m = rt->m;
	struct acctq *a;

	if (rt->dead_until > now_unix()) {
		char reply[SMTPC_REPLY_MAX + 64];

		snprintf(reply, sizeof(reply),
		    "delivery temporarily suspended: %s", rt->dead_reason);
		rcpt_defer(m, r, rt->name, reply, false);
		return;
	}
	a = route_acctq(rt, r->msg->account_id, true);
	aq_add(rt, a, r, false);
	route_pump_soon(rt);
}

/* domain_fail_waiting - DNS said no: settle everyone waiting on d */
static void
domain_fail_waiting(struct domain *d, const struct dns_route *dr)
{
	struct mta *m = d->m;
	struct qrcpt *r;

	while ((r = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, r, link);
		r->where = W_NONE;
		if (dr->status == DNS_TEMPFAIL) {
			char reply[512];

			snprintf(reply, sizeof(reply),
			    "cannot find the mail servers of %s: %s", d->name,
			    dr->error);
			rcpt_defer(m, r, NULL, reply, true);
		} else {
			char text[512];
			int code = 550;
			const char *enh = "5.1.2";

			if (dr->status == DNS_NULLMX) {
				code = 556;
				enh = "5.1.10";
				snprintf(text, sizeof(text),
				    "%s does not accept mail (null MX, RFC "
				    "7505)",
				    d->name);
			} else
				snprintf(text, sizeof(text),
				    "no mail server for %s: %s", d->name,
				    dr->error);
			if (r->attempts < UINT16_MAX)
				r->attempts++;
			rcpt_fail_local(m, r, code, enh, text, "bounced");
		}
	}
}

static void
domain_resolved(void *arg, const struct dns_route *dr)
{
	struct domain *d = arg;
	struct mta *m = d->m;
	struct route *rt;
	struct qrcpt *r;
	struct buf key = BUF_INIT;
	char name[300];
	int port;

	d->q = NULL;
	if (dr->status != DNS_OK) {
		log_write(LOG_INFO, "delivery",
		    "event=dns-failed domain=%s status=%s error=\"%s\"",
		    d->name, dns_status_name(dr->status), dr->error);
		domain_fail_waiting(d, dr);
		return;
	}
	if (d->pol->relay_host) {
		buf_printf(&key, "relay:%s:%d", d->pol->relay_host,
		    d->pol->relay_port);
		snprintf(name, sizeof(name), "%s:%d", d->pol->relay_host,
		    d->pol->relay_port);
		port = d->pol->relay_port;
	} else if (*m->cfg.relayhost) {
		char *host, err[256];

		if (dest_parse_hostport(m->cfg.relayhost, 25, &host, &port, err,
			sizeof(err)) < 0) {
			host = xstrdup(m->cfg.relayhost);
			port = 25;
		}
		buf_printf(&key, "smarthost:%s:%d", host, port);
		snprintf(name, sizeof(name), "%s:%d", host, port);
		free(host);
	} else {
		buf_puts(&key, "mx:");
		for (size_t i = 0; i < dr->nhosts; i++)
			buf_printf(
			    &key, "%s%s", i ? "," : "", dr->hosts[i].name);
		snprintf(name, sizeof(name), "%s", dr->hosts[0].name);
		port = (int)m->cfg.smtp_port;
	}
	/* a route carries one TLS policy: domains that differ there do not
	 * share connections even when their hosts are the same */
	buf_printf(&key, " tls=%d", d->pol->tls);
	rt = route_get(m, buf_cstr(&key), name, d->pol);
	rt->smarthost = strncmp(buf_cstr(&key), "smarthost:", 10) == 0;
	buf_free(&key);
	route_set_targets(rt, dr, port);
	d->route = rt;
	d->route_expires = now_unix() +
	    (dr->ttl < 60	     ? 60
		    : dr->ttl > 3600 ? 3600
				     : dr->ttl);
	while ((r = TAILQ_FIRST(&d->waiting)) != NULL) {
		TAILQ_REMOVE(&d->waiting, r, link);
		r->where = W_NONE;
		route_add(rt, r);
	}
}

static struct domain *
domain_get(struct mta *m, const char *name)
{
	uint32_t h = hash_str(name) % (uint32_t)m->ndomains_cap;
	struct domain *d;

	for (d = m->domains[h]; d; d = d->hnext)
		if (strcmp(d->name, name) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->m = m;
	d->name = xstrdup(name);
	d->pol = dest_table_lookup(m->dests, name);
	TAILQ_INIT(&d->waiting);
	d->hnext = m->domains[h];
	m->domains[h] = d;
	return d;
}

/* rcpt_ready - r may be delivered now: queue it on its route */
static void
rcpt_ready(struct mta *m, struct qrcpt *r)
{
	struct domain *d = r->dom;

	if (d == NULL) {
		char name[256];

		addr_domain(rcpt_addr(r), name, sizeof(name));
		d = r->dom = domain_get(m, name);
	}
	r->state = R_READY;
	if (d->route && d->route_expires > now_unix()) {
		route_add(d->route, r);
		return;
	}
	TAILQ_INSERT_TAIL(&d->waiting, r, link);
	r->where = W_DOMAIN;
	if (d->q != NULL)
		return;
	if (d->pol->relay_host)
		d->q = dns_host(m->dns, d->pol->relay_host, domain_resolved, d);
	else if (*m->cfg.relayhost) {
		char *host, err[256];
		int port;

		if (dest_parse_hostport(m->cfg.relayhost, 25, &host, &port, err,
			sizeof(err)) < 0)
			host = xstrdup(m->cfg.relayhost);
		d->q = dns_host(m->dns, host, domain_resolved, d);
		free(host);
	} else
		d->q = dns_route(m->dns, d->name, domain_resolved, d);
}

/* ---- connections ---- */

static void
conn_on_ready(void *arg, struct smtpc *c)
{
	struct conn *cn = arg;

	(void)c;
	if (!cn->ready_once) {
		cn->ready_once = true;
		cn->rt->connecting--;
	}
	conn_next(cn);
}

static void job_free(struct job *j);

/* conn_txn_done - settle each recipient of the finished transaction */
static void
conn_on_done(void *arg, struct smtpc *c, struct smtpc_txn *txn)
{
	struct conn *cn = arg;
	struct job *j = cn->job;
	struct mta *m = cn->rt->m;
	const struct smtpc_peer *p = smtpc_peer_info(c);
	char relay[400], tls[128], reply[SMTPC_REPLY_MAX + 32];
	struct qrcpt **failed = xcalloc(j->n, sizeof(*failed));
	struct smtpc_result *fres = xcalloc(j->n, sizeof(*fres));
	size_t nfailed = 0;
	bool any_ok = false;

	(void)txn;
	snprintf(relay, sizeof(relay), "%s[%s]:%d", p->host, p->addr, p->port);
	if (p->tls_version)
		snprintf(tls, sizeof(tls), "%s %s", p->tls_version,
		    p->tls_cipher ? p->tls_cipher : "");
	else
		tls[0] = '\0';
	cn->msgs++;
	acct_get(m, j->msg->account_id)->inflight -= (int64_t)j->n;
	for (size_t i = 0; i < j->n; i++) {
		struct qrcpt *r = j->rcpts[i];
		const struct smtpc_result *res = &j->srcpts[i].result;

		reply_text(res, reply, sizeof(reply));
		if (r->attempts < UINT16_MAX)
			r->attempts++;
		if (res->code >= 200 && res->code < 300) {
			any_ok = true;
			log_write(LOG_INFO, "delivery",
			    "event=delivered id=%s rcpt=%s relay=%s tls=%s "
			    "dkim=%s attempt=%d reply=\"%s\"",
			    j->msg->id, rcpt_addr(r), relay,
			    tls[0] ? p->tls_version : "none",
			    j->signed_dkim ? "yes" : "no", r->attempts, reply);
			rcpt_final(m, r, "delivered", relay, reply, tls);
		} else if (res->code >= 500) {
			failed[nfailed] = r;
			fres[nfailed++] = *res;
		} else
			rcpt_defer_ex(m, r, relay, reply, false, res, p->host);
	}
	if (nfailed > 0)
		rcpts_fail(m, failed, fres, nfailed, "bounced", relay, p->host);
	if (any_ok && cn->rt->limit < cn->rt->pol.concurrency)
		cn->rt->limit++;
	if (txn->mail_result.code == 421 && cn->rt->limit > 1)
		cn->rt->limit--;
	free(failed);
	free(fres);
	cn->job = NULL;
	job_free(j);
}

static void
conn_on_close(void *arg, struct smtpc *c, const struct smtpc_result *error)
{
	struct conn *cn = arg;
	struct route *rt = cn->rt;
	struct mta *m = rt->m;

	(void)c;
	LIST_REMOVE(cn, link);
	rt->active--;
	m->nconns--;
	if (!cn->ready_once)
		rt->connecting--;
	if (cn->idle_ev)
		event_free(cn->idle_ev);
	if (cn->job != NULL) {
		/* closed while the job was being prepared */
		struct job *j = cn->job;

		j->conn = NULL;
	}
	if (error != NULL && !cn->ready_once) {
		char reply[SMTPC_REPLY_MAX + 32];

		reply_text(error, reply, sizeof(reply));
		if (rt->limit > 1)
			rt->limit--;
		log_write(LOG_INFO, "delivery",
		    "event=connect-failed route=%s active=%" PRId64
		    " reply=\"%s\"",
		    rt->name, rt->active, reply);
		/* A server that refuses us at the greeting or EHLO, even with
		 * 5xx, is skipped and the mail deferred (as Postfix's
		 * smtp_skip_5xx_greeting): a listing that ends would otherwise
		 * have bounced a whole queue. */
		if (rt->active == 0) {
			/* the route is dead until the first retry step */
			struct acctq *a = rt->ring;

			snprintf(rt->dead_reason, sizeof(rt->dead_reason), "%s",
			    reply);
			rt->dead_until = (uint32_t)(now_unix() +
			    (int64_t)(m->schedule[0] / 1000));
			if (a)
				do {
					struct qrcpt *r;

					while ((r = TAILQ_FIRST(&a->q))) {
						aq_remove(rt, a, r);
						rcpt_defer(m, r, rt->name,
						    reply, true);
					}
					a = a->next;
				} while (a != rt->ring);
		}
	}
	free(cn);
	route_pump_soon(rt);
}

static const struct smtpc_callbacks conn_cbs = { conn_on_ready, conn_on_done,
	conn_on_close };

static void
conn_open(struct route *rt)
{
	struct mta *m = rt->m;
	struct conn *cn = xcalloc(1, sizeof(*cn));
	struct smtpc_config cc = m->ccfg;

	cc.tls = rt->pol.tls;
	/* the relay host's credentials go to the relay host only */
	if (rt->smarthost && *m->cfg.relayhost_user) {
		cc.auth_user = m->cfg.relayhost_user;
		cc.auth_password = m->cfg.relayhost_password;
	}
	cn->rt = rt;
	LIST_INSERT_HEAD(&rt->conns, cn, link);
	rt->active++;
	rt->connecting++;
	m->nconns++;
	cn->c = smtpc_connect(
	    m->base, &cc, rt->targets, rt->ntargets, &conn_cbs, cn);
	if (cn->c == NULL) {
		LIST_REMOVE(cn, link);
		rt->active--;
		rt->connecting--;
		m->nconns--;
		free(cn);
	}
}

/* route_take - the next transaction's recipients, round robin by account */
static struct job *
route_take(struct route *rt)
{
	struct mta *m = rt->m;
	struct acctq *start, *a;
	struct job *j;
	struct qrcpt *r, *next;
	struct acct *ac;

	if (rt->nready == 0 || rt->ring == NULL)
		return NULL;
	start = a = rt->ring->next;
	do {
		ac = acct_get(m, a->account_id);
		if (!TAILQ_EMPTY(&a->q) &&
		    ac->inflight < m->cfg.account_concurrency)
			break;
		a = a->next;
	} while (a != start);
	if (TAILQ_EMPTY(&a->q) || ac->inflight >= m->cfg.account_concurrency)
		return NULL;
	rt->ring = a;
	r = TAILQ_FIRST(&a->q);
	j = xcalloc(1, sizeof(*j));
	j->msg = r->msg;
	j->rcpts =
	    xcalloc((size_t)rt->pol.recipients_per_message, sizeof(*j->rcpts));
	for (; r && j->n < (size_t)rt->pol.recipients_per_message; r = next) {
		next = TAILQ_NEXT(r, link);
		if (r->msg != j->msg)
			break;
		aq_remove(rt, a, r);
		r->state = R_ACTIVE;
		j->rcpts[j->n++] = r;
	}
	ac->inflight += (int64_t)j->n;
	envelope_init(&j->env);
	return j;
}

/* route_rate_ok - take a token of the route's rate limit, if any */
static bool
route_rate_ok(struct route *rt)
{
	uint64_t now = now_ms();

	if (rt->pol.rate <= 0)
		return true;
	rt->tokens += (double)(now - rt->tokens_at) / 1000.0 * rt->pol.rate;
	rt->tokens_at = now;
	if (rt->tokens > (rt->pol.rate < 1 ? 1 : rt->pol.rate))
		rt->tokens = rt->pol.rate < 1 ? 1 : rt->pol.rate;
	if (rt->tokens >= 1) {
		rt->tokens -= 1;
		return true;
	}
	if (!evtimer_pending(rt->rate_ev, NULL)) {
		double wait = (1 - rt->tokens) / rt->pol.rate;
		struct timeval tv = { (time_t)wait,
			(suseconds_t)((wait - (double)(time_t)wait) * 1e6) };

		evtimer_add(rt->rate_ev, &tv);
	}
	return false;
}

static void
job_prepare(struct mta *m, struct conn *cn, struct job *j)
{
	struct work *w = xcalloc(1, sizeof(*w));

	j->conn = cn;
	cn->job = j;
	w->kind = W_PREPARE;
	w->job = j;
	memcpy(w->id, j->msg->id, sizeof(w->id));
	work_submit(m, w);
}

static void
conn_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *cn = arg;

	(void)fd;
	(void)what;
	cn->idle = false;
	smtpc_quit(cn->c);
}

/*
 * conn_park - keep a ready connection for mta.connection_cache_time in
 * case more mail comes for its route (as Postfix's connection cache
 * does); then QUIT.
 */
static void
conn_park(struct conn *cn)
{
	struct mta *m = cn->rt->m;
	struct timeval tv = { (time_t)(m->cfg.connection_cache_time / 1000),
		(suseconds_t)(m->cfg.connection_cache_time % 1000) * 1000 };

	if (m->cfg.connection_cache_time == 0) {
		smtpc_quit(cn->c);
		return;
	}
	if (cn->idle_ev == NULL)
		cn->idle_ev = evtimer_new(m->base, conn_idle_timeout, cn);
	cn->idle = true;
	evtimer_add(cn->idle_ev, &tv);
}

/*
 * log_backlogged - whether the message log writer is behind by more than
 * LOG_BACKLOG_MAX deliveries (other events do not count: a dead
 * destination's deferrals must not pause the healthy ones).  Sending then
 * pauses: a delivery whose event is not written is delivered again after a
 * crash, so the backlog bounds the duplicates a crash can cause (design note
 * 6).
 */
static bool
log_backlogged(struct mta *m)
{
	if (__atomic_load_n(&m->l_delivered, __ATOMIC_RELAXED) <=
	    LOG_BACKLOG_MAX)
		return false;
	__atomic_store_n(&m->log_blocked, true, __ATOMIC_RELAXED);
	return true;
}

/* conn_next - give a ready connection its next transaction, or park it */
static void
conn_next(struct conn *cn)
{
	struct route *rt = cn->rt;
	struct job *j;

	if (cn->msgs >= rt->pol.messages_per_connection || rt->m->stopping) {
		smtpc_quit(cn->c);
		return;
	}
	if (log_backlogged(rt->m)) {
		conn_park(cn);
		return;
	}
	/* the rate limit's timer pumps the route again when a token is due */
	if (rt->njobs == 0 || !route_rate_ok(rt) ||
	    (j = route_take(rt)) == NULL) {
		conn_park(cn);
		return;
	}
	job_prepare(rt->m, cn, j);
}

static void
route_pump(evutil_socket_t fd, short what, void *arg)
{
	struct route *rt = arg;
	struct mta *m = rt->m;

	(void)fd;
	(void)what;
	if (m->stopping)
		return;
	if (log_backlogged(m))
		return; /* on_resume pumps again */
	/* parked connections first */
	for (struct conn *cn = LIST_FIRST(&rt->conns), *next;
	     cn && rt->njobs > 0; cn = next) {
		next = LIST_NEXT(cn, link);
		if (!cn->idle)
			continue;
		cn->idle = false;
		evtimer_del(cn->idle_ev);
		conn_next(cn);
	}
	while (rt->njobs > (size_t)rt->connecting && rt->active < rt->limit &&
	    m->nconns < m->cfg.max_connections && rt->ntargets > 0 &&
	    rt->dead_until <= now_unix())
		conn_open(rt);
}

static void
route_pump_soon(struct route *rt)
{
	if (rt->pump_ev == NULL) {
		rt->pump_ev = event_new(rt->m->base, -1, 0, route_pump, rt);
		rt->rate_ev = evtimer_new(rt->m->base, route_pump, rt);
	}
	event_active(rt->pump_ev, 0, 0);
}

/* ---- workers ---- */

/*
 * A worker's memory of what a sender domain signs with: whether it is
 * the account's (asked again after DKIM_OWNER_TTL_MS) and its keys
 * (loaded again when the key directory changes).
 */
#define DKIM_CACHE 16
#define DKIM_OWNER_TTL_MS 1000
struct dkim_cache {
	int64_t account_id;
	char domain[256];
	bool mine;
	uint64_t checked_ms;
	struct timespec dir_mtime;
	bool have_keys;
	struct dkim_keyset ks;
};

struct worker_ctx {
	struct mta *m;
	struct dkim_signer *dkim;
	struct store *st;
	struct dkim_cache cache[DKIM_CACHE];
	unsigned next;
};

static void
work_submit(struct mta *m, struct work *w)
{
	pthread_mutex_lock(&m->w_mu);
	w->next = NULL;
	*m->w_tail = w;
	m->w_tail = &w->next;
	pthread_cond_signal(&m->w_cv);
	pthread_mutex_unlock(&m->w_mu);
}

static void
work_done(struct mta *m, struct work *w)
{
	pthread_mutex_lock(&m->w_mu);
	w->next = NULL;
	*m->d_tail = w;
	m->d_tail = &w->next;
	pthread_mutex_unlock(&m->w_mu);
	event_active(m->done_ev, 0, 0);
}

static struct store *
worker_store(struct worker_ctx *wc)
{
	const char *error;

	if (wc->st == NULL &&
	    (wc->st = store_open(wc->m->store_url, &error)) == NULL)
		log_write(LOG_ERROR, "delivery",
		    "event=store-open-failed error=\"%s\"", error);
	return wc->st;
}

/* restore_cb - the message log says what became of each recipient */
struct restore {
	struct qmsg *q;
};

static int
restore_event(void *arg, const struct store_event *ev)
{
	struct restore *rs = arg;
	struct qrcpt *r;

	if (ev->rcpt_idx < 0 || (uint32_t)ev->rcpt_idx >= rs->q->nrcpts)
		return 0;
	r = &rs->q->rcpts[ev->rcpt_idx];
	r->attempts = (uint16_t)ev->attempt;
	if (strcmp(ev->state, "delivered") == 0 ||
	    strcmp(ev->state, "bounced") == 0 ||
	    strcmp(ev->state, "expired") == 0 ||
	    strcmp(ev->state, "deleted") == 0)
		r->state = R_DONE;
	else if (strcmp(ev->state, "held") == 0)
		r->state = R_HELD;
	else
		r->state = R_READY;
	return 0;
}

/* worker_load_one - a spool file's message with its logged states */
static struct qmsg *
worker_load(struct worker_ctx *wc, const struct envelope *e, bool restore)
{
	struct qmsg *q = msg_from_envelope(e);
	struct store *st;
	const char *error;

	if (restore && (st = worker_store(wc)) != NULL) {
		struct restore rs = { q };

		if (store_event_history(st, STORE_ANY_ACCOUNT, q->id,
			restore_event, &rs, &error) < 0)
			log_write(LOG_ERROR, "delivery",
			    "event=restore-failed id=%s error=\"%s\"", q->id,
			    error);
		q->npending = 0;
		for (uint32_t i = 0; i < q->nrcpts; i++)
			if (q->rcpts[i].state != R_DONE)
				q->npending++;
	}
	return q;
}

struct scan_ctx {
	struct worker_ctx *wc;
	struct work *w;
};

static int
scan_one(void *arg, const char *path, const struct envelope *e)
{
	struct scan_ctx *sc = arg;
	struct work *w = sc->w;

	(void)path;
	if (w->nmsgs == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->msgs = xrealloc(w->msgs, w->cap * sizeof(*w->msgs));
	}
	w->msgs[w->nmsgs++] = worker_load(sc->wc, e, true);
	if (w->nmsgs >= 4096) {
		/* hand over a batch; go on with a new work item */
		struct work *nw = xcalloc(1, sizeof(*nw));

		nw->kind = W_SCAN;
		work_done(sc->wc->m, w);
		sc->w = nw;
	}
	return sc->wc->m->w_stop ? 1 : 0;
}

/*
 * worker_dkim_keys - the keys of domain for account_id, or NULL when it
 * is not the account's or has none; from the worker's cache, checked
 * against the store every second and against the key directory's mtime
 * on every use.
 */
static const struct dkim_keyset *
worker_dkim_keys(struct worker_ctx *wc, int64_t account_id, const char *domain)
{
	struct dkim_cache *c = NULL;
	uint64_t now = now_ms();
	struct timespec mtime = { 0, 0 };
	struct stat sb;
	char *dir, err[512];
	const char *error;
	struct store *st;

	for (int i = 0; i < DKIM_CACHE; i++)
		if (wc->cache[i].account_id == account_id &&
		    strcmp(wc->cache[i].domain, domain) == 0)
			c = &wc->cache[i];
	if (c == NULL) {
		c = &wc->cache[wc->next++ % DKIM_CACHE];
		dkim_keyset_free(&c->ks);
		memset(c, 0, sizeof(*c));
		c->account_id = account_id;
		snprintf(c->domain, sizeof(c->domain), "%s", domain);
	}
	if (c->checked_ms == 0 || now - c->checked_ms >= DKIM_OWNER_TTL_MS) {
		bool mine = false;

		if ((st = worker_store(wc)) == NULL)
			return NULL;
		if (store_domain_is_account(
			st, account_id, domain, &mine, &error) < 0) {
			log_write(LOG_WARN, "delivery",
			    "event=dkim-skipped domain=%s error=\"%s\"", domain,
			    error);
			store_close(&wc->st);
			return NULL;
		}
		c->mine = mine;
		c->checked_ms = now;
	}
	if (!c->mine)
		return NULL;
	dir = dkim_key_dir(wc->m->data_dir, domain);
	if (dir != NULL && stat(dir, &sb) == 0)
		mtime = sb.st_mtim;
	free(dir);
	if (!c->have_keys || mtime.tv_sec != c->dir_mtime.tv_sec ||
	    mtime.tv_nsec != c->dir_mtime.tv_nsec) {
		dkim_keyset_free(&c->ks);
		c->have_keys = false;
		if (dkim_keys_load(wc->m->data_dir, domain, &c->ks, err,
			sizeof(err)) < 0) {
			log_write(LOG_WARN, "delivery",
			    "event=dkim-skipped domain=%s error=\"%s\"", domain,
			    err);
			return NULL;
		}
		c->have_keys = true;
		c->dir_mtime = mtime;
	}
	return c->ks.n > 0 ? &c->ks : NULL;
}

/* worker_dkim - sign j's message when its From: domain is the account's */
static void
worker_dkim(struct worker_ctx *wc, struct job *j, const char *msg, size_t len)
{
	char *from, **domains = NULL, err[512];
	size_t nd = 0;
	const char *error;
	const struct dkim_keyset *ks;

	if (j->env.account_id == 0 ||
	    (from = header_field_value(msg, len, "From")) == NULL)
		return;
	if (header_addr_domains(from, &domains, &nd, &error) < 0 || nd == 0) {
		free(from);
		return;
	}
	free(from);
	str_lower(domains[0]);
	ks = worker_dkim_keys(wc, j->env.account_id, domains[0]);
	if (ks != NULL) {
		if (wc->dkim == NULL &&
		    (wc->dkim = dkim_signer_new(err, sizeof(err))) == NULL)
			log_write(LOG_ERROR, "delivery",
			    "event=dkim-failed error=\"%s\"", err);
		else if (dkim_sign_message(wc->dkim, ks->keys, ks->n, msg, len,
			     &j->head, err, sizeof(err)) < 0)
			log_write(LOG_WARN, "delivery",
			    "event=dkim-failed id=%s domain=%s error=\"%s\"",
			    j->env.id, domains[0], err);
		else
			j->signed_dkim = true;
	}
	header_domains_free(domains, nd);
}

/* worker_prepare - read the message and its envelope, sign it */
static void
worker_prepare(struct worker_ctx *wc, struct job *j)
{
	char *path = spool_path(wc->m->spool, j->msg->id);
	const char *error;
	struct stat sb;
	int fd = -1;

	if (spool_read(path, &j->env, &j->body_off, &error) < 0) {
		snprintf(j->err, sizeof(j->err), "cannot read queue file: %s",
		    error);
		j->error = 1;
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0 ||
	    sb.st_size < j->body_off) {
		snprintf(j->err, sizeof(j->err), "cannot read queue file: %s",
		    strerror(errno));
		j->error = 1;
		goto out;
	}
	j->len = (size_t)(sb.st_size - j->body_off);
	j->data = xmalloc(j->len + 1);
	if (pread(fd, j->data, j->len, j->body_off) != (ssize_t)j->len) {
		snprintf(j->err, sizeof(j->err), "short read of queue file");
		j->error = 1;
		goto out;
	}
	worker_dkim(wc, j, j->data, j->len);
out:
	if (fd >= 0)
		close(fd);
	free(path);
}

struct dsn_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, error;
};

static void
dsn_committed(void *arg, int error)
{
	struct dsn_wait *dw = arg;

	pthread_mutex_lock(&dw->mu);
	dw->done = 1;
	dw->error = error;
	pthread_cond_signal(&dw->cv);
	pthread_mutex_unlock(&dw->mu);
}

/* worker_dsn - write the DSN of w into the spool and wait for its commit */
static void
worker_dsn(struct worker_ctx *wc, struct work *w)
{
	struct mta *m = wc->m;
	char *path = spool_path(m->spool, w->id);
	struct envelope orig, dsn;
	struct dsn_info info;
	struct buf out = BUF_INIT;
	struct spool_msg *sm;
	struct dsn_wait dw = { PTHREAD_MUTEX_INITIALIZER,
		PTHREAD_COND_INITIALIZER, 0, 0 };
	char *data = NULL;
	size_t len = 0;
	off_t off;
	const char *error;
	int fd;

	envelope_init(&orig);
	envelope_init(&dsn);
	if (spool_read(path, &orig, &off, &error) < 0) {
		snprintf(w->err, sizeof(w->err), "%s", error);
		w->error = 1;
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		struct stat sb;

		if (fstat(fd, &sb) == 0 && sb.st_size > off) {
			len = (size_t)(sb.st_size - off);
			data = xmalloc(len);
			if (pread(fd, data, len, off) != (ssize_t)len)
				len = 0;
		}
		close(fd);
	}
	for (size_t i = 0; i < w->n; i++)
		for (size_t k = 0; k < orig.nrcpts; k++)
			if (strcmp(orig.rcpts[k].addr, w->dr[i].addr) == 0) {
				w->dr[i].orcpt = orig.rcpts[k].orcpt;
				break;
			}
	memset(&info, 0, sizeof(info));
	info.reporting_mta = m->hostname;
	info.env = &orig;
	info.rcpts = w->dr;
	info.nrcpts = w->n;
	info.original = data ? data : "";
	info.original_len = len;
	info.max_return = m->cfg.dsn_max_return;
	info.now = now_unix();
	if (dsn_build(&info, &out, w->err, sizeof(w->err)) < 0) {
		w->error = 1;
		goto out;
	}
	queue_id_new(dsn.id);
	dsn.account_id = orig.account_id;
	envelope_set(&dsn.source, "dsn");
	envelope_set(&dsn.client_ip, "127.0.0.1");
	envelope_set(&dsn.helo, m->hostname);
	envelope_set(&dsn.sender, "");
	dsn.received_at = now_unix();
	envelope_add_rcpt(&dsn, orig.sender, SMTP_NOTIFY_NEVER, NULL);
	/* what the DSN needs of the next hop: 8-bit text (the original's
	 * header or body returned), a UTF-8 address (its recipient) */
	for (size_t i = 0; i < out.len; i++)
		if ((unsigned char)out.data[i] >= 0x80) {
			dsn.body = SMTP_BODY_8BITMIME;
			break;
		}
	for (const char *p = orig.sender; *p; p++)
		if ((unsigned char)*p >= 0x80) {
			dsn.smtputf8 = true;
			break;
		}
	if ((sm = spool_msg_new(m->spool, &dsn, &error)) == NULL) {
		snprintf(w->err, sizeof(w->err), "%s", error);
		w->error = 1;
		goto out;
	}
	if (spool_msg_write(sm, out.data, out.len) < 0) {
		snprintf(w->err, sizeof(w->err), "writing the DSN: %s",
		    strerror(errno));
		spool_msg_abort(&sm);
		w->error = 1;
		goto out;
	}
	if (spool_msg_commit(&sm, dsn_committed, &dw) < 0) {
		snprintf(w->err, sizeof(w->err), "committing the DSN failed");
		w->error = 1;
		goto out;
	}
	pthread_mutex_lock(&dw.mu);
	while (!dw.done)
		pthread_cond_wait(&dw.cv, &dw.mu);
	pthread_mutex_unlock(&dw.mu);
	if (dw.error != 0) {
		snprintf(w->err, sizeof(w->err), "committing the DSN: %s",
		    strerror(dw.error));
		w->error = 1;
		goto out;
	}
	memcpy(w->dsn_id, dsn.id, sizeof(w->dsn_id));
out:
	envelope_clear(&orig);
	envelope_clear(&dsn);
	buf_free(&out);
	free(data);
	free(path);
}

static void *
worker_main(void *arg)
{
	struct worker_ctx wc;
	struct mta *m = arg;

	memset(&wc, 0, sizeof(wc));
	wc.m = m;
	for (;;) {
		struct work *w;

		pthread_mutex_lock(&m->w_mu);
		while (m->w_head == NULL && !m->w_stop)
			pthread_cond_wait(&m->w_cv, &m->w_mu);
		if (m->w_stop) {
			pthread_mutex_unlock(&m->w_mu);
			break;
		}
		w = m->w_head;
		m->w_head = w->next;
		if (m->w_head == NULL)
			m->w_tail = &m->w_head;
		pthread_mutex_unlock(&m->w_mu);

		switch (w->kind) {
		case W_SCAN: {
			struct scan_ctx sc = { &wc, w };
			const char *error;

			if (spool_foreach(
				spool_dir(m->spool), scan_one, &sc, &error) < 0)
				log_write(LOG_ERROR, "delivery",
				    "event=scan-failed error=\"%s\"", error);
			sc.w->scan_done = true;
			w = sc.w;
			break;
		}
		case W_LOAD: {
			char *path = spool_path(m->spool, w->id);
			struct envelope e;
			const char *error;

			envelope_init(&e);
			if (spool_read(path, &e, NULL, &error) == 0) {
				w->msgs = xcalloc(1, sizeof(*w->msgs));
				w->msgs[0] = worker_load(&wc, &e, false);
				w->nmsgs = 1;
			} else
				log_write(LOG_ERROR, "delivery",
				    "event=load-failed id=%s error=\"%s\"",
				    w->id, error);
			envelope_clear(&e);
			free(path);
			break;
		}
		case W_PREPARE:
			worker_prepare(&wc, w->job);
			break;
		case W_DSN:
			worker_dsn(&wc, w);
			break;
		}
		work_done(m, w);
	}
	dkim_signer_free(&wc.dkim);
	for (int i = 0; i < DKIM_CACHE; i++)
		dkim_keyset_free(&wc.cache[i].ks);
	store_close(&wc.st);
	return NULL;
}

/* ---- back on the loop: finished work ---- */

static void
job_free(struct job *j)
{
	envelope_clear(&j->env);
	buf_free(&j->head);
	free(j->data);
	free(j->srcpts);
	free(j->rcpts);
	free(j);
}

/* msg_add - a loaded message enters the queue */
static void
msg_add(struct mta *m, struct qmsg *q)
{
	uint32_t h = hash_str(q->id) % HASH_SIZE;

	if (msg_find(m, q->id) != NULL) {
		msg_free(q);
		return;
	}
	q->hnext = m->msgs[h];
	m->msgs[h] = q;
	m->nmsgs++;
	if (q->npending == 0) {
		msg_finish(m, q);
		return;
	}
	for (uint32_t i = 0; i < q->nrcpts; i++) {
		struct qrcpt *r = &q->rcpts[i];
		char name[256];

		if (r->state == R_DONE)
			continue;
		addr_domain(rcpt_addr(r), name, sizeof(name));
		r->dom = domain_get(m, name);
		if (r->state == R_HELD)
			continue;
		rcpt_ready(m, r);
	}
}

static void
prepare_done(struct mta *m, struct job *j)
{
	struct conn *cn = j->conn;

	if (cn == NULL || j->error) {
		/* the connection went away, or the file cannot be read */
		acct_get(m, j->msg->account_id)->inflight -= (int64_t)j->n;
		for (size_t i = 0; i < j->n; i++) {
			if (j->error)
				rcpt_defer(m, j->rcpts[i], NULL, j->err, true);
			else
				rcpt_ready(m, j->rcpts[i]);
		}
		if (cn != NULL) {
			cn->job = NULL;
			conn_next(cn);
		}
		job_free(j);
		return;
	}
	j->srcpts = xcalloc(j->n, sizeof(*j->srcpts));
	for (size_t i = 0; i < j->n; i++) {
		size_t idx = rcpt_index(j->rcpts[i]);

		j->srcpts[i].addr = rcpt_addr(j->rcpts[i]);
		if (idx < j->env.nrcpts) {
			j->srcpts[i].notify = j->env.rcpts[idx].notify;
			j->srcpts[i].orcpt = j->env.rcpts[idx].orcpt;
		}
	}
	j->txn.sender = j->env.sender;
	j->txn.ret = j->env.ret;
	j->txn.envid = j->env.envid;
	j->txn.eightbit = j->env.body == SMTP_BODY_8BITMIME ||
	    j->env.body == SMTP_BODY_BINARYMIME;
	j->txn.smtputf8 = j->env.smtputf8;
	j->txn.rcpts = j->srcpts;
	j->txn.nrcpts = j->n;
	j->txn.head = j->head.data;
	j->txn.headlen = j->head.len;
	j->txn.body = j->data;
	j->txn.bodylen = j->len;
	j->sent = true;
	smtpc_send(cn->c, &j->txn);
}

static void
dsn_done(struct mta *m, struct work *w)
{
	if (w->msg == NULL) { /* a delay warning */
		if (w->error)
			log_write(LOG_ERROR, "delivery",
			    "event=dsn-failed id=%s error=\"%s\"", w->id,
			    w->err);
		else
			log_write(LOG_INFO, "delivery",
			    "event=dsn id=%s dsn_id=%s action=delayed", w->id,
			    w->dsn_id);
		return;
	}
	if (w->error) {
		/* keep the recipients; try the DSN again at the next retry */
		log_write(LOG_ERROR, "delivery",
		    "event=dsn-failed id=%s error=\"%s\"", w->id, w->err);
		for (size_t i = 0; i < w->n; i++)
			rcpt_defer(m, w->rcpts[i], NULL, w->err, false);
		return;
	}
	log_write(LOG_INFO, "delivery", "event=dsn id=%s dsn_id=%s", w->id,
	    w->dsn_id);
	for (size_t i = 0; i < w->n; i++) {
		struct qrcpt *r = w->rcpts[i];
		const char *reply =
		    w->dr[i].diagnostic ? w->dr[i].diagnostic : w->dr[i].reason;
		char text[SMTPC_REPLY_MAX + 64];

		snprintf(text, sizeof(text), "%s (DSN %s)", reply, w->dsn_id);
		rcpt_final(m, r,
		    strcmp(w->dr[i].status, "4.4.7") == 0 ? "expired"
							  : "bounced",
		    w->dr[i].remote_mta, text, NULL);
	}
}

static void
work_free(struct work *w)
{
	for (size_t i = 0; i < w->nstrs; i++)
		free(w->strs[i]);
	free(w->strs);
	free(w->dr);
	free(w->rcpts);
	free(w->msgs);
	free(w);
}

static void
on_done(evutil_socket_t fd, short what, void *arg)
{
	struct mta *m = arg;
	struct work *list, *w, *next;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&m->w_mu);
	list = m->d_head;
	m->d_head = NULL;
	m->d_tail = &m->d_head;
	pthread_mutex_unlock(&m->w_mu);
	for (w = list; w; w = next) {
		next = w->next;
		switch (w->kind) {
		case W_SCAN:
			for (size_t i = 0; i < w->nmsgs; i++)
				msg_add(m, w->msgs[i]);
			if (w->scan_done) {
				log_write(LOG_INFO, "delivery",
				    "event=recovered messages=%zu", m->nmsgs);
			}
			break;
		case W_LOAD:
			/* new mail: its first event in the message log */
			for (size_t i = 0; i < w->nmsgs; i++) {
				struct qmsg *q = w->msgs[i];

				for (uint32_t k = 0; k < q->nrcpts; k++)
					log_event(m, &q->rcpts[k], "queued",
					    NULL, NULL, NULL, 0);
				msg_add(m, q);
			}
			break;
		case W_PREPARE:
			prepare_done(m, w->job);
			break;
		case W_DSN:
			dsn_done(m, w);
			break;
		}
		work_free(w);
	}
}

/* ---- intake, timers ---- */

static void
spool_hooked(void *arg, const char *id)
{
	struct mta *m = arg;

	pthread_mutex_lock(&m->in_mu);
	if (m->in_n == m->in_cap) {
		m->in_cap = m->in_cap ? m->in_cap * 2 : 256;
		m->in_ids = xrealloc(m->in_ids, m->in_cap * sizeof(*m->in_ids));
	}
	memcpy(m->in_ids[m->in_n++], id, QUEUE_ID_LEN + 1);
	pthread_mutex_unlock(&m->in_mu);
	event_active(m->intake_ev, 0, 0);
}

static void
on_intake(evutil_socket_t fd, short what, void *arg)
{
	struct mta *m = arg;
	char(*ids)[QUEUE_ID_LEN + 1];
	size_t n;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&m->in_mu);
	ids = m->in_ids;
	n = m->in_n;
	m->in_ids = NULL;
	m->in_n = m->in_cap = 0;
	pthread_mutex_unlock(&m->in_mu);
	for (size_t i = 0; i < n; i++) {
		struct work *w = xcalloc(1, sizeof(*w));

		w->kind = W_LOAD;
		memcpy(w->id, ids[i], sizeof(w->id));
		work_submit(m, w);
	}
	free(ids);
}

/* on_resume - the log writer caught up: every route may send again */
static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct mta *m = arg;

	(void)fd;
	(void)what;
	for (size_t h = 0; h < m->nroutes_cap; h++)
		for (struct route *rt = m->routes[h]; rt; rt = rt->hnext)
			if (rt->njobs > 0)
				route_pump_soon(rt);
}

/*
 * on_tick - every TICK_MS: recipients whose retry time came, at most
 * TICK_MAX per tick, so that a large queue coming due at once (a dead
 * destination's, or after `queue flush`) is spread out and the message
 * log writer keeps up.
 */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mta *m = arg;
	uint32_t now = (uint32_t)now_unix();
	size_t n = 0;

	(void)fd;
	(void)what;
	while (m->nheap > 0 && m->heap[0]->next_try <= now && n++ < TICK_MAX) {
		struct qrcpt *r = m->heap[0];

		heap_remove(m, r);
		rcpt_ready(m, r);
	}
}

/* ---- control commands ---- */

struct select {
	const char *state, *destination;
	int64_t account; /* -1 = any */
	char **ids;
	size_t nids;
};

static bool
select_msg(const struct select *s, const struct qmsg *q)
{
	if (s->account >= 0 && q->account_id != s->account)
		return false;
	if (s->nids == 0)
		return true;
	for (size_t i = 0; i < s->nids; i++)
		if (strcmp(s->ids[i], q->id) == 0)
			return true;
	return false;
}

static bool
select_rcpt(const struct select *s, const struct qrcpt *r)
{
	if (r->state == R_DONE)
		return false;
	if (s->state && strcmp(s->state, rstate_names[r->state]) != 0)
		return false;
	if (s->destination) {
		char d[256];

		addr_domain(rcpt_addr(r), d, sizeof(d));
		if (strcasecmp(d, s->destination) != 0)
			return false;
	}
	return true;
}

/* ctl_act - apply verb to one recipient; true when it changed */
static bool
ctl_act(struct mta *m, const char *verb, struct qrcpt *r)
{
	if (strcmp(verb, "retry") == 0 || strcmp(verb, "flush") == 0) {
		if (r->state != R_DEFERRED)
			return false;
		heap_remove(m, r);
		if (r->dom && r->dom->route)
			r->dom->route->dead_until = 0;
		rcpt_ready(m, r);
		return true;
	}
	if (strcmp(verb, "hold") == 0) {
		if (r->state != R_READY && r->state != R_DEFERRED)
			return false;
		rcpt_detach(m, r);
		r->state = R_HELD;
		log_event(m, r, "held", NULL, "held by the operator", NULL, 0);
		return true;
	}
	if (strcmp(verb, "release") == 0) {
		if (r->state != R_HELD)
			return false;
		log_event(m, r, "released", NULL, "released by the operator",
		    NULL, 0);
		rcpt_ready(m, r);
		return true;
	}
	if (strcmp(verb, "delete") == 0) {
		if (r->state != R_READY && r->state != R_DEFERRED &&
		    r->state != R_HELD)
			return false;
		rcpt_detach(m, r);
		log_write(LOG_INFO, "delivery", "event=deleted id=%s rcpt=%s",
		    r->msg->id, rcpt_addr(r));
		rcpt_final(
		    m, r, "deleted", NULL, "deleted by the operator", NULL);
		return true;
	}
	return false;
}

static void
ctl_list_line(struct buf *out, const struct qrcpt *r)
{
	char next[32] = "-";

	if (r->state == R_DEFERRED)
		time_iso8601((time_t)r->next_try, next, sizeof(next));
	buf_printf(out, "%s %s %u %s %" PRId64 " <%s> %s %zu\n", r->msg->id,
	    rstate_names[r->state], r->attempts, next, r->msg->account_id,
	    r->msg->strs, rcpt_addr(r), rcpt_index(r));
}

/*
 * mta_control - one command from the control socket:
 *   list|flush|retry|hold|release|delete [state=S] [destination=D]
 *   [account=ID] [id=QID ...]
 * The reply is lines of text ending with "ok N" or "error ...".
 */
static int
mta_control(
    void *arg, const char *line, struct buf *out, struct control_cursor *cur)
{
	struct mta *m = arg;
	char *copy = xstrdup(line), *save = NULL, *verb, *tok;
	struct select s = { NULL, NULL, -1, NULL, 0 };
	size_t count = 0, ids_cap = 0;
	bool list;
	int more = 0;

	verb = strtok_r(copy, " ", &save);
	if (verb == NULL) {
		buf_puts(out, "error empty command\n");
		free(copy);
		return 0;
	}
	while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
		if (strncmp(tok, "state=", 6) == 0)
			s.state = tok + 6;
		else if (strncmp(tok, "destination=", 12) == 0)
			s.destination = tok + 12;
		else if (strncmp(tok, "account=", 8) == 0)
			s.account = strtoll(tok + 8, NULL, 10);
		else if (strncmp(tok, "id=", 3) == 0) {
			if (s.nids == ids_cap) {
				ids_cap = ids_cap ? ids_cap * 2 : 8;
				s.ids =
				    xrealloc(s.ids, ids_cap * sizeof(*s.ids));
			}
			s.ids[s.nids++] = tok + 3;
		} else {
			buf_printf(out, "error unknown argument '%s'\n", tok);
			goto out;
		}
	}
	list = strcmp(verb, "list") == 0;
	if (!list && strcmp(verb, "flush") != 0 && strcmp(verb, "retry") != 0 &&
	    strcmp(verb, "hold") != 0 && strcmp(verb, "release") != 0 &&
	    strcmp(verb, "delete") != 0) {
		buf_printf(out, "error unknown command '%s'\n", verb);
		goto out;
	}
	if (!list && strcmp(verb, "flush") != 0 && s.nids == 0 &&
	    s.destination == NULL) {
		buf_printf(
		    out, "error %s needs queue ids or a destination\n", verb);
		goto out;
	}
	if (strcmp(verb, "flush") == 0) {
		/* everything deferred is due now (equal keys keep the heap
		 * valid); the tick makes them ready, TICK_MAX at a time.
		 * Dead routes get another chance. */
		for (size_t i = 0; i < m->nheap; i++) {
			struct qrcpt *r = m->heap[i];

			r->next_try = 0;
			if (r->dom && r->dom->route)
				r->dom->route->dead_until = 0;
		}
		count = m->nheap;
		buf_printf(out, "ok %zu\n", count);
		goto out;
	}
	/* A list is sent in parts of about LIST_CHUNK bytes, resumed at the
	 * next hash bucket (messages may come and go in between: each is
	 * listed at most once, as it was when its bucket was reached). */
	for (size_t b = list ? cur->pos : 0; b < HASH_SIZE; b++) {
		struct qmsg *q, *qnext;

		if (list && out->len >= LIST_CHUNK) {
			cur->pos = b;
			more = 1;
			break;
		}
		for (q = m->msgs[b]; q; q = qnext) {
			qnext = q->hnext;
			if (!select_msg(&s, q))
				continue;
			for (uint32_t i = 0, n = q->nrcpts; i < n; i++) {
				struct qrcpt *r = &q->rcpts[i];
				bool last = q->npending == 1;

				if (!select_rcpt(&s, r))
					continue;
				if (list) {
					ctl_list_line(out, r);
					cur->count++;
				} else if (ctl_act(m, verb, r)) {
					count++;
					if (last && strcmp(verb, "delete") == 0)
						break; /* q was freed */
				}
			}
		}
	}
	if (!more)
		buf_printf(out, "ok %zu\n", list ? cur->count : count);
out:
	free(s.ids);
	free(copy);
	return more;
}

/* ---- life cycle ---- */

struct mta *
mta_new(const struct mta_config *cfg, const char *hostname,
    const char *data_dir, const char *store_url, struct spool *spool, char *err,
    size_t errlen)
{
	struct mta *m = xcalloc(1, sizeof(*m));
	char *dpath;
	char e2[512];

	m->cfg = *cfg;
	m->hostname = xstrdup(hostname);
	m->helo = xstrdup(*cfg->helo_name ? cfg->helo_name : hostname);
	m->data_dir = xstrdup(data_dir);
	m->store_url = xstrdup(store_url);
	m->ctl_path = fs_path_join(data_dir, "control.sock");
	m->spool = spool;
	m->defaults.tls = cfg->tls;
	m->defaults.concurrency = cfg->concurrency;
	m->defaults.initial_concurrency = cfg->initial_concurrency;
	m->defaults.messages_per_connection = cfg->messages_per_connection;
	m->defaults.recipients_per_message = cfg->recipients_per_message;
	if (dest_parse_rate(cfg->rate, &m->defaults.rate, e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "mta.rate: %s", e2);
		goto fail;
	}
	if (dest_parse_schedule(cfg->retry_schedule, &m->schedule,
		&m->nschedule, e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "mta.retry_schedule: %s", e2);
		goto fail;
	}
	if (*cfg->relayhost) {
		char *h;
		int p;

		if (dest_parse_hostport(
			cfg->relayhost, 25, &h, &p, e2, sizeof(e2)) < 0) {
			snprintf(err, errlen, "mta.relayhost: %s", e2);
			goto fail;
		}
		free(h);
	}
	dpath = *cfg->destinations ? xstrdup(cfg->destinations)
				   : fs_path_join(data_dir, "destinations");
	m->dests = dest_table_load(
	    dpath, *cfg->destinations == '\0', &m->defaults, err, errlen);
	free(dpath);
	if (m->dests == NULL)
		goto fail;
	if ((m->ssl = smtpc_ssl_ctx_new(cfg->tls_ca_file, e2, sizeof(e2))) ==
	    NULL) {
		snprintf(err, errlen, "mta.tls_ca_file: %s", e2);
		goto fail;
	}
	m->ccfg.helo_name = m->helo;
	m->ccfg.ssl_ctx = m->ssl;
	m->ccfg.auth_user = NULL; /* per route: conn_open */
	m->ccfg.auth_password = NULL;
	m->ccfg.connect_timeout = cfg->connect_timeout;
	m->ccfg.greeting_timeout = cfg->greeting_timeout;
	m->ccfg.command_timeout = cfg->command_timeout;
	m->ccfg.data_timeout = cfg->data_timeout;
	m->ccfg.use_chunking = false;

	evthread_use_pthreads();
	m->base = event_base_new();
	{
		struct dns_config dc = { cfg->dns_local_data,
			cfg->dns_resolv_conf, cfg->dns_ipv6, false, 0 };

		if ((m->dns = dns_new(m->base, &dc, err, errlen)) == NULL)
			goto fail;
	}
	m->msgs = xcalloc(HASH_SIZE, sizeof(*m->msgs));
	m->ndomains_cap = 16384;
	m->domains = xcalloc(m->ndomains_cap, sizeof(*m->domains));
	m->nroutes_cap = 4096;
	m->routes = xcalloc(m->nroutes_cap, sizeof(*m->routes));
	m->accts = xcalloc(1024, sizeof(*m->accts));
	pthread_mutex_init(&m->in_mu, NULL);
	pthread_mutex_init(&m->w_mu, NULL);
	pthread_cond_init(&m->w_cv, NULL);
	pthread_mutex_init(&m->l_mu, NULL);
	pthread_cond_init(&m->l_cv, NULL);
	m->w_tail = &m->w_head;
	m->d_tail = &m->d_head;
	m->l_tail = &m->l_head;
	m->intake_ev = event_new(m->base, -1, 0, on_intake, m);
	m->done_ev = event_new(m->base, -1, 0, on_done, m);
	m->tick_ev = event_new(m->base, -1, EV_PERSIST, on_tick, m);
	m->resume_ev = event_new(m->base, -1, 0, on_resume, m);
	return m;
fail:
	mta_free(&m);
	return NULL;
}

static void *
mta_loop(void *arg)
{
	struct mta *m = arg;

	event_base_loop(m->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

int
mta_run(struct mta *m, char *err, size_t errlen)
{
	struct timeval tick = { 0, TICK_MS * 1000 };
	struct work *w;

	if ((m->ctl = control_new(
		 m->base, m->ctl_path, mta_control, m, err, errlen)) == NULL)
		return -1;
	evtimer_add(m->tick_ev, &tick);
	m->nworkers = (size_t)m->cfg.workers;
	m->workers = xcalloc(m->nworkers, sizeof(*m->workers));
	for (size_t i = 0; i < m->nworkers; i++)
		pthread_create(&m->workers[i], NULL, worker_main, m);
	pthread_create(&m->log_thread, NULL, log_writer, m);
	w = xcalloc(1, sizeof(*w));
	w->kind = W_SCAN;
	work_submit(m, w);
	if (m->cfg.enabled)
		spool_set_hook(m->spool, spool_hooked, m);
	pthread_create(&m->thread, NULL, mta_loop, m);
	m->running = true;
	log_write(LOG_INFO, "delivery",
	    "event=started workers=%zu routes=destinations", m->nworkers);
	return 0;
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct mta *m = arg;

	(void)fd;
	(void)what;
	m->stopping = true;
	/* drop connections: nothing is lost, a recipient in flight is
	 * simply delivered again after the restart */
	for (size_t h = 0; h < m->nroutes_cap; h++)
		for (struct route *rt = m->routes[h]; rt; rt = rt->hnext) {
			struct conn *cn;

			while ((cn = LIST_FIRST(&rt->conns)) != NULL) {
				LIST_REMOVE(cn, link);
				smtpc_abort(cn->c);
				if (cn->job && cn->job->sent)
					job_free(cn->job);
				else if (cn->job)
					cn->job->conn = NULL; /* a worker's */
				if (cn->idle_ev)
					event_free(cn->idle_ev);
				free(cn);
			}
		}
	event_base_loopbreak(m->base);
}

void
mta_stop(struct mta *m)
{
	if (!m->running)
		return;
	spool_set_hook(m->spool, NULL, NULL);
	m->stop_ev = event_new(m->base, -1, 0, on_stop, m);
	event_active(m->stop_ev, 0, 0);
	pthread_join(m->thread, NULL);
	pthread_mutex_lock(&m->w_mu);
	m->w_stop = true;
	pthread_cond_broadcast(&m->w_cv);
	pthread_mutex_unlock(&m->w_mu);
	for (size_t i = 0; i < m->nworkers; i++)
		pthread_join(m->workers[i], NULL);
	pthread_mutex_lock(&m->l_mu);
	m->l_stop = true;
	pthread_cond_signal(&m->l_cv);
	pthread_mutex_unlock(&m->l_mu);
	pthread_join(m->log_thread, NULL);
	m->running = false;
}

void
mta_free(struct mta **mp)
{
	struct mta *m = *mp;

	if (m == NULL)
		return;
	control_free(&m->ctl);
	if (m->ctl_path && m->running == false && m->base)
		unlink(m->ctl_path);
	dns_free(&m->dns);
	if (m->msgs)
		for (size_t b = 0; b < HASH_SIZE; b++)
			while (m->msgs[b]) {
				struct qmsg *q = m->msgs[b];

				m->msgs[b] = q->hnext;
				msg_free(q);
			}
	if (m->domains)
		for (size_t h = 0; h < m->ndomains_cap; h++)
			while (m->domains[h]) {
				struct domain *d = m->domains[h];

				m->domains[h] = d->hnext;
				free(d->name);
				free(d);
			}
	if (m->routes)
		for (size_t h = 0; h < m->nroutes_cap; h++)
			while (m->routes[h]) {
				struct route *rt = m->routes[h];
				struct acctq *a = rt->ring;

				m->routes[h] = rt->hnext;
				if (a) {
					struct acctq *first = a;

					do {
						struct acctq *n = a->next;

						free(a);
						a = n;
					} while (a != first);
				}
				for (size_t i = 0; i < rt->ntargets; i++)
					free(rt->target_names[i]);
				free(rt->target_names);
				free(rt->targets);
				if (rt->pump_ev) {
					event_free(rt->pump_ev);
					event_free(rt->rate_ev);
				}
				free(rt->key);
				free(rt->name);
				free(rt);
			}
	if (m->accts)
		for (size_t h = 0; h < 1024; h++)
			while (m->accts[h]) {
				struct acct *a = m->accts[h];

				m->accts[h] = a->hnext;
				free(a);
			}
	while (m->w_head) {
		struct work *w = m->w_head;

		m->w_head = w->next;
		if (w->kind == W_PREPARE)
			job_free(w->job);
		work_free(w);
	}
	while (m->d_head) {
		struct work *w = m->d_head;

		m->d_head = w->next;
		if (w->kind == W_PREPARE)
			job_free(w->job);
		for (size_t i = 0; i < w->nmsgs; i++)
			msg_free(w->msgs[i]);
		work_free(w);
	}
	if (m->intake_ev) {
		event_free(m->intake_ev);
		event_free(m->done_ev);
		event_free(m->tick_ev);
		event_free(m->resume_ev);
	}
	if (m->stop_ev)
		event_free(m->stop_ev);
	if (m->base)
		event_base_free(m->base);
	if (m->ssl)
		SSL_CTX_free(m->ssl);
	dest_table_free(&m->dests);
	free(m->in_ids);
	free(m->workers);
	free(m->heap);
	free(m->msgs);
	free(m->domains);
	free(m->routes);
	free(m->accts);
	free(m->schedule);
	free(m->hostname);
	free(m->helo);
	free(m->data_dir);
	free(m->store_url);
	free(m->ctl_path);
	free(m);
	*mp = NULL;
}
