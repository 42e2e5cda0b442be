/*
 * kl_version.c - see kl_version.h.
 *
 * A program links only the lib modules it uses (Makefile, <prog>_LIB), and
 * reports only their libraries: the owners' version functions are weak
 * references here, so they are NULL in a program that does not link the
 * module (kl-agent links no TPM, HTTP or OpenSSL code), and kl_cli, which
 * every program links, does not drag those libraries in.
 */
#include <stdio.h>

#include "kl_crypto.h"
#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_tpm.h"
#include "kl_version.h"
#include "kl_version_gen.h"	/* KL_VERSION, written by the Makefile */
#include "kl_banned.h"

#pragma weak kl_json_version
#pragma weak kl_crypto_version
#pragma weak kl_http_version
#pragma weak kl_tpm_version

const char *
kl_version(void)
{
	return KL_VERSION;
}

void
kl_version_print(FILE *out, const char *note)
{
	const char *(*const owners[])(void) = {
		kl_json_version, kl_crypto_version, kl_http_version, kl_tpm_version,
	};

	fprintf(out, "%s %s\n", kl_progname, kl_version());
	for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]); i++)
		if (owners[i] != NULL)
			fprintf(out, "%s\n", owners[i]());
	if (note != NULL)
		fprintf(out, "%s\n", note);
	fflush(out);
}
