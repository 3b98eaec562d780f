/*
 * dkim.c - DKIM signing: RSA with libopendkim, Ed25519 here with
 * OpenSSL; keys with OpenSSL, and the key files of the data directory
 * (see dkim.h).
 *
 * Design notes.
 *
 * 1. The header section is split into fields here, once per message
 *    (struct dkim_msg), not by libopendkim: each field is a run of
 *    bytes as it stands in the message, its continuation lines
 *    included, without the CRLF that ends it.  A message is refused
 *    before any key is used when it has no From: field, a line that is
 *    neither a field nor a continuation, a field with white space
 *    before its colon (obsolete syntax that libopendkim canonicalizes
 *    differently from verifiers), too many fields or too large a
 *    header, so that the error names the line.
 * 2. Each key is parsed once per dkim_sign_message() call
 *    (dkim_pkey_read) and its kind checked against the algorithm asked
 *    for: libopendkim does not check it, and an RSA key used for
 *    ed25519-sha256 would give a signature nobody can verify.  For RSA,
 *    libopendkim then loads the PEM text again itself (it takes no
 *    EVP_PKEY); an Ed25519 signature is made with the parsed key.
 * 3. Every signature of a message is computed before any is appended to
 *    the caller's buffer, so a failure leaves it as it was.
 * 4. Key material is wiped (OPENSSL_cleanse) before it is freed.
 * 5. Ed25519 is signed here, not by libopendkim: libopendkim
 *    2.11.0~beta2 (Debian 12) does not free the EVP_PKEY and BIO that
 *    dkim_privkey_load() makes for an Ed25519 key, about 480 bytes per
 *    signature, which on a relay signing every message grows without
 *    bound.  The fix (OpenDKIM pull request #321) is not in Debian 12.
 *    RSA signatures do not leak and stay with libopendkim.
 * 6. The Ed25519 signature (RFC 8463) is what libopendkim would make:
 *    relaxed/relaxed canonicalization (RFC 6376 sections 3.4.2 and
 *    3.4.4), the same signed fields, h= in message order plus the
 *    oversigned names, selected bottom-up when hashed (section 5.4.2),
 *    the DKIM-Signature field itself last with an empty b= and no CRLF
 *    (section 3.7), and the Ed25519 signature over the SHA-256 digest
 *    of all that (RFC 8463 section 3).  The field has libopendkim's tag
 *    order and folding (DKIM_MARGIN columns, a tab counting 8).  A unit
 *    test checks that bh= equals the one libopendkim computes for RSA,
 *    and an independent verifier (python3-dkim) checks the signatures.
 *    One difference: a CR not followed by LF is an ordinary byte here,
 *    as RFC 6376 and verifiers read it; libopendkim's RSA body hash
 *    treats it otherwise, and python3-dkim rejects that signature.
 * 7. A last body line without its CRLF is read as if it had the one
 *    SMTP adds (RFC 5321 section 4.1.1.4), by both signers alike.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <opendkim/dkim.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/util.h"
#include "mail/address.h"
#include "mail/dkim.h"

#define DKIM_SIG_NAME "DKIM-Signature"
#define DKIM_SIG_PREFIX DKIM_SIG_NAME ": "
#define DKIM_PEM_MAX (64 * 1024) /* a key file larger than this is not one */
#define DKIM_RSA_MIN_BITS 1024	 /* RFC 8301 section 3.2 */
#define DKIM_RSA_MAX_BITS 4096
#define DKIM_MARGIN 75	       /* columns of a folded field: libopendkim's */
#define DKIM_ED25519_SIGLEN 64 /* bytes of an Ed25519 signature */

/* struct dkim_pick and dkim_keys_load index arrays by algorithm. */
_Static_assert(DKIM_RSA_SHA256 == 0 && DKIM_ED25519_SHA256 == 1,
    "enum dkim_algo indexes arrays");

/*
 * RFC 6376 section 5.4.1, with RFC 8058's List-Unsubscribe-Post and
 * Feedback-ID; each is signed when present.
 */
static const char *dkim_sign_fields[] = { "from", "reply-to", "subject", "date",
	"to", "cc", "resent-date", "resent-from", "resent-sender", "resent-to",
	"resent-cc", "resent-message-id", "in-reply-to", "references",
	"list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post",
	"list-subscribe", "list-post", "list-owner", "list-archive",
	"message-id", "mime-version", "content-type",
	"content-transfer-encoding", "content-id", "content-description",
	"sender", "feedback-id", NULL };

/* Signed once more than present: no second From: can be added. */
static const char *dkim_oversign_fields[] = { "from", NULL };

/*
 * Keys already parsed and checked by this signer, by their exact PEM
 * text and algorithm, so that a thread signing many messages with one
 * domain's keys decodes each key once (a PEM decode costs more than an
 * RSA signature).  A changed key file is new PEM text: a new entry.
 */
#define DKIM_KEY_CACHE 8
struct dkim_cached_key {
	char *pem;
	size_t pemlen;
	enum dkim_algo algo;
	EVP_PKEY *pk;
};

struct dkim_signer {
	DKIM_LIB *lib; /* for RSA; Ed25519 is signed here (note 5) */
	struct dkim_cached_key cache[DKIM_KEY_CACHE];
	unsigned next; /* the entry replaced next */
};

/* One header field: its bytes without the CRLF that ends it. */
struct dkim_field {
	const char *p;
	size_t len;
	size_t namelen; /* the bytes before the colon */
	size_t line;	/* where it starts, from 1 */
};

/* A message split at its first empty line, its header into fields. */
struct dkim_msg {
	const char *hdr; /* fields, each line with its CRLF */
	size_t hdrlen;
	const char *body;
	size_t bodylen;
	struct dkim_field *fields; /* nfields, top to bottom; owned */
	size_t nfields;
};

