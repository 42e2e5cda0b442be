/* kl_file.c - see kl_file.h. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kl_file.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

static int
errno_rc(int e)
{
	return (e == ENOSPC || e == EIO || e == EINTR || e == EAGAIN ||
	    e == ENOMEM || e == EDQUOT) ? KL_TEMP : KL_PERM;
}

static int
fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (copy == NULL)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = -1;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int
kl_file_write_atomic(const char *path, const void *buf, size_t len)
{
	return kl_file_write_atomic_mode(path, buf, len, 0600);
}

/* Write "<path>.tmp.<pid>" and rename it over path; fsync both when durable. */
static int
replace(const char *path, const void *buf, size_t len, unsigned mode, int durable)
{
	char tmp[4096];
	const char *p = buf;
	struct stat st;
	int fd, e;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return kl_fail(KL_PERM, "%s: path too long", path);
	/* rename() would replace a symlink, not follow it; refuse it anyway. */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return kl_fail(KL_PERM, "%s: exists and is not a regular file", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		e = errno;
		return kl_fail(errno_rc(e), "%s: create: %s", tmp, strerror(e));
	}
	/* The umask (077 in every kl program) would narrow a wider mode. */
	if (mode != 0600 && fchmod(fd, (mode_t)mode) != 0)
		goto fail;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		p += n;
		len -= (size_t)n;
	}
	if (durable && fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	if (durable && fsync_dir_of(path) != 0)
		kl_warn("%s: fsync of its directory failed: %s", path, strerror(errno));
	return KL_OK;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return kl_fail(errno_rc(e), "%s: write: %s", path, strerror(e));
}

int
kl_file_write_atomic_mode(const char *path, const void *buf, size_t len, unsigned mode)
{
	return replace(path, buf, len, mode, 1);
}

int
kl_file_replace_mode(const char *path, const void *buf, size_t len, unsigned mode)
{
	return replace(path, buf, len, mode, 0);
}

/*
 * O_NONBLOCK: opening a FIFO must not wait for a writer (every program hung
 * in open() on a FIFO as agent.conf); fstat then refuses anything that is
 * not a regular file. It does not change how a regular file is read.
 */
static int
read_file(const char *path, size_t max, int missing_ok, int follow, char **out, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd, e;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0) {
		e = errno;
		if (e == ENOENT && missing_ok)
			return KL_OK;
		if (e == ELOOP && !follow)
			return kl_fail(KL_PERM, "%s: a symbolic link, refused for a state file", path);
		if (e == ELOOP)
			return kl_fail(KL_PERM, "%s: a symbolic link loop", path);
		return kl_fail(errno_rc(e), "%s: open: %s", path, strerror(e));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return kl_fail(KL_PERM, "%s: not a regular file", path);
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return kl_fail(KL_PERM, "%s: larger than %zu bytes", path, max);
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return kl_fail(KL_TEMP, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(buf);
		return kl_fail(KL_TEMP, "%s: short read", path);
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return KL_OK;
}

int
kl_file_read(const char *path, size_t max, int missing_ok, char **out, size_t *len)
{
	return read_file(path, max, missing_ok, 0, out, len);
}

int
kl_file_read_config(const char *path, size_t max, int missing_ok, char **out, size_t *len)
{
	return read_file(path, max, missing_ok, 1, out, len);
}

int
kl_file_mkdirs(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return kl_fail(KL_PERM, "%s: bad directory name", dir);
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return kl_fail(KL_PERM, "%s: mkdir: %s", buf, strerror(errno));
			*p = c;
			if (c == '\0')
				break;
		}
	}
	return KL_OK;
}

int
kl_file_open_log(const char *path, const char *env)
{
	const char *v = env ? getenv(env) : NULL;
	struct stat a, b;
	char *end;
	long n;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)
		return fd;
	e = errno;
	if ((e != EACCES && e != EPERM) || v == NULL)
		return -1;
	n = strtol(v, &end, 10);
	/* Only the very file asked for: same device and inode. */
	if (*v == '\0' || *end != '\0' || n < 3 || n > 65535 || fstat((int)n, &a) != 0 ||
	    stat(path, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		errno = e;
		return -1;
	}
	if ((fd = fcntl((int)n, F_DUPFD_CLOEXEC, 3)) < 0)
		return -1;
	(void)lseek(fd, 0, SEEK_SET);
	kl_debug("%s: using the descriptor kl-agent opened (%s=%ld)", path, env, n);
	return fd;
}
