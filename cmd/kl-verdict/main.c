/*
 * kl-verdict: the verifier's verdict on the evidence kl-submit sent
 * (docs/kl-verdict.md, docs/protocol.md §6.9).
 *
 * A 202 only says the evidence was well formed; the verdict comes later and
 * the verifier does not push it to the agent. The agent may read its own
 * record, GET /v2/agents/{id} with its bearer token, which holds
 * attestation_status, attestation_count (passes), last_received_quote (set
 * after every verification, pass or fail) and last_successful_attestation
 * (set after a pass), in whole seconds of the verifier's clock.
 *
 * The rule: this evidence is judged once last_received_quote >= the second
 * in which the verifier received it (submission.evidence_received_at, from
 * the 202, on the same clock). It passed when last_successful_attestation
 * equals last_received_quote. docs/kl-verdict.md says why this is sound.
 *
 * Writes the document plus "verdict" on exit 0 (pass), 1 (fail, or a pass
 * while the verifier keeps the agent at FAIL) and 111 (no verdict in
 * verdict_timeout_seconds); stdout stays empty on every other exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_api.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

static const struct kl_cli cli = { .operands = "<document >document" };

/* The verifier's v2 agent route at its latest v2 minor (Keylime maps /v2 to 2.6 today). */
#define RECORD_PREFIX "/v2"
#define POLL_FIRST_MS 200
#define POLL_MAX_MS 1000	/* the record's times are whole seconds */

/* What kl-verdict reads of the agent's record: times are -1 for null, and 0 (Keylime's
 * value at enrollment) also means never. */
struct record {
	char status[8];		/* attestation_status: PENDING, PASS, FAIL, TIMEOUT */
	long long count;	/* attestation_count: passes */
	long long received;	/* last_received_quote: last verification, any verdict */
	long long passed;	/* last_successful_attestation: last pass */
};

struct poll {
	struct kl_api api;
	char *url;
	const char *token;
	time_t since;		/* the second the verifier received this evidence */
	struct record rec;
	int nread;		/* records read */
};

/* An integer >= 0 (or null when nullable) at results.<key>; 0 or KL_PERM after one line. */
static int
rec_int(const json_t *res, const char *key, int nullable, long long *out, const char *what)
{
	json_t *v = json_object_get(res, key);

	if (nullable && json_is_null(v)) {
		*out = -1;
		return KL_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return kl_fail(KL_PERM, "%s: results.%s is %s, not an integer >= 0%s", what, key,
		    v == NULL ? "missing" : "malformed", nullable ? " or null" : "");
	*out = json_integer_value(v);
	return KL_OK;
}

/* The v2 envelope {"code": 200, "status": "Success", "results": {...}} into r. */
static int
parse_record(const json_t *reply, const char *what, struct record *r)
{
	static const char *const known[] = { "PENDING", "PASS", "FAIL", "TIMEOUT", NULL };
	json_t *res = kl_json_obj(reply, "results");
	const char *st;
	int rc;

	if (reply == NULL)
		return kl_fail(KL_PERM, "%s: the 200 is not a JSON object", what);
	if (res == NULL)
		return kl_fail(KL_PERM, "%s: results is missing or not an object", what);
	st = kl_json_str(res, "attestation_status");
	for (size_t i = 0; st != NULL; i++) {
		if (known[i] == NULL) {
			st = NULL;
			break;
		}
		if (strcmp(st, known[i]) == 0)
			break;
	}
	if (st == NULL)
		return kl_fail(KL_PERM, "%s: results.attestation_status is %s, not PENDING, PASS, "
		    "FAIL or TIMEOUT", what, json_object_get(res, "attestation_status") ? "malformed" : "missing");
	snprintf(r->status, sizeof(r->status), "%s", st);
	if ((rc = rec_int(res, "attestation_count", 0, &r->count, what)) != KL_OK ||
	    (rc = rec_int(res, "last_received_quote", 1, &r->received, what)) != KL_OK ||
	    (rc = rec_int(res, "last_successful_attestation", 1, &r->passed, what)) != KL_OK)
		return rc;
	if (r->passed > r->received)
		return kl_fail(KL_PERM, "%s: results.last_successful_attestation %lld is after "
		    "last_received_quote %lld", what, r->passed, r->received);
	if (r->passed > 0 && r->passed == r->received && r->count == 0)
		return kl_fail(KL_PERM, "%s: results.attestation_count is 0 after a pass at %lld",
		    what, r->passed);
	return KL_OK;
}

/*
 * One GET of the record. KL_OK with pl->rec filled, or the exit code after
 * one line; *retry_doc gets a "retry" document for a 429/503 with Retry-After.
 */
static int
read_record(struct kl_prog *p, struct poll *pl, json_t **retry_doc)
{
	struct kl_http_req rq = { .method = "GET", .url = pl->url,
	    .content_type = "application/json", .bearer = pl->token };
	struct kl_http_resp resp = { 0 };
	json_t *reply = NULL;
	char what[600];
	int rc;

	snprintf(what, sizeof(what), "GET %s", pl->url);
	if ((rc = kl_http_do(&pl->api.http, &rq, &resp)) != KL_OK)
		goto out;
	if (resp.len > 0) {
		json_t *j = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL);

		if (json_is_object(j))
			reply = j;
		else
			json_decref(j);
	}
	if (resp.status != 200) {
		rc = kl_api_fail(&resp, reply, what);
		if (rc == KL_TEMP && resp.retry_after >= 0)
			*retry_doc = kl_prog_retry_doc(p, resp.status, resp.retry_after);
		goto out;
	}
	if ((rc = parse_record(reply, what, &pl->rec)) == KL_OK)
		pl->nread++;
out:
	json_decref(reply);
	kl_http_resp_release(&resp);
	return rc;
}

