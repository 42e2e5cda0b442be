/*
 * schedule.c - when the next attempt runs: seconds_to_next_attestation
 * after a success (kl_sched_next), Retry-After, the maximum delay after a
 * permanent failure, or full-jitter backoff (kl_backoff.h); the wait, with
 * HUP reloading the configuration; the start-up splay; and the daemon's
 * loop around it all. docs/fleet.md says why a fleet needs the randomness.
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
 * go at once and all of them would be spent in a few milliseconds -- and a
 * fleet the server turned away together would come back together. So 0
 * means "back off as usual" (jittered), and never sooner than this.
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

/* Random bits that differ between agents started in the same second. */
static uint64_t
random_u64(void)
{
	uint64_t r;

	if (kl_crypto_random_u64(&r) != 0)
		r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ kl_now_ms();
	return r;
}

long
agent_failure_delay_ms(struct agent *a, int class, const char **why)
{
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
	ms = kl_backoff_delay_ms(initial_delay_ms(a), a->cfg.exponential_backoff_max_delay,
	    a->attempt, random_u64());
	if (a->retry_after == 0 && ms < RETRY_AFTER_ZERO_FLOOR_MS)
		ms = RETRY_AFTER_ZERO_FLOOR_MS;
	return ms;
}

/*
 * The bound of the start-up splay and of the phase spread, in s: the
 * smallest of startup_splay_seconds (0: neither) and the interval.
 */
static long
spread_bound_s(const struct agent *a, long interval_s)
{
	return a->cfg.startup_splay_seconds < interval_s ? a->cfg.startup_splay_seconds : interval_s;
}

/*
 * The phase spread: the daemon's first success after a failure, and its first
 * success at all when that reply came late, wait an extra uniform random
 * delay below one interval. Every later cycle starts an interval after the
 * last one's reply, so the reply to this cycle sets the agent's phase for
 * good; and replies come together when the verifier (or the registrar, or
 * the agents' CPU) was the bottleneck: spread starts end in bunched replies
 * once a queue drains, and agents turned away by an outage return within
 * their last backoff window, which can be narrower than the interval.
 *
 * The first cycle's start was drawn by the start-up splay, so a prompt reply
 * keeps that draw as the phase: spreading it again would only hold back the
 * second attestation, by up to an interval, and leave the verifier a lull
 * after every boot. A first cycle that took more than a tenth of the
 * interval waited somewhere (the TPM, a queue), and its reply may have come
 * with a crowd: it is spread. After a failure there is no splayed start to
 * keep, so the first success always is.
 *
 * The extra wait puts each phase anywhere in the interval, whenever this
 * reply came. It is safe: the next evidence comes within 2 intervals,
 * inside the verifier's liveness window of KL_LIVENESS_FACTOR intervals
 * (docs/fleet.md has the measurements). Returns the extra delay in ms, or
 * -1 when there is none to draw.
 */
