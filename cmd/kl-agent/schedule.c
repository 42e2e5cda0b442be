/*
 * schedule.c - when the next attempt runs: seconds_to_next_attestation
 * after a success (kl_sched_next), Retry-After, the maximum delay after a
 * permanent failure, or full-jitter backoff (kl_backoff.h); the wait, with
 * HUP reloading the configuration; and the daemon's loop around it all.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

/*
 * Keylime's session rate limiter rounds the rest of a block down and sends
 * Retry-After: 0 while it still refuses; taken literally, every retry would
 * go at once and all of them would be spent in a few milliseconds. So 0
 * means "back off as usual", and never sooner than this.
 */
#define RETRY_AFTER_ZERO_FLOOR_MS 1000L

/*
 * The backoff's first step. The verifier marks an agent TIMEOUT after
 * KL_LIVENESS_FACTOR x quote_interval without evidence, and upstream's
 * default initial delay (10 s) equals that whole window at the default
 * quote_interval (2 s): a short outage would always end in TIMEOUT. So the
 * first step is at most the last seconds_to_next_attestation (the verifier's
 * quote_interval): the first retries come well inside the window.
 */
static long
initial_delay_ms(const struct agent *a)
{
	long initial = a->cfg.exponential_backoff_initial_delay;

	if (a->sched.last_hint > 0 && a->sched.last_hint <= KL_SCHED_MAX_S &&
	    initial > a->sched.last_hint * 1000)
		return a->sched.last_hint * 1000;
	return initial;
}

long
agent_failure_delay_ms(struct agent *a, int class, const char **why)
{
	uint64_t r;
	long ms;

	if (a->retry_after > 0) {
		*why = "retry-after";	/* the server's Retry-After wins */
		return a->retry_after * 1000;
	}
	if (class == KL_PERM) {
		/* Permanent problems do not fix themselves; HUP retries at once. */
		*why = "permanent";
		return a->cfg.exponential_backoff_max_delay;
	}
	*why = a->retry_after == 0 ? "retry-after-zero" : "backoff";
	if (kl_crypto_random_u64(&r) != 0)
		r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	ms = kl_backoff_delay_ms(initial_delay_ms(a), a->cfg.exponential_backoff_max_delay,
	    a->attempt, r);
	if (a->retry_after == 0 && ms < RETRY_AFTER_ZERO_FLOOR_MS)
		ms = RETRY_AFTER_ZERO_FLOOR_MS;
	return ms;
}

/*
 * After a cycle: update the counters and the state, choose the delay to the
 * next attempt, log it in one stable line and write the status file.
 * Returns the delay in ms; *why says where it came from.
 */
long
agent_after_cycle(struct agent *a, int rc, const char **why)
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

int
agent_run_daemon(struct agent *a)
{
	const char *why;

	/*
	 * A status file that cannot be written at all (permissions, a
	 * directory in its place) is a setup error, found here at start. A full
	 * disk is not: the status is informational, and attesting goes on.
	 */
	switch (agent_save_status(a)) {
	case KL_OK:
		break;
	case KL_TEMP:
		kl_warn("%s: the status file cannot be written for now: attesting anyway",
		    agent_id(a));
		break;
	default:
		return KL_PERM;
	}
	kl_info("%s: started (pid %ld, steps in %s)", agent_id(a), (long)getpid(), a->step_dir);
	for (;;) {
		int rc;

		sys_signals_read(a);
		if (a->stop || (rc = agent_cycle(a)) == AGENT_STOPPED)
			break;
		if (wait_next(a, agent_after_cycle(a, rc, &why)))
			break;
	}
	kl_info("%s: stopping on %s", agent_id(a), a->stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
	a->st.next_due = 0;
	agent_save_status(a);
	return KL_OK;
}
