/*
 * limits.c - shared connection and authentication counters.
 *
 * Two small chained hash tables under one mutex: the critical sections
 * are a lookup and an increment, far shorter than anything else a
 * connection does, so one lock is not a bottleneck.  Entries whose count
 * drops to zero (connections) or whose lockout window has passed (auth)
 * are freed, so memory follows the number of live clients.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "smtpd/limits.h"

#define LIMITS_BUCKETS 4096

struct entry {
	struct entry *next;
	int64_t count;	/* connections, or failures in the window */
	uint64_t since; /* auth: time of the first failure (ms) */
	uint64_t locked_until;
	char key[];
};

struct limits {
	pthread_mutex_t mu;
	int64_t max_total, max_per_ip, auth_max;
	uint64_t lockout_ms;
	int64_t total;
	uint64_t auth_failures; /* for the periodic sweep */
	struct entry *conn[LIMITS_BUCKETS];
	struct entry *auth[LIMITS_BUCKETS];
};

static unsigned
hash_key(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % LIMITS_BUCKETS;
}

/* lookup - find key in table; create it when create is set */
static struct entry *
lookup(struct entry **table, const char *key, bool create)
{
	struct entry **pp = &table[hash_key(key)], *e;

	for (e = *pp; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e) + strlen(key) + 1);
	strcpy(e->key, key);
	e->next = *pp;
	*pp = e;
	return e;
}

static void
drop(struct entry **table, const char *key)
{
	struct entry **pp = &table[hash_key(key)], *e;

	for (; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->key, key) == 0) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

struct limits *
limits_new(int64_t max_connections, int64_t max_per_ip,
    int64_t auth_max_failures, uint64_t auth_lockout_ms)
{
	struct limits *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->mu, NULL);
	l->max_total = max_connections;
	l->max_per_ip = max_per_ip;
	l->auth_max = auth_max_failures;
	l->lockout_ms = auth_lockout_ms;
	return l;
}

static void
free_table(struct entry **table)
{
	for (size_t i = 0; i < LIMITS_BUCKETS; i++) {
		struct entry *e, *next;

		for (e = table[i]; e; e = next) {
			next = e->next;
			free(e);
		}
	}
}

void
limits_free(struct limits **lp)
{
	struct limits *l = *lp;

	if (l == NULL)
		return;
	free_table(l->conn);
	free_table(l->auth);
	pthread_mutex_destroy(&l->mu);
	free(l);
	*lp = NULL;
}

enum limits_verdict
limits_connect(struct limits *l, const char *ip)
{
	enum limits_verdict v = LIMITS_OK;
	struct entry *e;

	pthread_mutex_lock(&l->mu);
	if (l->total >= l->max_total) {
		v = LIMITS_TOTAL;
	} else {
		e = lookup(l->conn, ip, true);
		if (e->count >= l->max_per_ip) {
			v = LIMITS_PER_IP;
		} else {
			e->count++;
			l->total++;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return v;
}

void
limits_disconnect(struct limits *l, const char *ip)
{
	struct entry *e;

	pthread_mutex_lock(&l->mu);
	e = lookup(l->conn, ip, false);
	if (e != NULL && e->count > 0) {
		l->total--;
		if (--e->count == 0)
			drop(l->conn, ip);
	}
	pthread_mutex_unlock(&l->mu);
}

/* auth_key - "ip:ADDR" or "user:NAME" into out */
static const char *
auth_key(char *out, size_t n, const char *kind, const char *v)
{
	snprintf(out, n, "%s:%s", kind, v);
	return out;
}

/* auth_locked_one - whether key is locked; expires old windows (locked) */
static bool
auth_locked_one(struct limits *l, const char *key, uint64_t now)
{
	struct entry *e = lookup(l->auth, key, false);

	if (e == NULL)
		return false;
	if (e->locked_until > now)
		return true;
	if (now - e->since > l->lockout_ms) {
		drop(l->auth, key);
		return false;
	}
	return false;
}

bool
limits_auth_locked(struct limits *l, const char *ip, const char *user)
{
	char k[512];
	uint64_t now = now_ms();
	bool locked;

	pthread_mutex_lock(&l->mu);
	locked = auth_locked_one(l, auth_key(k, sizeof(k), "ip", ip), now);
	if (!locked && user != NULL)
		locked = auth_locked_one(
		    l, auth_key(k, sizeof(k), "user", user), now);
	pthread_mutex_unlock(&l->mu);
	return locked;
}

static int64_t
auth_fail_one(struct limits *l, const char *key, uint64_t now)
{
	struct entry *e = lookup(l->auth, key, true);

	if (e->count == 0 || now - e->since > l->lockout_ms) {
		e->count = 0;
		e->since = now;
	}
	if (++e->count >= l->auth_max)
		e->locked_until = now + l->lockout_ms;
	return e->count;
}

/*
 * auth_sweep - drop failure records whose window and lockout are over.
 * Records otherwise go only when their key is seen again, so addresses
 * and user names that try once and never come back would pile up.
 */
static void
auth_sweep(struct limits *l, uint64_t now)
{
	for (size_t i = 0; i < LIMITS_BUCKETS; i++) {
		struct entry **pp = &l->auth[i], *e;

		while ((e = *pp) != NULL) {
			if (e->locked_until <= now &&
			    now - e->since > l->lockout_ms) {
				*pp = e->next;
				free(e);
			} else {
				pp = &e->next;
			}
		}
	}
}

int
limits_auth_failed(struct limits *l, const char *ip, const char *user)
{
	char k[512];
	uint64_t now = now_ms();
	int64_t n;

	pthread_mutex_lock(&l->mu);
	if (++l->auth_failures % 4096 == 0)
		auth_sweep(l, now);
	n = auth_fail_one(l, auth_key(k, sizeof(k), "ip", ip), now);
	if (user != NULL && *user)
		auth_fail_one(l, auth_key(k, sizeof(k), "user", user), now);
	pthread_mutex_unlock(&l->mu);
	return (int)n;
}

void
limits_auth_ok(struct limits *l, const char *ip, const char *user)
{
	char k[512];

	pthread_mutex_lock(&l->mu);
	drop(l->auth, auth_key(k, sizeof(k), "ip", ip));
	if (user != NULL)
		drop(l->auth, auth_key(k, sizeof(k), "user", user));
	pthread_mutex_unlock(&l->mu);
}
