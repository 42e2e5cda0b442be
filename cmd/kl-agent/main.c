/*
 * kl-agent: the push-model agent as a daemon (or one cycle with --once).
 *
 * Reads the configuration of keylime_push_model_agent (config.c), then
 * runs the step programs kl-register, kl-session, kl-negotiate, kl-quote and
 * kl-submit itself (step.c), passing the document from one to the next, and
 * schedules the cycles: seconds_to_next_attestation after a success, backoff
 * after a failure (kl_backoff.h). Writes a status file (kl_status.h) after
 * every state change. TERM/INT stop the running step and exit 0; HUP
 * re-reads the configuration. docs/kl-agent.md has the whole story.
 *
 * Exit: 0 when stopped by TERM/INT; 100 on a usage or configuration error.
 * With --once: the cycle's class (0, 1, 2, 3, 100, 111), and one JSON line
 * on stdout saying when the next cycle is due; with --once --verdict, after
 * an accepted submission, kl-verdict's class (0 pass, 1 fail, 111 no verdict
 * in time, ...) and its verdict.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_banned.h"

/* kl-agent's own options (kl_cli.h); the shared ones are passed on to the steps. */
static bool once, verdict;

static const struct kl_cli_opt own[] = {
	KL_CLI_FLAG("once", &once, "run one cycle (registering first when needed), print when "
	    "the next one is due, exit with the cycle's class"),
	KL_CLI_FLAG("verdict", &verdict, "after kl-submit, wait for the verifier's verdict "
	    "(kl-verdict): with --once the exit code is the verdict's"),
	KL_CLI_END,
};

static const struct kl_cli cli = {
	.opts = own,
	.about = "Steps are run from the directory of kl-agent, or $KL_STEP_DIR.\n",
	/* kl-agent links no TPM, HTTP or TLS library: its steps do. */
	.version_note = "steps: run kl-register --version (or any other step) for the TPM, "
	    "HTTP and TLS libraries",
};

static const char *const steps[] = {
	"kl-register", "kl-session", "kl-negotiate", "kl-quote", "kl-submit", "kl-verdict",
};

const char *
agent_id(const struct agent *a)
{
	const char *id = kl_json_str(kl_json_obj(a->doc, "agent"), "id");

	if (id == NULL)
		id = a->cfg.uuid;
	return id ? id : "-";
}

static int
check_steps(const struct agent *a)
{
	char path[4096];

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		/* kl-verdict only when asked for: the cycle does without it. */
		if (strcmp(steps[i], "kl-verdict") == 0 && !agent_verdict_used(a))
			continue;
		snprintf(path, sizeof(path), "%s/%s", a->step_dir, steps[i]);
		if (access(path, X_OK) != 0)
			return kl_fail(KL_PERM, "%s: not executable: %s (install the steps next to "
			    "kl-agent, or set KL_STEP_DIR)", path, strerror(errno));
	}
	return KL_OK;
}

/* Configuration, steps, state files, privileges: all before the first cycle. */
static int
agent_start(struct agent *a, int argc, char *argv[])
{
	int rc;

	a->cli = &cli;
	a->argc = argc;
	a->argv = argv;
	a->state = ST_UNREGISTERED;
	kl_status_init(&a->st);
	kl_sched_init(&a->sched);
	a->retry_after = -1;
	a->verdict_rc = -1;
	sys_close_inherited();
	/*
	 * Debian's libcurl loads GnuTLS (for librtmp and libldap, protocols kl
	 * never enables; kl's TLS is libcurl's OpenSSL), and GnuTLS initialises
	 * itself in its constructor: 0.6-0.8 MiB of RSS and 0.5 ms of CPU in
	 * every network step (docs/performance.md). GnuTLS's documented switch
	 * turns that off; a library that does use GnuTLS calls
	 * gnutls_global_init itself. An operator's own value is kept.
	 */
	setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 0);
	/* First: a TERM during start-up must stop us cleanly, not kill us. */
	if ((a->sigfd = sys_signals_init()) < 0)
		return kl_fail(KL_TEMP, "signalfd: %s", strerror(errno));
	/* fwd[0] is the step's path, set per run; then our shared flags. */
	if ((a->fwd = calloc((size_t)argc + 1, sizeof(*a->fwd))) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	if ((rc = agent_config_load(a, &a->cfg, a->fwd + 1)) != KL_OK)
		return rc;
	a->verdict = verdict;	/* parsed just now */
	if ((a->step_dir = sys_step_dir()) == NULL)
		return kl_fail(KL_PERM, "cannot find the directory of kl-agent: set KL_STEP_DIR");
	if ((rc = check_steps(a)) != KL_OK)
		return rc;
	a->status_path = kl_config_status_path(&a->cfg);
	a->reg_path = kl_config_path(&a->cfg, "default", "kl-agent-registration.json");
	a->doc = json_pack("{s:i}", "schema", KL_SCHEMA);
	if (a->status_path == NULL || a->reg_path == NULL || a->doc == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	/* After opening what needs root (the measurement logs); steps inherit the drop. */
	return sys_drop_privileges(&a->cfg);
}

static void
agent_release(struct agent *a)
{
	if (a->sigfd >= 0)
		close(a->sigfd);
	json_decref(a->doc);
	json_decref(a->identity);
	free(a->fwd);
	free(a->step_dir);
	free(a->status_path);
	free(a->reg_path);
	kl_config_release(&a->cfg);
}

int
main(int argc, char *argv[])
{
	struct agent a = { .sigfd = -1 };
	int rc;

	kl_prog_init("kl-agent");
	rc = agent_start(&a, argc, argv);
	if (rc == KL_OK)
		rc = once ? agent_run_once(&a) : agent_run_daemon(&a);
	else if (rc == KL_CLI_DONE)
		rc = KL_OK;	/* --help */
	agent_release(&a);
	return rc;
}
