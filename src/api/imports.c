/*
 * imports.c - /api/v1/sources and /api/v1/imports: an account's
 * PostgreSQL sources and its import jobs.
 *
 *   GET    /api/v1/sources              every source, by name
 *   POST   /api/v1/sources              {name, conninfo}
 *   GET    /api/v1/sources/{id}         one source
 *   DELETE /api/v1/sources/{id}         the source
 *   POST   /api/v1/imports              an upload (multipart or raw body)
 *                                       or {source_id, query} -> 202
 *   GET    /api/v1/imports              the jobs, newest first
 *   GET    /api/v1/imports/{id}         one job
 *   GET    /api/v1/imports/{id}/errors  its kept bad rows
 *   POST   /api/v1/imports/{id}/cancel  stop it
 *
 * A source's password is split out of the connection string, sealed
 * with a key derived from the node's master key (secrets/master.key)
 * and stored as hex; it
 * is never returned.  An upload is written whole to
 * <data>/imports/<random>.<ext> (0600, synced) before its job is
 * recorded, so the import thread, which deletes the file when the job
 * ends, always finds a complete file, also after a restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "api/api.h"
#include "api/routes.h"
#include "contacts/import.h"
#include "contacts/pgsrc.h"
#include "http/multipart.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/secret.h"
#include "lib/util.h"

#define UPLOAD_MAX_PARTS 16

/* ---- database sources ---- */

static json_t *
source_json(const struct store_source *src)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:o}", "id", (json_int_t)src->id,
	    "name", src->name, "conninfo", src->conninfo, "has_password",
	    src->password_box[0] != '\0', "created_at",
	    api_time(src->created_at));
}

static int
source_cb(void *arg, const struct store_source *src)
{
	json_array_append_new(arg, source_json(src));
	return 0;
}

static void
sources_get(struct api_ctx *c, struct http_req *r)
{
	json_t *data = json_array();
	const char *error;
	int ret = store_source_list(c->s, c->account, source_cb, data, &error);

	api_reply_data(r, ret, error, data);
}

/*
 * password_seal - password sealed under the node's key, as hex
 * (malloc'd); the key file is made on first use.  NULL with err.
 */
static char *
password_seal(
    const char *data_dir, const char *password, char *err, size_t errlen)
{
	unsigned char key[SECRET_KEY_BYTES];
	char *hex;

	if (secret_node_key(data_dir, "dbsource", true, key, err, errlen) < 0)
		return NULL;
	hex = secret_seal_hex(key, password);
	sodium_memzero(key, sizeof(key));
	if (hex == NULL)
		snprintf(err, errlen, "cannot seal the password");
	return hex;
}

static void
reply_source(struct api_ctx *c, struct http_req *r, int64_t id, int status)
{
	struct store_source src;
	const char *error;
	int ret = store_source_get(c->s, c->account, id, &src, &error);

	if (!api_reply_store(r, ret, error))
		http_reply_json(r, status, source_json(&src));
}

static void
sources_post(struct api_ctx *c, struct http_req *r)
{
	json_t *body = http_body_json(r);
	const char *name, *conninfo, *error;
	char *public = NULL, *password = NULL, *box = NULL, err[512];
	bool bad = false;
	int64_t id;
	int ret;

	if (body == NULL)
		return;
	name = api_str(r, body, "name", true, &bad);
	conninfo = api_str(r, body, "conninfo", true, &bad);
	if (bad)
		goto out;
	if (pgsrc_conninfo_split(
		conninfo, &public, &password, err, sizeof(err)) < 0) {
		http_reply_error(r, 400, "invalid", "conninfo", "%s", err);
		goto out;
	}
	if (password != NULL &&
	    (box = password_seal(c->data_dir, password, err, sizeof(err))) ==
		NULL) {
		log_write(
		    LOG_ERROR, "api", "event=secret-error error=\"%s\"", err);
		http_reply_error(r, 500, "internal", NULL,
		    "the password cannot be sealed; the error is in the "
		    "server's log");
		goto out;
	}
	ret = store_source_create(c->s, c->account, name, public,
	    box != NULL ? box : "", &id, &error);
	if (!api_reply_store(r, ret, error))
		reply_source(c, r, id, 201);
out:
	if (password != NULL) {
		sodium_memzero(password, strlen(password));
		free(password);
	}
	free(public);
	free(box);
	json_decref(body);
}

