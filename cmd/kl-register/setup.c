/*
 * setup.c - the configuration of kl-register, checked before the TPM or the
 * registrar is touched: a mistake here costs nothing and changes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_config.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "register.h"
#include "kl_banned.h"

/* upstream's SUPPORTED_API_VERSIONS ("default") and its newest ("latest"), §2.2 */
static const char *const default_versions[] = { "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", NULL };
#define LATEST_VERSION "2.6"

/* uuid: a UUID (kept in canonical lowercase, §2.9), "generate" or "hash_ek". */
static int
setup_uuid(struct reg *r, const char *uuid)
{
	char clean[80];

	if (strcmp(uuid, "generate") == 0) {
		r->mode = UUID_GENERATE;
		return KL_OK;
	}
	if (strcmp(uuid, "hash_ek") == 0) {
		r->mode = UUID_HASH_EK;
		return KL_OK;
	}
	if (!kl_uuid_valid(uuid)) {
		/* Upstream silently makes a random one; a typo must not become a new agent. */
		kl_log_sanitize(clean, sizeof(clean), uuid, strlen(uuid));
		return kl_fail(KL_PERM, "uuid \"%s\": not a UUID, \"generate\" or \"hash_ek\"", clean);
	}
	r->mode = UUID_FIXED;
	for (size_t i = 0; i < 36; i++)
		r->id[i] = (char)tolower((unsigned char)uuid[i]);
	r->id[36] = '\0';
	return KL_OK;
}

/* Add "2.N" to the enabled list, newest first, once. */
static int
add_version(struct reg *r, const char *v, size_t len)
{
	char buf[REG_VERSION_LEN];
	size_t i;
	long minor;
	char *end;

	if (len == 0 || len >= sizeof(buf))
		goto bad;
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (strncmp(buf, "2.", 2) != 0 || !isdigit((unsigned char)buf[2]))
		goto bad;
	errno = 0;
	minor = strtol(buf + 2, &end, 10);
	if (*end != '\0' || errno != 0 || minor > 99)
		goto bad;
	for (i = 0; i < r->nversions; i++) {
		long m = strtol(r->versions[i] + 2, NULL, 10);

		if (m == minor)
			return KL_OK;
		if (m < minor)
			break;
	}
	if (r->nversions == REG_MAX_VERSIONS)
		return kl_fail(KL_PERM, "registrar_api_versions: more than %d versions", REG_MAX_VERSIONS);
	memmove(r->versions[i + 1], r->versions[i], (r->nversions - i) * REG_VERSION_LEN);
	snprintf(r->versions[i], REG_VERSION_LEN, "2.%d", (int)(minor % 100));
	r->nversions++;
	return KL_OK;
bad:
	{
		char clean[40];

		kl_log_sanitize(clean, sizeof(clean), v, len);
		/* v3.0 routes of the registrar answer 500 (§2.8): registration is 2.x only. */
		return kl_fail(KL_PERM, "registrar_api_versions: \"%s\" is not a 2.x API version "
		    "(kl registers with 2.x only)", clean);
	}
}

/* registrar_api_versions: "default", "latest" or "2.5, 2.6" (kl_config joins arrays with ","). */
static int
setup_versions(struct reg *r, const char *list)
{
	const char *p = list;
	int rc;

	if (strcmp(list, "default") == 0 || *list == '\0') {
		for (size_t i = 0; default_versions[i]; i++)
			if ((rc = add_version(r, default_versions[i], strlen(default_versions[i]))) != KL_OK)
				return rc;
		return KL_OK;
	}
	if (strcmp(list, "latest") == 0)
		return add_version(r, LATEST_VERSION, strlen(LATEST_VERSION));
	while (*p) {
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == '"')
			p++;
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '"'))
			n--;
		if ((rc = add_version(r, p, n)) != KL_OK)
			return rc;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	return KL_OK;
}

/*
 * Where the registrar is and how to reach it. With registrar_tls_enabled every
 * request must be HTTPS (kl_http refuses http:// then), so a plain-HTTP
 * --registrar-url is a configuration error, not a silent downgrade. Unlike
 * upstream, TLS without a CA file is an error too, not plain HTTP.
 */
static int
setup_transport(struct reg *r, const struct kl_config *c)
{
	size_t n;

	if ((r->url = kl_config_registrar_url(c)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	n = strlen(r->url);
	while (n > 0 && r->url[n - 1] == '/')
		r->url[--n] = '\0';
	if (strncmp(r->url, "http://", 7) != 0 && strncmp(r->url, "https://", 8) != 0)
		return kl_fail(KL_PERM, "registrar URL %s: must start with http:// or https://", r->url);
	r->http.require_tls = c->registrar_tls_enabled || strncmp(r->url, "https://", 8) == 0;
	if (c->registrar_tls_enabled && strncmp(r->url, "http://", 7) == 0)
		return kl_fail(KL_PERM, "--registrar-url %s: registrar_tls_enabled is set, "
		    "so plain HTTP is refused: give an https:// URL", r->url);
	r->http.timeout_ms = c->timeout_ms;
	r->http.no_env_proxy = !c->proxy_from_env;
	r->http.connect_timeout_ms = c->timeout_ms;
	if (!r->http.require_tls)
		return KL_OK;
	if ((r->ca = kl_config_registrar_ca(c)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	r->http.ca_file = r->ca;
	kl_http_tls_relax(&r->http, r->url, c->insecure, c->tls_accept_invalid_certs,
	    c->tls_accept_invalid_hostnames);
	if (!r->http.insecure && access(r->ca, R_OK) != 0)
		return kl_fail(KL_PERM, "registrar_tls_ca_cert %s: %s", r->ca, strerror(errno));
	return KL_OK;
}

int
reg_setup(struct reg *r, const struct kl_config *cfg)
{
	char why[200];
	int rc;

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->ak = ESYS_TR_NONE;
	r->retry_after = -1;
	kl_akfile_init(&r->akf);
	/* The id first: a malformed one must fail before anything else happens. */
	if ((rc = setup_uuid(r, cfg->uuid)) != KL_OK)
		return rc;
	if (cfg->avoid_tpm)
		return kl_fail(KL_PERM, "--avoid-tpm: kl-register needs a TPM "
		    "(for tests: swtpm and --tcti)");
	/* The AK algorithms must fit together before the TPM is asked. */
	if (kl_config_algorithms(cfg, why, sizeof(why)) != 0)
		return kl_fail(KL_PERM, "%s", why);
	if ((rc = setup_versions(r, cfg->registrar_api_versions)) != KL_OK ||
	    (rc = setup_transport(r, cfg)) != KL_OK)
		return rc;
	if ((r->ak_path = kl_config_agent_data(cfg)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	return KL_OK;
}

void
reg_release(struct reg *r)
{
	reg_tpm_close(r);
	kl_tpm_ek_release(&r->ek);
	kl_akfile_release(&r->akf);
	free(r->ekcert);
	free(r->url);
	free(r->ca);
	free(r->ak_path);
	memset(r, 0, sizeof(*r));
}
