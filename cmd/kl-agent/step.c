/*
 * step.c - run one step program: fork, exec (never a shell), the document
 * into its stdin pipe, its stdout pipe read back, its exit status reaped.
 *
 * One poll() loop serves both pipes and the signalfd: a large document can
 * be written while the step already answers (no deadlock), and TERM/INT is
 * passed on to the step at once. The document holds the bearer token, so it
 * only ever travels through these pipes; buffers are wiped after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

#define STEP_GRACE_MS 10000	/* after SIGTERM, before SIGKILL */

struct buf {
	char *p;
	size_t len, cap;
};

static void
buf_wipe(struct buf *b)
{
	kl_secret_free(b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

/* The document, compact, plus a newline, in a buffer we own (and wipe). */
static int
serialize(const json_t *doc, struct buf *b)
{
	size_t n;

	if ((b->p = kl_json_dump(doc, &n)) == NULL)
		return -1;
	b->p[n] = '\n';	/* over the NUL */
	b->len = b->cap = n + 1;
	return 0;
}

/* Append what fd has now. Returns 1 on EOF or error, 0 while open, -1 when too big. */
static int
read_some(int fd, struct buf *b)
{
	for (;;) {
		ssize_t n;

		if (b->len == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 65536;
			char *np;

			if (b->cap > KL_STDIN_MAX)
				return -1;
			if ((np = malloc(cap)) == NULL)
				return -1;
			/* realloc would leave a copy of the token behind. */
			if (b->len)
				memcpy(np, b->p, b->len);
			kl_secret_free(b->p, b->cap);
			b->p = np;
			b->cap = cap;
		}
		n = read(fd, b->p + b->len, b->cap - b->len);
		if (n > 0) {
			b->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return 1;
	}
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
child_exec(struct agent *a, pid_t parent, int in_fd, int out_fd)
{
	char line[PATH_MAX + 128];
	int n;

	sys_signals_child();
	/* A step must not outlive an agent killed with SIGKILL. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(KL_TEMP);
	if (dup2(in_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(KL_TEMP);
	execv(a->fwd[0], a->fwd);
	n = snprintf(line, sizeof(line), "%s: error: exec %s: %s\n", kl_progname,
	    a->fwd[0], strerror(errno));
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		_exit(KL_PERM);
	_exit(KL_PERM);
}

static int
all_space(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (b->p[i] != ' ' && b->p[i] != '\t' && b->p[i] != '\n' && b->p[i] != '\r')
			return 0;
	return 1;
}

int
step_run(struct agent *a, const char *name, const json_t *in, int *code, json_t **out)
{
	char path[PATH_MAX], what[64];
	struct buf ib = { 0 }, ob = { 0 };
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 };
	int status = 0, reaped = 0, stopped = 0, timed_out = 0, too_big = 0;
	uint64_t deadline, limit_ms, kill_at = 0;
	size_t off = 0;
	pid_t pid;

	*code = KL_PERM;
	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", a->step_dir, name) >= (int)sizeof(path))
		return kl_fail(KL_OK, "%s/%s: path too long", a->step_dir, name);
	if (serialize(in, &ib) != 0) {
		*code = KL_TEMP;
		return kl_fail(KL_OK, "%s: cannot encode the document", name);
	}
	if (pipe2(inp, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0) {
		*code = KL_TEMP;
		kl_err("%s: pipe: %s", name, strerror(errno));
		goto out;
	}
	a->fwd[0] = path;
	pid = fork();
	if (pid < 0) {
		*code = KL_TEMP;
		kl_err("%s: fork: %s", name, strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(a, getppid(), inp[0], outp[1]);
	close_fd(&inp[0]);
	close_fd(&outp[1]);
	fcntl(inp[1], F_SETFL, O_NONBLOCK);
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	/* Steps have their own HTTP timeouts; this only catches a hung step. */
	limit_ms = 120000u + 10u * (uint64_t)(a->cfg.timeout_ms > 0 ? a->cfg.timeout_ms : 0);
	deadline = kl_now_ms() + limit_ms;

	while (!reaped) {
		struct pollfd p[3];
		uint64_t now, until;
		int np = 0, wait_ms;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			reaped = 1;
			/* A grandchild may still hold the pipe: take what is there. */
			if (outp[0] >= 0 && read_some(outp[0], &ob) < 0)
				too_big = 1;
			break;
		}
		now = kl_now_ms();
		if (!stopped && now >= deadline) {
			kl_err("%s: not done after %llu s: stopping it", name,
			    (unsigned long long)(limit_ms / 1000));
			timed_out = stopped = 1;
			kill(pid, SIGTERM);
			kill_at = now + STEP_GRACE_MS;
		}
		if (kill_at && now >= kill_at) {
			kl_err("%s: still running %d s after SIGTERM: killing it", name,
			    STEP_GRACE_MS / 1000);
			kill(pid, SIGKILL);
			kill_at = 0;
		}
		until = kill_at ? kill_at : deadline;
		wait_ms = until > now ? (int)(until - now) : 0;

		p[np++] = (struct pollfd){ .fd = a->sigfd, .events = POLLIN };
		if (inp[1] >= 0)
			p[np++] = (struct pollfd){ .fd = inp[1], .events = POLLOUT };
		if (outp[0] >= 0)
			p[np++] = (struct pollfd){ .fd = outp[0], .events = POLLIN };
		if (poll(p, (nfds_t)np, wait_ms) < 0 && errno != EINTR) {
			kl_err("%s: poll: %s", name, strerror(errno));
			kill(pid, SIGKILL);
			stopped = 1;
			continue;
		}
		if (p[0].revents) {
			sys_signals_read(a);
			if (a->stop && !stopped) {
				/* The step flushes its TPM objects on TERM (kl_prog.h). */
				kl_info("%s: stopping it (%s)", name, strsignal(a->stop_sig));
				kill(pid, SIGTERM);
				stopped = 1;
				kill_at = kl_now_ms() + STEP_GRACE_MS;
			}
		}
		for (int i = 1; i < np; i++) {
			if (!p[i].revents)
				continue;
			if (p[i].fd == inp[1]) {
				ssize_t n = write(inp[1], ib.p + off, ib.len - off);

				if (n > 0)
					off += (size_t)n;
				/* EPIPE: the step stopped reading; its exit code tells why. */
				if ((n < 0 && errno != EAGAIN && errno != EINTR) || off == ib.len)
					close_fd(&inp[1]);
			} else {
				int r = read_some(outp[0], &ob);

				if (r < 0 && !too_big) {
					kl_err("%s: stdout larger than %u bytes: stopping it", name,
					    KL_STDIN_MAX);
					too_big = 1;
					kill(pid, SIGKILL);
				}
				if (r != 0)
					close_fd(&outp[0]);
			}
		}
	}

	if (WIFSIGNALED(status))
		*code = 128 + WTERMSIG(status);
	else
		*code = WEXITSTATUS(status);
	if (too_big) {
		*code = KL_PERM;
	} else if (ob.len > 0 && !all_space(&ob)) {
		snprintf(what, sizeof(what), "%s stdout", name);
		if (kl_json_parse(ob.p, ob.len, what, out) != KL_OK && *code == KL_OK)
			*code = KL_PERM;
	} else if (*code == KL_OK && !stopped) {
		kl_err("%s: exit 0 without a document on stdout", name);
		*code = KL_PERM;
	}
	if (timed_out && *code == KL_OK)
		*code = KL_TEMP;
out:
	close_fd(&inp[0]);
	close_fd(&inp[1]);
	close_fd(&outp[0]);
	close_fd(&outp[1]);
	buf_wipe(&ib);
	buf_wipe(&ob);
	a->fwd[0] = NULL;
	if (stopped && a->stop) {
		json_decref(*out);
		*out = NULL;
		return AGENT_STOPPED;
	}
	return 0;
}
