/*
 * kl-session: proof-of-possession authentication at the verifier (docs/protocol.md §4).
 *
 * Reads the document with "agent" (docs/contract.md). When it already holds a
 * token for this verifier and agent that is valid for 30 s more, writes it
 * back unchanged without contacting the verifier (session creation is rate
 * limited). An input without a session takes the one kept in keylime_dir
 * (kl_token.h) the same way. Otherwise: POST /v3.0/sessions for a challenge, TPM2_Certify of
 * the AK by the AK over the decoded challenge, PATCH /v3.0/sessions/<id>
 * with the proof, and writes the document plus "session" with the token.
 * The token goes to stdout and to the 0600 file of kl_token.h only: never
 * to argv or logs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_api.h"
#include "kl_identity.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_token.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "kl_banned.h"

#define USAGE "usage: kl-session [-v] [--verifier-url URL] [--ca-certificate FILE] [--tcti TCTI] [--timeout MS] [--insecure] <document >document"

/* The verifier's challenge from the POST /sessions reply (§4.1). */
static int
parse_challenge(const json_t *reply, const char *what, const char **sid, unsigned char **nonce, size_t *nlen)
{
	json_t *data = kl_json_obj(reply, "data"), *req, *it;
	size_t i;

	*sid = kl_json_str(data, "id");
	req = json_object_get(kl_json_obj(data, "attributes"), "authentication_requested");
	if (*sid == NULL || !kl_uuid_valid(*sid) || !json_is_array(req))
		return kl_fail(KL_PERM, "%s: reply lacks data.id or authentication_requested", what);
	json_array_foreach(req, i, it) {
		const char *type = kl_json_str(it, "authentication_type");
		const char *ch = kl_json_str(kl_json_obj(it, "chosen_parameters"), "challenge");

		if (type == NULL || strcmp(type, "tpm_pop") != 0)
			continue;
		if (ch == NULL || kl_b64_decode(ch, nonce, nlen) != 0 || *nlen < 8 || *nlen > 64) {
			free(*nonce);
			*nonce = NULL;
			return kl_fail(KL_PERM, "%s: the tpm_pop challenge is not base64 of 8..64 bytes", what);
		}
		return KL_OK;
	}
	return kl_fail(KL_PERM, "%s: the verifier offers no tpm_pop authentication", what);
}

/*
 * Why the verifier may have refused our proof (401). Keylime takes only
 * RSASSA/SHA-256 signatures for PoP (docs/protocol.md §4.2, §11 U1), whatever
 * the AK: name any other scheme of ours, else suspect the enrollment.
 */
static void
pop_hint(const json_t *agent, char *out, size_t cap)
{
	json_t *ak = kl_json_obj(agent, "ak");
	const char *alg = kl_json_str(ak, "key_algorithm");
	const char *sign = kl_json_str(ak, "signing_alg"), *hash = kl_json_str(ak, "hash_alg");

	if (sign && hash && (strcmp(sign, "rsassa") != 0 || strcmp(hash, "sha256") != 0))
		snprintf(out, cap, "the verifier rejected the TPM proof: the %s AK signs with "
		    "%s/%s, and Keylime accepts only rsassa/sha256 proofs (docs/protocol.md 4.2)",
		    alg ? alg : "?", sign, hash);
	else
		snprintf(out, cap, "the verifier rejected the TPM proof: is the agent enrolled with this AK?");
}

/* TPM2_Certify of the AK by itself over the nonce (§4.2). */
static int
certify(struct kl_prog *p, const json_t *agent, const unsigned char *nonce, size_t nlen,
    char **msg, char **sig)
{
	struct kl_tpm tpm;
	struct kl_identity id;
	unsigned char *a = NULL, *s = NULL;
	size_t alen = 0, slen = 0;
	int rc;

	if ((rc = kl_tpm_open(&tpm, kl_config_tcti(&p->cfg))) != KL_OK)
		return rc;
	if ((rc = kl_identity_load(&tpm, &p->cfg, agent, &id)) == KL_OK)
		rc = kl_tpm_certify(&tpm, id.ak, nonce, nlen, &a, &alen, &s, &slen);
	kl_identity_release(&id);
	kl_tpm_close(&tpm);
	if (rc == KL_OK) {
		*msg = kl_b64_encode(a, alen);
		*sig = kl_b64_encode(s, slen);
		if (*msg == NULL || *sig == NULL)
			rc = kl_fail(KL_TEMP, "out of memory");
	}
	free(a);
	free(s);
	return rc;
}

