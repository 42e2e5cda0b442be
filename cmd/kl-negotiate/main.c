/*
 * kl-negotiate: phase 1 of a push attestation (docs/protocol.md §5).
 *
 * Reads the document with "agent" and "session" (docs/contract.md), reads the
 * TPM's capabilities (PCR banks, signature schemes), counts the IMA and UEFI
 * log entries, and POSTs them to /v3.0/agents/<id>/attestations. From the 201
 * it takes the attestation URL (Location), the nonce and the chosen
 * parameters, and writes the document plus "challenge" (dropping the
 * "evidence" and "submission" of an earlier cycle).
 * Exit codes: docs/contract.md; 429/503 with Retry-After write a "retry" member.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_api.h"
#include "kl_ima.h"
#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_token.h"
#include "kl_tpm.h"
#include "kl_uefi.h"
#include "kl_util.h"
#include "kl_banned.h"

/* No options of its own: the shared ones (kl_cli.h). */
static const struct kl_cli_opt own[] = {
	KL_HTTP_DRY_RUN_OPT,
	KL_CLI_END,
};
static const struct kl_cli cli = { .opts = own, .operands = "<document >document" };

/*
 * A restricted AK signs with its own scheme only, so of the schemes the TPM
 * implements we offer just that one (§5.1.1: "signature schemes usable with
 * this AK"). Replaces caps.signature_schemes.
 */
static int
usable_schemes(json_t *caps, const char *sign)
{
	json_t *all = json_object_get(caps, "signature_schemes"), *v;
	size_t i;

	json_array_foreach(all, i, v) {
		if (!json_is_string(v) || strcmp(json_string_value(v), sign) != 0)
			continue;
		if (json_object_set_new(caps, "signature_schemes", json_pack("[s]", sign)) != 0)
			return kl_fail(KL_TEMP, "out of memory");
		return KL_OK;
	}
	return kl_fail(KL_PERM, "the TPM does not implement the AK's signature scheme %s", sign);
}

/* The tpm_quote capabilities item (§5.1.1): TPM banks and schemes, and our AK. */
static int
quote_item(struct kl_prog *p, const json_t *ak, json_t **item)
{
	struct kl_tpm tpm;
	json_t *caps = NULL, *key;
	const char *pub, *alg, *hash, *sign, *name;
	long long bits;
	int rc;

	if ((rc = kl_json_need_str(ak, "public", "stdin: agent.ak", &pub)) != KL_OK ||
	    (rc = kl_json_need_str(ak, "key_algorithm", "stdin: agent.ak", &alg)) != KL_OK ||
	    (rc = kl_json_need_int(ak, "key_size", "stdin: agent.ak", &bits)) != KL_OK ||
	    (rc = kl_json_need_str(ak, "hash_alg", "stdin: agent.ak", &hash)) != KL_OK ||
	    (rc = kl_json_need_str(ak, "signing_alg", "stdin: agent.ak", &sign)) != KL_OK)
		return rc;
	name = kl_json_str(ak, "name");
	if ((rc = kl_tpm_open(&tpm, kl_config_tcti(&p->cfg))) != KL_OK)
		return rc;
	rc = kl_tpm_caps(&tpm, &caps);
	kl_tpm_close(&tpm);
	if (rc != KL_OK)
		return rc;
	if ((rc = usable_schemes(caps, sign)) != KL_OK) {
		json_decref(caps);
		return rc;
	}
	/*
	 * allowable_* pin the verifier to what a restricted AK can sign with;
	 * without them it may pick sha384/sha512 first (§5.1.1).
	 */
	key = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[s],s:[s]}",
	    "key_class", "asymmetric", "key_algorithm", alg, "key_size", (json_int_t)bits,
	    "server_identifier", p->cfg.certification_keys_server_identifier,
	    "public", pub, "allowable_hash_algorithms", hash,
	    "allowable_signature_schemes", sign);
	if (key != NULL && name != NULL)
		json_object_set_new(key, "local_identifier", json_string(name));
	*item = json_pack("{s:s,s:s,s:{s:s,s:O,s:O,s:O,s:[o]}}",
	    "evidence_class", "certification", "evidence_type", "tpm_quote",
	    "capabilities", "component_version", "2.0",
	    "hash_algorithms", json_object_get(caps, "hash_algorithms"),
	    "signature_schemes", json_object_get(caps, "signature_schemes"),
	    "available_subjects", json_object_get(caps, "available_subjects"),
	    "certification_keys", key);
	json_decref(caps);
	return *item ? KL_OK : kl_fail(KL_PERM, "TPM capabilities incomplete");
}

