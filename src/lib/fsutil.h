/*
 * fsutil - file system helpers: directories, whole-file I/O, syncing.
 */
#ifndef HERALD_LIB_FSUTIL_H
#define HERALD_LIB_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* fs_mkdirs - create path and its parents with mode; 0 or -1 (errno) */
int fs_mkdirs(const char *path, mode_t mode);
/* fs_write_all - write all n bytes, retrying short writes; 0 or -1 */
int fs_write_all(int fd, const void *p, size_t n);
/* fs_pwrite_all - pwrite all n bytes at off; 0 or -1 */
int fs_pwrite_all(int fd, const void *p, size_t n, off_t off);
/*
 * fs_write_file_atomic - write data to path durably: a temporary file,
 * fsync, rename, fsync of the directory.  Returns 0 or -1 (errno).
 */
int fs_write_file_atomic(
    const char *path, const void *data, size_t n, mode_t mode);
/* fs_fsync_dir - fsync the directory path; 0 or -1 */
int fs_fsync_dir(const char *path);
/* fs_path_join - a new string "dir/name" (free it) */
char *fs_path_join(const char *dir, const char *name);
/* fs_exists - whether path exists */
int fs_exists(const char *path);

#endif
