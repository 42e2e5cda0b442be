/*
 * kl-submit: phase 2 of a push attestation (docs/protocol.md §6).
 *
 * Reads the document with "agent", "session", "challenge" and "evidence"
 * (docs/contract.md), checks that the evidence answers the challenge item for
 * item, PATCHes it to the attestation URL from negotiation and expects 202.
 * Writes the document plus "submission" with seconds_to_next_attestation.
 * Never sends incomplete evidence; never contacts the verifier when the
 * challenge has expired (exit 3) or no token is there (exit 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_api.h"
#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_token.h"
#include "kl_util.h"
#include "kl_banned.h"

/* No options of its own: the shared ones (kl_cli.h). */
static const struct kl_cli_opt own[] = {
	KL_HTTP_DRY_RUN_OPT,
	KL_CLI_END,
};
static const struct kl_cli cli = { .opts = own, .operands = "<document >document" };

/* A non-empty string of strict base64 (what the verifier casts as binary, §6.3.2). */
static int
is_b64(const json_t *v)
{
	unsigned char *raw = NULL;
	size_t n = 0;
	int ok = json_is_string(v) && json_string_length(v) > 0 &&
	    kl_b64_decode(json_string_value(v), &raw, &n) == 0 && n > 0;

	free(raw);
	return ok;
}

/* IMA lines (§6.5): each ends in '\n', and entry_count says how many there are. */
static int
ima_ok(const json_t *data)
{
	json_t *e = json_object_get(data, "entries"), *c = json_object_get(data, "entry_count");
	const char *t = json_string_value(e);
	size_t len = json_string_length(e), lines = 0;

	if (t == NULL || !json_is_integer(c) || (len > 0 && t[len - 1] != '\n'))
		return 0;
	for (const char *p = t; (p = memchr(p, '\n', len - (size_t)(p - t))) != NULL; p++)
		lines++;
	return json_integer_value(c) >= 0 && (size_t)json_integer_value(c) == lines;
}

/* What each requested item must carry in "data" (docs/protocol.md §6.2-§6.5). */
static int
check_item(const json_t *item, const char *type, size_t i)
{
	const char *class = strcmp(type, "tpm_quote") == 0 ? "certification" : "log";
	json_t *data = kl_json_obj(item, "data");
	const char *t = kl_json_str(item, "evidence_type");
	const char *c = kl_json_str(item, "evidence_class");
	char where[64];

	snprintf(where, sizeof(where), "stdin: evidence.evidence_collected[%zu]", i);
	if (t == NULL || strcmp(t, type) != 0 || c == NULL || strcmp(c, class) != 0)
		return kl_fail(KL_PERM, "%s: is %s, the verifier asked for %s",
		    where, t ? t : "(no evidence_type)", type);
	if (data == NULL)
		return kl_fail(KL_PERM, "%s: \"data\" is missing", where);
	if (strcmp(type, "tpm_quote") == 0) {
		static const char *const need[] = { "subject_data", "message", "signature" };

		for (size_t k = 0; k < 3; k++)
			if (!is_b64(json_object_get(data, need[k])))
				return kl_fail(KL_PERM, "%s: data.%s is missing, empty or not base64",
				    where, need[k]);
	} else if (strcmp(type, "ima_log") == 0) {
		if (!ima_ok(data))
			return kl_fail(KL_PERM, "%s: data.entries must be whole lines and "
			    "data.entry_count their number", where);
	} else if (!is_b64(json_object_get(data, "entries"))) {
		return kl_fail(KL_PERM, "%s: data.entries is missing, empty or not base64", where);
	}
	return KL_OK;
}

/* The evidence must answer this challenge, completely and in order. */
static int
check_evidence(const json_t *ch, const json_t *ev)
{
	json_t *req = json_object_get(ch, "requested");
	json_t *got = json_object_get(ev, "evidence_collected");
	json_t *q = kl_json_obj(ch, "tpm_quote");
	size_t i;
	json_t *v;

	if (!json_is_array(req) || json_array_size(req) == 0)
		return kl_fail(KL_PERM, "stdin: challenge.requested is missing or empty");
	if (!json_is_array(got))
		return kl_fail(KL_PERM, "stdin: evidence.evidence_collected is missing");
	if (json_array_size(got) != json_array_size(req))
		return kl_fail(KL_PERM, "stdin: evidence has %zu items, the verifier asked for %zu",
		    json_array_size(got), json_array_size(req));
	if (q != NULL) {
		const char *want = kl_json_str(q, "challenge");
		const char *have = kl_json_str(ev, "challenge");

		if (want == NULL || have == NULL || strcmp(want, have) != 0)
			return kl_fail(KL_PERM, "stdin: the evidence was quoted for another challenge: run kl-quote again");
	}
	json_array_foreach(req, i, v) {
		if (!json_is_string(v))
			return kl_fail(KL_PERM, "stdin: challenge.requested[%zu] is not a string", i);
		if (check_item(json_array_get(got, i), json_string_value(v), i) != KL_OK)
			return KL_PERM;
	}
	return KL_OK;
}

