/*
 * cycle.c - one attestation cycle and the state machine (docs/protocol.md §9.2):
 *
 *   Unregistered --kl-register--> Registered --> Negotiating
 *   Negotiating --[kl-session] kl-negotiate--> Attesting --kl-quote kl-submit--> (wait)
 *
 * kl-agent decides only on the steps' exit classes (docs/contract.md):
 *   0    next step
 *   1    the peer said no: the cycle fails
 *   2    drop the session, run kl-session, redo the step (once per cycle)
 *   3    run kl-negotiate again at once (MAX_RENEGOTIATE times per cycle)
 *   100  the cycle fails; the next attempt waits the maximum delay
 *   111  retry the step after backoff or retry.after, up to
 *        exponential_backoff_max_retries times, then the cycle fails
 *   128+n (killed by signal n) counts as 111; any other code as 100.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

#define MAX_RENEGOTIATE 3

static const char *const state_names[] = {
	[ST_UNREGISTERED] = "Unregistered",
	[ST_REGISTERED] = "Registered",
	[ST_NEGOTIATING] = "Negotiating",
	[ST_ATTESTING] = "Attesting",
	[ST_REGISTRATION_FAILED] = "RegistrationFailed",
	[ST_ATTESTATION_FAILED] = "AttestationFailed",
};

const char *
agent_state_name(enum agent_state s)
{
	return state_names[s];
}

int
agent_save_status(struct agent *a)
{
	snprintf(a->st.state, sizeof(a->st.state), "%s", agent_state_name(a->state));
	snprintf(a->st.agent_id, sizeof(a->st.agent_id), "%s", agent_id(a));
	return kl_status_write(a->status_path, &a->st, getpid());
}

void
agent_set_state(struct agent *a, enum agent_state s)
{
	if (s == a->state)
		return;
	kl_info("%s: %s -> %s", agent_id(a), agent_state_name(a->state), agent_state_name(s));
	a->state = s;
	agent_save_status(a);
}

/* retry.after of a step's "temporary" document, clamped; -1 when absent. */
static long
retry_after_of(const json_t *out)
{
	json_t *v = json_object_get(kl_json_obj(out, "retry"), "after");
	json_int_t after;

	if (!json_is_integer(v))
		return -1;
	after = json_integer_value(v);
	if (after < 0 || after > KL_SCHED_MAX_S) {
		kl_warn("retry.after %lld is absurd: using %ld", (long long)after,
		    after < 0 ? 0L : KL_SCHED_MAX_S);
		return after < 0 ? 0 : KL_SCHED_MAX_S;
	}
	return (long)after;
}

/* Map an exit code onto the classes of docs/contract.md. */
static int
classify(const char *name, int code)
{
	switch (code) {
	case KL_OK: case KL_REFUSED: case KL_REAUTH: case KL_RENEGOTIATE:
	case KL_PERM: case KL_TEMP:
		return code;
	}
	if (code > 128) {
		kl_warn("%s: killed by signal %d: temporary", name, code - 128);
		return KL_TEMP;
	}
	kl_err("%s: exit code %d is not in docs/contract.md: permanent", name, code);
	return KL_PERM;
}

/* The member a step must have written, so that a cycle never loops on a bad step. */
static int
check_member(const char *name, const json_t *doc)
{
	static const struct { const char *step, *member, *str; } need[] = {
		{ "kl-register", "agent", "id" },
		{ "kl-session", "session", "token" },
		{ "kl-negotiate", "challenge", NULL },
		{ "kl-quote", "evidence", NULL },
		{ "kl-submit", "submission", NULL },
	};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		json_t *m;

		if (strcmp(name, need[i].step) != 0)
			continue;
		m = kl_json_obj(doc, need[i].member);
		if (m == NULL || (need[i].str && kl_json_str(m, need[i].str) == NULL))
			return kl_fail(KL_PERM, "%s: exit 0 but no %s%s%s in its document", name,
			    need[i].member, need[i].str ? "." : "", need[i].str ? need[i].str : "");
	}
	return KL_OK;
}