const char *
dkim_algo_name(enum dkim_algo a)
{
	return a == DKIM_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *
dkim_algo_tag(enum dkim_algo a)
{
	return a == DKIM_ED25519_SHA256 ? "ed25519" : "rsa";
}

/* dkim_ssl_error - OpenSSL's latest error as text, and the queue cleared */
static const char *
dkim_ssl_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* ---- the signer ---- */

struct dkim_signer *
dkim_signer_new(char *err, size_t errlen)
{
	struct dkim_signer *s;
	DKIM_STAT st;

	s = xcalloc(1, sizeof(*s));
	if ((s->lib = dkim_init(NULL, NULL)) == NULL) {
		snprintf(err, errlen, "libopendkim failed to initialize");
		free(s);
		return NULL;
	}
	st = dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
	    (void *)dkim_sign_fields, sizeof(char **));
	if (st == DKIM_STAT_OK)
		st =
		    dkim_options(s->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
			(void *)dkim_oversign_fields, sizeof(char **));
	if (st != DKIM_STAT_OK) {
		snprintf(err, errlen,
		    "libopendkim refused the signed fields: %s",
		    dkim_getresultstr(st));
		dkim_close(s->lib);
		free(s);
		return NULL;
	}
	return s;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	if (*sp == NULL)
		return;
	dkim_close((*sp)->lib);
	for (int i = 0; i < DKIM_KEY_CACHE; i++) {
		struct dkim_cached_key *c = &(*sp)->cache[i];

		if (c->pem) {
			OPENSSL_cleanse(c->pem, c->pemlen);
			free(c->pem);
			EVP_PKEY_free(c->pk);
		}
	}
	free(*sp);
	*sp = NULL;
}

/* ---- the header section ---- */

/*
 * dkim_split - find the end of the header section: the first empty
 * line, or the end of a message that has no body.  Returns 0 or -1.
 */
static int
dkim_split(
    const char *msg, size_t len, struct dkim_msg *m, char *err, size_t errlen)
{
	const char *end;

	if (len >= 2 && memcmp(msg, "\r\n", 2) == 0) {
		end = msg; /* no header fields at all */
	} else {
		end = memmem(msg, len, "\r\n\r\n", 4);
		end = end != NULL ? end + 2 : msg + len;
	}
	m->hdr = msg;
	m->hdrlen = (size_t)(end - msg);
	m->body = end + 2 <= msg + len ? end + 2 : msg + len;
	m->bodylen = (size_t)(msg + len - m->body);
	m->fields = NULL;
	m->nfields = 0;
	if (m->hdrlen > DKIM_HEADER_MAX) {
		snprintf(err, errlen,
		    "the header section is larger than %d bytes",
		    DKIM_HEADER_MAX);
		return -1;
	}
	return 0;
}

/* dkim_line_end - the CRLF ending the line at p, or end */
static const char *
dkim_line_end(const char *p, const char *end)
{
	const char *cr = memmem(p, (size_t)(end - p), "\r\n", 2);

	return cr != NULL ? cr : end;
}

/*
 * dkim_next_field - read the field at *pos of the header section (name,
 * colon, value, continuation lines) into f and move *pos past it and
 * its CRLF; *line counts lines.  Returns 1 for a field, 0 at the end,
 * -1 with err for a line that does not start a field.
 */
static int
dkim_next_field(const struct dkim_msg *m, size_t *pos, size_t *line,
    struct dkim_field *f, char *err, size_t errlen)
{
	const char *p = m->hdr + *pos, *end = m->hdr + m->hdrlen;
	const char *eol, *name_end;

	if (p >= end)
		return 0;
	eol = dkim_line_end(p, end);
	name_end = memchr(p, ':', (size_t)(eol - p));
	if (name_end == NULL || name_end == p)
		goto bad;
	if (name_end[-1] == ' ' || name_end[-1] == '\t') {
		/* obs-optional: libopendkim and verifiers disagree on it */
		snprintf(err, errlen,
		    "header line %zu has white space before its colon "
		    "(obsolete syntax)",
		    *line);
		return -1;
	}
	for (const char *q = p; q < name_end; q++)
		if (*q <= ' ' || *q > '~') /* RFC 5322 ftext */
			goto bad;
	f->p = p;
	f->namelen = (size_t)(name_end - p);
	f->line = (*line)++;
	while (eol + 2 < end && (eol[2] == ' ' || eol[2] == '\t')) {
		eol = dkim_line_end(eol + 2, end);
		(*line)++;
	}
	f->len = (size_t)(eol - p);
	*pos = (size_t)(eol - m->hdr) + (eol < end ? 2 : 0);
	return 1;
bad:
	snprintf(err, errlen, "header line %zu is not a field", *line);
	return -1;
}

/* dkim_field_is - whether field f is called name (ASCII, any case) */
static bool
dkim_field_is(const struct dkim_field *f, const char *name)
{
	return f->namelen == strlen(name) &&
	    strncasecmp(f->p, name, f->namelen) == 0;
}

/*
 * dkim_parse_header - split the header section into m->fields, checking
 * the syntax, the limits and the From: field before any key is used.
 * 0, or -1 with err; m->fields is freed by dkim_msg_free either way.
 */
static int
dkim_parse_header(struct dkim_msg *m, char *err, size_t errlen)
{
	struct dkim_field f;
	size_t pos = 0, line = 1, cap = 0;
	bool from = false;
	int r;

	while ((r = dkim_next_field(m, &pos, &line, &f, err, errlen)) > 0) {
		if (m->nfields == DKIM_FIELDS_MAX) {
			snprintf(err, errlen, "more than %d header fields",
			    DKIM_FIELDS_MAX);
			return -1;
		}
		if (m->nfields == cap) {
			cap = cap == 0 ? 32 : 2 * cap;
			m->fields = xrealloc(m->fields, cap * sizeof(f));
		}
		m->fields[m->nfields++] = f;
		from = from || dkim_field_is(&f, "from");
	}
	if (r < 0)
		return -1;
	if (!from) {
		snprintf(err, errlen, "the message has no From: field");
		return -1;
	}
	return 0;
}

