/*
 * secret.c - secretbox sealing and the key file of secret.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/secret.h"

#if SECRET_BOX_OVERHEAD !=                                                     \
    crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES
#error "SECRET_BOX_OVERHEAD does not match libsodium"
#endif
#if SECRET_KEY_BYTES != crypto_secretbox_KEYBYTES
#error "SECRET_KEY_BYTES does not match libsodium"
#endif

/* secret_init - start libsodium once; sodium_init is idempotent */
static int
secret_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

/* secret_read_key - read the key from the open fd of path */
static int
secret_read_key(int fd, const char *path, unsigned char key[SECRET_KEY_BYTES],
    char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != SECRET_KEY_BYTES) {
		snprintf(err, errlen,
		    "%s: not a key file (a regular file of %d bytes)", path,
		    SECRET_KEY_BYTES);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "%s: readable by others (mode %04o), should be 0600", path,
		    (unsigned)(st.st_mode & 07777));
		return -1;
	}
	do
		n = read(fd, key, SECRET_KEY_BYTES);
	while (n == -1 && errno == EINTR);
	if (n != SECRET_KEY_BYTES) {
		snprintf(err, errlen, "%s: %s", path,
		    n == -1 ? strerror(errno) : "short read");
		sodium_memzero(key, SECRET_KEY_BYTES);
		return -1;
	}
	return 0;
}

/* dir_of - the directory part of path into out ("." when none) */
static void
dir_of(const char *path, char *out, size_t outlen)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, outlen, ".");
	else if (slash == path)
		snprintf(out, outlen, "/");
	else
		snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/*
 * secret_create_key - a new random key in path: a temporary file beside
 * it, fsync'd, then link()ed, which fails rather than replace.  Returns
 * 0 (created), 1 (path appeared meanwhile) or -1.
 */
static int
secret_create_key(const char *path, char *err, size_t errlen)
{
	unsigned char key[SECRET_KEY_BYTES];
	char tmp[4096], dir[4096];
	int fd, rc = -1;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
		(long)getpid()) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	(void)unlink(tmp); /* left over by a crash of this pid */
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	randombytes_buf(key, sizeof(key));
	if (fs_write_all(fd, key, sizeof(key)) == -1 || fsync(fd) == -1)
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
	else if (link(tmp, path) == 0)
		rc = 0;
	else if (errno == EEXIST)
		rc = 1;
	else
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	sodium_memzero(key, sizeof(key));
	(void)close(fd);
	(void)unlink(tmp);
	dir_of(path, dir, sizeof(dir));
	if (rc == 0 && fs_fsync_dir(dir) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		rc = -1;
	}
	return rc;
}

int
secret_key_load(const char *path, bool create,
    unsigned char key[SECRET_KEY_BYTES], char *err, size_t errlen)
{
	int fd, rc;

	if (secret_init() == -1) {
		snprintf(err, errlen, "libsodium cannot start");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 && errno == ENOENT && create) {
		if (secret_create_key(path, err, errlen) == -1)
			return -1;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	rc = secret_read_key(fd, path, key, err, errlen);
	(void)close(fd);
	return rc;
}

int
secret_seal(const unsigned char key[SECRET_KEY_BYTES], const void *plain,
    size_t len, unsigned char **box_r, size_t *boxlen_r)
{
	unsigned char *box;

	*box_r = NULL;
	*boxlen_r = 0;
	if (secret_init() == -1 || len > SIZE_MAX - SECRET_BOX_OVERHEAD ||
	    (box = malloc(len + SECRET_BOX_OVERHEAD)) == NULL)
		return -1;
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	if (crypto_secretbox_easy(
		box + crypto_secretbox_NONCEBYTES, plain, len, box, key) != 0) {
		free(box);
		return -1;
	}
	*box_r = box;
	*boxlen_r = len + SECRET_BOX_OVERHEAD;
	return 0;
}

int
secret_open(const unsigned char key[SECRET_KEY_BYTES], const unsigned char *box,
    size_t boxlen, char **plain_r, size_t *len_r, char *err, size_t errlen)
{
	unsigned char *plain;
	size_t len;

	*plain_r = NULL;
	*len_r = 0;
	if (secret_init() == -1) {
		snprintf(err, errlen, "libsodium cannot start");
		return -1;
	}
	if (boxlen < SECRET_BOX_OVERHEAD) {
		snprintf(
		    err, errlen, "sealed secret truncated (%zu bytes)", boxlen);
		return -1;
	}
	len = boxlen - SECRET_BOX_OVERHEAD;
	if ((plain = malloc(len + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (crypto_secretbox_open_easy(plain, box + crypto_secretbox_NONCEBYTES,
		boxlen - crypto_secretbox_NONCEBYTES, box, key) != 0) {
		sodium_memzero(plain, len + 1);
		free(plain);
		snprintf(err, errlen,
		    "sealed secret does not verify (forged, damaged or "
		    "another key)");
		return -1;
	}
	plain[len] = '\0';
	*plain_r = (char *)plain;
	*len_r = len;
	return 0;
}

void
secret_free_plain(char **pp, size_t len)
{
	if (*pp == NULL)
		return;
	sodium_memzero(*pp, len);
	free(*pp);
	*pp = NULL;
}

int
secret_node_key(const char *data_dir, const char *purpose, bool create,
    unsigned char key[SECRET_KEY_BYTES], char *err, size_t errlen)
{
	unsigned char master[SECRET_KEY_BYTES];
	char *path = fs_path_join(data_dir, "secrets/master.key");
	int ret;

	if (strlen(purpose) != crypto_kdf_CONTEXTBYTES) {
		snprintf(err, errlen, "secret: purpose '%s' is not %d bytes",
		    purpose, crypto_kdf_CONTEXTBYTES);
		free(path);
		return -1;
	}
	ret = secret_key_load(path, create, master, err, errlen);
	free(path);
	if (ret < 0)
		return -1;
	ret = crypto_kdf_derive_from_key(
	    key, SECRET_KEY_BYTES, 1, purpose, master);
	sodium_memzero(master, sizeof(master));
	if (ret != 0) {
		snprintf(err, errlen, "secret: cannot derive a key");
		return -1;
	}
	return 0;
}

char *
secret_seal_hex(const unsigned char key[SECRET_KEY_BYTES], const char *plain)
{
	unsigned char *box;
	size_t boxlen;
	char *hex;

	if (secret_seal(key, plain, strlen(plain), &box, &boxlen) < 0)
		return NULL;
	hex = malloc(boxlen * 2 + 1);
	if (hex != NULL)
		sodium_bin2hex(hex, boxlen * 2 + 1, box, boxlen);
	free(box);
	return hex;
}

int
secret_open_hex(const unsigned char key[SECRET_KEY_BYTES], const char *hex,
    char **plain_r, size_t *len_r, char *err, size_t errlen)
{
	size_t n = strlen(hex) / 2, boxlen;
	unsigned char *box = malloc(n + 1);
	int ret;

	if (box == NULL) {
		snprintf(err, errlen, "secret: out of memory");
		return -1;
	}
	if (sodium_hex2bin(box, n, hex, strlen(hex), NULL, &boxlen, NULL) !=
	    0) {
		free(box);
		snprintf(err, errlen, "secret: not a hex box");
		return -1;
	}
	ret = secret_open(key, box, boxlen, plain_r, len_r, err, errlen);
	free(box);
	return ret;
}
