/*
 * policy.c - the policy snapshot and its refresh thread (see policy.h).
 *
 * A snapshot is a set of arrays: credentials sorted by user name and
 * domains sorted by name (binary search), relay networks in a list
 * (accounts have few).  Snapshots are reference-counted; the current one is
 * swapped under a mutex that lookups hold only to take a reference.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "lib/log.h"
#include "lib/util.h"
#include "smtpd/policy.h"
#include "store/store.h"

struct cred {
	char *user;
	int64_t account, id;
	char hash[65];
};

struct dom {
	char *name;
	int64_t account;
};

struct net {
	int family;
	unsigned char addr[16];
	int prefix;
	int64_t account;
};

struct snapshot {
	int refs;
	int64_t *disabled; /* disabled account ids */
	size_t ndisabled;
	struct cred *creds;
	size_t ncreds, credcap;
	struct dom *doms;
	size_t ndoms, domcap;
	struct net *nets;
	size_t nnets, netcap;
};

struct policy {
	char *store_url;
	char **inbound;
	size_t ninbound;
	uint64_t refresh_ms;
	struct store *store; /* used by the refresh thread only */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct snapshot *cur;
	int stopping;
	pthread_t thread;
	bool thread_started;
};

#define GROW(arr, n, cap)                                                      \
	do {                                                                   \
		if ((n) == (cap)) {                                            \
			(cap) = (cap) ? (cap)*2 : 16;                          \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));       \
		}                                                              \
	} while (0)

static void
snapshot_unref(struct snapshot *s)
{
	if (s == NULL || --s->refs > 0)
		return;
	for (size_t i = 0; i < s->ncreds; i++)
		free(s->creds[i].user);
	for (size_t i = 0; i < s->ndoms; i++)
		free(s->doms[i].name);
	free(s->creds);
	free(s->doms);
	free(s->nets);
	free(s->disabled);
	free(s);
}

static int
load_account(void *arg, int64_t id, const char *name, bool disabled)
{
	struct snapshot *s = arg;

	(void)name;
	if (disabled) {
		s->disabled = xrealloc(
		    s->disabled, (s->ndisabled + 1) * sizeof(*s->disabled));
		s->disabled[s->ndisabled++] = id;
	}
	return 0;
}

static int
load_domain(void *arg, int64_t account, const char *domain)
{
	struct snapshot *s = arg;

	GROW(s->doms, s->ndoms, s->domcap);
	s->doms[s->ndoms].name = xstrdup(domain);
	s->doms[s->ndoms++].account = account;
	return 0;
}

static int
load_credential(
    void *arg, int64_t account, int64_t id, const char *user, const char *hash)
{
	struct snapshot *s = arg;
	struct cred *c;

	GROW(s->creds, s->ncreds, s->credcap);
	c = &s->creds[s->ncreds++];
	c->user = xstrdup(user);
	c->account = account;
	c->id = id;
	snprintf(c->hash, sizeof(c->hash), "%s", hash);
	return 0;
}

/* parse_net - "addr" or "addr/prefix" into n; 0 or -1 */
static int
parse_net(const char *cidr, struct net *n)
{
	char tmp[64];
	char *slash;
	int64_t prefix;

	snprintf(tmp, sizeof(tmp), "%s", cidr);
	slash = strchr(tmp, '/');
	if (slash)
		*slash++ = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, tmp, n->addr) == 1) {
		n->family = AF_INET;
		n->prefix = 32;
	} else if (inet_pton(AF_INET6, tmp, n->addr) == 1) {
		n->family = AF_INET6;
		n->prefix = 128;
	} else {
		return -1;
	}
	if (slash) {
		if (parse_int(slash, &prefix) < 0 || prefix < 0 ||
		    prefix > n->prefix)
			return -1;
		n->prefix = (int)prefix;
	}
	return 0;
}

static int
load_relay_ip(void *arg, int64_t account, const char *cidr)
{
	struct snapshot *s = arg;
	struct net n;

	if (parse_net(cidr, &n) < 0) {
		log_write(LOG_WARN, "policy",
		    "event=bad-relay-ip account=%lld "
		    "cidr=\"%s\"",
		    (long long)account, cidr);
		return 0;
	}
	n.account = account;
	GROW(s->nets, s->nnets, s->netcap);
	s->nets[s->nnets++] = n;
	return 0;
}

static int
cred_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct cred *)a)->user, ((const struct cred *)b)->user);
}

static int
dom_cmp(const void *a, const void *b)
{
	return strcmp(
	    ((const struct dom *)a)->name, ((const struct dom *)b)->name);
}

/* policy_load - read a new snapshot from the store and make it current */
static int
policy_load(struct policy *p, char *err, size_t errlen)
{
	static const struct store_policy_cb cb = {
		.account = load_account,
		.domain = load_domain,
		.credential = load_credential,
		.relay_ip = load_relay_ip,
	};
	struct snapshot *s = xcalloc(1, sizeof(*s)), *old;
	const char *error;

	s->refs = 1;
	if (store_policy_load(p->store, &cb, s, &error) < 0) {
		snprintf(err, errlen, "loading policy: %s", error);
		snapshot_unref(s);
		return -1;
	}
	if (s->ncreds > 0)
		qsort(s->creds, s->ncreds, sizeof(*s->creds), cred_cmp);
	if (s->ndoms > 0)
		qsort(s->doms, s->ndoms, sizeof(*s->doms), dom_cmp);
	pthread_mutex_lock(&p->mu);
	old = p->cur;
	p->cur = s;
	snapshot_unref(old); /* freed now unless a lookup still holds it */
	pthread_mutex_unlock(&p->mu);
	log_write(LOG_DEBUG, "policy",
	    "event=loaded credentials=%zu "
	    "domains=%zu relay_nets=%zu",
	    s->ncreds, s->ndoms, s->nnets);
	return 0;
}

