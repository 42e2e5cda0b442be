/*
 * state: the files kl keeps between runs, read back at start and possibly
 * cut short by a power loss: the AK file (lib/kl_akfile.c, strict) and
 * kl-agent's status file (lib/kl_status.c, ignored when corrupt).
 */
#include "fuzz.h"
#include "kl_akfile.h"
#include "kl_status.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_path("agent_data.json");
	struct kl_akfile f;
	struct kl_status st;

	fuzz_write(path, data, size);
	kl_akfile_init(&f);
	(void)kl_akfile_load(&f, path, 0);
	kl_akfile_release(&f);
	(void)kl_status_read(path, &st);
	return 0;
}
