/*
 * reply_registrar: the registrar's answers as kl-register reads them
 * (cmd/kl-register/registrar.c): reg_call's kl_json_parse of a 200,
 * GET /version's results.supported_versions and current_version, POST's
 * results.blob (base64), reg_fail_status on any other status, and --check's
 * results record. The lookups after kl_http_do are inline in
 * reg_choose_version and post(); this target does them the same way and
 * calls registrar.c's own reg_fail_status. Input: "<status>" on the first
 * line, the body after it.
 */
#include "fuzz.h"

#include "../../cmd/kl-register/registrar.c"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reg r = { .retry_after = -1 };
	struct kl_http_resp resp = { .retry_after = -1 };
	json_t *reply = NULL, *res, *v;
	const char *theirs[REG_MAX_VERSIONS];
	char joined[200], shown[200];
	const uint8_t *body;
	unsigned char *blob = NULL;
	size_t blen, i, n = 0;
	char *line;

	line = fuzz_line(data, size, &body, &blen);
	resp.status = strtol(line, NULL, 10);
	resp.body = fuzz_str(body, blen);
	resp.len = blen;
	if (resp.status != 200) {
		(void)reg_fail_status(&r, &resp, "POST");
	} else if (kl_json_parse(resp.body, resp.len, "GET: reply", &reply) == KL_OK) {
		res = kl_json_obj(reply, "results");
		(void)kl_json_str(res, "current_version");
		json_array_foreach(json_object_get(res, "supported_versions"), i, v)
			if (json_is_string(v) && n < REG_MAX_VERSIONS)
				theirs[n++] = json_string_value(v);
		join(theirs, n, joined, sizeof(joined));
		kl_log_sanitize(shown, sizeof(shown), joined, strlen(joined));
		if (kl_json_str(res, "blob") != NULL &&
		    kl_b64_decode(kl_json_str(res, "blob"), &blob, &blen) == 0)
			free(blob);
		(void)kl_json_str(res, "ek_tpm");
		(void)kl_json_str(res, "aik_tpm");
		(void)kl_json_str(res, "ekcert");
		json_decref(reply);
	}
	free(resp.body);
	free(line);
	return 0;
}
