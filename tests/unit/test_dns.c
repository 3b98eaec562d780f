/*
 * test_dns.c - mail routes (mta/dns.c) answered from a local-data file
 * only: every name the tests resolve lies in the static zone "test.",
 * so no query leaves the machine (the timeout test excepted, which is
 * cut short by its own timeout).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "lib/util.h"
#include "mta/dns.h"

static char tmpdir[64];
static char zonefile[128];

/* What a callback saw; the route is copied since it lives for the call. */
struct result {
	int called;
	struct dns_route route;
	struct dns **free_in_cb; /* dns_free from inside the callback */
	struct dns *d;
	struct dns_query *cancel_in_cb; /* dns_cancel from inside it */
};

static void
on_route(void *arg, const struct dns_route *route)
{
	struct result *r = arg;

	r->called++;
	r->route = *route;
	if (r->free_in_cb != NULL)
		dns_free(r->free_in_cb);
	if (r->cancel_in_cb != NULL)
		dns_cancel(r->d, r->cancel_in_cb);
}

static bool expired;

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	expired = true;
}

/* run - loop until *called reaches n; fail after 5 s */
static void
run(struct event_base *base, const int *called, int n)
{
	struct timeval tv = { 5, 0 };
	struct event *guard = evtimer_new(base, on_guard, NULL);

	expired = false;
	evtimer_add(guard, &tv);
	while (*called < n && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	assert_false(expired);
}

/* run_for - loop for ms milliseconds */
static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static const char zone_text[] =
    "# Herald's test zone: nothing in it needs the network.\n"
    "server:\n"
    "\tlocal-zone: \"test.\" static\n"
    "\n"
    "local-data: \"pref.test. 3600 IN MX 20 mx2.pref.test.\"\n"
    "local-data: \"pref.test. 3600 IN MX 10 MX1.Pref.Test.\" # case\n"
    "local-data: \"mx1.pref.test. 300 IN A 127.0.0.1\"\n"
    "local-data: \"mx2.pref.test. IN A 127.0.0.2\"\n"
    "local-data: \"eq.test. MX 10 a.eq.test.\"\n"
    "local-data: \"eq.test. MX 10 b.eq.test.\"\n"
    "local-data: \"a.eq.test. A 127.0.1.1\"\n"
    "local-data: \"b.eq.test. A 127.0.1.2\"\n"
    "local-data: \"implicit.test. A 127.0.2.1\"\n"
    "local-data: \"nullmx.test. MX 0 .\"\n"
    "local-data: \"halfnull.test. MX 0 .\"\n"
    "local-data: \"halfnull.test. MX 10 mx1.pref.test.\"\n"
    "local-data: \"nohosts.test. MX 10 gone.test.\"\n"
    "local-data: \"nohosts.test. MX 20 noaddr.test.\"\n"
    "local-data: 'noaddr.test. TXT \"no address here\"'\n"
    "local-data: \"partial.test. MX 10 gone.test.\"\n"
    "local-data: \"partial.test. MX 20 mx.dual.test.\"\n"
    "local-data: \"dual.test. MX 10 mx.dual.test.\"\n"
    "local-data: \"mx.dual.test. A 127.0.3.1\"\n"
    "local-data: \"mx.dual.test. AAAA 2001:db8::1\"\n"
    "local-data: \"host.test. A 127.0.4.1\"\n"
    "local-data: \"slow.test. MX 10 mx1.pref.test.\"\n"
    "local-data: \"slow.test. MX 20 nowhere.example.\"\n";

static int
setup(void **state)
{
	FILE *fp;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/herald-test-dns-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(zonefile, sizeof(zonefile), "%s/zone.conf", tmpdir);
	if ((fp = fopen(zonefile, "w")) == NULL)
		return -1;
	fputs(zone_text, fp);
	/* many.test: more MX hosts than a route keeps. */
	for (int i = 1; i <= 20; i++)
		fprintf(fp,
		    "local-data: \"many.test. MX %d h%d.many.test.\"\n"
		    "local-data: \"h%d.many.test. A 127.0.5.%d\"\n",
		    i, i, i, i);
	/* wide.test: more addresses than a host keeps, in both families. */
	for (int i = 1; i <= 10; i++)
		fprintf(fp,
		    "local-data: \"wide.test. A 127.0.6.%d\"\n"
		    "local-data: \"wide.test. AAAA 2001:db8::6:%d\"\n",
		    i, i);
	return fclose(fp) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct dns *
new_dns(struct event_base *base, bool ipv6, bool prefer_ipv6)
{
	struct dns_config cfg = { zonefile, "", ipv6, prefer_ipv6, 5000 };
	char err[256] = "";
	struct dns *d = dns_new(base, &cfg, err, sizeof(err));

	if (d == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

/* route - resolve domain (or a host, when host) and wait for the result */
static struct result
resolve(struct event_base *base, struct dns *d, const char *name, bool host)
{
	struct result r;

	memset(&r, 0, sizeof(r));
	assert_non_null(host ? dns_host(d, name, on_route, &r)
			     : dns_route(d, name, on_route, &r));
	assert_int_equal(r.called, 0); /* never from inside the call */
	run(base, &r.called, 1);
	assert_int_equal(r.called, 1);
	return r;
}

static const char *
addr_text(const struct dns_host *h, size_t i, char *buf, size_t len)
{
	const struct sockaddr_storage *ss = &h->addrs[i];

	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)ss)->sin_addr, buf,
		    (socklen_t)len);
	assert_int_equal(ss->ss_family, AF_INET6);
	return inet_ntop(AF_INET6,
	    &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)len);
}

