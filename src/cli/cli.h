/*
 * cli - the `herald` command: shared context of the subcommands.
 *
 * main.c reads the options every subcommand takes (--data, --set,
 * --help), loads the configuration and calls the subcommand with the
 * words and options that are left.  Each cmd_*.c file holds a family of
 * subcommands.
 */
#ifndef HERALD_CLI_CLI_H
#define HERALD_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/conf.h"

struct store;

struct cli {
	struct herald_conf conf;
	const char *usage; /* of the running subcommand */
};

/* A subcommand: argv[0] is its last word ("create"), options follow. */
struct cli_command {
	const char *words; /* "account create" */
	const char *usage; /* "NAME" */
	const char *help;
	int (*run)(struct cli *c, int argc, char **argv);
	bool needs_init; /* refuses to run on a missing data dir */
};

/* cli_usage_error - print the error and the usage line; returns 2 */
int cli_usage_error(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* cli_fail - print "herald: message" to stderr; returns 1 */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * cli_opt - find "--name VALUE" or "--name=VALUE" in argv and remove it;
 * returns the value or NULL.  A --name without a value is a usage error
 * reported through *bad.
 */
const char *cli_opt(int *argc, char **argv, const char *name, bool *bad);
/* cli_store - open and migrate the store; NULL after printing the error */
struct store *cli_store(struct cli *c);
/* cli_account - the id of the account named name, or 0 after an error */
int64_t cli_account(struct store *st, const char *name);
/*
 * cli_open_account - the store and the id of the account named name:
 * 0, or 1 after printing why (nothing left open).
 */
int cli_open_account(
    struct cli *c, const char *name, struct store **st_r, int64_t *id_r);
/* cli_finish - close the store; a store result (ret, error) as an exit
   code, printing the error */
int cli_finish(struct store **st, int ret, const char *error);

int cmd_init(struct cli *c, int argc, char **argv);
int cmd_serve(struct cli *c, int argc, char **argv);
int cmd_account_create(struct cli *c, int argc, char **argv);
int cmd_account_list(struct cli *c, int argc, char **argv);
int cmd_account_allow_ip(struct cli *c, int argc, char **argv);
int cmd_account_disallow_ip(struct cli *c, int argc, char **argv);
int cmd_credential_create(struct cli *c, int argc, char **argv);
int cmd_credential_list(struct cli *c, int argc, char **argv);
int cmd_credential_revoke(struct cli *c, int argc, char **argv);
int cmd_domain_add(struct cli *c, int argc, char **argv);
int cmd_domain_list(struct cli *c, int argc, char **argv);
int cmd_domain_remove(struct cli *c, int argc, char **argv);
int cmd_dkim_keygen(struct cli *c, int argc, char **argv);
int cmd_dkim_list(struct cli *c, int argc, char **argv);
int cmd_dkim_show(struct cli *c, int argc, char **argv);
int cmd_dkim_remove(struct cli *c, int argc, char **argv);
int cmd_queue_list(struct cli *c, int argc, char **argv);
int cmd_queue_show(struct cli *c, int argc, char **argv);
int cmd_queue_flush(struct cli *c, int argc, char **argv);
int cmd_queue_retry(struct cli *c, int argc, char **argv);
int cmd_queue_hold(struct cli *c, int argc, char **argv);
int cmd_queue_release(struct cli *c, int argc, char **argv);
int cmd_queue_delete(struct cli *c, int argc, char **argv);
int cmd_import(struct cli *c, int argc, char **argv);
int cmd_field_create(struct cli *c, int argc, char **argv);
int cmd_field_list(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);
int cmd_list_create(struct cli *c, int argc, char **argv);
int cmd_list_list(struct cli *c, int argc, char **argv);
int cmd_apikey_create(struct cli *c, int argc, char **argv);
int cmd_apikey_list(struct cli *c, int argc, char **argv);
int cmd_apikey_revoke(struct cli *c, int argc, char **argv);
int cmd_config_dump(struct cli *c, int argc, char **argv);
int cmd_version(struct cli *c, int argc, char **argv);

#endif