/* dkim_msg_free - free what dkim_parse_header allocated */
static void
dkim_msg_free(struct dkim_msg *m)
{
	free(m->fields);
	m->fields = NULL;
	m->nfields = 0;
}

/* ---- keys ---- */

/* dkim_pkey_read - parse a PEM private key; NULL with err */
static EVP_PKEY *
dkim_pkey_read(const char *pem, size_t pemlen, char *err, size_t errlen)
{
	char ssl[256];
	EVP_PKEY *pk;
	BIO *bio;

	if (pemlen > DKIM_PEM_MAX) {
		snprintf(err, errlen, "the key is larger than %d bytes",
		    DKIM_PEM_MAX);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)pemlen)) == NULL) {
		snprintf(err, errlen, "%s", dkim_ssl_error(ssl, sizeof(ssl)));
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL)
		snprintf(err, errlen, "not a PEM private key (%s)",
		    dkim_ssl_error(ssl, sizeof(ssl)));
	return pk;
}

/* dkim_pkey_algo - the algorithm of a key; -1 with err for another kind */
static int
dkim_pkey_algo(EVP_PKEY *pk, enum dkim_algo *algo_r, char *err, size_t errlen)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < DKIM_RSA_MIN_BITS) {
			snprintf(err, errlen,
			    "the RSA key has %d bits; DKIM needs at least %d",
			    EVP_PKEY_get_bits(pk), DKIM_RSA_MIN_BITS);
			return -1;
		}
		*algo_r = DKIM_RSA_SHA256;
		return 0;
	case EVP_PKEY_ED25519:
		*algo_r = DKIM_ED25519_SHA256;
		return 0;
	default:
		snprintf(err, errlen, "a %s key is neither RSA nor Ed25519",
		    OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
		return -1;
	}
}

/*
 * dkim_name_ok - whether s can stand as the value of d= or s=: one or
 * more of [A-Za-z0-9._-], so that it cannot end the tag or the field.
 */
