/*
 * cmd_account.c - accounts, their SMTP credentials, sender domains and
 * relay addresses: `herald account|credential|domain ...`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "mail/address.h"
#include "store/store.h"

/* with_store - open the store or fail; common preamble */
#define WITH_STORE(c, st)                                                      \
	struct store *st = cli_store(c);                                       \
	if (st == NULL)                                                        \
	return 1

/* finish - close the store and turn a store result into an exit code */
static int
finish(struct store **st, int r, const char *error)
{
	if (r != 0 && error != NULL)
		cli_fail("%s", error);
	store_close(st);
	return r == 0 ? 0 : 1;
}

/* account_opt - the --account NAME option, required */
static const char *
account_opt(struct cli *c, int *argc, char **argv)
{
	bool bad = false;
	const char *a = cli_opt(argc, argv, "--account", &bad);

	if (a == NULL)
		cli_usage_error(c, "--account NAME is required");
	return a;
}

int
cmd_account_create(struct cli *c, int argc, char **argv)
{
	const char *error = NULL;
	int64_t id;
	int r;

	if (argc != 2)
		return cli_usage_error(c, "expected one account NAME");
	WITH_STORE(c, st);
	r = store_account_create(st, argv[1], &id, &error);
	if (r == 0)
		printf("account %s created (id %" PRId64 ")\n", argv[1], id);
	return finish(&st, r, error);
}

static int
print_account(void *arg, const struct store_account *a)
{
	char when[32];

	(void)arg;
	time_iso8601((time_t)a->created_at, when, sizeof(when));
	printf("%-6" PRId64 " %-24s %s%s\n", a->id, a->name, when,
	    a->disabled ? "  disabled" : "");
	return 0;
}

int
cmd_account_list(struct cli *c, int argc, char **argv)
{
	const char *error = NULL;
	int r;

	(void)argv;
	if (argc != 1)
		return cli_usage_error(c, "unexpected argument");
	WITH_STORE(c, st);
	printf("%-6s %-24s %s\n", "ID", "NAME", "CREATED");
	r = store_account_list(st, print_account, NULL, &error);
	return finish(&st, r, error);
}

static int
account_ip(struct cli *c, int argc, char **argv, bool add)
{
	const char *error = NULL;
	int64_t account;
	int r;

	if (argc != 3)
		return cli_usage_error(c, "expected NAME and ADDRESS[/PREFIX]");
	WITH_STORE(c, st);
	if ((account = cli_account(st, argv[1])) == 0)
		return finish(&st, 1, NULL);
	r = add ? store_relay_ip_add(st, account, argv[2], &error)
		: store_relay_ip_remove(st, account, argv[2], &error);
	if (r == 0)
		printf("%s may %ssend for account %s without AUTH\n", argv[2],
		    add ? "" : "no longer ", argv[1]);
	return finish(&st, r, error);
}

int
cmd_account_allow_ip(struct cli *c, int argc, char **argv)
{
	return account_ip(c, argc, argv, true);
}

int
cmd_account_disallow_ip(struct cli *c, int argc, char **argv)
{
	return account_ip(c, argc, argv, false);
}

int
cmd_credential_create(struct cli *c, int argc, char **argv)
{
	const char *aname = account_opt(c, &argc, argv), *name, *error = NULL;
	char user[128], secret[33], hash[65], suffix[7];
	bool bad = false;
	int64_t account, id;
	int r;

	if (aname == NULL)
		return 2;
	name = cli_opt(&argc, argv, "--name", &bad);
	if (bad || argc != 1)
		return cli_usage_error(c, "unexpected argument");
	WITH_STORE(c, st);
	if ((account = cli_account(st, aname)) == 0)
		return finish(&st, 1, NULL);
	if (name != NULL) {
		snprintf(user, sizeof(user), "%s", name);
	} else {
		random_token(suffix, 6);
		for (char *p = suffix; *p; p++)
			if (*p == '-' || *p == '_')
				*p = 'x';
		snprintf(user, sizeof(user), "%s-%s", aname, str_lower(suffix));
	}
	/* 32 characters of a 64-letter alphabet: 192 random bits. */
	random_token(secret, 32);
	store_secret_hash(secret, hash);
	r = store_credential_create(st, account, user, hash, &id, &error);
	if (r == 0)
		printf(
		    "username: %s\npassword: %s\n(the password is shown only "
		    "now; Herald keeps only a hash of it)\n",
		    user, secret);
	return finish(&st, r, error);
}

