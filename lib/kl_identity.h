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

/* The loaded AK's saved context (kl_tpm_context_save), 0600 in keylime_dir. */
#define KL_AK_CONTEXT_FILE "kl-ak.ctx"
#define KL_AK_CONTEXT_MAX 8192

struct kl_identity {
	struct kl_ek ek;	/* empty when the AK came from its saved context */
	struct kl_akfile akf;
	ESYS_TR ak;		/* loaded AK, tracked by the struct kl_tpm */
};

/*
 * Create or open the EK as configured (tpm_encryption_alg, ek_handle,
 * tpm_ownerpassword), read the AK file named by agent->ak.data_path (or the
 * configured agent_data_path), check that it belongs to this EK and is the
 * AK of the document (agent->ak.public), and load it; then save its context
 * in keylime_dir (KL_AK_CONTEXT_FILE). When that saved context is there and
 * the TPM still takes it (no reset since), the AK is loaded from it instead,
 * without the EK: 1 TPM command instead of 5 with a CreatePrimary (issue 10).
 * Returns KL_OK, KL_PERM (no AK file, another AK or EK: run kl-register) or
 * the TPM's code. Release with kl_identity_release() before kl_tpm_close().
 */
int kl_identity_load(struct kl_tpm *t, const struct kl_config *cfg, const json_t *agent,
    struct kl_identity *id);
void kl_identity_release(struct kl_identity *id);

#endif
