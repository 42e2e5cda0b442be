/*
 * kl_akfile.h - the persisted AK ("agent data"): the AK's public and private
 * blobs, which algorithms it was made with, and which EK it belongs to, so
 * that later steps load the same AK under the EK (docs/protocol.md §8.1).
 *
 * The file (kl_config_agent_data(), mode 0600, replaced atomically) holds:
 *   {"version":1,
 *    "agent_id":"<uuid>",              only when the uuid option is "generate"
 *    "ek":{"algorithm":"rsa","public_sha256":"<hex SHA-256 of the EK TPM2B_PUBLIC>"},
 *    "ak":{"public":"<b64 TPM2B_PUBLIC>","private":"<b64 TPM2B_PRIVATE>",
 *          "hash_alg":"sha256","signing_alg":"rsassa","key_algorithm":"rsa"}}
 * Reading is strict: an unknown version or member, a missing or mistyped
 * member, or bad base64 or hex is KL_PERM with "<path>: <member>: <what>".
 */
#ifndef KL_AKFILE_H
#define KL_AKFILE_H

#include <stddef.h>

#define KL_AKFILE_VERSION 1

struct kl_akfile {
	char *agent_id;			/* NULL unless generated; owned */
	char ek_algorithm[4];		/* "rsa" | "ecc" */
	char ek_public_sha256[65];	/* lowercase hex */
	unsigned char *ak_public;	/* marshalled TPM2B_PUBLIC; owned */
	size_t ak_public_len;
	unsigned char *ak_private;	/* marshalled TPM2B_PRIVATE; owned */
	size_t ak_private_len;
	char hash_alg[8];		/* "sha256" ... */
	char signing_alg[12];		/* "rsassa" | "rsapss" | "ecdsa" */
	char key_algorithm[4];		/* "rsa" | "ecc" */
};

void kl_akfile_init(struct kl_akfile *f);
/* Free what f owns and zero it. */
void kl_akfile_release(struct kl_akfile *f);

/*
 * Read path into f (initialized or released first). A missing file with
 * missing_ok gives KL_OK and f->ak_public NULL. KL_PERM on any bad content.
 */
int kl_akfile_load(struct kl_akfile *f, const char *path, int missing_ok);

/* Write f to path (0600, atomic; missing directories are made 0700). */
int kl_akfile_save(const struct kl_akfile *f, const char *path);

/*
 * Fill f from a new AK: copies ek_alg, SHA-256 of ek_pub, the blobs and the
 * algorithm names (agent_id untouched). KL_OK, or KL_PERM on a bad name.
 */
int kl_akfile_set(struct kl_akfile *f, const char *ek_alg, const unsigned char *ek_pub,
    size_t ek_pub_len, const unsigned char *ak_pub, size_t ak_pub_len,
    const unsigned char *ak_priv, size_t ak_priv_len, const char *hash_alg,
    const char *signing_alg, const char *key_algorithm);

/*
 * May this AK be reused? 1 if it belongs to the EK whose TPM2B_PUBLIC is
 * ek_pub and was made with hash_alg and signing_alg, else 0.
 */
int kl_akfile_matches(const struct kl_akfile *f, const unsigned char *ek_pub, size_t ek_pub_len,
    const char *hash_alg, const char *signing_alg);

#endif
