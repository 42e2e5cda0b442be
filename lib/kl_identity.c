/* kl_identity.c - see kl_identity.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_file.h"
#include "kl_identity.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

/*
 * The AK from its saved context (kl_tpm.h): no EK CreatePrimary, no policy
 * session, no Load. KL_REFUSED when there is none usable: a stale or foreign
 * context file is removed, and the caller loads the AK under the EK.
 */
static int
ctx_load(struct kl_tpm *t, const struct kl_config *cfg, struct kl_identity *id, const char *path)
{
	char *blob = NULL;
	size_t len = 0;
	int rc;

	/* The AK file's EK must still be the configured one (else: the old path's error). */
	if (strcmp(id->akf.ek_algorithm, cfg->tpm_encryption_alg) != 0)
		return KL_REFUSED;
	if (kl_file_read(path, KL_AK_CONTEXT_MAX, 1, &blob, &len) != KL_OK || blob == NULL)
		return KL_REFUSED;
	rc = kl_tpm_context_load(t, (unsigned char *)blob, len, id->akf.ak_public,
	    id->akf.ak_public_len, &id->ak);
	free(blob);
	if (rc == KL_REFUSED && unlink(path) != 0 && errno != ENOENT)
		kl_warn("%s: cannot remove: %s", path, strerror(errno));
	return rc;
}

/* Keep the loaded AK's context for the next step; failing that costs only time. */
static void
ctx_save(struct kl_tpm *t, const struct kl_config *cfg, const struct kl_identity *id,
    const char *path)
{
	unsigned char *blob = NULL;
	size_t len = 0;

	if (kl_tpm_context_save(t, id->ak, &blob, &len) != KL_OK ||
	    kl_file_mkdirs(cfg->keylime_dir) != KL_OK || kl_file_write_atomic(path, blob, len) != KL_OK)
		kl_warn("%s: the AK context is not kept: the next step loads the AK again", path);
	free(blob);
}

int
kl_identity_load(struct kl_tpm *t, const struct kl_config *cfg, const json_t *agent,
    struct kl_identity *id)
{
	json_t *ak = kl_json_obj(agent, "ak");
	const char *path = kl_json_str(ak, "data_path"), *pub = kl_json_str(ak, "public");
	char *dflt = NULL, *mine = NULL, *ctx = kl_config_path(cfg, KL_AK_CONTEXT_FILE, NULL);
	int rc;

	memset(id, 0, sizeof(*id));
	kl_akfile_init(&id->akf);
	if (pub == NULL) {
		rc = kl_fail(KL_PERM, "stdin: agent.ak.public is missing: run kl-register first");
		goto out;
	}
	if (ctx == NULL || (path == NULL && (path = dflt = kl_config_agent_data(cfg)) == NULL)) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	if ((rc = kl_akfile_load(&id->akf, path, 0)) != KL_OK)
		goto out;
	if ((mine = kl_b64_encode(id->akf.ak_public, id->akf.ak_public_len)) == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	if (strcmp(mine, pub) != 0) {
		rc = kl_fail(KL_PERM, "%s: holds another AK than the document's agent.ak.public: "
		    "run kl-register again", path);
		goto out;
	}
	if ((rc = ctx_load(t, cfg, id, ctx)) != KL_REFUSED)
		goto out;
	if ((rc = kl_tpm_ek(t, cfg->tpm_encryption_alg, cfg->ek_handle,
	    cfg->tpm_ownerpassword, &id->ek)) != KL_OK)
		goto out;
	if (!kl_akfile_matches(&id->akf, id->ek.pub, id->ek.pub_len,
	    id->akf.hash_alg, id->akf.signing_alg)) {
		rc = kl_fail(KL_PERM, "%s: the AK belongs to another EK than this TPM's %s EK: "
		    "run kl-register again", path, cfg->tpm_encryption_alg);
		goto out;
	}
	rc = kl_tpm_ak_load(t, &id->ek, id->akf.ak_public, id->akf.ak_public_len,
	    id->akf.ak_private, id->akf.ak_private_len, &id->ak);
	if (rc == KL_OK)
		ctx_save(t, cfg, id, ctx);
out:
	free(ctx);
	free(dflt);
	free(mine);
	return rc;
}

void
kl_identity_release(struct kl_identity *id)
{
	kl_tpm_ek_release(&id->ek);
	kl_akfile_release(&id->akf);
	memset(id, 0, sizeof(*id));
}