static void *
policy_thread(void *arg)
{
	struct policy *p = arg;
	char err[512];

	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		struct timespec ts;
		const char *error;
		bool changed = false;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(p->refresh_ms / 1000);
		ts.tv_nsec += (long)(p->refresh_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
		if (p->stopping)
			break;
		pthread_mutex_unlock(&p->mu);
		if (store_changed(p->store, &changed, &error) < 0)
			log_write(LOG_WARN, "policy",
			    "event=check-failed "
			    "error=\"%s\"",
			    error);
		else if (changed && policy_load(p, err, sizeof(err)) < 0)
			log_write(LOG_WARN, "policy",
			    "event=reload-failed "
			    "error=\"%s\"",
			    err);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct policy *
policy_new(const char *store_url, const char *inbound_domains,
    uint64_t refresh_ms, char *err, size_t errlen)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	const char *error;
	char *list, *tok, *save = NULL;
	bool changed;

	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->refresh_ms = refresh_ms ? refresh_ms : 1000;
	list = xstrdup(inbound_domains ? inbound_domains : "");
	for (tok = strtok_r(list, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		p->inbound = xrealloc(
		    p->inbound, (p->ninbound + 1) * sizeof(*p->inbound));
		p->inbound[p->ninbound++] = str_lower(xstrdup(tok));
	}
	free(list);
	p->store = store_open(store_url, &error);
	if (p->store == NULL) {
		snprintf(err, errlen, "%s", error);
		policy_free(&p);
		return NULL;
	}
	store_changed(p->store, &changed, &error);
	if (policy_load(p, err, errlen) < 0) {
		policy_free(&p);
		return NULL;
	}
	if (pthread_create(&p->thread, NULL, policy_thread, p) != 0) {
		snprintf(err, errlen, "cannot start the policy thread");
		policy_free(&p);
		return NULL;
	}
	p->thread_started = true;
	return p;
}

void
policy_free(struct policy **pp)
{
	struct policy *p = *pp;

	if (p == NULL)
		return;
	if (p->thread_started) {
		pthread_mutex_lock(&p->mu);
		p->stopping = 1;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	snapshot_unref(p->cur);
	store_close(&p->store);
	for (size_t i = 0; i < p->ninbound; i++)
		free(p->inbound[i]);
	free(p->inbound);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
	*pp = NULL;
}

static struct snapshot *
snapshot_get(struct policy *p)
{
	struct snapshot *s;

	pthread_mutex_lock(&p->mu);
	s = p->cur;
	s->refs++;
	pthread_mutex_unlock(&p->mu);
	return s;
}

static void
snapshot_put(struct policy *p, struct snapshot *s)
{
	pthread_mutex_lock(&p->mu);
	snapshot_unref(s);
	pthread_mutex_unlock(&p->mu);
}

static bool
account_disabled(const struct snapshot *s, int64_t account)
{
	for (size_t i = 0; i < s->ndisabled; i++)
		if (s->disabled[i] == account)
			return true;
	return false;
}

int
policy_auth(struct policy *p, const char *user, const char *secret,
    int64_t *account_r, int64_t *credential_r)
{
	struct snapshot *s = snapshot_get(p);
	char hash[65];
	int ok = 0;

	struct cred key = { .user = (char *)user }, *c;

	/* Hash first, whether or not the user exists: equal timing. */
	store_secret_hash(secret, hash);
	c = s->ncreds == 0
	    ? NULL
	    : bsearch(&key, s->creds, s->ncreds, sizeof(*s->creds), cred_cmp);
	if (c != NULL && sodium_memcmp(c->hash, hash, 64) == 0 &&
	    !account_disabled(s, c->account)) {
		*account_r = c->account;
		*credential_r = c->id;
		ok = 1;
	}
	snapshot_put(p, s);
	return ok;
}

static bool
net_match(const struct net *n, const struct sockaddr *sa)
{
	const unsigned char *a;
	int full, rest;

	if (sa->sa_family == AF_INET && n->family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)
			->sin_addr;
	} else if (sa->sa_family == AF_INET6 && n->family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	} else if (sa->sa_family == AF_INET6 && n->family == AF_INET &&
	    IN6_IS_ADDR_V4MAPPED(
		&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr + 12;
	} else {
		return false;
	}
	full = n->prefix / 8;
	rest = n->prefix % 8;
	if (memcmp(a, n->addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ n->addr[full]) & (0xff << (8 - rest))) == 0;
}

int64_t
policy_relay_account(struct policy *p, const struct sockaddr *sa)
{
	struct snapshot *s = snapshot_get(p);
	int64_t account = 0;

	for (size_t i = 0; i < s->nnets; i++) {
		if (net_match(&s->nets[i], sa) &&
		    !account_disabled(s, s->nets[i].account)) {
			account = s->nets[i].account;
			break;
		}
	}
	snapshot_put(p, s);
	return account;
}

bool
policy_domain_owned(struct policy *p, int64_t account, const char *domain)
{
	struct snapshot *s = snapshot_get(p);
	bool owned = false;

	struct dom key = { .name = (char *)domain }, *d;

	d = s->ndoms == 0
	    ? NULL
	    : bsearch(&key, s->doms, s->ndoms, sizeof(*s->doms), dom_cmp);
	owned = d != NULL && d->account == account;
	snapshot_put(p, s);
	return owned;
}

bool
policy_inbound(struct policy *p, const char *domain)
{
	for (size_t i = 0; i < p->ninbound; i++)
		if (strcmp(p->inbound[i], domain) == 0)
			return true;
	return false;
}
