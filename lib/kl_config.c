/*
 * kl_config.c - see kl_config.h.
 *
 * kl_config_load lays defaults, files, environment and the flags kl_cli
 * parsed over each other through one table of known keys, then translates
 * upstream's keywords ("default", "generate").
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_config.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_toml.h"
#include "kl_util.h"
#include "kl_banned.h"

#define DEFAULT_SYSCONFDIR	"/etc/keylime"
#define DEFAULT_KEYLIME_DIR	"/var/lib/keylime"
#define DEFAULT_IMA_ML		"/sys/kernel/security/ima/ascii_runtime_measurements"
#define DEFAULT_MB_ML		"/sys/kernel/security/tpm0/binary_bios_measurements"
#define DEFAULT_TCTI		"device:/dev/tpmrm0"
#define ENV_PREFIX		"KEYLIME_AGENT_"

enum ktype { K_STR, K_INT, K_BOOL, K_LIST };

/* A key of the [agent] table, and where its value lives in struct kl_config. */
struct key {
	const char *name;
	enum ktype type;
	size_t off;
	long min, max;		/* K_INT */
	const char *dflt;	/* K_STR, K_LIST */
	long idflt;		/* K_INT, K_BOOL */
};

#define S(f, d)		{ #f, K_STR, offsetof(struct kl_config, f), 0, 0, d, 0 }
#define L(f, d)		{ #f, K_LIST, offsetof(struct kl_config, f), 0, 0, d, 0 }
#define I(f, lo, hi, d)	{ #f, K_INT, offsetof(struct kl_config, f), lo, hi, NULL, d }
#define B(f, d)		{ #f, K_BOOL, offsetof(struct kl_config, f), 0, 0, NULL, d }

/* Defaults are upstream's (docs/protocol.md §9.1), except where kl_config.h says. */
static const struct key keys[] = {
	S(uuid, "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"),
	S(verifier_url, "https://localhost:8881"),
	S(verifier_tls_ca_cert, "default"),
	S(registrar_ip, "127.0.0.1"),
	I(registrar_port, 1, 65535, 8890),
	B(registrar_tls_enabled, 0),
	I(registrar_tls_port, 1, 65535, 8891),
	S(registrar_tls_ca_cert, "default"),
	L(registrar_api_versions, "default"),
	S(contact_ip, "127.0.0.1"),
	I(contact_port, 1, 65535, 9002),
	S(tpm_encryption_alg, "rsa"),
	S(tpm_hash_alg, "sha256"),
	S(tpm_signing_alg, "rsassa"),
	S(ek_handle, ""),
	S(tpm_ownerpassword, ""),
	S(agent_data_path, "default"),
	S(ima_ml_path, DEFAULT_IMA_ML),
	S(measuredboot_ml_path, DEFAULT_MB_ML),
	I(attestation_interval_seconds, 1, INT_MAX, 60),
	I(exponential_backoff_initial_delay, 1, INT_MAX, 10000),
	I(exponential_backoff_max_retries, 0, INT_MAX, 5),
	I(exponential_backoff_max_delay, 1, INT_MAX, 300000),
	S(certification_keys_server_identifier, "ak"),
	S(uefi_logs_evidence_version, "2.1"),
	B(tls_accept_invalid_certs, 0),
	B(tls_accept_invalid_hostnames, 0),
	S(keylime_dir, DEFAULT_KEYLIME_DIR),
	S(run_as, ""),
	S(tcti, ""),
	I(tpm_timeout_seconds, 1, 86400, 120),
	S(status_path, "default"),
	B(proxy_from_env, 1),
	I(verdict_timeout_seconds, 1, 86400, 30),
	S(metrics_textfile, ""),
	I(verdict_every_cycles, 0, INT_MAX, 0),
	I(startup_splay_seconds, 0, 86400, 60),
};

/*
 * Keys of upstream's keylime-agent.conf (rust-keylime) that only the pull
 * agent uses, plus a few of its older names: accepted and ignored silently,
 * so one agent.conf serves both agents.
 */
