/* kl_crypto.c - see kl_crypto.h. The only file that calls libcrypto. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "kl_crypto.h"
#include "kl_util.h"
#include "kl_banned.h"

/* ---- digests ---- */

static const EVP_MD *
md_of(const char *alg)
{
	static const struct { const char *kl, *ossl; } names[] = {
		{ "sha1", "SHA1" }, { "sha256", "SHA256" }, { "sha384", "SHA384" },
		{ "sha512", "SHA512" }, { "sm3_256", "SM3" },	/* SM3 may be absent */
	};

	for (size_t i = 0; alg && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(alg, names[i].kl) == 0)
			return EVP_get_digestbyname(names[i].ossl);
	return NULL;
}

size_t
kl_crypto_digest_size(const char *alg)
{
	const EVP_MD *md = md_of(alg);

	return md ? (size_t)EVP_MD_get_size(md) : 0;
}

int
kl_crypto_digest(const char *alg, const void *buf, size_t len, unsigned char *out)
{
	const EVP_MD *md = md_of(alg);

	return md && EVP_Digest(buf, len, out, NULL, md, NULL) == 1 ? 0 : -1;
}

/* n bytes as lowercase hex into out (2n + 1 bytes); wipes the heap copy. */
static int
hex_into(const unsigned char *b, size_t n, char *out)
{
	char *h = kl_hex_encode(b, n);

	if (h == NULL)
		return -1;
	memcpy(out, h, 2 * n + 1);
	kl_secret_free(h, 2 * n);
	return 0;
}

int
kl_crypto_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char d[32];

	if (kl_crypto_digest("sha256", buf, len, d) != 0)
		return -1;
	return hex_into(d, sizeof(d), out);
}

int
kl_crypto_hmac_sha384_hex(const void *key, size_t key_len, const void *msg,
    size_t msg_len, char out[97])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	int rc = -1;

	if (key_len <= INT_MAX &&
	    HMAC(EVP_sha384(), key, (int)key_len, msg, msg_len, mac, &mlen) != NULL && mlen == 48)
		rc = hex_into(mac, mlen, out);
	explicit_bzero(mac, sizeof(mac));
	return rc;
}

/* ---- X.509 ---- */

size_t
kl_crypto_x509_der_len(const unsigned char *buf, size_t len)
{
	const unsigned char *p = buf;
	X509 *x;

	if (buf == NULL || len == 0 || len > LONG_MAX || (x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return 0;
	X509_free(x);
	return (size_t)(p - buf);	/* d2i_X509 stops after the one certificate */
}

int
kl_crypto_x509_pem_to_der(const char *pem, unsigned char **der, size_t *len)
{
	BIO *bio;
	X509 *x;
	unsigned char *p = NULL;
	int n;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL)
		return -1;
	n = i2d_X509(x, &p);	/* allocates p */
	X509_free(x);
	if (n <= 0)
		return -1;
	/* OpenSSL's allocation: hand the caller a malloc()ed copy to free(). */
	if ((*der = malloc((size_t)n)) == NULL) {
		OPENSSL_free(p);
		return -1;
	}
	memcpy(*der, p, (size_t)n);
	OPENSSL_free(p);
	*len = (size_t)n;
	return 0;
}

/* ---- public keys ---- */

static EVP_PKEY *
pkey_from(OSSL_PARAM_BLD *bld, const char *type)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pk = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pk;
}

static EVP_PKEY *
rsa_key(const struct kl_crypto_pubkey *k, OSSL_PARAM_BLD *bld)
{
	BIGNUM *n, *e;
	EVP_PKEY *pk = NULL;

	if (k->n_len == 0 || k->n_len > sizeof(k->n))
		return NULL;
	n = BN_bin2bn(k->n, (int)k->n_len, NULL);
	e = BN_new();
	if (n && e && BN_set_word(e, k->e) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pk = pkey_from(bld, "RSA");
	BN_free(n);
	BN_free(e);
	return pk;
}

static EVP_PKEY *
ec_key(const struct kl_crypto_pubkey *k, OSSL_PARAM_BLD *bld)
{
	static const struct { int bits; const char *name; size_t size; } curves[] = {
		{ 256, "prime256v1", 32 }, { 384, "secp384r1", 48 }, { 521, "secp521r1", 66 },
	};
	unsigned char point[1 + 2 * 66];
	const char *group = NULL;
	size_t sz = 0;

	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (curves[i].bits == k->curve_bits) {
			group = curves[i].name;
			sz = curves[i].size;
		}
	if (group == NULL || k->x_len == 0 || k->y_len == 0 || k->x_len > sz || k->y_len > sz)
		return NULL;
	/* An uncompressed point, each coordinate left-padded to the field size. */
	memset(point, 0, sizeof(point));
	point[0] = 0x04;
	memcpy(point + 1 + sz - k->x_len, k->x, k->x_len);
	memcpy(point + 1 + 2 * sz - k->y_len, k->y, k->y_len);
	if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * sz))
		return NULL;
	return pkey_from(bld, "EC");
}

/* OpenSSL's key for k, or NULL. */
static EVP_PKEY *
pkey_of(const struct kl_crypto_pubkey *k)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *pk = NULL;

	if (bld != NULL && k->type == KL_CRYPTO_RSA)
		pk = rsa_key(k, bld);
	else if (bld != NULL && k->type == KL_CRYPTO_EC)
		pk = ec_key(k, bld);
	OSSL_PARAM_BLD_free(bld);
	return pk;
}

int
kl_crypto_pubkey_pem(const struct kl_crypto_pubkey *k, char **pem, size_t *len)
{
	EVP_PKEY *pk = pkey_of(k);
	BIO *bio = NULL;
	char *text;
	long n;
	int rc = -1;

	*pem = NULL;
	if (pk == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pk) != 1 || (n = BIO_get_mem_data(bio, &text)) <= 0 ||
	    (*pem = malloc((size_t)n + 1)) == NULL)
		goto out;
	memcpy(*pem, text, (size_t)n);
	(*pem)[n] = '\0';
	*len = (size_t)n;
	rc = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return rc;
}

/* ---- certificates (kl-doctor) ---- */

int
kl_crypto_cert_has_key(const unsigned char *der, size_t len, const struct kl_crypto_pubkey *k,
    char *issuer, size_t cap)
{
	const unsigned char *p = der;
	X509 *x = len <= LONG_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
	EVP_PKEY *mine;
	int rc;

	if (x == NULL)
		return -1;
	if (cap > 0)
		X509_NAME_oneline(X509_get_issuer_name(x), issuer, (int)(cap > INT_MAX ? INT_MAX : cap));
	mine = pkey_of(k);
	rc = mine != NULL && X509_get0_pubkey(x) != NULL &&
	    EVP_PKEY_eq(mine, X509_get0_pubkey(x)) == 1;
	EVP_PKEY_free(mine);
	X509_free(x);
	return rc;
}

int
kl_crypto_ca_file(const char *path, int *count, int *expired, char *subject, size_t cap)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x;

	*count = *expired = 0;
	if (cap > 0)
		subject[0] = '\0';
	if (b == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
			(*expired)++;
		if (*count == 0 && cap > 0)
			X509_NAME_oneline(X509_get_subject_name(x), subject,
			    (int)(cap > INT_MAX ? INT_MAX : cap));
		(*count)++;
		X509_free(x);
	}
	BIO_free(b);
	return 0;
}

const char *
kl_crypto_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
