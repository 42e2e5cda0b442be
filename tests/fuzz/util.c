/*
 * util: the field decoders every step applies to what it reads
 * (lib/kl_util.c): base64 (nonces, blobs, evidence), hex, RFC 3339 times
 * (expires_at, boot_time, token_expires_at), UUIDs (agent and session ids).
 */
#include "fuzz.h"
#include "kl_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), out[32];
	unsigned char *raw = NULL;
	size_t n;
	time_t t;

	if (kl_b64_decode(s, &raw, &n) == 0)
		free(raw);
	raw = NULL;
	if (kl_hex_decode(s, &raw, &n) == 0)
		free(raw);
	if (kl_time_parse(s, &t) == 0)
		kl_time_format(t, out);
	(void)kl_uuid_valid(s);
	free(s);
	return 0;
}
