/*
 * test_config: drive lib/kl_config from tests/bats/config.bats.
 *
 *   test_config [flags...]
 *
 * Loads the configuration as a kl program would (files, environment, the
 * given flags) and prints it as one JSON object: one member per field of
 * struct kl_config, tpm_ownerpassword shown only as "<set>" or "", and
 * "resolved" with the helpers' results. Exits with kl_cli_parse's or
 * kl_config_load's code (0 after -h). Its own options (kl_cli.h): --flag
 * is recorded in "flag", --extra X in "extra"; "--extra bad" fails its check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_config.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

static bool flag;
static const char *extra;

static const char *
not_bad(const char *arg)
{
	return strcmp(arg, "bad") == 0 ? "anything but \"bad\"" : NULL;
}

static const struct kl_cli_opt own[] = {
	KL_CLI_FLAG("flag", &flag, "a flag of test_config's own"),
	{ .name = "extra", .arg = "X", .str = &extra, .check = not_bad,
	  .help = "a value of test_config's own" },
	KL_CLI_END,
};

static const struct kl_cli cli = { .opts = own };

/* A new JSON string from a helper's malloc'd result (NULL -> null). */
static json_t *
owned(char *s)
{
	json_t *j = s ? json_string(s) : json_null();

	free(s);
	return j;
}

int
main(int argc, char *argv[])
{
	struct kl_cli_flags flags = { 0 };
	struct kl_config c;
	json_t *out;
	char *s;
	int rc;

	kl_log_init("test_config");
	rc = kl_cli_parse(&cli, argc, argv, &flags);
	if (rc == KL_CLI_DONE)
		return 0;
	if (rc != KL_OK || (rc = kl_config_load(&c, &flags)) != KL_OK)
		return rc;
	out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:s, s:s, s:s, s:I,"
	    " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "uuid", c.uuid,
	    "verifier_url", c.verifier_url,
	    "verifier_tls_ca_cert", c.verifier_tls_ca_cert,
	    "registrar_ip", c.registrar_ip,
	    "registrar_port", (json_int_t)c.registrar_port,
	    "registrar_tls_enabled", c.registrar_tls_enabled,
	    "registrar_tls_port", (json_int_t)c.registrar_tls_port,
	    "registrar_tls_ca_cert", c.registrar_tls_ca_cert,
	    "registrar_api_versions", c.registrar_api_versions,
	    "contact_ip", c.contact_ip,
	    "contact_port", (json_int_t)c.contact_port,
	    "tpm_encryption_alg", c.tpm_encryption_alg,
	    "tpm_hash_alg", c.tpm_hash_alg,
	    "tpm_signing_alg", c.tpm_signing_alg,
	    "ek_handle", c.ek_handle,
	    /* a secret: only whether it is set */
	    "tpm_ownerpassword", c.tpm_ownerpassword[0] ? "<set>" : "",
	    "agent_data_path", c.agent_data_path,
	    "ima_ml_path", c.ima_ml_path,
	    "measuredboot_ml_path", c.measuredboot_ml_path);
	json_object_update_new(out, json_pack("{s:I, s:I, s:I, s:I, s:s, s:s, s:b, s:b,"
	    " s:s, s:s, s:s, s:s}",
	    "attestation_interval_seconds", (json_int_t)c.attestation_interval_seconds,
	    "exponential_backoff_initial_delay", (json_int_t)c.exponential_backoff_initial_delay,
	    "exponential_backoff_max_retries", (json_int_t)c.exponential_backoff_max_retries,
	    "exponential_backoff_max_delay", (json_int_t)c.exponential_backoff_max_delay,
	    "certification_keys_server_identifier", c.certification_keys_server_identifier,
	    "uefi_logs_evidence_version", c.uefi_logs_evidence_version,
	    "tls_accept_invalid_certs", c.tls_accept_invalid_certs,
	    "tls_accept_invalid_hostnames", c.tls_accept_invalid_hostnames,
	    "keylime_dir", c.keylime_dir,
	    "run_as", c.run_as,
	    "tcti", c.tcti,
	    "status_path", c.status_path));
	json_object_update_new(out, json_pack("{s:s, s:s, s:I, s:b, s:b, s:b, s:i, s:i, s:o}",
	    "registrar_url", c.registrar_url,
	    "api_version", c.api_version,
	    "timeout_ms", (json_int_t)c.timeout_ms,
	    "insecure", c.insecure,
	    "avoid_tpm", c.avoid_tpm,
	    "flag", flag,
	    "verbose", c.verbose,
	    "kl_verbose", kl_verbose,
	    "extra", extra ? json_string(extra) : json_null()));
	json_object_set_new(out, "resolved", json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:s}",
	    "verifier_ca", owned(kl_config_verifier_ca(&c)),
	    "registrar_ca", owned(kl_config_registrar_ca(&c)),
	    "agent_data", owned(kl_config_agent_data(&c)),
	    "status_path", owned(kl_config_status_path(&c)),
	    "registrar_url", owned(kl_config_registrar_url(&c)),
	    "api_prefix", kl_config_api_prefix(&c),
	    "tcti", kl_config_tcti(&c)));
	kl_config_release(&c);
	if ((s = json_dumps(out, JSON_COMPACT)) == NULL) {
		json_decref(out);
		return KL_TEMP;
	}
	puts(s);
	free(s);
	json_decref(out);
	return KL_OK;
}
