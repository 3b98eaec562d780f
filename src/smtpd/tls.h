/*
 * tls - OpenSSL contexts for the SMTP listeners, and the self-signed
 * certificate `herald init` makes so that TLS works out of the box.
 */
#ifndef HERALD_SMTPD_TLS_H
#define HERALD_SMTPD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * tls_server_ctx - a server context with the certificate chain and key
 * from PEM files; TLS 1.2 and later.  NULL with err on failure.
 */
SSL_CTX *tls_server_ctx(
    const char *cert, const char *key, char *err, size_t errlen);
/*
 * tls_make_self_signed - write a new P-256 key (mode 0600) and a
 * self-signed certificate for hostname, valid ten years.  0, or -1 with
 * err.
 */
int tls_make_self_signed(const char *cert, const char *key,
    const char *hostname, char *err, size_t errlen);
/* tls_error - the last OpenSSL error as text into out; returns out */
const char *tls_error(char *out, size_t n);

#endif
