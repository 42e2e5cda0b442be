/*
 * kl_backoff.h - when kl-agent tries again: backoff after failures and the
 * schedule after a success (docs/protocol.md §7, §9.3; docs/kl-agent.md).
 *
 * Failures: "full jitter" exponential backoff. The n-th consecutive failure
 * (n >= 1) waits a uniform random delay in [0, cap(n)] with
 * cap(n) = min(max, initial * 2^(n-1)). The randomness matters: agents
 * restarted together (a fleet reboot, a verifier outage) must not stay in step.
 *
 * Success: the verifier's seconds_to_next_attestation, else the last value it
 * gave, else attestation_interval_seconds; absurd values are clamped.
 */
#ifndef KL_BACKOFF_H
#define KL_BACKOFF_H

#include <stdint.h>

#include "kl_crypto.h"	/* kl_crypto_random_u64(), the r of kl_backoff_delay_ms() */

#define KL_SCHED_MAX_S 86400L	/* a hint above one day is absurd: clamp */
#define KL_LIVENESS_FACTOR 5	/* the verifier times out after 5 x quote_interval */

/* min(max_ms, initial_ms * 2^(n-1)) without overflow; 0 for n == 0. */
long kl_backoff_cap_ms(long initial_ms, long max_ms, unsigned n);

/*
 * Full jitter: r (a random 64-bit value, kl_crypto_random_u64(), so that every
 * process draws differently) mapped uniformly onto [0, cap(n)].
 */
long kl_backoff_delay_ms(long initial_ms, long max_ms, unsigned n, uint64_t r);

/*
 * A uniform random delay in [0, bound_ms) from r (0 when bound_ms <= 0): the
 * start-up splay, and the phase spread after a start or a recovery.
 */
long kl_sched_spread_ms(long bound_ms, uint64_t r);

/* Why the next cycle is due when it is (for log lines and --once output). */
enum kl_sched_why {
	KL_SCHED_HINT,		/* the reply's seconds_to_next_attestation */
	KL_SCHED_LAST_HINT,	/* the last value the verifier gave */
	KL_SCHED_INTERVAL,	/* attestation_interval_seconds */
};
const char *kl_sched_why_name(enum kl_sched_why why);

struct kl_sched {
	long last_hint;		/* last seconds_to_next_attestation seen, -1: none */
	long warned_hint;	/* last_hint when the liveness warning was given */
};

void kl_sched_init(struct kl_sched *s);

/*
 * Seconds until the next cycle after a successful one. hint is the reply's
 * seconds_to_next_attestation when has_hint (the reply may lack it). A hint
 * outside [0, KL_SCHED_MAX_S] is clamped with a warning. Warns (once per hint
 * value) when interval_s, the fallback, would exceed the verifier's liveness
 * window of KL_LIVENESS_FACTOR x the hint. *why tells which value was used.
 */
long kl_sched_next(struct kl_sched *s, int has_hint, long hint, long interval_s,
    enum kl_sched_why *why);

#endif
