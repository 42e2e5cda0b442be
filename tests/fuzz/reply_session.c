/*
 * reply_session: the verifier's answer to POST /v3.0/sessions as kl-session
 * reads it (kl_api_call keeps a JSON object, parse_challenge in
 * cmd/kl-session/main.c takes data.id and the tpm_pop challenge), and the
 * token fields of the PATCH answer. Static functions via main.c.
 */
#include "fuzz.h"

#define main kl_session_main
#include "../../cmd/kl-session/main.c"
#undef main

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *reply = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	const char *sid, *exp;
	unsigned char *nonce = NULL;
	size_t nlen = 0;
	time_t t;

	if (!json_is_object(reply)) {
		json_decref(reply);
		return 0;
	}
	if (parse_challenge(reply, "POST /v3.0/sessions", &sid, &nonce, &nlen) == KL_OK)
		free(nonce);
	/* The PATCH answer's expiry, as session() checks it. */
	exp = kl_json_str(kl_json_obj(kl_json_obj(reply, "data"), "attributes"), "token_expires_at");
	if (exp != NULL)
		(void)kl_time_parse(exp, &t);
	json_decref(reply);
	return 0;
}
