/*
 * kl_config.h - the agent configuration, as upstream's keylime_push_model_agent
 * reads it (docs/protocol.md §9.1).
 *
 * Layers, later wins:
 *   1. built-in defaults (upstream's)
 *   2. $KL_SYSCONFDIR/agent.conf (default /etc/keylime/agent.conf), table [agent]
 *   3. $KL_SYSCONFDIR/agent.conf.d/ *.conf in lexical (strcmp) order
 *      -- or, when KEYLIME_AGENT_CONFIG is set, that one file instead of 2 and 3
 *   4. KEYLIME_AGENT_<KEY> environment variables (KEY = option name in upper case),
 *      and KEYLIME_DIR for keylime_dir
 *   5. command-line flags (the same flags as keylime_push_model_agent),
 *      parsed before by kl_cli_parse (kl_cli.h)
 * Unknown keys in [agent] are warned about once; pull-only keys (the pull
 * agent's options, e.g. ip, port, enable_revocation_notifications,
 * server_key ...) are accepted and ignored silently. Other tables are ignored.
 * Every error names the file, line and column, or the variable or flag.
 *
 * Details:
 *   - Files are TOML (kl_toml.h). A missing agent.conf or agent.conf.d is
 *     fine; an empty KEYLIME_AGENT_CONFIG counts as unset; drop-ins are the
 *     names matching "*.conf" (no dot files).
 *   - Values are typed: strings, integers (range-checked: ports 1..65535,
 *     intervals and delays >= 1), true/false. In the environment: integers
 *     in plain decimal, booleans "true"/"false", strings as they are;
 *     registrar_api_versions as 2.5,2.6 or as a TOML array ["2.5", "2.6"].
 *   - A non-empty KEYLIME_DIR beats keylime_dir from every other source.
 *   - Upstream's keywords are translated after all layers: keylime_dir ""
 *     -> /var/lib/keylime; ek_handle "generate" -> ""; ima_ml_path and
 *     measuredboot_ml_path "default"/"" -> the kernel's path, relative -> under "/".
 *   - argv is parsed (kl_cli.h) before any file is read, so -h and usage
 *     errors never depend on the files. --ca-certificate FILE is relative to
 *     the current directory (made absolute), as upstream; the same key in a
 *     file is relative to keylime_dir.
 *   - tpm_ownerpassword never appears in a log line, and is wiped when freed.
 */
#ifndef KL_CONFIG_H
#define KL_CONFIG_H

#include <stdbool.h>

#include "kl_cli.h"

struct kl_config {
	/* [agent] keys (strings are owned by the struct, never NULL after load) */
	char *uuid;				/* "d432fbb3-d2f1-4a97-9ef7-75bd81c00000" */
	char *verifier_url;			/* "https://localhost:8881" */
	char *verifier_tls_ca_cert;		/* "default" -> <keylime_dir>/cv_ca/cacert.crt */
	char *registrar_ip;			/* "127.0.0.1" */
	long registrar_port;			/* 8890 */
	bool registrar_tls_enabled;		/* false */
	long registrar_tls_port;		/* 8891 */
	char *registrar_tls_ca_cert;		/* "default" -> <keylime_dir>/cv_ca/cacert.crt */
	char *registrar_api_versions;		/* "default"; "latest"; or "2.5, 2.6" / array joined with "," */
	char *contact_ip;			/* "127.0.0.1" */
	long contact_port;			/* 9002 */
	char *tpm_encryption_alg;		/* "rsa" | "ecc" */
	char *tpm_hash_alg;			/* "sha256" */
	char *tpm_signing_alg;			/* "rsassa" */
	char *ek_handle;			/* "" = create the EK from the default template */
	char *tpm_ownerpassword;		/* "" ; "hex:..." as upstream. A secret: never logged */
	char *agent_data_path;			/* "default" -> <keylime_dir>/agent_data.json */
	char *ima_ml_path;			/* "/sys/kernel/security/ima/ascii_runtime_measurements" */
	char *measuredboot_ml_path;		/* "/sys/kernel/security/tpm0/binary_bios_measurements" */
	long attestation_interval_seconds;	/* 60 */
	long exponential_backoff_initial_delay;	/* 10000 ms */
	long exponential_backoff_max_retries;	/* 5 */
	long exponential_backoff_max_delay;	/* 300000 ms */
	char *certification_keys_server_identifier; /* "ak" */
	char *uefi_logs_evidence_version;	/* "2.1" */
	bool tls_accept_invalid_certs;		/* false */
	bool tls_accept_invalid_hostnames;	/* false */
	char *keylime_dir;			/* "/var/lib/keylime" */
	char *run_as;				/* "" (kl: no default user) */
	char *tcti;				/* "" -> env TCTI -> "device:/dev/tpmrm0" */
	long tpm_timeout_seconds;		/* 120 (kl): longest wait for a TPM answer */
	char *status_path;			/* "default" -> <keylime_dir>/kl-status.json (kl-agent) */
	bool proxy_from_env;			/* true: HTTPS_PROXY/NO_PROXY as curl (kl) */
	long verdict_timeout_seconds;		/* 30 (kl, kl-verdict): wait for the verdict */
	char *metrics_textfile;			/* "" = off; Prometheus textfile (kl-agent) */
	long verdict_every_cycles;		/* 0 (kl, kl-agent): the daemon asks kl-verdict every N cycles; 0 never */
	long startup_splay_seconds;		/* 60 (kl-agent): bound of the first cycle's random delay, 0: none */

