/*
 * config.c - typed configuration table (see config.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/util.h"

#define FIELD(settings, def, type)                                             \
	((type *)((char *)(settings) + (def)->offset))

static const struct config_def *
config_find(const struct config_def *defs, size_t ndefs, const char *name)
{
	for (size_t i = 0; i < ndefs; i++)
		if (strcmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

/* enum_index - position of value in "a|b|c", or -1 */
static int
enum_index(const char *choices, const char *value)
{
	size_t vlen = strlen(value);
	int i = 0;

	for (const char *p = choices; *p; i++) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);

		if (n == vlen && strncmp(p, value, n) == 0)
			return i;
		if (bar == NULL)
			break;
		p = bar + 1;
	}
	return -1;
}

static int
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < NELEM(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static bool
out_of_bounds(const struct config_def *d, int64_t v)
{
	if (d->min == 0 && d->max == 0)
		return false;
	return v < d->min || v > d->max;
}

int
config_set(const struct config_def *defs, size_t ndefs, void *settings,
    const char *name, const char *value, const char *where, char *err,
    size_t errlen)
{
	const struct config_def *d = config_find(defs, ndefs, name);
	const char *w = where ? where : "";
	int64_t iv;
	uint64_t uv;
	bool bv;
	int ev;

	if (d == NULL) {
		snprintf(err, errlen, "%sunknown setting '%s'", w, name);
		return -1;
	}
	switch (d->type) {
	case CONFIG_STRING:
		free(*FIELD(settings, d, char *));
		*FIELD(settings, d, char *) = xstrdup(value);
		return 0;
	case CONFIG_INT:
		if (parse_int(value, &iv) < 0) {
			snprintf(err, errlen,
			    "%s%s: '%s' is not a whole number", w, name, value);
			return -1;
		}
		if (out_of_bounds(d, iv))
			goto bounds;
		*FIELD(settings, d, int64_t) = iv;
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(value, &bv) < 0) {
			snprintf(err, errlen, "%s%s: '%s' is not yes or no", w,
			    name, value);
			return -1;
		}
		*FIELD(settings, d, bool) = bv;
		return 0;
	case CONFIG_SIZE:
	case CONFIG_DURATION:
		if ((d->type == CONFIG_SIZE
			    ? parse_size(value, &uv)
			    : parse_duration_ms(value, &uv)) < 0) {
			snprintf(err, errlen, "%s%s: '%s' is not a %s", w, name,
			    value,
			    d->type == CONFIG_SIZE
				? "size (e.g. 512, 64k, 50M, 1G)"
				: "duration (e.g. 250ms, 30s, 5m, 2h, 1d)");
			return -1;
		}
		if (uv > INT64_MAX || out_of_bounds(d, (int64_t)uv))
			goto bounds;
		*FIELD(settings, d, uint64_t) = uv;
		return 0;
	case CONFIG_ENUM:
		ev = enum_index(d->choices, value);
		if (ev < 0) {
			snprintf(err, errlen, "%s%s: '%s' is not one of %s", w,
			    name, value, d->choices);
			return -1;
		}
		*FIELD(settings, d, int) = ev;
		return 0;
	}
	snprintf(err, errlen, "%s%s: bad type", w, name);
	return -1;
bounds:
	if (d->type == CONFIG_DURATION)
		snprintf(err, errlen,
		    "%s%s: '%s' is out of range (%" PRId64 "ms to %" PRId64
		    "ms)",
		    w, name, value, d->min, d->max);
	else
		snprintf(err, errlen,
		    "%s%s: '%s' is out of range (%" PRId64 " to %" PRId64 ")",
		    w, name, value, d->min, d->max);
	return -1;
}

void
config_defaults(const struct config_def *defs, size_t ndefs, void *settings)
{
	char err[256];

	for (size_t i = 0; i < ndefs; i++)
		if (config_set(defs, ndefs, settings, defs[i].name, defs[i].def,
			"default: ", err, sizeof(err)) < 0)
			fatal("%s", err);
}

int
config_load_file(const struct config_def *defs, size_t ndefs, void *settings,
    const char *path, char *err, size_t errlen)
{
	char line[4096], section[128] = "", name[256], where[512];
	FILE *f = fopen(path, "r");
	int lineno = 0;

	if (f == NULL)
		return 1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *key, *val;

		lineno++;
		snprintf(where, sizeof(where), "%s:%d: ", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%sline longer than %zu bytes",
			    where, sizeof(line) - 2);
			goto fail;
		}
		if ((s = strchr(line, '#')) != NULL)
			*s = '\0';
		s = str_trim(line);
		if (*s == '\0')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');

			if (close == NULL || close[1] != '\0' ||
			    close - s - 1 >= (long)sizeof(section) ||
			    close == s + 1) {
				snprintf(err, errlen,
				    "%sbad section header '%s'", where, s);
				goto fail;
			}
			*close = '\0';
			snprintf(
			    section, sizeof(section), "%s", str_trim(s + 1));
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errlen,
			    "%sexpected 'name = value', got '%s'", where, s);
			goto fail;
		}
		*eq = '\0';
		key = str_trim(s);
		val = str_trim(eq + 1);
		if (*section && strchr(key, '.') == NULL)
			snprintf(name, sizeof(name), "%s.%s", section, key);
		else
			snprintf(name, sizeof(name), "%s", key);
		if (config_set(defs, ndefs, settings, name, val, where, err,
			errlen) < 0)
			goto fail;
	}
	fclose(f);
	return 0;
fail:
	fclose(f);
	return -1;
}

void
config_dump(const struct config_def *defs, size_t ndefs, const void *settings,
    FILE *out)
{
	for (size_t i = 0; i < ndefs; i++) {
		const struct config_def *d = &defs[i];
		const char *choices = d->choices;
		char val[512];
		uint64_t uv;
		int ev;

		switch (d->type) {
		case CONFIG_STRING:
			snprintf(val, sizeof(val), "%s",
			    *FIELD(settings, d, char *const));
			break;
		case CONFIG_INT:
			snprintf(val, sizeof(val), "%" PRId64,
			    *FIELD(settings, d, const int64_t));
			break;
		case CONFIG_BOOL:
			snprintf(val, sizeof(val), "%s",
			    *FIELD(settings, d, const bool) ? "yes" : "no");
			break;
		case CONFIG_SIZE:
			snprintf(val, sizeof(val), "%" PRIu64,
			    *FIELD(settings, d, const uint64_t));
			break;
		case CONFIG_DURATION:
			uv = *FIELD(settings, d, const uint64_t);
			if (uv % 1000 == 0)
				snprintf(val, sizeof(val), "%" PRIu64 "s",
				    uv / 1000);
			else
				snprintf(val, sizeof(val), "%" PRIu64 "ms", uv);
			break;
		case CONFIG_ENUM:
			ev = *FIELD(settings, d, const int);
			for (int k = 0; k < ev && choices; k++) {
				choices = strchr(choices, '|');
				if (choices)
					choices++;
			}
			snprintf(val, sizeof(val), "%.*s",
			    choices ? (int)strcspn(choices, "|") : 0,
			    choices ? choices : "");
			break;
		}
		fprintf(out, "%s = %s\n    # %s\n", d->name, val, d->help);
	}
}

void
config_free(const struct config_def *defs, size_t ndefs, void *settings)
{
	for (size_t i = 0; i < ndefs; i++) {
		if (defs[i].type == CONFIG_STRING) {
			free(*FIELD(settings, &defs[i], char *));
			*FIELD(settings, &defs[i], char *) = NULL;
		}
	}
}
