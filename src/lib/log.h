/*
 * log - one line per event, as key=value fields.
 *
 *   2026-11-21T23:40:01.123Z info smtpd sid=3f2a ip=127.0.0.1 event=connect
 *
 * Lines go to one file descriptor (stderr by default) with a single
 * write(2) each, so lines from several threads never interleave.  Callers
 * never log secrets or message bodies.  log_quote() makes a value safe to
 * put inside key="..." (no quotes, no control bytes, bounded length).
 */
#ifndef HERALD_LIB_LOG_H
#define HERALD_LIB_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };

/* log_init - send lines at level and above to fd */
void log_init(enum log_level level, int fd);
/* log_level_parse - "debug", "info", "warn", "error" to a level; -1 if bad */
int log_level_parse(const char *s);
/* log_enabled - whether a line at level would be written */
int log_enabled(enum log_level level);
/* log_write - write one line: time, level, component, then the fields */
void log_write(enum log_level level, const char *component, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/*
 * log_quote - copy s into out (size outlen) with '"', '\\' and control
 * bytes replaced by '?', cut to fit; returns out.
 */
const char *log_quote(const char *s, char *out, size_t outlen);

#endif
