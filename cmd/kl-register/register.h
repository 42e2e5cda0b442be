/*
 * register.h - what the parts of kl-register share (not a library API).
 *
 *   main.c       the flow, and the "agent" member it writes
 *   setup.c      the configuration checked before any TPM or network work
 *   identity.c   EK, EK certificate, AK (loaded or made and persisted), agent id
 *   registrar.c  GET /version, POST, ActivateCredential + auth_tag, PUT
 *   check.c      --check: the registrar's record against the local identity
 *
 * One struct reg holds everything of one run; reg_release() frees it all.
 */
#ifndef KL_REGISTER_H
#define KL_REGISTER_H

#include <stddef.h>

#include <jansson.h>

#include "kl_akfile.h"
#include "kl_http.h"
#include "kl_prog.h"
#include "kl_tpm.h"

#define REG_MAX_VERSIONS 16
#define REG_VERSION_LEN 8		/* "2.6" and a NUL, with room */

enum uuid_mode { UUID_FIXED, UUID_GENERATE, UUID_HASH_EK };

struct reg {
	const struct kl_config *cfg;	/* borrowed from the struct kl_prog */

	/* setup.c */
	enum uuid_mode mode;
	char id[65];			/* the agent id: a UUID or 64 hex digits */
	char *url;			/* registrar base URL, no trailing '/' */
	char *ca;			/* registrar CA file when TLS, else NULL */
	struct kl_http_opts http;
	char *ak_path;			/* the agent data file */
	char versions[REG_MAX_VERSIONS][REG_VERSION_LEN];	/* enabled, newest first */
	size_t nversions;

	/* identity.c */
	struct kl_tpm tpm;
	int tpm_open;
	struct kl_ek ek;
	unsigned char *ekcert;		/* DER, or NULL when the TPM has none */
	size_t ekcert_len;
	struct kl_akfile akf;		/* the AK in use; ak_public NULL: none yet (--check) */
	ESYS_TR ak;			/* loaded AK (tracked by tpm), or ESYS_TR_NONE */
	int ak_new;			/* made by this run */
	int id_new;			/* "generate": made by this run */

	/* registrar.c */
	char version[REG_VERSION_LEN];	/* the API version used; "" while unknown */
	long retry_status;		/* a 408/429/5xx with Retry-After: status ... */
	long retry_after;		/* ... and seconds; -1 when none */
};

/* setup.c: everything that needs neither the TPM nor the network. */
int reg_setup(struct reg *r, const struct kl_config *cfg);
void reg_release(struct reg *r);

/*
 * identity.c: open the TPM, make or open the EK, read its certificate, load
 * the persisted AK or (unless check) make and persist a new one, resolve the
 * agent id. With check nothing is written and no AK is made.
 */
int reg_identity(struct reg *r, int check);
/* Flush every transient object and close the TPM (safe to call twice). */
void reg_tpm_close(struct reg *r);


/* registrar.c */
int reg_choose_version(struct reg *r);
int reg_register(struct reg *r);
/*
 * One request to the registrar with a JSON body (may be NULL). Unless reply
 * is NULL, *reply is the parsed object when the status is 200 (a 200 that is
 * not a JSON object is KL_PERM), else NULL. Returns KL_OK when an answer came.
 */
int reg_call(struct reg *r, const char *method, const char *url, const json_t *body,
    struct kl_http_resp *resp, json_t **reply);
/* The exit code of an unexpected answer, after one line "<what>: HTTP ...". */
int reg_fail_status(struct reg *r, const struct kl_http_resp *resp, const char *what);
/* base/v<version>/agents/<id>, new string or NULL. */
char *reg_agent_url(const struct reg *r, const char *version);

/* check.c */
int reg_check(struct reg *r);

/* main.c: a line every run prints (unless the log level is warn or error). */

#endif
