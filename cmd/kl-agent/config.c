/*
 * config.c - kl-agent's configuration: loaded at start and again on SIGHUP
 * from the same argv, checked for what kl-agent refuses, warned about when
 * insecure, and the shared flags passed on to the steps.
 */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

/* Printed on every start and reload, so that nobody forgets them. */
static void
warn_insecure(const struct kl_config *c)
{
	if (c->insecure)
		kl_warn("--insecure: the verifier's and registrar's certificates are not verified");
	/* kl_log removes a user:password@ from the URL. */
	if (strncmp(c->verifier_url, "http://", 7) == 0)
		kl_warn("verifier_url %s: plain HTTP, the token travels unencrypted",
		    c->verifier_url);
}

/* What kl-agent refuses, or checks, beyond what kl_config_load already did. */
static int
check_config(const struct kl_config *c)
{
	if (c->avoid_tpm)
		return kl_fail(KL_PERM, "--avoid-tpm: kl always attests with a TPM; for tests, "
		    "run a software TPM (swtpm) and point tcti at it (docs/kl-agent.md)");
	if (strncmp(c->verifier_url, "http://", 7) == 0 && !c->insecure)
		return kl_fail(KL_PERM, "verifier_url %s is plain HTTP: refused, the bearer token "
		    "and the evidence would travel unencrypted (use https://, or --insecure "
		    "for a test verifier without TLS)", c->verifier_url);
	if (c->exponential_backoff_initial_delay < 0 || c->exponential_backoff_max_delay < 0 ||
	    c->exponential_backoff_max_retries < 0 || c->attestation_interval_seconds < 0)
		return kl_fail(KL_PERM, "exponential_backoff_* and attestation_interval_seconds "
		    "must not be negative");
	return KL_OK;
}

int
agent_config_load(struct agent *a, struct kl_config *cfg, char **pass)
{
	struct kl_cli_flags flags = { .pass = pass };
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if ((rc = kl_cli_parse(a->cli, a->argc, a->argv, &flags)) != KL_OK)
		return rc == KL_CLI_DONE ? rc : KL_PERM;
	if (kl_config_load(cfg, &flags) != KL_OK)
		return KL_PERM;
	if ((rc = check_config(cfg)) != KL_OK) {
		kl_config_release(cfg);
		return rc;
	}
	kl_verbose = cfg->verbose;
	warn_insecure(cfg);
	return KL_OK;
}

int
agent_reload(struct agent *a)
{
	struct kl_config nc;
	json_t *id;

	if (agent_config_load(a, &nc, NULL) != KL_OK) {
		/*
		 * kl-agent could keep its previous configuration, but the steps
		 * read the files themselves and would fail with it: say so, and
		 * run no cycle until the files are fixed.
		 */
		a->config_broken = 1;
		return kl_fail(KL_PERM, "configuration not reloaded: the steps read the same files, "
		    "so no cycle runs until it is fixed (checked before each attempt and on HUP)");
	}
	a->config_broken = 0;
	if (strcmp(nc.run_as, a->cfg.run_as) != 0)
		kl_warn("SIGHUP: a new run_as takes effect after a restart");
	kl_config_release(&a->cfg);
	a->cfg = nc;
	id = agent_identity(&a->cfg);
	if (a->identity != NULL && !json_equal(id, a->identity)) {
		kl_info("%s: SIGHUP: the identity configuration changed: registering again",
		    agent_id(a));
		json_object_clear(a->doc);
		json_object_set_new(a->doc, "schema", json_integer(KL_SCHEMA));
	}
	json_decref(id);
	kl_info("%s: SIGHUP: configuration reloaded", agent_id(a));
	return KL_OK;
}