static void
assert_addr(const struct dns_host *h, size_t i, const char *want)
{
	char buf[INET6_ADDRSTRLEN];

	assert_true(i < h->naddrs);
	assert_string_equal(addr_text(h, i, buf, sizeof(buf)), want);
	assert_int_equal(h->addrlens[i],
	    h->addrs[i].ss_family == AF_INET ? sizeof(struct sockaddr_in)
					     : sizeof(struct sockaddr_in6));
}

static void
test_mx_order(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, false, false);
	struct result r;

	(void)state;
	r = resolve(base, d, "PREF.Test.", false);
	assert_int_equal(r.route.status, DNS_OK);
	assert_string_equal(r.route.error, "");
	assert_false(r.route.implicit);
	assert_int_equal(r.route.nhosts, 2);
	assert_string_equal(r.route.hosts[0].name, "mx1.pref.test");
	assert_int_equal(r.route.hosts[0].preference, 10);
	assert_int_equal(r.route.hosts[0].naddrs, 1);
	assert_addr(&r.route.hosts[0], 0, "127.0.0.1");
	assert_string_equal(r.route.hosts[1].name, "mx2.pref.test");
	assert_int_equal(r.route.hosts[1].preference, 20);
	assert_addr(&r.route.hosts[1], 0, "127.0.0.2");
	assert_int_equal(r.route.ttl, 300); /* the smallest */
	dns_free(&d);
	assert_null(d);
	event_base_free(base);
}

static void
test_equal_preference_shuffled(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	int a_first = 0, b_first = 0;

	(void)state;
	for (int i = 0; i < 50; i++) {
		struct result r = resolve(base, d, "eq.test", false);

		assert_int_equal(r.route.status, DNS_OK);
		assert_int_equal(r.route.nhosts, 2);
		if (strcmp(r.route.hosts[0].name, "a.eq.test") == 0) {
			assert_string_equal(r.route.hosts[1].name, "b.eq.test");
			a_first++;
		} else {
			assert_string_equal(r.route.hosts[0].name, "b.eq.test");
			assert_string_equal(r.route.hosts[1].name, "a.eq.test");
			b_first++;
		}
	}
	/* Both orders: (1/2)^49 odds of a false failure. */
	assert_true(a_first > 0);
	assert_true(b_first > 0);
	dns_free(&d);
	event_base_free(base);
}

static void
test_implicit_mx(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	struct result r;

	(void)state;
	r = resolve(base, d, "implicit.test", false);
	assert_int_equal(r.route.status, DNS_OK);
	assert_true(r.route.implicit);
	assert_int_equal(r.route.nhosts, 1);
	assert_string_equal(r.route.hosts[0].name, "implicit.test");
	assert_int_equal(r.route.hosts[0].preference, 0);
	assert_int_equal(r.route.hosts[0].naddrs, 1);
	assert_addr(&r.route.hosts[0], 0, "127.0.2.1");
	dns_free(&d);
	event_base_free(base);
}

