/*
 * kl_crypto.h - every cryptographic primitive kl needs: digests, the
 * registration HMAC, X.509 DER/PEM, public keys as PEM, and random bytes.
 * The only module that calls OpenSSL (libcrypto); no other file includes
 * <openssl/...> (tests/bats/build.bats checks it).
 *
 * Two objects, one interface: kl_crypto.c (OpenSSL) and kl_crypto_rand.c
 * (random numbers from the kernel, no library), so that a program that only
 * needs random numbers (kl-agent's backoff jitter) does not link libcrypto.
 *
 * Digest names are Keylime's: "sha1" "sha256" "sha384" "sha512" "sm3_256".
 * Nothing here logs, except kl_crypto_random*() (one error line); callers say
 * what failed and where.
 */
#ifndef KL_CRYPTO_H
#define KL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define KL_CRYPTO_MAX_DIGEST 64		/* bytes of the longest digest (SHA-512) */

/* ---- kl_crypto.c (libcrypto) ---- */

/* Bytes of the digest alg, 0 when unknown or not available in this OpenSSL. */
size_t kl_crypto_digest_size(const char *alg);

/* Digest of buf with alg into out (kl_crypto_digest_size(alg) bytes). 0 or -1. */
int kl_crypto_digest(const char *alg, const void *buf, size_t len, unsigned char *out);

/* Lowercase hex SHA-256 of buf into out (64 digits and a NUL). 0 or -1. */
int kl_crypto_sha256_hex(const void *buf, size_t len, char out[65]);

/*
 * Lowercase hex HMAC-SHA384 of msg keyed with key, into out (96 digits and a
 * NUL): the registrar's auth_tag (docs/protocol.md §2.5). Intermediate copies
 * are wiped. 0 or -1.
 */
int kl_crypto_hmac_sha384_hex(const void *key, size_t key_len, const void *msg,
    size_t msg_len, char out[97]);

/*
 * Length of the one DER X.509 certificate at the start of buf (len bytes,
 * possibly followed by padding, as in a TPM NV index), as OpenSSL's parser
 * consumed it. 0 when buf does not start with a certificate.
 */
size_t kl_crypto_x509_der_len(const unsigned char *buf, size_t len);

/* The first certificate of PEM text as DER into a new buffer (free()). 0 or -1. */
int kl_crypto_x509_pem_to_der(const char *pem, unsigned char **der, size_t *len);

/* A public key by its parameters (big-endian, no leading sign byte). */
struct kl_crypto_pubkey {
	enum { KL_CRYPTO_RSA = 1, KL_CRYPTO_EC } type;
	/* RSA */
	unsigned char n[512];		/* modulus, n_len bytes */
	size_t n_len;
	uint32_t e;			/* public exponent */
	/* EC, NIST prime curves */
	int curve_bits;			/* 256, 384 or 521 */
	unsigned char x[128], y[128];	/* coordinates, x_len and y_len bytes */
	size_t x_len, y_len;
};

/*
 * The key as OpenSSL's PEM_write_bio_PUBKEY writes it ("-----BEGIN PUBLIC
 * KEY-----", SubjectPublicKeyInfo, lines of 64, final newline), into a new
 * NUL-terminated string (free()); *len excludes the NUL. 0 or -1.
 */
int kl_crypto_pubkey_pem(const struct kl_crypto_pubkey *k, char **pem, size_t *len);

/*
 * Does the DER certificate der hold the public key k (an EK certificate and
 * its EK)? 1 yes, 0 no, -1 not a certificate. Its issuer, one line, goes to
 * issuer (cap bytes).
 */
int kl_crypto_cert_has_key(const unsigned char *der, size_t len, const struct kl_crypto_pubkey *k,
    char *issuer, size_t cap);

/*
 * A PEM file of CA certificates: how many, how many expired, the first one's
 * subject (one line, cap bytes). 0, or -1 when the file cannot be read.
 */
int kl_crypto_ca_file(const char *path, int *count, int *expired, char *subject, size_t cap);

/* "OpenSSL 3.0.x ..." (for kl-doctor's bundle). */
const char *kl_crypto_version(void);

/* ---- kl_crypto_rand.c (no library) ---- */

/*
 * len random bytes into buf. The one source of randomness of kl: the
 * kernel's CSPRNG through getrandom(2), see kl_crypto_rand.c for why.
 * Returns 0, or -1 after one error line.
 */
int kl_crypto_random(void *buf, size_t len);

/* A random 64-bit value (backoff jitter). 0, or -1 after one error line. */
int kl_crypto_random_u64(uint64_t *out);

/* A random UUIDv4, lowercase, into out (37 bytes). 0, or -1 after one error line. */
int kl_crypto_random_uuid(char out[37]);

/* "OpenSSL 3.0.x <date>": the run-time library's version, for --version. */
const char *kl_crypto_version(void);

#endif
