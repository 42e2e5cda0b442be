/*
 * test_core: driver for the core lib modules (kl_json, kl_file, kl_util, kl_log),
 * called by tests/bats/core.bats.
 *
 *   test_core json-read [MAX]         read stdin as a kl document, write it back
 *   test_core atomic PATH TEXT        kl_file_write_atomic
 *   test_core replace PATH TEXT       kl_file_replace_mode, 0644
 *   test_core read PATH MAX           kl_file_read, print the content
 *   test_core b64enc HEX | b64dec B64 | hexdec HEX
 *   test_core time-parse S | time-format EPOCH | btime FILE
 *   test_core uuid S | uuidgen
 *   test_core sanitize TEXT CAP
 *   test_core wipe-json               exercise the wiping jansson allocator
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_crypto.h"
#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

static int
usage(void)
{
	fprintf(stderr, "usage: test_core CMD ARGS\n");
	return KL_PERM;
}

int
main(int argc, char *argv[])
{
	const char *cmd = argc > 1 ? argv[1] : "";

	kl_log_init("test_core");
	if (!strcmp(cmd, "json-read")) {
		json_t *doc;
		int rc;

		kl_json_use_wiping_allocator();		/* as every program does */
		rc = kl_json_read_stdin(argc > 2 ? strtoul(argv[2], NULL, 10) : 0, &doc);

		if (rc != KL_OK)
			return rc;
		rc = kl_json_write_stdout(doc);
		json_decref(doc);
		return rc;
	}
	if (!strcmp(cmd, "atomic") && argc == 4)
		return kl_file_write_atomic(argv[2], argv[3], strlen(argv[3]));
	if (!strcmp(cmd, "replace") && argc == 4)
		return kl_file_replace_mode(argv[2], argv[3], strlen(argv[3]), 0644);
	if (!strcmp(cmd, "read") && argc == 4) {
		char *buf;
		size_t len;
		int rc = kl_file_read(argv[2], strtoul(argv[3], NULL, 10), 0, &buf, &len);

		if (rc == KL_OK) {
			fwrite(buf, 1, len, stdout);
			free(buf);
		}
		return rc;
	}
	if (!strcmp(cmd, "b64enc") && argc == 3) {
		unsigned char *b;
		size_t n;
		char *s;

		if (kl_hex_decode(argv[2], &b, &n) != 0)
			return KL_PERM;
		s = kl_b64_encode(b, n);
		printf("%s\n", s);
		free(s);
		free(b);
		return KL_OK;
	}
	if ((!strcmp(cmd, "b64dec") || !strcmp(cmd, "hexdec")) && argc == 3) {
		unsigned char *b;
		size_t n;
		char *s;

		if ((cmd[0] == 'b' ? kl_b64_decode(argv[2], &b, &n) : kl_hex_decode(argv[2], &b, &n)) != 0)
			return kl_fail(KL_PERM, "invalid %s", cmd[0] == 'b' ? "base64" : "hex");
		s = kl_hex_encode(b, n);
		printf("%s\n", s);
		free(s);
		free(b);
		return KL_OK;
	}
	if (!strcmp(cmd, "time-parse") && argc == 3) {
		time_t t;

		if (kl_time_parse(argv[2], &t) != 0)
			return kl_fail(KL_PERM, "invalid time");
		printf("%lld\n", (long long)t);
		return KL_OK;
	}
	if (!strcmp(cmd, "time-format") && argc == 3) {
		char out[32];

		kl_time_format((time_t)strtoll(argv[2], NULL, 10), out);
		printf("%s\n", out);
		return KL_OK;
	}
	if (!strcmp(cmd, "btime") && argc == 3) {
		time_t t;

		if (kl_boot_time(argv[2], &t) != 0)
			return kl_fail(KL_PERM, "no btime");
		printf("%lld\n", (long long)t);
		return KL_OK;
	}
	if (!strcmp(cmd, "uuid") && argc == 3)
		return kl_uuid_valid(argv[2]) ? KL_OK : KL_REFUSED;
	if (!strcmp(cmd, "uuidgen")) {
		char u[37];

		if (kl_crypto_random_uuid(u) != 0)
			return KL_TEMP;
		printf("%s\n", u);
		return KL_OK;
	}
	if (!strcmp(cmd, "sanitize") && argc == 4) {
		char out[256];
		size_t cap = strtoul(argv[3], NULL, 10);

		kl_log_sanitize(out, cap < sizeof(out) ? cap : sizeof(out), argv[2], strlen(argv[2]));
		printf("%s\n", out);
		return KL_OK;
	}
	if (!strcmp(cmd, "wipe-json")) {
		json_t *j;
		char *s;

		kl_json_use_wiping_allocator();
		j = json_pack("{s:s,s:[i,i]}", "token", "secret", "a", 1, 2);
		s = json_dumps(j, JSON_COMPACT);
		printf("%s\n", s);
		kl_json_free(s);	/* json_dumps uses the jansson allocator */
		json_decref(j);
		return KL_OK;
	}
	return usage();
}
