/*
 * cmd_import.c - an account's contacts from the command line: `herald
 * import`, `herald export`, `herald list create|list`, `herald apikey
 * create|list|revoke`.
 *
 * `herald import FILE` records a job (runner 'cli') and runs it in this
 * process, with a progress bar on a terminal; Ctrl-C stops it after the
 * current batch and `herald import --resume ID` goes on from there.  The
 * server's API runs its own jobs (runner 'server'); both write through
 * the same store, so a running server sees the contacts as they come.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "contacts/export.h"
#include "contacts/import.h"
#include "lib/fsutil.h"
#include "lib/util.h"
#include "store/store.h"

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Progress bar state. */
struct bar {
	bool tty;
	struct timespec start;
	int64_t rows0; /* rows_done when this run began */
};

static double
elapsed(const struct bar *b)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - b->start.tv_sec) +
	    (double)(now.tv_nsec - b->start.tv_nsec) / 1e9;
}

static void
progress(void *arg, const struct store_import_job *job)
{
	struct bar *b = arg;
	double t = elapsed(b), rate, frac;
	int width = 30, fill;
	char eta[32] = "-";

	if (!b->tty)
		return;
	rate = t > 0 ? (double)(job->rows_done - b->rows0) / t : 0;
	frac = job->bytes_total > 0
	    ? (double)job->bytes_done / (double)job->bytes_total
	    : 0;
	if (frac > 1)
		frac = 1;
	fill = (int)(frac * width);
	if (frac > 0.001 && t > 0) {
		double left = t / frac - t;

		snprintf(eta, sizeof(eta), "%d:%02d", (int)left / 60,
		    (int)left % 60);
	}
	fprintf(stderr,
	    "\r[%.*s%*s] %3d%%  %" PRId64 " rows  %.0f rows/s  ETA %s  "
	    "errors %" PRId64 "   ",
	    fill, "##############################", width - fill, "",
	    (int)(frac * 100), job->rows_done, rate, eta, job->errors);
}

static int
print_error(void *arg, unsigned long line, const char *reason)
{
	(void)arg;
	fprintf(stderr, "  line %lu: %s\n", line, reason);
	return 0;
}

/*
 * job_lock - the lock a CLI import holds while it runs (so that --cancel
 * knows whether a process will see the cancel): the descriptor, or -1
 * when another process holds it.  *path_r is malloc'd.
 */
