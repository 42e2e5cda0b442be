/*
 * doc_quote: what kl-quote checks of its stdin before it opens the TPM
 * (cmd/kl-quote/main.c: agent, challenge.requested and the members it
 * names, expires_at and boot_time, the PCR list, the nonce's base64, the IMA
 * starting_offset). The static functions are reached by including main.c.
 */
#include "fuzz.h"

#define main kl_quote_main
#include "../../cmd/kl-quote/main.c"
#undef main

/* The part of quote() and tpm_quote() before kl_tpm_open. */
static void
check(const json_t *doc, time_t boot)
{
	json_t *agent, *ch, *req, *v, *q;
	const char *nonce_b64, *hash, *sign;
	unsigned char *nonce = NULL;
	int pcrs[24];
	size_t i, n, nlen;
	long long off;

	if (kl_json_need_obj(doc, "agent", "stdin", &agent) != KL_OK ||
	    kl_json_need_obj(doc, "challenge", "stdin", &ch) != KL_OK)
		return;
	req = json_object_get(ch, "requested");
	if (!json_is_array(req) || json_array_size(req) == 0 || check_fresh(ch, boot) != KL_OK)
		return;
	json_array_foreach(req, i, v) {
		const char *k = json_string_value(v);

		if (k == NULL || (strcmp(k, "tpm_quote") && strcmp(k, "uefi_log") &&
		    strcmp(k, "ima_log")) || json_object_get(ch, k) == NULL)
			return;
	}
	q = kl_json_obj(ch, "tpm_quote");
	if (kl_json_need_str(q, "challenge", "stdin: challenge.tpm_quote", &nonce_b64) != KL_OK ||
	    kl_json_need_str(q, "hash_algorithm", "stdin: challenge.tpm_quote", &hash) != KL_OK ||
	    kl_json_need_str(q, "signature_scheme", "stdin: challenge.tpm_quote", &sign) != KL_OK ||
	    pcr_list(q, pcrs, &n) != KL_OK)
		return;
	if (kl_b64_decode(nonce_b64, &nonce, &nlen) == 0)
		free(nonce);
	(void)kl_json_need_int(kl_json_obj(ch, "ima_log"), "starting_offset",
	    "stdin: challenge.ima_log", &off);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL;
	time_t boot = 1764460800;	/* 2025-11-30T00:00:00Z: seeds use it as boot_time */

	fuzz_stdin(data, size);
	if (kl_json_read_stdin(0, &doc) != KL_OK)
		return 0;
	check(doc, boot);
	json_decref(doc);
	return 0;
}
