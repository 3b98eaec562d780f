/*
 * test_pgsrc.c - the PostgreSQL row source (contacts/pgsrc.c) against a
 * real PostgreSQL 15.
 *
 * The group setup makes a throw-away cluster in a temporary directory
 * (initdb, as the postgres user when run as root, since initdb refuses
 * root), listening on 127.0.0.1 at a port derived from the pid, with
 * scram-sha-256 for TCP and trust on its private socket; the socket is
 * used only here, to create the role, the database and a table of 2,500
 * contacts.  The cluster is stopped (-m immediate) and removed by the
 * group teardown and, should the process leave early, by atexit.
 * Without the PostgreSQL binaries the test fails: it does not skip.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "contacts/pgsrc.h"

#define PGBIN "/usr/lib/postgresql/15/bin"
#define PASSWORD "Pa'ss\\w0rd-Zq9"
#define QUERY "SELECT id, email, name, city, age, joined FROM contacts"

static char base[64]; /* the cluster's directory, "" when none */
static int port;
static bool started;
static char conninfo[512]; /* to contacts_db as herald_u, with password */
static char public_ci[512];

/* sh - run a shell command (as postgres when root); its exit status */
static int
sh(const char *fmt, ...)
{
	char cmd[2048], full[2300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (getuid() == 0)
		snprintf(full, sizeof(full),
		    "runuser -u postgres -- sh -c '%s'", cmd);
	else
		snprintf(full, sizeof(full), "%s", cmd);
	return system(full);
}

/* cluster_stop - stop and remove the cluster; safe to call twice */
static void
cluster_stop(void)
{
	char cmd[256];

	if (started)
		(void)sh(PGBIN "/pg_ctl -D %s/data -m immediate -w stop "
			       ">/dev/null 2>&1",
		    base);
	started = false;
	if (base[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
		(void)system(cmd);
		base[0] = '\0';
	}
}

/* admin_sql - run statements on dbname over the private socket */
static void
admin_sql(const char *dbname, const char *sql)
{
	char ci[256];
	PGconn *c;
	PGresult *res;

	snprintf(ci, sizeof(ci), "host=%s port=%d user=postgres dbname=%s",
	    base, port, dbname);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("admin connect: %s", PQerrorMessage(c));
	res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("admin sql: %s", PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
}

/* count_contacts - rows in the table, through the admin socket */
static long
count_contacts(void)
{
	char ci[256];
	PGconn *c;
	PGresult *res;
	long n;

	snprintf(ci, sizeof(ci),
	    "host=%s port=%d user=postgres dbname=contacts_db", base, port);
	c = PQconnectdb(ci);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	res = PQexec(c, "SELECT count(*) FROM contacts");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	PQfinish(c);
	return n;
}

/*
 * free_port - a loopback TCP port nobody listens on, below the kernel's
 * ephemeral range (a port there may be taken by an outgoing connection
 * of another test between our check and PostgreSQL's bind)
 */
static int
free_port(void)
{
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	for (int i = 0; i < 200; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int p = 10000 + rand() % 22000;

		sin.sin_port = htons((uint16_t)p);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd >= 0 &&
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(fd);
			return p;
		}
		if (fd >= 0)
			close(fd);
	}
	return 55432;
}

static int
setup(void **state)
{
	char *pub, *pw, err[256], *joined, path[128];
	FILE *f;

	(void)state;
	if (access(PGBIN "/initdb", X_OK) != 0 ||
	    access(PGBIN "/pg_ctl", X_OK) != 0) {
		fprintf(stderr,
		    "test_pgsrc: PostgreSQL 15 is needed (" PGBIN
		    "/initdb, pg_ctl): install postgresql-15\n");
		return -1;
	}
	snprintf(base, sizeof(base), "/tmp/test_pgsrc.XXXXXX");
	if (mkdtemp(base) == NULL) {
		base[0] = '\0';
		return -1;
	}
	atexit(cluster_stop);
	if (getuid() == 0 && sh("true") == 0) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "chown postgres: %s", base);
		if (system(cmd) != 0)
			return -1;
	}
	port = free_port();
	if (sh(PGBIN
		"/initdb -N -A trust --auth-host=scram-sha-256 -U postgres "
		"-D %s/data >%s/initdb.log 2>&1",
		base, base) != 0) {
		fprintf(stderr, "test_pgsrc: initdb failed:\n");
		(void)sh("cat %s/initdb.log >&2", base);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/data/postgresql.conf", base);
	if ((f = fopen(path, "a")) == NULL)
		return -1;
	fprintf(f,
	    "listen_addresses = '127.0.0.1'\nport = %d\n"
	    "unix_socket_directories = '%s'\nfsync = off\nssl = on\n",
	    port, base);
	if (fclose(f) != 0)
		return -1;
	/* a self-signed certificate, so that sslmode=require is tried */
	if (sh("openssl req -new -x509 -days 2 -nodes -subj /CN=localhost "
	       "-keyout %s/data/server.key -out %s/data/server.crt "
	       ">/dev/null 2>&1 && chmod 600 %s/data/server.key",
		base, base, base) != 0) {
		fprintf(stderr, "test_pgsrc: openssl req failed\n");
		return -1;
	}
	if (sh(PGBIN "/pg_ctl -D %s/data -l %s/pg.log -w start >/dev/null",
		base, base) != 0) {
		fprintf(stderr, "test_pgsrc: pg_ctl start failed:\n");
		(void)sh("cat %s/pg.log >&2", base);
		return -1;
	}
	started = true;
	admin_sql("postgres",
	    "CREATE ROLE herald_u LOGIN PASSWORD 'Pa''ss\\w0rd-Zq9'");
	admin_sql("postgres", "CREATE DATABASE contacts_db OWNER herald_u");
	admin_sql("contacts_db",
	    "SET ROLE herald_u;"
	    "CREATE TABLE contacts (id serial PRIMARY KEY, email text NOT "
	    "NULL, name text, city text, age int, joined date);"
	    "INSERT INTO contacts (email, name, city, age, joined) "
	    "SELECT 'user' || i || '@example.com', "
	    "CASE WHEN i % 10 = 0 THEN NULL ELSE 'User ' || i END, "
	    "CASE i % 3 WHEN 0 THEN 'Paris' WHEN 1 THEN 'K\xc3\xb6ln' END, "
	    "20 + i % 50, date '2020-01-01' + i "
	    "FROM generate_series(1, 2500) i;"
	    "CREATE FUNCTION wipe() RETURNS int LANGUAGE sql AS "
	    "'DELETE FROM contacts; SELECT 1';");
	/* the stored form: split, then joined back to connect */
	snprintf(conninfo, sizeof(conninfo),
	    "postgresql://herald_u@127.0.0.1:%d/contacts_db?sslmode=disable",
	    port);
	if (pgsrc_conninfo_split(conninfo, &pub, &pw, err, sizeof(err)) != 0) {
		fprintf(stderr, "split: %s\n", err);
		return -1;
	}
	snprintf(public_ci, sizeof(public_ci), "%s", pub);
	joined = pgsrc_conninfo_join(pub, PASSWORD);
	snprintf(conninfo, sizeof(conninfo), "%s", joined);
	free(joined);
	free(pub);
	free(pw);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	cluster_stop();
	return 0;
}

/* open_src - pgsrc_open on the test database, asserting success */
static struct pgsrc *
open_src(const char *query, int fetch_rows)
{
	struct pgsrc_limits lim = { 0 };
	struct pgsrc *p;
	char err[512];

	lim.fetch_rows = fetch_rows;
	p = pgsrc_open(conninfo, query, &lim, err, sizeof(err));
	if (p == NULL)
		fail_msg("pgsrc_open: %s", err);
	return p;
}

/* open_err - pgsrc_open that must fail; its error in err */
static void
open_err(const char *ci, const char *query, char *err, size_t errlen)
{
	struct pgsrc *p = pgsrc_open(ci, query, NULL, err, errlen);

	if (p != NULL) {
		pgsrc_close(&p);
		fail_msg("pgsrc_open succeeded on %s", query);
	}
	print_message("  refused: %s\n", err);
	assert_null(strchr(err, '\n'));
}

static void
test_read_all(void **state)
{
	struct pgsrc *p = open_src(QUERY " ORDER BY id", 100);
	const char *const *names, *const *v;
	size_t n, nrows = 0, nulls = 0;
	char err[256], want[64];

	(void)state;
	assert_int_equal(pgsrc_columns(p, &names, &n), 0);
	assert_int_equal(n, 6);
	assert_string_equal(names[0], "id");
	assert_string_equal(names[1], "email");
	assert_string_equal(names[5], "joined");
	while (pgsrc_next(p, &v, &n, err, sizeof(err)) == 1) {
		nrows++;
		assert_int_equal(n, 6);
		snprintf(want, sizeof(want), "%zu", nrows);
		assert_string_equal(v[0], want);
		snprintf(want, sizeof(want), "user%zu@example.com", nrows);
		assert_string_equal(v[1], want);
		if (nrows % 10 == 0)
			assert_null(v[2]);
		nulls += v[2] == NULL;
		if (nrows == 1) {
			assert_string_equal(v[2], "User 1");
			assert_string_equal(v[3], "K\xc3\xb6ln");
			assert_string_equal(v[4], "21");
			assert_string_equal(v[5], "2020-01-02");
		}
		if (nrows == 2)
			assert_null(v[3]);
	}
	assert_int_equal(nrows, 2500);
	assert_int_equal(nulls, 250);
	/* the end stays the end */
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 0);
	pgsrc_close(&p);
	assert_null(p);
}