static const char *const pull_only[] = {
	"version", "api_versions", "ip", "port", "enable_agent_mtls",
	"server_key", "server_key_password", "server_cert", "trusted_client_ca",
	"payload_key", "payload_key_password", "enc_keyname", "dec_payload_file",
	"secure_size", "extract_payload_zip", "enable_revocation_notifications",
	"revocation_actions_dir", "revocation_notification_ip",
	"revocation_notification_port", "revocation_cert", "revocation_actions",
	"payload_script", "enable_insecure_payload",
	"allow_payload_revocation_actions", "enable_iak_idevid",
	"iak_idevid_template", "iak_idevid_asymmetric_alg", "iak_idevid_name_alg",
	"idevid_password", "idevid_handle", "iak_password", "iak_handle",
	"iak_cert", "idevid_cert", "enable_authentication",
	"verifier_tls_client_cert", "verifier_tls_client_key",
	"listen_notifications", "measure_payload_pcr", "receive_revocation_ip",
	"receive_revocation_port", "retry_interval", "max_retries",
};

static char **
str_field(struct kl_config *cfg, const struct key *k)
{
	return (char **)((char *)cfg + k->off);
}

static long *
int_field(struct kl_config *cfg, const struct key *k)
{
	return (long *)((char *)cfg + k->off);
}

static bool *
bool_field(struct kl_config *cfg, const struct key *k)
{
	return (bool *)((char *)cfg + k->off);
}

static const struct key *
find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
is_pull_only(const char *name)
{
	for (size_t i = 0; i < sizeof(pull_only) / sizeof(pull_only[0]); i++)
		if (strcmp(pull_only[i], name) == 0)
			return 1;
	return 0;
}

static int
is_secret(const struct key *k)
{
	return strcmp(k->name, "tpm_ownerpassword") == 0;
}

/* Replace a string member; the old value is wiped if it may be a secret. */
static int
set_string(char **field, const char *v, int secret)
{
	char *n = strdup(v);

	if (n == NULL)
		return kl_fail(KL_TEMP, "config: out of memory");
	if (*field && secret)
		kl_secret_free(*field, strlen(*field));
	else
		free(*field);
	*field = n;
	return KL_OK;
}

static int
set_str(struct kl_config *cfg, const struct key *k, const char *v, const char *from)
{
	char shown[128];

	if (is_secret(k)) {
		kl_debug("config: %s = <secret> (%s)", k->name, from);
	} else if (kl_verbose >= 2) {
		kl_log_sanitize(shown, sizeof(shown), v, strlen(v));
		kl_debug("config: %s = \"%s\" (%s)", k->name, shown, from);
	}
	return set_string(str_field(cfg, k), v, is_secret(k));
}

static int
set_int(struct kl_config *cfg, const struct key *k, long long v, const char *where)
{
	if (v < k->min || v > k->max)
		return kl_fail(KL_PERM, "%s: must be between %ld and %ld, not %lld",
		    where, k->min, k->max, v);
	kl_debug("config: %s = %lld (%s)", k->name, v, where);
	*int_field(cfg, k) = (long)v;
	return KL_OK;
}

static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_ARRAY: return "an array";
	case JSON_OBJECT: return "a table";
	default: return "another type";
	}
}

/* A list value: a string as it is, or an array of strings joined with ",". */
static int
set_list(struct kl_config *cfg, const struct key *k, const json_t *v, const char *where)
{
	size_t i, len = 0;
	json_t *e;
	char *s;
	int rc;

	if (json_is_string(v))
		return set_str(cfg, k, json_string_value(v), where);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return kl_fail(KL_PERM, "%s: expected a string or a non-empty array of strings",
		    where);
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return kl_fail(KL_PERM, "%s: expected a string or a non-empty array of strings",
			    where);
		len += json_string_length(e) + 1;
	}
	if ((s = malloc(len)) == NULL)
		return kl_fail(KL_TEMP, "config: out of memory");
	len = 0;
	json_array_foreach(v, i, e) {
		if (i)
			s[len++] = ',';
		memcpy(s + len, json_string_value(e), json_string_length(e));
		len += json_string_length(e);
	}
	s[len] = '\0';
	rc = set_str(cfg, k, s, where);
	free(s);
	return rc;
}

