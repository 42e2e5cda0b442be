/*
 * kl_tpm.h - every TPM operation kl needs, over tpm2-tss ESAPI. The only
 * module that calls tss2 (docs/protocol.md §8).
 *
 * Use: kl_tpm_open() as late as possible, a few operations, kl_tpm_close()
 * before writing stdout (a swtpm serves one connection at a time; a step that
 * holds the TPM blocks every other step of the pipeline).
 *
 * Every function returns KL_OK, KL_PERM (bad input, unsupported request, a TPM
 * error that will not go away) or KL_TEMP (TPM busy: TPM_RC_RETRY, YIELDED,
 * TESTING, NV_RATE, dictionary-attack lockout; TCTI I/O errors), after one
 * error line naming the TPM command and the decoded response code.
 *
 * Ownership: byte buffers returned through "unsigned char **" are malloc()ed
 * and belong to the caller (free()). ESYS_TR handles of transient objects and
 * sessions belong to the struct kl_tpm, which flushes them all in
 * kl_tpm_close(); callers never flush them except through kl_tpm_flush().
 * Names of algorithms are Keylime's: "sha1" "sha256" "sha384" "sha512"
 * "sm3_256"; "rsassa" "rsapss" "ecdsa"; "rsa" "ecc".
 */
#ifndef KL_TPM_H
#define KL_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <tss2/tss2_esys.h>

#include "kl_crypto.h"

#define KL_TPM_MAX_TRACKED 16

struct kl_tpm {
	ESYS_CONTEXT *esys;
	TSS2_TCTI_CONTEXT *tcti;
	struct kl_tcti_guard *guard;	/* timeout and TERM/INT in front of tcti (kl_tpm.c) */
	ESYS_TR tracked[KL_TPM_MAX_TRACKED];	/* transient objects and sessions to flush */
	size_t ntracked;
	int marker;			/* this open made or found KL_TPM_MARKER_FILE: remove at a clean close */
};

/* In keylime_dir (kl_tpm_state_dir, kl_prog.h), 0600, empty: see kl_tpm_open. */
#define KL_TPM_MARKER_FILE "kl-tpm.open"

/* The endorsement key in use. */
struct kl_ek {
	ESYS_TR handle;			/* owned by the struct kl_tpm */
	uint32_t persistent;		/* its persistent handle, or 0 if created from the template */
	char alg[4];			/* "rsa" | "ecc" */
	TPMI_ALG_HASH name_alg;		/* hash of the policy sessions that authorize it */
	unsigned char *pub;		/* marshalled TPM2B_PUBLIC (ek_tpm) */
	size_t pub_len;
	unsigned char *name;		/* nameAlg || H(TPMT_PUBLIC) */
	size_t name_len;
	TPM2B_AUTH auth;		/* endorsement hierarchy auth: a secret, wiped on release */
};

/* The output of a quote (docs/protocol.md §6.3). */
struct kl_quote {
	unsigned char *attest;		/* TPMS_ATTEST, no size prefix ("message") */
	size_t attest_len;
	unsigned char *sig;		/* marshalled TPMT_SIGNATURE ("signature") */
	size_t sig_len;
	unsigned char *pcrs;		/* the serialized PCR blob of §6.3.3 ("subject_data") */
	size_t pcrs_len;
};

/* What an AK public area says about the key (capabilities, agent data). */
struct kl_key_info {
	char key_algorithm[4];		/* "rsa" | "ecc" */
	int key_size;			/* RSA modulus bits or ECC curve bits */
	char hash_alg[8];		/* hash of the signing scheme */
	char signing_alg[12];		/* "rsassa" | "rsapss" | "ecdsa" | ... */
	char name_alg[8];
};

