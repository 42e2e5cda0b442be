/*
 * check.c - kl-register --check: would registering work? Compares this TPM's
 * EK, its certificate and the persisted AK with the registrar's record of the
 * agent id (GET /v{ver}/agents/{id}) and explains a coming 403 (docs/protocol.md
 * §2.7) before anything is posted. Writes no document and changes nothing: no
 * AK is made, no file written, nothing sent but two GETs.
 *
 * Upstream's registrar shows records only to its administrator (mTLS); an
 * agent gets 400 (plain HTTP) or 403 (HTTPS) there, and a registrar without
 * the route 405. Then --check has checked all an agent can see (TPM, AK
 * file, configuration, TLS, the registrar's API version), says plainly what
 * it could not, and exits 0: against upstream, exit 1 would mean "always".
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

/* The registrar's ekcert (base64 DER or PEM) as DER. Returns 0 or -1. */
static int
cert_der(const char *text, unsigned char **der, size_t *len)
{
	if (strstr(text, "-----BEGIN") == NULL)
		return kl_b64_decode(text, der, len);
	return kl_crypto_x509_pem_to_der(text, der, len);
}

static int
same_b64(const char *theirs, const unsigned char *ours, size_t len)
{
	char *b = kl_b64_encode(ours, len);
	int same = b != NULL && strcmp(b, theirs) == 0;

	free(b);
	return same;
}

/*
 * What differs between the record and us, as "EK", "AK", "EK certificate"
 * joined in out ("" when nothing). KL_PERM when the record is unreadable.
 */
static int
differences(const struct reg *r, const json_t *rec, const char *what, char *out, size_t cap)
{
	const char *ek = kl_json_str(rec, "ek_tpm"), *ak = kl_json_str(rec, "aik_tpm");
	const char *cert = kl_json_str(rec, "ekcert");
	const char *diff[3];
	size_t n = 0, o = 0;

	if (ek && !same_b64(ek, r->ek.pub, r->ek.pub_len))
		diff[n++] = "EK";
	if (ak && (r->akf.ak_public == NULL || !same_b64(ak, r->akf.ak_public, r->akf.ak_public_len)))
		diff[n++] = "AK";
	if (cert && *cert) {
		unsigned char *der = NULL;
		size_t len = 0;

		if (cert_der(cert, &der, &len) != 0)
			return kl_fail(KL_PERM, "%s: results.ekcert is neither base64 DER nor PEM", what);
		/* Removing a certificate the record holds counts as a change, too. */
		if (r->ekcert == NULL || len != r->ekcert_len || memcmp(der, r->ekcert, len) != 0)
			diff[n++] = "EK certificate";
		free(der);
	}
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
		int k = snprintf(out + o, cap - o, "%s%s", sep, diff[i]);

		if (k < 0 || (size_t)k >= cap - o)
			break;
		o += (size_t)k;
	}
	return KL_OK;
}

int
reg_check(struct reg *r)
{
	struct kl_http_resp resp = { 0 };
	json_t *reply = NULL, *rec;
	char *url = NULL, what[600], diff[64], desc[512], ak[600];
	int rc;

	/* Nothing more is asked of the TPM: free it for the other steps. */
	reg_tpm_close(r);
	if (r->akf.ak_public != NULL)
		snprintf(ak, sizeof(ak), "the AK in %s", r->ak_path);
	else
		snprintf(ak, sizeof(ak), "a new AK (%s does not exist)", r->ak_path);
	if ((rc = reg_choose_version(r)) != KL_OK)
		return rc;
	if (r->id_new) {
		kl_notice("check: uuid = generate and %s holds no agent id yet: kl-register would "
		    "register a new agent with %s", r->ak_path, ak);
		return KL_OK;
	}
	if ((url = reg_agent_url(r, r->version[0] ? r->version : r->versions[0])) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	snprintf(what, sizeof(what), "GET %s", url);
	if ((rc = reg_call(r, "GET", url, NULL, &resp, &reply)) != KL_OK)
		goto out;
	switch (resp.status) {
	case 200:
		rec = kl_json_obj(reply, "results");
		if (rec == NULL) {
			rc = kl_fail(KL_PERM, "%s: reply lacks results", what);
			break;
		}
		if ((rc = differences(r, rec, what, diff, sizeof(diff))) != KL_OK)
			break;
		if (diff[0] == '\0') {
			kl_notice("check: agent %s: the registrar's record matches this TPM's EK and %s: "
			    "registering again is allowed", r->id, ak);
			break;
		}
		rc = kl_fail(KL_PERM, "check: agent %s: the registrar holds another %s than this TPM "
		    "and %s: registering would be refused (403); delete it at the registrar "
		    "(keylime_tenant -c regdelete -u %s) or restore the AK file %s",
		    r->id, diff, ak, r->id, r->ak_path);
		break;
	case 404:
		kl_http_describe(&resp, desc, sizeof(desc));
		kl_notice("check: agent %s: %s: not registered (or not active): kl-register would "
		    "register it with %s", r->id, desc, ak);
		break;
	case 400: case 401: case 403: case 405:
		kl_http_describe(&resp, desc, sizeof(desc));
		kl_warn("check: agent %s: checked what an agent can see (this TPM's EK, %s, "
		    "the registrar's API %s); not its record: %s: %s: the registrar shows records "
		    "only to its administrator: compare there with keylime_tenant -c regstatus -u %s",
		    r->id, ak, r->version[0] ? r->version : r->versions[0], what, desc, r->id);
		break;
	default:
		rc = reg_fail_status(r, &resp, what);
	}
out:
	json_decref(reply);
	kl_http_resp_release(&resp);
	free(url);
	return rc;
}
