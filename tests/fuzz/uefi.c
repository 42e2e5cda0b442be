/* uefi: the UEFI measured-boot event log parser (lib/kl_uefi.c) on any bytes. */
#include "fuzz.h"
#include "kl_uefi.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t n;

	(void)kl_uefi_parse(data, size, "binary_bios_measurements", &n);
	return 0;
}
