/*
 * doc_session: what kl-session checks of its stdin before the network
 * (cmd/kl-session/main.c: agent.id, agent.ak.public, and whether the
 * "session" member holds a token it may reuse without asking the verifier:
 * kl_token_usable).
 * The program's static functions are reached by including its main.c.
 */
#include "fuzz.h"

#define main kl_session_main
#include "../../cmd/kl-session/main.c"
#undef main

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_prog p = { 0 };
	struct kl_api api = { .base = "https://127.0.0.1:8881", .prefix = "/v3.0" };
	json_t *agent, *ak;
	const char *id, *pub;

	fuzz_stdin(data, size);
	if (kl_json_read_stdin(0, &p.doc) != KL_OK)
		return 0;
	if (kl_json_need_obj(p.doc, "agent", "stdin", &agent) == KL_OK &&
	    kl_json_need_str(agent, "id", "stdin: agent", &id) == KL_OK &&
	    kl_json_need_obj(agent, "ak", "stdin: agent", &ak) == KL_OK &&
	    kl_json_need_str(ak, "public", "stdin: agent.ak", &pub) == KL_OK)
		(void)kl_token_usable(kl_json_obj(p.doc, "session"), api.base, id);
	json_decref(p.doc);
	return 0;
}
