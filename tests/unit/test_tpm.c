/*
 * test_tpm - drive lib/kl_tpm.c against the TPM named by $TCTI (tests/bats/tpm.bats).
 *
 *   test_tpm ek ALG [HANDLE]              {"public":b64,"name":hex,"certificate":b64|null}
 *   test_tpm nv-cert INDEX                {"certificate":b64|null}
 *   test_tpm ak-create ALG HASH SIG --out AKFILE
 *                                         create and load an AK, save it as agent data;
 *                                         {"public":b64,"name":hex,"key":{...}}
 *   test_tpm ak-load AKFILE               {"name":hex}
 *   test_tpm activate AKFILE BLOBFILE     {"secret":"<the credential as text>"}
 *   test_tpm certify AKFILE NONCEHEX      {"message":b64,"signature":b64}
 *   test_tpm quote AKFILE NONCEHEX HASH PCRS SIG
 *                                         {"message":b64,"signature":b64,"subject_data":b64}
 *   test_tpm caps                         the object of kl_tpm_caps()
 *   test_tpm pcr-read BANK PCRS           {"values":[hex,...]}
 *   No TPM:
 *   test_tpm name PUBFILE                 {"name":hex}
 *   test_tpm key-info PUBFILE             {"key_algorithm":..,"key_size":..,...}
 *   test_tpm pcr-blob BANK PCRS VALUESHEX {"blob":b64}
 * PCRS is "0,1,2,10". $KL_TEST_EK_AUTH is the endorsement auth, $KL_TEST_EK_HANDLE
 * the EK handle for AK commands (default: created). Exit status: the kl_rc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_akfile.h"
#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "kl_banned.h"

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	return v ? v : "";
}

static int
usage(void)
{
	return kl_fail(KL_PERM, "usage: test_tpm ek|nv-cert|ak-create|ak-load|activate|certify|"
	    "quote|caps|pcr-read|name|key-info|pcr-blob ...");
}

static int
emit(json_t *j)
{
	int rc;

	if (j == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	rc = kl_json_write_stdout(j);
	json_decref(j);
	return rc;
}

static json_t *
b64(const void *p, size_t n)
{
	char *s;
	json_t *j;

	if (p == NULL)
		return json_null();
	s = kl_b64_encode(p, n);
	j = json_string(s);
	free(s);
	return j;
}

static json_t *
hex(const void *p, size_t n)
{
	char *s = kl_hex_encode(p, n);
	json_t *j = json_string(s);

	free(s);
	return j;
}

static int
parse_pcrs(const char *s, int *pcrs, size_t *n)
{
	char *end;

	*n = 0;
	while (*s) {
		long v = strtol(s, &end, 10);

		if (end == s || *n == 32 || (*end != ',' && *end != '\0'))
			return kl_fail(KL_PERM, "bad PCR list");
		pcrs[(*n)++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return KL_OK;
}

static int
read_file(const char *path, unsigned char **buf, size_t *len)
{
	return kl_file_read(path, 1 << 20, 0, (char **)buf, len);
}

/* Open the TPM, the EK of the agent data's algorithm, and load its AK. */
static int
open_ak(const char *akpath, struct kl_tpm *t, struct kl_ek *ek, struct kl_akfile *f, ESYS_TR *ak)
{
	int rc;

	if ((rc = kl_akfile_load(f, akpath, 0)) != KL_OK)
		return rc;
	if ((rc = kl_tpm_open(t, env("TCTI"))) != KL_OK)
		return rc;
	if ((rc = kl_tpm_ek(t, f->ek_algorithm, env("KL_TEST_EK_HANDLE"), env("KL_TEST_EK_AUTH"), ek)) != KL_OK)
		return rc;
	if (!kl_akfile_matches(f, ek->pub, ek->pub_len, f->hash_alg, f->signing_alg))
		return kl_fail(KL_PERM, "%s: made under another EK", akpath);
	return kl_tpm_ak_load(t, ek, f->ak_public, f->ak_public_len, f->ak_private,
	    f->ak_private_len, ak);
}

