/*
 * dns.c - mail routes through libunbound, on the caller's event loop
 * (see dns.h).
 *
 * Design notes.
 *
 * 1. libunbound resolves in a thread of its own (ub_ctx_async(ctx, 1)):
 *    its default, a forked helper, would be a copy of the whole daemon
 *    (descriptors, keys) made from a process that already runs threads.
 *    The thread hands answers back through a pipe whose read end
 *    (ub_fd) the loop watches; ub_process() then runs our lookup
 *    callbacks in the loop's thread.  Nothing here ever blocks.
 * 2. A dns_query (one dns_route or dns_host call) is a small state
 *    machine; each libunbound query it has in flight is a dns_lookup.
 *
 *    state   event                            next
 *    -----   ------------------------------   ------------------------
 *    MX      MX records                       ADDRS (their hosts)
 *    MX      no MX record (NODATA)            ADDRS (the domain itself)
 *    MX      null MX, NXDOMAIN, failure       DONE
 *    ADDRS   last A/AAAA answer               DONE (route assembled)
 *    ADDRS   timeout                          DONE (what was found)
 *    MX      timeout                          DONE (TEMPFAIL)
 *    DONE    the done event                   callback, then freed
 *    any     dns_cancel, dns_free             freed, no callback
 *
 *    dns_host starts in ADDRS; an IP literal or a bad name in DONE.
 * 3. The user's callback runs only from the query's done event, never
 *    from inside dns_route/dns_host and never from inside ub_process():
 *    so it may call dns_route, dns_cancel or even dns_free.
 * 4. A query stays on its resolver's list until its callback runs, so
 *    dns_free can cancel everything.  Cancelling a lookup is ub_cancel:
 *    with a thread, libunbound marks the query and drops its answer
 *    when it comes, so no callback of ours runs for it afterwards.
 * 5. At most DNS_INFLIGHT address lookups per query are in flight; the
 *    rest wait their turn, so a domain with 16 MX hosts does not put 32
 *    queries on the wire at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>
#include <unbound.h>

#include "lib/log.h"
#include "lib/util.h"
#include "mta/dns.h"

#define DNS_NAME_MAX 253		 /* text form, no trailing dot */
#define DNS_TIMEOUT_DEFAULT 30000	 /* ms */
#define DNS_INFLIGHT 8			 /* address lookups per query */
#define DNS_NLOOKUPS (2 * DNS_MAX_HOSTS) /* A and AAAA per host */
#define DNS_CONF_WORDS 64		 /* words on a local-data line */

/* Record types and class, as on the wire. */
#define T_A 1
#define T_MX 15
#define T_AAAA 28
#define C_IN 1

enum q_state { Q_MX, Q_ADDRS, Q_DONE };

/* What an answer says, whatever its type. */
enum answer { ANS_DATA, ANS_NODATA, ANS_NXDOMAIN, ANS_FAIL };

struct dns_lookup {
	struct dns_query *q;
	int id; /* libunbound's async id, while in flight */
	bool inflight, answered;
	int host; /* index in the route's hosts (address lookups) */
	int type;
};

/* The addresses of one host, per family, before they are merged. */
struct dns_found {
	struct sockaddr_in v4[DNS_MAX_ADDRS];
	struct sockaddr_in6 v6[DNS_MAX_ADDRS];
	size_t n4, n6;	       /* kept */
	size_t total4, total6; /* seen */
	bool nxdomain, tempfail;
};

struct dns_query {
	struct dns *d;
	struct dns_query *prev, *next; /* on d->queries until delivered */
	enum q_state state;
	bool host_only;	 /* dns_host */
	bool delivering; /* its callback is running */
	char name[DNS_NAME_MAX + 1];
	dns_route_cb *cb;
	void *arg;
	struct event *timer; /* the whole query's timeout */
	struct event *done;  /* runs the callback from the loop */
	struct dns_lookup mx;
	struct dns_lookup lk[DNS_NLOOKUPS];
	int nlk, started, inflight; /* lookups: all, begun, out */
	struct dns_found found[DNS_MAX_HOSTS];
	bool tempfail;
	char why[192]; /* the first temporary failure */
	struct dns_route route;
};

struct dns {
	struct event_base *base;
	struct ub_ctx *ctx;
	struct event *ev; /* ub_fd readable */
	bool ipv6, prefer_ipv6;
	struct timeval timeout;
	struct dns_query *queries;
};

