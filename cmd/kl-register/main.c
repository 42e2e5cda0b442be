/*
 * kl-register: the agent's TPM identity, registered and activated at the
 * Keylime registrar (docs/protocol.md §2, docs/kl-register.md).
 *
 * Reads the document on stdin (empty is fine: `kl-register </dev/null`) and the
 * configuration. Checks the uuid option before anything else, then: opens the
 * TPM, makes or opens the EK and reads its certificate, loads the persisted AK
 * or makes and persists a new one, resolves the agent id, registers at the
 * registrar (GET /version, POST), activates the credential in the TPM and
 * answers with auth_tag (PUT). Flushes and closes the TPM, then writes the
 * document plus "agent" (docs/contract.md) and one notice line on stderr.
 * --check compares the local identity with the registrar's record instead and
 * writes no document.
 *
 * Exit: 0 registered; 1 the registrar refused (other 4xx); 100 permanent (bad
 * configuration or stdin, an AK file that is not ours to use, identity changed
 * at the registrar (403), a reply that breaks the protocol, TLS verification);
 * 111 temporary (network, 5xx, TPM busy, the registrar dropped the agent).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "register.h"
#include "kl_banned.h"

#define USAGE "usage: kl-register [-v] [--check] [--registrar-url URL] [--tcti TCTI] " \
	"[--agent-identifier UUID|generate|hash_ek] [--timeout MS] [--insecure] <document >document"

/* Members of the steps after kl-register: a new registration starts a new cycle. */
static const char *const later[] = { "session", "challenge", "evidence", "submission", "retry", NULL };


/* The "ak" member: the public area in the encodings the later steps use. */
static json_t *
ak_member(const struct reg *r)
{
	struct kl_key_info ki;
	unsigned char *name = NULL;
	size_t nlen = 0;
	char *pub = NULL, *hex = NULL;
	json_t *ak = NULL;

	if (kl_tpm_key_info(r->akf.ak_public, r->akf.ak_public_len, &ki) != KL_OK ||
	    kl_tpm_name(r->akf.ak_public, r->akf.ak_public_len, &name, &nlen) != KL_OK)
		return NULL;
	pub = kl_b64_encode(r->akf.ak_public, r->akf.ak_public_len);
	hex = kl_hex_encode(name, nlen);
	if (pub && hex)
		ak = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s}", "public", pub, "name", hex,
		    "key_algorithm", ki.key_algorithm, "key_size", ki.key_size,
		    "hash_alg", ki.hash_alg, "signing_alg", ki.signing_alg, "data_path", r->ak_path);
	free(name);
	free(pub);
	free(hex);
	return ak;
}

/* The input document, later steps' members dropped, plus "agent" (docs/contract.md). */
static int
output(const struct reg *r, const json_t *in, json_t **out)
{
	char now[32], handle[16], *ek = kl_b64_encode(r->ek.pub, r->ek.pub_len);
	json_t *ak = ak_member(r), *agent = NULL;

	kl_time_format(time(NULL), now);
	if (r->ek.persistent)
		snprintf(handle, sizeof(handle), "0x%08x", r->ek.persistent);
	else
		snprintf(handle, sizeof(handle), "transient");
	if (ek && ak)
		agent = json_pack("{s:s,s:{s:s,s:s},s:O,s:{s:s,s:s,s:s,s:b},s:s}", "id", r->id,
		    "registrar", "url", r->url, "api_version", r->version, "ak", ak,
		    "ek", "public", ek, "algorithm", r->ek.alg, "handle", handle,
		    "certificate", r->ekcert != NULL, "registered_at", now);
	free(ek);
	json_decref(ak);
	if (agent == NULL || (*out = json_deep_copy(in)) == NULL) {
		json_decref(agent);
		return kl_fail(KL_TEMP, "out of memory");
	}
	for (size_t i = 0; later[i]; i++)
		json_object_del(*out, later[i]);
	json_object_set_new(*out, "agent", agent);
	return KL_OK;
}

static int
run(struct kl_prog *p, json_t **out)
{
	struct reg r;
	int rc;

	if ((rc = reg_setup(&r, &p->cfg)) != KL_OK)
		goto out;
	if ((rc = reg_identity(&r, p->cfg.check)) != KL_OK)
		goto out;
	if (p->cfg.check) {
		rc = reg_check(&r);
		goto out;
	}
	if ((rc = reg_register(&r)) != KL_OK) {
		if (rc == KL_TEMP && r.retry_after >= 0)
			*out = kl_prog_retry_doc(p, r.retry_status, r.retry_after);
		goto out;
	}
	/* The TPM is closed before stdout is written: the next step waits for it. */
	reg_tpm_close(&r);
	if ((rc = output(&r, p->doc, out)) == KL_OK)
		kl_notice("agent %s registered and activated at %s (API %s)", r.id, r.url, r.version);
out:
	reg_release(&r);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-register", argc, argv, USAGE, run);
}
