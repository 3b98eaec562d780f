/*
 * log.c - key=value event lines (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

static enum log_level log_min = LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error",
	"fatal" };

void
log_init(enum log_level level, int fd)
{
	log_min = level;
	log_fd = fd;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_ERROR; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

void
log_write(enum log_level level, const char *component, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	va_list ap;
	int r;

	if (level < log_min)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s ",
	    (int)(tv.tv_usec / 1000), level_names[level], component);
	n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines from threads never interleave. */
	if (write(log_fd, line, n) < 0) {
		/* Nowhere left to report it. */
	}
}

const char *
log_quote(const char *s, char *out, size_t outlen)
{
	size_t i = 0;

	if (outlen == 0)
		return out;
	for (; s && *s && i + 1 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		out[i++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
		    ? '?'
		    : (char)c;
	}
	out[i] = '\0';
	return out;
}