/* The log items (§5.1.2, §5.1.3), when the logs exist on this machine. */
static int
log_items(struct kl_prog *p, time_t boot, json_t *items)
{
	char *ima = kl_config_path(&p->cfg, p->cfg.ima_ml_path, NULL);
	char *uefi = kl_config_path(&p->cfg, p->cfg.measuredboot_ml_path, NULL);
	char *ckpt = kl_config_path(&p->cfg, KL_IMA_CHECKPOINT_NAME, NULL);
	int rc = KL_OK;

	/*
	 * A log that cannot be read or parsed is left out of the offer with a
	 * warning: the verifier may not want it, and refusing here would block
	 * attestation altogether. kl-quote fails if it is asked for all the same.
	 */
	if (uefi && access(uefi, F_OK) == 0) {
		uint64_t n;

		if (kl_uefi_probe(uefi, ": not offered", &n) == KL_OK)
			json_array_append_new(items, json_pack("{s:s,s:s,s:{s:s,s:I,s:b,s:b,s:[s]}}",
			    "evidence_class", "log", "evidence_type", "uefi_log", "capabilities",
			    "evidence_version", p->cfg.uefi_logs_evidence_version,
			    "entry_count", (json_int_t)n, "supports_partial_access", 0,
			    "appendable", 0, "formats", "application/octet-stream"));
	} else {
		kl_debug("no UEFI log at %s", uefi ? uefi : "?");
	}
	if (ima && access(ima, F_OK) == 0) {
		uint64_t n;

		if ((rc = kl_ima_count(ima, ckpt, boot, &n)) != KL_OK)
			goto out;
		kl_debug("IMA log %s: %" PRIu64 " entries; read %" PRIu64 " bytes of it",
		    ima, n, kl_ima_bytes_read());
		if (n == 0) {
			/* The verifier answers 422 to entry_count 0 (§5.1.3). */
			kl_warn("IMA log %s is empty: not offered", ima);
		} else {
			json_array_append_new(items, json_pack("{s:s,s:s,s:{s:I,s:b,s:b,s:[s]}}",
			    "evidence_class", "log", "evidence_type", "ima_log", "capabilities",
			    "entry_count", (json_int_t)n, "supports_partial_access", 1,
			    "appendable", 1, "formats", "text/plain"));
		}
	} else {
		kl_debug("no IMA log at %s", ima ? ima : "?");
	}
out:
	free(ima);
	free(uefi);
	free(ckpt);
	return rc;
}

static int
bad_reply(const char *what, const char *fmt, const char *detail)
{
	return kl_fail(KL_PERM, "%s: 201 reply %s%s", what, fmt, detail ? detail : "");
}

