/*
 * dkim.c - DKIM signing with libopendkim, keys with OpenSSL, and the
 * key files of the data directory (see dkim.h).
 *
 * Design notes.
 *
 * 1. The header section is split into fields here, not by libopendkim:
 *    each field goes to dkim_header() as it stands in the message, its
 *    continuation lines included, without the CRLF that ends it.  The
 *    relaxed canonicalization then unfolds it.  A message is refused
 *    before libopendkim sees it when it has no From: field, a line that
 *    is neither a field nor a continuation, a field with white space
 *    before its colon (obsolete syntax that libopendkim canonicalizes
 *    differently from verifiers), too many fields or too large a
 *    header, so that the error names the line.
 * 2. libopendkim takes the private key as NUL-terminated PEM (or DER)
 *    text, for Ed25519 as well as RSA, and loads it with OpenSSL's
 *    PEM_read_bio_PrivateKey.  It does not check that the key's kind
 *    matches the algorithm asked for: an RSA key used for ed25519-sha256
 *    gives a signature nobody can verify.  dkim_key_check() parses the
 *    key first and refuses a mismatch.
 * 3. Every signature of a message is computed before any is appended to
 *    the caller's buffer, so a failure leaves it as it was.
 * 4. Key material is wiped (OPENSSL_cleanse) before it is freed.
 * 5. Known leak: libopendkim 2.11.0~beta2 (Debian 12) does not free, in
 *    dkim_free(), the key it loaded for an Ed25519 signature: about 480
 *    bytes per Ed25519 signature (valgrind).  Fixed upstream (OpenDKIM
 *    pull request #321); nothing here can free it without knowing the
 *    library's private structures, and freeing it here would become a
 *    double free with a fixed library.  RSA signatures do not leak.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <opendkim/dkim.h>

#include "lib/buf.h"
#include "lib/fsutil.h"
#include "lib/util.h"
#include "mail/dkim.h"

#define DKIM_SIG_PREFIX "DKIM-Signature: "
#define DKIM_PEM_MAX (64 * 1024) /* a key file larger than this is not one */
#define DKIM_RSA_MIN_BITS 1024	 /* RFC 8301 section 3.2 */
#define DKIM_RSA_MAX_BITS 4096
#define DKIM_DOMAIN_MAX 253

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

struct dkim_signer {
	DKIM_LIB *lib;
	bool ed25519; /* the library can sign with Ed25519 */
};

/* One header field: its bytes without the CRLF that ends it. */
struct dkim_field {
	const char *p;
	size_t len;
	size_t line; /* where it starts, from 1 */
};

/* A message split at its first empty line. */
struct dkim_msg {
	const char *hdr; /* fields, each line with its CRLF */
	size_t hdrlen;
	const char *body;
	size_t bodylen;
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
	s->ed25519 = dkim_libfeature(s->lib, DKIM_FEATURE_ED25519);
	return s;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	if (*sp == NULL)
		return;
	dkim_close((*sp)->lib);
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
	size_t n = strlen(name), i = n;

	if (f->len <= n || strncasecmp(f->p, name, n) != 0)
		return false;
	while (i < f->len && (f->p[i] == ' ' || f->p[i] == '\t'))
		i++;
	return i < f->len && f->p[i] == ':';
}

/*
 * dkim_check_header - walk the fields once: the syntax, the limits and
 * the From: field are checked before any key is used.  0 or -1.
 */
