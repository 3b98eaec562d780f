/*
 * secret - secrets at rest (passwords of contact sources and the like),
 * sealed with libsodium's secretbox (XSalsa20-Poly1305) under one key
 * kept in a file of its own.
 *
 * A box is nonce (24 bytes, random) || MAC (16) || ciphertext, so it is
 * SECRET_BOX_OVERHEAD bytes longer than the plain text.  Opening checks
 * the MAC: a box that was changed, cut short or sealed under another key
 * is refused, never half-decrypted.
 */
#ifndef HERALD_LIB_SECRET_H
#define HERALD_LIB_SECRET_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_KEY_BYTES 32
#define SECRET_BOX_OVERHEAD (24 + 16)

/*
 * secret_key_load - read the 32-byte key from path into key.  When the
 * file does not exist and create is true, make a random key in a new
 * 0600 file (written to a temporary file, fsync'd, then linked into
 * place so that no one ever sees a short key and an existing file is
 * never replaced; a concurrent creator's key wins and is read).  A key
 * file that is not a regular file of exactly 32 bytes, or is readable by
 * group or others, is refused.  Returns 0, or -1 with err naming the path.
 */
int secret_key_load(const char *path, bool create,
    unsigned char key[SECRET_KEY_BYTES], char *err, size_t errlen);

/*
 * secret_seal - seal len bytes of plain under key into a new box
 * (*box_r, malloc'd, *boxlen_r = len + SECRET_BOX_OVERHEAD).  Returns 0,
 * or -1 when out of memory or libsodium cannot start.
 */
int secret_seal(const unsigned char key[SECRET_KEY_BYTES], const void *plain,
    size_t len, unsigned char **box_r, size_t *boxlen_r);

/*
 * secret_open - check and decrypt a box made by secret_seal into a new
 * NUL-terminated buffer (*plain_r, malloc'd; *len_r bytes before the
 * NUL).  Returns 0, or -1 with err on a forged, truncated or wrong-key
 * box (nothing is allocated then).  Free the plain text with
 * secret_free_plain.
 */
int secret_open(const unsigned char key[SECRET_KEY_BYTES],
    const unsigned char *box, size_t boxlen, char **plain_r, size_t *len_r,
    char *err, size_t errlen);

/* secret_free_plain - wipe and free a plain text of secret_open; NULLs *pp */
void secret_free_plain(char **pp, size_t len);

/*
 * secret_node_key - the key for purpose (exactly 8 characters, e.g.
 * "dbsource") derived (crypto_kdf) from the node's master key,
 * <data_dir>/secrets/master.key, which `herald init` makes (and this,
 * when create is true and it is missing).  One master key to keep with
 * the backups; a different key for each use.  0, or -1 with err.
 */
int secret_node_key(const char *data_dir, const char *purpose, bool create,
    unsigned char key[SECRET_KEY_BYTES], char *err, size_t errlen);

/* secret_seal_hex - secret_seal, as hex text (malloc'd); NULL when out of
   memory */
char *secret_seal_hex(
    const unsigned char key[SECRET_KEY_BYTES], const char *plain);

/* secret_open_hex - secret_open of a secret_seal_hex text */
int secret_open_hex(const unsigned char key[SECRET_KEY_BYTES], const char *hex,
    char **plain_r, size_t *len_r, char *err, size_t errlen);

#endif