static int
cmd_ek(int argc, char **argv)
{
	struct kl_tpm t;
	struct kl_ek ek = { 0 };
	unsigned char *der = NULL;
	size_t dlen = 0;
	json_t *out = NULL;
	int rc;

	if (argc < 1 || argc > 2)
		return usage();
	if ((rc = kl_tpm_open(&t, env("TCTI"))) != KL_OK)
		return rc;
	if ((rc = kl_tpm_ek(&t, argv[0], argc > 1 ? argv[1] : "", env("KL_TEST_EK_AUTH"), &ek)) == KL_OK &&
	    (rc = kl_tpm_ek_cert(&t, argv[0], &der, &dlen)) == KL_OK)
		out = json_pack("{s:o,s:o,s:o}", "public", b64(ek.pub, ek.pub_len),
		    "name", hex(ek.name, ek.name_len), "certificate", b64(der, dlen));
	kl_tpm_close(&t);	/* before stdout, as every kl step does */
	kl_tpm_ek_release(&ek);
	free(der);
	return rc == KL_OK ? emit(out) : rc;
}

static int
cmd_nv_cert(int argc, char **argv)
{
	struct kl_tpm t;
	unsigned char *der = NULL;
	size_t dlen = 0;
	int rc;

	if (argc != 1)
		return usage();
	if ((rc = kl_tpm_open(&t, env("TCTI"))) != KL_OK)
		return rc;
	rc = kl_tpm_nv_cert(&t, (uint32_t)strtoul(argv[0], NULL, 16), &der, &dlen);
	kl_tpm_close(&t);
	if (rc == KL_OK)
		rc = emit(json_pack("{s:o}", "certificate", b64(der, dlen)));
	free(der);
	return rc;
}

static int
cmd_ak_create(int argc, char **argv)
{
	struct kl_tpm t;
	struct kl_ek ek = { 0 };
	struct kl_akfile f;
	struct kl_key_info info;
	unsigned char *pub = NULL, *priv = NULL, *name = NULL;
	size_t publen = 0, privlen = 0, nlen = 0;
	ESYS_TR ak = ESYS_TR_NONE;
	json_t *out = NULL;
	int rc;

	if (argc != 5 || strcmp(argv[3], "--out") != 0)
		return usage();
	kl_akfile_init(&f);
	if ((rc = kl_tpm_open(&t, env("TCTI"))) != KL_OK)
		return rc;
	if ((rc = kl_tpm_ek(&t, argv[0], env("KL_TEST_EK_HANDLE"), env("KL_TEST_EK_AUTH"), &ek)) == KL_OK &&
	    (rc = kl_tpm_ak_create(&t, &ek, argv[1], argv[2], &pub, &publen, &priv, &privlen)) == KL_OK &&
	    (rc = kl_tpm_ak_load(&t, &ek, pub, publen, priv, privlen, &ak)) == KL_OK &&
	    (rc = kl_tpm_name(pub, publen, &name, &nlen)) == KL_OK &&
	    (rc = kl_tpm_key_info(pub, publen, &info)) == KL_OK &&
	    (rc = kl_akfile_set(&f, ek.alg, ek.pub, ek.pub_len, pub, publen, priv, privlen,
		info.hash_alg, info.signing_alg, info.key_algorithm)) == KL_OK)
		out = json_pack("{s:o,s:o,s:{s:s,s:i,s:s,s:s,s:s}}", "public", b64(pub, publen),
		    "name", hex(name, nlen), "key", "key_algorithm", info.key_algorithm,
		    "key_size", info.key_size, "hash_alg", info.hash_alg,
		    "signing_alg", info.signing_alg, "name_alg", info.name_alg);
	kl_tpm_close(&t);
	if (rc == KL_OK && (rc = kl_akfile_save(&f, argv[4])) == KL_OK)
		rc = emit(out);
	else
		json_decref(out);
	kl_tpm_ek_release(&ek);
	kl_akfile_release(&f);
	free(pub);
	free(priv);
	free(name);
	return rc;
}