/* One evidence_requested item of the 201 into the challenge member. */
static int
parse_requested(const json_t *it, size_t i, const json_t *ak, const char *what, json_t *ch)
{
	const char *type = kl_json_str(it, "evidence_type");
	json_t *cp = kl_json_obj(it, "chosen_parameters");
	char item[96];

	snprintf(item, sizeof(item), "evidence_requested[%zu]", i);
	if (type == NULL || (cp == NULL && strcmp(type, "uefi_log") != 0))
		return bad_reply(what, "has a malformed ", item);
	if (json_object_get(ch, type) != NULL)
		return bad_reply(what, "requests the same evidence twice in ", item);
	if (!strcmp(type, "tpm_quote")) {
		const char *nonce = kl_json_str(cp, "challenge");
		const char *hash = kl_json_str(cp, "hash_algorithm");
		const char *sign = kl_json_str(cp, "signature_scheme");
		json_t *pcrs, *v;
		unsigned char *raw = NULL;
		uint32_t seen = 0;
		size_t n, k;

		if (!nonce || !hash || !sign)
			return bad_reply(what, "lacks challenge/hash_algorithm/signature_scheme in ", item);
		if (kl_b64_decode(nonce, &raw, &n) != 0 || n < 8 || n > 64) {
			free(raw);
			return bad_reply(what, "has a challenge that is not base64 of 8..64 bytes in ", item);
		}
		free(raw);
		if (strcmp(hash, kl_json_str(ak, "hash_alg")) || strcmp(sign, kl_json_str(ak, "signing_alg"))) {
			char h[32], s[32];

			kl_log_sanitize(h, sizeof(h), hash, strlen(hash));
			kl_log_sanitize(s, sizeof(s), sign, strlen(sign));
			return kl_fail(KL_PERM, "%s: the verifier chose %s/%s, but the AK signs only with %s/%s",
			    what, s, h, kl_json_str(ak, "signing_alg"), kl_json_str(ak, "hash_alg"));
		}
		pcrs = json_object_get(kl_json_obj(cp, "selected_subjects"), hash);
		if (!json_is_array(pcrs) || json_array_size(pcrs) == 0)
			return bad_reply(what, "selects no PCRs of the chosen bank in ", item);
		json_array_foreach(pcrs, k, v) {
			json_int_t pcr = json_integer_value(v);

			if (!json_is_integer(v) || pcr < 0 || pcr > 23)
				return bad_reply(what, "selects a PCR outside 0..23 in ", item);
			if (seen & (1u << pcr))
				return bad_reply(what, "selects a PCR twice in ", item);
			seen |= 1u << pcr;
		}
		json_object_set_new(ch, "tpm_quote", json_pack("{s:s,s:s,s:s,s:O}",
		    "challenge", nonce, "hash_algorithm", hash, "signature_scheme", sign, "pcrs", pcrs));
	} else if (!strcmp(type, "ima_log")) {
		json_t *off = json_object_get(cp, "starting_offset");
		json_t *cnt = json_object_get(cp, "entry_count");

		if (!json_is_integer(off) || json_integer_value(off) < 0)
			return bad_reply(what, "has no valid starting_offset in ", item);
		if (cnt != NULL && !json_is_null(cnt) && (!json_is_integer(cnt) || json_integer_value(cnt) < 0))
			return bad_reply(what, "has an invalid entry_count in ", item);
		json_object_set_new(ch, "ima_log", json_pack("{s:O,s:O}", "starting_offset", off,
		    "entry_count", cnt && json_is_integer(cnt) ? cnt : json_null()));
	} else if (!strcmp(type, "uefi_log")) {
		json_object_set_new(ch, "uefi_log", json_object());
	} else {
		/* We cannot answer an item we do not know, and the PATCH must answer all (§6.2). */
		char t[64];

		kl_log_sanitize(t, sizeof(t), type, strlen(type));
		return kl_fail(KL_PERM, "%s: the verifier requests evidence type \"%s\", which kl does not produce", what, t);
	}
	json_array_append_new(json_object_get(ch, "requested"), json_string(type));
	return KL_OK;
}

static int
parse_201(struct kl_api *api, const struct kl_http_resp *resp, const json_t *reply,
    const char *id, const json_t *ak, time_t boot, const char *what, json_t **ch)
{
	json_t *attr = kl_json_obj(kl_json_obj(reply, "data"), "attributes");
	json_t *req = json_object_get(attr, "evidence_requested"), *it;
	const char *exp = kl_json_str(attr, "challenges_expire_at");
	char *url, bt[32];
	time_t t;
	size_t i;
	int rc;

	if (reply == NULL || attr == NULL || !json_is_array(req))
		return bad_reply(what, "is not a JSON:API attestation with evidence_requested", NULL);
	if (resp->location == NULL)
		return bad_reply(what, "has no Location header", NULL);
	if ((url = kl_api_attestation_url(api, resp->location, id)) == NULL) {
		char loc[200];

		kl_log_sanitize(loc, sizeof(loc), resp->location, strlen(resp->location));
		return kl_fail(KL_PERM, "%s: 201 reply has Location \"%s\", not an attestation of "
		    "this agent on %s", what, loc, api->base);
	}
	kl_time_format(boot, bt);
	*ch = json_pack("{s:s,s:s,s:[]}", "attestation_url", url, "boot_time", bt, "requested");
	free(url);
	if (json_array_size(req) == 0) {
		json_decref(*ch);
		*ch = NULL;
		return kl_fail(KL_REFUSED, "%s: the verifier requests no evidence: the agent was enrolled "
		    "without a TPM or runtime policy (re-enroll it with one)", what);
	}
	if (exp == NULL || kl_time_parse(exp, &t) != 0) {
		rc = bad_reply(what, "lacks a valid challenges_expire_at", NULL);
		goto fail;
	}
	json_object_set_new(*ch, "expires_at", json_string(exp));
	json_array_foreach(req, i, it)
		if ((rc = parse_requested(it, i, ak, what, *ch)) != KL_OK)
			goto fail;
	if (json_object_get(*ch, "tpm_quote") == NULL) {
		rc = bad_reply(what, "requests no tpm_quote", NULL);
		goto fail;
	}
	return KL_OK;
fail:
	json_decref(*ch);
	*ch = NULL;
	return rc;
}

