/*
 * kl-session: proof-of-possession authentication at the verifier (docs/protocol.md §4).
 *
 * Reads the document with "agent" (docs/contract.md). When it already holds a
 * token for this verifier and agent that is valid for 30 s more, writes it
 * back unchanged without contacting the verifier (session creation is rate
 * limited). An input without a session takes the one kept in keylime_dir
 * (kl_token.h) the same way. Otherwise: POST /v3.0/sessions for a challenge,
 * TPM2_Certify of the AK by the AK over the decoded challenge, PATCH
 * /v3.0/sessions/<id> with the proof, and writes the document plus "session"
 * with the token. The token goes to stdout and to the 0600 file of kl_token.h
 * only: never to argv or logs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_api.h"
#include "kl_identity.h"
#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_token.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "kl_banned.h"

/* No options of its own: the shared ones (kl_cli.h). */
static const struct kl_cli_opt own[] = {
	KL_HTTP_DRY_RUN_OPT,
	KL_CLI_END,
};
static const struct kl_cli cli = { .opts = own, .operands = "<document >document" };
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

/* What one kl-session run works with. */
struct ses {
	struct kl_prog *p;
	struct kl_api api;
	const json_t *agent;
	const char *id;		/* agent.id */
	char what[600];		/* "POST <url>", for error lines */
};

/* A call that failed: exit 111 with a Retry-After writes the retry document. */
static int
call_failed(struct ses *s, const struct kl_http_resp *r, const json_t *reply, json_t **out)
{
	int rc = kl_api_fail(r, reply, s->what);

	if (rc == KL_TEMP && r->retry_after >= 0)
		*out = kl_prog_retry_doc(s->p, r->status, r->retry_after);
	return rc;
}

/* method url with body (both taken): *r and *reply; s->what names the call. */
static int
call(struct ses *s, const char *method, char *url, json_t *body, struct kl_http_resp *r,
    json_t **reply)
{
	int rc;

	if (url == NULL || body == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
	} else {
		snprintf(s->what, sizeof(s->what), "%s %s", method, url);
		rc = kl_api_call(&s->api, method, url, NULL, body, r, reply);
	}
	free(url);
	json_decref(body);
	return rc;
}

/* POST /sessions: the session id and the verifier's nonce (§4.1). */
static int
post_session(struct ses *s, char **sid, unsigned char **nonce, size_t *nlen, json_t **out)
{
	struct kl_http_resp r = { 0 };
	json_t *reply = NULL;
	const char *id;
	int rc;

	rc = call(s, "POST", kl_api_url(&s->api, "/sessions"),
	    json_pack("{s:{s:s,s:{s:s,s:[{s:s,s:s}]}}}", "data", "type", "session",
	    "attributes", "agent_id", s->id, "authentication_supported",
	    "authentication_class", "pop", "authentication_type", "tpm_pop"), &r, &reply);
	if (rc == KL_OK && r.status != 200)
		rc = call_failed(s, &r, reply, out);
	else if (rc == KL_OK && (rc = parse_challenge(reply, s->what, &id, nonce, nlen)) == KL_OK &&
	    (*sid = strdup(id)) == NULL)
		rc = kl_fail(KL_TEMP, "out of memory");
	json_decref(reply);
	kl_http_resp_release(&r);
	return rc;
}

/* PATCH /sessions/<sid> with the proof: the verifier's attributes on 200 (§4.2). */
static int
patch_session(struct ses *s, const char *sid, const char *msg, const char *sig,
    json_t **attr, json_t **out)
{
	struct kl_http_resp r = { 0 };
	json_t *reply = NULL;
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "/sessions/%s", sid);
	rc = call(s, "PATCH", kl_api_url(&s->api, path),
	    json_pack("{s:{s:s,s:s,s:{s:s,s:[{s:s,s:s,s:{s:s,s:s}}]}}}", "data",
	    "type", "session", "id", sid, "attributes", "agent_id", s->id,
	    "authentication_provided", "authentication_class", "pop",
	    "authentication_type", "tpm_pop", "data", "message", msg, "signature", sig),
	    &r, &reply);
	if (rc == KL_OK && (r.status == 401 || r.status == 404)) {
		/*
		 * 401: the verifier rejected the proof (not the AK it enrolled, or
		 * a scheme it does not take); 404: the session vanished. Another
		 * kl-session is the only cure for 404; 401 needs the operator.
		 */
		char hint[256];

		if (r.status == 401)
			pop_hint(s->agent, hint, sizeof(hint));
		kl_api_fail_hint(&r, reply, s->what, r.status == 401 ? hint : NULL);
		rc = r.status == 401 ? KL_REFUSED : KL_TEMP;
	} else if (rc == KL_OK && r.status != 200) {
		rc = call_failed(s, &r, reply, out);
	} else if (rc == KL_OK) {
		*attr = json_incref(kl_json_obj(kl_json_obj(reply, "data"), "attributes"));
	}
	json_decref(reply);
	kl_http_resp_release(&r);
	return rc;
}