static int
cmd_ak_load(int argc, char **argv)
{
	struct kl_tpm t = { 0 };
	struct kl_ek ek = { 0 };
	struct kl_akfile f;
	unsigned char *name = NULL;
	size_t nlen;
	ESYS_TR ak = ESYS_TR_NONE;
	int rc;

	if (argc != 1)
		return usage();
	rc = open_ak(argv[0], &t, &ek, &f, &ak);
	kl_tpm_close(&t);
	if (rc == KL_OK && (rc = kl_tpm_name(f.ak_public, f.ak_public_len, &name, &nlen)) == KL_OK)
		rc = emit(json_pack("{s:o}", "name", hex(name, nlen)));
	free(name);
	kl_tpm_ek_release(&ek);
	kl_akfile_release(&f);
	return rc;
}

static int
cmd_activate(int argc, char **argv)
{
	struct kl_tpm t = { 0 };
	struct kl_ek ek = { 0 };
	struct kl_akfile f;
	unsigned char *blob = NULL, *secret = NULL;
	size_t blen = 0, slen = 0;
	ESYS_TR ak = ESYS_TR_NONE;
	int rc;

	if (argc != 2)
		return usage();
	if ((rc = read_file(argv[1], &blob, &blen)) != KL_OK)
		return rc;
	if ((rc = open_ak(argv[0], &t, &ek, &f, &ak)) == KL_OK)
		rc = kl_tpm_activate(&t, &ek, ak, blob, blen, &secret, &slen);
	kl_tpm_close(&t);
	if (rc == KL_OK)
		rc = emit(json_pack("{s:s%}", "secret", (const char *)secret, slen));
	kl_secret_free(secret, slen);
	free(blob);
	kl_tpm_ek_release(&ek);
	kl_akfile_release(&f);
	return rc;
}

static int
cmd_certify(int argc, char **argv)
{
	struct kl_tpm t = { 0 };
	struct kl_ek ek = { 0 };
	struct kl_akfile f;
	unsigned char *nonce = NULL, *att = NULL, *sig = NULL;
	size_t nlen = 0, alen = 0, slen = 0;
	ESYS_TR ak = ESYS_TR_NONE;
	int rc;

	if (argc != 2)
		return usage();
	if (kl_hex_decode(argv[1], &nonce, &nlen) != 0)
		return kl_fail(KL_PERM, "bad nonce hex");
	if ((rc = open_ak(argv[0], &t, &ek, &f, &ak)) == KL_OK)
		rc = kl_tpm_certify(&t, ak, nonce, nlen, &att, &alen, &sig, &slen);
	kl_tpm_close(&t);
	if (rc == KL_OK)
		rc = emit(json_pack("{s:o,s:o}", "message", b64(att, alen), "signature", b64(sig, slen)));
	free(nonce);
	free(att);
	free(sig);
	kl_tpm_ek_release(&ek);
	kl_akfile_release(&f);
	return rc;
}

static int
cmd_quote(int argc, char **argv)
{
	struct kl_tpm t = { 0 };
	struct kl_ek ek = { 0 };
	struct kl_akfile f;
	struct kl_quote q = { 0 };
	unsigned char *nonce = NULL;
	size_t nlen = 0, npcrs;
	int pcrs[32];
	ESYS_TR ak = ESYS_TR_NONE;
	int rc;

	if (argc != 5)
		return usage();
	if (kl_hex_decode(argv[1], &nonce, &nlen) != 0)
		return kl_fail(KL_PERM, "bad nonce hex");
	if ((rc = parse_pcrs(argv[3], pcrs, &npcrs)) == KL_OK &&
	    (rc = open_ak(argv[0], &t, &ek, &f, &ak)) == KL_OK)
		rc = kl_tpm_quote(&t, ak, nonce, nlen, argv[2], argv[4], pcrs, npcrs, &q);
	kl_tpm_close(&t);
	if (rc == KL_OK)
		rc = emit(json_pack("{s:o,s:o,s:o}", "message", b64(q.attest, q.attest_len),
		    "signature", b64(q.sig, q.sig_len), "subject_data", b64(q.pcrs, q.pcrs_len)));
	kl_tpm_quote_release(&q);
	free(nonce);
	kl_tpm_ek_release(&ek);
	kl_akfile_release(&f);
	return rc;
}

