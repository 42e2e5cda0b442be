/*
 * kl_token.h - the session token kept between steps and runs, so that one
 * proof of possession serves every cycle while the token lasts (issue 10;
 * session creation costs the verifier a TPM proof check and is rate limited).
 *
 * The file is <keylime_dir>/kl-session.json (KL_TOKEN_FILE), mode 0600,
 * replaced atomically, holding the "session" member of docs/contract.md:
 *   {"verifier_url":..., "agent_id":..., "token":..., "session_id":...,
 *    "created_at":..., "expires_at":...}
 * kl-session writes it after a PoP and reads it when its input has no
 * session; kl-negotiate and kl-submit drop it when the verifier answers 401.
 * A file for another verifier or agent, near its expiry, or unreadable is
 * removed when read. The token is never logged.
 */
#ifndef KL_TOKEN_H
#define KL_TOKEN_H

#include <jansson.h>

#include "kl_config.h"

#define KL_TOKEN_FILE "kl-session.json"
#define KL_TOKEN_MARGIN 30	/* seconds a reused token must still be valid */

/*
 * May the session member ses be used for url and agent_id? 1 when it has a
 * token and expires_at is more than KL_TOKEN_MARGIN seconds away, else 0.
 */
int kl_token_usable(const json_t *ses, const char *url, const char *agent_id);

/*
 * The kept session for url and agent_id, as a new object (*ses), or *ses
 * NULL when there is none usable (an unusable file is removed).
 */
void kl_token_load(const struct kl_config *cfg, const char *url, const char *agent_id,
    json_t **ses);

/* Keep ses (a session member). A failure is a warning: the next run does a PoP. */
void kl_token_save(const struct kl_config *cfg, const json_t *ses);

/*
 * The verifier refused token (401): remove the kept session if it holds that
 * token (a stale document must not drop a newer token), or if it is unreadable.
 */
void kl_token_drop(const struct kl_config *cfg, const char *token);

#endif
