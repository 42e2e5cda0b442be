/*
 * test_akfile - drive lib/kl_akfile.c (tests/bats/tpm.bats, "akfile:" tests).
 *
 *   test_akfile write PATH [AGENT_ID]   save sample agent data ("ek-public" as the
 *                                       EK, "ak-public"/"ak-private" as the blobs)
 *   test_akfile read PATH               load it and print every field as JSON
 *   test_akfile read-missing PATH       load with missing_ok: {"present":bool}
 *   test_akfile matches PATH EKTEXT HASH SIG   {"matches":bool}
 * Exit status: the kl_rc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_akfile.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

static int
emit(json_t *j)
{
	int rc;

	if (j == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	rc = kl_json_write_stdout(j);
	json_decref(j);
	return rc;
}

static int
cmd_write(int argc, char **argv)
{
	static const unsigned char ek[] = "ek-public", pub[] = "ak-public", priv[] = "ak-private";
	struct kl_akfile f;
	int rc;

	if (argc < 1 || argc > 2)
		return kl_fail(KL_PERM, "usage: test_akfile write PATH [AGENT_ID]");
	kl_akfile_init(&f);
	if (argc == 2 && (f.agent_id = strdup(argv[1])) == NULL)
		return KL_TEMP;
	if ((rc = kl_akfile_set(&f, "rsa", ek, sizeof(ek) - 1, pub, sizeof(pub) - 1, priv,
	    sizeof(priv) - 1, "sha256", "rsassa", "rsa")) == KL_OK)
		rc = kl_akfile_save(&f, argv[0]);
	kl_akfile_release(&f);
	return rc;
}

static int
cmd_read(int argc, char **argv, int missing_ok)
{
	struct kl_akfile f;
	char *pub, *priv;
	json_t *out;
	int rc;

	if (argc != 1)
		return kl_fail(KL_PERM, "usage: test_akfile read PATH");
	if ((rc = kl_akfile_load(&f, argv[0], missing_ok)) != KL_OK)
		return rc;
	if (missing_ok) {
		out = json_pack("{s:b}", "present", f.ak_public != NULL);
		kl_akfile_release(&f);
		return emit(out);
	}
	pub = kl_b64_encode(f.ak_public, f.ak_public_len);
	priv = kl_b64_encode(f.ak_private, f.ak_private_len);
	out = json_pack("{s:s?,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "agent_id", f.agent_id,
	    "ek_algorithm", f.ek_algorithm, "ek_public_sha256", f.ek_public_sha256,
	    "ak_public", pub, "ak_private", priv, "hash_alg", f.hash_alg,
	    "signing_alg", f.signing_alg, "key_algorithm", f.key_algorithm);
	free(pub);
	free(priv);
	kl_akfile_release(&f);
	return emit(out);
}

static int
cmd_matches(int argc, char **argv)
{
	struct kl_akfile f;
	int rc, m;

	if (argc != 4)
		return kl_fail(KL_PERM, "usage: test_akfile matches PATH EKTEXT HASH SIG");
	if ((rc = kl_akfile_load(&f, argv[0], 0)) != KL_OK)
		return rc;
	m = kl_akfile_matches(&f, (const unsigned char *)argv[1], strlen(argv[1]), argv[2], argv[3]);
	kl_akfile_release(&f);
	return emit(json_pack("{s:b}", "matches", m));
}

int
main(int argc, char **argv)
{
	kl_log_init("test_akfile");
	if (argc >= 2 && strcmp(argv[1], "write") == 0)
		return cmd_write(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "read") == 0)
		return cmd_read(argc - 2, argv + 2, 0);
	if (argc >= 2 && strcmp(argv[1], "read-missing") == 0)
		return cmd_read(argc - 2, argv + 2, 1);
	if (argc >= 2 && strcmp(argv[1], "matches") == 0)
		return cmd_matches(argc - 2, argv + 2);
	return kl_fail(KL_PERM, "usage: test_akfile write|read|read-missing|matches ...");
}
