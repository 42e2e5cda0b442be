/*
 * http: Retry-After values, delta-seconds or HTTP-date (lib/kl_http.c,
 * kl_http_parse_retry_after), at a fixed "now" and at the epoch, the dates
 * a peer may send whatever the clock says.
 */
#include "fuzz.h"
#include "kl_http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);
	long a = kl_http_parse_retry_after(s, 1764460800), b = kl_http_parse_retry_after(s, 0);

	if (a < -1 || a > KL_HTTP_RETRY_AFTER_MAX || b < -1 || b > KL_HTTP_RETRY_AFTER_MAX)
		abort();	/* the documented range */
	free(s);
	return 0;
}
