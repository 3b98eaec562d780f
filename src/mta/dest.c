/*
 * dest.c - the destinations file and the value syntaxes of dest.h.
 *
 * The table is a sorted array of (pattern, policy) searched with
 * bsearch: a few lookups per new domain, never per message.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mta/dest.h"
#include "mta/smtpc.h"

#define DEST_LINE_MAX 4096
#define DEST_LINES_MAX 100000

struct dest_entry {
	char *pattern; /* "example.com", ".example.com" */
	struct dest_policy policy;
};

struct dest_table {
	struct dest_policy defaults; /* "*" over the global settings */
	struct dest_entry *entries;
	size_t n, cap;
};

static const char *const dest_tls_names[] = { "none", "may", "encrypt",
	"verify" };

int
dest_parse_rate(const char *s, double *rate_r, char *err, size_t errlen)
{
	char *end;
	double n;

	*rate_r = 0;
	if (*s == '\0')
		return 0;
	errno = 0;
	n = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(n) || n <= 0 || *end != '/' ||
	    end[1] == '\0' || end[2] != '\0') {
		snprintf(err, errlen, "rate '%s': expected N/s, N/m or N/h", s);
		return -1;
	}
	switch (end[1]) {
	case 's':
		*rate_r = n;
		break;
	case 'm':
		*rate_r = n / 60;
		break;
	case 'h':
		*rate_r = n / 3600;
		break;
		default:
		snprintf(err, errlen, "rate '%s': expected N/s, N/m or N/h", s);
		return -1;
	}
	if (*rate_r < 1.0 / 3600 || *rate_r > 1e6) {
		snprintf(err, errlen,
		    "rate '%s': out of range (from 1/h to 1000000/s)", s);
		*rate_r = 0;
		return -1;
	}
	return 0;
}

int
dest_parse_schedule(
    const char *s, uint64_t **steps_r, size_t *n_r, char *err, size_t errlen)
{
	char *copy = xstrdup(s), *save = NULL, *tok;
	uint64_t *steps = NULL;
	size_t n = 0;

	for (tok = strtok_r(copy, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		uint64_t ms;

		if (parse_duration_ms(tok, &ms) < 0 || ms == 0 || n >= 100) {
			snprintf(err, errlen,
			    "retry schedule '%s': bad step '%s' (durations "
			    "like 30s, 5m, 1h; at most 100)",
			    s, tok);
			free(copy);
			free(steps);
			return -1;
		}
		steps = xrealloc(steps, (n + 1) * sizeof(*steps));
		steps[n++] = ms;
	}
	free(copy);
	if (n == 0) {
		snprintf(err, errlen, "retry schedule '%s' is empty", s);
		return -1;
	}
	*steps_r = steps;
	*n_r = n;
	return 0;
}

int
dest_parse_hostport(const char *s, int defport, char **host_r, int *port_r,
    char *err, size_t errlen)
{
	const char *host = s, *colon;
	size_t hlen;
	int64_t port = defport;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			goto bad;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon)
			goto bad; /* a bare IPv6 address needs brackets */
		hlen = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hlen == 0 || hlen > 255)
		goto bad;
	if (colon &&
	    (parse_int(colon + 1, &port) < 0 || port < 1 || port > 65535))
		goto bad;
	*host_r = xstrndup(host, hlen);
	*port_r = (int)port;
	return 0;
bad:
	snprintf(err, errlen,
	    "'%s': expected host:port, [host]:port or [ipv6]:port", s);
	return -1;
}

/* dest_set - apply one key=value to p; 0 or -1 with err (no location) */
static int
dest_set(struct dest_policy *p, const char *key, const char *val, char *err,
    size_t errlen)
{
	int64_t n;

	if (strcmp(key, "relay") == 0) {
		char *host;
		int port;

		if (dest_parse_hostport(val, 25, &host, &port, err, errlen) < 0)
			return -1;
		free(p->relay_host);
		p->relay_host = host;
		p->relay_port = port;
		return 0;
	}
	if (strcmp(key, "tls") == 0) {
		for (int i = 0; i < 4; i++)
			if (strcmp(val, dest_tls_names[i]) == 0) {
				p->tls = i;
				return 0;
			}
		snprintf(err, errlen,
		    "tls=%s: expected none, may, encrypt or "
		    "verify",
		    val);
		return -1;
	}
	if (strcmp(key, "rate") == 0)
		return dest_parse_rate(val, &p->rate, err, errlen);
	if (strcmp(key, "concurrency") != 0 &&
	    strcmp(key, "initial_concurrency") != 0 &&
	    strcmp(key, "messages_per_connection") != 0 &&
	    strcmp(key, "recipients_per_message") != 0) {
		snprintf(err, errlen,
		    "unknown setting '%s' (relay, tls, concurrency, "
		    "initial_concurrency, rate, messages_per_connection, "
		    "recipients_per_message)",
		    key);
		return -1;
	}
	if (parse_int(val, &n) < 0 || n < 1 || n > 100000) {
		snprintf(err, errlen,
		    "%s=%s: expected a number from 1 to 100000", key, val);
		return -1;
	}
	if (strcmp(key, "concurrency") == 0)
		p->concurrency = n;
	else if (strcmp(key, "initial_concurrency") == 0)
		p->initial_concurrency = n;
	else if (strcmp(key, "messages_per_connection") == 0)
		p->messages_per_connection = n;
	else
		p->recipients_per_message = n;
	return 0;
}

static int
dest_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dest_entry *)a)->pattern,
	    ((const struct dest_entry *)b)->pattern);
}

