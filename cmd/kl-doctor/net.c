/*
 * net.c - the checks that talk to the peers, read-only: the verifier's CA
 * file, its certificate and name (one TLS handshake, GET /version), whether
 * it is a push-mode verifier (410 on /version), the clock against its Date,
 * the registrar and its API versions, and, with a token, the agent's own
 * record at the verifier (attestation status, liveness window). Nothing is
 * registered, no session is made.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doctor.h"
#include "kl_api.h"
#include "kl_crypto.h"
#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

#define SKEW_WARN 10	/* seconds of clock difference that deserve a warning */
#define SKEW_FAIL 60	/* ... and that break token and challenge expiry */

/* One GET, its log lines captured into *why (new string). */
static int
get(const struct kl_http_opts *o, const char *url, const char *bearer,
    struct kl_http_resp *resp, char **why)
{
	struct kl_http_req rq = { .method = "GET", .url = url, .bearer = bearer };
	struct dr_capture cap;
	int rc;

	dr_capture_begin(&cap, 0);
	rc = kl_http_do(o, &rq, resp);
	*why = dr_oneline(dr_capture_end(&cap));
	return rc;
}

/* The CA file: PEM certificates, none expired. 0 when usable. */
static int
check_ca(struct doctor *d, const char *path)
{
	char subject[256];
	int n, expired;

	if (kl_crypto_ca_file(path, &n, &expired, subject, sizeof(subject)) != 0) {
		dr_add(d, "ca", DR_FAIL, "set verifier_tls_ca_cert (or --ca-certificate) to the "
		    "CA that signed the verifier's certificate (Keylime: cv_ca/cacert.crt)",
		    "%s: cannot be read", path);
		return -1;
	}
	if (n == 0) {
		dr_add(d, "ca", DR_FAIL, "the file must hold PEM certificates (BEGIN CERTIFICATE)",
		    "%s: no PEM certificate in it", path);
		return -1;
	}
	if (expired) {
		dr_add(d, "ca", DR_FAIL, "renew the CA", "%s: %d of %d certificates expired", path,
		    expired, n);
		return -1;
	}
	dr_add(d, "ca", DR_OK, NULL, "%s: %d certificate%s (%s)", path, n, n > 1 ? "s" : "",
	    subject);
	return 0;
}

/* A failed GET to the verifier: TLS, or no connection. */
static void
verifier_unreachable(struct doctor *d, int rc, const char *url, const char *why)
{
	if (rc == KL_PERM && strstr(why, "TLS") != NULL) {
		int name = strstr(why, "subject name") != NULL || strstr(why, "hostname") != NULL ||
		    strstr(why, "host name") != NULL || strstr(why, "does not match") != NULL;

		dr_add(d, "verifier-tls", DR_FAIL, name ?
		    "the certificate does not name the host of verifier_url: use a name it "
		    "holds (its subjectAltName), or reissue it" :
		    "the certificate does not chain to the CA file: set verifier_tls_ca_cert to "
		    "the CA that signed it", "%s", why);
		return;
	}
	dr_add(d, "verifier", DR_FAIL, "is the verifier running, and is the port open from "
	    "here (firewall, verifier_url)? Keylime's default is 8881", "%s: %s", url,
	    *why ? why : "no answer");
}

static void
check_clock(struct doctor *d, time_t date, time_t before, time_t after)
{
	/* The Date was made between before and after: the skew is outside that interval. */
	double skew = date < before ? (double)(date - before) :
	    date > after ? (double)(date - after) : 0;
	double a = fabs(skew);

	if (date == 0)
		dr_add(d, "clock", DR_WARN, NULL, "the verifier sent no Date: clock not compared");
	else if (a > SKEW_FAIL)
		dr_add(d, "clock", DR_FAIL, "synchronize the clock (chronyd, systemd-timesyncd): "
		    "tokens, challenges and certificates expire by the verifier's clock",
		    "%+.0f s from the verifier's Date", skew);
	else if (a > SKEW_WARN)
		dr_add(d, "clock", DR_WARN, "synchronize the clock (chronyd, systemd-timesyncd)",
		    "%+.0f s from the verifier's Date", skew);
	else
		dr_add(d, "clock", DR_OK, NULL, "within %d s of the verifier's Date", SKEW_WARN);
}

