/*
 * ima: the IMA ASCII log reader (lib/kl_ima.c) on any bytes, with its
 * checkpoint: the first half of the input is the log when kl-negotiate
 * counts it, the whole input the log when kl-quote reads it from an offset
 * (the incremental path over the checkpoint), then again with no checkpoint.
 * The first byte picks the offset. Lines need not be UTF-8 here: the reader
 * returns bytes; kl-quote's JSON encoding is what refuses non-UTF-8.
 */
#include "fuzz.h"
#include "kl_ima.h"

#define BOOT 1764460800

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *log = fuzz_path("ascii_runtime_measurements");
	const char *ckpt = fuzz_path(KL_IMA_CHECKPOINT_NAME);
	uint64_t n = 0, count;
	char *entries = NULL;
	size_t len;

	unlink(ckpt);
	fuzz_write(log, data, size / 2);
	if (kl_ima_count(log, ckpt, BOOT, &n) != 0)
		return 0;
	fuzz_write(log, data, size);
	if (kl_ima_read(log, ckpt, BOOT, size ? data[0] % (n + 2) : 0, 0, &entries, &len, &count) == 0)
		free(entries);
	entries = NULL;
	if (kl_ima_read(log, NULL, BOOT, n / 2, size ? data[size - 1] % 4 : 0,
	    &entries, &len, &count) == 0)
		free(entries);
	return 0;
}
