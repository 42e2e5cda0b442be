/*
 * registration.c - the registration record (<keylime_dir>/kl-agent-registration.json):
 * the "agent" member kl-register wrote, and the configuration it was made
 * with. --once runs reuse it instead of registering every time; a changed
 * identity (uuid, registrar, TPM algorithms, AK file ...) registers again.
 * It holds no secret.
 */
#include <stdlib.h>

#include "agent.h"
#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

json_t *
agent_identity(const struct kl_config *c)
{
	char *registrar = kl_config_registrar_url(c);
	char *ak = kl_config_agent_data(c);
	json_t *id;

	id = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s?, s:s, s:I, s:s, s:s}",
	    "uuid", c->uuid, "registrar", registrar,
	    "tpm_encryption_alg", c->tpm_encryption_alg, "tpm_hash_alg", c->tpm_hash_alg,
	    "tpm_signing_alg", c->tpm_signing_alg, "ek_handle", c->ek_handle,
	    "agent_data_path", ak, "contact_ip", c->contact_ip,
	    "contact_port", (json_int_t)c->contact_port,
	    "registrar_api_versions", c->registrar_api_versions,
	    "tcti", kl_config_tcti(c));
	free(registrar);
	free(ak);
	return id;
}

void
agent_registered(struct agent *a)
{
	json_t *rec;
	size_t n;
	char *s;

	json_decref(a->identity);
	a->identity = agent_identity(&a->cfg);
	rec = json_pack("{s:O, s:O}", "identity", a->identity, "agent",
	    kl_json_obj(a->doc, "agent"));
	if (rec == NULL)
		return;
	if ((s = kl_json_dump(rec, &n)) != NULL) {
		s[n] = '\n';	/* over the NUL */
		kl_file_write_atomic(a->reg_path, s, n + 1);
		free(s);
	}
	json_decref(rec);
}

void
agent_load_registration(struct agent *a)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *rec = NULL, *id;

	if (kl_file_read(a->reg_path, 1u << 20, 1, &buf, &len) != KL_OK || buf == NULL)
		return;
	if (kl_json_parse(buf, len, a->reg_path, &rec) == KL_OK) {
		id = agent_identity(&a->cfg);
		if (json_equal(json_object_get(rec, "identity"), id) &&
		    kl_json_str(kl_json_obj(rec, "agent"), "id") != NULL) {
			json_object_set(a->doc, "agent", json_object_get(rec, "agent"));
			a->identity = id;
			id = NULL;
		} else {
			kl_info("%s: made with another configuration: registering again", a->reg_path);
		}
		json_decref(id);
	}
	json_decref(rec);
	free(buf);
}