/*
 * test_ssl - sslmode=require works although sslcert/sslkey point
 * nowhere (the server user's client certificate is never used).
 */
static void
test_ssl(void **state)
{
	struct pgsrc *p;
	const char *const *v;
	size_t n;
	char ci[600], err[512];

	(void)state;
	snprintf(ci, sizeof(ci), "%s", conninfo);
	assert_non_null(strstr(ci, "sslmode='disable'"));
	memcpy(strstr(ci, "sslmode='disable'"), "sslmode='require'", 17);
	p = pgsrc_open(ci,
	    "SELECT ssl::text FROM pg_stat_ssl WHERE pid = "
	    "pg_backend_pid()",
	    NULL, err, sizeof(err));
	if (p == NULL)
		fail_msg("pgsrc_open with SSL: %s", err);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 1);
	assert_string_equal(v[0], "true");
	pgsrc_close(&p);
}

static void
test_skip(void **state)
{
	struct pgsrc *p = open_src(QUERY " ORDER BY id", 100);
	const char *const *v;
	size_t n, nrows = 0, i;
	char err[256];

	(void)state;
	assert_int_equal(pgsrc_skip(p, 1000, err, sizeof(err)), 0);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 1);
	assert_string_equal(v[0], "1001");
	nrows = 1;
	while (pgsrc_next(p, &v, &n, err, sizeof(err)) == 1)
		nrows++;
	assert_int_equal(nrows, 1500);
	pgsrc_close(&p);

	/* skipping from inside a batch, then past the end */
	p = open_src(QUERY " ORDER BY id", 100);
	for (i = 0; i < 50; i++)
		assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 1);
	assert_int_equal(pgsrc_skip(p, 100, err, sizeof(err)), 0);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 1);
	assert_string_equal(v[0], "151");
	assert_int_equal(pgsrc_skip(p, 5000000000ULL, err, sizeof(err)), 0);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 0);
	pgsrc_close(&p);
}