/* One record of an MX answer, while the hosts are put in order. */
struct mx_rr {
	int preference;
	uint32_t draw; /* random: shuffles equal preferences */
	char name[DNS_NAME_MAX + 1];
};

static void lookup_done(void *arg, int err, struct ub_result *res);
static void addrs_pump(struct dns_query *q);
static void route_done(struct dns_query *q);
static void host_tempfail(
    struct dns_query *q, struct dns_lookup *lk, const char *why);

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NULLMX:
		return "null-mx";
	case DNS_NOHOSTS:
		return "no-hosts";
	}
	return "unknown";
}

/* type_name - a record type for messages */
static const char *
type_name(int type)
{
	return type == T_MX ? "MX" : type == T_AAAA ? "AAAA" : "A";
}

/* rcode_name - a DNS response code for messages */
static const char *
rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL",
		"NXDOMAIN", "NOTIMP", "REFUSED" };

	if (rcode >= 0 && (size_t)rcode < NELEM(names))
		return names[rcode];
	return "unexpected rcode";
}

/*
 * name_normalize - copy a host or domain name (ASCII, A-labels) into
 * out (DNS_NAME_MAX + 1 bytes) in lower case without its trailing dot.
 * Returns NULL, or why it is not a name.  Letters, digits, '-' and '_'
 * are accepted in labels ('_' is common in host names, if not legal).
 */
static const char *
name_normalize(const char *in, char *out)
{
	size_t n = strlen(in), label = 0;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0)
		return "empty name";
	if (n > DNS_NAME_MAX)
		return "name too long";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return "empty label";
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			label++;
		} else {
			return "invalid character";
		}
		if (label > 63)
			return "label too long";
		out[i] = (char)c;
	}
	if (label == 0)
		return "empty label";
	out[n] = '\0';
	return NULL;
}

/*
 * wire_name - the uncompressed wire-format name at p (len bytes) as
 * normalized text in out (DNS_NAME_MAX + 1 bytes); "" for the root.
 * Returns 0, or -1 if it is malformed or not a host name.
 */
static int
wire_name(const unsigned char *p, size_t len, char *out)
{
	char text[DNS_NAME_MAX + 2];
	size_t i = 0, o = 0;

	while (i < len) {
		size_t l = p[i++];

		if (l == 0) {
			if (o == 0) {
				out[0] = '\0';
				return 0;
			}
			text[o] = '\0';
			return name_normalize(text, out) == NULL ? 0 : -1;
		}
		if (l > 63 || i + l > len || o + l + 1 > DNS_NAME_MAX)
			return -1;
		if (o > 0)
			text[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			if (p[i + k] == '.' || p[i + k] == '\0')
				return -1; /* would change the labels */
			text[o++] = (char)p[i + k];
		}
		i += l;
	}
	return -1;
}

/*
 * literal_parse - whether s is an IP address: bare (when bare_ok) or in
 * brackets ("[192.0.2.1]", "[IPv6:2001:db8::1]", "[::1]").  Fills host
 * with the address, its text form as name.
 */
static bool
literal_parse(const char *s, bool bare_ok, struct dns_host *host)
{
	char text[INET6_ADDRSTRLEN + 8];
	size_t n = strlen(s);
	struct sockaddr_in *sin = (struct sockaddr_in *)&host->addrs[0];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&host->addrs[0];

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
		if (n > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
			s += 5;
			n -= 5;
		}
	} else if (!bare_ok) {
		return false;
	}
	if (n >= sizeof(text))
		return false;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(&host->addrs[0], 0, sizeof(host->addrs[0]));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		host->addrlens[0] = sizeof(*sin);
		inet_ntop(
		    AF_INET, &sin->sin_addr, host->name, sizeof(host->name));
	} else if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		host->addrlens[0] = sizeof(*sin6);
		inet_ntop(
		    AF_INET6, &sin6->sin6_addr, host->name, sizeof(host->name));
	} else {
		return false;
	}
	host->naddrs = 1;
	host->preference = 0;
	return true;
}

/*
 * answer_kind - classify a libunbound answer; for ANS_FAIL, why says
 * what went wrong.
 */
static enum answer
answer_kind(int err, const struct ub_result *res, const char **why)
{
	if (err != 0) {
		*why = ub_strerror(err);
		return ANS_FAIL;
	}
	if (res->bogus) {
		*why = "DNSSEC validation failed";
		return ANS_FAIL;
	}
	if (res->nxdomain || res->rcode == 3)
		return ANS_NXDOMAIN;
	if (res->rcode != 0) {
		*why = rcode_name(res->rcode);
		return ANS_FAIL;
	}
	return res->havedata ? ANS_DATA : ANS_NODATA;
}

