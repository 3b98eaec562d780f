/*
 * spool.c - durable message files with group commit (see spool.h).
 *
 * Design notes.
 *
 * 1. The message file is written by the session's thread with plain
 *    write(2)s (page cache, no waiting on the disk).  Only syncing waits
 *    for the device, and only the committer thread syncs.
 * 2. The committer takes everything queued since its last sync (at most
 *    commit_max_batch) and makes it durable with one sync operation;
 *    while it syncs, new commits pile up for the next batch.  Under load
 *    a batch holds many messages, so the cost of a sync is shared.
 * 3. The state and size are written before the sync.  After a crash, a
 *    file still in state 0, or whose length disagrees with its size
 *    field, was never acknowledged: it is removed or set aside.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "spool/spool.h"

#define SPOOL_MAGIC "HERALD-SPOOL 1 "	   /* committed */
#define SPOOL_MAGIC_OPEN "HERALD-SPOOL 0 " /* still being written */
#define SPOOL_STATE_OFF 13		   /* where the 0 or 1 stands */
#define SPOOL_SIZE_DIGITS 20
#define SPOOL_HEADER_MAX (256 * 1024)

struct spool_msg {
	struct spool *sp;
	int fd;
	char id[QUEUE_ID_LEN + 1];
	uint64_t size; /* message bytes written (buffered included) */
	bool flushed;  /* some of the file went to disk already */
	struct buf wbuf;
	spool_commit_cb *cb;
	void *arg;
	struct spool_msg *next;
};

struct spool {
	char *dir;
	char *queue, *corrupt;
	int queue_fd; /* for syncfs and the directory fsync */
	struct spool_config cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct spool_msg *head, **tail;
	spool_hook *hook; /* told of each durable message */
	void *hook_arg;
	int stopping;
	uint64_t batches, committed;
};

static void *spool_committer(void *arg);

/*
 * spool_check - read and validate one queue file.  Returns 0; or -1
 * with *error_r, and *open_r set when the file is one still being
 * written (never committed), not a damaged one.
 */
static int
spool_check(const char *path, struct envelope *env, off_t *body_off_r,
    bool *open_r, const char **error_r)
{
	static __thread char err[256];
	char *head = NULL, *end;
	struct stat st;
	ssize_t n;
	uint64_t size;
	int fd, r = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
		goto out;
	}
	head = xmalloc(SPOOL_HEADER_MAX + 1);
	n = pread(fd, head, SPOOL_HEADER_MAX, 0);
	if (n < 0) {
		snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
		goto out;
	}
	head[n] = '\0';
	*open_r = (size_t)n >= sizeof(SPOOL_MAGIC_OPEN) - 1 &&
	    memcmp(head, SPOOL_MAGIC_OPEN, sizeof(SPOOL_MAGIC_OPEN) - 1) == 0;
	if (*open_r) {
		snprintf(err, sizeof(err), "%s: never committed", path);
		goto out;
	}
	if ((size_t)n < sizeof(SPOOL_MAGIC) - 1 + SPOOL_SIZE_DIGITS + 1 ||
	    memcmp(head, SPOOL_MAGIC, sizeof(SPOOL_MAGIC) - 1) != 0 ||
	    head[sizeof(SPOOL_MAGIC) - 1 + SPOOL_SIZE_DIGITS] != '\n') {
		snprintf(err, sizeof(err), "%s: not a spool file", path);
		goto out;
	}
	size = strtoull(head + sizeof(SPOOL_MAGIC) - 1, NULL, 10);
	end = strstr(head, "\n\n");
	if (end == NULL) {
		snprintf(err, sizeof(err), "%s: envelope not terminated", path);
		goto out;
	}
	if ((uint64_t)st.st_size != (uint64_t)(end + 2 - head) + size) {
		snprintf(err, sizeof(err),
		    "%s: incomplete (length %jd, expected %" PRIu64 ")", path,
		    (intmax_t)st.st_size, (uint64_t)(end + 2 - head) + size);
		goto out;
	}
	{
		const char *line1 =
		    head + sizeof(SPOOL_MAGIC) - 1 + SPOOL_SIZE_DIGITS + 1;

		if (envelope_parse(
			line1, (size_t)(end + 1 - line1), env, error_r) < 0) {
			snprintf(err, sizeof(err), "%s: %s", path, *error_r);
			goto out;
		}
	}
	env->size = size;
	if (body_off_r)
		*body_off_r = (off_t)(end + 2 - head);
	r = 0;
out:
	if (r < 0)
		*error_r = err;
	free(head);
	if (fd >= 0)
		close(fd);
	return r;
}

int
spool_read(const char *path, struct envelope *env, off_t *body_off_r,
    const char **error_r)
{
	bool open;

	return spool_check(path, env, body_off_r, &open, error_r);
}

/*
 * spool_recover - remove files that were never committed (a crash while
 * they were written), set aside damaged ones (committed but not yet
 * synced when the machine stopped: never acknowledged either).
 */
