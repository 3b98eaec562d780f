/*
 * limits - counters shared by all loop threads: connections per client
 * address, and authentication failures per address and per user name
 * (back-off and lockout).  Every function is thread-safe.
 */
#ifndef HERALD_SMTPD_LIMITS_H
#define HERALD_SMTPD_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

struct limits;

struct limits *limits_new(int64_t max_connections, int64_t max_per_ip,
    int64_t auth_max_failures, uint64_t auth_lockout_ms);
void limits_free(struct limits **lp);

enum limits_verdict { LIMITS_OK, LIMITS_TOTAL, LIMITS_PER_IP };
/* limits_connect - count a new connection from ip, unless over a limit */
enum limits_verdict limits_connect(struct limits *l, const char *ip);
/* limits_disconnect - forget a connection that limits_connect counted */
void limits_disconnect(struct limits *l, const char *ip);

/*
 * limits_auth_locked - whether ip or user is locked out now.  user may
 * be NULL (checks the address only).
 */
bool limits_auth_locked(struct limits *l, const char *ip, const char *user);
/*
 * limits_auth_failed - record a failure for ip and user; returns the
 * number of recent failures of the address (for the back-off delay).
 */
int limits_auth_failed(struct limits *l, const char *ip, const char *user);
/* limits_auth_ok - clear the failures of ip and user */
void limits_auth_ok(struct limits *l, const char *ip, const char *user);

#endif
