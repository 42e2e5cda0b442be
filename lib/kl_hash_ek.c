/*
 * kl_hash_ek.c - see kl_hash_ek.h: the agent id of uuid = "hash_ek" (docs/protocol.md §2.9):
 * lowercase hex SHA-256 of the EK public key as OpenSSL's PEM_write_bio_PUBKEY
 * writes it (the file `tpm2_readpublic -c ek -f pem` writes), newlines
 * included. kl_tpm reads the key out of the TPM2B_PUBLIC, kl_crypto writes
 * the PEM and hashes it.
 */
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_hash_ek.h"
#include "kl_banned.h"

int
kl_hash_ek(const unsigned char *pub, size_t len, char out[65])
{
	struct kl_crypto_pubkey k;
	char *pem = NULL;
	size_t pem_len;
	int rc;

	if ((rc = kl_tpm_public_key(pub, len, &k)) != KL_OK)
		return rc;	/* logged */
	if (kl_crypto_pubkey_pem(&k, &pem, &pem_len) != 0 ||
	    kl_crypto_sha256_hex(pem, pem_len, out) != 0)
		rc = kl_fail(KL_TEMP, "hash_ek: cannot encode the EK public key as PEM");
	free(pem);
	return rc;
}
