/*
 * test_crypto: driver for lib/kl_crypto, called by tests/bats/crypto.bats.
 * Byte strings are given and printed in hex ("-" is empty).
 *
 *   test_crypto digest ALG HEX           kl_crypto_digest, or exit 1 (unknown ALG)
 *   test_crypto sha256-hex HEX           kl_crypto_sha256_hex
 *   test_crypto hmac-sha384 KEYHEX MSGHEX
 *   test_crypto random N                 N random bytes
 *   test_crypto u64 | uuid               kl_crypto_random_u64, kl_crypto_random_uuid
 *   test_crypto rsa-pem NHEX E           kl_crypto_pubkey_pem of an RSA key
 *   test_crypto ec-pem BITS XHEX YHEX    ... of an EC key
 *   test_crypto der-len FILE             kl_crypto_x509_der_len of the file's bytes
 *   test_crypto pem-to-der FILE          kl_crypto_x509_pem_to_der, DER on stdout
 * Exit 0, 1 when kl_crypto refuses, 100 on usage errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_file.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

static unsigned char *
unhex(const char *s, size_t *len)
{
	unsigned char *b = NULL;

	if (strcmp(s, "-") == 0)
		s = "";
	if (kl_hex_decode(s, &b, len) != 0) {
		fprintf(stderr, "test_crypto: not hex: %s\n", s);
		exit(KL_PERM);
	}
	return b;
}

static int
print_hex(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	printf("\n");
	return 0;
}

/* Copy hex into a fixed buffer of the pubkey struct. */
static void
param(const char *hex, unsigned char *dst, size_t cap, size_t *len)
{
	unsigned char *b = unhex(hex, len);

	if (*len > cap) {
		fprintf(stderr, "test_crypto: parameter too long\n");
		exit(KL_PERM);
	}
	memcpy(dst, b, *len);
	free(b);
}

static int
pem(const struct kl_crypto_pubkey *k)
{
	char *text;
	size_t len;

	if (kl_crypto_pubkey_pem(k, &text, &len) != 0)
		return 1;
	fwrite(text, 1, len, stdout);
	free(text);
	return 0;
}

static int
file_cmd(const char *cmd, const char *path)
{
	char *buf;
	unsigned char *der;
	size_t len;
	int rc;

	if ((rc = kl_file_read(path, 1u << 20, 0, &buf, &len)) != KL_OK)
		return rc;
	if (strcmp(cmd, "der-len") == 0) {
		printf("%zu\n", kl_crypto_x509_der_len((unsigned char *)buf, len));
		rc = 0;
	} else if ((rc = kl_crypto_x509_pem_to_der(buf, &der, &len) != 0) == 0) {
		fwrite(der, 1, len, stdout);
		free(der);
	}
	free(buf);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *cmd = argc > 1 ? argv[1] : "";
	struct kl_crypto_pubkey k = { 0 };
	unsigned char *a, *b, out[KL_CRYPTO_MAX_DIGEST];
	char hex[97];
	size_t alen, blen;
	int rc = 0;

	kl_log_init("test_crypto");
	if (!strcmp(cmd, "digest") && argc == 4) {
		a = unhex(argv[3], &alen);
		if (kl_crypto_digest(argv[2], a, alen, out) != 0)
			rc = 1;
		else
			print_hex(out, kl_crypto_digest_size(argv[2]));
		free(a);
		return rc;
	}
	if (!strcmp(cmd, "sha256-hex") && argc == 3) {
		a = unhex(argv[2], &alen);
		if ((rc = kl_crypto_sha256_hex(a, alen, hex) != 0) == 0)
			printf("%s\n", hex);
		free(a);
		return rc;
	}
	if (!strcmp(cmd, "hmac-sha384") && argc == 4) {
		a = unhex(argv[2], &alen);
		b = unhex(argv[3], &blen);
		if ((rc = kl_crypto_hmac_sha384_hex(a, alen, b, blen, hex) != 0) == 0)
			printf("%s\n", hex);
		free(a);
		free(b);
		return rc;
	}
	if (!strcmp(cmd, "random") && argc == 3) {
		size_t n = strtoul(argv[2], NULL, 10);

		if ((a = malloc(n ? n : 1)) == NULL || kl_crypto_random(a, n) != 0)
			return 1;
		print_hex(a, n);
		free(a);
		return 0;
	}
	if (!strcmp(cmd, "u64") && argc == 2) {
		uint64_t r;

		if (kl_crypto_random_u64(&r) != 0)
			return 1;
		printf("%" PRIu64 "\n", r);
		return 0;
	}
	if (!strcmp(cmd, "uuid") && argc == 2) {
		char u[37];

		if (kl_crypto_random_uuid(u) != 0)
			return 1;
		printf("%s\n", u);
		return 0;
	}
	if (!strcmp(cmd, "rsa-pem") && argc == 4) {
		k.type = KL_CRYPTO_RSA;
		param(argv[2], k.n, sizeof(k.n), &k.n_len);
		k.e = (uint32_t)strtoul(argv[3], NULL, 10);
		return pem(&k);
	}
	if (!strcmp(cmd, "ec-pem") && argc == 5) {
		k.type = KL_CRYPTO_EC;
		k.curve_bits = (int)strtol(argv[2], NULL, 10);
		param(argv[3], k.x, sizeof(k.x), &k.x_len);
		param(argv[4], k.y, sizeof(k.y), &k.y_len);
		return pem(&k);
	}
	if ((!strcmp(cmd, "der-len") || !strcmp(cmd, "pem-to-der")) && argc == 3)
		return file_cmd(cmd, argv[2]);
	fprintf(stderr, "usage: see tests/unit/test_crypto.c\n");
	return KL_PERM;
}
