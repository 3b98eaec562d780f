/*
 * cmd_serve.c - `herald serve`: run the server in the foreground.
 *
 * Order: open the store (migrations), recover the spool, bind every
 * listener, drop privileges, start the loops, print where we listen,
 * then wait for SIGTERM or SIGINT.  On the way out the loops stop first,
 * then the spool committer finishes its queue, so no message that was
 * being synced is cut off.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "mta/mta.h"
#include "smtpd/smtpd.h"
#include "spool/spool.h"
#include "store/store.h"

static void
print_line(const char *line)
{
	printf("%s\n", line);
}

/*
 * lock_data_dir - hold an exclusive lock on <data>/serve.lock for the
 * life of the process.  A second server on the same data directory
 * would run spool recovery under the first one's feet.  Returns the
 * descriptor, or -1 after printing why.
 */
static int
lock_data_dir(const char *data_dir)
{
	char *path = fs_path_join(data_dir, "serve.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		cli_fail("cannot open %s: %s", path, strerror(errno));
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		cli_fail("%s is in use by another herald serve (%s is locked)",
		    data_dir, path);
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/*
 * raise_fd_limit - lift the soft descriptor limit to the hard one: every
 * connection and every message being synced holds a descriptor, and the
 * usual soft limit (1024) is below smtpd.max_connections.
 */
static void
raise_fd_limit(int64_t max_connections)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)max_connections + 256)
		log_write(LOG_WARN, "serve",
		    "event=fd-limit limit=%llu max_connections=%lld "
		    "reason=\"smtpd.max_connections plus spool files may not "
		    "fit; raise LimitNOFILE or ulimit -n\"",
		    (unsigned long long)rl.rlim_cur,
		    (long long)max_connections);
}

/*
 * drop_privileges - become server.user when running as root, then check
 * that the user can write the spool: better to stop now with the reason
 * than to answer every message with 451.
 */
static int
drop_privileges(const char *user, const char *data_dir)
{
	char *queue;
	int r = 0;

	struct passwd *pw;

	if (geteuid() != 0 || *user == '\0')
		return 0;
	if ((pw = getpwnam(user)) == NULL)
		return cli_fail("server.user: no user '%s'", user);
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return cli_fail(
		    "cannot switch to user '%s': %s", user, strerror(errno));
	log_write(LOG_INFO, "serve", "event=privileges-dropped user=%s", user);
	queue = fs_path_join(data_dir, "spool/queue");
	if (access(queue, W_OK | X_OK) < 0)
		r = cli_fail(
		    "server.user '%s' cannot write %s: %s (it must own "
		    "the data directory and reach it)",
		    user, queue, strerror(errno));
	free(queue);
	return r;
}

int
cmd_serve(struct cli *c, int argc, char **argv)
{
	struct herald_conf *cf = &c->conf;
	struct store *st;
	struct spool *spool;
	struct smtpd *smtpd;
	struct mta *mta = NULL;
	struct api *api = NULL;
	char *dir;
	const char *error;
	char err[1024];
	sigset_t sigs;
	int lock;
	int sig = 0;

	if (argc > 1)
		return cli_usage_error(c, "unexpected argument '%s'", argv[1]);
	/* Threads inherit this mask: only sigwait() below sees the signals. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((lock = lock_data_dir(cf->data_dir)) < 0)
		return 1;
	raise_fd_limit(cf->smtpd.max_connections);
	if ((st = cli_store(c)) == NULL)
		return 1;
	store_close(&st);
	dir = fs_path_join(cf->data_dir, "spool");
	spool = spool_open(dir, &cf->spool, 1, &error);
	free(dir);
	if (spool == NULL)
		return cli_fail("%s", error);
	smtpd = smtpd_new(&cf->smtpd, spool, cf->store_url, err, sizeof(err));
	if (smtpd == NULL) {
		spool_close(&spool);
		return cli_fail("%s", err);
	}
	if (cf->mta.enabled &&
	    (mta = mta_new(&cf->mta, cf->smtpd.hostname, cf->data_dir,
		 cf->store_url, spool, err, sizeof(err))) == NULL) {
		smtpd_free(&smtpd);
		spool_close(&spool);
		return cli_fail("%s", err);
	}
	if (drop_privileges(cf->server_user, cf->data_dir) != 0) {
		mta_free(&mta);
		smtpd_free(&smtpd);
		spool_close(&spool);
		return 1;
	}
	if (mta != NULL && mta_run(mta, err, sizeof(err)) < 0) {
		mta_free(&mta);
		smtpd_free(&smtpd);
		spool_close(&spool);
		return cli_fail("%s", err);
	}
	smtpd_run(smtpd);
	printf(
	    "herald serving data %s (pid %d)\n", cf->data_dir, (int)getpid());
	smtpd_describe(smtpd, print_line);
	if (cf->api.listen[0] != '\0' &&
	    (api = api_start(&cf->api, cf->store_url, cf->data_dir, print_line,
		 err, sizeof(err))) == NULL) {
		smtpd_stop(smtpd);
		if (mta != NULL)
			mta_stop(mta);
		spool_close(&spool);
		mta_free(&mta);
		smtpd_free(&smtpd);
		return cli_fail("%s", err);
	}
	fflush(stdout);
	log_write(LOG_INFO, "serve", "event=started pid=%d", (int)getpid());

	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
		log_write(LOG_INFO, "serve", "event=sighup action=none");
	log_write(LOG_INFO, "serve", "event=stopping signal=%d", sig);
	api_stop(&api);
	smtpd_stop(smtpd);
	if (mta != NULL)
		mta_stop(mta);
	spool_close(&spool);
	mta_free(&mta);
	smtpd_free(&smtpd);
	log_write(LOG_INFO, "serve", "event=stopped");
	return 0;
}
