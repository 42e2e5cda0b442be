/*
 * test_http.c - driver for tests/bats/http.bats: exercises lib/kl_http.c.
 *
 *   test_http [-v...] retry-after VALUE NOW_EPOCH   prints the seconds (or -1)
 *   test_http [-v...] status-class STATUS           prints the kl_rc class
 *   test_http [-v...] describe STATUS FILE [CAP]    prints kl_http_describe of FILE's bytes
 *   test_http [-v...] request METHOD URL [--ca FILE] [--insecure] [--accept-invalid-hostnames] [--require-tls]
 *       [--timeout MS] [--connect-timeout MS] [--max N] [--bearer-env VAR]
 *       [--body-file F] [--ctype T]
 *     sends one request and prints {"status","len","location","content_type",
 *     "retry_after","request_id","body"} (body null when not UTF-8); exits with
 *     kl_http_do's code.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_http.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

static const char usage[] =
    "usage: test_http [-v] retry-after VALUE NOW | status-class STATUS |\n"
    "       tls-class CURL_ERROR_TEXT |\n"
    "       describe STATUS FILE [CAP] | request METHOD URL [options]\n";

/* Read a whole file; *len its size. NULL on error. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *p;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL)
		return NULL;
	for (;;) {
		if (*len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if ((p = realloc(buf, cap)) == NULL)
				goto fail;
			buf = p;
		}
		n = fread(buf + *len, 1, cap - *len - 1, f);
		*len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	buf[*len] = '\0';
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static long
num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "test_http: not a number: %s\n", s);
		exit(KL_PERM);
	}
	return v;
}

static int
cmd_describe(int argc, char **argv)
{
	struct kl_http_resp r = { 0 };
	char out[1024];
	size_t cap = sizeof(out);

	if (argc < 2 || argc > 3) {
		fputs(usage, stderr);
		return KL_PERM;
	}
	r.status = num(argv[0]);
	if ((r.body = slurp(argv[1], &r.len)) == NULL) {
		perror(argv[1]);
		return KL_PERM;
	}
	if (argc == 3 && (cap = (size_t)num(argv[2])) > sizeof(out))
		cap = sizeof(out);
	kl_http_describe(&r, out, cap);
	printf("%s\n", cap ? out : "");
	free(r.body);
	return KL_OK;
}

static json_t *
str_or_null(const char *s, size_t len)
{
	json_t *j = s ? json_stringn(s, len) : NULL;

	return j ? j : json_null();
}

static int
cmd_request(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "accept-invalid-hostnames", no_argument, NULL, 'H' },
		{ "require-tls", no_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "connect-timeout", required_argument, NULL, 'C' },
		{ "max", required_argument, NULL, 'm' },
		{ "bearer-env", required_argument, NULL, 'b' },
		{ "body-file", required_argument, NULL, 'f' },
		{ "ctype", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct kl_http_opts o = { 0 };
	struct kl_http_req rq = { 0 };
	struct kl_http_resp resp = { 0 };
	char *body = NULL;
	json_t *j;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'v': kl_verbose++; break;
		case 'c': o.ca_file = optarg; break;
		case 'k': o.insecure = 1; break;
		case 'H': kl_http_tls_relax(&o, "URL", 0, 0, 1); break;
		case 'r': o.require_tls = 1; break;
		case 't': o.timeout_ms = num(optarg); break;
		case 'C': o.connect_timeout_ms = num(optarg); break;
		case 'm': o.max_response = (size_t)num(optarg); break;
		case 'b':
			if ((rq.bearer = getenv(optarg)) == NULL) {
				fprintf(stderr, "test_http: %s is not set\n", optarg);
				return KL_PERM;
			}
			break;
		case 'f':
			if ((body = slurp(optarg, &rq.body_len)) == NULL) {
				perror(optarg);
				return KL_PERM;
			}
			rq.body = body;
			break;
		case 'T': rq.content_type = optarg; break;
		default:
			fputs(usage, stderr);
			free(body);
			return KL_PERM;
		}
	}
	if (argc - optind != 2) {
		fputs(usage, stderr);
		free(body);
		return KL_PERM;
	}
	rq.method = argv[optind];
	rq.url = argv[optind + 1];

	if ((rc = kl_http_global_init()) != KL_OK) {
		free(body);
		return rc;
	}
	rc = kl_http_do(&o, &rq, &resp);
	if (rc == KL_OK) {
		j = json_pack("{s:I, s:I, s:o, s:o, s:I, s:s, s:o}",
		    "status", (json_int_t)resp.status,
		    "len", (json_int_t)resp.len,
		    "location", str_or_null(resp.location, resp.location ? strlen(resp.location) : 0),
		    "content_type", str_or_null(resp.content_type,
			resp.content_type ? strlen(resp.content_type) : 0),
		    "retry_after", (json_int_t)resp.retry_after,
		    "request_id", resp.request_id,
		    "body", str_or_null(resp.body, resp.len));
		if (j == NULL || json_dumpf(j, stdout, JSON_COMPACT) != 0 || puts("") == EOF)
			rc = KL_TEMP;
		json_decref(j);
	}
	kl_http_resp_release(&resp);
	free(body);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *cmd;

	kl_log_init("test_http");
	/* -v flags may come before the subcommand too. */
	while (argc > 1 && strncmp(argv[1], "-v", 2) == 0 && strspn(argv[1] + 1, "v") == strlen(argv[1]) - 1) {
		kl_verbose += (int)strlen(argv[1]) - 1;
		argv++;
		argc--;
	}
	if (argc < 2) {
		fputs(usage, stderr);
		return KL_PERM;
	}
	cmd = argv[1];
	if (strcmp(cmd, "retry-after") == 0 && argc == 4) {
		printf("%ld\n", kl_http_parse_retry_after(argv[2], (time_t)num(argv[3])));
		return KL_OK;
	}
	if (strcmp(cmd, "status-class") == 0 && argc == 3) {
		printf("%d\n", kl_http_status_class(num(argv[2])));
		return KL_OK;
	}
	if (strcmp(cmd, "tls-class") == 0 && argc == 3) {
		printf("%d\n", kl_http_tls_fail_class(argv[2]));
		return KL_OK;
	}
	if (strcmp(cmd, "describe") == 0)
		return cmd_describe(argc - 2, argv + 2);
	if (strcmp(cmd, "request") == 0)
		return cmd_request(argc - 1, argv + 1);
	fputs(usage, stderr);
	return KL_PERM;
}