static bool
dkim_name_ok(const char *s)
{
	size_t n = strspn(s,
	    "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && s[n] == '\0';
}

/*
 * dkim_key_load - parse k's key and check it: of k's algorithm, with a
 * usable selector and domain (design note 2).  The EVP_PKEY is the
 * caller's; NULL with err.
 */
static EVP_PKEY *
dkim_key_load(const struct dkim_key *k, char *err, size_t errlen)
{
	enum dkim_algo algo;
	EVP_PKEY *pk;

	if (!dkim_name_ok(k->selector) || !dkim_name_ok(k->domain)) {
		snprintf(err, errlen, "invalid selector or domain");
		return NULL;
	}
	if ((pk = dkim_pkey_read(k->pem, k->pemlen, err, errlen)) == NULL)
		return NULL;
	if (dkim_pkey_algo(pk, &algo, err, errlen) == 0) {
		if (algo == k->algo)
			return pk;
		snprintf(err, errlen, "the key is %s, not %s",
		    dkim_algo_tag(algo), dkim_algo_tag(k->algo));
	}
	EVP_PKEY_free(pk);
	return NULL;
}

/* ---- RSA, with libopendkim ---- */

/* dkim_feed - give the message to a signing handle; a DKIM_STAT */
static DKIM_STAT
dkim_feed(DKIM *d, const struct dkim_msg *m)
{
	DKIM_STAT st;

	for (size_t i = 0; i < m->nfields; i++) {
		st = dkim_header(d, (u_char *)m->fields[i].p, m->fields[i].len);
		if (st != DKIM_STAT_OK)
			return st;
	}
	if ((st = dkim_eoh(d)) != DKIM_STAT_OK)
		return st;
	if (m->bodylen > 0 &&
	    (st = dkim_body(d, (u_char *)m->body, m->bodylen)) != DKIM_STAT_OK)
		return st;
	/* Design note 7; libopendkim refuses a body without it. */
	if (m->bodylen > 0 &&
	    (m->bodylen < 2 || memcmp(m->body + m->bodylen - 2, "\r\n", 2)) &&
	    (st = dkim_body(d, (u_char *)"\r\n", 2)) != DKIM_STAT_OK)
		return st;
	return dkim_eom(d, NULL);
}

/*
 * dkim_sign_rsa - sign m with the RSA key k through libopendkim and
 * append the DKIM-Signature field to out.  0, or -1 with why.
 */
static int
dkim_sign_rsa(struct dkim_signer *s, const struct dkim_key *k,
    const struct dkim_msg *m, struct buf *out, char *why, size_t whylen)
{
	u_char *sig = NULL;
	size_t siglen = 0;
	DKIM_STAT st;
	char *key;
	DKIM *d;
	int r = -1;

	/* libopendkim reads the key up to its NUL. */
	key = xstrndup(k->pem, k->pemlen);
	d = dkim_sign(s->lib, (const u_char *)"herald", NULL, (u_char *)key,
	    (const u_char *)k->selector, (const u_char *)k->domain,
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1,
	    &st);
	if (d == NULL) {
		snprintf(why, whylen, "%s", dkim_getresultstr(st));
		goto out;
	}
	st = dkim_feed(d, m);
	if (st == DKIM_STAT_OK)
		st =
		    dkim_getsighdr_d(d, strlen(DKIM_SIG_PREFIX), &sig, &siglen);
	if (st == DKIM_STAT_OK) {
		buf_puts(out, DKIM_SIG_PREFIX);
		buf_append(out, sig, siglen);
		buf_puts(out, "\r\n");
		r = 0;
	} else {
		const char *e = dkim_geterror(d);

		snprintf(why, whylen, "%s",
		    e != NULL && *e != '\0' ? e : dkim_getresultstr(st));
	}
	dkim_free(d);
out:
	OPENSSL_clear_free(key, k->pemlen + 1);
	return r;
}

/* ---- Ed25519, signed here (design notes 5 and 6) ---- */

/*
 * A SHA-256 being computed.  The canonical forms come in small pieces,
 * gathered in buf first; a failure is kept in ok for dkim_sha_end.
 */
struct dkim_sha {
	EVP_MD_CTX *ctx;
	bool ok;
	size_t len;
	unsigned char buf[4096];
};

static bool
dkim_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static void
dkim_sha_start(struct dkim_sha *h)
{
	h->len = 0;
	h->ctx = EVP_MD_CTX_new();
	h->ok = h->ctx != NULL &&
	    EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1;
}

static void
dkim_sha_flush(struct dkim_sha *h)
{
	if (h->ok && h->len > 0)
		h->ok = EVP_DigestUpdate(h->ctx, h->buf, h->len) == 1;
	h->len = 0;
}

/* dkim_sha_put - hash the n bytes at p */
static void
dkim_sha_put(struct dkim_sha *h, const void *p, size_t n)
{
	if (h->len + n > sizeof(h->buf))
		dkim_sha_flush(h);
	if (n > sizeof(h->buf)) {
		h->ok = h->ok && EVP_DigestUpdate(h->ctx, p, n) == 1;
		return;
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
}

/* dkim_sha_end - the digest into md and the context freed; 0 or -1 */
static int
dkim_sha_end(struct dkim_sha *h, unsigned char md[SHA256_DIGEST_LENGTH])
{
	unsigned int n = 0;

	dkim_sha_flush(h);
	h->ok = h->ok && EVP_DigestFinal_ex(h->ctx, md, &n) == 1 &&
	    n == SHA256_DIGEST_LENGTH;
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
	return h->ok ? 0 : -1;
}

/*
 * dkim_put_squeezed - hash p..end with each run of WSP as one SP; end
 * must not follow WSP (trailing WSP is the caller's to drop).
 */
static void
dkim_put_squeezed(struct dkim_sha *h, const char *p, const char *end)
{
	while (p < end) {
		const char *w = p;

		while (w < end && !dkim_wsp(*w))
			w++;
		dkim_sha_put(h, p, (size_t)(w - p));
		if (w == end)
			break;
		dkim_sha_put(h, " ", 1);
		while (dkim_wsp(*w))
			w++;
		p = w;
	}
}

/*
 * dkim_body_relaxed - hash the relaxed canonical body (RFC 6376 section
 * 3.4.4): WSP at the end of each line dropped, other runs of WSP one
 * SP, empty lines at the end dropped (an empty body hashes as nothing),
 * every line that is left ended by CRLF (design note 7).
 */
static void
dkim_body_relaxed(struct dkim_sha *h, const char *p, size_t len)
{
	const char *end = p + len;
	size_t empty = 0; /* empty lines held back: dropped at the end */

	while (p < end) {
		const char *eol = dkim_line_end(p, end), *q = eol;

		while (q > p && dkim_wsp(q[-1]))
			q--;
		if (q == p) {
			empty++;
		} else {
			for (; empty > 0; empty--)
				dkim_sha_put(h, "\r\n", 2);
			dkim_put_squeezed(h, p, q);
			dkim_sha_put(h, "\r\n", 2);
		}
		p = eol < end ? eol + 2 : end;
	}
}

/*
 * dkim_header_relaxed - hash the relaxed canonical form (RFC 6376
 * section 3.4.2) of the field of len bytes at p whose name is its first
 * namelen bytes: the name in lower case, a colon, the value unfolded
 * with each run of WSP one SP and none at either end; then CRLF if crlf.
 */
static void
dkim_header_relaxed(
    struct dkim_sha *h, const char *p, size_t namelen, size_t len, bool crlf)
{
	const char *v = p + namelen + 1, *end = p + len;
	bool space = false, started = false;

	for (size_t i = 0; i < namelen; i++) {
		char c = p[i] >= 'A' && p[i] <= 'Z' ? p[i] + ('a' - 'A') : p[i];

		dkim_sha_put(h, &c, 1);
	}
	dkim_sha_put(h, ":", 1);
	for (; v < end; v++) {
		if (v[0] == '\r' && v + 1 < end && v[1] == '\n') {
			v++; /* unfold: a field's CRLFs all precede WSP */
		} else if (dkim_wsp(*v)) {
			space = started;
		} else {
			if (space)
				dkim_sha_put(h, " ", 1);
			dkim_sha_put(h, v, 1);
			space = false;
			started = true;
		}
	}
	if (crlf)
		dkim_sha_put(h, "\r\n", 2);
}

/* A name of h=: a field's name as the message spells it, or oversigned. */
struct dkim_hname {
	const char *p;
	size_t len;
};

/*
 * dkim_hnames - the names of h= in *names_r (malloc'd, *n_r of them):
 * each signed field's, top to bottom, then those of
 * dkim_oversign_fields, as libopendkim lists them.
 */
static void
dkim_hnames(const struct dkim_msg *m, struct dkim_hname **names_r, size_t *n_r)
{
	struct dkim_hname *names;
	size_t n = 0;

	names =
	    xcalloc(m->nfields + NELEM(dkim_oversign_fields), sizeof(*names));
	for (size_t i = 0; i < m->nfields; i++) {
		for (const char **s = dkim_sign_fields; *s != NULL; s++) {
			if (dkim_field_is(&m->fields[i], *s)) {
				names[n].p = m->fields[i].p;
				names[n++].len = m->fields[i].namelen;
				break;
			}
		}
	}
	for (const char **s = dkim_oversign_fields; *s != NULL; s++) {
		names[n].p = *s;
		names[n++].len = strlen(*s);
	}
	*names_r = names;
	*n_r = n;
}

/*
 * dkim_hash_fields - hash the fields h= names (RFC 6376 section 5.4.2):
 * for each name, the instance nearest the bottom of the header that is
 * not hashed yet, and nothing once none is left (an oversigned name).
 */
static void
dkim_hash_fields(struct dkim_sha *h, const struct dkim_msg *m,
    const struct dkim_hname *names, size_t n)
{
	bool *used = xcalloc(m->nfields + 1, sizeof(*used));

	for (size_t j = 0; j < n; j++) {
		for (size_t i = m->nfields; i-- > 0;) {
			const struct dkim_field *f = &m->fields[i];

			if (used[i] || f->namelen != names[j].len ||
			    strncasecmp(f->p, names[j].p, f->namelen) != 0)
				continue;
			used[i] = true;
			dkim_header_relaxed(h, f->p, f->namelen, f->len, true);
			break;
		}
	}
	free(used);
}

/*
 * The DKIM-Signature field being written, folded as libopendkim folds
 * its own: col is the column the next byte goes to, a tab counting 8.
 */
struct dkim_fold {
	struct buf *b;
	size_t col;
	bool first; /* no tag yet */
};

/* Where a value too long for its line may be broken. */
enum dkim_brk { DKIM_BRK_NONE, DKIM_BRK_COLON, DKIM_BRK_ANY };

#define DKIM_TAB_COLS 8
#define DKIM_CONT_COLS (DKIM_TAB_COLS + 1) /* "\t " starts a continuation */

/*
 * dkim_fold_name - begin the tag name= whose value will have vlen bytes:
 * after "; " when the whole tag fits on the line, else on a new line.
 */
static void
dkim_fold_name(struct dkim_fold *f, const char *name, size_t vlen)
{
	size_t len = strlen(name) + 1 + vlen;

	if (!f->first) {
		buf_puts(f->b, ";");
		if (f->col + 2 + len <= DKIM_MARGIN) { /* "; " and the tag */
			buf_puts(f->b, " ");
			f->col += 2;
		} else {
			buf_puts(f->b, "\r\n\t");
			f->col = DKIM_TAB_COLS;
		}
	}
	f->first = false;
	buf_printf(f->b, "%s=", name);
	f->col += strlen(name) + 1;
}

/* dkim_fold_cont - start a continuation line of a tag's value */
static void
dkim_fold_cont(struct dkim_fold *f)
{
	buf_puts(f->b, "\r\n\t ");
	f->col = DKIM_CONT_COLS;
}

/*
 * dkim_fold_value - append a tag's value, as libopendkim breaks one that
 * does not fit: with DKIM_BRK_COLON, before a name of h= that would pass
 * the margin (its colon stays on the line before and is not counted,
 * the ';' after the last name is); with DKIM_BRK_ANY, at the margin.
 */
static void
dkim_fold_value(struct dkim_fold *f, const char *v, enum dkim_brk brk)
{
	size_t n = strlen(v);
	bool first = true;

	while (n > 0) {
		const char *colon = memchr(v, ':', n);
		size_t k = n;

		if (brk == DKIM_BRK_COLON) {
			k = colon != NULL ? (size_t)(colon - v) + 1 : n;
			if (!first &&
			    f->col + (colon != NULL ? k - 1 : k + 1) >
				DKIM_MARGIN)
				dkim_fold_cont(f);
		} else if (brk == DKIM_BRK_ANY) {
			if (f->col >= DKIM_MARGIN)
				dkim_fold_cont(f);
			if (k > DKIM_MARGIN - f->col)
				k = DKIM_MARGIN - f->col;
		}
		buf_append(f->b, v, k);
		f->col += k;
		v += k;
		n -= k;
		first = false;
	}
}

/* dkim_fold_tag - dkim_fold_name and dkim_fold_value */
static void
dkim_fold_tag(
    struct dkim_fold *f, const char *name, const char *v, enum dkim_brk brk)
{
	dkim_fold_name(f, name, strlen(v));
	dkim_fold_value(f, v, brk);
}

/* dkim_b64 - base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes) */
static char *
dkim_b64(char *out, const unsigned char *p, size_t n)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/*
 * dkim_ed25519_head - write the field up to "b=" into f, in
 * libopendkim's tag order: v a c d s t bh h b.  Returns -1 when the
 * body could not be hashed.
 */
static int
dkim_ed25519_head(struct dkim_fold *f, const struct dkim_key *k,
    const struct dkim_msg *m, const struct dkim_hname *names, size_t n)
{
	unsigned char bh[SHA256_DIGEST_LENGTH];
	char b64[4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1], t[24];
	struct buf h = BUF_INIT;
	struct dkim_sha sha;

	dkim_sha_start(&sha);
	dkim_body_relaxed(&sha, m->body, m->bodylen);
	if (dkim_sha_end(&sha, bh) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		buf_printf(&h, "%s%.*s", i > 0 ? ":" : "", (int)names[i].len,
		    names[i].p);
	snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
	buf_puts(f->b, DKIM_SIG_PREFIX);
	f->col = strlen(DKIM_SIG_PREFIX);
	dkim_fold_tag(f, "v", "1", DKIM_BRK_NONE);
	dkim_fold_tag(f, "a", "ed25519-sha256", DKIM_BRK_NONE);
	dkim_fold_tag(f, "c", "relaxed/relaxed", DKIM_BRK_NONE);
	dkim_fold_tag(f, "d", k->domain, DKIM_BRK_NONE);
	dkim_fold_tag(f, "s", k->selector, DKIM_BRK_NONE);
	dkim_fold_tag(f, "t", t, DKIM_BRK_NONE);
	dkim_fold_tag(f, "bh", dkim_b64(b64, bh, sizeof(bh)), DKIM_BRK_NONE);
	dkim_fold_tag(f, "h", buf_cstr(&h), DKIM_BRK_COLON);
	buf_free(&h);
	/* An Ed25519 signature always has 88 characters of base64. */
	dkim_fold_name(f, "b", 4 * ((DKIM_ED25519_SIGLEN + 2) / 3));
	return 0;
}

/*
 * dkim_ed25519_sig - the Ed25519 signature of pk over md (RFC 8463
 * section 3: PureEdDSA over the SHA-256 digest); 0 or -1.
 */
static int
dkim_ed25519_sig(EVP_PKEY *pk, const unsigned char *md, size_t mdlen,
    unsigned char sig[DKIM_ED25519_SIGLEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = DKIM_ED25519_SIGLEN;
	int ok;

	ok = ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestSign(ctx, sig, &n, md, mdlen) == 1 &&
	    n == DKIM_ED25519_SIGLEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/*
 * dkim_sign_ed25519 - sign m with k, pk being k's key already parsed,
 * and append the DKIM-Signature field to out.  0, or -1 with why.
 */
static int
dkim_sign_ed25519(const struct dkim_key *k, EVP_PKEY *pk,
    const struct dkim_msg *m, struct buf *out, char *why, size_t whylen)
{
	unsigned char md[SHA256_DIGEST_LENGTH], sig[DKIM_ED25519_SIGLEN];
	char b64[4 * ((DKIM_ED25519_SIGLEN + 2) / 3) + 1], ssl[256];
	struct buf field = BUF_INIT;
	struct dkim_fold f = { &field, 0, true };
	struct dkim_hname *names;
	struct dkim_sha sha;
	size_t n;
	int r = -1;

	dkim_hnames(m, &names, &n);
	if (dkim_ed25519_head(&f, k, m, names, n) == 0) {
		dkim_sha_start(&sha);
		dkim_hash_fields(&sha, m, names, n);
		/* the field itself, b= empty, no CRLF (RFC 6376 3.7) */
		dkim_header_relaxed(
		    &sha, field.data, strlen(DKIM_SIG_NAME), field.len, false);
		if (dkim_sha_end(&sha, md) == 0 &&
		    dkim_ed25519_sig(pk, md, sizeof(md), sig) == 0)
			r = 0;
	}
	if (r == 0) {
		dkim_fold_value(
		    &f, dkim_b64(b64, sig, sizeof(sig)), DKIM_BRK_ANY);
		buf_puts(&field, "\r\n");
		buf_append(out, field.data, field.len);
	} else {
		snprintf(why, whylen, "%s", dkim_ssl_error(ssl, sizeof(ssl)));
	}
	free(names);
	buf_free(&field);
	return r;
}

/* ---- signing ---- */

/*
 * dkim_key_cached - k's key, parsed and checked, from s's cache or
 * loaded into it; the key stays the cache's.  NULL with err.
 */
static EVP_PKEY *
dkim_key_cached(
    struct dkim_signer *s, const struct dkim_key *k, char *err, size_t errlen)
{
	struct dkim_cached_key *c;
	EVP_PKEY *pk;

	for (int i = 0; i < DKIM_KEY_CACHE; i++) {
		c = &s->cache[i];
		if (c->pem && c->algo == k->algo && c->pemlen == k->pemlen &&
		    memcmp(c->pem, k->pem, k->pemlen) == 0 &&
		    dkim_name_ok(k->selector) && dkim_name_ok(k->domain))
			return c->pk;
	}
	if ((pk = dkim_key_load(k, err, errlen)) == NULL)
		return NULL;
	c = &s->cache[s->next++ % DKIM_KEY_CACHE];
	if (c->pem) {
		OPENSSL_cleanse(c->pem, c->pemlen);
		free(c->pem);
		EVP_PKEY_free(c->pk);
	}
	c->pem = xmalloc(k->pemlen);
	memcpy(c->pem, k->pem, k->pemlen);
	c->pemlen = k->pemlen;
	c->algo = k->algo;
	c->pk = pk;
	return pk;
}

/*
 * dkim_sign_one - sign m with key k and append the DKIM-Signature field
 * to out.  Returns 0, or -1 with err naming the key.
 */
static int
dkim_sign_one(struct dkim_signer *s, const struct dkim_key *k,
    const struct dkim_msg *m, struct buf *out, char *err, size_t errlen)
{
	char why[512];
	EVP_PKEY *pk;
	int r = -1;

	if ((pk = dkim_key_cached(s, k, why, sizeof(why))) != NULL) {
		if (k->algo == DKIM_ED25519_SHA256)
			r = dkim_sign_ed25519(k, pk, m, out, why, sizeof(why));
		else
			r = dkim_sign_rsa(s, k, m, out, why, sizeof(why));
	}
	if (r < 0)
		snprintf(err, errlen, "DKIM key %s for %s (%s): %s",
		    k->selector, k->domain, dkim_algo_name(k->algo), why);
	ERR_clear_error();
	return r;
}

int
dkim_sign_message(struct dkim_signer *s, const struct dkim_key *keys,
    size_t nkeys, const char *msg, size_t len, struct buf *out, char *err,
    size_t errlen)
{
	struct buf fields = BUF_INIT;
	struct dkim_msg m;
	int r = -1;

	if (dkim_split(msg, len, &m, err, errlen) == 0 &&
	    dkim_parse_header(&m, err, errlen) == 0) {
		r = 0;
		for (size_t i = 0; i < nkeys && r == 0; i++)
			r = dkim_sign_one(
			    s, &keys[i], &m, &fields, err, errlen);
	}
	if (r == 0 && fields.len > 0)
		buf_append(out, fields.data, fields.len);
	buf_free(&fields);
	dkim_msg_free(&m);
	return r;
}

/* ---- key generation ---- */

/* dkim_base64 - a malloc'd base64 of n bytes, no line breaks */
static char *
dkim_base64(const unsigned char *p, size_t n)
{
	return dkim_b64(xmalloc(4 * ((n + 2) / 3) + 1), p, n);
}

/* dkim_txt - the TXT record value of the public half of pk; NULL, err */
static char *
dkim_txt(EVP_PKEY *pk, enum dkim_algo algo, char *err, size_t errlen)
{
	unsigned char raw[32], *der = NULL;
	char ssl[256], *b64, *txt;
	size_t n = sizeof(raw);
	int dlen;

	if (algo == DKIM_ED25519_SHA256) {
		/* RFC 8463 section 4.2: the bare 32-byte key, not an SPKI. */
		if (EVP_PKEY_get_raw_public_key(pk, raw, &n) != 1) {
			snprintf(err, errlen,
			    "reading the Ed25519 public key: "
			    "%s",
			    dkim_ssl_error(ssl, sizeof(ssl)));
			return NULL;
		}
		b64 = dkim_base64(raw, n);
	} else {
		if ((dlen = i2d_PUBKEY(pk, &der)) <= 0) {
			snprintf(err, errlen, "encoding the RSA public key: %s",
			    dkim_ssl_error(ssl, sizeof(ssl)));
			return NULL;
		}
		b64 = dkim_base64(der, (size_t)dlen);
		OPENSSL_free(der);
	}
	txt = xmalloc(strlen(b64) + 32);
	sprintf(txt, "v=DKIM1; k=%s; p=%s", dkim_algo_tag(algo), b64);
	free(b64);
	return txt;
}

/* dkim_pem - the private key as a malloc'd PKCS#8 PEM; NULL with err */
static char *
dkim_pem(EVP_PKEY *pk, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem()); /* wiped when freed */
	char ssl[256], *data, *pem = NULL;
	long n;

	if (bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0)
		pem = xstrndup(data, (size_t)n);
	else
		snprintf(err, errlen, "writing the private key: %s",
		    dkim_ssl_error(ssl, sizeof(ssl)));
	BIO_free(bio);
	return pem;
}

int
dkim_keygen(enum dkim_algo algo, int bits, char **pem_r, char **txt_r,
    char *err, size_t errlen)
{
	char ssl[256];
	EVP_PKEY *pk;

	if (bits == 0)
		bits = 2048;
	if (algo == DKIM_RSA_SHA256 &&
	    (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
		snprintf(err, errlen, "RSA keys have %d to %d bits, not %d",
		    DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS, bits);
		return -1;
	}
	pk = algo == DKIM_ED25519_SHA256
	    ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
	    : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (pk == NULL) {
		snprintf(err, errlen, "generating a %s key: %s",
		    dkim_algo_tag(algo), dkim_ssl_error(ssl, sizeof(ssl)));
		return -1;
	}
	*pem_r = dkim_pem(pk, err, errlen);
	*txt_r = *pem_r != NULL ? dkim_txt(pk, algo, err, errlen) : NULL;
	EVP_PKEY_free(pk);
	if (*txt_r == NULL && *pem_r != NULL) {
		OPENSSL_clear_free(*pem_r, strlen(*pem_r));
		*pem_r = NULL;
	}
	return *pem_r != NULL ? 0 : -1;
}

int
dkim_public_txt(const char *pem, size_t pemlen, enum dkim_algo *algo_r,
    char **txt_r, char *err, size_t errlen)
{
	EVP_PKEY *pk = dkim_pkey_read(pem, pemlen, err, errlen);
	enum dkim_algo algo;

	*txt_r = NULL;
	if (pk == NULL)
		return -1;
	if (dkim_pkey_algo(pk, &algo, err, errlen) == 0 &&
	    (*txt_r = dkim_txt(pk, algo, err, errlen)) != NULL)
		*algo_r = algo;
	EVP_PKEY_free(pk);
	return *txt_r != NULL ? 0 : -1;
}

/* ---- key files ---- */

bool
dkim_selector_valid(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-");

	return n >= 1 && n <= 63 && s[n] == '\0' && s[0] != '-' &&
	    s[n - 1] != '-';
}

bool
dkim_domain_valid(const char *d)
{
	return mail_domain_is_normal(d);
}

char *
dkim_key_dir(const char *data_dir, const char *domain)
{
	size_t n = strlen(data_dir) + strlen(domain) + sizeof("/dkim/");
	char *p;

	assert(dkim_domain_valid(domain));
	p = xmalloc(n);

	snprintf(p, n, "%s/dkim/%s", data_dir, domain);
	return p;
}

char *
dkim_key_path(const char *data_dir, const char *domain, const char *selector,
    enum dkim_algo algo)
{
	size_t n = strlen(data_dir) + strlen(domain) + strlen(selector) + 32;
	char *p;

	assert(dkim_domain_valid(domain) && dkim_selector_valid(selector));
	p = xmalloc(n);

	snprintf(p, n, "%s/dkim/%s/%s.%s.pem", data_dir, domain, selector,
	    dkim_algo_tag(algo));
	return p;
}

/*
 * dkim_file_name - parse a key file name "<selector>.<tag>.pem" into
 * selector (at least 64 bytes) and *algo_r; false for any other name.
 */
static bool
dkim_file_name(const char *name, char *selector, enum dkim_algo *algo_r)
{
	static const enum dkim_algo algos[] = { DKIM_RSA_SHA256,
		DKIM_ED25519_SHA256 };
	size_t n = strlen(name);

	for (size_t i = 0; i < NELEM(algos); i++) {
		char suffix[16];
		size_t sl;

		sl = (size_t)snprintf(
		    suffix, sizeof(suffix), ".%s.pem", dkim_algo_tag(algos[i]));
		if (n <= sl || n - sl > 63 || strcmp(name + n - sl, suffix))
			continue;
		memcpy(selector, name, n - sl);
		selector[n - sl] = '\0';
		*algo_r = algos[i];
		return dkim_selector_valid(selector);
	}
	return false;
}

/* dkim_list_domain - dkim_keys_list for one domain's directory */
static int
dkim_list_domain(const char *data_dir, const char *domain,
    int (*cb)(void *, const struct dkim_key_file *), void *arg, char *err,
    size_t errlen)
{
	char *dir = dkim_key_dir(data_dir, domain);
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), r = 0;

	if (n < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			r = -1;
		}
		free(dir);
		return r;
	}
	for (int i = 0; i < n; i++) {
		struct dkim_key_file f = { .domain = domain };
		char selector[64], *path;
		struct stat st;

		if (r == 0 &&
		    dkim_file_name(names[i]->d_name, selector, &f.algo)) {
			path = fs_path_join(dir, names[i]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				f.selector = selector;
				f.path = path;
				f.mtime = st.st_mtim;
				r = cb(arg, &f);
			}
			free(path);
		}
		free(names[i]);
	}
	free(names);
	free(dir);
	return r;
}

int
dkim_keys_list(const char *data_dir, const char *domain,
    int (*cb)(void *arg, const struct dkim_key_file *f), void *arg, char *err,
    size_t errlen)
{
	struct dirent **names = NULL;
	char *top;
	int n, r = 0;

	if (domain != NULL) {
		if (!dkim_domain_valid(domain)) {
			snprintf(
			    err, errlen, "invalid domain '%.253s'", domain);
			return -1;
		}
		return dkim_list_domain(data_dir, domain, cb, arg, err, errlen);
	}
	top = fs_path_join(data_dir, "dkim");
	if ((n = scandir(top, &names, NULL, alphasort)) < 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", top, strerror(errno));
			r = -1;
		}
		free(top);
		return r;
	}
	for (int i = 0; i < n; i++) {
		if (r == 0 && dkim_domain_valid(names[i]->d_name))
			r = dkim_list_domain(
			    data_dir, names[i]->d_name, cb, arg, err, errlen);
		free(names[i]);
	}
	free(names);
	free(top);
	return r;
}

/* The newest key file of each algorithm, while dkim_keys_load looks. */
struct dkim_pick {
	bool found[2];
	struct timespec mtime[2];
	char selector[2][64];
	char *path[2];
};

/* dkim_newer - whether f is to be preferred to what p holds for its algo */
static bool
dkim_newer(const struct dkim_pick *p, const struct dkim_key_file *f)
{
	int a = f->algo;

	if (!p->found[a])
		return true;
	if (f->mtime.tv_sec != p->mtime[a].tv_sec)
		return f->mtime.tv_sec > p->mtime[a].tv_sec;
	if (f->mtime.tv_nsec != p->mtime[a].tv_nsec)
		return f->mtime.tv_nsec > p->mtime[a].tv_nsec;
	return strcmp(f->selector, p->selector[a]) > 0;
}

static int
dkim_pick_cb(void *arg, const struct dkim_key_file *f)
{
	struct dkim_pick *p = arg;
	int a = f->algo;

	if (dkim_newer(p, f)) {
		p->found[a] = true;
		p->mtime[a] = f->mtime;
		snprintf(
		    p->selector[a], sizeof(p->selector[a]), "%s", f->selector);
		free(p->path[a]);
		p->path[a] = xstrdup(f->path);
	}
	return 0;
}

char *
dkim_key_read(const char *path, size_t *len_r, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *data;
	struct stat st;
	size_t len, got = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (st.st_size > DKIM_PEM_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    DKIM_PEM_MAX);
		close(fd);
		return NULL;
	}
	len = (size_t)st.st_size;
	data = xmalloc(len + 1);
	while (got < len) {
		ssize_t n = read(fd, data + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: %s", path,
			    n < 0 ? strerror(errno) : "shorter than its size");
			OPENSSL_clear_free(data, len + 1);
			close(fd);
			return NULL;
		}
		got += (size_t)n;
	}
	close(fd);
	data[len] = '\0';
	*len_r = len;
	return data;
}

