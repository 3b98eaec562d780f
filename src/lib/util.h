/*
 * util - small generic helpers: checked allocation, strings, random ids,
 * time formatting.  Nothing here knows about mail.
 */
#ifndef HERALD_LIB_UTIL_H
#define HERALD_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* xmalloc, xcalloc, xrealloc, xstrdup, xstrndup - allocate or die */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* fatal - log and exit(1); for what a daemon cannot survive */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* hex_digit - the value of a hex digit (either case), or -1 */
int hex_digit(int c);

/* str_lower - lower-case ASCII letters in place; returns s */
char *str_lower(char *s);
/* str_trim - strip leading and trailing white space in place; returns start */
char *str_trim(char *s);
/* str_casestarts - whether s starts with prefix, ASCII case-insensitive */
bool str_casestarts(const char *s, const char *prefix);

/*
 * random_token - fill out with a URL-safe random string of len chars
 * (A-Z a-z 0-9 - _) from libsodium's CSPRNG; out must hold len + 1.
 */
void random_token(char *out, size_t len);

/*
 * random_alnum - like random_token with letters and digits only: for
 * secrets people paste into command lines, where a leading '-' would
 * read as an option.
 */
void random_alnum(char *out, size_t len);

/*
 * queue_id_new - a new queue id: 16 characters, sortable by creation
 * time, unique within a process and, with high probability, across
 * processes.  out must hold QUEUE_ID_LEN + 1.
 */
#define QUEUE_ID_LEN 16
void queue_id_new(char *out);
/* queue_id_valid - whether s has the form of a queue id */
bool queue_id_valid(const char *s);

/* time_rfc5322 - format t as an RFC 5322 date-time into out (>= 40 bytes) */
void time_rfc5322(time_t t, char *out, size_t outlen);
/* time_iso8601 - format t as UTC "YYYY-MM-DDTHH:MM:SSZ" into out (>= 21) */
void time_iso8601(time_t t, char *out, size_t outlen);
/* now_ms - monotonic milliseconds */
uint64_t now_ms(void);

struct sockaddr;
/*
 * sockaddr_text - the address of sa (IPv4 or IPv6) as text into ip
 * ("?" for another family); returns its port.
 */
int sockaddr_text(const struct sockaddr *sa, char *ip, size_t iplen);

/*
 * parse_size - parse "123", "10k", "50M", "1G" (powers of 1024) into
 * *out; returns 0, or -1 on a malformed or overflowing value.
 */
int parse_size(const char *s, uint64_t *out);
/*
 * parse_duration - parse "30", "30s", "5m", "2h", "1d", "250ms" into
 * milliseconds; a bare number means seconds.  Returns 0 or -1.
 */
int parse_duration_ms(const char *s, uint64_t *out);
/* parse_int - parse a decimal int64 with no trailing junk; 0 or -1 */
int parse_int(const char *s, int64_t *out);

/*
 * utf8_seq - length of the well-formed UTF-8 sequence at s (n > 0 bytes
 * available, RFC 3629 table 3-7): 1-4, 0 when invalid, -1 when valid so
 * far but cut short by n (a stream reader waits for more).
 */
int utf8_seq(const unsigned char *s, size_t n);

#endif
