/*
 * once.c - kl-agent --once: one cycle for cron, systemd timers and CI.
 * Carries the counters, the verifier's last hint and the registration over
 * from the last run, and prints one JSON line saying when the next run is
 * due (docs/kl-agent.md, "--once").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

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

/*
 * The status file is not ours alone to write: a count read from it is
 * clamped, so that counting on neither overflows (UBSan) nor wraps the
 * backoff exponent to 0 (no delay at all). The backoff reaches its maximum
 * long before this many failures.
 */
#define FAILURES_MAX 1000000L

static void
clamp_failures(struct kl_status *st)
{
	if (st->consecutive_failures >= 0 && st->consecutive_failures <= FAILURES_MAX)
		return;
	kl_warn("%s: consecutive_failures %ld is absurd: using %ld", "status file",
	    st->consecutive_failures, st->consecutive_failures < 0 ? 0L : FAILURES_MAX);
	st->consecutive_failures = st->consecutive_failures < 0 ? 0 : FAILURES_MAX;
}

int
agent_run_once(struct agent *a)
{
	const char *why;
	long ms;
	int rc;

	/* Carry the counters and the verifier's last hint over from the last run. */
	kl_status_read(a->status_path, &a->st);
	clamp_failures(&a->st);
	a->attempt = (unsigned)a->st.consecutive_failures;
	a->sched.last_hint = a->st.last_hint;
	agent_load_registration(a);
	a->state = kl_json_obj(a->doc, "agent") ? ST_NEGOTIATING : ST_UNREGISTERED;
	sys_signals_read(a);
	rc = a->stop ? AGENT_STOPPED : agent_cycle(a);
	if (rc == AGENT_STOPPED) {
		a->st.next_due = 0;
		agent_save_status(a);
		return KL_OK;
	}
	ms = agent_after_cycle(a, rc, &why);
	print_once(a, rc, ms, why);
	return rc;
}
