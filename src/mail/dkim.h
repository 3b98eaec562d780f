/*
 * dkim - DKIM signatures (RFC 6376, RFC 8463): RSA with libopendkim,
 * Ed25519 with OpenSSL; key generation with OpenSSL, and the key files
 * of the data directory.
 *
 * Signing: relaxed/relaxed canonicalization, SHA-256, the header fields
 * RFC 6376 section 5.4.1 recommends when present (From is always
 * signed and oversigned, so that a second From cannot be added), the
 * whole body (no l= tag).  One key gives one DKIM-Signature field; an
 * RSA key and an Ed25519 key for the same domain give two (dual
 * signature, RFC 8463 section 5).  Ed25519 signatures are made here,
 * in the form libopendkim gives them, because Debian 12's libopendkim
 * (2.11.0~beta2) leaks about 480 bytes per Ed25519 signature, the key
 * it loads (fixed upstream in OpenDKIM pull request #321); see dkim.c.
 *
 * Key files: <data>/dkim/<domain>/<selector>.rsa.pem and
 * <selector>.ed25519.pem (PEM, PKCS#8), directories 0700, files 0600.
 * `herald dkim keygen` writes them; the MTA loads, for each algorithm,
 * the most recently modified one (dkim_keys_load()).
 *
 * A struct dkim_signer belongs to one thread (libopendkim handles are
 * not shared); worker threads each make their own.
 *
 * Names: libopendkim's own functions start with dkim_ too (dkim_sign,
 * dkim_free, dkim_header...); ours must never take one of them.
 */
#ifndef HERALD_MAIL_DKIM_H
#define HERALD_MAIL_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"

enum dkim_algo { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

/* Limits of dkim_sign_message */
#define DKIM_HEADER_MAX (1024 * 1024) /* bytes of the header section */
#define DKIM_FIELDS_MAX 1000	      /* header fields */

struct dkim_key {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	enum dkim_algo algo;
	const char *pem; /* private key, PEM (PKCS#8 or traditional) */
	size_t pemlen;
};

struct dkim_signer;

/* dkim_signer_new - NULL with err when libopendkim cannot start */
struct dkim_signer *dkim_signer_new(char *err, size_t errlen);
/* dkim_signer_free - free *sp and set it to NULL; NULL ok */
void dkim_signer_free(struct dkim_signer **sp);

/*
 * dkim_sign_message - sign the message msg (len bytes, CRLF lines,
 * header then blank line then body; not dot-stuffed) with each of the
 * nkeys keys and append the DKIM-Signature fields, folded, each ending
 * in CRLF, to out, in the order of keys.  The fields go in front of the
 * message as they are.  A last line without its CRLF is signed as if
 * it had the one SMTP adds.  Returns 0, or -1 with err saying what
 * failed and nothing appended to out: a bad key (one that does not
 * parse, is not of the key's algorithm, or is RSA under 1024 bits, or
 * a selector or domain that is not made of [A-Za-z0-9._-]) names its
 * selector and domain; a message with no From: field, a
 * header line that is not a field (the error names the line), more
 * than DKIM_FIELDS_MAX fields or DKIM_HEADER_MAX bytes of header cannot
 * be signed.  The keys are not copied or kept.
 */
int dkim_sign_message(struct dkim_signer *s, const struct dkim_key *keys,
    size_t nkeys, const char *msg, size_t len, struct buf *out, char *err,
    size_t errlen);

/*
 * dkim_keygen - make a new private key: RSA with bits (2048 if 0;
 * 1024..4096) or Ed25519 (bits ignored).  *pem_r (PEM, PKCS#8) and
 * *txt_r (the DNS TXT record's value: "v=DKIM1; k=rsa; p=..." or
 * "v=DKIM1; k=ed25519; p=...") are malloc'd.  Returns 0, or -1 with err.
 */
int dkim_keygen(enum dkim_algo algo, int bits, char **pem_r, char **txt_r,
    char *err, size_t errlen);

/*
 * dkim_public_txt - the TXT record value for an existing private key
 * (for `herald dkim show`).  *txt_r malloc'd.  Returns 0, or -1 with err.
 */
int dkim_public_txt(const char *pem, size_t pemlen, enum dkim_algo *algo_r,
    char **txt_r, char *err, size_t errlen);

/* dkim_algo_name - "rsa-sha256" or "ed25519-sha256" */
const char *dkim_algo_name(enum dkim_algo a);
/* dkim_algo_tag - "rsa" or "ed25519": the k= tag and the key file's tag */
const char *dkim_algo_tag(enum dkim_algo a);

/* ---- key files ---- */

/*
 * dkim_selector_valid - whether s can be a selector here: 1-63
 * characters of [a-z0-9-], not starting or ending with '-' (one DNS
 * label, lower case, so that it is also a safe file name).
 */
bool dkim_selector_valid(const char *s);
/*
 * dkim_domain_valid - whether d is a normalized domain (lower-case
 * labels of [a-z0-9-], no trailing dot, at most 253 bytes): what may
 * name a key directory.
 */
bool dkim_domain_valid(const char *d);

/* dkim_key_dir - "<data_dir>/dkim/<domain>" (malloc'd); domain valid */
char *dkim_key_dir(const char *data_dir, const char *domain);
/*
 * dkim_key_path - "<data_dir>/dkim/<domain>/<selector>.<tag>.pem"
 * (malloc'd); domain and selector valid.
 */
char *dkim_key_path(const char *data_dir, const char *domain,
    const char *selector, enum dkim_algo algo);

struct dkim_key_file {
	const char *domain;
	const char *selector;
	enum dkim_algo algo;
	const char *path;
	struct timespec mtime;
};

/*
 * dkim_keys_list - call cb for every key file of domain, or of every
 * domain when domain is NULL, sorted by domain then selector.  Other
 * files are ignored; a missing directory has no keys.  cb returns 0 to
 * go on, non-zero to stop (that value is returned).  Returns 0, or -1
 * with err (an invalid domain, an unreadable directory).
 */
int dkim_keys_list(const char *data_dir, const char *domain,
    int (*cb)(void *arg, const struct dkim_key_file *f), void *arg, char *err,
    size_t errlen);

/*
 * dkim_key_read - the content of the key file at path (at most 64 KiB),
 * malloc'd and NUL-terminated, its length in *len_r; NULL with err
 * naming the file.  Wipe it (OPENSSL_cleanse) before freeing it.
 */
char *dkim_key_read(const char *path, size_t *len_r, char *err, size_t errlen);

/*
 * struct dkim_keyset - the keys a domain signs with: at most one per
 * algorithm, RSA first.  The keys point into the set's own storage.
 */
#define DKIM_KEYSET_MAX 4
struct dkim_keyset {
	size_t n;
	struct dkim_key keys[DKIM_KEYSET_MAX];
	char *domain; /* owned storage of the keys' strings */
	char *selector[DKIM_KEYSET_MAX];
	char *pem[DKIM_KEYSET_MAX];
};

/*
 * dkim_keys_load - fill ks with the signing keys of domain (any case;
 * keys carry it in lower case): for each algorithm, the key file
 * modified last (ties: the greater selector).  Returns 0 (ks->n may be
 * 0: the domain has no keys), or -1 with err naming the file or the
 * domain; ks is then empty.  Free ks with dkim_keyset_free either way.
 */
int dkim_keys_load(const char *data_dir, const char *domain,
    struct dkim_keyset *ks, char *err, size_t errlen);
/* dkim_keyset_free - wipe and free what ks owns; ks is left empty */
void dkim_keyset_free(struct dkim_keyset *ks);

#endif