/*
 * Connect to the TPM through tcti ("swtpm:host=127.0.0.1,port=2321",
 * "device:/dev/tpmrm0", ...) and send TPM2_Startup(CLEAR) (an already started
 * TPM is fine). tss2's own log lines are silenced unless TSS2_LOG is set.
 * On failure nothing is left open.
 *
 * On a TPM without a resource manager (swtpm:, mssim:, device:/dev/tpmN --
 * one user at a time by construction; never device:/dev/tpmrmN or tabrmd:),
 * transient objects and sessions left by a killed process are flushed here,
 * with one notice line: kl is the only user, and three leftovers fill
 * swtpm's slots. Only when there is reason to think some are there (the
 * look costs three commands): KL_TPM_MARKER_FILE in keylime_dir, which an
 * open makes and kl_tpm_close() removes, is still there (a step died
 * holding the TPM), or a command failed for want of object or session
 * memory (0x902/0x903/0x904: that step fails with KL_TEMP, the next one
 * flushes). Without a marker directory, or when the marker cannot be
 * made (read-only or full keylime_dir), at every open.
 *
 * While the TPM is open, every command waits at most kl_tpm_timeout_seconds
 * (kl_prog.h; the tpm_timeout_seconds key) * for its answer, and SIGTERM/SIGINT end the command in flight (kl_prog.h):
 * both fail with KL_TEMP and one line.
 */
int kl_tpm_open(struct kl_tpm *t, const char *tcti);


/* Flush every transient object and session this kl_tpm made, then disconnect. */
void kl_tpm_close(struct kl_tpm *t);

/* Flush one tracked object or session now (e.g. the EK after activation). */
void kl_tpm_flush(struct kl_tpm *t, ESYS_TR h);

/*
 * The EK for alg "rsa" or "ecc": from the persistent handle ("0x81010001"),
 * or, when handle is "", created from the TCG default template (L-1
 * RSA-2048 or L-2 ECC P-256, docs/protocol.md §8.2). endorsement_auth is "", text,
 * or "hex:<hex>" (a secret: never logged); it is kept in out->auth for the
 * policy sessions that authorize the EK. Release out with kl_tpm_ek_release().
 */
int kl_tpm_ek(struct kl_tpm *t, const char *alg, const char *handle,
    const char *endorsement_auth, struct kl_ek *out);
void kl_tpm_ek_release(struct kl_ek *ek);

/*
 * The EK certificate for alg from its NV index (RSA 0x01c00002, ECC
 * 0x01c0000a), DER without trailing padding. A missing index gives KL_OK with
 * *der NULL (the caller decides whether to warn).
 */
int kl_tpm_ek_cert(struct kl_tpm *t, const char *alg, unsigned char **der, size_t *len);
/* The same for any NV index holding one DER certificate (plus padding). */
int kl_tpm_nv_cert(struct kl_tpm *t, uint32_t index, unsigned char **der, size_t *len);

/*
 * Create an AK under ek (template of docs/protocol.md §8.2: RSA-2048 for an RSA EK,
 * ECC P-256 for an ECC EK; nameAlg and scheme hash = hash_alg; sign_alg
 * "rsassa"/"rsapss" for RSA, "ecdsa" for ECC). Returns the marshalled
 * TPM2B_PUBLIC (aik_tpm) and TPM2B_PRIVATE. The AK is not loaded.
 */
int kl_tpm_ak_create(struct kl_tpm *t, const struct kl_ek *ek, const char *hash_alg,
    const char *sign_alg, unsigned char **pub, size_t *pub_len,
    unsigned char **priv, size_t *priv_len);

/* Load an AK made by kl_tpm_ak_create() under ek; *ak is tracked. */
int kl_tpm_ak_load(struct kl_tpm *t, const struct kl_ek *ek, const unsigned char *pub,
    size_t pub_len, const unsigned char *priv, size_t priv_len, ESYS_TR *ak);

/*
 * TPM2_ActivateCredential of the registrar's blob (docs/protocol.md §2.4: magic
 * 0xBADCC0DE, version 1, credential, secret; sizes must fit exactly).
 * *secret is the recovered credential (32 ASCII bytes from Keylime): a secret,
 * free it with kl_secret_free(*secret, *slen).
 */
int kl_tpm_activate(struct kl_tpm *t, const struct kl_ek *ek, ESYS_TR ak,
    const unsigned char *blob, size_t len, unsigned char **secret, size_t *slen);

/*
 * TPM2_Certify of the AK by itself with qualifyingData = nonce (docs/protocol.md
 * §4.2): TPMS_ATTEST (no size prefix) and marshalled TPMT_SIGNATURE.
 */