/* ttl_seen - keep the smallest TTL of the answers a route rests on */
static void
ttl_seen(struct dns_query *q, const struct ub_result *res)
{
	uint32_t ttl = res->ttl > 0 ? (uint32_t)res->ttl : 0;

	if (ttl < q->route.ttl)
		q->route.ttl = ttl;
}

/* lookups_cancel - stop every libunbound query of q still in flight */
static void
lookups_cancel(struct dns_query *q)
{
	struct dns_lookup *all[1 + DNS_NLOOKUPS];
	int n = 0;

	all[n++] = &q->mx;
	for (int i = 0; i < q->nlk; i++)
		all[n++] = &q->lk[i];
	for (int i = 0; i < n; i++) {
		if (!all[i]->inflight)
			continue;
		/* UB_NOID would mean it was answered: impossible here. */
		(void)ub_cancel(q->d->ctx, all[i]->id);
		all[i]->inflight = false;
	}
	q->inflight = 0;
}

/* query_unlink - take q off its resolver's list */
static void
query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else if (q->d->queries == q)
		q->d->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/* query_free - free q (already unlinked, nothing in flight) */
static void
query_free(struct dns_query *q)
{
	if (q->timer != NULL)
		event_free(q->timer);
	if (q->done != NULL)
		event_free(q->done);
	free(q);
}

/*
 * query_finish - the route is complete: stop what is left and have the
 * loop run the callback (never from here).
 */
static void
query_finish(struct dns_query *q)
{
	struct dns_route *r = &q->route;

	lookups_cancel(q);
	evtimer_del(q->timer);
	q->state = Q_DONE;
	if (r->ttl == UINT32_MAX)
		r->ttl = 0;
	if (r->status != DNS_OK)
		r->nhosts = 0;
	if (log_enabled(LOG_DEBUG))
		log_write(LOG_DEBUG, "dns",
		    "event=route name=%s status=%s hosts=%zu ttl=%u", q->name,
		    dns_status_name(r->status), r->nhosts, (unsigned)r->ttl);
	event_active(q->done, EV_TIMEOUT, 1);
}

/* query_fail - finish q with status and a message */
static void query_fail(struct dns_query *q, enum dns_status status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
query_fail(struct dns_query *q, enum dns_status status, const char *fmt, ...)
{
	va_list ap;

	q->route.status = status;
	va_start(ap, fmt);
	vsnprintf(q->route.error, sizeof(q->route.error), fmt, ap);
	va_end(ap);
	query_finish(q);
}

/* query_deliver - the done event: run the callback, then free q */
static void
query_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	query_unlink(q);
	q->delivering = true;
	q->cb(q->arg, &q->route);
	/* The callback may have freed the resolver: q no longer uses it. */
	query_free(q);
}

/* query_timeout - the whole query took too long */
static void
query_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	if (q->state != Q_ADDRS) {
		query_fail(q, DNS_TEMPFAIL, "%s: timeout", q->name);
		return;
	}
	/* Keep the hosts found so far; the others failed temporarily. */
	for (int i = 0; i < q->nlk; i++)
		if (!q->lk[i].answered)
			host_tempfail(q, &q->lk[i], "timeout");
	lookups_cancel(q);
	q->started = q->nlk;
	route_done(q);
}

/*
 * query_new - a query of d, linked, with its events; its timeout runs
 * from now.  NULL when memory ran out.
 */
static struct dns_query *
query_new(struct dns *d, dns_route_cb *cb, void *arg)
{
	struct dns_query *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->route.ttl = UINT32_MAX;
	q->timer = evtimer_new(d->base, query_timeout, q);
	q->done = event_new(d->base, -1, 0, query_deliver, q);
	if (q->timer == NULL || q->done == NULL) {
		query_free(q);
		return NULL;
	}
	evtimer_add(q->timer, &d->timeout);
	q->next = d->queries;
	if (d->queries != NULL)
		d->queries->prev = q;
	d->queries = q;
	return q;
}

/*
 * lookup_start - ask libunbound for name/type on behalf of q.  Returns
 * 0, or -1 with why.
 */