/* dest_parse_line - one non-empty line into t; 0 or -1 with err */
static int
dest_parse_line(struct dest_table *t, char *line, char *fields_err,
    size_t errlen, struct dest_policy *star, int *star_seen)
{
	char *save = NULL, *pattern = strtok_r(line, " \t", &save), *kv;
	struct dest_policy p;
	char err[512];

	memset(&p, 0, sizeof(p));
	p.tls = -1;
	p.concurrency = p.initial_concurrency = -1;
	p.messages_per_connection = p.recipients_per_message = -1;
	p.rate = -1;
	while ((kv = strtok_r(NULL, " \t", &save)) != NULL) {
		char *eq = strchr(kv, '=');

		if (eq == NULL) {
			snprintf(
			    fields_err, errlen, "'%s': expected key=value", kv);
			free(p.relay_host);
			return -1;
		}
		*eq = '\0';
		if (dest_set(&p, kv, eq + 1, err, sizeof(err)) < 0) {
			snprintf(fields_err, errlen, "%s", err);
			free(p.relay_host);
			return -1;
		}
	}
	str_lower(pattern);
	if (strcmp(pattern, "*") == 0) {
		if (*star_seen) {
			snprintf(fields_err, errlen, "a second '*' line");
			free(p.relay_host);
			return -1;
		}
		*star_seen = 1;
		*star = p;
		return 0;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->entries = xrealloc(t->entries, t->cap * sizeof(*t->entries));
	}
	t->entries[t->n].pattern = xstrdup(pattern);
	t->entries[t->n].policy = p;
	t->n++;
	return 0;
}

/* dest_inherit - fill the unset (-1) fields of p from base */
static void
dest_inherit(struct dest_policy *p, const struct dest_policy *base)
{
	if (p->relay_host == NULL && base->relay_host) {
		p->relay_host = xstrdup(base->relay_host);
		p->relay_port = base->relay_port;
	}
	if (p->tls < 0)
		p->tls = base->tls;
	if (p->concurrency < 0)
		p->concurrency = base->concurrency;
	if (p->initial_concurrency < 0)
		p->initial_concurrency = base->initial_concurrency;
	if (p->messages_per_connection < 0)
		p->messages_per_connection = base->messages_per_connection;
	if (p->recipients_per_message < 0)
		p->recipients_per_message = base->recipients_per_message;
	if (p->rate < 0)
		p->rate = base->rate;
	if (p->initial_concurrency > p->concurrency)
		p->initial_concurrency = p->concurrency;
}

struct dest_table *
dest_table_load(const char *path, int optional,
    const struct dest_policy *defaults, char *err, size_t errlen)
{
	struct dest_table *t = xcalloc(1, sizeof(*t));
	struct dest_policy star;
	int star_seen = 0;
	char line[DEST_LINE_MAX + 2], ferr[512];
	FILE *f = NULL;
	long lineno = 0;

	memset(&star, 0, sizeof(star));
	if (path != NULL && (f = fopen(path, "r")) == NULL &&
	    !(optional && errno == ENOENT)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(t);
		return NULL;
	}
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *p = line, *hash;
		size_t len = strlen(line);

		lineno++;
		if (len > DEST_LINE_MAX || lineno > DEST_LINES_MAX) {
			snprintf(err, errlen, "%s:%ld: %s", path, lineno,
			    len > DEST_LINE_MAX ? "line longer than 4096 bytes"
						: "more than 100000 lines");
			goto fail;
		}
		if ((hash = strchr(p, '#')) != NULL)
			*hash = '\0';
		p = str_trim(p);
		if (*p == '\0')
			continue;
		if (dest_parse_line(
			t, p, ferr, sizeof(ferr), &star, &star_seen) < 0) {
			snprintf(err, errlen, "%s:%ld: %s", path, lineno, ferr);
			goto fail;
		}
	}
	if (f)
		fclose(f);
	f = NULL;
	if (!star_seen) {
		memset(&star, 0, sizeof(star));
		star.tls = -1;
		star.concurrency = star.initial_concurrency = -1;
		star.messages_per_connection = star.recipients_per_message = -1;
		star.rate = -1;
	}
	dest_inherit(&star, defaults);
	t->defaults = star;
	for (size_t i = 0; i < t->n; i++)
		dest_inherit(&t->entries[i].policy, &t->defaults);
	if (t->n > 0)
		qsort(t->entries, t->n, sizeof(*t->entries), dest_cmp);
	for (size_t i = 1; i < t->n; i++)
		if (strcmp(t->entries[i].pattern, t->entries[i - 1].pattern) ==
		    0) {
			snprintf(err, errlen, "%s: '%s' is listed twice", path,
			    t->entries[i].pattern);
			goto fail;
		}
	return t;
fail:
	if (f)
		fclose(f);
	free(star.relay_host); /* the '*' line's, or inherited: owned */
	t->defaults.relay_host = NULL;
	dest_table_free(&t);
	return NULL;
}

void
dest_table_free(struct dest_table **tp)
{
	struct dest_table *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->entries[i].pattern);
		free(t->entries[i].policy.relay_host);
	}
	free(t->entries);
	free(t->defaults.relay_host);
	free(t);
	*tp = NULL;
}

/* dest_find - the entry for pattern, or NULL */
static const struct dest_entry *
dest_find(const struct dest_table *t, const char *pattern)
{
	struct dest_entry key = { .pattern = (char *)pattern };

	if (t->n == 0)
		return NULL;
	return bsearch(&key, t->entries, t->n, sizeof(key), dest_cmp);
}

const struct dest_policy *
dest_table_lookup(const struct dest_table *t, const char *domain)
{
	const struct dest_entry *e;
	const char *dot;

	if ((e = dest_find(t, domain)) != NULL)
		return &e->policy;
	for (dot = strchr(domain, '.'); dot; dot = strchr(dot + 1, '.'))
		if ((e = dest_find(t, dot)) != NULL)
			return &e->policy;
	return &t->defaults;
}