/* A value from a TOML file, or a TOML literal from the environment. */
static int
set_json(struct kl_config *cfg, const struct key *k, const json_t *v, const char *where)
{
	switch (k->type) {
	case K_STR:
		if (!json_is_string(v))
			return kl_fail(KL_PERM, "%s: expected a string, not %s", where, json_type_name(v));
		return set_str(cfg, k, json_string_value(v), where);
	case K_INT:
		if (!json_is_integer(v))
			return kl_fail(KL_PERM, "%s: expected an integer, not %s", where, json_type_name(v));
		return set_int(cfg, k, json_integer_value(v), where);
	case K_BOOL:
		if (!json_is_boolean(v))
			return kl_fail(KL_PERM, "%s: expected true or false, not %s", where, json_type_name(v));
		kl_debug("config: %s = %s (%s)", k->name, json_is_true(v) ? "true" : "false", where);
		*bool_field(cfg, k) = json_is_true(v);
		return KL_OK;
	case K_LIST:
		return set_list(cfg, k, v, where);
	}
	return KL_PERM;
}

/* A value from an environment variable (or a flag): text typed by k. */
static int
set_text(struct kl_config *cfg, const struct key *k, const char *v, const char *where)
{
	char shown[64];
	long long n;
	const char *p;

	switch (k->type) {
	case K_STR:
		return set_str(cfg, k, v, where);
	case K_INT:
		if (kl_cli_decimal(v, &n) != 0) {
			kl_log_sanitize(shown, sizeof(shown), v, strlen(v));
			return kl_fail(KL_PERM, "%s: expected an integer, not \"%s\"", where, shown);
		}
		return set_int(cfg, k, n, where);
	case K_BOOL:
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
			kl_log_sanitize(shown, sizeof(shown), v, strlen(v));
			return kl_fail(KL_PERM, "%s: expected true or false, not \"%s\"", where, shown);
		}
		kl_debug("config: %s = %s (%s)", k->name, v, where);
		*bool_field(cfg, k) = v[0] == 't';
		return KL_OK;
	case K_LIST:
		for (p = v; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '[') {
			json_t *j;
			int rc = kl_toml_parse_value(v, strlen(v), where, &j);

			if (rc == KL_OK)
				rc = set_list(cfg, k, j, where);
			json_decref(j);
			return rc;
		}
		return set_str(cfg, k, v, where);
	}
	return KL_PERM;
}

static int
set_defaults(struct kl_config *cfg)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];

		if (k->type == K_STR || k->type == K_LIST) {
			if ((*str_field(cfg, k) = strdup(k->dflt)) == NULL)
				return kl_fail(KL_TEMP, "config: out of memory");
		} else if (k->type == K_INT) {
			*int_field(cfg, k) = k->idflt;
		} else {
			*bool_field(cfg, k) = k->idflt != 0;
		}
	}
	if ((cfg->registrar_url = strdup("")) == NULL ||
	    (cfg->api_version = strdup("v3.0")) == NULL)
		return kl_fail(KL_TEMP, "config: out of memory");
	cfg->timeout_ms = 5000;
	return KL_OK;
}

/* The [agent] table of one file. */
static int
apply_agent_table(struct kl_config *cfg, const char *path, const json_t *tbl, const json_t *pos)
{
	const char *name;
	json_t *v;

	json_object_foreach((json_t *)tbl, name, v) {
		const struct key *k = find_key(name);
		char where[4200], shown[64];
		int line, kcol, vcol, rc;

		kl_toml_pos(pos, name, &line, &kcol, &vcol);
		kl_log_sanitize(shown, sizeof(shown), name, strlen(name));
		if (k == NULL && json_is_object(v)) {
			/* A table header has no position in the tree. */
			kl_warn("%s: unknown table [agent.%s]: ignored", path, shown);
			continue;
		}
		if (k == NULL) {
			if (!is_pull_only(name))
				kl_warn("%s:%d:%d: unknown key \"%s\" in [agent]: ignored",
				    path, line, kcol, shown);
			continue;
		}
		snprintf(where, sizeof(where), "%s:%d:%d: %s", path, line, vcol, k->name);
		if ((rc = set_json(cfg, k, v, where)) != KL_OK)
			return rc;
	}
	return KL_OK;
}