static int
session(struct kl_prog *p, json_t **out)
{
	struct kl_http_resp r1 = { 0 }, r2 = { 0 };
	struct kl_api api = { 0 };
	json_t *agent, *ak, *body = NULL, *reply = NULL, *reply2 = NULL, *attr, *ses, *kept = NULL;
	const char *id, *pub, *sid, *eval, *token, *exp;
	unsigned char *nonce = NULL;
	size_t nlen = 0;
	char *url = NULL, *url2 = NULL, *msg = NULL, *sig = NULL, what[600], now[32];
	int rc;

	/* The AK is needed only after the POST: check it is there before it. */
	if ((rc = kl_json_need_obj(p->doc, "agent", "stdin", &agent)) != KL_OK ||
	    (rc = kl_json_need_str(agent, "id", "stdin: agent", &id)) != KL_OK ||
	    (rc = kl_json_need_obj(agent, "ak", "stdin: agent", &ak)) != KL_OK ||
	    (rc = kl_json_need_str(ak, "public", "stdin: agent.ak", &pub)) != KL_OK)
		return rc;
	if ((rc = kl_api_init(&api, &p->cfg)) != KL_OK)
		goto out;
	if (json_object_get(p->doc, "session") == NULL)
		kl_token_load(&p->cfg, api.base, id, &kept);
	if (kept != NULL || kl_token_usable(kl_json_obj(p->doc, "session"), api.base, id)) {
		*out = json_deep_copy(p->doc);
		if (kept != NULL)
			json_object_set(*out, "session", kept);
		kl_info("reusing the session token valid until %s",
		    kl_json_str(kl_json_obj(*out, "session"), "expires_at"));
		json_object_del(*out, "retry");
		goto out;
	}

	url = kl_api_url(&api, "/sessions");
	body = json_pack("{s:{s:s,s:{s:s,s:[{s:s,s:s}]}}}", "data", "type", "session",
	    "attributes", "agent_id", id, "authentication_supported",
	    "authentication_class", "pop", "authentication_type", "tpm_pop");
	if (url == NULL || body == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	snprintf(what, sizeof(what), "POST %s", url);
	if ((rc = kl_api_call(&api, "POST", url, NULL, body, &r1, &reply)) != KL_OK)
		goto out;
	if (r1.status != 200) {
		rc = kl_api_fail(&r1, reply, what);
		goto retry;
	}
	if ((rc = parse_challenge(reply, what, &sid, &nonce, &nlen)) != KL_OK)
		goto out;
	if ((rc = certify(p, agent, nonce, nlen, &msg, &sig)) != KL_OK)
		goto out;

	json_decref(body);
	body = json_pack("{s:{s:s,s:s,s:{s:s,s:[{s:s,s:s,s:{s:s,s:s}}]}}}", "data",
	    "type", "session", "id", sid, "attributes", "agent_id", id,
	    "authentication_provided", "authentication_class", "pop",
	    "authentication_type", "tpm_pop", "data", "message", msg, "signature", sig);
	{
		char path[128];

		snprintf(path, sizeof(path), "/sessions/%s", sid);
		url2 = kl_api_url(&api, path);
	}
	if (body == NULL || url2 == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	snprintf(what, sizeof(what), "PATCH %s", url2);
	if ((rc = kl_api_call(&api, "PATCH", url2, NULL, body, &r2, &reply2)) != KL_OK)
		goto out;
	if (r2.status == 401 || r2.status == 404) {
		/*
		 * 401: the verifier rejected the proof (not the AK it enrolled, or
		 * a scheme it does not take); 404: the session vanished. Another
		 * kl-session is the only cure for 404; 401 needs the operator.
		 */
		char hint[256];

		if (r2.status == 401)
			pop_hint(agent, hint, sizeof(hint));
		kl_api_fail_hint(&r2, reply2, what, r2.status == 401 ? hint : NULL);
		rc = r2.status == 401 ? KL_REFUSED : KL_TEMP;
		goto out;
	}
	if (r2.status != 200) {
		rc = kl_api_fail(&r2, reply2, what);
		kl_http_resp_release(&r1);
		r1 = r2;	/* the retry below reads r1; r2 is now released via r1 */
		memset(&r2, 0, sizeof(r2));
		goto retry;
	}
	attr = kl_json_obj(kl_json_obj(reply2, "data"), "attributes");
	eval = kl_json_str(attr, "evaluation");
	token = kl_json_str(attr, "token");
	exp = kl_json_str(attr, "token_expires_at");
	if (eval == NULL || strcmp(eval, "pass") != 0) {
		rc = kl_fail(eval && !strcmp(eval, "fail") ? KL_REFUSED : KL_PERM,
		    "%s: evaluation %s: the agent is not enrolled at the verifier, or the challenge expired",
		    what, eval ? eval : "(missing)");
		goto out;
	}
	if (token == NULL || strlen(token) < 8 || strlen(token) > 512 ||
	    strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(token)) {
		rc = kl_fail(KL_PERM, "%s: evaluation pass without a well-formed token", what);
		goto out;
	}
	kl_time_format(time(NULL), now);
	if (exp == NULL) {
		/* The Rust agent assumes 15 minutes when the verifier says nothing (§9.1). */
		static char fallback[32];

		kl_time_format(time(NULL) + 900, fallback);
		exp = fallback;
	} else {
		time_t t;

		if (kl_time_parse(exp, &t) != 0) {
			rc = kl_fail(KL_PERM, "%s: token_expires_at is not a time", what);
			goto out;
		}
	}
	ses = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "verifier_url", api.base, "agent_id", id,
	    "token", token, "session_id", sid, "created_at", now, "expires_at", exp);
	if (ses == NULL || (*out = json_deep_copy(p->doc)) == NULL) {
		json_decref(ses);
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	json_object_del(*out, "retry");
	json_object_set_new(*out, "session", ses);
	kl_token_save(&p->cfg, ses);
	kl_info("authenticated at %s, token valid until %s", api.base, exp);
	goto out;
retry:
	if (rc == KL_TEMP && r1.retry_after >= 0)
		*out = kl_prog_retry_doc(p, r1.status, r1.retry_after);
out:
	json_decref(kept);
	free(msg);
	free(sig);
	free(nonce);
	free(url);
	free(url2);
	json_decref(body);
	json_decref(reply);
	json_decref(reply2);
	kl_http_resp_release(&r1);
	kl_http_resp_release(&r2);
	kl_api_release(&api);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-session", argc, argv, USAGE, session);
}
