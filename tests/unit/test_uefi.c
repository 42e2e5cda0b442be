/*
 * test_uefi - drive lib/kl_uefi from tests/bats/uefi.bats.
 *
 *	test_uefi read PATH MAX [OUT]
 *		stdout: {"events":N,"len":L}; the bytes read go to OUT if given.
 *	test_uefi prefixes PATH
 *		parse every prefix of the log (lengths 0 to all of it);
 *	test_uefi flips PATH
 *		parse the log with each byte in turn inverted;
 *		both: stdout {"accepted":A,"rejected":R}, a line on stderr per
 *		rejection. Run under ASan or valgrind, they show that no input
 *		makes the parser read out of bounds.
 *
 * MAX 0 means the default cap. Exits with kl_uefi_read's code.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_log.h"
#include "kl_rc.h"
#include "kl_uefi.h"
#include "kl_banned.h"

/* Parse variants of the log in buf; flip: invert byte i, else cut at i. */
static int
variants(const char *path, unsigned char *buf, size_t len, int flip)
{
	unsigned long accepted = 0, rejected = 0;
	uint64_t events;

	for (size_t i = 0; i <= len; i++) {
		unsigned char *copy;
		size_t n = flip ? len : i;
		int rc;

		if (flip && i == len)
			break;
		/* An exact-size copy, so that ASan sees a read past its end. */
		if ((copy = malloc(n ? n : 1)) == NULL)
			return kl_fail(KL_TEMP, "out of memory");
		memcpy(copy, buf, n);
		if (flip)
			copy[i] ^= 0xff;
		rc = kl_uefi_parse(copy, n, path, &events);
		free(copy);
		if (rc == KL_OK)
			accepted++;
		else if (rc == KL_PERM)
			rejected++;
		else
			return kl_fail(KL_TEMP, "kl_uefi_parse returned %d", rc);
	}
	printf("{\"accepted\":%lu,\"rejected\":%lu}\n", accepted, rejected);
	return KL_OK;
}

int
main(int argc, char *argv[])
{
	unsigned char *buf;
	uint64_t events;
	size_t len;
	char *end;
	unsigned long long max = 0;
	FILE *f;
	int rc;

	kl_log_init("test_uefi");
	if (argc == 3 && (strcmp(argv[1], "prefixes") == 0 || strcmp(argv[1], "flips") == 0)) {
		/* Read it raw: the log itself must be valid to be loaded. */
		if ((rc = kl_uefi_read(argv[2], 0, &buf, &len, &events)) != KL_OK)
			return rc;
		rc = variants(argv[2], buf, len, argv[1][0] == 'f');
		free(buf);
		return rc;
	}
	if ((argc != 4 && argc != 5) || strcmp(argv[1], "read") != 0 ||
	    (max = strtoull(argv[3], &end, 10), *end != '\0'))
		return kl_fail(KL_PERM, "usage: test_uefi read PATH MAX [OUT] | prefixes PATH | flips PATH");
	if ((rc = kl_uefi_read(argv[2], (size_t)max, &buf, &len, &events)) != KL_OK)
		return rc;
	printf("{\"events\":%" PRIu64 ",\"len\":%zu}\n", events, len);
	if (argc == 5 && ((f = fopen(argv[4], "wb")) == NULL ||
	    fwrite(buf, 1, len, f) != len || fclose(f) != 0))
		rc = kl_fail(KL_TEMP, "%s: cannot write", argv[4]);
	free(buf);
	return rc;
}