static int
load_file(struct kl_config *cfg, const char *path, int missing_ok)
{
	json_t *doc, *pos, *v;
	const char *name;
	int rc;

	if ((rc = kl_toml_parse_file(path, missing_ok, &doc, &pos)) != KL_OK)
		return rc;
	if (doc == NULL) {
		kl_debug("config: %s: not found, skipped", path);
		return KL_OK;
	}
	kl_info("config: reading %s", path);
	/* Only [agent] matters; other tables belong to other Keylime parts. */
	json_object_foreach(doc, name, v) {
		if (json_is_object(v)) {
			if (strcmp(name, "agent") == 0 &&
			    (rc = apply_agent_table(cfg, path, v, json_object_get(pos, name))) != KL_OK)
				break;
		} else {
			char shown[64];
			int line, kcol;

			kl_toml_pos(pos, name, &line, &kcol, NULL);
			kl_log_sanitize(shown, sizeof(shown), name, strlen(name));
			kl_warn("%s:%d:%d: key \"%s\" is outside the [agent] table: ignored",
			    path, line, kcol, shown);
		}
	}
	json_decref(doc);
	json_decref(pos);
	return rc;
}

static int
is_conf_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	/* "*.conf" as a shell glob matches it: no dot files. */
	return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".conf") == 0;
}

static int
by_strcmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
load_dropins(struct kl_config *cfg, const char *dir)
{
	struct dirent **list;
	int n, rc = KL_OK;

	if ((n = scandir(dir, &list, is_conf_name, by_strcmp)) < 0) {
		if (errno == ENOENT)
			return KL_OK;
		return kl_fail(KL_PERM, "%s: %s", dir, strerror(errno));
	}
	for (int i = 0; i < n; i++) {
		char *path = NULL;

		if (rc == KL_OK) {
			if (asprintf(&path, "%s/%s", dir, list[i]->d_name) < 0)
				rc = kl_fail(KL_TEMP, "config: out of memory");
			else
				rc = load_file(cfg, path, 0);
		}
		free(path);
		free(list[i]);
	}
	free(list);
	return rc;
}

static int
load_files(struct kl_config *cfg)
{
	const char *one = getenv("KEYLIME_AGENT_CONFIG");
	const char *etc = getenv("KL_SYSCONFDIR");
	char *path = NULL, *dir = NULL;
	int rc;

	if (one && *one)
		return load_file(cfg, one, 0);
	if (etc == NULL || *etc == '\0')
		etc = DEFAULT_SYSCONFDIR;
	if (asprintf(&path, "%s/agent.conf", etc) < 0) {
		path = NULL;
		rc = kl_fail(KL_TEMP, "config: out of memory");
	} else if (asprintf(&dir, "%s/agent.conf.d", etc) < 0) {
		dir = NULL;
		rc = kl_fail(KL_TEMP, "config: out of memory");
	} else if ((rc = load_file(cfg, path, 1)) == KL_OK) {
		rc = load_dropins(cfg, dir);
	}
	free(path);
	free(dir);
	return rc;
}

static int
load_env(struct kl_config *cfg)
{
	const char *v;
	int rc;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char var[128];
		size_t j, n = strlen(ENV_PREFIX);

		memcpy(var, ENV_PREFIX, n);
		for (j = 0; keys[i].name[j] && n + j + 1 < sizeof(var); j++) {
			char c = keys[i].name[j];

			var[n + j] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
		}
		var[n + j] = '\0';
		if ((v = getenv(var)) != NULL && (rc = set_text(cfg, &keys[i], v, var)) != KL_OK)
			return rc;
	}
	/* Upstream: a non-empty KEYLIME_DIR beats keylime_dir from any source. */
	if ((v = getenv("KEYLIME_DIR")) != NULL && *v &&
	    (rc = set_str(cfg, find_key("keylime_dir"), v, "KEYLIME_DIR")) != KL_OK)
		return rc;
	return KL_OK;
}