static void
log_delay(const struct agent *a, const char *name, int class, long ms, const char *why)
{
	kl_warn("%s: %s: %s: %s (%d): next attempt in %ld.%03ld s (%s, attempt %u)",
	    agent_id(a), agent_state_name(a->state), name, kl_rc_name(class), class,
	    ms / 1000, ms % 1000, why, a->attempt);
}

/*
 * Run one step on a->doc and take its document. Temporary failures are
 * retried here, as upstream retries a request (docs/protocol.md §9.3).
 * Returns the class, or AGENT_STOPPED.
 */
static int
run_step(struct agent *a, const char *name)
{
	long retries = 0;

	for (;;) {
		json_t *out = NULL;
		const char *why;
		int code;
		long ms;

		if (step_run(a, name, a->doc, &code, &out) == AGENT_STOPPED)
			return AGENT_STOPPED;
		a->failed_step = name;
		a->retry_after = code == KL_TEMP ? retry_after_of(out) : -1;
		if (code == KL_OK && (code = check_member(name, out)) == KL_OK) {
			json_object_del(out, "retry");
			json_decref(a->doc);
			a->doc = out;
			return KL_OK;
		}
		json_decref(out);
		code = classify(name, code);
		if (code != KL_TEMP || retries >= a->cfg.exponential_backoff_max_retries ||
		    a->reload)
			return code;
		retries++;
		a->attempt++;
		/* Counted as it happens: the status file says so during the wait. */
		a->st.consecutive_failures++;
		a->st.last_exit_class = code;
		ms = agent_failure_delay_ms(a, code, &why);
		log_delay(a, name, code, ms, why);
		a->st.next_due = time(NULL) + (ms + 999) / 1000;
		agent_save_status(a);
		if (sys_sleep(a, ms)) {
			if (a->stop)
				return AGENT_STOPPED;
			return code;	/* HUP: the main loop reloads and tries at once */
		}
	}
}

static int
has_token(const json_t *doc)
{
	return kl_json_str(kl_json_obj(doc, "session"), "token") != NULL;
}

enum phase { P_SESSION, P_NEGOTIATE, P_QUOTE, P_SUBMIT, P_DONE };
static const char *const phase_step[] = { "kl-session", "kl-negotiate", "kl-quote", "kl-submit" };

int
agent_cycle(struct agent *a)
{
	enum phase p = P_SESSION;
	int reauthed = 0, renegotiated = 0, rc;

	a->failed_step = NULL;
	a->retry_after = -1;
	if (kl_json_obj(a->doc, "agent") == NULL) {
		agent_set_state(a, ST_UNREGISTERED);
		if ((rc = run_step(a, "kl-register")) != KL_OK)
			return rc;
		agent_registered(a);
		agent_set_state(a, ST_REGISTERED);
	}
	while (p != P_DONE) {
		if (p == P_SESSION && has_token(a->doc)) {
			p = P_NEGOTIATE;
			continue;
		}
		agent_set_state(a, p <= P_NEGOTIATE ? ST_NEGOTIATING : ST_ATTESTING);
		rc = run_step(a, phase_step[p]);
		if (rc == KL_OK) {
			p++;
		} else if (rc == KL_REAUTH && p != P_SESSION && !reauthed) {
			kl_info("%s: %s: %s: not authenticated (2): re-authenticating",
			    agent_id(a), agent_state_name(a->state), phase_step[p]);
			reauthed = 1;
			json_object_del(a->doc, "session");
			if ((rc = run_step(a, "kl-session")) != KL_OK)
				return rc;
		} else if (rc == KL_RENEGOTIATE && p != P_SESSION && renegotiated < MAX_RENEGOTIATE) {
			kl_info("%s: %s: %s: challenge expired (3): negotiating again",
			    agent_id(a), agent_state_name(a->state), phase_step[p]);
			renegotiated++;
			p = P_NEGOTIATE;
		} else {
			return rc;
		}
	}
	return KL_OK;
}