static json_t *
nullable(long long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

/* The document plus "verdict" (docs/contract.md). */
static json_t *
verdict_doc(const struct kl_prog *p, const struct poll *pl, const char *outcome,
    const char *received_at, uint64_t waited_ms)
{
	const struct record *r = &pl->rec;
	json_t *out = json_deep_copy(p->doc), *v;

	v = json_pack("{s:s,s:s?,s:o,s:o,s:o,s:s,s:o,s:I,s:i,s:s}",
	    "outcome", outcome,
	    "status", pl->nread ? r->status : NULL,
	    "attestation_count", pl->nread ? json_integer(r->count) : json_null(),
	    "last_received_quote", pl->nread ? nullable(r->received) : json_null(),
	    "last_successful_attestation", pl->nread ? nullable(r->passed) : json_null(),
	    "evidence_received_at", received_at,
	    "verification_seconds", strcmp(outcome, "unknown") != 0 ?
		json_integer((json_int_t)(r->received - pl->since)) : json_null(),
	    "waited_ms", (json_int_t)waited_ms,
	    "polls", pl->nread,
	    "url", pl->url);
	if (out == NULL || v == NULL) {
		json_decref(out);
		json_decref(v);
		return NULL;
	}
	json_object_del(out, "retry");
	json_object_set_new(out, "verdict", v);
	return out;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !kl_stop_requested)
		;
}

