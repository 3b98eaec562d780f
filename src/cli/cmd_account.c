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


/*
 * struct scope - what the commands acting on one account start from:
 * the required --account NAME, the store and the account's id.
 */
struct scope {
	const char *name;
	struct store *st;
	int64_t account;
};

/*
 * scope_open - take --account NAME out of argv, check that nwords words
 * are left (argv[0] included), open the store and find the account.
 * Returns 0, or the exit code after printing the error.
 */
static int
scope_open(struct cli *c, int *argc, char **argv, int nwords, const char *usage,
    struct scope *sc)
{
	bool bad = false;

	sc->name = cli_opt(argc, argv, "--account", &bad);
	if (sc->name == NULL)
		return cli_usage_error(c, "--account NAME is required");
	if (*argc != nwords)
		return cli_usage_error(c, "%s", usage);
	if ((sc->st = cli_store(c)) == NULL)
		return 1;
	if ((sc->account = cli_account(sc->st, sc->name)) == 0)
		return cli_finish(&sc->st, 1, NULL);
	return 0;
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
	return cli_finish(&st, r, error);
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
	return cli_finish(&st, r, error);
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
		return cli_finish(&st, 1, NULL);
	r = add ? store_relay_ip_add(st, account, argv[2], &error)
		: store_relay_ip_remove(st, account, argv[2], &error);
	if (r == 0)
		printf("%s may %ssend for account %s without AUTH\n", argv[2],
		    add ? "" : "no longer ", argv[1]);
	return cli_finish(&st, r, error);
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
	const char *name, *error = NULL;
	char user[128], secret[34], hash[65], suffix[7];
	struct scope sc;
	bool bad = false;
	int64_t id;
	int r;

	name = cli_opt(&argc, argv, "--name", &bad);
	if (bad)
		return cli_usage_error(c, "--name needs a value");
	if ((r = scope_open(c, &argc, argv, 1, "unexpected argument", &sc)))
		return r;
	if (name != NULL) {
		snprintf(user, sizeof(user), "%s", name);
	} else {
		random_alnum(suffix, 6);
		snprintf(
		    user, sizeof(user), "%s-%s", sc.name, str_lower(suffix));
	}
	/*
	 * 33 letters and digits: 196 random bits, and nothing a shell or a
	 * command line could take for an option.
	 */
	random_alnum(secret, 33);
	store_secret_hash(secret, hash);
	r = store_credential_create(sc.st, sc.account, user, hash, &id, &error);
	if (r == 0)
		printf(
		    "username: %s\npassword: %s\n(the password is shown only "
		    "now; Herald keeps only a hash of it)\n",
		    user, secret);
	return cli_finish(&sc.st, r, error);
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
	const char *error = NULL;
	struct scope sc;
	int r;

	if ((r = scope_open(c, &argc, argv, 1, "unexpected argument", &sc)))
		return r;
	printf("%-32s %s\n", "USERNAME", "CREATED");
	r = store_credential_list(
	    sc.st, sc.account, print_credential, NULL, &error);
	return cli_finish(&sc.st, r, error);
}

int
cmd_credential_revoke(struct cli *c, int argc, char **argv)
{
	const char *error = NULL;
	struct scope sc;
	int r;

	if ((r = scope_open(c, &argc, argv, 2, "expected one USER", &sc)))
		return r;
	r = store_credential_revoke(sc.st, sc.account, argv[1], &error);
	if (r == 0)
		printf("credential %s revoked\n", argv[1]);
	else if (r == 1)
		error = "no such active credential in this account";
	return cli_finish(&sc.st, r, error);
}

static int
domain_change(struct cli *c, int argc, char **argv, bool add)
{
	const char *error = NULL;
	char *domain = NULL;
	struct scope sc;
	int r;

	if ((r = scope_open(c, &argc, argv, 2, "expected one DOMAIN", &sc)))
		return r;
	if (mail_domain_normalize(argv[1], &domain, &error) < 0) {
		cli_fail("domain '%s': %s", argv[1], error);
		return cli_finish(&sc.st, 1, NULL);
	}
	r = add ? store_domain_add(sc.st, sc.account, domain, &error)
		: store_domain_remove(sc.st, sc.account, domain, &error);
	if (r == 0)
		printf("domain %s %s account %s\n", domain,
		    add ? "added to" : "removed from", sc.name);
	free(domain);
	return cli_finish(&sc.st, r, error);
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
	const char *error = NULL;
	struct scope sc;
	int r;

	if ((r = scope_open(c, &argc, argv, 1, "unexpected argument", &sc)))
		return r;
	printf("%-40s %s\n", "DOMAIN", "ADDED");
	r = store_domain_list(sc.st, sc.account, print_domain, NULL, &error);
	return cli_finish(&sc.st, r, error);
}