	/* command line only (the shared flags of kl_cli.h) */
	char *registrar_url;			/* "" -> from registrar_ip/port/tls */
	char *api_version;			/* "v3.0" */
	long timeout_ms;			/* 5000 */
	bool insecure;				/* --insecure: no TLS verification at all */
	bool avoid_tpm;				/* --avoid-tpm */
	int verbose;				/* log level, KL_LOG_* (kl_log.h): RUST_LOG, --log-level, --verbose */

	/* derived by kl_config_load */
	char api_prefix[20];			/* "/v3.0": see kl_config_api_prefix */
};

/*
 * Load all layers, the flags (from kl_cli_parse; NULL: none) last. cfg need
 * not be initialised. Returns KL_OK, or KL_PERM after one error line (bad
 * file, bad value), or KL_TEMP (out of memory, unreadable file).
 * On any return other than KL_OK, cfg holds nothing (zeroed).
 */
int kl_config_load(struct kl_config *cfg, const struct kl_cli_flags *flags);
/* Free everything (wiping the password). Safe on a zeroed or released cfg. */
void kl_config_release(struct kl_config *cfg);

/*
 * Resolved values (new strings, free(); NULL when out of memory): value ""
 * or "default" gives dflt_rel; relative paths are under keylime_dir;
 * absolute paths stay.
 */
char *kl_config_path(const struct kl_config *cfg, const char *value, const char *dflt_rel);
char *kl_config_verifier_ca(const struct kl_config *cfg);
char *kl_config_registrar_ca(const struct kl_config *cfg);
char *kl_config_agent_data(const struct kl_config *cfg);
/* status_path resolved: "default" -> <keylime_dir>/kl-status.json. */
char *kl_config_status_path(const struct kl_config *cfg);
/* metrics_textfile resolved (relative: under keylime_dir); NULL when off or out of memory. */
char *kl_config_metrics_path(const struct kl_config *cfg);
/* "http://127.0.0.1:8890" or "https://host:8891" (--registrar-url wins). */
char *kl_config_registrar_url(const struct kl_config *cfg);
/* "/v3.0" from api_version ("v3.0", "3.0", "v3" -> "/v3" ...); borrowed. */
const char *kl_config_api_prefix(const struct kl_config *cfg);
/* TCTI: cfg->tcti, else env TCTI, else "device:/dev/tpmrm0" (borrowed). */
const char *kl_config_tcti(const struct kl_config *cfg);

/*
 * Do tpm_encryption_alg, tpm_hash_alg and tpm_signing_alg name an AK kl can
 * make (docs/protocol.md §8.2)? 0, or -1 with the reason in why (not logged:
 * kl-register fails with it, kl-doctor reports it).
 */
int kl_config_algorithms(const struct kl_config *c, char *why, size_t cap);

#endif
