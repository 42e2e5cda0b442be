/*
 * kl_file.h - files that must never be half-written or readable by others.
 */
#ifndef KL_FILE_H
#define KL_FILE_H

#include <stddef.h>

/*
 * Replace path with buf atomically: write "<path>.tmp.<pid>" (O_EXCL,
 * O_NOFOLLOW, mode 0600), fsync it, rename it over path, fsync the directory.
 * On any failure the old file is intact and the temporary file is removed.
 * Returns KL_OK, KL_PERM (path unusable: a symlink, no such directory,
 * permission) or KL_TEMP (disk full, I/O error). Logs one line on failure.
 */
int kl_file_write_atomic(const char *path, const void *buf, size_t len);

/*
 * Read a whole regular file (O_NOFOLLOW) of at most max bytes into a new
 * NUL-terminated buffer (*out, free()), length in *len.
 * Returns KL_OK, KL_PERM (missing, too big, not a regular file) or KL_TEMP.
 * If missing_ok and the file does not exist, returns KL_OK with *out NULL.
 */
int kl_file_read(const char *path, size_t max, int missing_ok, char **out, size_t *len);

/* mkdir -p with mode 0700 for the missing parts. KL_OK or KL_PERM. */
int kl_file_mkdirs(const char *dir);

#endif
