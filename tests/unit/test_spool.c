/*
 * test_spool.c - spool files, group commit and recovery (spool/spool.c),
 * and the envelope text form (mail/envelope.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "mail/envelope.h"
#include "spool/spool.h"

static const struct spool_config cfg_fdatasync = { SPOOL_SYNC_FDATASYNC, 64,
	4096 };
static const struct spool_config cfg_syncfs = { SPOOL_SYNC_SYNCFS, 64, 4096 };

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, errors;
};

static void
on_commit(void *arg, int error)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->done++;
	if (error)
		w->errors++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
wait_for(struct waiter *w, int n)
{
	pthread_mutex_lock(&w->mu);
	while (w->done < n)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static char *
temp_dir(void)
{
	char *d = xstrdup("/tmp/herald-test-spool-XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void
make_env(struct envelope *e, const char *sender)
{
	envelope_init(e);
	queue_id_new(e->id);
	e->account_id = 7;
	e->credential_id = 3;
	envelope_set(&e->source, "submission");
	envelope_set(&e->client_ip, "127.0.0.1");
	envelope_set(&e->helo, "client.example");
	envelope_set(&e->auth_user, "app1");
	envelope_set(&e->sender, sender);
	e->body = 2;
	e->ret = 1;
	envelope_set(&e->envid, "env id%1");
	e->received_at = 1700000000;
	envelope_add_rcpt(e, "a@example.net", 6, "rfc822;a@example.net");
	envelope_add_rcpt(e, "\"john doe\"@example.org", 0, NULL);
}

static void
test_envelope_roundtrip(void **state)
{
	struct envelope e, r;
	struct buf b = BUF_INIT;
	const char *error;

	(void)state;
	make_env(&e, "");
	envelope_serialize(&e, &b);
	envelope_init(&r);
	assert_int_equal(envelope_parse(b.data, b.len, &r, &error), 0);
	assert_string_equal(r.id, e.id);
	assert_int_equal(r.account_id, 7);
	assert_int_equal(r.credential_id, 3);
	assert_string_equal(r.sender, ""); /* the null sender survives */
	assert_string_equal(r.envid, "env id%1");
	assert_int_equal(r.body, 2);
	assert_int_equal(r.ret, 1);
	assert_int_equal(r.nrcpts, 2);
	assert_string_equal(r.rcpts[0].addr, "a@example.net");
	assert_int_equal(r.rcpts[0].notify, 6);
	assert_string_equal(r.rcpts[0].orcpt, "rfc822;a@example.net");
	assert_string_equal(r.rcpts[1].addr, "\"john doe\"@example.org");
	assert_null(r.rcpts[1].orcpt);
	envelope_clear(&r);

	/* Damage is reported with its line. */
	envelope_init(&r);
	assert_int_equal(envelope_parse("id x\n", 5, &r, &error), -1);
	assert_non_null(strstr(error, "line 1"));
	envelope_clear(&r);
	envelope_init(&r);
	assert_int_equal(envelope_parse("bogus 1\n", 8, &r, &error), -1);
	envelope_clear(&r);
	envelope_init(&r);
	assert_int_equal(envelope_parse("sender a%zz\n", 12, &r, &error), -1);
	envelope_clear(&r);
	envelope_clear(&e);
	buf_free(&b);
}

static int
count_cb(void *arg, const char *path, const struct envelope *e)
{
	(void)path;
	(void)e;
	(*(int *)arg)++;
	return 0;
}

static void
commit_many(const struct spool_config *cfg)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
		0, 0 };
	char *dir = temp_dir(), body[300];
	struct spool *sp;
	const char *error;
	int n = 0;

	sp = spool_open(dir, cfg, 1, &error);
	assert_non_null(sp);
	for (int i = 0; i < 100; i++) {
		struct envelope e;
		struct spool_msg *m;

		make_env(&e, "s@example.com");
		m = spool_msg_new(sp, &e, &error);
		assert_non_null(m);
		snprintf(
		    body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		/* Write in pieces bigger and smaller than the write buffer. */
		assert_int_equal(spool_msg_write(m, body, 5), 0);
		assert_int_equal(
		    spool_msg_write(m, body + 5, strlen(body) - 5), 0);
		if (i % 10 == 0) {
			char big[10000];

			memset(big, 'x', sizeof(big));
			assert_int_equal(
			    spool_msg_write(m, big, sizeof(big)), 0);
		}
		assert_int_equal(spool_msg_commit(&m, on_commit, &w), 0);
		assert_null(m);
		envelope_clear(&e);
	}
	wait_for(&w, 100);
	assert_int_equal(w.errors, 0);
	spool_close(&sp);
	assert_int_equal(spool_foreach(dir, count_cb, &n, &error), 0);
	assert_int_equal(n, 100);
	free(dir);
}