int kl_tpm_certify(struct kl_tpm *t, ESYS_TR ak, const unsigned char *nonce, size_t nonce_len,
    unsigned char **attest, size_t *alen, unsigned char **sig, size_t *slen);

/*
 * TPM2_Quote of pcrs (0..23, any order, no duplicates) in bank hash_alg,
 * signed with sign_alg/hash_alg, which must be the AK's own scheme. The PCR
 * values are read back and checked against the quote's pcrDigest (up to 5
 * tries when PCRs move; KL_TEMP after that). Release out with kl_tpm_quote_release().
 */
int kl_tpm_quote(struct kl_tpm *t, ESYS_TR ak, const unsigned char *nonce, size_t nonce_len,
    const char *hash_alg, const char *sign_alg, const int *pcrs, size_t npcrs,
    struct kl_quote *out);
void kl_tpm_quote_release(struct kl_quote *q);

/*
 * PCR values of bank (e.g. "sha256") for pcrs, in ascending PCR order, each
 * *dlen bytes, into *values (npcrs * *dlen bytes).
 */
int kl_tpm_pcr_read(struct kl_tpm *t, const char *bank, const int *pcrs, size_t npcrs,
    unsigned char **values, size_t *dlen);

/*
 * The tpm_quote capabilities of docs/protocol.md §5.1.1 that come from the TPM, as
 * a new object {"hash_algorithms":[..], "signature_schemes":[..],
 * "available_subjects":{"sha256":[0,..,23]}}: hash algorithms with an
 * allocated PCR bank, signature schemes sorted.
 */
int kl_tpm_caps(struct kl_tpm *t, json_t **out);

/*
 * Saved contexts (TPM2_ContextSave/ContextLoad), so that later processes use
 * a loaded key without re-creating its parent (an EK CreatePrimary takes
 * seconds on a discrete TPM). A saved object context is protected by the TPM
 * and valid until a TPM Reset or Restart.
 * kl_tpm_context_save: the marshalled TPMS_CONTEXT of obj (ESAPI's metadata
 * inside its contextBlob), malloc()ed. The object stays loaded.
 * kl_tpm_context_load: load such a blob; it must be the key whose marshalled
 * TPM2B_PUBLIC is pub. *obj is tracked. KL_REFUSED (one info line) when the
 * blob is malformed, stale (the TPM refuses it: integrity, handle, hierarchy)
 * or another key: the caller re-creates it. KL_TEMP when the TPM is busy or
 * unreachable.
 */
int kl_tpm_context_save(struct kl_tpm *t, ESYS_TR obj, unsigned char **blob, size_t *len);
int kl_tpm_context_load(struct kl_tpm *t, const unsigned char *blob, size_t len,
    const unsigned char *pub, size_t pub_len, ESYS_TR *obj);

/* --- No TPM needed --- */

/* Name of a key from its marshalled TPM2B_PUBLIC: nameAlg || H(TPMT_PUBLIC). */
int kl_tpm_name(const unsigned char *pub, size_t len, unsigned char **name, size_t *name_len);

/* Describe a marshalled TPM2B_PUBLIC of a signing key. KL_PERM if unusable. */
int kl_tpm_key_info(const unsigned char *pub, size_t len, struct kl_key_info *out);

/*
 * The key parameters of a marshalled TPM2B_PUBLIC (RSA modulus and exponent,
 * or NIST P-256/384/521 curve and point), unmarshalled with Tss2_MU, for
 * kl_crypto_pubkey_pem(). KL_PERM (logged) if it is not such a key.
 */
int kl_tpm_public_key(const unsigned char *pub, size_t len, struct kl_crypto_pubkey *out);

/*
 * The PCR blob of docs/protocol.md §6.3.3 for one bank: pcrs (ascending) with
 * their values (npcrs * dlen bytes, same order). *blob is 136 + 532*N bytes.
 */
int kl_tpm_pcr_blob(const char *bank, const int *pcrs, size_t npcrs,
    const unsigned char *values, size_t dlen, unsigned char **blob, size_t *len);

/*
 * "tss2-esys 4.0.1 (build time)", for --version: tss2 has no run-time version
 * call, so this is pkg-config's version when kl was built (the Makefile).
 */
const char *kl_tpm_version(void);

#endif