void
dr_verifier(struct doctor *d)
{
	struct kl_http_resp resp = { 0 };
	struct dr_capture cap;
	struct kl_api api;
	char *url = NULL, *why = NULL;
	time_t before, after;
	int rc;

	dr_capture_begin(&cap, 0);
	rc = kl_api_init(&api, &d->cfg);
	why = dr_oneline(dr_capture_end(&cap));
	if (rc != KL_OK) {
		dr_add(d, "verifier", DR_FAIL, NULL, "%s", why ? why : "verifier_url");
		goto out;
	}
	if (!api.http.require_tls)
		dr_add(d, "ca", DR_WARN, "use https://: the Keylime verifier speaks only HTTPS",
		    "verifier_url is plain HTTP: no certificate to check");
	else if (api.http.insecure)
		dr_add(d, "ca", DR_WARN, "drop --insecure / tls_accept_invalid_*",
		    "TLS verification is off: the certificate is not checked");
	else if (check_ca(d, api.ca) != 0)
		goto out;
	free(why);
	if (asprintf(&url, "%s/version", api.base) < 0) {
		url = NULL;
		why = NULL;
		goto out;
	}
	before = time(NULL);
	rc = get(&api.http, url, NULL, &resp, &why);
	after = time(NULL);
	if (rc != KL_OK) {
		verifier_unreachable(d, rc, url, why ? why : "");
		goto out;
	}
	if (api.http.require_tls && !api.http.insecure)
		dr_add(d, "verifier-tls", DR_OK, NULL, "%s: certificate chains to the CA and names "
		    "the host", api.base);
	if (resp.status == 410)
		dr_add(d, "verifier", DR_OK, NULL, "GET /version: 410: a push-mode verifier");
	else if (resp.status == 200)
		dr_add(d, "verifier", DR_FAIL, "set mode = push in the verifier's verifier.conf: "
		    "a pull-mode verifier never asks for evidence (stuck in Negotiating)",
		    "GET /version: 200: a pull-mode verifier");
	else
		dr_add(d, "verifier", DR_WARN, "is verifier_url the Keylime verifier (not the "
		    "registrar or a proxy)?", "GET /version: HTTP %ld, not the 410 of a push-mode "
		    "verifier", resp.status);
	check_clock(d, resp.date, before, after);
out:
	free(why);
	free(url);
	kl_http_resp_release(&resp);
	kl_api_release(&api);
}

/* The registrar's versions against registrar_api_versions ("default" = 2.1-2.6). */
static int
enabled(const struct kl_config *c, const char *v)
{
	const char *list = c->registrar_api_versions;
	size_t n = strlen(v);

	if (strcmp(list, "latest") == 0)
		return 1;
	if (strcmp(list, "default") == 0)
		return strncmp(v, "2.", 2) == 0 && v[2] >= '1' && v[2] <= '6' && v[3] == '\0';
	for (const char *p = strstr(list, v); p; p = strstr(p + 1, v))
		if ((p == list || p[-1] == ',' || p[-1] == ' ' || p[-1] == '"') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '"'))
			return 1;
	return 0;
}

/* The agent's record at the registrar (GET /v<ver>/agents/<id>) against the AK file. */
static void
check_registration(struct doctor *d, const struct kl_http_opts *o, const char *base,
    const char *ver)
{
	struct kl_http_resp resp = { 0 };
	char *url = NULL, *why = NULL;
	json_t *reply = NULL;
	const char *aik;

	if (d->agent_id[0] == '\0' || asprintf(&url, "%s/v%s/agents/%s", base, ver,
	    d->agent_id) < 0) {
		dr_add(d, "registration", DR_SKIP, NULL, "agent id unknown: record not read");
		return;
	}
	if (get(o, url, NULL, &resp, &why) != KL_OK)
		dr_add(d, "registration", DR_FAIL, NULL, "%s", why ? why : url);
	else if (resp.status == 404)
		dr_add(d, "registration", DR_WARN, "kl-register (or kl-agent) registers it; then "
		    "enroll it at the verifier", "agent %s is not registered", d->agent_id);
	else if (resp.status != 200 || kl_json_parse(resp.body, resp.len, url, &reply) != KL_OK)
		dr_add(d, "registration", DR_SKIP, "keylime_tenant -c regstatus shows it",
		    "GET %s: HTTP %ld: the registrar does not show the record", url, resp.status);
	else if ((aik = kl_json_str(kl_json_obj(reply, "results"), "aik_tpm")) == NULL ||
	    d->ak_public == NULL)
		dr_add(d, "registration", DR_OK, NULL, "agent %s is registered", d->agent_id);
	else if (strcmp(aik, d->ak_public) != 0)
		dr_add(d, "registration", DR_FAIL, "PoP fails with this AK: delete the agent at the "
		    "registrar and the verifier (keylime_tenant -c regdelete/delete) and register "
		    "and enroll again, or restore the AK file", "the registrar holds another AK "
		    "for agent %s than the AK file", d->agent_id);
	else
		dr_add(d, "registration", DR_OK, NULL, "agent %s is registered with this AK",
		    d->agent_id);
	json_decref(reply);
	kl_http_resp_release(&resp);
	free(why);
	free(url);
}

