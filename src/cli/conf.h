/*
 * conf - Herald's one configuration table and the settings it fills.
 *
 * Order of precedence: built-in defaults, then <data>/herald.conf, then
 * each --set name=value in order.  Settings left empty that depend on
 * the data directory or the machine (store.url, smtpd.tls_cert,
 * smtpd.hostname) are filled in afterwards by conf_load.
 */
#ifndef HERALD_CLI_CONF_H
#define HERALD_CLI_CONF_H

#include <stddef.h>
#include <stdio.h>

#include "api/api.h"
#include "mta/mta.h"
#include "smtpd/smtpd.h"
#include "spool/spool.h"

struct herald_conf {
	char *data_dir;	 /* from --data, not from the table */
	char *conf_file; /* the file that was read, or "" */
	int log_level;	 /* enum log_level */
	char *server_user;
	char *store_url;
	struct smtpd_config smtpd;
	struct spool_config spool;
	struct mta_config mta;
	struct api_config api;
};

/*
 * conf_load - fill c from defaults, <data_dir>/herald.conf and the
 * nsets "name=value" strings.  Returns 0, or -1 with err naming the
 * setting and where it came from.
 */
int conf_load(struct herald_conf *c, const char *data_dir, char **sets,
    size_t nsets, char *err, size_t errlen);
/* conf_dump - print every setting with its effective value */
void conf_dump(const struct herald_conf *c, FILE *out);
/* conf_free - free what c owns */
void conf_free(struct herald_conf *c);

#endif
