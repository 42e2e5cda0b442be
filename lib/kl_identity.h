/*
 * kl_identity.h - the agent's TPM identity for the steps after kl-register:
 * the EK (from the configuration) and the AK loaded from the agent data file
 * that kl-register wrote ("agent.ak.data_path" in the document).
 */
#ifndef KL_IDENTITY_H
#define KL_IDENTITY_H

#include <jansson.h>

#include "kl_akfile.h"
#include "kl_config.h"
#include "kl_tpm.h"

struct kl_identity {
	struct kl_ek ek;
	struct kl_akfile akf;
	ESYS_TR ak;		/* loaded AK, tracked by the struct kl_tpm */
};

/*
 * Create or open the EK as configured (tpm_encryption_alg, ek_handle,
 * tpm_ownerpassword), read the AK file named by agent->ak.data_path (or the
 * configured agent_data_path), check that it belongs to this EK and is the
 * AK of the document (agent->ak.public), and load it.
 * Returns KL_OK, KL_PERM (no AK file, another AK or EK: run kl-register) or
 * the TPM's code. Release with kl_identity_release() before kl_tpm_close().
 */
int kl_identity_load(struct kl_tpm *t, const struct kl_config *cfg, const json_t *agent,
    struct kl_identity *id);
void kl_identity_release(struct kl_identity *id);

#endif
