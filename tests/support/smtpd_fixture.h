/*
 * smtpd_fixture - an SMTP server without listeners, for tests: a real
 * store, spool and policy in a temporary directory and one event loop;
 * sessions are started on one end of a socketpair and the test talks on
 * the other, pumping the loop itself.
 *
 * The store holds account "acme" (sender domain example.com) with the
 * credential app1 / SMTPD_FIXTURE_SECRET; the inbound domain is
 * inbound.test.
 */
#ifndef HERALD_TESTS_SMTPD_FIXTURE_H
#define HERALD_TESTS_SMTPD_FIXTURE_H

#include <stdbool.h>

#include "smtpd/session.h"

#define SMTPD_FIXTURE_SECRET "s3cret-s3cret-s3cret-s3cret-0123"

struct smtpd_fixture {
	char dir[64];
	struct smtpd_config cfg;
	struct smtpd_shared sh;
	struct session_loop loop;
	struct spool *spool;
};

/* smtpd_fixture_setup - build everything; aborts the test on failure */
void smtpd_fixture_setup(struct smtpd_fixture *fx);
/* smtpd_fixture_teardown - let sessions finish, then free everything */
void smtpd_fixture_teardown(struct smtpd_fixture *fx);
/* smtpd_fixture_connect - a session of kind; returns the client's fd */
int smtpd_fixture_connect(struct smtpd_fixture *fx, enum listener_kind kind);
/* smtpd_fixture_pump - run the loop without blocking, n times */
void smtpd_fixture_pump(struct smtpd_fixture *fx, int n);
/*
 * smtpd_fixture_reply - send text (may be NULL), then pump until a
 * complete reply arrives ("NNN " line), the server closes (*closed_r)
 * or 5 s pass; returns the last line (a static buffer).
 */
const char *smtpd_fixture_reply(
    struct smtpd_fixture *fx, int fd, const char *text, bool *closed_r);

#endif