static int
expired(const json_t *ch)
{
	const char *s = kl_json_str(ch, "expires_at");
	time_t t;

	return s != NULL && kl_time_parse(s, &t) == 0 && t <= time(NULL);
}

static int
submit(struct kl_prog *p, json_t **out)
{
	struct kl_http_resp resp = { 0 };
	struct kl_api api;
	json_t *agent, *session, *ch, *ev, *body = NULL, *reply = NULL, *sub, *secs = NULL, *recv;
	const char *id, *token, *loc;
	char *url = NULL, what[600], now[32];
	time_t t;
	int rc;

	if ((rc = kl_json_need_obj(p->doc, "agent", "stdin", &agent)) != KL_OK ||
	    (rc = kl_json_need_str(agent, "id", "stdin: agent", &id)) != KL_OK ||
	    (rc = kl_json_need_obj(p->doc, "challenge", "stdin", &ch)) != KL_OK ||
	    (rc = kl_json_need_obj(p->doc, "evidence", "stdin", &ev)) != KL_OK)
		return rc;
	if ((rc = check_evidence(ch, ev)) != KL_OK)
		return rc;
	session = kl_json_obj(p->doc, "session");
	if ((token = kl_json_str(session, "token")) == NULL)
		return kl_fail(KL_REAUTH, "stdin: no session.token: run kl-session first");
	if (expired(ch))
		return kl_fail(KL_RENEGOTIATE, "challenge expired at %s: run kl-negotiate again",
		    kl_json_str(ch, "expires_at"));
	if ((rc = kl_api_init(&api, &p->cfg)) != KL_OK)
		goto out;
	loc = kl_json_str(ch, "attestation_url");
	if (loc != NULL) {
		if ((url = kl_api_attestation_url(&api, loc, id)) == NULL) {
			char clean[200];

			kl_log_sanitize(clean, sizeof(clean), loc, strlen(loc));
			rc = kl_fail(KL_PERM, "stdin: challenge.attestation_url %s is not an attestation "
			    "of agent %s on %s", clean, id, api.base);
			goto out;
		}
	} else {
		char path[512];

		snprintf(path, sizeof(path), "/agents/%s/attestations/latest", id);
		url = kl_api_url(&api, path);
	}
	body = json_pack("{s:{s:s,s:{s:O}}}", "data", "type", "attestation",
	    "attributes", "evidence_collected", json_object_get(ev, "evidence_collected"));
	if (url == NULL || body == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	snprintf(what, sizeof(what), "PATCH %s", url);
	kl_info("%s: submitting %zu evidence items", what,
	    json_array_size(json_object_get(ev, "evidence_collected")));
	if ((rc = kl_api_call(&api, "PATCH", url, token, body, &resp, &reply)) != KL_OK)
		goto out;
	if (resp.status == 404) {
		/* The attestation is gone (agent re-enrolled or index reset): start over. */
		kl_api_fail(&resp, reply, what);
		rc = KL_RENEGOTIATE;
		goto out;
	}
	if (resp.status != 202) {
		rc = kl_api_fail(&resp, reply, what);
		if (rc == KL_REAUTH)
			kl_token_drop(&p->cfg, token);	/* one PoP per token, not per 401 */
		if (rc == KL_TEMP && resp.retry_after >= 0)
			*out = kl_prog_retry_doc(p, resp.status, resp.retry_after);
		goto out;
	}
	secs = json_object_get(kl_json_obj(reply, "meta"), "seconds_to_next_attestation");
	if (secs != NULL && (!json_is_integer(secs) || json_integer_value(secs) < 0)) {
		kl_warn("%s: meta.seconds_to_next_attestation is not a non-negative integer: ignored", what);
		secs = NULL;
	} else if (secs == NULL) {
		kl_warn("%s: 202 without meta.seconds_to_next_attestation", what);
	}
	/* The verifier's own clock: kl-verdict compares its record's times with it. */
	recv = json_object_get(kl_json_obj(kl_json_obj(reply, "data"), "attributes"),
	    "evidence_received_at");
	if (recv != NULL && (!json_is_string(recv) || kl_time_parse(json_string_value(recv), &t) != 0)) {
		kl_warn("%s: data.attributes.evidence_received_at is not an RFC 3339 time: ignored", what);
		recv = NULL;
	}
	kl_time_format(time(NULL), now);
	sub = json_pack("{s:i,s:s,s:s,s:O?,s:O?}", "status", 202, "attestation_url", url,
	    "submitted_at", now, "seconds_to_next_attestation", secs, "evidence_received_at", recv);
	if ((*out = json_deep_copy(p->doc)) == NULL || sub == NULL) {
		json_decref(sub);
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	json_object_del(*out, "retry");
	json_object_del(*out, "verdict");
	json_object_set_new(*out, "submission", sub);
	kl_info("%s: accepted (202), next attestation in %lld s", what,
	    secs ? (long long)json_integer_value(secs) : -1LL);
out:
	json_decref(reply);
	json_decref(body);
	free(url);
	kl_http_resp_release(&resp);
	kl_api_release(&api);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-submit", argc, argv, &cli, submit);
}
