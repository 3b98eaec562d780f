/*
 * util.c - small generic helpers (see util.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <sodium.h>

#include "lib/log.h"
#include "lib/util.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("out of memory allocating %zu bytes", n);
	return p;
}

void *
xcalloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);

	if (p == NULL)
		fatal("out of memory allocating %zu x %zu bytes", count, n);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatal("out of memory reallocating %zu bytes", n);
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
fatal(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_write(LOG_FATAL, "fatal", "error=\"%s\"", msg);
	exit(1);
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *
str_lower(char *s)
{
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

char *
str_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	e = s + strlen(s);
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

bool
str_casestarts(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static const char token_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
random_token(char *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = token_alphabet[randombytes_uniform(64)];
	out[len] = '\0';
}

void
random_alnum(char *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = token_alphabet[randombytes_uniform(62)];
	out[len] = '\0';
}

/*
 * Queue ids: 10 characters of base32 (Crockford alphabet, lower case, in
 * ASCII order) for
 * the time in microseconds, then 6 for a per-process counter mixed with
 * random bits.  Sorting ids sorts messages by arrival.
 */
static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";

void
queue_id_new(char *out)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static uint64_t last_us, counter;
	struct timeval tv;
	uint64_t us, tail;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	pthread_mutex_lock(&mu);
	if (us <= last_us)
		us = last_us;
	if (us == last_us)
		counter++;
	else
		counter = 0;
	last_us = us;
	tail = ((counter & 0x3ff) << 20) | (randombytes_random() & 0xfffff);
	pthread_mutex_unlock(&mu);
	for (int i = 9; i >= 0; i--) {
		out[i] = b32[us & 31];
		us >>= 5;
	}
	for (int i = 15; i >= 10; i--) {
		out[i] = b32[tail & 31];
		tail >>= 5;
	}
	out[QUEUE_ID_LEN] = '\0';
}

bool
queue_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (strchr(b32, s[i]) == NULL)
			return false;
	return i == QUEUE_ID_LEN;
}

void
time_rfc5322(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

void
time_iso8601(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* parse_scaled - a non-negative number followed by a unit from units[] */
static int
parse_scaled(const char *s, const char *const *units, const uint64_t *mult,
    size_t nunits, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	for (size_t i = 0; i < nunits; i++) {
		if (strcasecmp(end, units[i]) == 0) {
			if (mult[i] != 0 && v > UINT64_MAX / mult[i])
				return -1;
			*out = v * mult[i];
			return 0;
		}
	}
	return -1;
}

int
parse_size(const char *s, uint64_t *out)
{
	static const char *const units[] = { "", "b", "k", "kb", "kib", "m",
		"mb", "mib", "g", "gb", "gib" };
	static const uint64_t mult[] = { 1, 1, 1u << 10, 1u << 10, 1u << 10,
		1u << 20, 1u << 20, 1u << 20, 1u << 30, 1u << 30, 1u << 30 };

	return parse_scaled(s, units, mult, NELEM(units), out);
}

int
parse_duration_ms(const char *s, uint64_t *out)
{
	static const char *const units[] = { "", "ms", "s", "m", "h", "d" };
	static const uint64_t mult[] = { 1000, 1, 1000, 60000, 3600000,
		86400000 };

	return parse_scaled(s, units, mult, NELEM(units), out);
}

/* sockaddr_text - the address of sa as text into ip, and its port */
int
sockaddr_text(const struct sockaddr *sa, char *ip, size_t iplen)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)iplen);
		return ntohs(in->sin_port);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
		return ntohs(in6->sin6_port);
	}
	snprintf(ip, iplen, "?");
	return 0;
}

int
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}
