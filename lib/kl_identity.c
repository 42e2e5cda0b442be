/* kl_identity.c - see kl_identity.h. */
#include <stdlib.h>
#include <string.h>

#include "kl_identity.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

int
kl_identity_load(struct kl_tpm *t, const struct kl_config *cfg, const json_t *agent,
    struct kl_identity *id)
{
	json_t *ak = kl_json_obj(agent, "ak");
	const char *path = kl_json_str(ak, "data_path"), *pub = kl_json_str(ak, "public");
	char *dflt = NULL, *mine = NULL;
	int rc;

	memset(id, 0, sizeof(*id));
	kl_akfile_init(&id->akf);
	if (pub == NULL)
		return kl_fail(KL_PERM, "stdin: agent.ak.public is missing: run kl-register first");
	if (path == NULL && (path = dflt = kl_config_agent_data(cfg)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
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
out:
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
