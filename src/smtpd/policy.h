/*
 * policy - who may send what through this server.
 *
 * The loops never query the database.  A policy thread loads every
 * account's sender domains, SMTP credentials and relay addresses from
 * the store into an immutable snapshot, and loads a new one when the
 * store says something changed (`herald credential revoke` takes effect
 * within smtpd.policy_refresh).  A lookup takes a reference to the
 * current snapshot, so a reload never pulls data from under a session.
 */
#ifndef HERALD_SMTPD_POLICY_H
#define HERALD_SMTPD_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct policy;

/*
 * policy_new - open the store at store_url, load the first snapshot and
 * start the refresh thread.  inbound_domains is the comma-separated list
 * of Herald's own domains (lower-case ASCII).  NULL with err on failure.
 */
struct policy *policy_new(const char *store_url, const char *inbound_domains,
    uint64_t refresh_ms, char *err, size_t errlen);
void policy_free(struct policy **pp);

/*
 * policy_auth - check an SMTP credential.  Returns 1 and sets the
 * account and credential ids when user and secret match a credential
 * that is not revoked, of an account that is not disabled; 0 otherwise.
 * The comparison takes the same time whether the user exists or not.
 */
int policy_auth(struct policy *p, const char *user, const char *secret,
    int64_t *account_r, int64_t *credential_r);
/*
 * policy_relay_account - the account that allows the client address sa
 * to send without AUTH, or 0.
 */
int64_t policy_relay_account(struct policy *p, const struct sockaddr *sa);
/* policy_domain_owned - whether domain (lower-case ASCII) is account's */
bool policy_domain_owned(struct policy *p, int64_t account, const char *domain);
/* policy_inbound - whether domain (lower-case ASCII) is an inbound domain */
bool policy_inbound(struct policy *p, const char *domain);

#endif
