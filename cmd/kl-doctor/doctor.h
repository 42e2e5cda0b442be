/*
 * doctor.h - kl-doctor's parts (not a library API). kl-doctor is read-only:
 * it never registers, never attests, never writes the AK file or a checkpoint.
 *
 *   main.c     options, the order of the checks, the exit code
 *   report.c   the checks' results: text, JSON; capturing lib/'s log lines
 *   local.c    configuration, TPM, EK certificate, AK file, agent id, logs,
 *              the pull-mode agent
 *   net.c      CA file, verifier (TLS, push mode, clock), registrar, liveness
 *   bundle.c   --bundle FILE: the support bundle (tar.gz, 0600, no secret)
 */
#ifndef KL_DOCTOR_H
#define KL_DOCTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kl_config.h"

enum dr_level { DR_OK, DR_WARN, DR_FAIL, DR_SKIP };

#define DR_MAX_CHECKS 32
#define DR_MAX_FILES 64

struct dr_check {
	const char *name;		/* "config", "tpm", ... (static) */
	enum dr_level level;
	char *found;			/* what was found, one line */
	char *hint;			/* what to do, or NULL */
};

struct doctor {
	struct kl_cli_flags flags;
	struct kl_config cfg;
	bool cfg_loaded;
	const char *token_file;		/* --token-file */
	char *token;			/* its token: a secret, wiped when freed */
	char *files[DR_MAX_FILES];	/* configuration files read */
	size_t nfiles;
	struct dr_check checks[DR_MAX_CHECKS];
	size_t n;
	char agent_id[80];		/* resolved, "" when unknown */
	char ak_hash[8], ak_sign[12];	/* the AK file's algorithms, "" when none */
	char *ak_public;		/* the AK file's TPM2B_PUBLIC in base64, or NULL */
};

/* report.c */
void dr_add(struct doctor *d, const char *name, enum dr_level level, const char *hint,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* 1 when a check failed. */
int dr_failed(const struct doctor *d);
char *dr_text(const struct doctor *d);		/* the report as text (new string) */
json_t *dr_json(const struct doctor *d, int exit_code);
void dr_release(struct doctor *d);

/*
 * Capture what lib/ logs (one line per event on stderr) while a check runs,
 * at level verbose: dr_capture_begin, the calls, dr_capture_end gives the
 * lines up to that level without "kl-doctor: <level>: " (new string, "" when none;
 * NULL when out of memory), one a line, and restores stderr.
 */
struct dr_capture {
	int saved_fd, saved_verbose;
	int want;			/* the most verbose level kept */
	void *tmp;
};
int dr_capture_begin(struct dr_capture *c, int verbose);
char *dr_capture_end(struct dr_capture *c);
/* The lines of s as one line, "; " between them (s is taken; NULL stays NULL). */
char *dr_oneline(char *s);

/* local.c: each adds its checks. dr_config returns KL_OK or KL_PERM (configuration error). */
int dr_config(struct doctor *d);
void dr_tpm(struct doctor *d);
void dr_logs(struct doctor *d);
void dr_pull_agent(struct doctor *d);

/* net.c */
void dr_verifier(struct doctor *d);
void dr_registrar(struct doctor *d);
void dr_liveness(struct doctor *d);

/* bundle.c: KL_OK, or KL_PERM/KL_TEMP after one error line. */
int dr_bundle(struct doctor *d, const char *path, const char *text, const char *json);

#endif