/* The document, its reference time and the record's URL; no request yet. */
static int
prepare(struct kl_prog *p, struct poll *pl, const char **received_at)
{
	json_t *agent, *sub;
	const char *id;
	int rc;

	if ((rc = kl_json_need_obj(p->doc, "agent", "stdin", &agent)) != KL_OK ||
	    (rc = kl_json_need_str(agent, "id", "stdin: agent", &id)) != KL_OK ||
	    (rc = kl_json_need_obj(p->doc, "submission", "stdin", &sub)) != KL_OK)
		return rc;
	if (*id == '\0' || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") != strlen(id))
		return kl_fail(KL_PERM, "stdin: agent.id is not a Keylime agent id");
	*received_at = kl_json_str(sub, "evidence_received_at");
	if (*received_at == NULL || kl_time_parse(*received_at, &pl->since) != 0)
		return kl_fail(KL_PERM, "stdin: submission.evidence_received_at is %s: the verifier's "
		    "202 must say when it received the evidence (run kl-submit again)",
		    *received_at == NULL ? "missing" : "not an RFC 3339 time");
	if ((pl->token = kl_json_str(kl_json_obj(p->doc, "session"), "token")) == NULL)
		return kl_fail(KL_REAUTH, "stdin: no session.token: run kl-session first");
	if ((rc = kl_api_init(&pl->api, &p->cfg)) != KL_OK)
		return rc;
	if (asprintf(&pl->url, "%s" RECORD_PREFIX "/agents/%s", pl->api.base, id) < 0)
		return kl_fail(KL_TEMP, "out of memory");
	return KL_OK;
}

/* The verdict's exit code, and the line that explains a failure. */
static int
judge(const struct poll *pl, const char *id, int passed)
{
	if (!passed)
		return kl_fail(KL_REFUSED, "the verifier failed this evidence (received in second %lld): "
		    "agent %s is FAIL and stays FAIL, even after passing attestations, until an "
		    "administrator re-adds it with keylime_tenant", (long long)pl->since, id);
	if (strcmp(pl->rec.status, "FAIL") == 0)
		return kl_fail(KL_REFUSED, "this evidence passed, but the verifier keeps agent %s at "
		    "FAIL after an earlier failure until an administrator re-adds it with keylime_tenant", id);
	return KL_OK;
}

static int
verdict(struct kl_prog *p, json_t **out)
{
	struct poll pl = { 0 };
	const char *received_at = NULL;
	uint64_t start = kl_now_ms(), deadline, now;
	long wait = POLL_FIRST_MS;
	int rc, passed = 0;

	if ((rc = prepare(p, &pl, &received_at)) != KL_OK)
		goto out;
	deadline = start + (uint64_t)p->cfg.verdict_timeout_seconds * 1000u;
	for (;;) {
		if ((rc = read_record(p, &pl, out)) != KL_OK)
			goto out;
		kl_debug("GET %s: %s, %lld passes, last verification %lld, last pass %lld", pl.url,
		    pl.rec.status, pl.rec.count, pl.rec.received, pl.rec.passed);
		if (pl.rec.received >= (long long)pl.since)
			break;
		if (kl_stop_requested) {
			rc = kl_fail(KL_TEMP, "stopped by a signal while waiting for the verdict");
			goto out;
		}
		if ((now = kl_now_ms()) >= deadline) {
			*out = verdict_doc(p, &pl, "unknown", received_at,
			    kl_now_ms() - start);
			rc = kl_fail(KL_TEMP, "GET %s: no verdict on the evidence received at %s within "
			    "%ld s (verdict_timeout_seconds); the last verification was at %lld",
			    pl.url, received_at, p->cfg.verdict_timeout_seconds, pl.rec.received);
			goto write;
		}
		/* The last poll falls on the deadline. */
		sleep_ms(now + (uint64_t)wait > deadline ? (long)(deadline - now) : wait);
		wait = wait * 2 > POLL_MAX_MS ? POLL_MAX_MS : wait * 2;
	}
	passed = pl.rec.passed > 0 && pl.rec.passed == pl.rec.received;
	*out = verdict_doc(p, &pl, passed ? "pass" : "fail", received_at, kl_now_ms() - start);
	kl_info("GET %s: evidence %s after %lld s, agent %s, %lld passes", pl.url,
	    passed ? "passed" : "failed", pl.rec.received - (long long)pl.since, pl.rec.status,
	    pl.rec.count);
	rc = judge(&pl, kl_json_str(kl_json_obj(p->doc, "agent"), "id"), passed);
write:
	if (*out == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
	} else if (rc != KL_OK) {
		/* The verdict is the result, not an error: the document goes out with it. */
		kl_json_write_stdout(*out);
		json_decref(*out);
		*out = NULL;
	}
out:
	free(pl.url);
	kl_api_release(&pl.api);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-verdict", argc, argv, &cli, verdict);
}