/*
 * What a 422 to our capabilities most likely means for this AK (docs/protocol.md
 * §5.2, §11 U1): Keylime takes no ECC AK, and no RSAPSS unless the agent's
 * accept_tpm_signing_algs list it.
 */
static const char *
ak_hint(const json_t *ak)
{
	const char *alg = kl_json_str(ak, "key_algorithm"), *sign = kl_json_str(ak, "signing_alg");

	if (alg && !strcmp(alg, "ecc"))
		return "the AK is an ECC key, which Keylime's verifier does not accept "
		    "(\"ecc\" prefixes no signature scheme, docs/protocol.md 11 U1)";
	if (sign && strcmp(sign, "rsassa") != 0)
		return "the AK signs with a scheme other than rsassa: the verifier's "
		    "accept_tpm_signing_algs for this agent must list it";
	return NULL;
}

static int
negotiate(struct kl_prog *p, json_t **out)
{
	struct kl_http_resp resp = { 0 };
	struct kl_api api = { 0 };
	json_t *agent, *ak, *items = NULL, *body = NULL, *reply = NULL, *qi = NULL, *ch = NULL;
	const char *id, *token;
	char path[512], *url = NULL, what[600], bt[32];
	time_t boot;
	int rc;

	if ((rc = kl_json_need_obj(p->doc, "agent", "stdin", &agent)) != KL_OK ||
	    (rc = kl_json_need_str(agent, "id", "stdin: agent", &id)) != KL_OK ||
	    (rc = kl_json_need_obj(agent, "ak", "stdin: agent", &ak)) != KL_OK)
		return rc;
	if ((token = kl_json_str(kl_json_obj(p->doc, "session"), "token")) == NULL)
		return kl_fail(KL_REAUTH, "stdin: no session.token: run kl-session first");
	if (kl_boot_time(NULL, &boot) != 0)
		return kl_fail(KL_PERM, "/proc/stat: no btime: cannot tell the boot time");
	kl_time_format(boot, bt);
	if ((rc = quote_item(p, ak, &qi)) != KL_OK)
		return rc;
	items = json_pack("[o]", qi);
	if ((rc = log_items(p, boot, items)) != KL_OK)
		goto out;
	body = json_pack("{s:{s:s,s:{s:O,s:{s:s}}}}", "data", "type", "attestation",
	    "attributes", "evidence_supported", items, "system_info", "boot_time", bt);
	snprintf(path, sizeof(path), "/agents/%s/attestations", id);
	if ((rc = kl_api_init(&api, &p->cfg)) != KL_OK)
		goto out;
	if (body == NULL || (url = kl_api_url(&api, path)) == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	snprintf(what, sizeof(what), "POST %s", url);
	if ((rc = kl_api_call(&api, "POST", url, token, body, &resp, &reply)) != KL_OK)
		goto out;
	if (resp.status != 201) {
		rc = kl_api_fail_hint(&resp, reply, what, resp.status == 422 ? ak_hint(ak) : NULL);
		if (rc == KL_REAUTH)
			kl_token_drop(&p->cfg, token);	/* one PoP per token, not per 401 */
		if (rc == KL_TEMP && resp.retry_after >= 0)
			*out = kl_prog_retry_doc(p, resp.status, resp.retry_after);
		goto out;
	}
	if ((rc = parse_201(&api, &resp, reply, id, ak, boot, what, &ch)) != KL_OK)
		goto out;
	if ((*out = json_deep_copy(p->doc)) == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	json_object_del(*out, "evidence");
	json_object_del(*out, "submission");
	json_object_del(*out, "verdict");
	json_object_del(*out, "retry");
	json_object_set(*out, "challenge", ch);
	kl_info("%s: challenge for %s, expires %s", what,
	    kl_json_str(ch, "attestation_url"), kl_json_str(ch, "expires_at"));
out:
	json_decref(ch);
	json_decref(reply);
	json_decref(body);
	json_decref(items);
	free(url);
	kl_http_resp_release(&resp);
	kl_api_release(&api);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-negotiate", argc, argv, &cli, negotiate);
}
