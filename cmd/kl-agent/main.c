/*
 * kl-agent: the push-model agent as a daemon (or one cycle with --once).
 *
 * Reads the configuration of keylime_push_model_agent (kl_config.h), then
 * runs the step programs kl-register, kl-session, kl-negotiate, kl-quote and
 * kl-submit itself (step.c), passing the document from one to the next, and
 * schedules the cycles: seconds_to_next_attestation after a success, backoff
 * after a failure (kl_backoff.h). Writes a status file (kl_status.h) after
 * every state change. TERM/INT stop the running step and exit 0; HUP
 * re-reads the configuration. docs/kl-agent.md has the whole story.
 *
 * Exit: 0 when stopped by TERM/INT; 100 on a usage or configuration error.
 * With --once: the cycle's class (0, 1, 2, 3, 100, 111), and one JSON line
 * on stdout saying when the next cycle is due.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

#define USAGE \
	"usage: kl-agent [--once] [-v|-vv] [keylime_push_model_agent flags...]\n" \
	"  --once   run one cycle (registering first when needed), print when the\n" \
	"           next one is due, exit with the cycle's class\n" \
	"Configuration: agent.conf, agent.conf.d/, KEYLIME_AGENT_CONFIG,\n" \
	"KEYLIME_AGENT_*, KEYLIME_DIR and flags, as the upstream agent (README).\n" \
	"Steps are run from the directory of kl-agent, or $KL_STEP_DIR.\n"

static const struct kl_cli cli = { .usage = USAGE };

/* Flags of kl-agent alone, not passed on to the steps. */
static const char *const agent_only_flags[] = { "--once" };

static const char *const steps[] = {
	"kl-register", "kl-session", "kl-negotiate", "kl-quote", "kl-submit",
};

const char *
agent_id(const struct agent *a)
{
	const char *id = kl_json_str(kl_json_obj(a->doc, "agent"), "id");

	if (id == NULL)
		id = a->cfg.uuid;
	return id ? id : "-";
}

/* Make sure fds 0-2 are open, so no pipe or file becomes a step's "stdout". */
static void
open_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			_exit(KL_PERM);
}

/* The configuration an "agent" member belongs to: change any, register again. */
static json_t *
identity_of(const struct kl_config *c)
{
	char *registrar = kl_config_registrar_url(c);
	char *ak = kl_config_agent_data(c);
	json_t *id;

	id = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:s, s:s}",
	    "uuid", c->uuid, "registrar", registrar,
	    "tpm_encryption_alg", c->tpm_encryption_alg, "tpm_hash_alg", c->tpm_hash_alg,
	    "tpm_signing_alg", c->tpm_signing_alg, "ek_handle", c->ek_handle,
	    "agent_data_path", ak, "contact_ip", c->contact_ip,
	    "contact_port", (json_int_t)c->contact_port,
	    "registrar_api_versions", c->registrar_api_versions,
	    "tcti", kl_config_tcti(c));
	free(registrar);
	free(ak);
	return id;
}

void
agent_registered(struct agent *a)
{
	json_t *rec;
	size_t n;
	char *s;

	json_decref(a->identity);
	a->identity = identity_of(&a->cfg);
	/* The record lets `--once` skip registering; it holds no secret. */
	rec = json_pack("{s:O, s:O}", "identity", a->identity, "agent",
	    kl_json_obj(a->doc, "agent"));
	if (rec == NULL)
		return;
	if ((s = kl_json_dump(rec, &n)) != NULL) {
		s[n] = '\n';	/* over the NUL */
		kl_file_write_atomic(a->reg_path, s, n + 1);
		free(s);
	}
	json_decref(rec);
}