static void
source_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");

	if (id != 0)
		reply_source(c, r, id, 200);
}

static void
source_delete(struct api_ctx *c, struct http_req *r)
{
	api_delete_id(c, r, store_source_delete);
}

/* ---- import jobs ---- */

static json_t *
import_json(const struct store_import_job *j)
{
	int64_t end =
	    j->finished_at != 0 ? j->finished_at : (int64_t)time(NULL);
	double rate = 0;

	/* rows per second over the run so far (or the whole run) */
	if (j->started_at != 0) {
		int64_t secs = end - j->started_at;

		rate = (double)j->rows_done / (double)(secs > 0 ? secs : 1);
	}
	return json_pack("{s:I, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:f, s:o, s:o, s:o, s:o}",
	    "id", (json_int_t)j->id, "state", j->state, "format", j->format,
	    "list_id", j->list_id != 0 ? json_integer(j->list_id) : json_null(),
	    "rows_done", (json_int_t)j->rows_done, "created",
	    (json_int_t)j->created, "updated", (json_int_t)j->updated,
	    "skipped", (json_int_t)j->skipped, "errors", (json_int_t)j->errors,
	    "bytes_done", (json_int_t)j->bytes_done, "bytes_total",
	    (json_int_t)j->bytes_total, "rows_per_second", rate, "error",
	    j->error[0] != '\0' ? json_string(j->error) : json_null(),
	    "created_at", api_time(j->created_at), "started_at",
	    api_time(j->started_at), "finished_at", api_time(j->finished_at));
}

static void
reply_import(struct api_ctx *c, struct http_req *r, int64_t id, int status)
{
	struct store_import_job job;
	const char *error;
	int ret = store_import_get(c->s, c->account, id, &job, &error);

	if (!api_reply_store(r, ret, error))
		http_reply_json(r, status, import_json(&job));
}

/* What a POST /imports asks for, whichever way it came. */
struct upload {
	const unsigned char *data; /* the file (into the body), or NULL */
	size_t len;
	char *format;	/* named by a field or the query, or NULL */
	char *ctype;	/* the file part's or the body's Content-Type */
	char *filename; /* the file part's name, or NULL */
	char *list;	/* the list id as text, or NULL */
	char *options;	/* JSON text, or NULL */
	char *mode;	/* or NULL */
	bool twice;	/* a part given twice */
};

static void
upload_free(struct upload *u)
{
	free(u->format);
	free(u->ctype);
	free(u->filename);
	free(u->list);
	free(u->options);
	free(u->mode);
}

static void
set_field(struct upload *u, char **dst, const struct multipart_part *p)
{
	if (*dst != NULL)
		u->twice = true;
	free(*dst);
	*dst = xstrndup((const char *)p->data, p->len);
}

static int
part_cb(void *arg, const struct multipart_part *p)
{
	struct upload *u = arg;

	if (strcmp(p->name, "file") == 0) {
		if (u->data != NULL)
			u->twice = true;
		u->data = p->data;
		u->len = p->len;
		free(u->ctype);
		free(u->filename);
		u->ctype = p->content_type ? xstrdup(p->content_type) : NULL;
		u->filename = p->filename ? xstrdup(p->filename) : NULL;
	} else if (strcmp(p->name, "format") == 0)
		set_field(u, &u->format, p);
	else if (strcmp(p->name, "list") == 0)
		set_field(u, &u->list, p);
	else if (strcmp(p->name, "options") == 0)
		set_field(u, &u->options, p);
	else if (strcmp(p->name, "mode") == 0)
		set_field(u, &u->mode, p);
	return 0;
}