static int
lookup_start(struct dns_query *q, struct dns_lookup *lk, const char *name,
    int type, const char **why)
{
	int r;

	lk->q = q;
	lk->type = type;
	lk->inflight = true;
	q->inflight++;
	r = ub_resolve_async(
	    q->d->ctx, name, type, C_IN, lk, lookup_done, &lk->id);
	if (r != 0) {
		lk->inflight = false;
		q->inflight--;
		*why = ub_strerror(r);
		return -1;
	}
	return 0;
}

/* host_tempfail - an address lookup of a host failed for now */
static void
host_tempfail(struct dns_query *q, struct dns_lookup *lk, const char *why)
{
	q->found[lk->host].tempfail = true;
	if (q->tempfail)
		return;
	q->tempfail = true;
	snprintf(q->why, sizeof(q->why), "%s: %s lookup: %s",
	    q->route.hosts[lk->host].name, type_name(lk->type), why);
}

/* addrs_add - keep the addresses of an A or AAAA answer */
static void
addrs_add(struct dns_found *f, int type, const struct ub_result *res)
{
	for (int i = 0; res->data[i] != NULL; i++) {
		if (type == T_A && res->len[i] == 4) {
			if (f->total4++ >= DNS_MAX_ADDRS)
				continue;
			f->v4[f->n4].sin_family = AF_INET;
			memcpy(&f->v4[f->n4++].sin_addr, res->data[i], 4);
		} else if (type == T_AAAA && res->len[i] == 16) {
			if (f->total6++ >= DNS_MAX_ADDRS)
				continue;
			f->v6[f->n6].sin6_family = AF_INET6;
			memcpy(&f->v6[f->n6++].sin6_addr, res->data[i], 16);
		}
	}
}

/*
 * addrs_merge - the addresses of host h in their final order, the
 * preferred family first.  When both families have more than fit,
 * each keeps at least half of DNS_MAX_ADDRS: a host whose IPv6 does
 * not work stays reachable over IPv4, and the other way round.
 */
static void
addrs_merge(struct dns_query *q, const struct dns_found *f, struct dns_host *h)
{
	bool v6first = q->d->prefer_ipv6;
	size_t first = v6first ? f->n6 : f->n4;
	size_t second = v6first ? f->n4 : f->n6;
	size_t half = DNS_MAX_ADDRS / 2;
	size_t keep1, keep2;

	keep1 = first;
	if (keep1 > DNS_MAX_ADDRS - (second < half ? second : half))
		keep1 = DNS_MAX_ADDRS - (second < half ? second : half);
	keep2 = second < DNS_MAX_ADDRS - keep1 ? second : DNS_MAX_ADDRS - keep1;
	h->naddrs = 0;
	for (int pass = 0; pass < 2; pass++) {
		bool six = (pass == 0) == v6first;
		size_t n = pass == 0 ? keep1 : keep2;

		for (size_t i = 0; i < n; i++) {
			size_t k = h->naddrs++;

			memset(&h->addrs[k], 0, sizeof(h->addrs[k]));
			if (six) {
				memcpy(
				    &h->addrs[k], &f->v6[i], sizeof(f->v6[i]));
				h->addrlens[k] = sizeof(f->v6[i]);
			} else {
				memcpy(
				    &h->addrs[k], &f->v4[i], sizeof(f->v4[i]));
				h->addrlens[k] = sizeof(f->v4[i]);
			}
		}
	}
	if (f->total4 + f->total6 > h->naddrs)
		log_write(LOG_INFO, "dns",
		    "event=addresses-cut domain=%s host=%s kept=%zu seen=%zu",
		    q->name, h->name, h->naddrs, f->total4 + f->total6);
}

/* skip_reason - why a host has no address, for the log */
static const char *
skip_reason(const struct dns_found *f)
{
	if (f->tempfail)
		return "lookup-failed";
	return f->nxdomain ? "nxdomain" : "no-address";
}

/*
 * route_done - every address lookup has answered (or timed out): keep
 * the hosts that have an address and decide the status.
 */
