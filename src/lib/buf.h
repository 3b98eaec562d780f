/*
 * buf - a growable byte buffer.
 *
 * A buf owns its storage.  The data is always NUL-terminated past len so
 * that a buf of text can be handed to C string functions.  Growth failure
 * is fatal (out of memory is not a condition a mail daemon can recover
 * from in the middle of a protocol exchange).
 */
#ifndef HERALD_LIB_BUF_H
#define HERALD_LIB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                               \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

/* buf_reserve - make room for at least n more bytes */
void buf_reserve(struct buf *b, size_t n);
/* buf_append - append n bytes */
void buf_append(struct buf *b, const void *p, size_t n);
/* buf_puts - append a C string */
void buf_puts(struct buf *b, const char *s);
/* buf_printf - append formatted text */
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* buf_reset - forget the content, keep the storage */
void buf_reset(struct buf *b);
/* buf_free - release the storage; the buf may be reused after */
void buf_free(struct buf *b);
/* buf_cstr - the content as a C string ("" when empty) */
const char *buf_cstr(const struct buf *b);

#endif
