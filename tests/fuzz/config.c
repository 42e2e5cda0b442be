/*
 * config: the configuration layer (lib/kl_config.c) on a file: the input is
 * the file KEYLIME_AGENT_CONFIG names; kl_config_load reads, types and
 * range-checks its [agent] keys, then the derived values are computed.
 * No KEYLIME_* variable of the caller's environment takes part.
 */
#include "fuzz.h"
#include "kl_cli.h"
#include "kl_config.h"

extern char **environ;

/* Only KEYLIME_AGENT_CONFIG and KL_SYSCONFDIR (an empty directory) stay. */
static void
clean_env(const char *file)
{
	for (size_t i = 0; environ[i] != NULL;) {
		char name[256];
		size_t n = strcspn(environ[i], "=");

		if ((strncmp(environ[i], "KEYLIME", 7) == 0 || strncmp(environ[i], "KL_", 3) == 0 ||
		    strncmp(environ[i], "TCTI=", 5) == 0) && n < sizeof(name)) {
			memcpy(name, environ[i], n);
			name[n] = '\0';
			unsetenv(name);
			continue;
		}
		i++;
	}
	setenv("KEYLIME_AGENT_CONFIG", file, 1);
	setenv("KL_SYSCONFDIR", "/nonexistent-kl-fuzz", 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *file;
	struct kl_config cfg;
	struct kl_cli_flags flags = { 0 };

	if (file == NULL) {
		file = fuzz_path("agent.conf");
		clean_env(file);
	}
	fuzz_write(file, data, size);
	if (kl_config_load(&cfg, &flags) != 0)
		return 0;
	free(kl_config_verifier_ca(&cfg));
	free(kl_config_registrar_ca(&cfg));
	free(kl_config_agent_data(&cfg));
	free(kl_config_status_path(&cfg));
	free(kl_config_registrar_url(&cfg));
	free(kl_config_path(&cfg, cfg.ima_ml_path, NULL));
	(void)kl_config_api_prefix(&cfg);
	(void)kl_config_tcti(&cfg);
	kl_config_release(&cfg);
	return 0;
}