static void
test_value_max(void **state)
{
	struct pgsrc_limits lim = { 0, 0, 7, 12 };
	struct pgsrc *p;
	const char *const *v;
	size_t n, good = 0, bad = 0;
	char err[256];
	int rc;

	(void)state;
	p = pgsrc_open(conninfo,
	    "SELECT email FROM contacts WHERE id <= 20 "
	    "ORDER BY id",
	    &lim, err, sizeof(err));
	assert_non_null(p);
	/* user1@example.com is 17 bytes: every row is over 12 */
	while ((rc = pgsrc_next(p, &v, &n, err, sizeof(err))) != 0) {
		if (rc == 1)
			good++;
		else {
			bad++;
			assert_non_null(strstr(err, "column \"email\""));
		}
		assert_true(good + bad <= 20);
	}
	assert_int_equal(bad, 20);
	assert_non_null(strstr(err, "row 20,"));
	pgsrc_close(&p);
}

static void
test_wrong_password(void **state)
{
	char *ci, err[512], path[128];
	PGconn *c;
	FILE *f;

	(void)state;
	ci = pgsrc_conninfo_join(public_ci, "WrongPassw0rdXYZ");
	open_err(ci, QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "password authentication failed"));
	assert_null(strstr(err, "WrongPassw0rdXYZ"));
	free(ci);
	/*
	 * the server user's password file is never read: plain libpq
	 * connects with it, pgsrc does not
	 */
	snprintf(path, sizeof(path), "%s/pgpass", base);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "*:*:*:herald_u:Pa'ss\\\\w0rd-Zq9\n");
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	setenv("PGPASSFILE", path, 1);
	c = PQconnectdb(public_ci);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PQfinish(c);
	open_err(public_ci, QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "no password supplied"));
	unsetenv("PGPASSFILE");
	unlink(path);
	/* a parse error of a string holding a password does not quote it */
	open_err("host=127.0.0.1 password=Sec ret", QUERY, err, sizeof(err));
	assert_null(strstr(err, "ret"));
	assert_non_null(strstr(err, "connection string"));
}