static int
dkim_check_header(const struct dkim_msg *m, char *err, size_t errlen)
{
	struct dkim_field f;
	size_t pos = 0, line = 1, n = 0;
	bool from = false;
	int r;

	while ((r = dkim_next_field(m, &pos, &line, &f, err, errlen)) > 0) {
		if (++n > DKIM_FIELDS_MAX) {
			snprintf(err, errlen, "more than %d header fields",
			    DKIM_FIELDS_MAX);
			return -1;
		}
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

/* dkim_key_check - the key parses and is of the key's algorithm; 0 or -1 */
static int
dkim_key_check(const struct dkim_signer *s, const struct dkim_key *k, char *err,
    size_t errlen)
{
	enum dkim_algo algo;
	EVP_PKEY *pk;
	int r = -1;

	if (k->algo == DKIM_ED25519_SHA256 && !s->ed25519) {
		snprintf(err, errlen, "libopendkim was built without Ed25519");
		return -1;
	}
	if ((pk = dkim_pkey_read(k->pem, k->pemlen, err, errlen)) == NULL)
		return -1;
	if (dkim_pkey_algo(pk, &algo, err, errlen) == 0) {
		if (algo == k->algo)
			r = 0;
		else
			snprintf(err, errlen, "the key is %s, not %s",
			    dkim_algo_tag(algo), dkim_algo_tag(k->algo));
	}
	EVP_PKEY_free(pk);
	return r;
}

/* dkim_feed - give the message to a signing handle; a DKIM_STAT */
static DKIM_STAT
dkim_feed(DKIM *d, const struct dkim_msg *m)
{
	struct dkim_field f;
	size_t pos = 0, line = 1;
	char ignored[8];
	DKIM_STAT st;

	/* dkim_check_header() accepted these fields already. */
	while (
	    dkim_next_field(m, &pos, &line, &f, ignored, sizeof(ignored)) > 0) {
		if ((st = dkim_header(d, (u_char *)f.p, f.len)) != DKIM_STAT_OK)
			return st;
	}
	if ((st = dkim_eoh(d)) != DKIM_STAT_OK)
		return st;
	if (m->bodylen > 0 &&
	    (st = dkim_body(d, (u_char *)m->body, m->bodylen)) != DKIM_STAT_OK)
		return st;
	/*
	 * A last line without its CRLF: SMTP will add one (RFC 5321
	 * section 4.1.1.4), and both canonicalizations read the body as
	 * if it were there (RFC 6376 section 3.4); libopendkim refuses
	 * the body without it.
	 */
	if (m->bodylen > 0 &&
	    (m->bodylen < 2 || memcmp(m->body + m->bodylen - 2, "\r\n", 2)) &&
	    (st = dkim_body(d, (u_char *)"\r\n", 2)) != DKIM_STAT_OK)
		return st;
	return dkim_eom(d, NULL);
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
	u_char *sig = NULL;
	size_t siglen = 0;
	char *key = NULL;
	DKIM_STAT st;
	DKIM *d;
	int r = -1;

	if (dkim_key_check(s, k, why, sizeof(why)) < 0)
		goto out;
	/* libopendkim reads the key up to its NUL (design note 2). */
	key = xstrndup(k->pem, k->pemlen);
	d = dkim_sign(s->lib, (const u_char *)"herald", NULL, (u_char *)key,
	    (const u_char *)k->selector, (const u_char *)k->domain,
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
	    k->algo == DKIM_ED25519_SHA256 ? DKIM_SIGN_ED25519SHA256
					   : DKIM_SIGN_RSASHA256,
	    -1, &st);
	if (d == NULL) {
		snprintf(why, sizeof(why), "%s", dkim_getresultstr(st));
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

		snprintf(why, sizeof(why), "%s",
		    e != NULL && *e != '\0' ? e : dkim_getresultstr(st));
	}
	dkim_free(d);
out:
	if (r < 0)
		snprintf(err, errlen, "DKIM key %s for %s (%s): %s",
		    k->selector, k->domain, dkim_algo_name(k->algo), why);
	if (key != NULL)
		OPENSSL_clear_free(key, k->pemlen + 1);
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
	int r = 0;

	if (dkim_split(msg, len, &m, err, errlen) < 0 ||
	    dkim_check_header(&m, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < nkeys && r == 0; i++)
		r = dkim_sign_one(s, &keys[i], &m, &fields, err, errlen);
	if (r == 0 && fields.len > 0)
		buf_append(out, fields.data, fields.len);
	buf_free(&fields);
	return r;
}

/* ---- key generation ---- */

/* dkim_base64 - a malloc'd base64 of n bytes, no line breaks */
static char *
dkim_base64(const unsigned char *p, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
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
	size_t total = strlen(d);

	if (total == 0 || total > DKIM_DOMAIN_MAX)
		return false;
	for (;;) {
		size_t n = strspn(d, "abcdefghijklmnopqrstuvwxyz0123456789-");

		if (n == 0 || n > 63 || d[0] == '-' || d[n - 1] == '-')
			return false;
		if (d[n] == '\0')
			return true;
		if (d[n] != '.')
			return false;
		d += n + 1;
	}
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