void
dr_registrar(struct doctor *d)
{
	struct kl_http_opts o = { .timeout_ms = d->cfg.timeout_ms,
	    .connect_timeout_ms = d->cfg.timeout_ms };
	struct kl_http_resp resp = { 0 };
	char *base = kl_config_registrar_url(&d->cfg), *ca = NULL, *url = NULL, *why = NULL;
	json_t *reply = NULL, *res, *v;
	char theirs[256] = "", ver[16] = "";
	const char *cur;
	size_t i, o2 = 0;
	int rc, common = 0;

	if (base == NULL || asprintf(&url, "%s/version", base) < 0)
		goto out;
	if (strncmp(base, "https://", 8) == 0) {
		o.require_tls = 1;
		o.ca_file = ca = kl_config_registrar_ca(&d->cfg);
		o.insecure = d->cfg.insecure;
	}
	rc = get(&o, url, NULL, &resp, &why);
	if (rc != KL_OK) {
		dr_add(d, "registrar", DR_FAIL, "is the registrar running and reachable "
		    "(registrar_ip, registrar_port 8890, or registrar_tls_port 8891 with TLS)?",
		    "%s: %s", url, why ? why : "no answer");
		goto out;
	}
	if (resp.status != 200 || kl_json_parse(resp.body, resp.len, url, &reply) != KL_OK) {
		dr_add(d, "registrar", DR_WARN, "kl-register then tries its versions newest first",
		    "%s: HTTP %ld, no version list", url, resp.status);
		goto out;
	}
	res = kl_json_obj(reply, "results");
	cur = kl_json_str(res, "current_version");
	json_array_foreach(json_object_get(res, "supported_versions"), i, v) {
		const char *s = json_string_value(v);
		int k;

		if (s == NULL)
			continue;
		if (enabled(&d->cfg, s) && strlen(s) < sizeof(ver)) {
			common = 1;
			snprintf(ver, sizeof(ver), "%s", s);	/* the newest in common */
		}
		k = snprintf(theirs + o2, sizeof(theirs) - o2, "%s%.16s", o2 ? ", " : "", s);
		if (k > 0 && (size_t)k < sizeof(theirs) - o2)
			o2 += (size_t)k;
	}
	if (!common)
		dr_add(d, "registrar", DR_FAIL, "set registrar_api_versions to one the registrar "
		    "supports", "%s: API %s; registrar_api_versions (%s) enables none of them",
		    base, theirs, d->cfg.registrar_api_versions);
	else
		dr_add(d, "registrar", DR_OK, NULL, "%s answers: API %s (current %s)", base, theirs,
		    cur ? cur : "not given");
	if (common) {
		if (cur != NULL && enabled(&d->cfg, cur) && strlen(cur) < sizeof(ver))
			snprintf(ver, sizeof(ver), "%s", cur);
		check_registration(d, &o, base, ver);
	}
out:
	json_decref(reply);
	kl_http_resp_release(&resp);
	free(why);
	free(url);
	free(ca);
	free(base);
}

/* "10s" or 10 -> seconds, -1 when neither. */
static double
seconds_of(const json_t *v)
{
	char *end;
	double s;

	if (json_is_number(v))
		return json_number_value(v);
	if (!json_is_string(v))
		return -1;
	s = strtod(json_string_value(v), &end);
	return end != json_string_value(v) && (*end == '\0' || strcmp(end, "s") == 0) ? s : -1;
}