static void
test_query_checks(void **state)
{
	static const char *const bad[] = {
		"SELECT 1; DELETE FROM contacts",
		"SELECT 1;;",
		"SELECT 1; SELECT 2",
		"SELECT E'\\';' ; DELETE FROM contacts",
		"SELECT $$;$$; DELETE FROM contacts",
	};
	static const char *const good[] = {
		"SELECT ';' AS x;  \n",
		"SELECT \";\" FROM (SELECT 1 AS \";\") t",
		"SELECT E'\\';' AS x",
		"SELECT $q$ ; $q$ AS x; -- done",
		"-- a comment; with a semicolon\nSELECT /* ; /* nested ; */ */ "
		"1",
		"with t AS (SELECT 1 AS a) SELECT a FROM t",
	};
	char err[512];
	struct pgsrc *p;
	const char *const *v;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		open_err(conninfo, bad[i], err, sizeof(err));
		assert_non_null(strstr(err, "only one statement"));
	}
	open_err(conninfo, "  \n-- nothing\n ; ", err, sizeof(err));
	assert_string_equal(err, "query: empty");
	open_err(conninfo, "DELETE FROM contacts", err, sizeof(err));
	assert_non_null(strstr(err, "must be a SELECT"));
	open_err(conninfo, "selectx 1", err, sizeof(err));
	assert_non_null(strstr(err, "must be a SELECT"));
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		p = open_src(good[i], 10);
		assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 1);
		assert_int_equal(n, 1);
		pgsrc_close(&p);
	}
	p = open_src("SELECT ';' AS x;  \n", 10);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), 1);
	assert_string_equal(v[0], ";");
	pgsrc_close(&p);
	assert_int_equal(count_contacts(), 2500);
}

static void
test_read_only(void **state)
{
	struct pgsrc *p;
	const char *const *v;
	size_t n;
	char err[512];

	(void)state;
	/* a data-modifying CTE: PostgreSQL refuses it */
	open_err(conninfo,
	    "WITH x AS (DELETE FROM contacts RETURNING *) SELECT * FROM x", err,
	    sizeof(err));
	assert_non_null(strstr(err, "query: "));
	assert_true(strstr(err, "data-modifying") != NULL ||
	    strstr(err, "read-only") != NULL);
	assert_int_equal(count_contacts(), 2500);
	/* a function that deletes: the read-only transaction refuses it */
	p = open_src("SELECT wipe()", 10);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), -1);
	assert_non_null(
	    strstr(err, "cannot execute DELETE in a read-only transaction"));
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), -1);
	pgsrc_close(&p);
	assert_int_equal(count_contacts(), 2500);
	/* and turning it off is refused too */
	p = open_src(
	    "SELECT set_config('transaction_read_only', 'off', true)", 10);
	assert_int_equal(pgsrc_next(p, &v, &n, err, sizeof(err)), -1);
	pgsrc_close(&p);
}

