/*
 * ima_ckpt: the IMA checkpoint file (lib/kl_ima.c) on any bytes. The input
 * is the checkpoint; when it is a JSON object its "log" and "boot_time" are
 * set to this run's, so the marks, end and tail are what gets checked
 * against a fixed log of 200 lines. Then the log is counted and read from an
 * offset, as kl-negotiate and kl-quote do.
 */
#include "fuzz.h"
#include "kl_ima.h"

#define BOOT 1764460800
#define LINE "10 0123456789abcdef0123456789abcdef01234567 ima-ng sha256:" \
	"f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f00f /usr/bin/x\n"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *log;
	const char *ckpt = fuzz_path(KL_IMA_CHECKPOINT_NAME);
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	uint64_t n = 0, count;
	char *entries = NULL;
	size_t len;

	if (log == NULL) {
		static char text[200 * sizeof(LINE)];

		log = fuzz_path("ascii_runtime_measurements");
		for (size_t i = 0; i < 200; i++)
			memcpy(text + i * (sizeof(LINE) - 1), LINE, sizeof(LINE) - 1);
		fuzz_write(log, text, 200 * (sizeof(LINE) - 1));
	}
	if (json_is_object(j)) {
		char *s;

		json_object_set_new(j, "log", json_string(log));
		json_object_set_new(j, "boot_time", json_integer(BOOT));
		if ((s = kl_json_dump(j, &len)) == NULL)
			abort();
		fuzz_write(ckpt, s, len);
		free(s);
	} else {
		fuzz_write(ckpt, data, size);
	}
	json_decref(j);
	if (kl_ima_read(log, ckpt, BOOT, size ? data[0] % 201 : 0, 0, &entries, &len, &count) == 0)
		free(entries);
	(void)kl_ima_count(log, ckpt, BOOT, &n);
	return 0;
}