static long
phase_spread_ms(struct agent *a, long interval_s)
{
	long bound = spread_bound_s(a, interval_s), extra = -1;	/* -1: none */
	bool draw = a->rephase == REPHASE_YES ||
	    (a->rephase == REPHASE_IF_LATE &&
	    (kl_now_ms() - a->cycle_start_ms) * 10 > (uint64_t)interval_s * 1000);

	if (bound > 0 && draw)
		extra = kl_sched_spread_ms(bound * 1000, random_u64());
	a->rephase = REPHASE_NO;
	return extra;
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
	agent_count_cycle(a, rc, now);
	if (rc == KL_OK) {
		json_t *h = json_object_get(kl_json_obj(a->doc, "submission"),
		    "seconds_to_next_attestation");
		double v = json_number_value(h);
		enum kl_sched_why w;
		long s, extra;
		char spread[48];	/* " + 12.345 s phase spread" when there is one */

		if (h != NULL && !json_is_null(h) && !json_is_number(h))
			kl_warn("submission.seconds_to_next_attestation is not a number: ignored");
		/* Bound it before the cast; kl_sched_next clamps and warns. */
		v = v > 1e12 ? 1e12 : v < -1e12 ? -1e12 : v;
		s = kl_sched_next(&a->sched, json_is_number(h), (long)v,
		    a->cfg.attestation_interval_seconds, &w);
		*why = kl_sched_why_name(w);
		extra = phase_spread_ms(a, s);
		ms = s * 1000 + (extra > 0 ? extra : 0);
		a->attempt = 0;
		a->st.consecutive_failures = 0;
		a->st.last_success = now;
		a->st.last_hint = a->sched.last_hint;
		next = ST_NEGOTIATING;
		spread[0] = '\0';
		if (extra >= 0)
			snprintf(spread, sizeof(spread), " + %ld.%03ld s phase spread",
			    extra / 1000, extra % 1000);
		kl_info("%s: %s -> %s: next cycle in %ld.%03ld s (%s%s)", agent_id(a),
		    agent_state_name(old), agent_state_name(next), ms / 1000, ms % 1000, *why, spread);
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

/*
 * The start-up splay: a fleet powered on together (or restarted by one
 * configuration push) must not arrive at the verifier in the same second.
 * The first cycle waits a uniform random delay in [0, bound) with bound =
 * min(startup_splay_seconds, the interval): the verifier's last
 * seconds_to_next_attestation, kept in the status file of the previous run,
 * else attestation_interval_seconds. One interval is enough, since agents
 * whose phases are spread over one interval stay spread; and it is safe:
 * an enrolled agent is TIMEOUT after 5 x quote_interval without evidence,
 * so at most one interval of splay leaves four for the restart itself.
 * Reads the previous status before agent_run_daemon overwrites it, and
 * keeps its hint there, so that a restart during the splay keeps the bound.
 * Returns the delay in ms (0: none); *bound_s gets the bound.
 */
static long
startup_splay_ms(struct agent *a, long *bound_s)
{
	struct kl_status prev;
	long interval;

	kl_status_init(&prev);
	(void)kl_status_read(a->status_path, &prev);	/* warns; never fatal */
	a->st.last_hint = prev.last_hint;
	interval = prev.last_hint >= 0 ? prev.last_hint : a->cfg.attestation_interval_seconds;
	*bound_s = spread_bound_s(a, interval);
	return kl_sched_spread_ms(*bound_s * 1000, random_u64());
}

int
agent_run_daemon(struct agent *a)
{
	const char *why;
	long bound, splay = startup_splay_ms(a, &bound);
	int stopped;

	/*
	 * A status file that cannot be written at all (permissions, a
	 * directory in its place) is a setup error, found here at start. A full
	 * disk is not: the status is informational, and attesting goes on.
	 */
	a->st.next_due = splay > 0 ? time(NULL) + (splay + 999) / 1000 : 0;
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
	if (splay > 0)
		kl_info("%s: first cycle in %ld.%03ld s (start-up splay, below %ld s)",
		    agent_id(a), splay / 1000, splay % 1000, bound);
	/* TERM/INT end the splay at once; HUP reloads and the same wait goes on. */
	stopped = splay > 0 && wait_next(a, splay);
	/* The first reply sets the phase; the splay drew it already (bound 0: neither). */
	a->rephase = REPHASE_IF_LATE;
	while (!stopped) {
		int rc;

		sys_signals_read(a);
		if (a->stop)
			break;
		if (a->config_broken && agent_reload(a) != KL_OK) {
			/* Reported as what it is, once per attempt, not as silence. */
			a->failed_step = "configuration";
			a->retry_after = -1;
			rc = KL_PERM;
		} else if ((rc = agent_cycle(a)) == AGENT_STOPPED) {
			break;
		}
		/* Failures since the last success (step retries too): re-phase. */
		if (rc != KL_OK || a->st.consecutive_failures > 0)
			a->rephase = REPHASE_YES;
		stopped = wait_next(a, agent_after_cycle(a, rc, &why));
	}
	kl_info("%s: stopping on %s", agent_id(a), a->stop_sig == SIGINT ? "SIGINT" : "SIGTERM");
	a->st.next_due = 0;
	agent_save_status(a);
	return KL_OK;
}
