/*
 * toml: lib/kl_toml.c on any bytes, as a file (kl_toml_parse with positions,
 * every position read back with kl_toml_pos) and as one value alone (what an
 * environment variable holding a TOML array goes through).
 */
#include "fuzz.h"
#include "kl_toml.h"

/* kl_toml_pos on every key of every table of the position tree. */
static void
walk(const json_t *pos)
{
	const char *key;
	json_t *v;
	int line, kcol, vcol;

	json_object_foreach((json_t *)pos, key, v) {
		if (json_is_object(v))
			walk(v);
		else
			(void)kl_toml_pos(pos, key, &line, &kcol, &vcol);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *out = NULL, *pos = NULL;

	if (kl_toml_parse((const char *)data, size, "agent.conf", &out, &pos) == 0) {
		walk(pos);
		json_decref(out);
		json_decref(pos);
	}
	out = NULL;
	if (kl_toml_parse_value((const char *)data, size, "KEYLIME_AGENT_X", &out) == 0)
		json_decref(out);
	return 0;
}