static int
job_lock(struct cli *c, int64_t id, char **path_r)
{
	char name[64], *dir = fs_path_join(c->conf.data_dir, "imports");
	int fd;

	snprintf(name, sizeof(name), "cli-%" PRId64 ".lock", id);
	fs_mkdirs(dir, 0700);
	*path_r = fs_path_join(dir, name);
	free(dir);
	fd = open(*path_r, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void
job_unlock(int fd, char *path)
{
	if (fd >= 0) {
		unlink(path);
		close(fd);
	}
	free(path);
}

/* run_job - run job id with a progress bar and print the summary */
static int
run_job(struct cli *c, struct store *st, int64_t id)
{
	struct import_env env = { 0 };
	struct store_import_job job;
	struct bar b = { .tty = isatty(STDERR_FILENO) };
	struct sigaction sa = { .sa_handler = on_signal };
	const char *error;
	char err[512], *lock_path = NULL;
	double t;
	int r, lock;

	if (store_import_get(st, STORE_ANY_ACCOUNT, id, &job, &error) != 0)
		return cli_fail("%s", error);
	if (strcmp(job.runner, "cli") != 0)
		return cli_fail("import %" PRId64
				" is the server's: it resumes "
				"it itself",
		    id);
	b.rows0 = job.rows_done;
	clock_gettime(CLOCK_MONOTONIC, &b.start);
	env.data_dir = c->conf.data_dir;
	env.batch_rows = (size_t)c->conf.api.import_batch;
	env.errors_kept = (size_t)c->conf.api.import_errors;
	env.cache = c->conf.api.import_cache;
	env.wal = c->conf.api.import_wal;
	env.progress = progress;
	env.arg = &b;
	env.stop = &stop_flag;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((lock = job_lock(c, id, &lock_path)) < 0) {
		free(lock_path);
		return cli_fail("import %" PRId64 " is being run by another "
				"process",
		    id);
	}
	r = import_run(st, id, &env, err, sizeof(err));
	job_unlock(lock, lock_path);
	t = elapsed(&b);
	if (b.tty)
		fprintf(stderr, "\n");
	if (store_import_get(st, STORE_ANY_ACCOUNT, id, &job, &error) != 0)
		return cli_fail("%s", error);
	printf("import %" PRId64 ": %s: %" PRId64 " rows (%" PRId64
	       " created, %" PRId64 " updated, %" PRId64 " skipped, %" PRId64
	       " errors) in %.1f s, %.0f rows/s\n",
	    id, job.state, job.rows_done, job.created, job.updated, job.skipped,
	    job.errors, t, t > 0 ? (double)(job.rows_done - b.rows0) / t : 0.0);
	if (job.errors > 0) {
		fprintf(stderr, "first bad rows:\n");
		store_import_errors(
		    st, job.account_id, id, 10, print_error, NULL, &error);
	}
	if (r == 1) {
		printf("stopped: resume with 'herald import --resume %" PRId64
		       "'\n",
		    id);
		return 1;
	}
	if (r < 0)
		return cli_fail("import %" PRId64 " failed: %s", id, err);
	return 0;
}

/*
 * cancel_job - a queued job, or one that no process runs, is cancelled
 * at once; a running one is marked cancelling and stops after its batch
 * (the server's import thread or the `herald import` running it).
 */
static int
cancel_job(struct cli *c, struct store *st, int64_t id)
{
	struct store_import_job job;
	const char *error;
	char *path = NULL;
	bool idle = false;
	int fd = -1, r;

	if (store_import_get(st, STORE_ANY_ACCOUNT, id, &job, &error) != 0)
		return cli_fail("%s", error);
	if (strcmp(job.runner, "cli") == 0 &&
	    (fd = job_lock(c, id, &path)) >= 0)
		idle = true;
	r = store_import_set_state(st, job.account_id, id,
	    idle ? "queued,running,cancelling" : "queued", "cancelled", NULL,
	    &error);
	if (r == 1)
		r = store_import_set_state(st, job.account_id, id, "running",
		    "cancelling", NULL, &error);
	job_unlock(fd, path);
	if (r == 1)
		return cli_fail("import %" PRId64 " is %s: nothing to cancel",
		    id, job.state);
	if (r < 0)
		return cli_fail("%s", error);
	if (store_import_get(st, job.account_id, id, &job, &error) == 0)
		printf("import %" PRId64 " %s%s\n", id, job.state,
		    strcmp(job.state, "cancelling") == 0
			? " (the running import stops after its current batch)"
			: "");
	return 0;
}

/* kv_option - "A=B" into the object o under A (target or rule B) */
static int
kv_option(struct cli *c, json_t *o, const char *opt, const char *v)
{
	const char *eq = strrchr(v, '=');
	char *key;

	if (eq == NULL || eq == v || eq[1] == '\0')
		return cli_usage_error(
		    c, "%s wants COLUMN=VALUE, not '%s'", opt, v);
	key = xstrndup(v, (size_t)(eq - v));
	json_object_set_new(o, key, json_string(eq + 1));
	free(key);
	return 0;
}

/* guess_format - from the file name */
static const char *
guess_format(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot == NULL)
		return "csv";
	if (strcasecmp(dot, ".vcf") == 0 || strcasecmp(dot, ".vcard") == 0)
		return "vcard";
	if (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0)
		return "jsonl";
	if (strcasecmp(dot, ".tsv") == 0 || strcasecmp(dot, ".tab") == 0)
		return "tsv";
	return "csv";
}

int
cmd_import(struct cli *c, int argc, char **argv)
{
	const char *account = NULL, *list = NULL, *format = NULL, *mode = NULL,
		   *consent = NULL, *delim = NULL, *resume = NULL,
		   *cancel = NULL, *v, *error = NULL;
	json_t *opts = json_object(), *map = json_object(),
	       *over = json_object();
	struct store_import_job job = { 0 };
	struct store_list lst;
	char real[PATH_MAX], err[512], *text = NULL;
	struct stat sb;
	bool bad = false;
	int64_t id;
	int ret = 2;

	account = cli_opt(&argc, argv, "--account", &bad);
	list = cli_opt(&argc, argv, "--list", &bad);
	format = cli_opt(&argc, argv, "--format", &bad);
	mode = cli_opt(&argc, argv, "--mode", &bad);
	consent = cli_opt(&argc, argv, "--consent", &bad);
	delim = cli_opt(&argc, argv, "--delimiter", &bad);
	resume = cli_opt(&argc, argv, "--resume", &bad);
	cancel = cli_opt(&argc, argv, "--cancel", &bad);
	while ((v = cli_opt(&argc, argv, "--map", &bad)) != NULL)
		if (kv_option(c, map, "--map", v) != 0)
			goto out;
	while ((v = cli_opt(&argc, argv, "--overwrite", &bad)) != NULL)
		if (kv_option(c, over, "--overwrite", v) != 0)
			goto out;
	if (bad) {
		ret = cli_usage_error(c, "an option lacks its value");
		goto out;
	}
	if (resume != NULL || cancel != NULL) {
		struct store *st;
		int64_t jid = strtoll(resume ? resume : cancel, NULL, 10);

		if (argc != 1 || jid <= 0) {
			ret = cli_usage_error(
			    c, "--resume/--cancel take a job id");
			goto out;
		}
		if ((st = cli_store(c)) == NULL) {
			ret = 1;
			goto out;
		}
		if (cancel != NULL) {
			ret = cancel_job(c, st, jid);
		} else {
			ret = run_job(c, st, jid);
		}
		store_close(&st);
		goto out;
	}
	if (argc != 2 || account == NULL) {
		ret = cli_usage_error(c, "expected FILE and --account NAME");
		goto out;
	}
	if (format == NULL)
		format = guess_format(argv[1]);
	if (!import_format_valid(format) || strcmp(format, "postgresql") == 0) {
		ret = cli_usage_error(c,
		    "--format: use csv, tsv, vcard, jsonl or suppressions "
		    "(PostgreSQL sources go through the API)");
		goto out;
	}
	if (realpath(argv[1], real) == NULL || stat(real, &sb) < 0 ||
	    !S_ISREG(sb.st_mode)) {
		ret = cli_fail("%s: %s", argv[1],
		    errno ? strerror(errno) : "not a regular file");
		goto out;
	}
	if (mode != NULL)
		json_object_set_new(opts, "mode", json_string(mode));
	if (json_object_size(map) > 0)
		json_object_set(opts, "map", map);
	if (json_object_size(over) > 0)
		json_object_set(opts, "overwrite", over);
	if (consent != NULL)
		json_object_set_new(
		    opts, "consent", json_pack("{s:s}", "source", consent));
	if (delim != NULL)
		json_object_set_new(opts, "delimiter",
		    json_string(strcmp(delim, "tab") == 0 ? "\t" : delim));
	text = json_dumps(opts, JSON_COMPACT);
	{
		struct store *st = cli_store(c);
		int r;

		if (st == NULL) {
			ret = 1;
			goto out;
		}
		if ((job.account_id = cli_account(st, account)) == 0) {
			store_close(&st);
			ret = 1;
			goto out;
		}
		if (list != NULL) {
			r = store_list_find(
			    st, job.account_id, list, &lst, &error);
			if (r != 0) {
				ret = cli_fail("%s%s", error,
				    r == 1 ? " (create it with 'herald list "
					     "create')"
					   : "");
				store_close(&st);
				goto out;
			}
			job.list_id = lst.id;
		}
		if (import_options_check(st, job.account_id, format, text, err,
			sizeof(err)) < 0) {
			ret = cli_fail("%s", err);
			store_close(&st);
			goto out;
		}
		snprintf(job.runner, sizeof(job.runner), "cli");
		snprintf(job.format, sizeof(job.format), "%s", format);
		snprintf(job.source, sizeof(job.source), "%s", real);
		snprintf(job.options, sizeof(job.options), "%s", text);
		job.bytes_total = (int64_t)sb.st_size;
		if (store_import_create(st, &job, &id, &error) < 0) {
			ret = cli_fail("%s", error);
			store_close(&st);
			goto out;
		}
		ret = run_job(c, st, id);
		store_close(&st);
	}
out:
	free(text);
	json_decref(opts);
	json_decref(map);
	json_decref(over);
	return ret;
}

int
cmd_export(struct cli *c, int argc, char **argv)
{
	const char *account, *list, *segment, *format, *output, *error;
	struct export_spec spec = { .what = EXPORT_CONTACTS };
	struct export *e = NULL;
	struct store *st;
	struct buf b = BUF_INIT;
	struct store_list lst;
	bool bad = false, suppr = false;
	char err[512];
	FILE *out = stdout;
	int64_t acc;
	int r, ret = 1;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--suppressions") == 0) {
			suppr = true;
			memmove(&argv[i], &argv[i + 1],
			    (size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	account = cli_opt(&argc, argv, "--account", &bad);
	list = cli_opt(&argc, argv, "--list", &bad);
	segment = cli_opt(&argc, argv, "--segment", &bad);
	format = cli_opt(&argc, argv, "--format", &bad);
	output = cli_opt(&argc, argv, "--output", &bad);
	if (bad || argc != 1 || account == NULL)
		return cli_usage_error(c, "expected --account NAME");
	if ((st = cli_store(c)) == NULL)
		return 1;
	if ((acc = cli_account(st, account)) == 0)
		goto out;
	if (suppr)
		spec.what = EXPORT_SUPPRESSIONS;
	if (list != NULL) {
		if ((r = store_list_find(st, acc, list, &lst, &error)) != 0) {
			cli_fail("%s", error);
			goto out;
		}
		spec.list_id = lst.id;
	}
	spec.segment = segment;
	spec.format = format != NULL ? format : "csv";
	if ((e = export_new(st, acc, &spec, err, sizeof(err))) == NULL) {
		cli_fail("%s", err);
		goto out;
	}
	if (output != NULL && (out = fopen(output, "w")) == NULL) {
		cli_fail("%s: %s", output, strerror(errno));
		goto out;
	}
	do {
		buf_reset(&b);
		r = export_next(e, &b, 1000, err, sizeof(err));
		if (b.len > 0 && fwrite(b.data, 1, b.len, out) != b.len) {
			cli_fail("writing: %s", strerror(errno));
			r = -1;
		}
	} while (r == 1);
	if (r < 0 && err[0] != '\0')
		cli_fail("%s", err);
	ret = r < 0;
	if (out != stdout && fclose(out) != 0)
		ret = cli_fail("%s: %s", output, strerror(errno));
out:
	buf_free(&b);
	export_free(&e);
	store_close(&st);
	return ret;
}

/* ---- lists ---- */

int
cmd_list_create(struct cli *c, int argc, char **argv)
{
	const char *account, *optin, *desc, *error = NULL;
	bool bad = false;
	struct store *st;
	int64_t acc, id;
	int r;

	account = cli_opt(&argc, argv, "--account", &bad);
	optin = cli_opt(&argc, argv, "--optin", &bad);
	desc = cli_opt(&argc, argv, "--description", &bad);
	if (bad || argc != 2 || account == NULL)
		return cli_usage_error(
		    c, "expected --account NAME and a list NAME");
	if (cli_open_account(c, account, &st, &acc) != 0)
		return 1;
	r = store_list_create(st, acc, argv[1], desc,
	    optin != NULL ? optin : "single", &id, &error);
	if (r == 0)
		printf("list %s created (id %" PRId64 ")\n", argv[1], id);
	return cli_finish(&st, r, error);
}

static int
print_list(void *arg, const struct store_list *l)
{
	(void)arg;
	printf("%-6" PRId64 " %-24s %-7s %s\n", l->id, l->name, l->optin,
	    l->description);
	return 0;
}

int
cmd_list_list(struct cli *c, int argc, char **argv)
{
	const char *account, *error = NULL;
	bool bad = false;
	struct store *st;
	int64_t acc;
	int r;

	account = cli_opt(&argc, argv, "--account", &bad);
	if (bad || argc != 1 || account == NULL)
		return cli_usage_error(c, "expected --account NAME");
	if (cli_open_account(c, account, &st, &acc) != 0)
		return 1;
	printf("%-6s %-24s %-7s %s\n", "ID", "NAME", "OPTIN", "DESCRIPTION");
	r = store_list_list(st, acc, print_list, NULL, &error);
	return cli_finish(&st, r, error);
}

/* ---- custom fields ---- */

int
cmd_field_create(struct cli *c, int argc, char **argv)
{
	const char *account, *choices, *error = NULL;
	char *text = NULL;
	bool bad = false;
	struct store *st;
	int64_t acc, id;
	int r;

	account = cli_opt(&argc, argv, "--account", &bad);
	choices = cli_opt(&argc, argv, "--choices", &bad);
	if (bad || argc != 3 || account == NULL)
		return cli_usage_error(
		    c, "expected --account NAME, NAME and TYPE");
	if (cli_open_account(c, account, &st, &acc) != 0)
		return 1;
	if (choices != NULL) {
		/* a,b,c as the JSON array the store keeps */
		char *copy = xstrdup(choices), *save = NULL;
		json_t *arr = json_array();

		for (char *t = strtok_r(copy, ",", &save); t != NULL;
		     t = strtok_r(NULL, ",", &save))
			json_array_append_new(arr, json_string(t));
		free(copy);
		text = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
	}
	r = store_field_create(st, acc, argv[1], argv[2], text, &id, &error);
	if (r == 0)
		printf("field %s (%s) created (id %" PRId64 ")\n", argv[1],
		    argv[2], id);
	free(text);
	return cli_finish(&st, r, error);
}

static int
print_field(void *arg, const struct store_field *f)
{
	(void)arg;
	printf("%-6" PRId64 " %-24s %-8s %s\n", f->id, f->name, f->type,
	    f->choices);
	return 0;
}

int
cmd_field_list(struct cli *c, int argc, char **argv)
{
	const char *account, *error = NULL;
	bool bad = false;
	struct store *st;
	int64_t acc;
	int r;

	account = cli_opt(&argc, argv, "--account", &bad);
	if (bad || argc != 1 || account == NULL)
		return cli_usage_error(c, "expected --account NAME");
	if (cli_open_account(c, account, &st, &acc) != 0)
		return 1;
	printf("%-6s %-24s %-8s %s\n", "ID", "NAME", "TYPE", "CHOICES");
	r = store_field_list(st, acc, print_field, NULL, &error);
	return cli_finish(&st, r, error);
}

/* ---- API keys ---- */

int
cmd_apikey_create(struct cli *c, int argc, char **argv)
{
	const char *account, *name, *scopes, *error = NULL;
	char key[STORE_APIKEY_MAX];
	bool bad = false, operator= false;
	struct store *st;
	int64_t acc = 0, id;
	int ret = 1;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--operator") == 0) {
			operator= true;
			memmove(&argv[i], &argv[i + 1],
			    (size_t)(argc - i) * sizeof(*argv));
			argc--;
			break;
		}
	account = cli_opt(&argc, argv, "--account", &bad);
	name = cli_opt(&argc, argv, "--name", &bad);
	scopes = cli_opt(&argc, argv, "--scopes", &bad);
	if (bad || argc != 1 || (account == NULL) == !operator)
		return cli_usage_error(
		    c, "expected --account NAME or --operator");
	if ((st = cli_store(c)) == NULL)
		return 1;
	if (operator||(acc = cli_account(st, account)) != 0) {
		if (store_apikey_create(st, acc, name != NULL ? name : "cli",
			scopes != NULL
			    ? scopes
			    : (operator? "read,write,admin" : "read,write"),
			key, &id, &error) == 0) {
			printf("%s\n", key);
			fprintf(stderr,
			    "API key %" PRId64
			    " created; it is shown only now: keep it.\n",
			    id);
			ret = 0;
		} else {
			cli_fail("%s", error);
		}
	}
	store_close(&st);
	return ret;
}

static int
print_key(void *arg, const struct store_apikey *k)
{
	char when[32] = "-";

	(void)arg;
	if (k->last_used_at != 0)
		time_iso8601((time_t)k->last_used_at, when, sizeof(when));
	printf("%-6" PRId64 " %-16s %-20s %-20s %-24s%s\n", k->id, k->prefix,
	    k->name, k->scopes, when, k->revoked_at != 0 ? "  revoked" : "");
	return 0;
}

int
cmd_apikey_list(struct cli *c, int argc, char **argv)
{
	const char *account, *error = NULL;
	bool bad = false;
	struct store *st;
	int64_t acc = 0;
	int ret = 1;

	account = cli_opt(&argc, argv, "--account", &bad);
	(void)argv;
	if (bad || argc != 1)
		return cli_usage_error(c, "unexpected argument");
	if ((st = cli_store(c)) == NULL)
		return 1;
	if (account == NULL || (acc = cli_account(st, account)) != 0) {
		printf("%-6s %-16s %-20s %-20s %-24s\n", "ID", "PREFIX", "NAME",
		    "SCOPES", "LAST USED");
		ret = store_apikey_list(st, acc, print_key, NULL, &error) < 0
		    ? cli_fail("%s", error)
		    : 0;
	}
	store_close(&st);
	return ret;
}

int
cmd_apikey_revoke(struct cli *c, int argc, char **argv)
{
	const char *account, *error = NULL;
	bool bad = false;
	struct store *st;
	int64_t acc = 0;
	int ret = 1, r;

	account = cli_opt(&argc, argv, "--account", &bad);
	if (bad || argc != 2)
		return cli_usage_error(c, "expected a key ID");
	if ((st = cli_store(c)) == NULL)
		return 1;
	if (account == NULL || (acc = cli_account(st, account)) != 0) {
		r = store_apikey_revoke(
		    st, acc, strtoll(argv[1], NULL, 10), &error);
		if (r == 0) {
			printf("API key %s revoked\n", argv[1]);
			ret = 0;
		} else {
			cli_fail("%s", error);
		}
	}
	store_close(&st);
	return ret;
}
