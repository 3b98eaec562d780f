/*
 * smtpd_fixture.c - a listener-less SMTP server for tests (see .h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <sodium.h>

#include "lib/util.h"
#include "smtpd/limits.h"
#include "smtpd/policy.h"
#include "spool/spool.h"
#include "store/store.h"
#include "support/smtpd_fixture.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fixture: %s failed: %s\n", #cond,     \
			    error ? error : "?");                              \
			abort();                                               \
		}                                                              \
	} while (0)

void
smtpd_fixture_setup(struct smtpd_fixture *fx)
{
	struct spool_config scfg = { SPOOL_SYNC_SYNCFS, 64, 65536 };
	char path[128], hash[65], err[256];
	const char *error = NULL;
	struct store *st;
	int64_t account, cred;

	memset(fx, 0, sizeof(*fx));
	/* Both ends are ours: a write to a closed peer must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	CHECK(sodium_init() >= 0);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/herald-test-smtpd-XXXXXX");
	CHECK(mkdtemp(fx->dir) != NULL);
	snprintf(path, sizeof(path), "%s/herald.db", fx->dir);
	st = store_open(path, &error);
	CHECK(st != NULL);
	CHECK(store_migrate(st, &error) == 0);
	CHECK(store_account_create(st, "acme", &account, &error) == 0);
	CHECK(store_domain_add(st, account, "example.com", &error) == 0);
	store_secret_hash(SMTPD_FIXTURE_SECRET, hash);
	CHECK(store_credential_create(
		  st, account, "app1", hash, &cred, &error) == 0);
	store_close(&st);

	fx->cfg.hostname = "herald.test";
	fx->cfg.threads = 1;
	fx->cfg.max_message_size = 10000;
	fx->cfg.max_recipients = 3;
	fx->cfg.max_connections = 100;
	fx->cfg.max_connections_per_ip = 100;
	fx->cfg.command_line_max = 512;
	fx->cfg.data_line_max = 1000;
	fx->cfg.max_header_size = 4096;
	fx->cfg.command_timeout = 5000;
	fx->cfg.data_timeout = 5000;
	fx->cfg.tls_handshake_timeout = 5000;
	fx->cfg.max_errors = 20;
	fx->cfg.auth_over_plaintext = true;
	fx->cfg.auth_max_failures = 3;
	fx->cfg.auth_lockout = 60000;
	fx->cfg.auth_fail_delay = 1;
	fx->cfg.sender_policy = SMTPD_SENDER_STRICT;
	fx->cfg.require_8bitmime = true;

	snprintf(path, sizeof(path), "%s/spool", fx->dir);
	fx->spool = spool_open(path, &scfg, 1, &error);
	CHECK(fx->spool != NULL);
	snprintf(path, sizeof(path), "%s/herald.db", fx->dir);
	fx->sh.cfg = &fx->cfg;
	fx->sh.spool = fx->spool;
	fx->sh.policy =
	    policy_new(path, "inbound.test", 1000, err, sizeof(err));
	error = err;
	CHECK(fx->sh.policy != NULL);
	fx->sh.limits = limits_new(100, 100, 3, 60000);
	fx->sh.size_text = "10000";
	fx->loop.base = event_base_new();
	fx->loop.sh = &fx->sh;
	fx->loop.scratch_len = 65536;
	fx->loop.scratch = xmalloc(fx->loop.scratch_len + 1);
}

void
smtpd_fixture_pump(struct smtpd_fixture *fx, int n)
{
	for (int i = 0; i < n; i++)
		event_base_loop(fx->loop.base, EVLOOP_NONBLOCK);
}

void
smtpd_fixture_teardown(struct smtpd_fixture *fx)
{
	/* Let sessions closed by the last case free themselves. */
	smtpd_fixture_pump(fx, 50);
	spool_close(&fx->spool);
	policy_free(&fx->sh.policy);
	limits_free(&fx->sh.limits);
	event_base_free(fx->loop.base);
	free(fx->loop.scratch);
}

int
smtpd_fixture_connect(struct smtpd_fixture *fx, enum listener_kind kind)
{
	struct sockaddr_in sin;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	session_start(
	    &fx->loop, sv[0], (struct sockaddr *)&sin, sizeof(sin), kind);
	return sv[1];
}

const char *
smtpd_fixture_reply(
    struct smtpd_fixture *fx, int fd, const char *text, bool *closed_r)
{
	static char got[65536];
	size_t len = 0;
	uint64_t deadline = now_ms() + 5000;

	if (text && *text &&
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	*closed_r = false;
	got[0] = '\0';
	while (now_ms() < deadline) {
		ssize_t n;
		char *line;

		event_base_loop(fx->loop.base, EVLOOP_NONBLOCK);
		n = read(fd, got + len, sizeof(got) - 1 - len);
		if (n == 0) {
			*closed_r = true;
			break;
		}
		if (n > 0) {
			len += (size_t)n;
			got[len] = '\0';
		}
		/* The last complete line: done when it is "NNN " style. */
		if (len >= 2 && got[len - 1] == '\n') {
			got[len - 2] = '\0';
			line = strrchr(got, '\n');
			line = line ? line + 1 : got;
			if (strlen(line) >= 4 && line[3] == ' ')
				return line;
			got[len - 2] = '\r';
		}
		if (n < 0 && errno != EAGAIN)
			break;
		if (len == sizeof(got) - 1)
			len = 0;
		usleep(200);
	}
	return got;
}
