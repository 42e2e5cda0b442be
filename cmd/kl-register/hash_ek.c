/*
 * hash_ek.c - the agent id of uuid = "hash_ek" (docs/protocol.md §2.9): lowercase
 * hex SHA-256 of the EK public key as OpenSSL's PEM_write_bio_PUBKEY writes it
 * (the file `tpm2_readpublic -c ek -f pem` writes), newlines included.
 *
 * The key comes out of the marshalled TPM2B_PUBLIC (TPM 2.0 Part 2, 12.2.4),
 * read here field by field: lib/kl_tpm is the only caller of tss2, and only the
 * RSA and ECC public areas matter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "register.h"
#include "kl_banned.h"

#define ALG_RSA 0x0001
#define ALG_XOR 0x000a
#define ALG_NULL 0x0010
#define ALG_RSAES 0x0015
#define ALG_ECDAA 0x001a
#define ALG_ECC 0x0023

/* A big-endian reader that fails once and stays failed. */
struct rd {
	const unsigned char *p;
	size_t left;
	int bad;
};

static uint32_t
take(struct rd *r, size_t n)
{
	uint32_t v = 0;

	if (r->bad || r->left < n) {
		r->bad = 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v = v << 8 | r->p[i];
	r->p += n;
	r->left -= n;
	return v;
}

/* A TPM2B: its bytes stay in the input. */
static const unsigned char *
take2b(struct rd *r, size_t *len)
{
	const unsigned char *b;

	*len = take(r, 2);
	if (r->bad || r->left < *len) {
		r->bad = 1;
		return NULL;
	}
	b = r->p;
	r->p += *len;
	r->left -= *len;
	return b;
}

/* TPMT_SYM_DEF_OBJECT: algorithm, then keyBits and mode unless NULL (XOR has no mode). */
static void
skip_symmetric(struct rd *r)
{
	uint32_t alg = take(r, 2);

	if (alg != ALG_NULL)
		take(r, alg == ALG_XOR ? 2 : 4);
}

/* The scheme: a hash follows unless NULL or RSAES; ECDAA adds a count. */
static void
skip_scheme(struct rd *r)
{
	uint32_t s = take(r, 2);

	if (s != ALG_NULL && s != ALG_RSAES)
		take(r, s == ALG_ECDAA ? 4 : 2);
}

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
rsa_key(struct rd *r)
{
	OSSL_PARAM_BLD *bld;
	BIGNUM *n = NULL, *e = NULL;
	const unsigned char *mod;
	uint32_t exp;
	size_t len;
	EVP_PKEY *pk = NULL;

	skip_symmetric(r);
	skip_scheme(r);
	take(r, 2);			/* keyBits */
	exp = take(r, 4);		/* 0 means the default, 2^16 + 1 */
	mod = take2b(r, &len);
	if (r->bad || len == 0 || (bld = OSSL_PARAM_BLD_new()) == NULL)
		return NULL;
	n = BN_bin2bn(mod, (int)len, NULL);
	e = BN_new();
	if (n && e && BN_set_word(e, exp ? exp : 65537) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		pk = pkey_from(bld, "RSA");
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_BLD_free(bld);
	return pk;
}

static EVP_PKEY *
ecc_key(struct rd *r)
{
	static const struct { uint32_t id; const char *name; size_t size; } curves[] = {
		{ 0x0003, "prime256v1", 32 }, { 0x0004, "secp384r1", 48 }, { 0x0005, "secp521r1", 66 },
	};
	unsigned char point[1 + 2 * 66];
	const unsigned char *x, *y;
	size_t xl, yl, sz = 0;
	const char *group = NULL;
	uint32_t curve;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *pk = NULL;

	skip_symmetric(r);
	skip_scheme(r);
	curve = take(r, 2);
	skip_scheme(r);			/* kdf: a scheme and its hash, the same layout */
	x = take2b(r, &xl);
	y = take2b(r, &yl);
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (curves[i].id == curve) {
			group = curves[i].name;
			sz = curves[i].size;
		}
	if (r->bad || group == NULL || xl == 0 || yl == 0 || xl > sz || yl > sz)
		return NULL;
	/* An uncompressed point, each coordinate left-padded to the field size. */
	memset(point, 0, sizeof(point));
	point[0] = 0x04;
	memcpy(point + 1 + sz - xl, x, xl);
	memcpy(point + 1 + 2 * sz - yl, y, yl);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return NULL;
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * sz))
		pk = pkey_from(bld, "EC");
	OSSL_PARAM_BLD_free(bld);
	return pk;
}

int
reg_hash_ek(const unsigned char *pub, size_t len, char out[65])
{
	struct rd r = { pub, len, 0 };
	unsigned char d[32];
	unsigned int dl = 0;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *pem, *hex = NULL;
	long pem_len;
	size_t body, plen;
	uint32_t type;
	int rc = KL_PERM;

	body = take(&r, 2);
	if (r.bad || body != len - 2)
		return kl_fail(KL_PERM, "hash_ek: the EK public area is not one TPM2B_PUBLIC");
	type = take(&r, 2);
	take(&r, 2);			/* nameAlg */
	take(&r, 4);			/* objectAttributes */
	take2b(&r, &plen);		/* authPolicy */
	if (type == ALG_RSA)
		pk = rsa_key(&r);
	else if (type == ALG_ECC)
		pk = ecc_key(&r);
	if (pk == NULL || r.left != 0)
		return kl_fail(KL_PERM, "hash_ek: cannot read the %s EK public key",
		    type == ALG_ECC ? "ECC" : "RSA");
	if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1 ||
	    (pem_len = BIO_get_mem_data(bio, &pem)) <= 0 ||
	    EVP_Digest(pem, (size_t)pem_len, d, &dl, EVP_sha256(), NULL) != 1 || dl != 32 ||
	    (hex = kl_hex_encode(d, 32)) == NULL) {
		rc = kl_fail(KL_TEMP, "hash_ek: cannot encode the EK public key as PEM");
		goto out;
	}
	memcpy(out, hex, 65);
	rc = KL_OK;
out:
	free(hex);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return rc;
}