static void
test_null_mx(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	struct result r;

	(void)state;
	r = resolve(base, d, "nullmx.test", false);
	assert_int_equal(r.route.status, DNS_NULLMX);
	assert_int_equal(r.route.nhosts, 0);
	assert_non_null(strstr(r.route.error, "nullmx.test"));
	assert_string_equal(dns_status_name(r.route.status), "null-mx");

	/* "." beside other MX records is not a null MX: it is ignored. */
	r = resolve(base, d, "halfnull.test", false);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.nhosts, 1);
	assert_string_equal(r.route.hosts[0].name, "mx1.pref.test");
	assert_string_equal(dns_status_name(DNS_OK), "ok");
	assert_string_equal(dns_status_name(DNS_TEMPFAIL), "tempfail");
	assert_string_equal(dns_status_name(DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(dns_status_name(DNS_NOHOSTS), "no-hosts");
	dns_free(&d);
	event_base_free(base);
}

static void
test_nxdomain(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	char longname[300];
	struct result r;

	(void)state;
	r = resolve(base, d, "nope.test", false);
	assert_int_equal(r.route.status, DNS_NXDOMAIN);
	assert_string_equal(r.route.error, "nope.test: NXDOMAIN");

	/* Names that are not names fail the same way, saying why. */
	r = resolve(base, d, "a..test", false);
	assert_int_equal(r.route.status, DNS_NXDOMAIN);
	assert_non_null(strstr(r.route.error, "empty label"));
	r = resolve(base, d, "", false);
	assert_int_equal(r.route.status, DNS_NXDOMAIN);
	assert_non_null(strstr(r.route.error, "empty name"));
	r = resolve(base, d, "bad name\".test", false);
	assert_int_equal(r.route.status, DNS_NXDOMAIN);
	assert_non_null(strstr(r.route.error, "invalid character"));
	assert_null(strchr(r.route.error, '"')); /* the input is quoted */
	memset(longname, 'a', 64);
	strcpy(longname + 64, ".test");
	r = resolve(base, d, longname, false);
	assert_non_null(strstr(r.route.error, "label too long"));
	for (int i = 0; i < 260; i += 2)
		memcpy(longname + i, "a.", 2);
	strcpy(longname + 260, "test");
	r = resolve(base, d, longname, false);
	assert_int_equal(r.route.status, DNS_NXDOMAIN);
	assert_non_null(strstr(r.route.error, "name too long"));
	dns_free(&d);
	event_base_free(base);
}

static void
test_no_hosts(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	struct result r;

	(void)state;
	/* One MX host does not exist, the other has no address. */
	r = resolve(base, d, "nohosts.test", false);
	assert_int_equal(r.route.status, DNS_NOHOSTS);
	assert_int_equal(r.route.nhosts, 0);
	assert_non_null(strstr(r.route.error, "nohosts.test"));

	/* A host without an address is skipped, the others kept. */
	r = resolve(base, d, "partial.test", false);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.nhosts, 1);
	assert_string_equal(r.route.hosts[0].name, "mx.dual.test");
	assert_int_equal(r.route.hosts[0].preference, 20);
	dns_free(&d);
	event_base_free(base);
}

static void
test_ipv6(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d;
	struct result r;

	(void)state;
	d = new_dns(base, true, true);
	r = resolve(base, d, "dual.test", false);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.hosts[0].naddrs, 2);
	assert_addr(&r.route.hosts[0], 0, "2001:db8::1");
	assert_addr(&r.route.hosts[0], 1, "127.0.3.1");
	dns_free(&d);

	d = new_dns(base, true, false);
	r = resolve(base, d, "dual.test", false);
	assert_int_equal(r.route.hosts[0].naddrs, 2);
	assert_addr(&r.route.hosts[0], 0, "127.0.3.1");
	assert_addr(&r.route.hosts[0], 1, "2001:db8::1");
	dns_free(&d);

	d = new_dns(base, false, true); /* no AAAA lookups at all */
	r = resolve(base, d, "dual.test", false);
	assert_int_equal(r.route.hosts[0].naddrs, 1);
	assert_addr(&r.route.hosts[0], 0, "127.0.3.1");
	dns_free(&d);
	event_base_free(base);
}

