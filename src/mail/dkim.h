/*
 * dkim - DKIM signatures (RFC 6376, RFC 8463) with libopendkim, and key
 * generation with OpenSSL.
 *
 * Signing: relaxed/relaxed canonicalization, SHA-256, the header fields
 * RFC 6376 section 5.4.1 recommends when present (From is always
 * signed and oversigned, so that a second From cannot be added), the
 * whole body (no l= tag).  One key gives one DKIM-Signature field; an
 * RSA key and an Ed25519 key for the same domain give two (dual
 * signature, RFC 8463 section 5).
 *
 * A struct dkim_signer belongs to one thread (libopendkim handles are
 * not shared); worker threads each make their own.
 */
#ifndef HERALD_MAIL_DKIM_H
#define HERALD_MAIL_DKIM_H

#include <stddef.h>

#include "lib/buf.h"

enum dkim_algo { DKIM_RSA_SHA256, DKIM_ED25519_SHA256 };

struct dkim_key {
	const char *domain;   /* d= */
	const char *selector; /* s= */
	enum dkim_algo algo;
	const char *pem;      /* private key, PEM (PKCS#8 or traditional) */
	size_t pemlen;
};

struct dkim_signer;

/* dkim_signer_new - NULL with err when libopendkim cannot start */
struct dkim_signer *dkim_signer_new(char *err, size_t errlen);
void dkim_signer_free(struct dkim_signer **sp);

/*
 * dkim_sign - sign the message msg (len bytes, CRLF lines, header then
 * blank line then body; not dot-stuffed) with each of the nkeys keys and
 * append the DKIM-Signature fields, folded, each ending in CRLF, to out.
 * The fields go in front of the message as they are.  Returns 0, or -1
 * with err saying what failed (a bad key names its domain and selector;
 * a message with no From: field cannot be signed).
 */
int dkim_sign(struct dkim_signer *s, const struct dkim_key *keys,
    size_t nkeys, const char *msg, size_t len, struct buf *out, char *err,
    size_t errlen);

/*
 * dkim_keygen - make a new private key: RSA with bits (2048 if 0) or
 * Ed25519.  *pem_r (PEM, PKCS#8) and *txt_r (the DNS TXT record's value:
 * "v=DKIM1; k=rsa; p=..." or "v=DKIM1; k=ed25519; p=...") are malloc'd.
 * Returns 0, or -1 with err.
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

#endif
