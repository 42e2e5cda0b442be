/*
 * tests/fuzz/fuzz.h - what every libFuzzer target shares (one target per .c
 * file here; `make fuzz` builds them, tests/bats/fuzz.bats runs them).
 *
 * kl logs each refusal on stderr with fprintf: the targets point stdio's
 * stderr at /dev/null (KL_FUZZ_LOG=1 keeps it), so millions of error lines
 * do not slow the run down. Sanitizer and libFuzzer reports write to fd 2
 * directly and still show. The jansson allocator is the wiping one, as in
 * every kl program.
 */
#ifndef KL_FUZZ_H
#define KL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kl_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (getenv("KL_FUZZ_LOG") == NULL) {
		FILE *null = fopen("/dev/null", "w");

		if (null != NULL)
			stderr = null;
	}
	kl_json_use_wiping_allocator();
	return 0;
}

/* The input as a NUL-terminated string (it may hold NULs before the end). */
static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The first line (without '\n') into a new string; *rest and *rlen what follows. */
static inline char *
fuzz_line(const uint8_t *data, size_t size, const uint8_t **rest, size_t *rlen)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;

	*rest = data + n + (nl != NULL);
	*rlen = size - n - (nl != NULL);
	return fuzz_str(data, n);
}

/* Write size bytes to path (created or truncated). */
static inline void
fuzz_write(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
}

/* Make the input the process's stdin (a memfd), as a pipe would give it. */
static inline void
fuzz_stdin(const uint8_t *data, size_t size)
{
	int fd = memfd_create("stdin", 0);

	if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t)size) ||
	    lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, STDIN_FILENO) != STDIN_FILENO)
		abort();
	close(fd);
}

/*
 * Files a target writes live in one private directory, removed at exit, on
 * /dev/shm when there is one: kl fsyncs what it writes atomically (the IMA
 * checkpoint), which on a disk would make each run a disk flush.
 */
static char fuzz_dirname[64];
static char fuzz_paths[8][128];

static void
fuzz_cleanup(void)
{
	for (size_t i = 0; i < 8; i++)
		if (fuzz_paths[i][0])
			unlink(fuzz_paths[i]);
	rmdir(fuzz_dirname);
}

/* dir/name, the same string for the same name (at most 8 names per target). */
static inline const char *
fuzz_path(const char *name)
{
	size_t i;

	if (fuzz_dirname[0] == '\0') {
		const char *t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");

		snprintf(fuzz_dirname, sizeof(fuzz_dirname), "%s/kl-fuzz-XXXXXX",
		    t && *t && strlen(t) < 40 ? t : "/tmp");
		if (mkdtemp(fuzz_dirname) == NULL)
			abort();
		atexit(fuzz_cleanup);
	}
	for (i = 0; i < 8 && fuzz_paths[i][0]; i++)
		if (strcmp(strrchr(fuzz_paths[i], '/') + 1, name) == 0)
			return fuzz_paths[i];
	if (i == 8)
		abort();
	snprintf(fuzz_paths[i], sizeof(fuzz_paths[i]), "%s/%s", fuzz_dirname, name);
	return fuzz_paths[i];
}

#endif