/* --once: take the "agent" member registered earlier with this same identity. */
static void
load_registration(struct agent *a)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *rec = NULL, *id;

	if (kl_file_read(a->reg_path, 1u << 20, 1, &buf, &len) != KL_OK || buf == NULL)
		return;
	if (kl_json_parse(buf, len, a->reg_path, &rec) == KL_OK) {
		id = identity_of(&a->cfg);
		if (json_equal(json_object_get(rec, "identity"), id) &&
		    kl_json_str(kl_json_obj(rec, "agent"), "id") != NULL) {
			json_object_set(a->doc, "agent", json_object_get(rec, "agent"));
			a->identity = id;
			id = NULL;
		} else {
			kl_info("%s: made with another configuration: registering again", a->reg_path);
		}
		json_decref(id);
	}
	json_decref(rec);
	free(buf);
}

/* A URL for a log line, without user:password@ (it is not ours to print). */
static void
url_for_log(const char *url, char *out, size_t cap)
{
	const char *hostpart = strstr(url, "://");
	const char *at, *slash;

	hostpart = hostpart ? hostpart + 3 : url;
	at = strchr(hostpart, '@');
	slash = strchr(hostpart, '/');
	if (at != NULL && (slash == NULL || at < slash))
		snprintf(out, cap, "%.*s%s", (int)(hostpart - url), url, at + 1);
	else
		snprintf(out, cap, "%s", url);
}

/* Printed on every start and reload, so that nobody forgets them. */
static void
warn_insecure(const struct kl_config *c)
{
	char url[512];

	if (c->insecure)
		kl_warn("--insecure: the verifier's and registrar's certificates are not verified");
	if (strncmp(c->verifier_url, "http://", 7) == 0) {
		url_for_log(c->verifier_url, url, sizeof(url));
		kl_warn("verifier_url %s: plain HTTP, the token travels unencrypted", url);
	}
}

/* What kl-agent refuses, or checks, beyond what kl_config_load already did. */
static int
check_config(const struct kl_config *c)
{
	if (c->avoid_tpm)
		return kl_fail(KL_PERM, "--avoid-tpm: kl always attests with a TPM; for tests, "
		    "run a software TPM (swtpm) and point tcti at it (docs/kl-agent.md)");
	if (c->check)
		return kl_fail(KL_PERM, "--check: a kl-register flag, not a kl-agent one");
	if (c->exponential_backoff_initial_delay < 0 || c->exponential_backoff_max_delay < 0 ||
	    c->exponential_backoff_max_retries < 0 || c->attestation_interval_seconds < 0)
		return kl_fail(KL_PERM, "exponential_backoff_* and attestation_interval_seconds "
		    "must not be negative");
	return KL_OK;
}

int
agent_reload(struct agent *a)
{
	struct kl_config nc;
	json_t *id;
	int rc;

	memset(&nc, 0, sizeof(nc));
	optind = 0;	/* getopt starts afresh on the same argv */
	rc = kl_config_load(&nc, a->argc, a->argv, &cli);
	if (rc == KL_OK)
		rc = check_config(&nc);
	if (rc != KL_OK) {
		kl_config_release(&nc);
		return kl_fail(rc, "SIGHUP: configuration not reloaded, keeping the previous one");
	}
	if (strcmp(nc.run_as, a->cfg.run_as) != 0)
		kl_warn("SIGHUP: a new run_as takes effect after a restart");
	kl_config_release(&a->cfg);
	a->cfg = nc;
	kl_verbose = a->cfg.verbose;
	warn_insecure(&a->cfg);
	id = identity_of(&a->cfg);
	if (a->identity != NULL && !json_equal(id, a->identity)) {
		kl_info("%s: SIGHUP: the identity configuration changed: registering again",
		    agent_id(a));
		json_object_clear(a->doc);
		json_object_set_new(a->doc, "schema", json_integer(KL_SCHEMA));
	}
	json_decref(id);
	kl_info("%s: SIGHUP: configuration reloaded", agent_id(a));
	return KL_OK;
}

