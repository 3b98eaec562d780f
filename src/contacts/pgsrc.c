/*
 * pgsrc.c - the PostgreSQL row source of pgsrc.h, over libpq.
 *
 * Design notes:
 *   1. The connection is made from PQconninfoParse's options, never from
 *      the string again (expand_dbname = 0), so the checks of note 2 see
 *      exactly what libpq uses.  Herald's own values come last and win:
 *      connect_timeout, client_encoding UTF8, gssencmode disable, and
 *      passfile/sslcert/sslkey set to a path that cannot exist, which
 *      libpq quietly treats as absent (ENOTDIR).
 *   2. Refused: options that name server files or read server
 *      configuration (passfile, service, ssl* files), GSS (it would use
 *      the server's Kerberos credentials), and any host that is not a
 *      network address: an empty host or a socket directory would reach
 *      the server's own PostgreSQL as the Herald system user.
 *   3. The query scanner knows single quotes ('' and, in E'', backslash
 *      escapes), double-quoted identifiers, dollar quotes, -- and nested
 *      block comments.  standard_conforming_strings is forced on for the
 *      transaction so that the server reads literals as the scanner did.
 *   4. The DECLARE goes through PQexecParams: the extended protocol takes
 *      one statement, whatever the scanner thought.
 *   5. Error texts pass through pgsrc_msg: one line, and the password
 *      (if any) replaced by "***" should a message ever quote it.
 */
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contacts/pgsrc.h"

#define CURSOR "herald_import"
#define DECLARE_PREFIX "DECLARE " CURSOR " NO SCROLL CURSOR FOR "
#define NO_FILE "/dev/null/herald-none" /* stat() fails with ENOTDIR */
#define MOVE_MAX 1000000000ULL		/* MOVE takes an int4 count */

struct pgsrc {
	struct pgsrc_limits lim;
	PGconn *conn;
	char *password; /* to keep it out of messages; wiped */
	PGresult *desc; /* the cursor's description: column names */
	const char **names;
	size_t ncols;
	PGresult *batch; /* the current FETCH */
	int nrows, row;	 /* rows in it, next one to hand out */
	bool last_batch; /* the cursor has nothing after this batch */
	bool broken;
	uint64_t pos; /* rows consumed so far, skipped ones included */
	const char **vals;
};

static const char *const refused_opts[] = { "passfile", "service", "sslcert",
	"sslkey", "sslrootcert", "sslcrl", "sslcrldir", "gssencmode",
	"krbsrvname", "gsslib" };