/* The agent's own record (GET /v2.x/agents/{id} with its token). */
static void
judge_record(struct doctor *d, const json_t *r)
{
	const char *status = kl_json_str(r, "attestation_status");
	double max = seconds_of(json_object_get(r, "maximum_attestation_interval"));
	json_t *hashes = json_object_get(r, "accept_tpm_hash_algs");
	json_t *sigs = json_object_get(r, "accept_tpm_signing_algs");
	int hash_ok = 1, sig_ok = 1;
	size_t i;
	json_t *v;

	if (d->ak_hash[0] && json_array_size(hashes) > 0) {
		hash_ok = 0;
		json_array_foreach(hashes, i, v)
			hash_ok |= json_is_string(v) && strcmp(json_string_value(v), d->ak_hash) == 0;
	}
	if (d->ak_sign[0] && json_array_size(sigs) > 0) {
		sig_ok = 0;
		json_array_foreach(sigs, i, v)
			sig_ok |= json_is_string(v) && strcmp(json_string_value(v), d->ak_sign) == 0;
	}
	if (!hash_ok || !sig_ok)
		dr_add(d, "liveness", DR_FAIL, "enroll the agent accepting the AK's algorithms, or "
		    "set tpm_hash_alg/tpm_signing_alg and register again (PoP and quotes fail)",
		    "the verifier does not accept the AK's %s/%s", d->ak_hash, d->ak_sign);
	else if (status && strcmp(status, "FAIL") == 0)
		dr_add(d, "liveness", DR_FAIL, "the verifier rejected the evidence: see its log "
		    "for the policy that failed", "attestation_status FAIL");
	else if (max > 0 && d->cfg.attestation_interval_seconds > max)
		dr_add(d, "liveness", DR_WARN, "lower attestation_interval_seconds: when the verifier "
		    "gives no seconds_to_next_attestation the agent times out between cycles",
		    "attestation_interval_seconds %ld exceeds the verifier's liveness window "
		    "(maximum_attestation_interval %.0f s); attestation_status %s",
		    d->cfg.attestation_interval_seconds, max, status ? status : "not given");
	else if (status && strcmp(status, "TIMEOUT") == 0)
		dr_add(d, "liveness", DR_WARN, "is kl-agent running? Its status file and metrics say "
		    "when it last attested", "attestation_status TIMEOUT: no evidence within "
		    "%.0f s", max);
	else
		dr_add(d, "liveness", DR_OK, NULL, "attestation_status %s; window %.0f s, "
		    "attestation_interval_seconds %ld", status ? status : "not given", max,
		    d->cfg.attestation_interval_seconds);
}

void
dr_liveness(struct doctor *d)
{
	struct kl_http_resp resp = { 0 };
	struct dr_capture cap;
	struct kl_api api;
	json_t *reply = NULL, *res;
	char *url = NULL, *why = NULL;
	int rc;

	if (d->token == NULL) {
		dr_add(d, "liveness", DR_SKIP, "--token-file FILE (a saved kl-session document, or "
		    "the token) lets kl-doctor read the agent's record", "no token: the agent's "
		    "record at the verifier was not read");
		return;
	}
	if (d->agent_id[0] == '\0') {
		dr_add(d, "liveness", DR_SKIP, NULL, "agent id unknown: record not read");
		return;
	}
	dr_capture_begin(&cap, 0);
	rc = kl_api_init(&api, &d->cfg);
	free(dr_capture_end(&cap));
	if (rc != KL_OK || asprintf(&url, "%s/v2.6/agents/%s", api.base, d->agent_id) < 0) {
		url = NULL;
		goto out;
	}
	rc = get(&api.http, url, d->token, &resp, &why);
	if (rc != KL_OK) {
		dr_add(d, "liveness", DR_SKIP, NULL, "%s", why ? why : url);
		goto out;
	}
	if (resp.status == 401 || resp.status == 403) {
		dr_add(d, "liveness", DR_WARN, "the token expired or belongs to another agent: "
		    "save a fresh one (kl-session <reg.json >ses.json)", "GET %s: HTTP %ld", url,
		    resp.status);
		goto out;
	}
	if (resp.status == 404) {
		dr_add(d, "liveness", DR_FAIL, "enroll the agent at the verifier (keylime_tenant -c "
		    "add --push-model)", "the verifier does not know agent %s", d->agent_id);
		goto out;
	}
	if (resp.status != 200 || kl_json_parse(resp.body, resp.len, url, &reply) != KL_OK) {
		dr_add(d, "liveness", DR_WARN, NULL, "GET %s: HTTP %ld", url, resp.status);
		goto out;
	}
	res = kl_json_obj(reply, "results");
	if (res != NULL && kl_json_obj(res, d->agent_id) != NULL)
		res = kl_json_obj(res, d->agent_id);	/* keyed by the id in some versions */
	judge_record(d, res);
out:
	json_decref(reply);
	kl_http_resp_release(&resp);
	free(why);
	free(url);
	kl_api_release(&api);
}