static void
test_limits(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, true);
	struct result r;
	char want[64];

	(void)state;
	r = resolve(base, d, "many.test", false);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.nhosts, DNS_MAX_HOSTS);
	for (int i = 0; i < DNS_MAX_HOSTS; i++) {
		snprintf(want, sizeof(want), "h%d.many.test", i + 1);
		assert_string_equal(r.route.hosts[i].name, want);
		assert_int_equal(r.route.hosts[i].preference, i + 1);
		snprintf(want, sizeof(want), "127.0.5.%d", i + 1);
		assert_addr(&r.route.hosts[i], 0, want);
	}

	/* 10 + 10 addresses: each family keeps half, IPv6 first. */
	r = resolve(base, d, "wide.test", true);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.hosts[0].naddrs, DNS_MAX_ADDRS);
	for (size_t i = 0; i < DNS_MAX_ADDRS; i++)
		assert_int_equal(r.route.hosts[0].addrs[i].ss_family,
		    i < DNS_MAX_ADDRS / 2 ? AF_INET6 : AF_INET);
	dns_free(&d);
	event_base_free(base);
}

static void
test_host(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, false, false);
	struct result r;

	(void)state;
	r = resolve(base, d, "Host.Test.", true);
	assert_int_equal(r.route.status, DNS_OK);
	assert_true(r.route.implicit);
	assert_int_equal(r.route.nhosts, 1);
	assert_string_equal(r.route.hosts[0].name, "host.test");
	assert_addr(&r.route.hosts[0], 0, "127.0.4.1");

	/* IP literals: no query, but still a callback from the loop. */
	r = resolve(base, d, "127.0.0.1", true);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.nhosts, 1);
	assert_int_equal(r.route.hosts[0].naddrs, 1);
	assert_addr(&r.route.hosts[0], 0, "127.0.0.1");
	assert_string_equal(r.route.hosts[0].name, "127.0.0.1");
	r = resolve(base, d, "::1", true);
	assert_int_equal(r.route.status, DNS_OK);
	assert_addr(&r.route.hosts[0], 0, "::1");
	r = resolve(base, d, "[IPv6:2001:db8::5]", true);
	assert_addr(&r.route.hosts[0], 0, "2001:db8::5");
	r = resolve(base, d, "[192.0.2.7]", false); /* user@[192.0.2.7] */
	assert_int_equal(r.route.status, DNS_OK);
	assert_true(r.route.implicit);
	assert_addr(&r.route.hosts[0], 0, "192.0.2.7");

	r = resolve(base, d, "nope.test", true);
	assert_int_equal(r.route.status, DNS_NXDOMAIN);
	r = resolve(base, d, "noaddr.test", true);
	assert_int_equal(r.route.status, DNS_NOHOSTS);
	dns_free(&d);
	event_base_free(base);
}

/* expect_config_error - dns_new refuses text, err contains want */
static void
expect_config_error(const char *text, const char *resolv, const char *want)
{
	struct event_base *base = event_base_new();
	char path[192], err[256] = "", full[300];
	struct dns_config cfg = { path, resolv, true, false, 0 };

	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	write_file(path, text);
	assert_null(dns_new(base, &cfg, err, sizeof(err)));
	snprintf(full, sizeof(full), want, path);
	if (strstr(err, full) == NULL)
		fail_msg("error \"%s\", expected \"%s\"", err, full);
	event_base_free(base);
}

