/*
 * verdict.c - the verifier's verdict after a cycle (kl-verdict,
 * docs/kl-verdict.md). A 202 from kl-submit only says the evidence was well
 * formed; kl-verdict reads whether it passed. It is due after every accepted
 * submission with --verdict, after every Nth with verdict_every_cycles N.
 * The verdict goes into the status file; a change of the agent's standing
 * at the verifier is logged once, since the verifier keeps FAIL until an
 * administrator re-adds the agent (every later check would repeat it).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

bool
agent_verdict_used(const struct agent *a)
{
	return a->verdict || a->cfg.verdict_every_cycles > 0;
}

static bool
due(const struct agent *a)
{
	return a->verdict || (a->cfg.verdict_every_cycles > 0 &&
	    a->unverdicted + 1 >= a->cfg.verdict_every_cycles);
}

/* The verifier's epoch seconds (0 or null: never). */
static time_t
epoch_of(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) > 0 ? (time_t)json_integer_value(v) : 0;
}

/* Once per change, the first reading included: FAIL is what operators act on. */
static void
log_standing(const struct agent *a, const char *old)
{
	const struct kl_status_verdict *v = &a->st.verdict;

	if (v->status[0] == '\0' || strcmp(old, v->status) == 0)
		return;
	kl_notice("%s: verifier standing: %s%s%s (attestation_count %ld)%s", agent_id(a), old,
	    old[0] ? " -> " : "", v->status, v->attestation_count,
	    strcmp(v->status, "FAIL") == 0 ? ": the verifier keeps FAIL, even after passing "
	    "attestations, until an administrator re-adds the agent" : "");
}

/* kl-verdict's class and verdict (none after an error) into the status. */
static void
record(struct agent *a, int rc)
{
	struct kl_status_verdict *v = &a->st.verdict;
	json_t *vd = kl_json_obj(a->doc, "verdict");
	json_t *count = json_object_get(vd, "attestation_count");
	char old[sizeof(v->status)];
	const char *s;

	snprintf(old, sizeof(old), "%s", v->status);
	v->at = time(NULL);
	v->exit_class = rc;
	s = kl_json_str(vd, "outcome");
	snprintf(v->outcome, sizeof(v->outcome), "%s", s ? s : "");
	if (vd == NULL)
		return;	/* no reading: the standing stays as last read */
	if ((s = kl_json_str(vd, "status")) != NULL)
		snprintf(v->status, sizeof(v->status), "%s", s);
	v->attestation_count = json_is_integer(count) ? (long)json_integer_value(count) : -1;
	v->last_pass = epoch_of(json_object_get(vd, "last_successful_attestation"));
	log_standing(a, old);
}

int
agent_verdict(struct agent *a)
{
	int rc;

	a->verdict_rc = -1;
	if (!due(a)) {
		a->unverdicted++;
		return KL_OK;
	}
	a->unverdicted = 0;
	rc = agent_run_step(a, "kl-verdict");
	/* As any step: a rejected token re-authenticates once, then it reads again. */
	if (rc == KL_REAUTH && (rc = agent_reauth(a, "kl-verdict")) == KL_OK)
		rc = agent_run_step(a, "kl-verdict");
	if (rc == AGENT_STOPPED)
		return rc;
	record(a, rc);
	a->verdict_rc = rc;
	return KL_OK;
}
