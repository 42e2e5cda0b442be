/*
 * kl_crypto_rand.c - random bytes for kl_crypto.h, from getrandom(2).
 *
 * Why getrandom and not OpenSSL's RAND_bytes: it is the kernel's CSPRNG with
 * no library state to seed or to share across fork(), it blocks only until
 * the kernel pool is initialised at boot, and it needs no library, so
 * kl-agent (which wants random numbers for its backoff jitter only) does not
 * link libcrypto at all. RAND_bytes draws from the same kernel source anyway.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "kl_crypto.h"
#include "kl_log.h"
#include "kl_banned.h"

int
kl_crypto_random(void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom((char *)buf + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			kl_err("getrandom: %s", strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

int
kl_crypto_random_u64(uint64_t *out)
{
	return kl_crypto_random(out, sizeof(*out));
}

int
kl_crypto_random_uuid(char out[37])
{
	unsigned char r[16];

	if (kl_crypto_random(r, sizeof(r)) != 0)
		return -1;
	r[6] = (r[6] & 0x0f) | 0x40;	/* version 4 */
	r[8] = (r[8] & 0x3f) | 0x80;	/* variant RFC 4122 */
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
	    r[11], r[12], r[13], r[14], r[15]);
	return 0;
}
