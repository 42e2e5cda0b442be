/*
 * kl_api.h - talking to the Keylime verifier's push API (v3.0): URLs,
 * JSON:API requests, and what an answer means for a kl exit code.
 * Used by kl-session, kl-negotiate and kl-submit.
 */
#ifndef KL_API_H
#define KL_API_H

#include <jansson.h>

#include "kl_config.h"
#include "kl_http.h"

#define KL_API_CTYPE "application/vnd.api+json"

struct kl_api {
	struct kl_http_opts http;
	char *ca;		/* owned: verifier CA file */
	char *base;		/* owned: verifier URL without trailing '/' */
	const char *prefix;	/* "/v3.0" */
};

/*
 * From the configuration: verifier URL, CA (verifier_tls_ca_cert or
 * --ca-certificate), --insecure / tls_accept_invalid_*, --timeout.
 * TLS is required unless the URL itself says http:// (warned).
 * Returns KL_OK or KL_PERM.
 */
int kl_api_init(struct kl_api *a, const struct kl_config *cfg);
void kl_api_release(struct kl_api *a);

/* base + prefix + path ("/agents/<id>/attestations"), new string. */
char *kl_api_url(const struct kl_api *a, const char *path);

/*
 * Resolve a Location header (absolute path or absolute URL on the same
 * verifier) against the base. Returns a new string, or NULL when the
 * location is unusable (another host, not a path, control characters).
 */
char *kl_api_resolve(const struct kl_api *a, const char *location);

/*
 * The attestation URL of a Location header or of a saved document: it must
 * resolve (kl_api_resolve) to <base><prefix>/agents/<agent_id>/attestations/<n>,
 * with <n> one path segment of letters, digits, '_' or '-' (an index or
 * "latest"), so evidence never goes to another agent's or host's URL.
 * Returns a new string, or NULL.
 */
char *kl_api_attestation_url(const struct kl_api *a, const char *location, const char *agent_id);

/*
 * Send body (may be NULL) as JSON:API and read the reply. *reply is the
 * parsed JSON object when the body is a JSON object, else NULL (an empty
 * body, or not JSON: the caller decides whether that is a violation).
 * A reply may be as long as KL_HTTP_MAX_RESPONSE, or three times the body
 * plus 1 MiB when that is more: the 202 to an evidence PATCH echoes the
 * evidence (docs/protocol.md §6.7), JSON-escaped.
 * Returns KL_OK when an HTTP answer arrived, else the transport's code.
 */
int kl_api_call(const struct kl_api *a, const char *method, const char *url,
    const char *bearer, const json_t *body, struct kl_http_resp *resp, json_t **reply);

/*
 * The exit code an unexpected answer means (docs/contract.md), after one
 * error line "<what>: HTTP 422 invalid_resource_data: <detail>":
 *   401                                    -> KL_REAUTH
 *   403 with an auth-layer error ("title") -> KL_REAUTH (token dropped/foreign)
 *   403 old_attestation / challenges_expired / evidence_immutable -> KL_RENEGOTIATE
 *   408, 429, 5xx                          -> KL_TEMP
 *   400, 415                               -> KL_PERM (kl sent something wrong)
 *   other 4xx                              -> KL_REFUSED
 *   anything else (1xx, 3xx, 2xx not expected) -> KL_PERM
 */
int kl_api_fail(const struct kl_http_resp *resp, const json_t *reply, const char *what);

/* The same, with "; <hint>" at the end of the line when hint is not NULL. */
int kl_api_fail_hint(const struct kl_http_resp *resp, const json_t *reply, const char *what,
    const char *hint);

/* JSON:API errors[0].code (or NULL). */
const char *kl_api_error_code(const json_t *reply);

#endif
