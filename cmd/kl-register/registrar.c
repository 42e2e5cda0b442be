/*
 * registrar.c - registration and activation at the Keylime registrar, API v2.x
 * (docs/protocol.md §2): GET /version, POST /v{ver}/agents/{id} with the EK and AK,
 * TPM2_ActivateCredential of the blob, PUT /v{ver}/agents/{id} with auth_tag.
 *
 * What an answer means (docs/kl-register.md, "Exit codes"):
 *   200                     go on
 *   403 on POST             the registrar holds this id with another EK/AK: 100
 *   400 on POST             the registrar found our data invalid: 100
 *   400 or 404 on PUT       the registrar dropped the agent (a wrong auth_tag
 *                           deletes it): 111, a new kl-register starts over
 *   408, 429, 5xx, network  111
 *   other 4xx               1 (refused)
 *   anything else           100 (not what a registrar answers)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "register.h"
#include "kl_banned.h"

#define CTYPE "application/json"	/* without it the registrar ignores the body (§2.1) */

char *
reg_agent_url(const struct reg *r, const char *version)
{
	char *u;

	if (asprintf(&u, "%s/v%s/agents/%s", r->url, version, r->id) < 0)
		return NULL;
	return u;
}

int
reg_call(struct reg *r, const char *method, const char *url, const json_t *body,
    struct kl_http_resp *resp, json_t **reply)
{
	struct kl_http_req rq = { 0 };
	char *text = NULL, what[600];
	int rc;

	if (reply != NULL)
		*reply = NULL;
	if (body != NULL && (text = kl_json_dump(body, NULL)) == NULL)
		return kl_fail(KL_TEMP, "%s %s: cannot encode the request", method, url);
	rq.method = method;
	rq.url = url;
	/*
	 * Only with a body: the real registrar answers 400 (empty) to a GET that
	 * says Content-Type: application/json without one (seen on /version).
	 */
	rq.content_type = body != NULL ? CTYPE : NULL;
	rq.body = text;
	rq.body_len = text ? strlen(text) : 0;
	rc = kl_http_do(&r->http, &rq, resp);
	if (text != NULL)
		explicit_bzero(text, rq.body_len);	/* the PUT's auth_tag */
	free(text);
	if (rc != KL_OK || resp->status != 200 || reply == NULL)
		return rc;
	snprintf(what, sizeof(what), "%s %s: reply", method, url);
	return kl_json_parse(resp->body, resp->len, what, reply);
}

int
reg_fail_status(struct reg *r, const struct kl_http_resp *resp, const char *what)
{
	long s = resp->status;
	char desc[512];
	int rc;

	if (s == 408 || s == 429 || (s >= 500 && s <= 599))
		rc = KL_TEMP;
	else if (s == 400 || s == 404 || s == 405)
		rc = KL_PERM;
	else if (s >= 400 && s <= 499)
		rc = KL_REFUSED;
	else
		rc = KL_PERM;
	kl_http_describe(resp, desc, sizeof(desc));
	kl_err("%s: %s", what, desc);
	if (rc == KL_TEMP && resp->retry_after >= 0) {
		r->retry_status = s;
		r->retry_after = resp->retry_after;
	}
	return rc;
}

static int
enabled(const struct reg *r, const char *v)
{
	for (size_t i = 0; i < r->nversions; i++)
		if (strcmp(r->versions[i], v) == 0)
			return 1;
	return 0;
}

/* "2.1, 2.2" into out, for a log line. */
static void
join(const char *const *list, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++) {
		int k = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", list[i]);

		if (k < 0)
			break;
		o += (size_t)k;
	}
}

/*
 * The registrar's current_version if we enable it, else the newest enabled
 * version it supports (§2.2, as the Rust agent). Leaves r->version "" when
 * the registrar has no /version (404 and friends): the caller then tries the
 * enabled versions newest first.
 */
