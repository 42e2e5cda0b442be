/*
 * kl_hash_ek.h - the agent id of uuid = "hash_ek" (docs/protocol.md §2.9),
 * for kl-register (which registers with it) and kl-doctor (which shows it).
 */
#ifndef KL_HASH_EK_H
#define KL_HASH_EK_H

#include <stddef.h>

/* Lowercase hex SHA-256 of the PEM of the key in a TPM2B_PUBLIC. KL_OK or an error after one line. */
int kl_hash_ek(const unsigned char *pub, size_t len, char out[65]);

#endif
