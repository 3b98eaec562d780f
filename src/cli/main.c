/*
 * main.c - the `herald` command: global options and subcommand dispatch.
 *
 *   herald [--data DIR] [--set name=value ...] COMMAND [SUBCOMMAND] ...
 *
 * --data defaults to $HERALD_DATA, then ./herald-data.  Global options
 * may stand anywhere on the line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli/cli.h"
#include "herald_version.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

static const struct cli_command commands[] = {
	{ "init", "",
	    "create the data directory: database, spool, TLS "
	    "certificate, secrets (safe to run again)",
	    cmd_init, false },
	{ "serve", "", "run the server (SMTP listeners) in the foreground",
	    cmd_serve, true },
	{ "account create", "NAME", "create an account", cmd_account_create,
	    true },
	{ "account list", "", "list accounts", cmd_account_list, true },
	{ "account allow-ip", "NAME ADDRESS[/PREFIX]",
	    "let a client address "
	    "send for the account without AUTH",
	    cmd_account_allow_ip, true },
	{ "account disallow-ip", "NAME ADDRESS[/PREFIX]",
	    "remove an allowed "
	    "client address",
	    cmd_account_disallow_ip, true },
	{ "credential create", "--account NAME [--name USER]",
	    "create an SMTP "
	    "credential; the password is shown once",
	    cmd_credential_create, true },
	{ "credential list", "--account NAME",
	    "list an account's SMTP "
	    "credentials",
	    cmd_credential_list, true },
	{ "credential revoke", "--account NAME USER",
	    "revoke an SMTP "
	    "credential (effective within smtpd.policy_refresh)",
	    cmd_credential_revoke, true },
	{ "domain add", "--account NAME DOMAIN",
	    "add a sender domain to an "
	    "account",
	    cmd_domain_add, true },
	{ "domain list", "--account NAME", "list an account's sender domains",
	    cmd_domain_list, true },
	{ "domain remove", "--account NAME DOMAIN", "remove a sender domain",
	    cmd_domain_remove, true },
	{ "dkim keygen",
	    "DOMAIN [--selector S] [--algorithm rsa|ed25519|both] "
	    "[--bits 1024..4096]",
	    "make a DKIM signing key for a sender domain and print its DNS "
	    "record; default: RSA 2048, selector herald<YYYYMM>-rsa "
	    "(-ed25519); with both, S-rsa and S-ed25519",
	    cmd_dkim_keygen, true },
	{ "dkim list", "[DOMAIN]",
	    "list DKIM keys: domain, selector, algorithm, whether it signs "
	    "(the newest of each algorithm), file",
	    cmd_dkim_list, true },
	{ "dkim show", "DOMAIN [--selector S]",
	    "print the DNS TXT records of a domain's DKIM keys", cmd_dkim_show,
	    true },
	{ "dkim remove", "DOMAIN --selector S", "remove a DKIM key",
	    cmd_dkim_remove, true },
	{ "list create",
	    "--account NAME [--optin single|double] [--description TEXT] "
	    "LIST",
	    "create a mailing list", cmd_list_create, true },
	{ "list list", "--account NAME", "list an account's mailing lists",
	    cmd_list_list, true },
	{ "field create",
	    "--account NAME [--choices A,B,...] FIELD "
	    "text|number|date|boolean|one_of",
	    "define a custom field of contacts", cmd_field_create, true },
	{ "field list", "--account NAME", "list an account's custom fields",
	    cmd_field_list, true },
	{ "import",
	    "FILE --account NAME [--list LIST] [--format "
	    "csv|tsv|vcard|jsonl|suppressions] [--mode add|upsert|update] "
	    "[--map COLUMN=TARGET]... [--overwrite FIELD=always|if_empty|never]"
	    "... [--consent SOURCE] [--delimiter C] | --resume ID | --cancel "
	    "ID",
	    "import contacts (or suppressions) from a file, with progress; "
	    "TARGET: email, name, first_name, last_name, a custom field or "
	    "ignore",
	    cmd_import, true },
	{ "export",
	    "--account NAME [--list LIST] [--segment FILTER] [--suppressions] "
	    "[--format csv|jsonl] [--output FILE]",
	    "export contacts or suppressions", cmd_export, true },
	{ "apikey create",
	    "--account NAME | --operator [--name N] [--scopes "
	    "read,write,admin]",
	    "make a REST API key (printed once)", cmd_apikey_create, true },
	{ "apikey list", "[--account NAME]",
	    "list API keys (operator keys without --account)", cmd_apikey_list,
	    true },
	{ "apikey revoke", "[--account NAME] ID", "revoke an API key",
	    cmd_apikey_revoke, true },
	{ "queue list", "[--state S] [--destination DOMAIN] [--account NAME]",
	    "list queued recipients (live state from the running server; "
	    "without one, the spool's messages)",
	    cmd_queue_list, true },
	{ "queue flush", "", "retry every deferred recipient now",
	    cmd_queue_flush, true },
	{ "queue retry", "ID... | --destination DOMAIN",
	    "retry deferred recipients now", cmd_queue_retry, true },
	{ "queue hold", "ID... | --destination DOMAIN",
	    "stop delivering recipients until released", cmd_queue_hold, true },
	{ "queue release", "ID... | --destination DOMAIN",
	    "deliver held recipients again", cmd_queue_release, true },
	{ "queue delete", "ID... | --destination DOMAIN",
	    "remove recipients from the queue without a DSN", cmd_queue_delete,
	    true },
	{ "queue show", "ID [--message]",
	    "show a queued message's envelope, state and main header fields; "
	    "--message prints the stored message",
	    cmd_queue_show, true },
	{ "config dump", "", "print the effective configuration",
	    cmd_config_dump, false },
	{ "version", "", "print the version", cmd_version, false },
};

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: herald [--data DIR] [--set name=value ...] "
	    "COMMAND ...\n\ncommands:\n");
	for (size_t i = 0; i < NELEM(commands); i++)
		fprintf(
		    out, "  %-20s %s\n", commands[i].words, commands[i].help);
	fprintf(out,
	    "\n'herald COMMAND --help' describes one command.\n"
	    "--data defaults to $HERALD_DATA, then ./herald-data.\n");
}

int
cli_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "herald: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

int
cli_usage_error(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "herald: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", c->usage);
	return 2;
}

const char *
cli_opt(int *argc, char **argv, const char *name, bool *bad)
{
	size_t n = strlen(name);

	for (int i = 1; i < *argc; i++) {
		const char *v = NULL;
		int take = 0;

		if (strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') {
			v = argv[i] + n + 1;
			take = 1;
		} else if (strcmp(argv[i], name) == 0) {
			if (i + 1 >= *argc) {
				*bad = true;
				return NULL;
			}
			v = argv[i + 1];
			take = 2;
		}
		if (take) {
			memmove(&argv[i], &argv[i + take],
			    (size_t)(*argc - i - take + 1) * sizeof(*argv));
			*argc -= take;
			return v;
		}
	}
	return NULL;
}

struct store *
cli_store(struct cli *c)
{
	const char *error;
	struct store *st = store_open(c->conf.store_url, &error);

	if (st == NULL) {
		cli_fail("%s", error);
		return NULL;
	}
	if (store_migrate(st, &error) < 0) {
		cli_fail("%s", error);
		store_close(&st);
		return NULL;
	}
	return st;
}

int64_t
cli_account(struct store *st, const char *name)
{
	struct store_account a;
	const char *error;
	int r = store_account_find(st, name, &a, &error);

	if (r < 0) {
		cli_fail("%s", error);
		return 0;
	}
	if (r == 1) {
		cli_fail("no account '%s' (see 'herald account list')", name);
		return 0;
	}
	return a.id;
}

int
cli_open_account(
    struct cli *c, const char *name, struct store **st_r, int64_t *id_r)
{
	if ((*st_r = cli_store(c)) == NULL)
		return 1;
	if ((*id_r = cli_account(*st_r, name)) == 0) {
		store_close(st_r);
		return 1;
	}
	return 0;
}

int
cli_finish(struct store **st, int ret, const char *error)
{
	if (ret != 0 && error != NULL)
		cli_fail("%s", error);
	store_close(st);
	return ret == 0 ? 0 : 1;
}

/* find_command - match the leading words of argv; *nwords_r = words used */
static const struct cli_command *
find_command(int argc, char **argv, int *nwords_r)
{
	for (size_t i = 0; i < NELEM(commands); i++) {
		const char *w = commands[i].words, *sp = strchr(w, ' ');

		if (sp == NULL) {
			if (argc >= 1 && strcmp(argv[0], w) == 0) {
				*nwords_r = 1;
				return &commands[i];
			}
		} else if (argc >= 2 && strlen(argv[0]) == (size_t)(sp - w) &&
		    strncmp(argv[0], w, (size_t)(sp - w)) == 0 &&
		    strcmp(argv[1], sp + 1) == 0) {
			*nwords_r = 2;
			return &commands[i];
		}
	}
	return NULL;
}