/* The steps get our own flags, less kl-agent's own: never anything secret. */
static int
make_forward_argv(struct agent *a)
{
	int n = 1;

	if ((a->fwd = calloc((size_t)a->argc + 1, sizeof(*a->fwd))) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	for (int i = 1; i < a->argc; i++) {
		int skip = 0;

		for (size_t j = 0; j < sizeof(agent_only_flags) / sizeof(agent_only_flags[0]); j++)
			skip |= strcmp(a->argv[i], agent_only_flags[j]) == 0;
		if (!skip)
			a->fwd[n++] = a->argv[i];
	}
	return KL_OK;
}

static int
check_steps(const struct agent *a)
{
	char path[4096];

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", a->step_dir, steps[i]);
		if (access(path, X_OK) != 0)
			return kl_fail(KL_PERM, "%s: not executable: %s (install the steps next to "
			    "kl-agent, or set KL_STEP_DIR)", path, strerror(errno));
	}
	return KL_OK;
}

static int
agent_start(struct agent *a, int argc, char *argv[])
{
	int rc;

	a->argc = argc;
	a->argv = argv;
	a->state = ST_UNREGISTERED;
	kl_status_init(&a->st);
	kl_sched_init(&a->sched);
	a->retry_after = -1;
	/* First: a TERM during start-up must stop us cleanly, not kill us. */
	if ((a->sigfd = sys_signals_init()) < 0)
		return kl_fail(KL_TEMP, "signalfd: %s", strerror(errno));
	/* Copy the flags first: getopt may permute argv. */
	if ((rc = make_forward_argv(a)) != KL_OK)
		return rc;
	rc = kl_config_load(&a->cfg, argc, argv, &cli);
	if (rc == -1)
		return -1;
	if (rc != KL_OK)
		return KL_PERM;
	kl_verbose = a->cfg.verbose;
	if ((rc = check_config(&a->cfg)) != KL_OK)
		return rc;
	warn_insecure(&a->cfg);
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
	if ((rc = sys_drop_privileges(&a->cfg)) != KL_OK)
		return rc;
	return KL_OK;
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

/*
 * After a cycle: update the counters and the state, choose the delay to the
 * next attempt, log it in one stable line and write the status file.
 * Returns the delay in ms; *why says where it came from.
 */
static long
after_cycle(struct agent *a, int rc, const char **why)
{
	enum agent_state old = a->state, next;
	time_t now = time(NULL);
	long ms;

	a->st.last_exit_class = rc;
	if (rc == KL_OK) {
		json_t *h = json_object_get(kl_json_obj(a->doc, "submission"),
		    "seconds_to_next_attestation");
		double v = json_number_value(h);
		enum kl_sched_why w;
		long s;

		if (h != NULL && !json_is_null(h) && !json_is_number(h))
			kl_warn("submission.seconds_to_next_attestation is not a number: ignored");
		/* Bound it before the cast; kl_sched_next clamps and warns. */
		v = v > 1e12 ? 1e12 : v < -1e12 ? -1e12 : v;
		s = kl_sched_next(&a->sched, json_is_number(h), (long)v,
		    a->cfg.attestation_interval_seconds, &w);
		*why = kl_sched_why_name(w);
		ms = s * 1000;
		a->attempt = 0;
		a->st.consecutive_failures = 0;
		a->st.last_success = now;
		a->st.last_hint = a->sched.last_hint;
		next = ST_NEGOTIATING;
		kl_info("%s: %s -> %s: next cycle in %ld.%03ld s (%s)", agent_id(a),
		    agent_state_name(old), agent_state_name(next), ms / 1000, ms % 1000, *why);
	} else {
		a->attempt++;
		a->st.consecutive_failures++;
		ms = agent_failure_delay_ms(a, rc, why);
		next = kl_json_obj(a->doc, "agent") ? ST_ATTESTATION_FAILED : ST_REGISTRATION_FAILED;
		kl_warn("%s: %s -> %s: %s: %s (%d): next attempt in %ld.%03ld s (%s, attempt %u)",
		    agent_id(a), agent_state_name(old), agent_state_name(next),
		    a->failed_step ? a->failed_step : "-", kl_rc_name(rc), rc,
		    ms / 1000, ms % 1000, *why, a->attempt);
	}
	a->state = next;
	a->st.next_due = now + (ms + 999) / 1000;
	agent_save_status(a);
	return ms;
}

/*
 * Wait ms for the next cycle. HUP reloads the configuration; after a failure
 * it also ends the wait, since the operator may just have fixed the cause.
 * Returns 1 when TERM/INT came, else 0.
 */
static int
wait_next(struct agent *a, long ms)
{
	uint64_t end = kl_now_ms() + (uint64_t)ms;

	for (;;) {
		uint64_t now = kl_now_ms();

		if (!sys_sleep(a, now < end ? (long)(end - now) : 0))
			return 0;
		if (a->stop)
			return 1;
		a->reload = 0;
		agent_reload(a);
		if (a->state == ST_ATTESTATION_FAILED || a->state == ST_REGISTRATION_FAILED) {
			a->attempt = 0;
			return 0;
		}
	}
}

static int
run_daemon(struct agent *a)
{
	const char *why;

	if (agent_save_status(a) != KL_OK)
		return KL_PERM;
	kl_info("%s: started (pid %ld, steps in %s)", agent_id(a), (long)getpid(), a->step_dir);
	for (;;) {
		int rc;

		sys_signals_read(a);
		if (a->stop || (rc = agent_cycle(a)) == AGENT_STOPPED)
			break;
		if (wait_next(a, after_cycle(a, rc, &why)))
			break;
	}
	kl_info("%s: stopping on %s", agent_id(a), a->stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
	a->st.next_due = 0;
	agent_save_status(a);
	return KL_OK;
}

/* One line for cron, systemd timers and CI (docs/kl-agent.md, "--once"). */
static void
print_once(const struct agent *a, int rc, long ms, const char *why)
{
	json_t *h = json_object_get(kl_json_obj(a->doc, "submission"), "seconds_to_next_attestation");
	char due[32];
	json_t *o;
	size_t n;
	char *s;

	kl_time_format(a->st.next_due, due);
	o = json_pack("{s:s, s:i, s:s, s:s, s:I, s:s, s:O}", "result", kl_rc_name(rc),
	    "exit", rc, "agent_id", agent_id(a), "next_due", due,
	    "next_in", (json_int_t)((ms + 999) / 1000), "reason", why,
	    "seconds_to_next_attestation", rc == KL_OK && json_is_integer(h) ? h : json_null());
	if (o == NULL)
		return;
	if ((s = kl_json_dump(o, &n)) != NULL) {
		s[n] = '\n';	/* over the NUL */
		if (fwrite(s, 1, n + 1, stdout) != n + 1 || fflush(stdout) == EOF)
			kl_err("stdout: write: %s", strerror(errno));
		free(s);
	}
	json_decref(o);
}

static int
run_once(struct agent *a)
{
	const char *why;
	long ms;
	int rc;

	/* Carry the counters and the verifier's last hint over from the last run. */
	kl_status_read(a->status_path, &a->st);
	a->attempt = (unsigned)a->st.consecutive_failures;
	a->sched.last_hint = a->st.last_hint;
	load_registration(a);
	a->state = kl_json_obj(a->doc, "agent") ? ST_NEGOTIATING : ST_UNREGISTERED;
	sys_signals_read(a);
	rc = a->stop ? AGENT_STOPPED : agent_cycle(a);
	if (rc == AGENT_STOPPED) {
		a->st.next_due = 0;
		agent_save_status(a);
		return KL_OK;
	}
	ms = after_cycle(a, rc, &why);
	print_once(a, rc, ms, why);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct agent a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.sigfd = -1;
	open_std_fds();
	kl_log_init("kl-agent");
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	kl_json_use_wiping_allocator();	/* the document carries the token */

	rc = agent_start(&a, argc, argv);
	if (rc == KL_OK)
		rc = a.cfg.once ? run_once(&a) : run_daemon(&a);
	else if (rc == -1)
		rc = KL_OK;	/* -h */
	agent_release(&a);
	return rc;
}