/* The "session" member from the PATCH's attributes, once they say "pass". */
static int
session_member(const struct ses *s, const char *sid, const json_t *attr, json_t **member)
{
	const char *eval = kl_json_str(attr, "evaluation"), *token = kl_json_str(attr, "token");
	const char *exp = kl_json_str(attr, "token_expires_at");
	char now[32], fallback[32];
	time_t t;

	if (eval == NULL || strcmp(eval, "pass") != 0)
		return kl_fail(eval && !strcmp(eval, "fail") ? KL_REFUSED : KL_PERM,
		    "%s: evaluation %s: the agent is not enrolled at the verifier, or the challenge expired",
		    s->what, eval ? eval : "(missing)");
	if (token == NULL || strlen(token) < 8 || strlen(token) > 512 ||
	    strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(token))
		return kl_fail(KL_PERM, "%s: evaluation pass without a well-formed token", s->what);
	if (exp == NULL) {
		/* The Rust agent assumes 15 minutes when the verifier says nothing (§9.1). */
		kl_time_format(time(NULL) + 900, fallback);
		exp = fallback;
	} else if (kl_time_parse(exp, &t) != 0) {
		return kl_fail(KL_PERM, "%s: token_expires_at is not a time", s->what);
	}
	kl_time_format(time(NULL), now);
	*member = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "verifier_url", s->api.base,
	    "agent_id", s->id, "token", token, "session_id", sid, "created_at", now,
	    "expires_at", exp);
	if (*member == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	kl_info("authenticated at %s, token valid until %s", s->api.base, exp);
	return KL_OK;
}

/* The input document, "retry" dropped, with member (taken) as "session". */
static int
output(const struct ses *s, json_t *member, json_t **out)
{
	if ((*out = json_deep_copy(s->p->doc)) == NULL) {
		json_decref(member);
		return kl_fail(KL_TEMP, "out of memory");
	}
	json_object_del(*out, "retry");
	if (member)
		json_object_set_new(*out, "session", member);
	return KL_OK;
}

/* POST for a challenge, the TPM's proof, PATCH with it: a new token. */
static int
authenticate(struct ses *s, json_t **out)
{
	unsigned char *nonce = NULL;
	size_t nlen = 0;
	char *sid = NULL, *msg = NULL, *sig = NULL;
	json_t *attr = NULL, *member = NULL;
	int rc;

	if ((rc = post_session(s, &sid, &nonce, &nlen, out)) == KL_OK &&
	    (rc = certify(s->p, s->agent, nonce, nlen, &msg, &sig)) == KL_OK &&
	    (rc = patch_session(s, sid, msg, sig, &attr, out)) == KL_OK &&
	    (rc = session_member(s, sid, attr, &member)) == KL_OK) {
		kl_token_save(&s->p->cfg, member);	/* the next run reuses it (kl_token.h) */
		rc = output(s, member, out);
	}
	json_decref(attr);
	free(sid);
	free(msg);
	free(sig);
	free(nonce);
	return rc;
}

static int
session(struct kl_prog *p, json_t **out)
{
	struct ses s = { .p = p };
	json_t *agent, *ak, *kept = NULL;
	const char *pub;
	int rc;

	/* The AK is needed only after the POST: check it is there before it. */
	if ((rc = kl_json_need_obj(p->doc, "agent", "stdin", &agent)) != KL_OK ||
	    (rc = kl_json_need_str(agent, "id", "stdin: agent", &s.id)) != KL_OK ||
	    (rc = kl_json_need_obj(agent, "ak", "stdin: agent", &ak)) != KL_OK ||
	    (rc = kl_json_need_str(ak, "public", "stdin: agent.ak", &pub)) != KL_OK)
		return rc;
	s.agent = agent;
	if ((rc = kl_api_init(&s.api, &p->cfg)) == KL_OK) {
		/* A token in the input, else the one kept in keylime_dir (kl_token.h). */
		if (json_object_get(p->doc, "session") == NULL)
			kl_token_load(&p->cfg, s.api.base, s.id, &kept);
		if (kept != NULL || kl_token_usable(kl_json_obj(p->doc, "session"), s.api.base, s.id)) {
			kl_info("reusing the session token valid until %s", kl_json_str(kept ? kept :
			    kl_json_obj(p->doc, "session"), "expires_at"));
			rc = output(&s, kept, out);	/* takes kept */
			kept = NULL;
		} else {
			rc = authenticate(&s, out);
		}
	}
	json_decref(kept);
	kl_api_release(&s.api);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-session", argc, argv, &cli, session);
}