static void
route_done(struct dns_query *q)
{
	struct dns_route *r = &q->route;
	size_t n = 0;

	for (size_t i = 0; i < r->nhosts; i++) {
		const struct dns_found *f = &q->found[i];

		addrs_merge(q, f, &r->hosts[i]);
		if (r->hosts[i].naddrs == 0) {
			if (!r->implicit)
				log_write(LOG_INFO, "dns",
				    "event=mx-skipped domain=%s host=%s "
				    "reason=%s",
				    q->name, r->hosts[i].name, skip_reason(f));
			continue;
		}
		if (n != i)
			r->hosts[n] = r->hosts[i];
		n++;
	}
	r->nhosts = n;
	if (n > 0) {
		r->status = DNS_OK;
		query_finish(q);
	} else if (q->tempfail) {
		if (q->host_only)
			query_fail(q, DNS_TEMPFAIL, "%s", q->why);
		else
			query_fail(q, DNS_TEMPFAIL, "%s: %s", q->name, q->why);
	} else if (q->host_only && q->found[0].nxdomain) {
		query_fail(q, DNS_NXDOMAIN, "%s: NXDOMAIN", q->name);
	} else if (q->host_only || r->implicit) {
		query_fail(q, DNS_NOHOSTS, "%s: no address", q->name);
	} else {
		query_fail(
		    q, DNS_NOHOSTS, "%s: no MX host has an address", q->name);
	}
}

/* addrs_start - look up the addresses of every host of the route */
static void
addrs_start(struct dns_query *q)
{
	q->state = Q_ADDRS;
	q->nlk = q->started = 0;
	for (size_t i = 0; i < q->route.nhosts; i++) {
		if (q->d->ipv6) {
			q->lk[q->nlk].host = (int)i;
			q->lk[q->nlk++].type = T_AAAA;
		}
		q->lk[q->nlk].host = (int)i;
		q->lk[q->nlk++].type = T_A;
	}
	addrs_pump(q);
}

/*
 * addrs_pump - start waiting address lookups while fewer than
 * DNS_INFLIGHT are out; assemble the route when all have answered.
 */
static void
addrs_pump(struct dns_query *q)
{
	while (q->state == Q_ADDRS && q->inflight < DNS_INFLIGHT &&
	    q->started < q->nlk) {
		struct dns_lookup *lk = &q->lk[q->started++];
		const char *why;

		if (lookup_start(q, lk, q->route.hosts[lk->host].name, lk->type,
			&why) < 0) {
			lk->answered = true;
			host_tempfail(q, lk, why);
		}
	}
	if (q->state == Q_ADDRS && q->inflight == 0 && q->started == q->nlk)
		route_done(q);
}

/* mx_cmp - order MX records by preference, then by their random draw */
static int
mx_cmp(const void *a, const void *b)
{
	const struct mx_rr *x = a, *y = b;

	if (x->preference != y->preference)
		return x->preference < y->preference ? -1 : 1;
	return x->draw < y->draw ? -1 : x->draw > y->draw;
}

/*
 * mx_hosts - the hosts of an MX answer, in order, into q's route: the
 * lowest preferences first, equal ones shuffled, duplicates dropped,
 * at most DNS_MAX_HOSTS.  Returns 0, or -1 when q has been finished
 * (null MX, nothing usable).
 */
static int
mx_hosts(struct dns_query *q, const struct ub_result *res)
{
	struct dns_route *r = &q->route;
	struct mx_rr *all;
	size_t count = 0, n = 0;

	while (res->data[count] != NULL)
		count++;
	if ((all = calloc(count, sizeof(*all))) == NULL) {
		query_fail(q, DNS_TEMPFAIL, "%s: out of memory", q->name);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		const unsigned char *p = (const unsigned char *)res->data[i];
		size_t len = (size_t)res->len[i];

		if (len < 3 || wire_name(p + 2, len - 2, all[n].name) < 0) {
			log_write(LOG_WARN, "dns", "event=mx-invalid domain=%s",
			    q->name);
			continue;
		}
		all[n].preference = p[0] << 8 | p[1];
		if (all[n].name[0] == '\0') {
			if (count == 1 && all[n].preference == 0) {
				free(all);
				query_fail(q, DNS_NULLMX,
				    "%s: null MX, accepts no mail", q->name);
				return -1;
			}
			/* RFC 7505: a null MX must be alone; ignore it. */
			log_write(LOG_WARN, "dns",
			    "event=mx-invalid domain=%s host=.", q->name);
			continue;
		}
		all[n++].draw = randombytes_random();
	}
	qsort(all, n, sizeof(*all), mx_cmp);
	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		for (size_t k = 0; k < r->nhosts && !dup; k++)
			dup = strcmp(r->hosts[k].name, all[i].name) == 0;
		if (dup)
			continue;
		if (r->nhosts == DNS_MAX_HOSTS) {
			log_write(LOG_INFO, "dns",
			    "event=mx-cut domain=%s kept=%d seen=%zu", q->name,
			    DNS_MAX_HOSTS, count);
			break;
		}
		r->hosts[r->nhosts].preference = all[i].preference;
		memcpy(r->hosts[r->nhosts++].name, all[i].name,
		    sizeof(all[i].name));
	}
	free(all);
	if (r->nhosts == 0) {
		query_fail(q, DNS_NOHOSTS, "%s: no valid MX host", q->name);
		return -1;
	}
	return 0;
}