static void
spool_recover(struct spool *sp)
{
	struct dirent *de;
	DIR *d;
	int removed = 0, bad = 0;

	if ((d = opendir(sp->queue)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct envelope env;
		const char *error;
		bool open = false;
		char *p, *q;

		if (de->d_name[0] == '.')
			continue;
		p = fs_path_join(sp->queue, de->d_name);
		envelope_init(&env);
		if (spool_check(p, &env, NULL, &open, &error) < 0) {
			if (open) {
				unlink(p);
				removed++;
			} else {
				q = fs_path_join(sp->corrupt, de->d_name);
				log_write(LOG_WARN, "spool",
				    "event=set-aside file=%s reason=\"%s\"",
				    de->d_name, error);
				if (rename(p, q) < 0)
					unlink(p);
				free(q);
				bad++;
			}
		}
		envelope_clear(&env);
		free(p);
	}
	closedir(d);
	if (removed || bad)
		log_write(LOG_INFO, "spool",
		    "event=recovered uncommitted_removed=%d set_aside=%d",
		    removed, bad);
}

struct spool *
spool_open(const char *dir, const struct spool_config *cfg, int recover,
    const char **error_r)
{
	static __thread char err[512];
	struct spool *sp = xcalloc(1, sizeof(*sp));

	sp->dir = xstrdup(dir);
	sp->queue = fs_path_join(dir, "queue");
	sp->corrupt = fs_path_join(dir, "corrupt");
	sp->cfg = *cfg;
	sp->queue_fd = -1;
	if (fs_mkdirs(sp->queue, 0700) < 0 ||
	    fs_mkdirs(sp->corrupt, 0700) < 0) {
		snprintf(err, sizeof(err), "cannot create spool %s: %s", dir,
		    strerror(errno));
		goto fail;
	}
	sp->queue_fd = open(sp->queue, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->queue_fd < 0) {
		snprintf(err, sizeof(err), "cannot open %s: %s", sp->queue,
		    strerror(errno));
		goto fail;
	}
	if (recover)
		spool_recover(sp);
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	sp->tail = &sp->head;
	if (pthread_create(&sp->thread, NULL, spool_committer, sp) != 0) {
		snprintf(err, sizeof(err), "cannot start the spool committer");
		goto fail;
	}
	return sp;
fail:
	*error_r = err;
	if (sp->queue_fd >= 0)
		close(sp->queue_fd);
	free(sp->dir);
	free(sp->queue);
	free(sp->corrupt);
	free(sp);
	return NULL;
}

void
spool_close(struct spool **spp)
{
	struct spool *sp = *spp;

	if (sp == NULL)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->stopping = 1;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	close(sp->queue_fd);
	free(sp->dir);
	free(sp->queue);
	free(sp->corrupt);
	free(sp);
	*spp = NULL;
}

struct spool_msg *
spool_msg_new(
    struct spool *sp, const struct envelope *env, const char **error_r)
{
	static __thread char err[256];
	struct spool_msg *m;
	char *path;

	m = xcalloc(1, sizeof(*m));
	m->sp = sp;
	memcpy(m->id, env->id, sizeof(m->id));
	path = fs_path_join(sp->queue, m->id);
	m->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	free(path);
	if (m->fd < 0) {
		snprintf(err, sizeof(err), "cannot create spool file %s: %s",
		    m->id, strerror(errno));
		*error_r = err;
		free(m);
		return NULL;
	}
	buf_printf(
	    &m->wbuf, "%s%0*d\n", SPOOL_MAGIC_OPEN, SPOOL_SIZE_DIGITS, 0);
	envelope_serialize(env, &m->wbuf);
	buf_puts(&m->wbuf, "\n");
	m->size = 0;
	return m;
}

static int
msg_flush(struct spool_msg *m)
{
	if (m->wbuf.len == 0)
		return 0;
	if (fs_write_all(m->fd, m->wbuf.data, m->wbuf.len) < 0)
		return -1;
	m->flushed = true;
	buf_reset(&m->wbuf);
	return 0;
}

int
spool_msg_write(struct spool_msg *m, const void *p, size_t n)
{
	if (m->wbuf.len + n > m->sp->cfg.write_buffer && msg_flush(m) < 0)
		return -1;
	if (n >= m->sp->cfg.write_buffer) {
		if (fs_write_all(m->fd, p, n) < 0)
			return -1;
		m->flushed = true;
	} else {
		buf_append(&m->wbuf, p, n);
	}
	m->size += n;
	return 0;
}

uint64_t
spool_msg_size(const struct spool_msg *m)
{
	return m->size;
}

static void
msg_free(struct spool_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	buf_free(&m->wbuf);
	free(m);
}

void
spool_msg_abort(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;
	char *path;

	if (m == NULL)
		return;
	path = fs_path_join(m->sp->queue, m->id);
	unlink(path);
	free(path);
	msg_free(m);
	*mp = NULL;
}

int
spool_msg_commit(struct spool_msg **mp, spool_commit_cb *cb, void *arg)
{
	struct spool_msg *m = *mp;
	struct spool *sp = m->sp;
	char state[SPOOL_SIZE_DIGITS + 3];
	int r;

	*mp = NULL;
	/* "1 <size>" over "0 <zeros>": committed, in one write. */
	snprintf(
	    state, sizeof(state), "1 %0*" PRIu64, SPOOL_SIZE_DIGITS, m->size);
	if (!m->flushed) {
		/* The whole file is still in the buffer: one write does it. */
		memcpy(m->wbuf.data + SPOOL_STATE_OFF, state,
		    SPOOL_SIZE_DIGITS + 2);
		r = msg_flush(m);
	} else {
		r = msg_flush(m);
		if (r == 0)
			r = fs_pwrite_all(m->fd, state, SPOOL_SIZE_DIGITS + 2,
			    SPOOL_STATE_OFF);
	}
	if (r < 0) {
		char *path = fs_path_join(sp->queue, m->id);

		log_write(LOG_ERROR, "spool",
		    "event=commit-failed id=%s error=\"%s\"", m->id,
		    strerror(errno));
		unlink(path);
		free(path);
		msg_free(m);
		return -1;
	}
	m->cb = cb;
	m->arg = arg;
	pthread_mutex_lock(&sp->mu);
	*sp->tail = m;
	sp->tail = &m->next;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	return 0;
}

/* spool_sync_batch - make every message of the batch durable; errno or 0 */
static int
spool_sync_batch(struct spool *sp, struct spool_msg *batch)
{
	if (sp->cfg.sync == SPOOL_SYNC_SYNCFS)
		return syncfs(sp->queue_fd) < 0 ? errno : 0;
	for (struct spool_msg *m = batch; m; m = m->next)
		if (fdatasync(m->fd) < 0)
			return errno;
	return fsync(sp->queue_fd) < 0 ? errno : 0;
}

static void *
spool_committer(void *arg)
{
	struct spool *sp = arg;

	for (;;) {
		struct spool_msg *batch, *m, *next, **cut;
		int64_t n = 0;
		int error;

		pthread_mutex_lock(&sp->mu);
		while (sp->head == NULL && !sp->stopping)
			pthread_cond_wait(&sp->cv, &sp->mu);
		if (sp->head == NULL && sp->stopping) {
			pthread_mutex_unlock(&sp->mu);
			break;
		}
		batch = sp->head;
		for (cut = &sp->head; *cut && n < sp->cfg.commit_max_batch; n++)
			cut = &(*cut)->next;
		sp->head = *cut;
		*cut = NULL;
		if (sp->head == NULL)
			sp->tail = &sp->head;
		pthread_mutex_unlock(&sp->mu);

		error = spool_sync_batch(sp, batch);
		sp->batches++;
		sp->committed += (uint64_t)n;
		if (error != 0)
			log_write(LOG_ERROR, "spool",
			    "event=sync-failed messages=%" PRId64
			    " error=\"%s\"",
			    n, strerror(error));
		for (m = batch; m; m = next) {
			next = m->next;
			if (error != 0) {
				char *p = fs_path_join(sp->queue, m->id);

				unlink(p);
				free(p);
			}
			if (error == 0 && sp->hook != NULL)
				sp->hook(sp->hook_arg, m->id);
			m->cb(m->arg, error);
			msg_free(m);
		}
	}
	return NULL;
}

void
spool_set_hook(struct spool *sp, spool_hook *hook, void *arg)
{
	pthread_mutex_lock(&sp->mu);
	sp->hook = hook;
	sp->hook_arg = arg;
	pthread_mutex_unlock(&sp->mu);
}

char *
spool_path(const struct spool *sp, const char *id)
{
	return fs_path_join(sp->queue, id);
}

int
spool_remove(struct spool *sp, const char *id)
{
	char *p = fs_path_join(sp->queue, id);
	int r = unlink(p) < 0 && errno != ENOENT ? -1 : 0;

	if (r < 0)
		log_write(LOG_ERROR, "spool",
		    "event=remove-failed id=%s error=\"%s\"", id,
		    strerror(errno));
	free(p);
	return r;
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

int
spool_foreach(const char *dir,
    int (*cb)(void *arg, const char *path, const struct envelope *env),
    void *arg, const char **error_r)
{
	static __thread char err[512];
	char *qdir = fs_path_join(dir, "queue");
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandir(qdir, &names, NULL, alphasort);
	if (n < 0) {
		snprintf(err, sizeof(err), "cannot read %s: %s", qdir,
		    strerror(errno));
		*error_r = err;
		free(qdir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		struct envelope env;
		const char *error;
		char *p;

		if (r == 0 && queue_id_valid(names[i]->d_name)) {
			p = fs_path_join(qdir, names[i]->d_name);
			envelope_init(&env);
			if (spool_read(p, &env, NULL, &error) == 0)
				r = cb(arg, p, &env);
			envelope_clear(&env);
			free(p);
		}
		free(names[i]);
	}
	free(names);
	free(qdir);
	return r;
}