/* family_usage - list the subcommands of a command word */
static int
family_usage(const char *word, FILE *out)
{
	int found = 0;

	for (size_t i = 0; i < NELEM(commands); i++) {
		size_t n = strlen(word);

		if (strncmp(commands[i].words, word, n) == 0 &&
		    commands[i].words[n] == ' ') {
			if (!found)
				fprintf(out, "usage:\n");
			fprintf(out, "  herald %s %s\n      %s\n",
			    commands[i].words, commands[i].usage,
			    commands[i].help);
			found = 1;
		}
	}
	return found;
}

/* run - everything main does once the argument arrays exist */
static int
run(int argc, char **argv, char **sets, char **rest)
{
	const char *data = getenv("HERALD_DATA");
	const struct cli_command *cmd;
	struct cli c;
	char err[1024], usage_line[512];
	size_t nsets = 0;
	int nrest = 0, nwords = 0, help = 0, r;

	if (data == NULL || *data == '\0')
		data = "herald-data";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			data = argv[++i];
		} else if (strncmp(argv[i], "--data=", 7) == 0) {
			data = argv[i] + 7;
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			sets[nsets++] = argv[++i];
		} else if (strncmp(argv[i], "--set=", 6) == 0) {
			sets[nsets++] = argv[i] + 6;
		} else if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			help = 1;
		} else if (strcmp(argv[i], "--data") == 0 ||
		    strcmp(argv[i], "--set") == 0) {
			fprintf(stderr, "herald: %s needs a value\n", argv[i]);
			return 2;
		} else {
			rest[nrest++] = argv[i];
		}
	}
	if (nrest == 0) {
		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	cmd = find_command(nrest, rest, &nwords);
	if (cmd == NULL) {
		/* 'herald account --help' asked for it: stdout, like usage() */
		if (family_usage(rest[0], help ? stdout : stderr))
			return help ? 0 : 2;
		fprintf(stderr, "herald: unknown command '%s'\n\n", rest[0]);
		usage(stderr);
		return 2;
	}
	snprintf(usage_line, sizeof(usage_line), "herald %s %s", cmd->words,
	    cmd->usage);
	if (help) {
		printf("usage: %s\n\n%s\n\nGlobal options: --data DIR (default "
		       "$HERALD_DATA or ./herald-data), --set name=value\n"
		       "(any setting of 'herald config dump').\n",
		    usage_line, cmd->help);
		return 0;
	}
	memset(&c, 0, sizeof(c));
	c.usage = usage_line;
	if (conf_load(&c.conf, data, sets, nsets, err, sizeof(err)) < 0) {
		fprintf(stderr, "herald: configuration: %s\n", err);
		conf_free(&c.conf);
		return 1;
	}
	log_init((enum log_level)c.conf.log_level, 2);
	if (cmd->needs_init && !fs_exists(data)) {
		fprintf(stderr,
		    "herald: data directory %s does not exist; run "
		    "'herald init --data %s' first\n",
		    data, data);
		conf_free(&c.conf);
		return 1;
	}
	r = cmd->run(&c, nrest - nwords + 1, rest + nwords - 1);
	conf_free(&c.conf);
	return r;
}

int
main(int argc, char **argv)
{
	char **sets = xcalloc((size_t)argc + 1, sizeof(*sets));
	char **rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	int r;

	if (sodium_init() < 0)
		fatal("libsodium failed to initialize");
	r = run(argc, argv, sets, rest);
	free(sets);
	free(rest);
	return r;
}
