/*
 * contacts-dump - print what the contact import readers make of a file,
 * one JSON object per line, for tests/integration/test_contact_files.py.
 *
 * Usage: contacts-dump [-c CHUNK] csv|tsv|auto|vcard FILE
 *
 *   csv, tsv, auto: the file is read with csvin (delimiter ',', TAB, or
 *   detected).  Before the first record comes
 *     {"header":[...],"map":{"email":i,"first_name":i,"last_name":i,
 *      "full_name":i},"guessed":true|false}
 *   (map members are null when csvin_map_guess found no such column),
 *   then per record {"line":N,"fields":[...]}, or for a record csvin
 *   skipped {"line":N,"skipped":"reason"}; at the end
 *     {"end":true,"delim":",","error":null|"..."}.
 *   vcard: per card {"line":N,"version":...,"fn":...,"given":...,
 *   "family":...,"org":...,"emails":["a@b",...],"email_info":[{"types":
 *   "...","pref":n},...]} or {"line":N,"error":"..."}; at the end
 *     {"end":true,"cards":n}.
 *
 * The file is fed in chunks of CHUNK bytes (default 4096), so running it
 * with -c 1 checks that the readers do not depend on where input splits.
 * Exit status: 0, 1 when finishing the input reported an error (the
 * output is complete nonetheless), 2 on bad usage or I/O errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "contacts/csvin.h"
#include "contacts/vcard.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: contacts-dump [-c CHUNK] csv|tsv|auto|vcard FILE\n");
	exit(2);
}

/* emit - print o as one line and release it */
static void
emit(json_t *o)
{
	if (o == NULL) {
		fprintf(stderr, "contacts-dump: out of memory\n");
		exit(2);
	}
	if (json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0) {
		fprintf(stderr, "contacts-dump: cannot write JSON\n");
		exit(2);
	}
	putchar('\n');
	json_decref(o);
}

/* str - a JSON string of s (UTF-8, may hold NUL bytes), or null */
static json_t *
str(const char *s, size_t len)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_stringn(s, len);
	if (j == NULL) {
		fprintf(stderr, "contacts-dump: not UTF-8: \"%.*s\"\n",
		    (int)len, s);
		exit(2);
	}
	return j;
}

static json_t *
cstr(const char *s)
{
	return str(s, s ? strlen(s) : 0);
}

static json_t *
col(long i)
{
	return i >= 0 ? json_integer(i) : json_null();
}

static int
csv_row(void *arg, const struct csvin_row *row)
{
	json_t *fields, *o;
	size_t i;

	(void)arg;
	if (row->flags & CSVIN_ROW_SKIPPED) {
		emit(json_pack("{s:I,s:s}", "line", (json_int_t)row->line,
		    "skipped", row->reason ? row->reason : "(no reason)"));
		return 0;
	}
	fields = json_array();
	if (fields == NULL)
		emit(NULL);
	for (i = 0; i < row->nfields; i++)
		json_array_append_new(
		    fields, str(row->fields[i], row->lens[i]));
	if (row->flags & CSVIN_ROW_HEADER) {
		struct csvin_map m;
		int rc = csvin_map_guess(row->fields, row->nfields, &m);

		o = json_pack("{s:O,s:{s:o,s:o,s:o,s:o},s:b}", "header", fields,
		    "map", "email", col(m.email), "first_name",
		    col(m.first_name), "last_name", col(m.last_name),
		    "full_name", col(m.full_name), "guessed", rc == 0);
		emit(o);
	}
	emit(json_pack(
	    "{s:I,s:o}", "line", (json_int_t)row->line, "fields", fields));
	return 0;
}

static void
vcard_card(void *arg, const struct vcard *c, const char *error)
{
	json_t *emails, *info;
	size_t i;

	(void)arg;
	if (error != NULL) {
		emit(json_pack(
		    "{s:I,s:s}", "line", (json_int_t)c->line, "error", error));
		return;
	}
	emails = json_array();
	info = json_array();
	if (emails == NULL || info == NULL)
		emit(NULL);
	for (i = 0; i < c->nemails; i++) {
		json_array_append_new(emails, cstr(c->emails[i].value));
		json_array_append_new(info,
		    json_pack("{s:o,s:I}", "types", cstr(c->emails[i].types),
			"pref", (json_int_t)c->emails[i].pref));
	}
	emit(json_pack("{s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "line",
	    (json_int_t)c->line, "version", cstr(c->version), "fn", cstr(c->fn),
	    "given", cstr(c->given), "family", cstr(c->family), "org",
	    cstr(c->org), "emails", emails, "email_info", info));
}

int
main(int argc, char **argv)
{
	const char *mode, *path;
	size_t chunk = 4096, n;
	char err[256] = "", *buf;
	FILE *f;
	int status = 0;

	if (argc == 5 && strcmp(argv[1], "-c") == 0) {
		char *end;

		chunk = strtoul(argv[2], &end, 10);
		if (*end != '\0' || chunk == 0)
			usage();
		argv += 2;
		argc -= 2;
	}
	if (argc != 3)
		usage();
	mode = argv[1];
	path = argv[2];
	buf = malloc(chunk);
	f = fopen(path, "rb");
	if (buf == NULL || f == NULL) {
		fprintf(
		    stderr, "contacts-dump: %s: %s\n", path, strerror(errno));
		return 2;
	}

	if (strcmp(mode, "vcard") == 0) {
		struct vcard_reader *r = vcard_new(NULL, vcard_card, NULL);
		long cards;

		while ((n = fread(buf, 1, chunk, f)) > 0)
			if (vcard_feed(r, buf, n, err, sizeof(err)) != 0)
				break;
		if (err[0] == '\0') {
			cards = vcard_finish(r, err, sizeof(err));
			emit(json_pack(
			    "{s:b,s:I}", "end", 1, "cards", (json_int_t)cards));
		}
		if (err[0] != '\0') {
			fprintf(stderr, "contacts-dump: %s: %s\n", path, err);
			status = 1;
		}
		vcard_free(&r);
	} else {
		int delim, rc = 0;
		char d[2] = "";
		struct csvin *r;

		if (strcmp(mode, "csv") == 0)
			delim = ',';
		else if (strcmp(mode, "tsv") == 0)
			delim = '\t';
		else if (strcmp(mode, "auto") == 0)
			delim = 0;
		else
			usage();
		r = csvin_new(NULL, delim, csv_row, NULL);
		if (r == NULL) {
			fprintf(stderr, "contacts-dump: out of memory\n");
			return 2;
		}
		while (rc == 0 && (n = fread(buf, 1, chunk, f)) > 0)
			rc = csvin_feed(r, buf, n, err, sizeof(err));
		if (rc == 0)
			rc = csvin_finish(r, err, sizeof(err));
		d[0] = (char)csvin_delim(r);
		emit(json_pack("{s:b,s:s,s:o}", "end", 1, "delim", d, "error",
		    rc != 0 ? cstr(err) : json_null()));
		if (rc != 0)
			status = 1;
		csvin_free(&r);
	}
	if (ferror(f)) {
		fprintf(stderr, "contacts-dump: %s: read error\n", path);
		status = 2;
	}
	fclose(f);
	free(buf);
	return status;
}