/* mx_answer - the MX answer of a route */
static void
mx_answer(struct dns_query *q, int err, const struct ub_result *res)
{
	const char *why = NULL;

	switch (answer_kind(err, res, &why)) {
	case ANS_FAIL:
		query_fail(q, DNS_TEMPFAIL, "%s: MX lookup: %s", q->name, why);
		return;
	case ANS_NXDOMAIN:
		ttl_seen(q, res);
		query_fail(q, DNS_NXDOMAIN, "%s: NXDOMAIN", q->name);
		return;
	case ANS_NODATA:
		/* RFC 5321 5.1: no MX, the domain itself is the host. */
		ttl_seen(q, res);
		q->route.implicit = true;
		q->route.nhosts = 1;
		memcpy(q->route.hosts[0].name, q->name, sizeof(q->name));
		break;
	case ANS_DATA:
		ttl_seen(q, res);
		if (mx_hosts(q, res) < 0)
			return;
		break;
	}
	addrs_start(q);
}

/* addr_answer - an A or AAAA answer for one host */
static void
addr_answer(struct dns_query *q, struct dns_lookup *lk, int err,
    const struct ub_result *res)
{
	struct dns_found *f = &q->found[lk->host];
	const char *why = NULL;

	lk->answered = true;
	switch (answer_kind(err, res, &why)) {
	case ANS_FAIL:
		host_tempfail(q, lk, why);
		break;
	case ANS_NXDOMAIN:
		ttl_seen(q, res);
		f->nxdomain = true;
		break;
	case ANS_NODATA:
		ttl_seen(q, res);
		break;
	case ANS_DATA:
		ttl_seen(q, res);
		addrs_add(f, lk->type, res);
		break;
	}
	addrs_pump(q);
}

/*
 * lookup_done - libunbound's callback, from ub_process() in the loop.
 * It never calls the user: finishing only schedules the done event.
 */
static void
lookup_done(void *arg, int err, struct ub_result *res)
{
	struct dns_lookup *lk = arg;
	struct dns_query *q = lk->q;

	lk->inflight = false;
	q->inflight--;
	if (q->state == Q_MX && lk == &q->mx)
		mx_answer(q, err, res);
	else if (q->state == Q_ADDRS && lk != &q->mx)
		addr_answer(q, lk, err, res);
	ub_resolve_free(res);
}

/* dns_readable - libunbound has answers for us */
static void
dns_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	int r;

	(void)fd;
	(void)what;
	if ((r = ub_process(d->ctx)) != 0) {
		/* The resolver thread is gone: queries will time out. */
		log_write(LOG_ERROR, "dns",
		    "event=resolver-failed error=\"%s\"", ub_strerror(r));
		event_del(d->ev);
	}
}

/*
 * conf_words - split s into at most max words in place; a "quoted" or
 * 'quoted' string is one word without its quotes, '#' outside quotes
 * starts a comment.  Returns the count, or -1 with why.
 */
static int
conf_words(char *s, char **words, int max, const char **why)
{
	int n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0' || *s == '#')
			return n;
		if (n == max) {
			*why = "too many words";
			return -1;
		}
		if (*s == '"' || *s == '\'') {
			char *end = strchr(s + 1, *s);

			if (end == NULL) {
				*why = "unterminated quote";
				return -1;
			}
			words[n++] = s + 1;
			*end = '\0';
			s = end + 1;
			continue;
		}
		words[n++] = s;
		s += strcspn(s, " \t\r\n#");
		if (*s == '#') {
			*s = '\0';
			return n;
		}
		if (*s != '\0')
			*s++ = '\0';
	}
}

/* One line of the local data file, kept until both passes are done. */
struct conf_line {
	int line;
	bool zone;
	char *a, *b; /* zone: name and type; data: the record */
};

/*
 * conf_parse_line - parse one line (cut in place) into cl.  Returns 1
 * for an entry, 0 for nothing, -1 with why.
 */