static void
test_errors(void **state)
{
	char err[512], ci[256];

	(void)state;
	open_err(conninfo, "SELECT email FORM contacts", err, sizeof(err));
	assert_non_null(strstr(err, "syntax error at or near \"contacts\""));
	assert_non_null(strstr(err, "at character 19"));
	open_err(conninfo, "SELECT nosuch FROM contacts", err, sizeof(err));
	assert_non_null(strstr(err, "column \"nosuch\" does not exist"));
	/* refused options and hosts */
	open_err("host=127.0.0.1 service=x", QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "\"service\" is not allowed"));
	open_err(
	    "host=127.0.0.1 passfile=/etc/shadow", QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "\"passfile\" is not allowed"));
	open_err("host=127.0.0.1 sslkey=/etc/ssl/private/x.key", QUERY, err,
	    sizeof(err));
	assert_non_null(strstr(err, "\"sslkey\" is not allowed"));
	snprintf(ci, sizeof(ci), "host=%s port=%d user=postgres", base, port);
	open_err(ci, QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "network host is required"));
	open_err("dbname=x user=postgres", QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "network host is required"));
	open_err("postgresql:///x", QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "network host is required"));
	/* nothing listens there */
	open_err(
	    "host=127.0.0.1 port=1 connect_timeout=2", QUERY, err, sizeof(err));
	assert_non_null(strstr(err, "connect: "));
}

/* same_options - whether two conninfo strings parse to the same options */
static void
same_options(const char *a, const char *b)
{
	PQconninfoOption *oa = PQconninfoParse(a, NULL);
	PQconninfoOption *ob = PQconninfoParse(b, NULL);
	size_t i;

	assert_non_null(oa);
	assert_non_null(ob);
	for (i = 0; oa[i].keyword != NULL; i++) {
		assert_string_equal(oa[i].keyword, ob[i].keyword);
		if (oa[i].val == NULL || ob[i].val == NULL)
			assert_true(oa[i].val == ob[i].val);
		else
			assert_string_equal(oa[i].val, ob[i].val);
	}
	PQconninfoFree(oa);
	PQconninfoFree(ob);
}

static void
test_conninfo(void **state)
{
	static const char *const cases[] = {
		"postgresql://u:secret@127.0.0.1:5432/db?sslmode=disable",
		"host=db.example port=5433 dbname='my db' user='o\\'brien' "
		"password='a\\\\b\\'c d' sslmode=require",
		"host=db.example user=x",
	};
	char *pub, *pw, *joined, err[256];
	size_t i;

	(void)state;
	assert_int_equal(
	    pgsrc_conninfo_split(cases[0], &pub, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "secret");
	assert_null(strstr(pub, "secret"));
	assert_non_null(strstr(pub, "user='u'"));
	assert_non_null(strstr(pub, "host='127.0.0.1'"));
	assert_non_null(strstr(pub, "dbname='db'"));
	assert_non_null(strstr(pub, "sslmode='disable'"));
	free(pub);
	free(pw);
	assert_int_equal(
	    pgsrc_conninfo_split(cases[1], &pub, &pw, err, sizeof(err)), 0);
	assert_string_equal(pw, "a\\b'c d");
	assert_non_null(strstr(pub, "user='o\\'brien'"));
	assert_non_null(strstr(pub, "dbname='my db'"));
	free(pub);
	free(pw);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(
		    pgsrc_conninfo_split(cases[i], &pub, &pw, err, sizeof(err)),
		    0);
		if (i == 2)
			assert_null(pw);
		same_options(pub, pub); /* public itself parses */
		joined = pgsrc_conninfo_join(pub, pw);
		same_options(cases[i], joined);
		free(joined);
		free(pub);
		free(pw);
	}
	joined = pgsrc_conninfo_join("", "x'y");
	assert_string_equal(joined, "password='x\\'y'");
	free(joined);
	assert_int_equal(pgsrc_conninfo_split(
			     "host=x nosuch=1", &pub, &pw, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "nosuch"));
	assert_null(pub);
	assert_int_equal(pgsrc_conninfo_split(
			     "host=x service=y", &pub, &pw, err, sizeof(err)),
	    -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conninfo),
		cmocka_unit_test(test_read_all),
		cmocka_unit_test(test_ssl),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_value_max),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_query_checks),
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
