/*
 * config - a typed configuration table.
 *
 * The program describes every setting once, in a const array of
 * config_def: its dotted name ("smtpd.max_recipients"), its type, where
 * the parsed value lives (an offset into the program's settings struct),
 * its default, its bounds and a line of help.  This module parses values
 * from the defaults, from a file and from "--set name=value", checks
 * them against the bounds and prints the effective table.  It knows
 * nothing of what the settings mean.
 *
 * The file format is "name = value" lines; "[section]" lines make
 * following names relative ("[smtpd]" then "max_recipients = 10");
 * '#' starts a comment; blank lines are ignored.
 */
#ifndef HERALD_LIB_CONFIG_H
#define HERALD_LIB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_type {
	CONFIG_STRING,	 /* char *, owned by the settings struct */
	CONFIG_INT,	 /* int64_t, bounded by min/max */
	CONFIG_BOOL,	 /* bool: yes/no, true/false, on/off, 1/0 */
	CONFIG_SIZE,	 /* uint64_t bytes: 10k, 50M, 1G */
	CONFIG_DURATION, /* uint64_t milliseconds: 250ms, 30s, 5m, 2h, 1d */
	CONFIG_ENUM,	 /* int index into choices ("a|b|c") */
};

struct config_def {
	const char *name;
	enum config_type type;
	size_t offset;
	const char *def;
	int64_t min,
	    max; /* INT, SIZE (bytes), DURATION (ms); 0,0 = unbounded */
	const char *choices; /* ENUM: "a|b|c" */
	const char *help;
};

/*
 * config_defaults - set every field of settings to its default.  The
 * defaults are part of the program, so a bad one is a bug: fatal.
 */
void config_defaults(
    const struct config_def *defs, size_t ndefs, void *settings);

/*
 * config_set - parse value for the setting name into settings.  Returns
 * 0, or -1 with a message in err (size errlen) that names the setting
 * and says what is wrong; where is prefixed to it ("herald.conf:12: ").
 */
int config_set(const struct config_def *defs, size_t ndefs, void *settings,
    const char *name, const char *value, const char *where, char *err,
    size_t errlen);

/*
 * config_load_file - read path and apply its settings.  Returns 0, 1 if
 * the file does not exist, or -1 with err naming the file, the line and
 * the key.
 */
int config_load_file(const struct config_def *defs, size_t ndefs,
    void *settings, const char *path, char *err, size_t errlen);

/* config_dump - print "name = value  # help" for every setting */
void config_dump(const struct config_def *defs, size_t ndefs,
    const void *settings, FILE *out);

/* config_free - free the strings a settings struct owns */
void config_free(const struct config_def *defs, size_t ndefs, void *settings);

#endif
