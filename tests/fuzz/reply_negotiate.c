/*
 * reply_negotiate: the verifier's 201 to POST /v3.0/agents/<id>/attestations
 * as kl-negotiate reads it (parse_201 and parse_requested in
 * cmd/kl-negotiate/main.c: Location, challenges_expire_at, each
 * evidence_requested item). Input: the Location header on the first line,
 * the body after it. Static functions via main.c.
 */
#include "fuzz.h"

#define main kl_negotiate_main
#include "../../cmd/kl-negotiate/main.c"
#undef main

#define AGENT "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_api api = { .base = "https://127.0.0.1:8881", .prefix = "/v3.0" };
	struct kl_http_resp resp = { .status = 201 };
	json_t *ak = json_pack("{s:s,s:s}", "hash_alg", "sha256", "signing_alg", "rsassa");
	json_t *reply, *ch = NULL;
	const uint8_t *body;
	size_t blen;

	resp.location = fuzz_line(data, size, &body, &blen);
	reply = json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(reply)) {
		json_decref(reply);
		reply = NULL;
	}
	if (resp.location[0] == '\0') {
		free(resp.location);
		resp.location = NULL;
	}
	if (parse_201(&api, &resp, reply, AGENT, ak, 1764460800, "POST", &ch) == KL_OK)
		json_decref(ch);
	free(resp.location);
	json_decref(reply);
	json_decref(ak);
	return 0;
}