static int
apply_flags(struct kl_config *cfg, const struct kl_cli_flags *f)
{
	int rc = KL_OK;

	if (f->verifier_url)
		rc = set_str(cfg, find_key("verifier_url"), f->verifier_url, "--verifier-url");
	if (rc == KL_OK && f->agent_id)
		rc = set_str(cfg, find_key("uuid"), f->agent_id, "--agent-identifier");
	if (rc == KL_OK && f->tcti)
		rc = set_str(cfg, find_key("tcti"), f->tcti, "--tcti");
	if (rc == KL_OK && f->ca) {
		/* A path on the command line is relative to where the user is. */
		char cwd[PATH_MAX], *abs = NULL;

		if (f->ca[0] == '/')
			rc = set_str(cfg, find_key("verifier_tls_ca_cert"), f->ca, "--ca-certificate");
		else if (getcwd(cwd, sizeof(cwd)) == NULL)
			rc = kl_fail(KL_PERM, "--ca-certificate: getcwd: %s", strerror(errno));
		else if (asprintf(&abs, "%s/%s", cwd, f->ca) < 0)
			rc = kl_fail(KL_TEMP, "config: out of memory");
		else
			rc = set_str(cfg, find_key("verifier_tls_ca_cert"), abs, "--ca-certificate");
		free(abs);
	}
	if (rc == KL_OK && f->registrar_url)
		rc = set_string(&cfg->registrar_url, f->registrar_url, 0);
	if (rc == KL_OK && f->api_version)
		rc = set_string(&cfg->api_version, f->api_version, 0);
	if (f->interval)
		cfg->attestation_interval_seconds = f->interval;
	if (f->timeout)
		cfg->timeout_ms = f->timeout;
	cfg->insecure = f->insecure;
	cfg->avoid_tpm = f->avoid_tpm;
	cfg->verbose = f->verbose;
	return rc;
}

/* Upstream's keywords, so consumers see plain values. */
static int
translate(struct kl_config *cfg)
{
	int rc = KL_OK;

	if (cfg->keylime_dir[0] == '\0')
		rc = set_string(&cfg->keylime_dir, DEFAULT_KEYLIME_DIR, 0);
	/* ek_handle "generate" (upstream's shipped value) means: create one. */
	if (rc == KL_OK && strcmp(cfg->ek_handle, "generate") == 0)
		rc = set_string(&cfg->ek_handle, "", 0);
	/* Log paths: "default" is the kernel's; relative ones are under "/". */
	for (int i = 0; i < 2 && rc == KL_OK; i++) {
		char **f = i ? &cfg->measuredboot_ml_path : &cfg->ima_ml_path;
		char *abs = NULL;

		if ((*f)[0] == '\0' || strcmp(*f, "default") == 0) {
			rc = set_string(f, i ? DEFAULT_MB_ML : DEFAULT_IMA_ML, 0);
		} else if ((*f)[0] != '/') {
			if (asprintf(&abs, "/%s", *f) < 0)
				return kl_fail(KL_TEMP, "config: out of memory");
			rc = set_string(f, abs, 0);
			free(abs);
		}
	}
	if (rc == KL_OK && kl_cli_api_prefix(cfg->api_version, cfg->api_prefix) != 0)
		rc = kl_fail(KL_PERM, "api version \"%s\": expected a version like v3.0",
		    cfg->api_version);
	return rc;
}

int
kl_config_load(struct kl_config *cfg, const struct kl_cli_flags *flags)
{
	const struct kl_cli_flags none = { 0 };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if ((rc = set_defaults(cfg)) == KL_OK &&
	    (rc = load_files(cfg)) == KL_OK &&
	    (rc = load_env(cfg)) == KL_OK &&
	    (rc = apply_flags(cfg, flags ? flags : &none)) == KL_OK)
		rc = translate(cfg);
	if (rc != KL_OK)
		kl_config_release(cfg);
	return rc;
}

void
kl_config_release(struct kl_config *cfg)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *k = &keys[i];
		char **s;

		if (k->type != K_STR && k->type != K_LIST)
			continue;
		s = str_field(cfg, k);
		if (*s && is_secret(k))
			kl_secret_free(*s, strlen(*s));
		else
			free(*s);
	}
	free(cfg->registrar_url);
	free(cfg->api_version);
	memset(cfg, 0, sizeof(*cfg));
}

