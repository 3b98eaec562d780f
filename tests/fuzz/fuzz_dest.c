/*
 * fuzz_dest - the destinations file and the value syntaxes of
 * mta/dest.c on arbitrary bytes.
 *
 * The input is the content of a destinations file (written once per
 * input to a memfd, read through /proc/self/fd/N), loaded twice: over
 * global settings without and with a relay host.  Then a few domains,
 * and every pattern of the file, are looked up.  Each whitespace-
 * separated word of the input (and what follows its '='), and the whole
 * input, also go through dest_parse_hostport, dest_parse_rate and
 * dest_parse_schedule.
 *
 * What must hold:
 *   1. dest_table_load returns a table, or NULL with an error that
 *      names the file;
 *   2. a lookup never returns NULL, and returns settings in range: tls
 *      one of the four policies, the counts from 1 to 100000 (or the
 *      global value), initial_concurrency at most concurrency, a rate
 *      finite and not negative, a relay with a host name of 1 to 255
 *      octets and a port from 1 to 65535;
 *   3. a pattern of a file that loaded is found: looking it up (or a
 *      name under it, for ".domain") does not give the defaults;
 *   4. the parsers return 0 with a value in range (a host of 1 to 255
 *      octets and a port; a finite rate, positive unless the text is
 *      empty; 1 to 100 positive steps), or -1 with an error;
 *   5. nothing leaks (run it under ASan/LSan).
 *
 * See fuzz_main.c for how to run it.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mta/dest.h"
#include "fuzz.h"

#define INPUT_MAX (64 * 1024)
#define PATTERNS_MAX 64
#define WORDS_MAX 256
#define X64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define X1K X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64 X64

const char *const fuzz_seeds[] = {
	"# domain        settings\n"
	"*               tls=may concurrency=20\n"
	"gmail.com       concurrency=5 rate=10/s\n"
	".example.net    relay=[10.0.0.5]:2525 tls=encrypt\n"
	"example.org     relay=smtp.example.org:587\n",
	"*\ttls=verify initial_concurrency=50 messages_per_connection=100\n"
	"Big.Example\trecipients_per_message=1000 rate=600/m\n"
	"slow.example rate=3600/h initial_concurrency=3 concurrency=2\n"
	"v6.example relay=[2001:db8::25]:25 tls=none\r\n",
	"a.example relay=mx.a.example\n.a.example rate=1/s\n"
	"b.example   # nothing but a comment\n\n   \t\n",
	/* errors: each line one */
	"a.example concurrency=0\n",
	"a.example concurrency=100001\n",
	"a.example concurrency=12x\n",
	"a.example rate=10/d\n",
	"a.example rate=nan/s\n",
	"a.example rate=inf/s\n",
	"a.example rate=1e-320/s\n",
	"a.example rate=-5/s\n",
	"a.example tls=maybe\n",
	"a.example relay=2001:db8::1\n",
	"a.example relay=[]:25\n",
	"a.example relay=host:0\n",
	"a.example relay=host:65536\n",
	"a.example relay=[host]x\n",
	"a.example colour=blue\n",
	"a.example concurrency\n",
	"* tls=may\n* tls=none\n",
	"a.example rate=1/s\nA.EXAMPLE rate=2/s\n",
	"a.example rate=1/s\n\n# " X1K X1K X1K X1K "\n",
	"\rcr.example tls=none\n \t.Sub.Example rate=1/m \t\r\n",
	/* value syntaxes, as words */
	"5m,10m,1h 30s 0s 1d,2d 18446744073709551615d 5x 1,,2",
	"[::1]:25 host host:25 [host] [a:b]:1 a:b:c :25 host: [x]:",
	"10/s 600/m 3600/h 0x10/s 1e308/s 1e-308/h / 5/",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

static const char *const domains[] = {
	"gmail.com",
	"example.org",
	"example.net",
	"mx.example.net",
	"a.b.c.example.net",
	"a.example",
	"x.a.example",
	"",
	".",
	"*",
	"..",
	"com",
};

static int memfd = -1;
static char path[64];

/* check_policy - invariant 2 */
static void
check_policy(const struct dest_policy *p, const struct dest_policy *def)
{
	CHECK(p != NULL);

	const int64_t counts[4] = { p->concurrency, p->initial_concurrency,
		p->messages_per_connection, p->recipients_per_message };
	const int64_t globals[4] = { def->concurrency, def->initial_concurrency,
		def->messages_per_connection, def->recipients_per_message };

	CHECK(p->tls >= 0 && p->tls <= 3);
	for (int i = 0; i < 4; i++)
		CHECK((counts[i] >= 1 && counts[i] <= 100000) ||
		    counts[i] == globals[i]);
	CHECK(p->initial_concurrency <= p->concurrency);
	CHECK(isfinite(p->rate) && p->rate >= 0);
	if (p->relay_host != NULL) {
		size_t n = strlen(p->relay_host);

		CHECK(n >= 1 && n <= 255);
		CHECK(p->relay_port >= 1 && p->relay_port <= 65535);
	}
}