int
reg_choose_version(struct reg *r)
{
	struct kl_http_resp resp = { 0 };
	json_t *reply = NULL, *res, *sup, *v;
	const char *cur, *theirs[REG_MAX_VERSIONS], *ours[REG_MAX_VERSIONS];
	char *url = NULL, what[600], a[200], b[200];
	size_t i, n = 0;
	int rc;

	r->version[0] = '\0';
	if (asprintf(&url, "%s/version", r->url) < 0)
		return kl_fail(KL_TEMP, "out of memory");
	snprintf(what, sizeof(what), "GET %s", url);
	if ((rc = reg_call(r, "GET", url, NULL, &resp, &reply)) != KL_OK)
		goto out;
	if (resp.status != 200) {
		if (resp.status == 408 || resp.status == 429 || resp.status >= 500) {
			rc = reg_fail_status(r, &resp, what);
			goto out;
		}
		kl_info("%s: HTTP %ld: trying the enabled API versions newest first", what, resp.status);
		goto out;
	}
	res = kl_json_obj(reply, "results");
	sup = json_object_get(res, "supported_versions");
	cur = kl_json_str(res, "current_version");
	if (!json_is_array(sup)) {
		rc = kl_fail(KL_PERM, "%s: reply lacks results.supported_versions", what);
		goto out;
	}
	if (cur != NULL && enabled(r, cur)) {
		snprintf(r->version, sizeof(r->version), "%s", cur);
		goto out;
	}
	for (i = 0; i < r->nversions; i++) {
		json_array_foreach(sup, n, v) {
			if (json_is_string(v) && strcmp(json_string_value(v), r->versions[i]) == 0) {
				snprintf(r->version, sizeof(r->version), "%s", r->versions[i]);
				goto out;
			}
		}
	}
	n = 0;
	json_array_foreach(sup, i, v) {
		if (json_is_string(v) && n < REG_MAX_VERSIONS)
			theirs[n++] = json_string_value(v);
	}
	join(theirs, n, b, sizeof(b));
	kl_log_sanitize(a, sizeof(a), b, strlen(b));	/* the registrar's text */
	for (i = 0; i < r->nversions; i++)
		ours[i] = r->versions[i];
	join(ours, r->nversions, b, sizeof(b));
	rc = kl_fail(KL_PERM, "%s: the registrar supports API %s; registrar_api_versions enables %s: "
	    "none in common", what, a, b);
out:
	if (rc == KL_OK && r->version[0])
		kl_info("registrar API version %s", r->version);
	json_decref(reply);
	kl_http_resp_release(&resp);
	free(url);
	return rc;
}

/* The registration body (§2.3). ip/port are left out: see docs/kl-register.md. */
static json_t *
register_body(const struct reg *r)
{
	char *ek = kl_b64_encode(r->ek.pub, r->ek.pub_len);
	char *ak = kl_b64_encode(r->akf.ak_public, r->akf.ak_public_len);
	char *cert = r->ekcert ? kl_b64_encode(r->ekcert, r->ekcert_len) : NULL;
	json_t *body = NULL;

	if (ek && ak && (cert || !r->ekcert))
		body = json_pack("{s:s,s:s,s:s*}", "ek_tpm", ek, "aik_tpm", ak, "ekcert", cert);
	free(ek);
	free(ak);
	free(cert);
	return body;
}

/*
 * POST the registration; on 200, *blob is the decoded credential blob.
 * With an unknown version, 404/405 means "not this version": try the next.
 */
