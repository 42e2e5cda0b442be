/* kl_prog.c - see kl_prog.h. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_banned.h"

volatile sig_atomic_t kl_stop_requested;
volatile sig_atomic_t kl_stop_deferred;
long kl_tpm_timeout_seconds = 120;
const char *kl_tpm_state_dir;
json_t *kl_prog_answer;

void
kl_stop_exit(void)
{
	const char *parts[4] = { kl_progname, ": error: stopped by ",
	    kl_stop_requested == SIGINT ? "SIGINT" : "SIGTERM", "\n" };
	char line[160];
	size_t n = 0;

	/* Only async-signal-safe calls: this runs in a signal handler. */
	for (int i = 0; i < 4; i++) {
		size_t l = strlen(parts[i]);

		if (n + l > sizeof(line))
			break;
		memcpy(line + n, parts[i], l);
		n += l;
	}
	if (write(2, line, n) < 0)
		_exit(KL_TEMP);
	_exit(KL_TEMP);
}

/*
 * TERM/INT end a step at once (exit 111, stdout empty), except while the TPM
 * is open: then kl_tpm stops the command in flight and flushes what it can,
 * and the alarm makes sure the step ends within a second all the same.
 * No SA_RESTART: a poll() waiting for the TPM returns EINTR (kl_tpm.c).
 */
static void
on_stop(int sig)
{
	kl_stop_requested = sig;
	if (!kl_stop_deferred)
		kl_stop_exit();
	alarm(1);
}

static void
on_alarm(int sig)
{
	(void)sig;
	kl_stop_exit();
}

/* Make sure fds 0-2 are open, so no file we open later becomes "stdout". */
static void
open_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			_exit(KL_PERM);
}

void
kl_prog_init(const char *name)
{
	open_std_fds();
	kl_log_init(name);
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	kl_json_use_wiping_allocator();	/* documents carry the bearer token */
}

int
kl_prog_start(struct kl_prog *p, const char *name, int argc, char *argv[], const struct kl_cli *cli)
{
	struct kl_cli_flags flags = { 0 };
	struct sigaction sa;
	int rc;

	memset(p, 0, sizeof(*p));
	p->name = name;
	kl_prog_init(name);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);

	rc = kl_cli_parse(cli, argc, argv, &flags);
	if (rc == KL_CLI_DONE) {
		p->help = 1;
		return KL_OK;
	}
	if (rc != KL_OK || (rc = kl_config_load(&p->cfg, &flags)) != KL_OK)
		return rc;
	kl_tpm_timeout_seconds = p->cfg.tpm_timeout_seconds;
	kl_tpm_state_dir = p->cfg.keylime_dir;
	return kl_json_read_stdin(0, &p->doc);
}

int
kl_prog_main(const char *name, int argc, char *argv[], const struct kl_cli *cli,
    int (*run)(struct kl_prog *p, json_t **out))
{
	struct kl_prog p;
	json_t *out = NULL;
	int rc;

	rc = kl_prog_start(&p, name, argc, argv, cli);
	if (rc == KL_OK && !p.help)
		rc = run(&p, &out);
	return kl_prog_finish(&p, rc, out);
}

json_t *
kl_prog_retry_doc(const struct kl_prog *p, long status, long after)
{
	json_t *out = json_deep_copy(p->doc);

	if (out == NULL)
		return NULL;
	json_object_set_new(out, "retry", json_pack("{s:s,s:i,s:i}",
	    "step", p->name, "status", (json_int_t)status, "after", (json_int_t)after));
	return out;
}

int
kl_prog_finish(struct kl_prog *p, int rc, json_t *out)
{
	if (kl_prog_answer != NULL) {
		json_decref(out);
		out = kl_prog_answer;
		kl_prog_answer = NULL;
		rc = KL_OK;
	}
	if (!p->help && out != NULL &&
	    (rc == KL_OK || (rc == KL_TEMP && json_object_get(out, "retry")))) {
		int wrc = kl_json_write_stdout(out);

		if (rc == KL_OK)
			rc = wrc;
	}
	json_decref(out);
	json_decref(p->doc);
	p->doc = NULL;
	kl_config_release(&p->cfg);
	return rc;
}