/* lower - an ASCII lower-case copy of n bytes of s */
static char *
lower(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	CHECK(d != NULL);
	for (size_t i = 0; i < n; i++)
		d[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a')
						  : s[i];
	d[n] = '\0';
	return d;
}

/*
 * patterns - the patterns of text as dest.c reads them: the first word
 * of each line, once comments and surrounding white space are gone.
 */
static size_t
patterns(const char *text, char **pat)
{
	size_t n = 0;

	for (const char *line = text; *line && n < PATTERNS_MAX;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		size_t end = strcspn(line, "#\n");
		size_t start = 0, w;

		if (end > len)
			end = len;
		while (start < end && strchr(" \t\r", line[start]))
			start++;
		while (end > start && strchr(" \t\r", line[end - 1]))
			end--;
		w = strcspn(line + start, " \t");
		if (w > end - start)
			w = end - start;
		if (w > 0 && !(w == 1 && line[start] == '*'))
			pat[n++] = lower(line + start, w);
		line += len + (nl != NULL);
	}
	return n;
}

/* check_table - invariants 2 and 3 on a table loaded from text */
static void
check_table(
    const struct dest_table *t, const struct dest_policy *def, const char *text)
{
	/* No pattern has a space, and no dot means no parent: defaults. */
	const struct dest_policy *dflt = dest_table_lookup(t, "no match");
	char *pat[PATTERNS_MAX];
	size_t n;

	check_policy(dflt, def);
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		check_policy(dest_table_lookup(t, domains[i]), def);
	n = patterns(text, pat);
	for (size_t i = 0; i < n; i++) {
		const struct dest_policy *p = dest_table_lookup(t, pat[i]);

		check_policy(p, def);
		CHECK(p != dflt);
		if (pat[i][0] == '.') {
			char sub[4200];

			snprintf(sub, sizeof(sub), "x%s", pat[i]);
			p = dest_table_lookup(t, sub);
			check_policy(p, def);
			CHECK(p != dflt);
		}
		free(pat[i]);
	}
}

/* load - invariant 1, with the global settings def */
static void
load(const struct dest_policy *def, const char *text)
{
	char err[512] = "";
	struct dest_table *t = dest_table_load(path, 0, def, err, sizeof(err));

	if (t == NULL) {
		CHECK(err[0] != '\0' && strstr(err, path) != NULL);
		return;
	}
	check_table(t, def, text);
	dest_table_free(&t);
	CHECK(t == NULL);
}

/* parse_value - invariant 4 on one string */
static void
parse_value(const char *s)
{
	char err[512] = "", *host = NULL;
	uint64_t *steps = NULL;
	size_t nsteps = 0;
	double rate = -1;
	int port = 0;

	if (dest_parse_hostport(s, 25, &host, &port, err, sizeof(err)) == 0) {
		size_t n = strlen(host);

		CHECK(n >= 1 && n <= 255 && port >= 1 && port <= 65535);
		free(host);
	} else {
		CHECK(err[0] != '\0');
	}
	err[0] = '\0';
	if (dest_parse_rate(s, &rate, err, sizeof(err)) == 0)
		CHECK(isfinite(rate) && (s[0] == '\0' ? rate == 0 : rate > 0));
	else
		CHECK(err[0] != '\0');
	err[0] = '\0';
	if (dest_parse_schedule(s, &steps, &nsteps, err, sizeof(err)) == 0) {
		CHECK(steps != NULL && nsteps >= 1 && nsteps <= 100);
		for (size_t i = 0; i < nsteps; i++)
			CHECK(steps[i] > 0);
		free(steps);
	} else {
		CHECK(err[0] != '\0');
	}
}

/* parse_words - parse_value on each word of text and on its value */
static void
parse_words(const char *text)
{
	char *copy = strdup(text), *save = NULL, *w;
	size_t k = 0;

	CHECK(copy != NULL);
	for (w = strtok_r(copy, " \t\r\n", &save); w && k < WORDS_MAX;
	     w = strtok_r(NULL, " \t\r\n", &save), k++) {
		char *eq = strchr(w, '=');

		parse_value(w);
		if (eq != NULL)
			parse_value(eq + 1);
	}
	free(copy);
}

/*
 * init_once - the memfd, and what the inputs cannot reach: a missing
 * file (optional or not) and a file of more than 100,000 lines.
 */
static void
init_once(const struct dest_policy *def)
{
	char err[512] = "";
	struct dest_table *t;
	size_t n = 100001;
	char *lines = malloc(n);

	memfd = memfd_create("fuzz_dest", MFD_CLOEXEC);
	CHECK(memfd >= 0 && lines != NULL);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	t = dest_table_load(
	    "/nonexistent/destinations", 0, def, err, sizeof(err));
	CHECK(t == NULL && strstr(err, "/nonexistent/destinations") != NULL);
	t = dest_table_load(
	    "/nonexistent/destinations", 1, def, err, sizeof(err));
	CHECK(t != NULL);
	check_policy(dest_table_lookup(t, "example.com"), def);
	dest_table_free(&t);
	memset(lines, '\n', n);
	CHECK(pwrite(memfd, lines, n, 0) == (ssize_t)n);
	err[0] = '\0';
	t = dest_table_load(path, 0, def, err, sizeof(err));
	CHECK(t == NULL && strstr(err, path) != NULL);
	free(lines);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dest_policy def = {
		.relay_host = NULL,
		.relay_port = 25,
		.tls = 1,
		.concurrency = 20,
		.initial_concurrency = 5,
		.messages_per_connection = 100,
		.recipients_per_message = 50,
		.rate = 0,
	};
	char *text;

	if (size > INPUT_MAX)
		return 0;
	if (memfd < 0)
		init_once(&def);
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	text = malloc(size + 1);
	CHECK(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';

	load(&def, text);
	def.relay_host = "relay.global.example";
	def.relay_port = 2525;
	load(&def, text);

	parse_value(text);
	parse_words(text);
	free(text);
	return 0;
}
