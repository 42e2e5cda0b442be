/* kl_backoff.c - see kl_backoff.h. */
#include "kl_backoff.h"
#include "kl_log.h"
#include "kl_banned.h"

long
kl_backoff_cap_ms(long initial_ms, long max_ms, unsigned n)
{
	long cap;

	if (n == 0 || max_ms <= 0)
		return 0;
	if (initial_ms <= 0)
		initial_ms = 1;
	if (initial_ms >= max_ms)
		return max_ms;
	cap = initial_ms;
	/* Double until the cap is reached; stopping early avoids overflow. */
	for (unsigned i = 1; i < n && cap < max_ms; i++)
		cap = cap > max_ms / 2 ? max_ms : cap * 2;
	return cap < max_ms ? cap : max_ms;
}

long
kl_backoff_delay_ms(long initial_ms, long max_ms, unsigned n, uint64_t r)
{
	long cap = kl_backoff_cap_ms(initial_ms, max_ms, n);

	/* The modulo bias is below 2^-32 for any cap a long can hold here. */
	return cap <= 0 ? 0 : (long)(r % ((uint64_t)cap + 1));
}

long
kl_sched_spread_ms(long bound_ms, uint64_t r)
{
	return bound_ms <= 0 ? 0 : (long)(r % (uint64_t)bound_ms);
}

const char *
kl_sched_why_name(enum kl_sched_why why)
{
	switch (why) {
	case KL_SCHED_HINT: return "seconds_to_next_attestation";
	case KL_SCHED_LAST_HINT: return "last seconds_to_next_attestation";
	case KL_SCHED_INTERVAL: return "attestation_interval_seconds";
	}
	return "?";
}

void
kl_sched_init(struct kl_sched *s)
{
	s->last_hint = -1;
	s->warned_hint = -1;
}

long
kl_sched_next(struct kl_sched *s, int has_hint, long hint, long interval_s, enum kl_sched_why *why)
{
	if (!has_hint) {
		hint = -1;
	} else if (hint > KL_SCHED_MAX_S) {
		kl_warn("seconds_to_next_attestation %ld is absurd: using %ld", hint, KL_SCHED_MAX_S);
		hint = KL_SCHED_MAX_S;
	} else if (hint < 0) {
		kl_warn("seconds_to_next_attestation %ld is negative: using 0", hint);
		hint = 0;
	}
	if (hint >= 0)
		s->last_hint = hint;
	/*
	 * The verifier only tells its quote_interval through this hint; should a
	 * later reply lack it, attestation_interval_seconds would be used and
	 * the verifier would mark the agent TIMEOUT between cycles (§7.2).
	 */
	if (s->last_hint > 0 && s->last_hint != s->warned_hint &&
	    interval_s > KL_LIVENESS_FACTOR * s->last_hint) {
		kl_warn("attestation_interval_seconds %ld exceeds the verifier's liveness window "
		    "(%d x seconds_to_next_attestation %ld = %ld s)", interval_s,
		    KL_LIVENESS_FACTOR, s->last_hint, KL_LIVENESS_FACTOR * s->last_hint);
		s->warned_hint = s->last_hint;
	}
	if (hint >= 0) {
		*why = KL_SCHED_HINT;
		return hint;
	}
	if (s->last_hint >= 0) {
		*why = KL_SCHED_LAST_HINT;
		return s->last_hint;
	}
	*why = KL_SCHED_INTERVAL;
	if (interval_s > KL_SCHED_MAX_S) {
		kl_warn("attestation_interval_seconds %ld is absurd: using %ld", interval_s, KL_SCHED_MAX_S);
		return KL_SCHED_MAX_S;
	}
	return interval_s < 0 ? 0 : interval_s;
}