static int
print_credential(void *arg, const struct store_credential *cr)
{
	char when[32], revoked[40] = "";

	(void)arg;
	time_iso8601((time_t)cr->created_at, when, sizeof(when));
	if (cr->revoked_at) {
		strcpy(revoked, "  revoked ");
		time_iso8601(
		    (time_t)cr->revoked_at, revoked + 10, sizeof(revoked) - 10);
	}
	printf("%-32s %s%s\n", cr->username, when, revoked);
	return 0;
}

int
cmd_credential_list(struct cli *c, int argc, char **argv)
{
	const char *aname = account_opt(c, &argc, argv), *error = NULL;
	int64_t account;
	int r;

	if (aname == NULL)
		return 2;
	if (argc != 1)
		return cli_usage_error(c, "unexpected argument");
	WITH_STORE(c, st);
	if ((account = cli_account(st, aname)) == 0)
		return finish(&st, 1, NULL);
	printf("%-32s %s\n", "USERNAME", "CREATED");
	r = store_credential_list(st, account, print_credential, NULL, &error);
	return finish(&st, r, error);
}

int
cmd_credential_revoke(struct cli *c, int argc, char **argv)
{
	const char *aname = account_opt(c, &argc, argv), *error = NULL;
	int64_t account;
	int r;

	if (aname == NULL)
		return 2;
	if (argc != 2)
		return cli_usage_error(c, "expected one USER");
	WITH_STORE(c, st);
	if ((account = cli_account(st, aname)) == 0)
		return finish(&st, 1, NULL);
	r = store_credential_revoke(st, account, argv[1], &error);
	if (r == 0)
		printf("credential %s revoked\n", argv[1]);
	else if (r == 1)
		error = "no such active credential in this account";
	return finish(&st, r, error);
}

static int
domain_change(struct cli *c, int argc, char **argv, bool add)
{
	const char *aname = account_opt(c, &argc, argv), *error = NULL;
	char *domain = NULL;
	int64_t account;
	int r;

	if (aname == NULL)
		return 2;
	if (argc != 2)
		return cli_usage_error(c, "expected one DOMAIN");
	if (mail_domain_normalize(argv[1], &domain, &error) < 0)
		return cli_fail("domain '%s': %s", argv[1], error);
	WITH_STORE(c, st);
	if ((account = cli_account(st, aname)) == 0) {
		free(domain);
		return finish(&st, 1, NULL);
	}
	r = add ? store_domain_add(st, account, domain, &error)
		: store_domain_remove(st, account, domain, &error);
	if (r == 0)
		printf("domain %s %s account %s\n", domain,
		    add ? "added to" : "removed from", aname);
	free(domain);
	return finish(&st, r, error);
}

int
cmd_domain_add(struct cli *c, int argc, char **argv)
{
	return domain_change(c, argc, argv, true);
}

int
cmd_domain_remove(struct cli *c, int argc, char **argv)
{
	return domain_change(c, argc, argv, false);
}

static int
print_domain(void *arg, const char *domain, int64_t created_at)
{
	char when[32];

	(void)arg;
	time_iso8601((time_t)created_at, when, sizeof(when));
	printf("%-40s %s\n", domain, when);
	return 0;
}

int
cmd_domain_list(struct cli *c, int argc, char **argv)
{
	const char *aname = account_opt(c, &argc, argv), *error = NULL;
	int64_t account;
	int r;

	if (aname == NULL)
		return 2;
	if (argc != 1)
		return cli_usage_error(c, "unexpected argument");
	WITH_STORE(c, st);
	if ((account = cli_account(st, aname)) == 0)
		return finish(&st, 1, NULL);
	printf("%-40s %s\n", "DOMAIN", "ADDED");
	r = store_domain_list(st, account, print_domain, NULL, &error);
	return finish(&st, r, error);
}