static int
conf_parse_line(char *s, struct conf_line *cl, const char **why)
{
	char *words[DNS_CONF_WORDS], *colon, *key;
	char rr[4096];
	size_t len = 0;
	int n;

	s += strspn(s, " \t");
	if (*s == '\0' || *s == '#' || *s == '\r' || *s == '\n')
		return 0;
	key = s;
	if ((colon = strchr(s, ':')) == NULL) {
		*why = "expected \"name: value\"";
		return -1;
	}
	*colon = '\0';
	if ((n = conf_words(colon + 1, words, DNS_CONF_WORDS, why)) < 0)
		return -1;
	if (strcmp(key, "server") == 0 && n == 0)
		return 0; /* the clause header of unbound.conf */
	if (strcmp(key, "local-zone") == 0) {
		if (n != 2) {
			*why = "local-zone: expected a zone name and a type";
			return -1;
		}
		cl->zone = true;
		cl->a = strdup(words[0]);
		cl->b = strdup(words[1]);
		return cl->a != NULL && cl->b != NULL ? 1 : -1;
	}
	if (strcmp(key, "local-data") != 0) {
		*why = "unknown directive (local-zone: and local-data: only)";
		return -1;
	}
	if (n == 0) {
		*why = "local-data: expected a record";
		return -1;
	}
	for (int i = 0; i < n; i++) {
		size_t w = strlen(words[i]);

		if (len + w + 2 > sizeof(rr)) {
			*why = "local-data: record too long";
			return -1;
		}
		if (i > 0)
			rr[len++] = ' ';
		memcpy(rr + len, words[i], w);
		len += w;
	}
	rr[len] = '\0';
	cl->a = strdup(rr);
	return cl->a != NULL ? 1 : -1;
}

/*
 * conf_apply - give the zones, then the records, to libunbound (the
 * order unbound.conf has: a record then lands in its declared zone).
 * Returns 0, or -1 with err.
 */
static int
conf_apply(struct ub_ctx *ctx, const char *file, const struct conf_line *cl,
    size_t n, char *err, size_t errlen)
{
	char q[128];

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			int r;

			if (cl[i].zone != (pass == 0))
				continue;
			if (cl[i].zone)
				r = ub_ctx_zone_add(ctx, cl[i].a, cl[i].b);
			else
				r = ub_ctx_data_add(ctx, cl[i].a);
			if (r == 0)
				continue;
			if (cl[i].zone)
				snprintf(err, errlen,
				    "%s:%d: local-zone: bad zone \"%s\" or "
				    "type \"%s\" (%s)",
				    file, cl[i].line,
				    log_quote(cl[i].a, q, sizeof(q)), cl[i].b,
				    ub_strerror(r));
			else
				snprintf(err, errlen,
				    "%s:%d: local-data: bad record \"%s\"",
				    file, cl[i].line,
				    log_quote(cl[i].a, q, sizeof(q)));
			return -1;
		}
	}
	return 0;
}

/*
 * conf_load - read the local data file into ctx.  Returns 0, or -1
 * with err naming the file and line.
 */