/* format_of_type - the import format of a media type, or NULL */
static const char *
format_of_type(const char *ctype)
{
	static const char *const map[][2] = {
		{ "text/csv", "csv" },
		{ "text/tab-separated-values", "tsv" },
		{ "text/vcard", "vcard" },
		{ "text/x-vcard", "vcard" },
		{ "text/directory", "vcard" },
		{ "application/x-ndjson", "jsonl" },
		{ "application/jsonl", "jsonl" },
		{ "application/x-jsonlines", "jsonl" },
	};
	size_t n;

	if (ctype == NULL)
		return NULL;
	n = strcspn(ctype, "; \t");
	for (size_t i = 0; i < NELEM(map); i++)
		if (strlen(map[i][0]) == n &&
		    strncasecmp(ctype, map[i][0], n) == 0)
			return map[i][1];
	return NULL;
}

/* format_of_name - the import format of a file name's extension, or NULL */
static const char *
format_of_name(const char *name)
{
	static const char *const map[][2] = {
		{ ".csv", "csv" },
		{ ".tsv", "tsv" },
		{ ".tab", "tsv" },
		{ ".vcf", "vcard" },
		{ ".vcard", "vcard" },
		{ ".jsonl", "jsonl" },
		{ ".ndjson", "jsonl" },
	};
	const char *dot = name != NULL ? strrchr(name, '.') : NULL;

	if (dot == NULL)
		return NULL;
	for (size_t i = 0; i < NELEM(map); i++)
		if (strcasecmp(dot, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/*
 * upload_read - fill u from a multipart body, or from a raw body and the
 * query.  On failure replies and returns -1.
 */
static int
upload_read(struct http_req *r, const char *ctype, const unsigned char *body,
    size_t len, struct upload *u)
{
	char boundary[MULTIPART_BOUNDARY_MAX + 1], err[256];
	const char *v;

	if (ctype != NULL && str_casestarts(ctype, "multipart/form-data")) {
		if (multipart_boundary(ctype, boundary, sizeof(boundary), err,
			sizeof(err)) < 0 ||
		    multipart_parse(body, len, boundary, UPLOAD_MAX_PARTS,
			part_cb, u, err, sizeof(err)) < 0) {
			http_reply_error(r, 400, "invalid", NULL,
			    "multipart/form-data: %s", err);
			return -1;
		}
		if (u->data == NULL) {
			http_reply_error(r, 400, "invalid", "file",
			    "the file part is missing");
			return -1;
		}
		if (u->twice) {
			http_reply_error(r, 400, "invalid", NULL,
			    "a part of the form is given twice");
			return -1;
		}
		return 0;
	}
	u->data = body;
	u->len = len;
	u->ctype = ctype != NULL ? xstrdup(ctype) : NULL;
	if ((v = http_query(r, "format")) != NULL)
		u->format = xstrdup(v);
	if ((v = http_query(r, "list")) != NULL)
		u->list = xstrdup(v);
	if ((v = http_query(r, "options")) != NULL)
		u->options = xstrdup(v);
	if ((v = http_query(r, "mode")) != NULL)
		u->mode = xstrdup(v);
	return 0;
}

/*
 * upload_format - the format an upload names or implies; NULL after
 * replying 400.
 */
static const char *
upload_format(struct http_req *r, const struct upload *u)
{
	const char *f = u->format;

	if (f == NULL && (f = format_of_type(u->ctype)) == NULL &&
	    (f = format_of_name(u->filename)) == NULL) {
		http_reply_error(r, 400, "invalid", "format",
		    "the format is not known: give format (csv, tsv, vcard, "
		    "jsonl, suppressions) or a Content-Type such as text/csv");
		return NULL;
	}
	if (!import_format_valid(f) || strcmp(f, "postgresql") == 0) {
		http_reply_error(r, 400, "invalid", "format",
		    "unknown format '%.32s': use csv, tsv, vcard, jsonl or "
		    "suppressions",
		    f);
		return NULL;
	}
	return f;
}

/*
 * job_list - the list id named by text (NULL: none) as the account's
 * list, in *id_r; false after replying 404.
 */
static bool
job_list(struct api_ctx *c, struct http_req *r, const char *text, int64_t *id_r)
{
	struct store_list_info li;
	const char *error;
	int64_t id;
	int ret;

	*id_r = 0;
	if (text == NULL || *text == '\0')
		return true;
	if (parse_int(text, &id) < 0 || id <= 0) {
		http_reply_error(r, 404, "not_found", "list",
		    "no such list: '%.40s' is not an id", text);
		return false;
	}
	ret = store_list_get(c->s, c->account, id, &li, &error);
	if (ret == 1) {
		http_reply_error(r, 404, "not_found", "list", "%s", error);
		return false;
	}
	if (api_reply_store(r, ret, error))
		return false;
	*id_r = id;
	return true;
}

/*
 * job_options - the options (JSON text or NULL, with mode merged in) as
 * checked JSON text into job->options; false after replying 400.
 */
static bool
job_options(struct api_ctx *c, struct http_req *r, const char *text,
    const char *mode, struct store_import_job *job)
{
	json_t *o = json_object();
	json_error_t jerr;
	char err[512], *dump;
	bool ok = false;

	if (text != NULL && *text != '\0') {
		json_decref(o);
		o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		if (o == NULL || !json_is_object(o)) {
			http_reply_error(r, 400, "invalid", "options",
			    "options: %s (line %d, column %d)",
			    o == NULL ? jerr.text : "not a JSON object",
			    o == NULL ? jerr.line : 1,
			    o == NULL ? jerr.column : 1);
			json_decref(o);
			return false;
		}
	}
	if (mode != NULL)
		json_object_set_new(o, "mode", json_string(mode));
	dump = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (strlen(dump) > STORE_JOB_OPTIONS_MAX)
		http_reply_error(r, 400, "invalid", "options",
		    "options: over %d bytes", STORE_JOB_OPTIONS_MAX);
	else if (import_options_check(
		     c->s, c->account, job->format, dump, err, sizeof(err)) < 0)
		http_reply_error(r, 400, "invalid", "options", "%s", err);
	else {
		snprintf(job->options, sizeof(job->options), "%s", dump);
		ok = true;
	}
	free(dump);
	return ok;
}

/* imports_dir - <data>/imports as an absolute path (malloc'd), or NULL */
static char *
imports_dir(const char *data_dir)
{
	char real[PATH_MAX];

	if (data_dir[0] == '/')
		return fs_path_join(data_dir, "imports");
	if (realpath(data_dir, real) == NULL)
		return NULL;
	return fs_path_join(real, "imports");
}

/*
 * upload_save - write len bytes to a new file <data>/imports/<random>.ext
 * (0600, synced); its path into out.  0, or -1 with errno's reason
 * logged.
 */
static int
upload_save(const char *data_dir, const char *ext, const void *data, size_t len,
    char *out, size_t outlen)
{
	char name[64], token[25], *dir = imports_dir(data_dir);
	int fd = -1, tries = 0;

	if (dir == NULL)
		goto fail;
	do {
		random_alnum(token, 24);
		snprintf(name, sizeof(name), "%s.%s", token, ext);
		snprintf(out, outlen, "%s/%s", dir, name);
		fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	} while (fd < 0 && errno == EEXIST && ++tries < 5);
	if (fd < 0)
		goto fail;
	if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int saved = errno;

		close(fd);
		unlink(out);
		errno = saved;
		goto fail;
	}
	close(fd);
	fs_fsync_dir(dir);
	free(dir);
	return 0;
fail:
	log_write(LOG_ERROR, "api",
	    "event=upload-error path=\"%s\" error=\"%s\"",
	    dir != NULL ? dir : data_dir, strerror(errno));
	free(dir);
	return -1;
}

/* job_start - record job, wake the import thread, reply 202 */
static void
job_start(struct api_ctx *c, struct http_req *r, struct store_import_job *job)
{
	const char *error;
	int64_t id;

	job->account_id = c->account;
	snprintf(job->runner, sizeof(job->runner), "server");
	if (store_import_create(c->s, job, &id, &error) < 0) {
		if (strcmp(job->format, "postgresql") != 0)
			unlink(job->source);
		api_reply_store(r, -1, error);
		return;
	}
	log_write(LOG_INFO, "api",
	    "event=import-queued job=%" PRId64 " account=%" PRId64
	    " format=%s bytes=%" PRId64,
	    id, c->account, job->format, job->bytes_total);
	api_import_wake(c->api);
	reply_import(c, r, id, 202);
}

static void
imports_post_file(struct api_ctx *c, struct http_req *r, const char *ctype,
    const unsigned char *body, size_t len)
{
	struct upload u = { 0 };
	struct store_import_job *job = xcalloc(1, sizeof(*job));
	const char *format;

	if (upload_read(r, ctype, body, len, &u) < 0 ||
	    (format = upload_format(r, &u)) == NULL)
		goto out;
	snprintf(job->format, sizeof(job->format), "%s", format);
	if (!job_list(c, r, u.list, &job->list_id) ||
	    !job_options(c, r, u.options, u.mode, job))
		goto out;
	if (upload_save(c->data_dir,
		strcmp(format, "suppressions") == 0 ? "csv" : format, u.data,
		u.len, job->source, sizeof(job->source)) < 0) {
		http_reply_error(r, 500, "internal", NULL,
		    "the upload cannot be saved; the error is in the server's "
		    "log");
		goto out;
	}
	job->bytes_total = (int64_t)u.len;
	job_start(c, r, job);
out:
	upload_free(&u);
	free(job);
}

/* json_id - o[key] as a positive id (a number or its text), 0 if absent,
   -1 if not an id */
static int64_t
json_id(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	int64_t id;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? json_integer_value(v) : -1;
	if (json_is_string(v) && parse_int(json_string_value(v), &id) == 0 &&
	    id > 0)
		return id;
	return -1;
}

static void
imports_post_db(struct api_ctx *c, struct http_req *r)
{
	struct store_import_job *job = xcalloc(1, sizeof(*job));
	json_t *body = http_body_json(r), *opts;
	struct store_source src;
	const char *query, *error;
	char *otext = NULL, lbuf[32];
	bool bad = false;
	int64_t sid, lid;
	int ret;

	if (body == NULL)
		goto out;
	query = api_str(r, body, "query", true, &bad);
	if (bad)
		goto out;
	if ((sid = json_id(body, "source_id")) <= 0) {
		http_reply_error(r, sid == 0 ? 400 : 404,
		    sid == 0 ? "invalid" : "not_found", "source_id",
		    sid == 0 ? "source_id is required" : "no such source");
		goto out;
	}
	ret = store_source_get(c->s, c->account, sid, &src, &error);
	if (ret == 1) {
		http_reply_error(r, 404, "not_found", "source_id", "%s", error);
		goto out;
	}
	if (api_reply_store(r, ret, error))
		goto out;
	if (strlen(query) > STORE_JOB_SOURCE_MAX) {
		http_reply_error(r, 400, "invalid", "query",
		    "query: over %d bytes", STORE_JOB_SOURCE_MAX);
		goto out;
	}
	if ((lid = json_id(body, "list")) < 0) {
		http_reply_error(
		    r, 404, "not_found", "list", "no such list: not an id");
		goto out;
	}
	snprintf(lbuf, sizeof(lbuf), "%" PRId64, lid);
	opts = json_object_get(body, "options");
	if (opts != NULL && json_is_object(opts))
		otext = json_dumps(opts, JSON_COMPACT);
	else if (opts != NULL && json_is_string(opts))
		otext = xstrdup(json_string_value(opts));
	else if (opts != NULL && !json_is_null(opts)) {
		http_reply_error(r, 400, "invalid", "options",
		    "options must be a JSON object");
		goto out;
	}
	snprintf(job->format, sizeof(job->format), "postgresql");
	if (!job_list(c, r, lid != 0 ? lbuf : NULL, &job->list_id) ||
	    !job_options(c, r, otext, NULL, job))
		goto out;
	job->source_id = sid;
	snprintf(job->source, sizeof(job->source), "%s", query);
	job_start(c, r, job);
out:
	free(otext);
	json_decref(body);
	free(job);
}

static void
imports_post(struct api_ctx *c, struct http_req *r)
{
	const struct api_config *cfg = api_config_of(c->api);
	const char *ctype = http_header(r, "Content-Type");
	const unsigned char *body;
	size_t len;

	body = http_body(r, &len);
	if (ctype != NULL && str_casestarts(ctype, "application/json")) {
		if (len > cfg->max_body) {
			http_reply_error(r, 413, "too_large", NULL,
			    "request body over %" PRIu64 " bytes",
			    cfg->max_body);
			return;
		}
		imports_post_db(c, r);
		return;
	}
	if (len > cfg->max_upload) {
		http_reply_error(r, 413, "too_large", NULL,
		    "upload over %" PRIu64 " bytes (http.max_upload)",
		    cfg->max_upload);
		return;
	}
	imports_post_file(c, r, ctype, body, len);
}

static int
import_cb(void *arg, const struct store_import_job *job)
{
	json_array_append_new(arg, import_json(job));
	return 0;
}

static void
imports_get(struct api_ctx *c, struct http_req *r)
{
	int64_t limit = api_limit(r, 100, 1000);
	json_t *data;
	const char *error;
	int ret;

	if (limit == 0)
		return;
	data = json_array();
	ret =
	    store_import_list(c->s, c->account, limit, import_cb, data, &error);
	api_reply_data(r, ret, error, data);
}

static void
import_get(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");

	if (id != 0)
		reply_import(c, r, id, 200);
}

static int
error_cb(void *arg, unsigned long line, const char *reason)
{
	json_array_append_new(arg,
	    json_pack(
		"{s:I, s:s}", "line", (json_int_t)line, "reason", reason));
	return 0;
}

static void
import_errors(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id"), limit;
	struct store_import_job job;
	const char *error;
	json_t *data;
	int ret;

	if (id == 0 || (limit = api_limit(r, 100, 1000)) == 0)
		return;
	ret = store_import_get(c->s, c->account, id, &job, &error);
	if (api_reply_store(r, ret, error))
		return;
	data = json_array();
	ret = store_import_errors(
	    c->s, c->account, id, limit, error_cb, data, &error);
	api_reply_data(r, ret, error, data);
}

/*
 * import_cancel - a queued job is cancelled at once (and its upload
 * removed: the import thread will never open it); a running one is
 * marked cancelling and its runner stops after the current batch.
 */
static void
import_cancel(struct api_ctx *c, struct http_req *r)
{
	int64_t id = api_id(r, "id");
	struct store_import_job job;
	const char *error;
	int ret;

	if (id == 0)
		return;
	ret = store_import_get(c->s, c->account, id, &job, &error);
	if (api_reply_store(r, ret, error))
		return;
	ret = store_import_set_state(
	    c->s, c->account, id, "queued", "cancelled", NULL, &error);
	if (ret == 0 && strcmp(job.format, "postgresql") != 0 &&
	    strstr(job.source, "/imports/") != NULL)
		unlink(job.source);
	if (ret == 1)
		ret = store_import_set_state(c->s, c->account, id, "running",
		    "cancelling", NULL, &error);
	if (ret == 1) {
		ret = store_import_get(c->s, c->account, id, &job, &error);
		if (ret == 0 && strcmp(job.state, "cancelling") != 0) {
			http_reply_error(r, 409, "conflict", NULL,
			    "import %" PRId64 " has already ended (%s)", id,
			    job.state);
			return;
		}
	}
	if (!api_reply_store(r, ret, error))
		reply_import(c, r, id, 200);
}

const struct api_route api_imports_routes[] = {
	{ "GET", "/api/v1/sources", API_READ, sources_get, false },
	{ "POST", "/api/v1/sources", API_WRITE, sources_post, false },
	{ "GET", "/api/v1/sources/{id}", API_READ, source_get, false },
	{ "DELETE", "/api/v1/sources/{id}", API_WRITE, source_delete, false },
	{ "POST", "/api/v1/imports", API_WRITE, imports_post, true },
	{ "GET", "/api/v1/imports", API_READ, imports_get, false },
	{ "GET", "/api/v1/imports/{id}", API_READ, import_get, false },
	{ "GET", "/api/v1/imports/{id}/errors", API_READ, import_errors,
	    false },
	{ "POST", "/api/v1/imports/{id}/cancel", API_WRITE, import_cancel,
	    false },
	{ NULL, NULL, 0, NULL, false },
};