static void
test_commit_fdatasync(void **state)
{
	(void)state;
	commit_many(&cfg_fdatasync);
}

static void
test_commit_syncfs(void **state)
{
	(void)state;
	commit_many(&cfg_syncfs);
}

static void
test_read_back(void **state)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
		0, 0 };
	char *dir = temp_dir(), path[512], got[64];
	const char *msg = "Subject: x\r\n\r\nhello\r\n", *error;
	struct envelope e, r;
	struct spool_msg *m;
	struct spool *sp;
	off_t off;
	int fd;

	(void)state;
	sp = spool_open(dir, &cfg_fdatasync, 1, &error);
	make_env(&e, "s@example.com");
	m = spool_msg_new(sp, &e, &error);
	assert_int_equal(spool_msg_write(m, msg, strlen(msg)), 0);
	assert_int_equal(spool_msg_size(m), strlen(msg));
	assert_int_equal(spool_msg_commit(&m, on_commit, &w), 0);
	wait_for(&w, 1);
	snprintf(path, sizeof(path), "%s/queue/%s", dir, e.id);
	envelope_init(&r);
	assert_int_equal(spool_read(path, &r, &off, &error), 0);
	assert_int_equal(r.size, strlen(msg));
	assert_string_equal(r.sender, "s@example.com");
	fd = open(path, O_RDONLY);
	assert_int_equal(
	    pread(fd, got, sizeof(got), off), (ssize_t)strlen(msg));
	close(fd);
	assert_memory_equal(got, msg, strlen(msg));
	envelope_clear(&r);
	envelope_clear(&e);
	spool_close(&sp);
	free(dir);
}

static int
count_dir(const char *dir, const char *sub)
{
	char p[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void
test_abort_and_recovery(void **state)
{
	struct waiter w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
		0, 0 };
	char *dir = temp_dir(), path[512];
	const char *error;
	struct envelope e1, e2, e3;
	struct spool_msg *m;
	struct spool *sp;
	int fd;

	(void)state;
	sp = spool_open(dir, &cfg_fdatasync, 1, &error);
	/* Aborted: nothing left. */
	make_env(&e1, "a@example.com");
	m = spool_msg_new(sp, &e1, &error);
	spool_msg_write(m, "x\r\n", 3);
	spool_msg_abort(&m);
	assert_null(m);
	assert_int_equal(count_dir(dir, "queue"), 0);
	/* Left uncommitted (a crash before commit). */
	make_env(&e2, "b@example.com");
	m = spool_msg_new(sp, &e2, &error);
	spool_msg_write(m, "partial", 7);
	/* A committed message, then damaged as a crash before sync could. */
	make_env(&e3, "c@example.com");
	{
		struct spool_msg *m3 = spool_msg_new(sp, &e3, &error);

		spool_msg_write(m3, "Subject: y\r\n\r\nbody\r\n", 20);
		spool_msg_commit(&m3, on_commit, &w);
		wait_for(&w, 1);
	}
	/* What a crash would leave of m: an uncommitted file. */
	spool_msg_abort(&m);
	snprintf(path, sizeof(path), "%s/queue/%s", dir, e2.id);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_int_equal(
	    write(fd, "HERALD-SPOOL 0 00000000000000000000\n", 36), 36);
	close(fd);
	spool_close(&sp);
	snprintf(path, sizeof(path), "%s/queue/%s", dir, e3.id);
	assert_int_equal(truncate(path, 60), 0);

	assert_int_equal(count_dir(dir, "queue"), 2);
	sp = spool_open(dir, &cfg_fdatasync, 1, &error);
	assert_non_null(sp);
	assert_int_equal(count_dir(dir, "queue"), 0);
	assert_int_equal(count_dir(dir, "corrupt"), 1);
	spool_close(&sp);
	envelope_clear(&e1);
	envelope_clear(&e2);
	envelope_clear(&e3);
	free(dir);
}

static void
test_queue_ids(void **state)
{
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];

	(void)state;
	queue_id_new(a);
	for (int i = 0; i < 10000; i++) {
		queue_id_new(b);
		assert_true(queue_id_valid(b));
		assert_true(strcmp(a, b) < 0); /* sorted by creation */
		memcpy(a, b, sizeof(a));
	}
	assert_false(queue_id_valid("short"));
	assert_false(queue_id_valid("../../etc/passwd"));
	assert_false(queue_id_valid("0000000000000000x"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_roundtrip),
		cmocka_unit_test(test_commit_fdatasync),
		cmocka_unit_test(test_commit_syncfs),
		cmocka_unit_test(test_read_back),
		cmocka_unit_test(test_abort_and_recovery),
		cmocka_unit_test(test_queue_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
