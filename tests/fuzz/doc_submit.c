/*
 * doc_submit: what kl-submit checks of its stdin before the network
 * (cmd/kl-submit/main.c: the evidence answers the challenge item for item,
 * session.token, expiry, and challenge.attestation_url is an attestation of
 * this agent on the configured verifier). Static functions via main.c.
 */
#include "fuzz.h"

#define main kl_submit_main
#include "../../cmd/kl-submit/main.c"
#undef main

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_api api = { .base = "https://127.0.0.1:8881", .prefix = "/v3.0" };
	json_t *doc = NULL, *agent, *ch, *ev;
	const char *id, *loc;

	fuzz_stdin(data, size);
	if (kl_json_read_stdin(0, &doc) != KL_OK)
		return 0;
	if (kl_json_need_obj(doc, "agent", "stdin", &agent) == KL_OK &&
	    kl_json_need_str(agent, "id", "stdin: agent", &id) == KL_OK &&
	    kl_json_need_obj(doc, "challenge", "stdin", &ch) == KL_OK &&
	    kl_json_need_obj(doc, "evidence", "stdin", &ev) == KL_OK &&
	    check_evidence(ch, ev) == KL_OK &&
	    kl_json_str(kl_json_obj(doc, "session"), "token") != NULL &&
	    !expired(ch) && (loc = kl_json_str(ch, "attestation_url")) != NULL)
		free(kl_api_attestation_url(&api, loc, id));
	json_decref(doc);
	return 0;
}
