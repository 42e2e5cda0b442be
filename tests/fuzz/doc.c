/*
 * doc: the document on stdin as every step reads it (kl_json_read_stdin:
 * size, JSON object, no duplicate keys, schema), the members kl-register,
 * kl-session and kl-negotiate require before any TPM or network work, and
 * the compact encoding a step writes back.
 */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL, *agent, *ak;
	const char *s;
	long long n;
	char *out;

	fuzz_stdin(data, size);
	if (kl_json_read_stdin(0, &doc) != 0)
		return 0;
	/* kl-session and kl-negotiate (their main.c), kl-negotiate's quote_item. */
	if (kl_json_need_obj(doc, "agent", "stdin", &agent) == 0 &&
	    kl_json_need_str(agent, "id", "stdin: agent", &s) == 0 &&
	    kl_json_need_obj(agent, "ak", "stdin: agent", &ak) == 0 &&
	    kl_json_need_str(ak, "public", "stdin: agent.ak", &s) == 0 &&
	    kl_json_need_str(ak, "key_algorithm", "stdin: agent.ak", &s) == 0 &&
	    kl_json_need_int(ak, "key_size", "stdin: agent.ak", &n) == 0 &&
	    kl_json_need_str(ak, "hash_alg", "stdin: agent.ak", &s) == 0)
		(void)kl_json_need_str(ak, "signing_alg", "stdin: agent.ak", &s);
	(void)kl_json_str(kl_json_obj(doc, "session"), "token");
	if ((out = kl_json_dump(doc, NULL)) != NULL)
		free(out);
	json_decref(doc);
	return 0;
}
