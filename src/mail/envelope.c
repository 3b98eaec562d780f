/*
 * envelope.c - message envelope and its spool text form.
 *
 * The text form is one field a line, "name value", values percent-encoded
 * where they hold bytes that would break the format (control bytes,
 * space, '%').  Recipients are "rcpt ADDR NOTIFY ORCPT" with "-" for no
 * ORCPT.  Unknown names are an error: the spool is ours, so anything we
 * do not recognise is damage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "mail/envelope.h"

void
envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
}

void
envelope_clear(struct envelope *e)
{
	free(e->source);
	free(e->client_ip);
	free(e->helo);
	free(e->auth_user);
	free(e->sender);
	free(e->envid);
	for (size_t i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
	}
	free(e->rcpts);
	envelope_init(e);
}

void
envelope_set(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

void
envelope_add_rcpt(
    struct envelope *e, const char *addr, unsigned notify, const char *orcpt)
{
	struct envelope_rcpt *r;

	if (e->nrcpts == e->rcpts_cap) {
		e->rcpts_cap = e->rcpts_cap ? e->rcpts_cap * 2 : 4;
		e->rcpts = xrealloc(e->rcpts, e->rcpts_cap * sizeof(*e->rcpts));
	}
	r = &e->rcpts[e->nrcpts++];
	r->addr = xstrdup(addr);
	r->notify = notify;
	r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
}

/* put_value - append v percent-encoded; NULL becomes "-" */
static void
put_value(struct buf *out, const char *v)
{
	if (v == NULL) {
		buf_puts(out, "-");
		return;
	}
	if (*v == '\0' || strcmp(v, "-") == 0) {
		/* "" and a literal "-" must not read back as NULL. */
		buf_puts(out, *v ? "%2D" : "%");
		return;
	}
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%')
			buf_printf(out, "%%%02X", *p);
		else
			buf_append(out, p, 1);
	}
}

static void
put_field(struct buf *out, const char *name, const char *v)
{
	buf_puts(out, name);
	buf_puts(out, " ");
	put_value(out, v);
	buf_puts(out, "\n");
}

void
envelope_serialize(const struct envelope *e, struct buf *out)
{
	buf_printf(out, "id %s\n", e->id);
	buf_printf(out, "account %" PRId64 "\n", e->account_id);
	buf_printf(out, "credential %" PRId64 "\n", e->credential_id);
	put_field(out, "source", e->source);
	put_field(out, "client", e->client_ip);
	put_field(out, "helo", e->helo);
	put_field(out, "auth", e->auth_user);
	put_field(out, "sender", e->sender);
	buf_printf(out, "body %d\n", e->body);
	buf_printf(out, "smtputf8 %d\n", e->smtputf8 ? 1 : 0);
	buf_printf(out, "ret %d\n", e->ret);
	put_field(out, "envid", e->envid);
	buf_printf(out, "received %" PRId64 "\n", e->received_at);
	for (size_t i = 0; i < e->nrcpts; i++) {
		buf_puts(out, "rcpt ");
		put_value(out, e->rcpts[i].addr);
		buf_printf(out, " %u ", e->rcpts[i].notify);
		put_value(out, e->rcpts[i].orcpt);
		buf_puts(out, "\n");
	}
}

/* get_value - decode one percent-encoded token of n bytes; NULL for "-" */
static int
get_value(const char *s, size_t n, char **out)
{
	char *d;
	size_t j = 0;

	if (n == 1 && s[0] == '-') {
		*out = NULL;
		return 0;
	}
	d = xmalloc(n + 1);
	if (n == 1 && s[0] == '%') {
		/* "%" alone is the empty string. */
		d[0] = '\0';
		*out = d;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			d[j++] = s[i];
			continue;
		}
		if (i + 2 >= n || hex_digit((unsigned char)s[i + 1]) < 0 ||
		    hex_digit((unsigned char)s[i + 2]) < 0) {
			free(d);
			return -1;
		}
		d[j++] = (char)(hex_digit((unsigned char)s[i + 1]) * 16 +
		    hex_digit((unsigned char)s[i + 2]));
		i += 2;
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

static int
get_int(const char *s, size_t n, int64_t *out)
{
	char tmp[32];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return parse_int(tmp, out);
}

/* parse_rcpt - "ADDR NOTIFY ORCPT" */
static int
parse_rcpt(const char *v, size_t n, struct envelope *e)
{
	const char *sp1 = memchr(v, ' ', n), *sp2;
	char *addr = NULL, *orcpt = NULL;
	int64_t notify;

	if (sp1 == NULL)
		return -1;
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - v));
	if (sp2 == NULL ||
	    get_int(sp1 + 1, (size_t)(sp2 - sp1 - 1), &notify) < 0)
		return -1;
	if (get_value(v, (size_t)(sp1 - v), &addr) < 0 || addr == NULL ||
	    get_value(sp2 + 1, n - (size_t)(sp2 + 1 - v), &orcpt) < 0) {
		free(addr);
		return -1;
	}
	envelope_add_rcpt(e, addr, (unsigned)notify, orcpt);
	free(addr);
	free(orcpt);
	return 0;
}

int
envelope_parse(
    const char *text, size_t len, struct envelope *e, const char **error_r)
{
	static __thread char err[160];
	const char *p = text, *end = text + len;
	int lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line = p, *sp, *v;
		size_t klen, vlen;
		int64_t iv = 0;
		char **sfield = NULL;
		int r = 0;

		lineno++;
		if (nl == NULL)
			nl = end;
		p = nl + 1;
		if (nl == line)
			continue;
		sp = memchr(line, ' ', (size_t)(nl - line));
		if (sp == NULL)
			goto bad;
		klen = (size_t)(sp - line);
		v = sp + 1;
		vlen = (size_t)(nl - v);
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(line, k, klen) == 0)
		if (KEY("id")) {
			if (vlen != QUEUE_ID_LEN)
				goto bad;
			memcpy(e->id, v, vlen);
			e->id[vlen] = '\0';
		} else if (KEY("account")) {
			r = get_int(v, vlen, &e->account_id);
		} else if (KEY("credential")) {
			r = get_int(v, vlen, &e->credential_id);
		} else if (KEY("source")) {
			sfield = &e->source;
		} else if (KEY("client")) {
			sfield = &e->client_ip;
		} else if (KEY("helo")) {
			sfield = &e->helo;
		} else if (KEY("auth")) {
			sfield = &e->auth_user;
		} else if (KEY("sender")) {
			sfield = &e->sender;
		} else if (KEY("envid")) {
			sfield = &e->envid;
		} else if (KEY("body")) {
			r = get_int(v, vlen, &iv);
			e->body = (int)iv;
		} else if (KEY("smtputf8")) {
			r = get_int(v, vlen, &iv);
			e->smtputf8 = iv != 0;
		} else if (KEY("ret")) {
			r = get_int(v, vlen, &iv);
			e->ret = (int)iv;
		} else if (KEY("received")) {
			r = get_int(v, vlen, &e->received_at);
		} else if (KEY("rcpt")) {
			r = parse_rcpt(v, vlen, e);
		} else {
			goto bad;
		}
#undef KEY
		if (sfield != NULL) {
			free(*sfield);
			*sfield = NULL;
			r = get_value(v, vlen, sfield);
		}
		if (r < 0)
			goto bad;
	}
	return 0;
bad:
	snprintf(err, sizeof(err), "envelope line %d is malformed", lineno);
	*error_r = err;
	return -1;
}
