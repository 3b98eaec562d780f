/*
 * test_secret.c - sealed secrets and the key file (lib/secret.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/secret.h"

static const unsigned char key1[SECRET_KEY_BYTES] = { 1, 2, 3 };
static const unsigned char key2[SECRET_KEY_BYTES] = { 1, 2, 4 };

static void
test_round_trip(void **state)
{
	const char *msg = "s3cret 'pass\\word'";
	unsigned char *box, *box2;
	size_t boxlen, boxlen2, len;
	char *plain, err[256];

	(void)state;
	assert_int_equal(secret_seal(key1, msg, strlen(msg), &box, &boxlen), 0);
	assert_int_equal(boxlen, strlen(msg) + SECRET_BOX_OVERHEAD);
	assert_int_equal(
	    secret_open(key1, box, boxlen, &plain, &len, err, sizeof(err)), 0);
	assert_int_equal(len, strlen(msg));
	assert_string_equal(plain, msg);
	secret_free_plain(&plain, len);
	assert_null(plain);
	/* a fresh nonce each time */
	assert_int_equal(
	    secret_seal(key1, msg, strlen(msg), &box2, &boxlen2), 0);
	assert_memory_not_equal(box, box2, boxlen);
	free(box2);
	/* the empty secret */
	assert_int_equal(secret_seal(key1, "", 0, &box2, &boxlen2), 0);
	assert_int_equal(
	    secret_open(key1, box2, boxlen2, &plain, &len, err, sizeof(err)),
	    0);
	assert_int_equal(len, 0);
	assert_string_equal(plain, "");
	secret_free_plain(&plain, len);
	free(box2);
	free(box);
}

static void
test_refused(void **state)
{
	const char *msg = "hunter2";
	unsigned char *box;
	size_t boxlen, len, i;
	char *plain = (char *)1, err[256];

	(void)state;
	assert_int_equal(secret_seal(key1, msg, strlen(msg), &box, &boxlen), 0);
	err[0] = '\0';
	assert_int_equal(
	    secret_open(key2, box, boxlen, &plain, &len, err, sizeof(err)), -1);
	assert_null(plain);
	assert_non_null(strstr(err, "does not verify"));
	for (i = 0; i < boxlen; i++) {
		box[i] ^= 0x01;
		assert_int_equal(secret_open(key1, box, boxlen, &plain, &len,
				     err, sizeof(err)),
		    -1);
		box[i] ^= 0x01;
	}
	for (i = 0; i < boxlen; i++)
		assert_int_equal(
		    secret_open(key1, box, i, &plain, &len, err, sizeof(err)),
		    -1);
	assert_int_equal(
	    secret_open(key1, box, 10, &plain, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(
	    secret_open(key1, box, boxlen, &plain, &len, err, sizeof(err)), 0);
	secret_free_plain(&plain, len);
	free(box);
}

static void
test_key_file(void **state)
{
	char dir[] = "/tmp/test_secret.XXXXXX", path[256], err[256];
	unsigned char k1[SECRET_KEY_BYTES], k2[SECRET_KEY_BYTES];
	unsigned char zero[SECRET_KEY_BYTES] = { 0 };
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret.key", dir);
	/* absent and not to be created */
	assert_int_equal(
	    secret_key_load(path, false, k1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	/* created 0600, then read back the same */
	assert_int_equal(secret_key_load(path, true, k1, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, SECRET_KEY_BYTES);
	assert_memory_not_equal(k1, zero, SECRET_KEY_BYTES);
	assert_int_equal(secret_key_load(path, true, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, SECRET_KEY_BYTES);
	assert_int_equal(secret_key_load(path, false, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, SECRET_KEY_BYTES);
	/* readable by others: refused */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(
	    secret_key_load(path, false, k2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0644"));
	/* the wrong size: refused */
	assert_int_equal(unlink(path), 0);
	assert_non_null(f = fopen(path, "w"));
	fputs("short", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(secret_key_load(path, true, k2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a key file"));
	assert_int_equal(unlink(path), 0);
	/* no temporary file left behind */
	assert_int_equal(rmdir(dir), 0);
}

/* keys derived from the node's master key, and the hex forms */
static void
test_node_key(void **state)
{
	char dir[] = "/tmp/test_secret.XXXXXX", path[256], err[256];
	unsigned char k1[SECRET_KEY_BYTES], k2[SECRET_KEY_BYTES],
	    k3[SECRET_KEY_BYTES];
	char *hex, *plain;
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secrets", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	/* no master key and none to make */
	assert_int_equal(
	    secret_node_key(dir, "dbsource", false, k1, err, sizeof(err)), -1);
	assert_int_equal(
	    secret_node_key(dir, "dbsource", true, k1, err, sizeof(err)), 0);
	assert_int_equal(
	    secret_node_key(dir, "dbsource", false, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, SECRET_KEY_BYTES);
	assert_int_equal(
	    secret_node_key(dir, "unsubsc1", false, k3, err, sizeof(err)), 0);
	assert_memory_not_equal(k1, k3, SECRET_KEY_BYTES);
	/* the purpose is 8 bytes exactly */
	assert_int_equal(
	    secret_node_key(dir, "short", false, k3, err, sizeof(err)), -1);
	/* the master key itself is not the derived key */
	assert_int_equal(secret_key_load(strcat(path, "/master.key"), false, k3,
			     err, sizeof(err)),
	    0);
	assert_memory_not_equal(k1, k3, SECRET_KEY_BYTES);
	/* hex round trip; another purpose's key cannot open it */
	assert_non_null(hex = secret_seal_hex(k1, "pa'ss w0rd"));
	assert_int_equal(
	    secret_open_hex(k1, hex, &plain, &len, err, sizeof(err)), 0);
	assert_string_equal(plain, "pa'ss w0rd");
	secret_free_plain(&plain, len);
	assert_int_equal(
	    secret_open_hex(k3, hex, &plain, &len, err, sizeof(err)), -1);
	assert_int_equal(
	    secret_open_hex(k1, "zz", &plain, &len, err, sizeof(err)), -1);
	free(hex);
	assert_int_equal(unlink(path), 0);
	path[strlen(path) - strlen("/master.key")] = '\0';
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_node_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