/* pgsrc_msg - format into err on one line, password blanked */
static void
pgsrc_msg(const char *password, char *err, size_t errlen, const char *fmt, ...)
{
	char tmp[1024], *o, *s;
	size_t n, plen = password != NULL ? strlen(password) : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	for (n = strlen(tmp); n > 0 && strchr(" \t\r\n", tmp[n - 1]); n--)
		tmp[n - 1] = '\0';
	if (errlen == 0)
		return;
	for (s = tmp, o = err; *s != '\0' && (size_t)(o - err) + 4 < errlen;) {
		if (plen > 0 && strncmp(s, password, plen) == 0) {
			memcpy(o, "***", 3);
			o += 3;
			s += plen;
		} else if (*s == '\n' || *s == '\r') {
			while (
			    *s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
				s++;
			*o++ = ';';
			*o++ = ' ';
		} else
			*o++ = *s++;
	}
	*o = '\0';
}

/* blank_quoted - copy src to dst with every "..." part made "..." */
static void
blank_quoted(const char *src, char *dst, size_t dstlen)
{
	size_t o = 0;
	bool in = false;

	for (; *src != '\0' && o + 5 < dstlen; src++) {
		if (*src == '"') {
			if (!in) {
				memcpy(dst + o, "\"...", 4);
				o += 4;
			} else
				dst[o++] = '"';
			in = !in;
		} else if (!in)
			dst[o++] = *src;
	}
	dst[o] = '\0';
}

/* may_hold_password - whether a conninfo string could contain one */
static bool
may_hold_password(const char *ci)
{
	return strcasestr(ci, "password") != NULL || strchr(ci, '@') != NULL;
}

/* pgsrc_parse - PQconninfoParse with the error made safe to show */
static PQconninfoOption *
pgsrc_parse(const char *conninfo, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *msg = NULL, safe[512];

	if ((opts = PQconninfoParse(conninfo, &msg)) != NULL)
		return opts;
	if (msg == NULL)
		snprintf(safe, sizeof(safe), "out of memory");
	else if (may_hold_password(conninfo))
		blank_quoted(msg, safe, sizeof(safe));
	else
		snprintf(safe, sizeof(safe), "%s", msg);
	pgsrc_msg(NULL, err, errlen, "connection string: %s", safe);
	PQfreemem(msg);
	return NULL;
}

/* host_ok - whether a host list names network hosts only */
static bool
host_ok(const char *hosts)
{
	const char *h = hosts, *comma;

	for (;;) {
		comma = strchr(h, ',');
		if (comma == h || *h == '\0' || *h == '/' || *h == '@')
			return false;
		if (comma == NULL)
			return true;
		h = comma + 1;
	}
}

/* pgsrc_check - the policy of note 2 over parsed options */
static int
pgsrc_check(const PQconninfoOption *opts, char *err, size_t errlen)
{
	const PQconninfoOption *o;
	const char *host = NULL, *hostaddr = NULL;
	size_t i;

	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		for (i = 0; i < sizeof(refused_opts) / sizeof(refused_opts[0]);
		     i++)
			if (strcmp(o->keyword, refused_opts[i]) == 0) {
				snprintf(err, errlen,
				    "connection string: option \"%s\" is not "
				    "allowed (it would use the Herald "
				    "server's own files or credentials)",
				    o->keyword);
				return -1;
			}
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	if ((host != NULL && *host != '\0')
		? !host_ok(host)
		: hostaddr == NULL || !host_ok(hostaddr)) {
		snprintf(err, errlen,
		    "connection string: a network host is required "
		    "(Unix sockets of the Herald server are not allowed)");
		return -1;
	}
	return 0;
}

/* opt_val - the value of keyword among opts, NULL if not given */
static const char *
opt_val(const PQconninfoOption *opts, const char *keyword)
{
	for (; opts->keyword != NULL; opts++)
		if (strcmp(opts->keyword, keyword) == 0)
			return opts->val;
	return NULL;
}

/* is_ident - whether c can be part of an SQL identifier */
static bool
is_ident(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

/* skip_dollar - past the dollar-quoted string at q[i] == '$', or i */
static size_t
skip_dollar(const char *q, size_t i)
{
	size_t t = i + 1;
	const char *end;

	if (i > 0 && is_ident((unsigned char)q[i - 1]))
		return i; /* part of an identifier */
	if (q[t] >= '0' && q[t] <= '9')
		return i; /* $1 */
	while (q[t] != '$' && is_ident((unsigned char)q[t]))
		t++;
	if (q[t] != '$')
		return i;
	t++; /* the tag is q[i..t) */
	for (end = q + t; (end = strchr(end, '$')) != NULL; end++)
		if (strncmp(end, q + i, t - i) == 0)
			return (size_t)(end - q) + (t - i);
	return strlen(q);
}

/* skip_comment - past the comment at q[i], or i when there is none */
static size_t
skip_comment(const char *q, size_t i)
{
	int depth = 0;

	if (q[i] == '-' && q[i + 1] == '-')
		return i + strcspn(q + i, "\n");
	if (q[i] != '/' || q[i + 1] != '*')
		return i;
	while (q[i] != '\0') {
		if (q[i] == '/' && q[i + 1] == '*') {
			depth++;
			i += 2;
		} else if (q[i] == '*' && q[i + 1] == '/') {
			i += 2;
			if (--depth == 0)
				return i;
		} else
			i++;
	}
	return i;
}

/* skip_quoted - past the literal or identifier at q[i] (' or ") */
static size_t
skip_quoted(const char *q, size_t i)
{
	char quote = q[i];
	bool esc = quote == '\'' && i > 0 &&
	    (q[i - 1] == 'E' || q[i - 1] == 'e') &&
	    (i == 1 || !is_ident((unsigned char)q[i - 2]));

	for (i++; q[i] != '\0'; i++) {
		if (esc && q[i] == '\\' && q[i + 1] != '\0')
			i++;
		else if (q[i] == quote) {
			if (q[i + 1] != quote)
				return i + 1;
			i++;
		}
	}
	return i;
}

/*
 * query_check - refuse what is not one SELECT/WITH statement; the text
 * to declare (a trailing ';' cut) into *out.
 */
static int
query_check(const char *q, char **out, char *err, size_t errlen)
{
	size_t len = strlen(q), i = 0, k, first = SIZE_MAX, end = len;

	if (len > PGSRC_QUERY_MAX) {
		snprintf(err, errlen, "query: longer than %d bytes",
		    PGSRC_QUERY_MAX);
		return -1;
	}
	while (i < len) {
		if ((k = skip_comment(q, i)) != i ||
		    strchr(" \t\r\n\f", q[i])) {
			i = k != i ? k : i + 1;
			continue;
		}
		if (end != len) {
			snprintf(err, errlen,
			    "query: only one statement is allowed (';' at "
			    "character %zu)",
			    end + 1);
			return -1;
		}
		if (first == SIZE_MAX)
			first = i;
		if (q[i] == '\'' || q[i] == '"')
			i = skip_quoted(q, i);
		else if (q[i] == '$' && (k = skip_dollar(q, i)) != i)
			i = k;
		else if (q[i] == ';')
			end = i++;
		else
			i++;
	}
	if (first == SIZE_MAX || first == end) {
		snprintf(err, errlen, "query: empty");
		return -1;
	}
	k = strspn(
	    q + first, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
	if (!((k == 6 && strncasecmp(q + first, "select", 6) == 0) ||
		(k == 4 && strncasecmp(q + first, "with", 4) == 0))) {
		snprintf(err, errlen,
		    "query: must be a SELECT (or WITH ... SELECT) statement");
		return -1;
	}
	if ((*out = strndup(q, end)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* pgsrc_result_err - a failed statement's error into err */
static void
pgsrc_result_err(const struct pgsrc *p, const PGresult *res, const char *what,
    size_t prefix, char *err, size_t errlen)
{
	const char *prim = NULL, *pos = NULL;
	long at = 0;

	if (res != NULL) {
		prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	}
	if (prim == NULL)
		prim = PQerrorMessage(p->conn);
	if (pos != NULL && prefix > 0)
		at = strtol(pos, NULL, 10) - (long)prefix;
	if (at > 0)
		pgsrc_msg(p->password, err, errlen, "%s: %s (at character %ld)",
		    what, prim, at);
	else
		pgsrc_msg(p->password, err, errlen, "%s: %s", what, prim);
}

/* pgsrc_exec - run a statement without rows; 0 or -1 with err */
static int
pgsrc_exec(struct pgsrc *p, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(p->conn, sql);
	int rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgsrc_result_err(p, res, sql, 0, err, errlen);
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* pgsrc_connect - connect with the parsed options plus note 1's */
static int
pgsrc_connect(
    struct pgsrc *p, const PQconninfoOption *opts, char *err, size_t errlen)
{
	const PQconninfoOption *o;
	const char **keys, **vals;
	char timeout[32];
	size_t n = 0, k = 0;
	int rc = 0;

	for (o = opts; o->keyword != NULL; o++)
		n++;
	keys = calloc(n + 8, sizeof(*keys));
	vals = calloc(n + 8, sizeof(*vals));
	if (keys == NULL || vals == NULL) {
		free(keys);
		free(vals);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL) {
			keys[k] = o->keyword;
			vals[k++] = o->val;
		}
	snprintf(timeout, sizeof(timeout), "%d", p->lim.connect_timeout_s);
#define SET(kw, v) (keys[k] = (kw), vals[k++] = (v))
	SET("connect_timeout", timeout);
	SET("client_encoding", "UTF8");
	SET("gssencmode", "disable");
	SET("passfile", NO_FILE);
	SET("sslcert", NO_FILE);
	SET("sslkey", NO_FILE);
	SET("fallback_application_name", "herald-import");
#undef SET
	p->conn = PQconnectdbParams(keys, vals, 0);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		pgsrc_msg(p->password, err, errlen, "connect: %s",
		    p->conn != NULL ? PQerrorMessage(p->conn)
				    : "out of memory");
		rc = -1;
	}
	free(keys);
	free(vals);
	return rc;
}

/* pgsrc_declare - open the transaction and the cursor for query */
static int
pgsrc_declare(struct pgsrc *p, const char *query, char *err, size_t errlen)
{
	char sql[128], *decl;
	PGresult *res;
	size_t i;
	int rc = 0;

	snprintf(sql, sizeof(sql), "SET LOCAL statement_timeout = %lld",
	    (long long)p->lim.statement_timeout_s * 1000);
	if (pgsrc_exec(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
		err, errlen) == -1 ||
	    pgsrc_exec(p, sql, err, errlen) == -1 ||
	    pgsrc_exec(p, "SET LOCAL standard_conforming_strings = on", err,
		errlen) == -1)
		return -1;
	if ((decl = malloc(strlen(DECLARE_PREFIX) + strlen(query) + 1)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	strcpy(decl, DECLARE_PREFIX);
	strcat(decl, query);
	res = PQexecParams(p->conn, decl, 0, NULL, NULL, NULL, NULL, 0);
	free(decl);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgsrc_result_err(
		    p, res, "query", strlen(DECLARE_PREFIX), err, errlen);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	p->desc = PQdescribePortal(p->conn, CURSOR);
	if (PQresultStatus(p->desc) != PGRES_COMMAND_OK) {
		pgsrc_result_err(p, p->desc, "query", 0, err, errlen);
		return -1;
	}
	p->ncols = (size_t)PQnfields(p->desc);
	p->names = calloc(p->ncols + 1, sizeof(*p->names));
	p->vals = calloc(p->ncols + 1, sizeof(*p->vals));
	if (p->names == NULL || p->vals == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < p->ncols; i++)
		p->names[i] = PQfname(p->desc, (int)i);
	return rc;
}

struct pgsrc *
pgsrc_open(const char *conninfo, const char *query,
    const struct pgsrc_limits *lim, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	struct pgsrc *p;
	char *q = NULL;
	const char *pw;

	if (errlen > 0)
		*err = '\0';
	if (query_check(query, &q, err, errlen) == -1)
		return NULL;
	if ((opts = pgsrc_parse(conninfo, err, errlen)) == NULL) {
		free(q);
		return NULL;
	}
	if (pgsrc_check(opts, err, errlen) == -1 ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		if (*err == '\0' && errlen > 0)
			snprintf(err, errlen, "out of memory");
		PQconninfoFree(opts);
		free(q);
		return NULL;
	}
	if (lim != NULL)
		p->lim = *lim;
	if (p->lim.connect_timeout_s <= 0)
		p->lim.connect_timeout_s = PGSRC_CONNECT_TIMEOUT_S;
	if (p->lim.statement_timeout_s <= 0)
		p->lim.statement_timeout_s = PGSRC_STATEMENT_TIMEOUT_S;
	if (p->lim.fetch_rows <= 0)
		p->lim.fetch_rows = PGSRC_FETCH_ROWS;
	if (p->lim.value_max == 0)
		p->lim.value_max = PGSRC_VALUE_MAX;
	if ((pw = opt_val(opts, "password")) != NULL && *pw != '\0')
		p->password = strdup(pw);
	if (pgsrc_connect(p, opts, err, errlen) == -1 ||
	    pgsrc_declare(p, q, err, errlen) == -1) {
		PQconninfoFree(opts);
		free(q);
		pgsrc_close(&p);
		return NULL;
	}
	PQconninfoFree(opts);
	free(q);
	return p;
}

int
pgsrc_columns(const struct pgsrc *p, const char *const **names_r, size_t *n_r)
{
	*names_r = p->names;
	*n_r = p->ncols;
	return 0;
}

/* pgsrc_fetch - the next batch; 1, 0 at the end, -1 with err */
static int
pgsrc_fetch(struct pgsrc *p, char *err, size_t errlen)
{
	char sql[128];

	PQclear(p->batch);
	p->batch = NULL;
	p->nrows = p->row = 0;
	if (p->last_batch)
		return 0;
	snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM " CURSOR,
	    p->lim.fetch_rows);
	p->batch = PQexec(p->conn, sql);
	if (PQresultStatus(p->batch) != PGRES_TUPLES_OK) {
		pgsrc_result_err(p, p->batch, "fetch", 0, err, errlen);
		p->broken = true;
		return -1;
	}
	p->nrows = PQntuples(p->batch);
	p->last_batch = p->nrows < p->lim.fetch_rows;
	return p->nrows > 0;
}

int
pgsrc_skip(struct pgsrc *p, uint64_t n, char *err, size_t errlen)
{
	char sql[128];
	PGresult *res;
	uint64_t k, moved;

	if (p->broken) {
		snprintf(err, errlen, "source unusable after an earlier error");
		return -1;
	}
	k = (uint64_t)(p->nrows - p->row);
	k = k < n ? k : n;
	p->row += (int)k;
	p->pos += k;
	n -= k;
	while (n > 0 && !p->last_batch) {
		k = n < MOVE_MAX ? n : MOVE_MAX;
		snprintf(sql, sizeof(sql), "MOVE FORWARD %llu FROM " CURSOR,
		    (unsigned long long)k);
		res = PQexec(p->conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pgsrc_result_err(p, res, "skip", 0, err, errlen);
			PQclear(res);
			p->broken = true;
			return -1;
		}
		moved = strtoull(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		p->pos += moved;
		n -= k;
		if (moved < k)
			p->last_batch = true;
	}
	return 0;
}

int
pgsrc_next(struct pgsrc *p, const char *const **values_r, size_t *n_r,
    char *err, size_t errlen)
{
	size_t c;
	int rc;

	*values_r = NULL;
	*n_r = 0;
	if (p->broken) {
		snprintf(err, errlen, "source unusable after an earlier error");
		return -1;
	}
	if (p->row >= p->nrows && (rc = pgsrc_fetch(p, err, errlen)) <= 0)
		return rc;
	p->pos++;
	for (c = 0; c < p->ncols; c++) {
		if (PQgetisnull(p->batch, p->row, (int)c)) {
			p->vals[c] = NULL;
			continue;
		}
		if ((size_t)PQgetlength(p->batch, p->row, (int)c) >
		    p->lim.value_max) {
			p->row++;
			pgsrc_msg(p->password, err, errlen,
			    "row %llu, column \"%s\": value longer than %zu "
			    "bytes",
			    (unsigned long long)p->pos, p->names[c],
			    p->lim.value_max);
			return -1;
		}
		p->vals[c] = PQgetvalue(p->batch, p->row, (int)c);
	}
	p->row++;
	*values_r = p->vals;
	*n_r = p->ncols;
	return 1;
}

void
pgsrc_close(struct pgsrc **pp)
{
	struct pgsrc *p = *pp;

	if (p == NULL)
		return;
	PQclear(p->batch);
	PQclear(p->desc);
	if (p->conn != NULL) {
		if (PQstatus(p->conn) == CONNECTION_OK &&
		    PQtransactionStatus(p->conn) != PQTRANS_IDLE)
			PQclear(PQexec(p->conn, "ROLLBACK"));
		PQfinish(p->conn);
	}
	if (p->password != NULL) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	free(p->names);
	free(p->vals);
	free(p);
	*pp = NULL;
}

/* sb - a growing string */
struct sb {
	char *s;
	size_t len, cap;
	bool oom;
};

/* sb_add - append n bytes */
static void
sb_add(struct sb *b, const char *s, size_t n)
{
	size_t cap = b->cap ? b->cap : 128;
	char *ns;

	if (b->oom)
		return;
	while (cap < b->len + n + 1)
		cap *= 2;
	if (cap != b->cap) {
		if ((ns = realloc(b->s, cap)) == NULL) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* sb_add_opt - append key='value' (' and \ escaped), space-separated */
static void
sb_add_opt(struct sb *b, const char *key, const char *val)
{
	if (b->len > 0)
		sb_add(b, " ", 1);
	sb_add(b, key, strlen(key));
	sb_add(b, "='", 2);
	for (; *val != '\0'; val++) {
		if (*val == '\'' || *val == '\\')
			sb_add(b, "\\", 1);
		sb_add(b, val, 1);
	}
	sb_add(b, "'", 1);
}

/* sb_wipe - clear and free a string that may hold a password */
static void
sb_wipe(struct sb *b)
{
	if (b->s != NULL)
		explicit_bzero(b->s, b->cap);
	free(b->s);
	b->s = NULL;
}

int
pgsrc_conninfo_split(const char *conninfo, char **public_r, char **password_r,
    char *err, size_t errlen)
{
	PQconninfoOption *opts, *o;
	struct sb b = { 0 };
	char *pw = NULL;

	*public_r = *password_r = NULL;
	if ((opts = pgsrc_parse(conninfo, err, errlen)) == NULL)
		return -1;
	if (pgsrc_check(opts, err, errlen) == -1) {
		PQconninfoFree(opts);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "password") == 0)
			pw = strdup(o->val);
		else
			sb_add_opt(&b, o->keyword, o->val);
	}
	sb_add(&b, "", 0);
	if (b.oom || (opt_val(opts, "password") != NULL && pw == NULL)) {
		snprintf(err, errlen, "out of memory");
		sb_wipe(&b);
		free(pw);
		PQconninfoFree(opts);
		return -1;
	}
	/* the parsed options hold the password too */
	for (o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && strcmp(o->keyword, "password") == 0)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
	*public_r = b.s;
	*password_r = pw;
	return 0;
}

char *
pgsrc_conninfo_join(const char *public_ci, const char *password)
{
	struct sb b = { 0 };

	sb_add(&b, public_ci, strlen(public_ci));
	if (password != NULL)
		sb_add_opt(&b, "password", password);
	if (b.oom) {
		sb_wipe(&b);
		return NULL;
	}
	return b.s;
}
