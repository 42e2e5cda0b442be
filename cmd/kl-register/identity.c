/*
 * identity.c - the agent's TPM identity: the EK (from the default template or
 * a persistent handle), its certificate, the AK, and the agent id.
 *
 * The AK is what the registrar remembers: a new AK for a known agent id is
 * refused with 403 for good (docs/protocol.md §2.7). So:
 *   - an AK file that belongs to this EK and was made with the configured
 *     algorithms is reused, always;
 *   - an AK file that belongs to another EK or other algorithms is never
 *     replaced: kl-register stops and says what the operator can do;
 *   - a new AK is written to the file (0600, atomically) before the registrar
 *     hears of it, so no crash or failure can leave the registrar holding an
 *     AK that kl has lost.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_akfile.h"
#include "kl_crypto.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "register.h"
#include "kl_banned.h"

/* Why an existing AK file may not be used, as one line. */
static int
refuse_akfile(struct reg *r)
{
	const struct kl_config *c = r->cfg;
	char ekd[65];

	/* SHA-256 of the EK TPM2B_PUBLIC in hex, as kl_akfile records it. */
	if (kl_crypto_sha256_hex(r->ek.pub, r->ek.pub_len, ekd) != 0)
		return kl_fail(KL_TEMP, "cannot hash the EK public key");
	if (strcmp(ekd, r->akf.ek_public_sha256) != 0)
		return kl_fail(KL_PERM, "%s: its AK belongs to another EK than this TPM's %s EK; "
		    "kl-register never replaces an AK: restore tpm_encryption_alg/ek_handle, or move "
		    "the file away to make a new AK (the registrar then refuses a known agent id "
		    "until it is deleted there)", r->ak_path, r->ek.alg);
	return kl_fail(KL_PERM, "%s: its AK was made with %s/%s, the configuration asks for %s/%s; "
	    "kl-register never replaces an AK: restore tpm_hash_alg/tpm_signing_alg, or move the "
	    "file away to make a new AK (the registrar then refuses a known agent id until it is "
	    "deleted there)", r->ak_path, r->akf.hash_alg, r->akf.signing_alg,
	    c->tpm_hash_alg, c->tpm_signing_alg);
}

/* A new AK under the EK, into r->akf (not yet saved). */
static int
make_ak(struct reg *r)
{
	const struct kl_config *c = r->cfg;
	unsigned char *pub = NULL, *priv = NULL;
	size_t plen = 0, slen = 0;
	int rc;

	if ((rc = kl_tpm_ak_create(&r->tpm, &r->ek, c->tpm_hash_alg, c->tpm_signing_alg,
	    &pub, &plen, &priv, &slen)) != KL_OK)
		return rc;
	rc = kl_akfile_set(&r->akf, r->ek.alg, r->ek.pub, r->ek.pub_len, pub, plen, priv, slen,
	    c->tpm_hash_alg, c->tpm_signing_alg, r->ek.alg);
	free(pub);
	kl_secret_free(priv, slen);
	if (rc == KL_OK) {
		r->ak_new = 1;
		kl_info("made a new %s AK (%s/%s) under the EK", r->ek.alg, c->tpm_hash_alg,
		    c->tpm_signing_alg);
	}
	return rc;
}

/*
 * "generate": the id made on the first run is kept in the AK file, so the
 * agent stays the same agent (upstream makes a new one on every start, §2.9).
 */
static int
generated_id(struct reg *r, int check)
{
	const char *kept = r->akf.agent_id;

	if (kept != NULL) {
		if (!kl_uuid_valid(kept))
			return kl_fail(KL_PERM, "%s: agent_id: not a UUID", r->ak_path);
		snprintf(r->id, sizeof(r->id), "%s", kept);
		return KL_OK;
	}
	if (kl_crypto_random_uuid(r->id) != 0)
		return KL_TEMP;	/* logged */
	r->id_new = 1;
	if (check)
		return KL_OK;
	if ((r->akf.agent_id = strdup(r->id)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	return KL_OK;
}

/*
 * kl_akfile_save() reallocs and frees what json_dumps() returned, which only
 * works with jansson's default allocator, not with the wiping one kl_prog
 * installs: give it plain malloc/free for the call. No json_t made before
 * crosses the switch. (Reported; drop this when kl_akfile.c is fixed.)
 */
static int
save_akfile(const struct reg *r)
{
	return kl_akfile_save(&r->akf, r->ak_path);
}

int
reg_identity(struct reg *r, int check)
{
	const struct kl_config *c = r->cfg;
	int rc;

	/* A damaged AK file is an error before the TPM is opened; it is never overwritten. */
	if ((rc = kl_akfile_load(&r->akf, r->ak_path, 1)) != KL_OK)
		return rc;
	if ((rc = kl_tpm_open(&r->tpm, kl_config_tcti(c))) != KL_OK)
		return rc;
	r->tpm_open = 1;
	if ((rc = kl_tpm_ek(&r->tpm, c->tpm_encryption_alg, c->ek_handle, c->tpm_ownerpassword,
	    &r->ek)) != KL_OK)
		return rc;
	if ((rc = kl_tpm_ek_cert(&r->tpm, r->ek.alg, &r->ekcert, &r->ekcert_len)) != KL_OK)
		return rc;
	if (r->ekcert == NULL)
		kl_warn("no %s EK certificate in NV %s: registering without ekcert", r->ek.alg,
		    strcmp(r->ek.alg, "ecc") == 0 ? "0x01c0000a" : "0x01c00002");

	if (r->akf.ak_public != NULL &&
	    !kl_akfile_matches(&r->akf, r->ek.pub, r->ek.pub_len, c->tpm_hash_alg, c->tpm_signing_alg))
		return refuse_akfile(r);
	if (r->akf.ak_public == NULL && !check && (rc = make_ak(r)) != KL_OK)
		return rc;

	if (r->mode == UUID_HASH_EK && (rc = reg_hash_ek(r->ek.pub, r->ek.pub_len, r->id)) != KL_OK)
		return rc;
	if (r->mode == UUID_GENERATE && (rc = generated_id(r, check)) != KL_OK)
		return rc;
	kl_info("agent id %s (uuid = %s)", r->id, c->uuid);
	if (check)
		return KL_OK;

	/* Persist before the registrar sees the AK (see the top of this file). */
	if ((r->ak_new || r->id_new) && (rc = save_akfile(r)) != KL_OK)
		return rc;
	return kl_tpm_ak_load(&r->tpm, &r->ek, r->akf.ak_public, r->akf.ak_public_len,
	    r->akf.ak_private, r->akf.ak_private_len, &r->ak);
}

void
reg_tpm_close(struct reg *r)
{
	if (!r->tpm_open)
		return;
	kl_tpm_close(&r->tpm);
	r->tpm_open = 0;
	r->ak = ESYS_TR_NONE;
}