static int
cmd_caps(int argc, char **argv)
{
	struct kl_tpm t;
	json_t *caps = NULL;
	int rc;

	(void)argv;
	if (argc != 0)
		return usage();
	if ((rc = kl_tpm_open(&t, env("TCTI"))) != KL_OK)
		return rc;
	rc = kl_tpm_caps(&t, &caps);
	kl_tpm_close(&t);
	return rc == KL_OK ? emit(caps) : rc;
}

static int
cmd_pcr_read(int argc, char **argv)
{
	struct kl_tpm t;
	unsigned char *vals = NULL;
	size_t n, dlen = 0;
	int pcrs[32], rc;
	json_t *list = json_array();

	if (argc != 2)
		return usage();
	if ((rc = parse_pcrs(argv[1], pcrs, &n)) != KL_OK ||
	    (rc = kl_tpm_open(&t, env("TCTI"))) != KL_OK) {
		json_decref(list);
		return rc;
	}
	rc = kl_tpm_pcr_read(&t, argv[0], pcrs, n, &vals, &dlen);
	kl_tpm_close(&t);
	for (size_t i = 0; rc == KL_OK && i < n; i++)
		json_array_append_new(list, hex(vals + i * dlen, dlen));
	free(vals);
	if (rc != KL_OK) {
		json_decref(list);
		return rc;
	}
	return emit(json_pack("{s:o}", "values", list));
}

static int
cmd_name(int argc, char **argv)
{
	unsigned char *pub = NULL, *name = NULL;
	size_t plen, nlen;
	int rc;

	if (argc != 1)
		return usage();
	if ((rc = read_file(argv[0], &pub, &plen)) == KL_OK &&
	    (rc = kl_tpm_name(pub, plen, &name, &nlen)) == KL_OK)
		rc = emit(json_pack("{s:o}", "name", hex(name, nlen)));
	free(pub);
	free(name);
	return rc;
}

static int
cmd_key_info(int argc, char **argv)
{
	struct kl_key_info info;
	unsigned char *pub = NULL;
	size_t plen;
	int rc;

	if (argc != 1)
		return usage();
	if ((rc = read_file(argv[0], &pub, &plen)) == KL_OK &&
	    (rc = kl_tpm_key_info(pub, plen, &info)) == KL_OK)
		rc = emit(json_pack("{s:s,s:i,s:s,s:s,s:s}", "key_algorithm", info.key_algorithm,
		    "key_size", info.key_size, "hash_alg", info.hash_alg,
		    "signing_alg", info.signing_alg, "name_alg", info.name_alg));
	free(pub);
	return rc;
}

static int
cmd_pcr_blob(int argc, char **argv)
{
	unsigned char *vals = NULL, *blob = NULL;
	size_t vlen = 0, blen, n;
	int pcrs[32], rc;

	if (argc != 3)
		return usage();
	if ((rc = parse_pcrs(argv[1], pcrs, &n)) != KL_OK)
		return rc;
	if (kl_hex_decode(argv[2], &vals, &vlen) != 0 || n == 0 || vlen % n != 0) {
		free(vals);
		return kl_fail(KL_PERM, "bad values");
	}
	if ((rc = kl_tpm_pcr_blob(argv[0], pcrs, n, vals, vlen / n, &blob, &blen)) == KL_OK)
		rc = emit(json_pack("{s:o}", "blob", b64(blob, blen)));
	free(vals);
	free(blob);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "ek", cmd_ek }, { "nv-cert", cmd_nv_cert }, { "ak-create", cmd_ak_create },
		{ "ak-load", cmd_ak_load }, { "activate", cmd_activate }, { "certify", cmd_certify },
		{ "quote", cmd_quote }, { "caps", cmd_caps }, { "pcr-read", cmd_pcr_read },
		{ "name", cmd_name }, { "key-info", cmd_key_info }, { "pcr-blob", cmd_pcr_blob },
	};

	kl_log_init("test_tpm");
	if (getenv("KL_TEST_VERBOSE"))
		kl_verbose = 2;
	if (argc < 2)
		return usage();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 2, argv + 2);
	return usage();
}
