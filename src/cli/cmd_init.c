/*
 * cmd_init.c - `herald init`: create the data directory.
 *
 *   <data>/herald.db      the store (SQLite), migrated
 *   <data>/spool/         queue/, corrupt/
 *   <data>/tls/           self-signed cert.pem and key.pem (0600)
 *   <data>/secrets/       master.key: 32 random bytes for signing and
 *                         encrypting (later: link tokens, import secrets)
 *
 * Everything that exists already is kept, so init is safe to run again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli/cli.h"
#include "lib/fsutil.h"
#include "lib/util.h"
#include "smtpd/tls.h"
#include "store/store.h"

static int
make_dir(const char *dir, const char *sub)
{
	char *p = fs_path_join(dir, sub);
	int r;

	r = fs_mkdirs(p, 0700);
	if (r < 0)
		cli_fail("cannot create %s: %s", p, strerror(errno));
	free(p);
	return r;
}

int
cmd_init(struct cli *c, int argc, char **argv)
{
	const struct herald_conf *cf = &c->conf;
	char *key;
	struct store *st;
	char err[512];

	(void)argv;
	if (argc > 1)
		return cli_usage_error(c, "unexpected argument '%s'", argv[1]);
	if (fs_mkdirs(cf->data_dir, 0700) < 0)
		return cli_fail(
		    "cannot create %s: %s", cf->data_dir, strerror(errno));
	if (make_dir(cf->data_dir, "spool/queue") < 0 ||
	    make_dir(cf->data_dir, "spool/corrupt") < 0 ||
	    make_dir(cf->data_dir, "tls") < 0 ||
	    make_dir(cf->data_dir, "secrets") < 0)
		return 1;
	if (!fs_exists(cf->smtpd.tls_cert) || !fs_exists(cf->smtpd.tls_key)) {
		if (tls_make_self_signed(cf->smtpd.tls_cert, cf->smtpd.tls_key,
			cf->smtpd.hostname, err, sizeof(err)) < 0)
			return cli_fail("%s", err);
		printf("created self-signed TLS certificate %s for %s\n",
		    cf->smtpd.tls_cert, cf->smtpd.hostname);
	}
	key = fs_path_join(cf->data_dir, "secrets/master.key");
	if (!fs_exists(key)) {
		unsigned char k[32];

		randombytes_buf(k, sizeof(k));
		if (fs_write_file_atomic(key, k, sizeof(k), 0600) < 0) {
			cli_fail("cannot write %s: %s", key, strerror(errno));
			free(key);
			return 1;
		}
		sodium_memzero(k, sizeof(k));
		printf("created %s\n", key);
	}
	free(key);
	if ((st = cli_store(c)) == NULL)
		return 1;
	store_close(&st);
	printf("data directory %s is ready (store %s)\n", cf->data_dir,
	    cf->store_url);
	return 0;
}
