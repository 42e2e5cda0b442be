/*
 * rusage [-s FILE] CMD ARGS...: run CMD, then write "wall cpu rss" to fd 3:
 * wall seconds, user+sys CPU seconds (microseconds kept) and the child's
 * peak RSS in KiB (wait4's ru_maxrss). Exit with CMD's status. scripts/bench
 * builds it into its work directory.
 *
 * -s FILE: also copy the child's /proc/PID/smaps to FILE as it exits (a
 * ptrace exit stop: its memory is still mapped, at its peak but for freed
 * heap), to say which library or heap each resident KiB belongs to. The
 * stop costs time: do not take CPU figures from a run with -s.
 *
 * Why not Python's subprocess and getrusage(RUSAGE_CHILDREN): Python starts
 * the child with vfork, and the kernel accounts the hiwater RSS of the mm an
 * exec replaces (the parent's, shared by vfork) to the child; every step then
 * "peaks" at Python's own 10.5 MiB. Here the child is a real fork of this
 * small program, so its RSS before exec is a few hundred KiB, below any step.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Copy /proc/PID/smaps to path. */
static void
copy_smaps(pid_t pid, const char *path)
{
	char src[64], buf[8192];
	FILE *in, *out;
	size_t n;

	snprintf(src, sizeof(src), "/proc/%d/smaps", (int)pid);
	if ((in = fopen(src, "r")) == NULL || (out = fopen(path, "w")) == NULL) {
		perror("rusage: smaps");
		if (in != NULL)
			fclose(in);
		return;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	fclose(out);
}

/*
 * Wait for the traced child to end, passing its signals on; at its exit
 * stop, copy its smaps. The last wait4 fills ru.
 */
static int
wait_traced(pid_t pid, const char *smaps, int *status, struct rusage *ru)
{
	int sig;

	for (;;) {
		if (wait4(pid, status, 0, ru) < 0)
			return -1;
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return 0;
		sig = WSTOPSIG(*status);
		if (sig == SIGTRAP && (*status >> 16) == PTRACE_EVENT_EXIT) {
			copy_smaps(pid, smaps);
			sig = 0;
		} else if (sig == SIGTRAP) {	/* the exec stop */
			ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACEEXIT);
			sig = 0;
		}
		ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
	}
}

int
main(int argc, char **argv)
{
	const char *smaps = NULL;
	struct timespec t0, t1;
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *out;

	if (argc > 2 && strcmp(argv[1], "-s") == 0) {
		smaps = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2) {
		fputs("usage: rusage [-s SMAPS] CMD [ARG...] (figures on fd 3)\n", stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((pid = fork()) < 0) {
		perror("rusage: fork");
		return 2;
	}
	if (pid == 0) {
		close(3);
		if (smaps != NULL && ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) {
			perror("rusage: ptrace");
			_exit(127);
		}
		execvp(argv[1], argv + 1);
		perror("rusage: exec");
		_exit(127);
	}
	if ((smaps != NULL ? wait_traced(pid, smaps, &status, &ru) :
	    wait4(pid, &status, 0, &ru)) < 0) {
		perror("rusage: wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if ((out = fdopen(3, "w")) == NULL) {
		perror("rusage: fd 3");
		return 2;
	}
	fprintf(out, "%.4f %.6f %ld\n",
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	    secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss);
	fclose(out);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
