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
/* The same with another mode (0644 for files without a secret), whatever the umask. */
int kl_file_write_atomic_mode(const char *path, const void *buf, size_t len, unsigned mode);
/*
 * The same without the two fsyncs, for reports that are rewritten every
 * cycle (kl-agent's status and metrics files): readers still never see half
 * a file, but after a power loss the file may be an older one, or on some
 * file systems empty, so a reader must take that. The fsyncs cost a steady
 * daemon cycle about 0.5 ms of CPU and 20 ms of wall (docs/performance.md).
 */
int kl_file_replace_mode(const char *path, const void *buf, size_t len, unsigned mode);

/*
 * Read a whole regular file (O_NOFOLLOW) of at most max bytes into a new
 * NUL-terminated buffer (*out, free()), length in *len.
 * Returns KL_OK, KL_PERM (missing, too big, not a regular file) or KL_TEMP.
 * If missing_ok and the file does not exist, returns KL_OK with *out NULL.
 */
int kl_file_read(const char *path, size_t max, int missing_ok, char **out, size_t *len);
/*
 * The same for a configuration file: symbolic links are followed (the
 * Kubernetes ConfigMap layout agent.conf -> ..data/agent.conf), a loop is
 * named as one. kl_file_read refuses any link: state files live in
 * keylime_dir, where a link would be an attack.
 */
int kl_file_read_config(const char *path, size_t max, int missing_ok, char **out, size_t *len);

/*
 * Open a measurement log for reading. When the open is not permitted and the
 * environment variable env names an inherited descriptor of the same file
 * (kl-agent opens the logs before it drops privileges, run_as), use a
 * duplicate of that descriptor, rewound to offset 0. Returns a descriptor
 * (O_CLOEXEC) or -1 with errno set.
 */
int kl_file_open_log(const char *path, const char *env);

/* mkdir -p with mode 0700 for the missing parts. KL_OK or KL_PERM. */
int kl_file_mkdirs(const char *dir);

#endif
