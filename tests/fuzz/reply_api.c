/*
 * reply_api: any verifier answer kl-session, kl-negotiate and kl-submit
 * classify (lib/kl_api.c: kl_api_fail's exit code from the status and the
 * JSON:API errors, kl_http_describe's one-line summary, the Location of an
 * attestation). Input: "<status> <Location>" on the first line, the body
 * after it. kl-submit's own reading of its 202 (meta.seconds_to_next_attestation)
 * is inline in its main.c and done here the same way.
 */
#include "fuzz.h"
#include "kl_api.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kl_api api = { .base = "https://127.0.0.1:8881", .prefix = "/v3.0" };
	struct kl_http_resp resp = { .retry_after = -1 };
	char *line, *loc, desc[512];
	const uint8_t *body;
	size_t blen;
	json_t *reply;

	line = fuzz_line(data, size, &body, &blen);
	resp.status = strtol(line, &loc, 10);
	loc += *loc == ' ';
	resp.location = *loc ? loc : NULL;
	resp.body = fuzz_str(body, blen);
	resp.len = blen;
	reply = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(reply)) {
		json_decref(reply);
		reply = NULL;
	}
	(void)kl_api_fail(&resp, reply, "PATCH");
	kl_http_describe(&resp, desc, sizeof(desc));
	(void)kl_http_status_class(resp.status);
	(void)json_is_integer(json_object_get(kl_json_obj(reply, "meta"), "seconds_to_next_attestation"));
	if (resp.location != NULL) {
		free(kl_api_resolve(&api, resp.location));
		free(kl_api_attestation_url(&api, resp.location, "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"));
	}
	free(resp.body);
	free(line);
	json_decref(reply);
	return 0;
}