static int
post(struct reg *r, unsigned char **blob, size_t *blen, char **url)
{
	struct kl_http_resp resp = { 0 };
	json_t *body = NULL, *reply = NULL;
	const char *b64;
	char what[600];
	int unknown = r->version[0] == '\0', rc = KL_PERM;

	if ((body = register_body(r)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	for (size_t i = 0; i < (unknown ? r->nversions : 1); i++) {
		const char *v = unknown ? r->versions[i] : r->version;

		free(*url);
		json_decref(reply);
		reply = NULL;
		kl_http_resp_release(&resp);
		if ((*url = reg_agent_url(r, v)) == NULL) {
			rc = kl_fail(KL_TEMP, "out of memory");
			goto out;
		}
		snprintf(what, sizeof(what), "POST %s", *url);
		if ((rc = reg_call(r, "POST", *url, body, &resp, &reply)) != KL_OK)
			goto out;
		if (resp.status == 200) {
			if (unknown)
				snprintf(r->version, sizeof(r->version), "%s", v);
			break;
		}
		if (unknown && (resp.status == 404 || resp.status == 405) && i + 1 < r->nversions) {
			kl_info("%s: HTTP %ld: trying API %s", what, resp.status, r->versions[i + 1]);
			continue;
		}
		if (resp.status == 403) {
			rc = kl_fail(KL_PERM, "%s: HTTP 403: the registrar already holds agent %s with "
			    "another EK/AK; delete it at the registrar (keylime_tenant -c regdelete -u %s) "
			    "or restore the AK file %s", what, r->id, r->id, r->ak_path);
			goto out;
		}
		rc = reg_fail_status(r, &resp, what);
		goto out;
	}
	b64 = kl_json_str(kl_json_obj(reply, "results"), "blob");
	if (b64 == NULL) {
		rc = kl_fail(KL_PERM, "%s: reply lacks results.blob", what);
		goto out;
	}
	if (kl_b64_decode(b64, blob, blen) != 0) {
		rc = kl_fail(KL_PERM, "%s: results.blob is not base64", what);
		goto out;
	}
	rc = KL_OK;
out:
	json_decref(body);
	json_decref(reply);
	kl_http_resp_release(&resp);
	return rc;
}

/*
 * auth_tag = hex(HMAC-SHA384(key = base64 of the recovered credential, as
 * text; message = the agent id)) in lowercase (§2.5).
 */
static int
auth_tag(const unsigned char *secret, size_t slen, const char *id, char out[97])
{
	char *key;
	int failed;

	if ((key = kl_b64_encode(secret, slen)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	failed = kl_crypto_hmac_sha384_hex(key, strlen(key), id, strlen(id), out) != 0;
	kl_secret_free(key, strlen(key));
	return failed ? kl_fail(KL_TEMP, "HMAC-SHA384 failed") : KL_OK;
}

/* PUT the auth_tag (§2.6). */
static int
activate(struct reg *r, const char *url, const char *tag)
{
	struct kl_http_resp resp = { 0 };
	json_t *body;
	char what[600];
	int rc;

	snprintf(what, sizeof(what), "PUT %s", url);
	if ((body = json_pack("{s:s}", "auth_tag", tag)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	/* No reply parsed: a 200 is all §2.6 promises, its body does not matter. */
	rc = reg_call(r, "PUT", url, body, &resp, NULL);
	json_decref(body);
	if (rc == KL_OK && resp.status == 400) {
		/* Not the registrar's text: it quotes the tag we sent. */
		rc = kl_fail(KL_TEMP, "%s: HTTP 400: the registrar rejected the auth_tag and deleted "
		    "agent %s: the next kl-register registers it again", what, r->id);
	} else if (rc == KL_OK && resp.status == 404) {
		char desc[512];

		kl_http_describe(&resp, desc, sizeof(desc));
		rc = kl_fail(KL_TEMP, "%s: %s: the registrar no longer knows agent %s: the next "
		    "kl-register registers it again", what, desc, r->id);
	} else if (rc == KL_OK && resp.status != 200) {
		rc = reg_fail_status(r, &resp, what);
	}
	kl_http_resp_release(&resp);
	return rc;
}

int
reg_register(struct reg *r)
{
	unsigned char *blob = NULL, *secret = NULL;
	size_t blen = 0, slen = 0;
	char *url = NULL, tag[97];
	int rc;

	if ((rc = reg_choose_version(r)) != KL_OK)
		return rc;
	if ((rc = post(r, &blob, &blen, &url)) != KL_OK)
		goto out;
	kl_info("registered at %s; activating the credential", url);
	if ((rc = kl_tpm_activate(&r->tpm, &r->ek, r->ak, blob, blen, &secret, &slen)) != KL_OK)
		goto out;
	rc = auth_tag(secret, slen, r->id, tag);
	kl_secret_free(secret, slen);
	if (rc != KL_OK)
		goto out;
	rc = activate(r, url, tag);
	explicit_bzero(tag, sizeof(tag));
out:
	free(blob);
	free(url);
	return rc;
}
