/* kl_token.c - see kl_token.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_token.h"
#include "kl_util.h"
#include "kl_banned.h"

#define TOKEN_FILE_MAX 4096

int
kl_token_usable(const json_t *ses, const char *url, const char *agent_id)
{
	const char *tok = kl_json_str(ses, "token"), *u = kl_json_str(ses, "verifier_url");
	const char *aid = kl_json_str(ses, "agent_id"), *exp = kl_json_str(ses, "expires_at");
	time_t t;

	if (!tok || !u || !aid || !exp || strcmp(u, url) || strcmp(aid, agent_id))
		return 0;
	return kl_time_parse(exp, &t) == 0 && t > time(NULL) + KL_TOKEN_MARGIN;
}

/* The file's session member (new reference), or NULL when absent or unreadable. */
static json_t *
read_file(const char *path, int *present)
{
	char *text = NULL;
	size_t len = 0;
	json_t *ses;

	*present = 0;
	if (kl_file_read(path, TOKEN_FILE_MAX, 1, &text, &len) != KL_OK || text == NULL)
		return NULL;
	*present = 1;
	/* Not kl_json_parse: its error line could quote the token. */
	ses = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (ses != NULL && !json_is_object(ses)) {
		json_decref(ses);
		ses = NULL;
	}
	explicit_bzero(text, len);
	free(text);
	return ses;
}

static void
remove_file(const char *path, const char *why)
{
	if (unlink(path) == 0)
		kl_info("%s: dropped the kept session token: %s", path, why);
	else if (errno != ENOENT)
		kl_warn("%s: cannot remove: %s", path, strerror(errno));
}

void
kl_token_load(const struct kl_config *cfg, const char *url, const char *agent_id, json_t **ses)
{
	char *path = kl_config_path(cfg, KL_TOKEN_FILE, NULL);
	int present;

	*ses = NULL;
	if (path == NULL)
		return;
	*ses = read_file(path, &present);
	if (*ses != NULL && !kl_token_usable(*ses, url, agent_id)) {
		json_decref(*ses);
		*ses = NULL;
		remove_file(path, "expiring, or for another verifier or agent");
	} else if (*ses == NULL && present) {
		remove_file(path, "not a session");
	}
	free(path);
}

void
kl_token_save(const struct kl_config *cfg, const json_t *ses)
{
	char *path = kl_config_path(cfg, KL_TOKEN_FILE, NULL);
	size_t len = 0;
	char *text = kl_json_dump(ses, &len);

	if (path == NULL || text == NULL)
		kl_warn("out of memory: the session token is not kept");
	else if (kl_file_mkdirs(cfg->keylime_dir) != KL_OK ||
	    kl_file_write_atomic(path, text, len) != KL_OK)
		kl_warn("%s: the session token is not kept: the next run authenticates again", path);
	if (text != NULL) {
		explicit_bzero(text, len);
		free(text);
	}
	free(path);
}

void
kl_token_drop(const struct kl_config *cfg, const char *token)
{
	char *path = kl_config_path(cfg, KL_TOKEN_FILE, NULL);
	const char *kept;
	json_t *ses;
	int present;

	if (path == NULL)
		return;
	ses = read_file(path, &present);
	kept = kl_json_str(ses, "token");
	if (present && (kept == NULL || token == NULL || strcmp(kept, token) == 0))
		remove_file(path, "the verifier refused it");
	json_decref(ses);
	free(path);
}