char *
kl_config_path(const struct kl_config *cfg, const char *value, const char *dflt_rel)
{
	const char *dir = cfg->keylime_dir && *cfg->keylime_dir ? cfg->keylime_dir : DEFAULT_KEYLIME_DIR;
	const char *rel = value;
	char *out = NULL;

	if (rel == NULL || *rel == '\0' || strcmp(rel, "default") == 0)
		rel = dflt_rel;
	if (rel == NULL)
		return NULL;
	if (rel[0] == '/')
		return strdup(rel);
	if (asprintf(&out, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel) < 0)
		return NULL;
	return out;
}

char *
kl_config_verifier_ca(const struct kl_config *cfg)
{
	return kl_config_path(cfg, cfg->verifier_tls_ca_cert, "cv_ca/cacert.crt");
}

char *
kl_config_registrar_ca(const struct kl_config *cfg)
{
	return kl_config_path(cfg, cfg->registrar_tls_ca_cert, "cv_ca/cacert.crt");
}

char *
kl_config_agent_data(const struct kl_config *cfg)
{
	return kl_config_path(cfg, cfg->agent_data_path, "agent_data.json");
}

char *
kl_config_status_path(const struct kl_config *cfg)
{
	return kl_config_path(cfg, cfg->status_path, "kl-status.json");
}

char *
kl_config_metrics_path(const struct kl_config *cfg)
{
	if (cfg->metrics_textfile == NULL || cfg->metrics_textfile[0] == '\0')
		return NULL;
	return kl_config_path(cfg, cfg->metrics_textfile, NULL);
}

char *
kl_config_registrar_url(const struct kl_config *cfg)
{
	const char *ip = cfg->registrar_ip;
	int v6 = strchr(ip, ':') != NULL && ip[0] != '[';	/* an IPv6 literal */
	char *out = NULL;

	if (cfg->registrar_url && cfg->registrar_url[0])
		return strdup(cfg->registrar_url);
	if (asprintf(&out, "%s://%s%s%s:%ld", cfg->registrar_tls_enabled ? "https" : "http",
	    v6 ? "[" : "", ip, v6 ? "]" : "",
	    cfg->registrar_tls_enabled ? cfg->registrar_tls_port : cfg->registrar_port) < 0)
		return NULL;
	return out;
}

const char *
kl_config_api_prefix(const struct kl_config *cfg)
{
	return cfg->api_prefix[0] ? cfg->api_prefix : "/v3.0";
}

const char *
kl_config_tcti(const struct kl_config *cfg)
{
	const char *t = getenv("TCTI");

	if (cfg->tcti && cfg->tcti[0])
		return cfg->tcti;
	return t && *t ? t : DEFAULT_TCTI;
}

int
kl_config_algorithms(const struct kl_config *c, char *why, size_t cap)
{
	static const char *const hashes[] = { "sha1", "sha256", "sha384", "sha512", "sm3_256", NULL };
	const char *enc = c->tpm_encryption_alg, *sig = c->tpm_signing_alg;
	int known = 0;

	if (strcmp(enc, "rsa") != 0 && strcmp(enc, "ecc") != 0) {
		snprintf(why, cap, "tpm_encryption_alg \"%s\": kl supports rsa (RSA-2048) "
		    "and ecc (P-256)", enc);
		return -1;
	}
	for (size_t i = 0; hashes[i]; i++)
		known |= strcmp(hashes[i], c->tpm_hash_alg) == 0;
	if (!known) {
		snprintf(why, cap, "tpm_hash_alg \"%s\": not one of sha1, sha256, sha384, "
		    "sha512, sm3_256", c->tpm_hash_alg);
		return -1;
	}
	if (strcmp(enc, "rsa") == 0 && strcmp(sig, "rsassa") != 0 && strcmp(sig, "rsapss") != 0) {
		snprintf(why, cap, "tpm_signing_alg \"%s\": an RSA AK signs with rsassa or "
		    "rsapss%s", sig, strcmp(sig, "ecdsa") == 0 ?
		    " (ecdsa needs tpm_encryption_alg = \"ecc\")" : "");
		return -1;
	}
	if (strcmp(enc, "ecc") == 0 && strcmp(sig, "ecdsa") != 0) {
		snprintf(why, cap, "tpm_signing_alg \"%s\": an ECC AK signs with ecdsa", sig);
		return -1;
	}
	return 0;
}