static void
test_bad_config(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_config cfg = { "/nonexistent/zone.conf", "", true, false,
		0 };
	char err[256] = "";

	(void)state;
	expect_config_error("local-zone: \"test.\" static\n"
			    "# fine so far\n"
			    "local-data: \"x.test. IN A not-an-address\"\n",
	    "", "%s:3: local-data: bad record");
	expect_config_error("local-zone: \"test.\" static\n"
			    "forward-zone: \"x\"\n",
	    "", "%s:2: unknown directive");
	expect_config_error("local-zone: \"test.\" nonsense\n", "",
	    "%s:1: local-zone: bad zone");
	expect_config_error("\nlocal-zone: test.\n", "",
	    "%s:2: local-zone: expected a zone name and a type");
	expect_config_error("local-data: \"x.test. A 127.0.0.1\n", "",
	    "%s:1: unterminated quote");
	expect_config_error("just words\n", "", "%s:1: expected");

	assert_null(dns_new(base, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/zone.conf: "));
	cfg.local_data = zonefile;
	cfg.resolv_conf = "/nonexistent/resolv.conf";
	assert_null(dns_new(base, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/resolv.conf: "));
	event_base_free(base);
}

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	struct result r1, r2, r3;
	struct dns_query *q;

	(void)state;
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));

	/* Cancelled at once, and an IP literal cancelled before its turn. */
	q = dns_route(d, "pref.test", on_route, &r1);
	dns_cancel(d, q);
	q = dns_host(d, "127.0.0.1", on_route, &r1);
	dns_cancel(d, q);
	dns_cancel(d, NULL);

	/* Cancelled by another query's callback, mid-way through. */
	r2.d = d;
	r2.cancel_in_cb = dns_route(d, "many.test", on_route, &r3);
	assert_non_null(dns_route(d, "implicit.test", on_route, &r2));
	run(base, &r2.called, 1);
	run_for(base, 300);
	assert_int_equal(r1.called, 0);
	assert_int_equal(r3.called, 0);

	/* Still works afterwards. */
	r1 = resolve(base, d, "pref.test", false);
	assert_int_equal(r1.route.status, DNS_OK);
	dns_free(&d);
	event_base_free(base);
}

static void
test_free_pending(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *d = new_dns(base, true, false);
	struct result r1, r2;

	(void)state;
	memset(&r1, 0, sizeof(r1));
	memset(&r2, 0, sizeof(r2));

	/* dns_free with lookups in flight: no callback, nothing leaks. */
	assert_non_null(dns_route(d, "pref.test", on_route, &r1));
	assert_non_null(dns_route(d, "many.test", on_route, &r1));
	assert_non_null(dns_host(d, "::1", on_route, &r1));
	dns_free(&d);
	run_for(base, 100);
	assert_int_equal(r1.called, 0);

	/* dns_free from inside a callback stops the other queries. */
	d = new_dns(base, true, false);
	r1.free_in_cb = &d;
	assert_non_null(dns_host(d, "127.0.0.1", on_route, &r1));
	assert_non_null(dns_route(d, "many.test", on_route, &r2));
	run(base, &r1.called, 1);
	assert_null(d);
	run_for(base, 200);
	assert_int_equal(r1.called, 1);
	assert_int_equal(r2.called, 0);
	event_base_free(base);
}

/*
 * test_timeout - names outside the local zones, without a resolver to
 * forward to: libunbound recurses from the root, which this machine
 * cannot reach (the lookups are cut by the timeout), or reaches (then
 * "nowhere.example" does not exist).  Either way, never a hang.
 */
static void
test_timeout(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_config cfg = { zonefile, "", true, false, 300 };
	char err[256];
	struct dns *d = dns_new(base, &cfg, err, sizeof(err));
	uint64_t start = now_ms(), elapsed;
	struct result r;

	(void)state;
	assert_non_null(d);

	/* The address lookups of one MX host time out: the other is kept. */
	r = resolve(base, d, "slow.test", false);
	elapsed = now_ms() - start;
	assert_true(elapsed < 300 + 1000);
	assert_int_equal(r.route.status, DNS_OK);
	assert_int_equal(r.route.nhosts, 1);
	assert_string_equal(r.route.hosts[0].name, "mx1.pref.test");

	/* The MX lookup itself times out. */
	start = now_ms();
	r = resolve(base, d, "nowhere.example", false);
	elapsed = now_ms() - start;
	assert_true(elapsed < 300 + 1000);
	dns_free(&d);
	event_base_free(base);
	if (r.route.status == DNS_NXDOMAIN)
		skip(); /* the network answered: there was nothing to cut */
	assert_int_equal(r.route.status, DNS_TEMPFAIL);
	assert_string_equal(r.route.error, "nowhere.example: timeout");
	assert_true(elapsed >= 290);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_equal_preference_shuffled),
		cmocka_unit_test(test_implicit_mx),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_no_hosts),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_free_pending),
		cmocka_unit_test(test_timeout),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
