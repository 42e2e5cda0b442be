/*
 * kl-doctor: checks what an attesting machine needs, read-only: it never
 * registers, never attests, never writes a kl state file (docs/kl-doctor.md,
 * man/kl-doctor.1). One line per check (ok / warn / fail / skip, what was
 * found, a hint), then a summary; --json prints the same as one document;
 * --bundle FILE writes a support bundle (tar.gz, 0600) without secrets.
 *
 * Exit: 0 no check failed (warnings allowed); 1 a check failed; 100 usage or
 * configuration error (the configuration check says which).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doctor.h"
#include "kl_cli.h"
#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_token.h"	/* KL_TOKEN_FILE only */
#include "kl_banned.h"

#define TOKEN_FILE_MAX (1u << 20)

static bool json_out;
static const char *bundle_path, *token_file;

static const struct kl_cli_opt own[] = {
	KL_CLI_FLAG("json", &json_out, "print the report as one JSON document"),
	KL_CLI_STR("bundle", "FILE", &bundle_path, "also write a support bundle (tar.gz, "
	    "mode 0600, secrets removed) to FILE"),
	KL_CLI_STR("token-file", "FILE", &token_file, "a bearer token, or a kl-session "
	    "document holding one, to read the agent's record at the verifier"),
	KL_CLI_END,
};
static const struct kl_cli cli = {
	.opts = own,
	.about = "Checks the configuration, the TPM, the logs, the verifier and the registrar;\n"
	    "registers nothing, attests nothing. Exit 0: no check failed; 1: one failed;\n"
	    "100: usage or configuration error.",
};

/* The token of a kl-session document, or the file's text; a secret. */
static int
read_token(struct doctor *d, const char *path)
{
	char *buf = NULL;
	size_t len = 0, n;
	json_t *doc;
	const char *t;
	int rc;

	if ((rc = kl_file_read(path, TOKEN_FILE_MAX, 0, &buf, &len)) != KL_OK)
		return rc;	/* logged */
	doc = json_loadb(buf, len, 0, NULL);
	t = kl_json_str(kl_json_obj(doc, "session"), "token");
	if (t == NULL)
		t = kl_json_str(doc, "token");	/* the file kl-session keeps (kl_token.h) */
	if (t != NULL) {
		d->token = strdup(t);
	} else {
		for (t = buf; *t == ' ' || *t == '\n' || *t == '\t' || *t == '\r'; t++)
			;
		n = strcspn(t, " \t\r\n");
		d->token = n ? strndup(t, n) : NULL;
	}
	json_decref(doc);
	kl_secret_free(buf, len);
	if (d->token == NULL)
		return kl_fail(KL_PERM, "--token-file %s: no token in it", path);
	return KL_OK;
}

/*
 * Without --token-file, the token kl-session keeps in keylime_dir, if there
 * is one: read only (never removed or refreshed here), and never a new
 * session -- kl-doctor must not cost the verifier a PoP.
 */
static void
kept_token(struct doctor *d)
{
	char *path;

	if (d->token != NULL || (path = kl_config_path(&d->cfg, KL_TOKEN_FILE, NULL)) == NULL)
		return;
	if (access(path, R_OK) == 0)
		(void)read_token(d, path);	/* a bad file: liveness is skipped */
	free(path);
}

/* Print the report; the bundle when asked. Returns the exit code. */
static int
report(struct doctor *d, int code)
{
	json_t *j = dr_json(d, code);
	char *text = dr_text(d), *js = j ? kl_json_dump_flags(j, JSON_INDENT(2), NULL) : NULL;
	int rc = code;

	if (text == NULL || js == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	fputs(json_out ? js : text, stdout);
	if (json_out)
		putchar('\n');
	if (fflush(stdout) != 0)
		rc = kl_fail(KL_TEMP, "stdout: write failed");
	if (bundle_path != NULL) {
		int brc = dr_bundle(d, bundle_path, text, js);

		if (brc != KL_OK)
			rc = brc;
	}
out:
	json_decref(j);
	free(text);
	free(js);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct doctor d;
	int rc;

	memset(&d, 0, sizeof(d));
	kl_prog_init("kl-doctor");
	rc = kl_cli_parse(&cli, argc, argv, &d.flags);
	if (rc == KL_CLI_DONE)
		return KL_OK;
	if (rc != KL_OK)
		return rc;
	if (token_file != NULL && (rc = read_token(&d, token_file)) != KL_OK)
		return rc;
	d.token_file = token_file;
	if ((rc = dr_config(&d)) == KL_OK) {
		kept_token(&d);
		dr_tpm(&d);
		dr_logs(&d);
		dr_pull_agent(&d);
		dr_verifier(&d);
		dr_registrar(&d);
		dr_liveness(&d);
		rc = dr_failed(&d) ? KL_REFUSED : KL_OK;
	}
	rc = report(&d, rc);
	dr_release(&d);
	return rc;
}
