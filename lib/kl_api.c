/* kl_api.c - see kl_api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_api.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

int
kl_api_init(struct kl_api *a, const struct kl_config *cfg)
{
	size_t n;

	memset(a, 0, sizeof(*a));
	if (strncmp(cfg->verifier_url, "https://", 8) != 0 &&
	    strncmp(cfg->verifier_url, "http://", 7) != 0)
		return kl_fail(KL_PERM, "verifier_url %s: must start with https://", cfg->verifier_url);
	if ((a->base = strdup(cfg->verifier_url)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	n = strlen(a->base);
	while (n > 0 && a->base[n - 1] == '/')
		a->base[--n] = '\0';
	a->prefix = kl_config_api_prefix(cfg);
	kl_http_tls_relax(&a->http, a->base, cfg->insecure, cfg->tls_accept_invalid_certs,
	    cfg->tls_accept_invalid_hostnames);
	a->http.require_tls = strncmp(a->base, "http://", 7) != 0;
	a->http.timeout_ms = cfg->timeout_ms;
	a->http.no_env_proxy = !cfg->proxy_from_env;
	a->http.connect_timeout_ms = cfg->timeout_ms;
	/*
	 * Fail closed: plain HTTP would hand the bearer token and the evidence to
	 * anyone on the path. The Keylime verifier only speaks HTTPS; a test
	 * server without TLS takes --insecure, which says so at every start.
	 */
	if (!a->http.require_tls && !cfg->insecure)
		return kl_fail(KL_PERM, "verifier_url %s is plain HTTP: refused, the bearer token "
		    "and the evidence would travel unencrypted (use https://, or --insecure "
		    "for a test verifier without TLS)", a->base);
	if (!a->http.require_tls)
		kl_warn("verifier_url %s is plain HTTP: the bearer token and the evidence "
		    "travel unencrypted (--insecure)", a->base);
	if (a->http.require_tls) {
		if ((a->ca = kl_config_verifier_ca(cfg)) == NULL)
			return kl_fail(KL_TEMP, "out of memory");
		a->http.ca_file = a->ca;
	}
	return KL_OK;
}

void
kl_api_release(struct kl_api *a)
{
	free(a->ca);
	free(a->base);
	memset(a, 0, sizeof(*a));
}

char *
kl_api_url(const struct kl_api *a, const char *path)
{
	char *u;

	if (asprintf(&u, "%s%s%s", a->base, a->prefix, path) < 0)
		return NULL;
	return u;
}

char *
kl_api_resolve(const struct kl_api *a, const char *loc)
{
	char *u;

	for (const char *p = loc; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return NULL;
	if (strncmp(loc, a->base, strlen(a->base)) == 0 && loc[strlen(a->base)] == '/')
		return strdup(loc);
	if (loc[0] != '/' || loc[1] == '/')
		return NULL;
	if (asprintf(&u, "%s%s", a->base, loc) < 0)
		return NULL;
	return u;
}

char *
kl_api_attestation_url(const struct kl_api *a, const char *loc, const char *agent_id)
{
	char *u = kl_api_resolve(a, loc), *want = NULL;
	const char *n;
	size_t wlen;

	if (u == NULL || asprintf(&want, "%s%s/agents/%s/attestations/", a->base, a->prefix,
	    agent_id) < 0) {
		free(u);
		return NULL;
	}
	wlen = strlen(want);
	n = u + (strncmp(u, want, wlen) == 0 ? wlen : 0);
	free(want);
	if (n == u || *n == '\0' || strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789_-") != strlen(n)) {
		free(u);
		return NULL;
	}
	return u;
}

int
kl_api_call(const struct kl_api *a, const char *method, const char *url,
    const char *bearer, const json_t *body, struct kl_http_resp *resp, json_t **reply)
{
	struct kl_http_req rq = { 0 };
	struct kl_http_opts opts;
	char *text = NULL;
	int rc;

	*reply = NULL;
	if (body != NULL && (text = kl_json_dump(body, NULL)) == NULL)
		return kl_fail(KL_TEMP, "%s %s: cannot encode the request", method, url);
	rq.method = method;
	rq.url = url;
	rq.content_type = KL_API_CTYPE;
	rq.bearer = bearer;
	rq.body = text;
	rq.body_len = text ? strlen(text) : 0;
	opts = a->http;
	if (rq.body_len > (KL_HTTP_MAX_RESPONSE - (1u << 20)) / 3)
		opts.max_response = 3 * rq.body_len + (1u << 20);
	rc = kl_http_do(&opts, &rq, resp);
	if (text != NULL)
		explicit_bzero(text, rq.body_len);
	free(text);
	if (rc != KL_OK)
		return rc;
	if (resp->len > 0) {
		json_error_t e;
		json_t *j = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, &e);

		if (json_is_object(j))
			*reply = j;
		else
			json_decref(j);
	}
	return KL_OK;
}

const char *
kl_api_error_code(const json_t *reply)
{
	json_t *e = json_array_get(json_object_get(reply, "errors"), 0);

	return kl_json_str(e, "code");
}

/* Authentication-layer errors have a "title" and no "code" (docs/protocol.md §3.3). */
static int
is_auth_error(const json_t *reply)
{
	json_t *e = json_array_get(json_object_get(reply, "errors"), 0);

	return json_is_object(e) && json_object_get(e, "title") && !json_object_get(e, "code");
}

/* The class of an unexpected answer (table in kl_api.h). */
static int
status_rc(const struct kl_http_resp *resp, const json_t *reply)
{
	const char *code = kl_api_error_code(reply);
	long s = resp->status;

	if (s == 401 || (s == 403 && is_auth_error(reply)))
		return KL_REAUTH;
	if (s == 403 && code && (!strcmp(code, "old_attestation") ||
	    !strcmp(code, "challenges_expired") || !strcmp(code, "evidence_immutable")))
		return KL_RENEGOTIATE;
	if (s == 408 || s == 429 || (s >= 500 && s <= 599))
		return KL_TEMP;
	if (s == 400 || s == 415)
		return KL_PERM;
	if (s >= 400 && s <= 499)
		return KL_REFUSED;
	return KL_PERM;
}

int
kl_api_fail_hint(const struct kl_http_resp *resp, const json_t *reply, const char *what,
    const char *hint)
{
	char desc[512];

	kl_http_describe(resp, desc, sizeof(desc));
	kl_err("%s: %s%s%s", what, desc, hint ? "; " : "", hint ? hint : "");
	return status_rc(resp, reply);
}

int
kl_api_fail(const struct kl_http_resp *resp, const json_t *reply, const char *what)
{
	return kl_api_fail_hint(resp, reply, what, NULL);
}
