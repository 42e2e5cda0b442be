/* sys.c - signals, interruptible sleep, the step directory, run_as. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

static void
stop_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGCHLD);
}

/*
 * The signals are blocked and read from a signalfd, so that every wait in
 * kl-agent (a step's pipes, a sleep) is one poll() that a signal ends at once.
 */
int
sys_signals_init(void)
{
	sigset_t set;
	int fd;

	stop_set(&set);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd;
}

void
sys_signals_child(void)
{
	sigset_t set;

	/* The mask survives execve: a step must see TERM as usual. */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
}

void
sys_signals_read(struct agent *a)
{
	struct signalfd_siginfo si;

	while (read(a->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			a->stop = 1;
			a->stop_sig = (int)si.ssi_signo;
			break;
		case SIGHUP:
			a->reload = 1;
			break;
		default:	/* SIGCHLD: the caller reaps */
			break;
		}
	}
}

int
sys_sleep(struct agent *a, long ms)
{
	uint64_t end = kl_now_ms() + (uint64_t)(ms > 0 ? ms : 0);

	for (;;) {
		struct pollfd p = { .fd = a->sigfd, .events = POLLIN };
		uint64_t now = kl_now_ms();

		if (a->stop || a->reload)
			return 1;
		if (now >= end)
			return 0;
		if (poll(&p, 1, (int)(end - now)) > 0)
			sys_signals_read(a);
	}
}

char *
sys_step_dir(void)
{
	const char *env = getenv("KL_STEP_DIR");
	char buf[PATH_MAX];
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return strdup(env);
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strdup(dirname(buf));
}

/* The descriptor a parent named in env for the steps (keep_log_open), or -1. */
static int
env_fd(const char *env)
{
	const char *v = getenv(env);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return -1;
	n = strtol(v, &end, 10);
	return *end == '\0' && n >= 3 && n <= 65535 ? (int)n : -1;
}

void
sys_close_inherited(void)
{
	static const char *const keep[] = { "KL_IMA_ML_FD", "KL_MEASUREDBOOT_ML_FD" };

	/*
	 * Close-on-exec rather than close: nothing here uses them, and a
	 * library that opened one before main keeps working.
	 */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		int fd = env_fd(keep[i]);

		if (fd >= 0)
			fcntl(fd, F_SETFD, 0);
	}
}

/*
 * The steps cannot open root-only measurement logs after the drop, so
 * kl-agent opens them first and lets the steps inherit the descriptors,
 * named in the environment (a number, not a secret). Steps read them from
 * offset 0 (pread or lseek): the file offset is shared.
 */
static void
keep_log_open(const char *env, const char *path)
{
	char num[16];
	int fd;

	if (path == NULL || path[0] == '\0')
		return;
	fd = open(path, O_RDONLY | O_NOCTTY);
	if (fd < 0) {
		if (errno != ENOENT)
			kl_warn("%s: open before dropping privileges: %s", path, strerror(errno));
		return;
	}
	snprintf(num, sizeof(num), "%d", fd);
	setenv(env, num, 1);
	kl_debug("%s: kept open as fd %d for the steps", path, fd);
}

/* The TPM device a step will open, when the TCTI names one. */
static int
check_tpm_device(const char *tcti)
{
	const char *dev = NULL;

	if (strcmp(tcti, "device") == 0)
		dev = "/dev/tpm0";
	else if (strncmp(tcti, "device:", 7) == 0)
		dev = tcti + 7;
	if (dev == NULL || dev[0] == '\0')
		return KL_OK;
	if (access(dev, R_OK | W_OK) != 0)
		return kl_fail(KL_PERM, "run_as: %s: not usable after dropping privileges: %s",
		    dev, strerror(errno));
	return KL_OK;
}

int
sys_drop_privileges(const struct kl_config *cfg)
{
	char user[256], *group;
	struct passwd *pw;
	struct group *gr;
	uid_t uid;
	gid_t gid;

	if (cfg->run_as == NULL || cfg->run_as[0] == '\0')
		return KL_OK;
	if (snprintf(user, sizeof(user), "%s", cfg->run_as) >= (int)sizeof(user))
		return kl_fail(KL_PERM, "run_as: too long");
	if ((group = strchr(user, ':')) != NULL)
		*group++ = '\0';
	if (user[0] == '\0' || (group != NULL && group[0] == '\0'))
		return kl_fail(KL_PERM, "run_as \"%s\": expected user:group", cfg->run_as);
	if ((pw = getpwnam(user)) == NULL)
		return kl_fail(KL_PERM, "run_as \"%s\": no such user \"%s\"", cfg->run_as, user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (group != NULL) {
		if ((gr = getgrnam(group)) == NULL)
			return kl_fail(KL_PERM, "run_as \"%s\": no such group \"%s\"", cfg->run_as, group);
		gid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (geteuid() == uid && getegid() == gid)
			return KL_OK;
		return kl_fail(KL_PERM, "run_as \"%s\": kl-agent must start as root to switch users",
		    cfg->run_as);
	}

	keep_log_open("KL_IMA_ML_FD", cfg->ima_ml_path);
	keep_log_open("KL_MEASUREDBOOT_ML_FD", cfg->measuredboot_ml_path);

	/* Groups first: after setuid we could no longer change them. */
	if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
		return kl_fail(KL_PERM, "run_as \"%s\": %s", cfg->run_as, strerror(errno));
	if (uid != 0 && (setuid(0) != -1 || seteuid(0) != -1 || getuid() != uid ||
	    geteuid() != uid || getgid() != gid || getegid() != gid))
		return kl_fail(KL_PERM, "run_as \"%s\": root could be regained after the drop",
		    cfg->run_as);
	if (gid != 0 && (setgid(0) != -1 || setegid(0) != -1))
		return kl_fail(KL_PERM, "run_as \"%s\": group root could be regained", cfg->run_as);
	kl_info("run_as %s: running as uid %ld gid %ld", cfg->run_as, (long)uid, (long)gid);
	return check_tpm_device(kl_config_tcti(cfg));
}