int
dkim_keys_load(const char *data_dir, const char *domain, struct dkim_keyset *ks,
    char *err, size_t errlen)
{
	struct dkim_pick pick;
	int r;

	memset(ks, 0, sizeof(*ks));
	memset(&pick, 0, sizeof(pick));
	ks->domain = str_lower(xstrdup(domain));
	r = dkim_keys_list(
	    data_dir, ks->domain, dkim_pick_cb, &pick, err, errlen);
	/* RSA first: index 0 is DKIM_RSA_SHA256. */
	for (int a = 0; a < 2 && r == 0; a++) {
		struct dkim_key *k = &ks->keys[ks->n];
		size_t len = 0;

		if (!pick.found[a])
			continue;
		ks->pem[ks->n] = dkim_key_read(pick.path[a], &len, err, errlen);
		if (ks->pem[ks->n] == NULL) {
			r = -1;
			break;
		}
		ks->selector[ks->n] = xstrdup(pick.selector[a]);
		k->domain = ks->domain;
		k->selector = ks->selector[ks->n];
		k->algo = (enum dkim_algo)a;
		k->pem = ks->pem[ks->n];
		k->pemlen = len;
		ks->n++;
	}
	free(pick.path[0]);
	free(pick.path[1]);
	if (r != 0) {
		dkim_keyset_free(ks);
		return -1;
	}
	return 0;
}

void
dkim_keyset_free(struct dkim_keyset *ks)
{
	for (size_t i = 0; i < DKIM_KEYSET_MAX; i++) {
		if (ks->pem[i] != NULL)
			OPENSSL_clear_free(ks->pem[i], ks->keys[i].pemlen + 1);
		free(ks->selector[i]);
	}
	free(ks->domain);
	memset(ks, 0, sizeof(*ks));
}
