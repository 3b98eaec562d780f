/*
 * dns - asynchronous resolution of mail routes with libunbound.
 *
 * One struct dns per event loop.  It owns a libunbound context whose
 * descriptor (ub_fd) is watched by the loop, so lookups never block it.
 * libunbound caches every answer for its TTL; this module adds nothing
 * on top of that cache.
 *
 * dns_route() turns a recipient domain into the ordered list of hosts to
 * try, as RFC 5321 section 5.1 says:
 *   - MX records, lowest preference first, hosts of equal preference in
 *     random order (shuffled on every call);
 *   - no MX record (NOERROR/NODATA) -> the domain itself is the one host
 *     (implicit MX, preference 0);
 *   - a single MX "0 ." (RFC 7505 null MX) -> DNS_NULLMX, permanent;
 *   - NXDOMAIN -> DNS_NXDOMAIN, permanent;
 *   - SERVFAIL, timeouts, network errors -> DNS_TEMPFAIL;
 *   - each host's A and AAAA records are looked up (AAAA skipped when
 *     cfg->ipv6 is false); IPv6 addresses of a host come before its IPv4
 *     ones when cfg->prefer_ipv6, else after;
 *   - an MX host that has no address is skipped (logged); when no host
 *     of the route has an address the result is DNS_TEMPFAIL if any
 *     lookup failed temporarily, else DNS_NOHOSTS (permanent);
 *   - cfg->timeout bounds the whole route: a timeout during the MX
 *     lookup is DNS_TEMPFAIL "DOMAIN: timeout"; during the address
 *     lookups, the hosts still waiting count as failed temporarily
 *     (so the hosts already resolved are returned);
 *   - a domain that is not a valid name (empty label, too long, bad
 *     character) gives DNS_NXDOMAIN with the reason in error; an
 *     address literal in brackets ("[192.0.2.1]", "[IPv6:...]") is
 *     its own single host, with no query.
 * Limits: at most DNS_MAX_HOSTS hosts and DNS_MAX_ADDRS addresses per
 * host are kept; longer answers are cut (logged).  When both families
 * have more addresses than fit, each keeps at least half the slots.
 *
 * Configuration: cfg->local_data names a file of unbound "local-zone:"
 * and "local-data:" lines (the same syntax as unbound.conf) that answer
 * before anything else: tests and private networks use it so that no
 * query leaves the machine.  cfg->resolv_conf names the resolver to
 * forward to ("" = do not read one; with neither, libunbound recurses
 * from the root hints).  Errors in these files are reported with the
 * file name and line.  As in unbound.conf, every local-zone applies
 * before any local-data, whatever their order in the file; a
 * "server:" line is allowed and ignored, other directives are errors.
 *
 * libunbound resolves in a thread of its own: create the resolver
 * after any fork of the daemon.
 */
#ifndef HERALD_MTA_DNS_H
#define HERALD_MTA_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

#define DNS_MAX_HOSTS 16
#define DNS_MAX_ADDRS 8

enum dns_status {
	DNS_OK,
	DNS_TEMPFAIL, /* try again later */
	DNS_NXDOMAIN, /* the domain does not exist: permanent */
	DNS_NULLMX,   /* the domain accepts no mail (RFC 7505): permanent */
	DNS_NOHOSTS,  /* no MX host has an address: permanent */
};

struct dns_config {
	const char *local_data;	 /* file of local-zone/local-data lines, or "" */
	const char *resolv_conf; /* e.g. "/etc/resolv.conf", or "" */
	bool ipv6;		 /* look up AAAA */
	bool prefer_ipv6;	 /* IPv6 addresses first */
	uint64_t timeout;	 /* ms for a whole dns_route(); 0 = 30 s */
};

struct dns_host {
	char name[256]; /* host name, lower case, no trailing dot */
	int preference;
	size_t naddrs;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS]; /* port left 0 */
	socklen_t addrlens[DNS_MAX_ADDRS];
};

struct dns_route {
	enum dns_status status;
	char error[256]; /* why, when status != DNS_OK, e.g. "example.com: NXDOMAIN" */
	bool implicit;	 /* no MX: the domain itself */
	uint32_t ttl;	 /* smallest TTL seen, seconds (0: none) */
	size_t nhosts;
	struct dns_host hosts[DNS_MAX_HOSTS];
};

struct dns;

/* dns_route_cb - the result; route is valid only during the call */
typedef void dns_route_cb(void *arg, const struct dns_route *route);

/*
 * dns_new - a resolver on base.  Returns NULL with a message in err
 * (naming the file and line of a bad local-data entry).
 */
struct dns *dns_new(struct event_base *base, const struct dns_config *cfg,
    char *err, size_t errlen);
/*
 * dns_free - cancel lookups in progress (their callbacks are not
 * called).  Allowed from inside a dns_route_cb.
 */
void dns_free(struct dns **dp);

/*
 * dns_route - resolve the mail route of domain (ASCII, A-label form).
 * cb is called exactly once, always later from the loop (never from
 * inside dns_route); it may call any function of this module.  Returns
 * a handle for dns_cancel, valid until cb has run, or NULL only if
 * memory ran out (then cb is not called).
 */
struct dns_query *dns_route(
    struct dns *d, const char *domain, dns_route_cb *cb, void *arg);

/*
 * dns_host - resolve a single host name to addresses (for a transport
 * or relay host given by name): same callback, one host in the route,
 * implicit true.  An IP literal needs no query but still calls back
 * later.
 */
struct dns_query *dns_host(
    struct dns *d, const char *host, dns_route_cb *cb, void *arg);

/*
 * dns_cancel - the callback of q will not be called; q is freed.  NULL
 * is ignored; so is q from inside its own callback.
 */
void dns_cancel(struct dns *d, struct dns_query *q);

/* dns_status_name - "ok", "tempfail", "nxdomain", "null-mx", "no-hosts" */
const char *dns_status_name(enum dns_status s);

#endif