static int
conf_load(struct ub_ctx *ctx, const char *file, char *err, size_t errlen)
{
	struct conf_line *cl = NULL;
	size_t n = 0, cap = 0, linecap = 0;
	char *line = NULL;
	int lineno = 0, r = -1;
	FILE *fp;

	if ((fp = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while (getline(&line, &linecap, fp) != -1) {
		const char *why = "out of memory";
		int k;

		lineno++;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct conf_line *ncl =
			    realloc(cl, ncap * sizeof(*ncl));

			if (ncl == NULL) {
				snprintf(
				    err, errlen, "%s: out of memory", file);
				goto out;
			}
			cl = ncl;
			cap = ncap;
		}
		memset(&cl[n], 0, sizeof(cl[n]));
		cl[n].line = lineno;
		if ((k = conf_parse_line(line, &cl[n], &why)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", file, lineno, why);
			free(cl[n].a);
			free(cl[n].b);
			goto out;
		}
		n += (size_t)k;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		goto out;
	}
	r = conf_apply(ctx, file, cl, n, err, errlen);
out:
	for (size_t i = 0; i < n; i++) {
		free(cl[i].a);
		free(cl[i].b);
	}
	free(cl);
	free(line);
	fclose(fp);
	return r;
}

struct dns *
dns_new(struct event_base *base, const struct dns_config *cfg, char *err,
    size_t errlen)
{
	const char *local = cfg->local_data ? cfg->local_data : "";
	const char *resolv = cfg->resolv_conf ? cfg->resolv_conf : "";
	uint64_t ms = cfg->timeout ? cfg->timeout : DNS_TIMEOUT_DEFAULT;
	struct dns *d;
	int r;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium: cannot initialize");
		return NULL;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->base = base;
	d->ipv6 = cfg->ipv6;
	d->prefer_ipv6 = cfg->prefer_ipv6;
	d->timeout.tv_sec = (time_t)(ms / 1000);
	d->timeout.tv_usec = (suseconds_t)(ms % 1000 * 1000);
	if ((d->ctx = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "libunbound: cannot create a context");
		goto fail;
	}
	/* Options first: the local data below finalizes the context. */
	if ((r = ub_ctx_async(d->ctx, 1)) != 0) {
		snprintf(err, errlen, "libunbound: %s", ub_strerror(r));
		goto fail;
	}
	if (resolv[0] != '\0' && (r = ub_ctx_resolvconf(d->ctx, resolv)) != 0) {
		snprintf(err, errlen, "%s: %s", resolv,
		    r == UB_READFILE ? strerror(errno) : ub_strerror(r));
		goto fail;
	}
	if (local[0] != '\0' && conf_load(d->ctx, local, err, errlen) < 0)
		goto fail;
	d->ev = event_new(
	    base, ub_fd(d->ctx), EV_READ | EV_PERSIST, dns_readable, d);
	if (d->ev == NULL || event_add(d->ev, NULL) < 0) {
		snprintf(err, errlen, "libevent: cannot watch the resolver");
		goto fail;
	}
	return d;
fail:
	dns_free(&d);
	return NULL;
}

void
dns_free(struct dns **dp)
{
	struct dns *d = *dp;

	if (d == NULL)
		return;
	while (d->queries != NULL) {
		struct dns_query *q = d->queries;

		lookups_cancel(q);
		query_unlink(q);
		query_free(q);
	}
	if (d->ev != NULL)
		event_free(d->ev);
	if (d->ctx != NULL)
		ub_ctx_delete(d->ctx);
	free(d);
	*dp = NULL;
}

struct dns_query *
dns_route(struct dns *d, const char *domain, dns_route_cb *cb, void *arg)
{
	struct dns_query *q;
	const char *why;
	char safe[64];

	if ((q = query_new(d, cb, arg)) == NULL)
		return NULL;
	if (literal_parse(domain, false, &q->route.hosts[0])) {
		memcpy(q->name, q->route.hosts[0].name, sizeof(q->name));
		q->route.implicit = true;
		q->route.nhosts = 1;
		query_finish(q);
		return q;
	}
	if ((why = name_normalize(domain, q->name)) != NULL) {
		log_quote(domain, safe, sizeof(safe));
		memcpy(q->name, safe, sizeof(safe));
		query_fail(
		    q, DNS_NXDOMAIN, "%s: invalid domain name (%s)", safe, why);
		return q;
	}
	q->state = Q_MX;
	if (lookup_start(q, &q->mx, q->name, T_MX, &why) < 0)
		query_fail(q, DNS_TEMPFAIL, "%s: MX lookup: %s", q->name, why);
	return q;
}

struct dns_query *
dns_host(struct dns *d, const char *host, dns_route_cb *cb, void *arg)
{
	struct dns_query *q;
	const char *why;
	char safe[64];

	if ((q = query_new(d, cb, arg)) == NULL)
		return NULL;
	q->host_only = true;
	q->route.implicit = true;
	q->route.nhosts = 1;
	if (literal_parse(host, true, &q->route.hosts[0])) {
		memcpy(q->name, q->route.hosts[0].name, sizeof(q->name));
		query_finish(q);
		return q;
	}
	if ((why = name_normalize(host, q->name)) != NULL) {
		log_quote(host, safe, sizeof(safe));
		memcpy(q->name, safe, sizeof(safe));
		query_fail(
		    q, DNS_NXDOMAIN, "%s: invalid host name (%s)", safe, why);
		return q;
	}
	memcpy(q->route.hosts[0].name, q->name, sizeof(q->name));
	addrs_start(q);
	return q;
}

void
dns_cancel(struct dns *d, struct dns_query *q)
{
	(void)d;
	if (q == NULL || q->delivering)
		return;
	lookups_cancel(q);
	query_unlink(q);
	query_free(q);
}
