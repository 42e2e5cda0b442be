/*
 * test_toml: drive lib/kl_toml from tests/bats/toml.bats.
 *
 *   test_toml parse NAME     parse stdin (errors name NAME), print the tree
 *   test_toml pos NAME       parse stdin, print the position tree
 *   test_toml value NAME     parse stdin as one value, print it
 *   test_toml file PATH      parse a file (missing is an error), print the tree
 *   test_toml file-opt PATH  the same, but a missing file prints "null"
 *
 * Prints compact JSON and a newline on stdout; exits with the kl_toml code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_log.h"
#include "kl_rc.h"
#include "kl_toml.h"
#include "kl_banned.h"

static int
read_stdin(char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t r;

	if (buf == NULL)
		return -1;
	while ((r = read(STDIN_FILENO, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(buf, cap *= 2);

			if (nb == NULL) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
	}
	if (r < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int
print(const json_t *j)
{
	char *s;

	if (j == NULL) {
		puts("null");
		return KL_OK;
	}
	s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL)
		return KL_TEMP;
	puts(s);
	free(s);
	return KL_OK;
}

int
main(int argc, char *argv[])
{
	json_t *tree = NULL, *pos = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	kl_log_init("test_toml");
	if (argc != 3) {
		fprintf(stderr, "usage: test_toml parse|pos|value|file|file-opt NAME\n");
		return KL_PERM;
	}
	if (strcmp(argv[1], "file") == 0 || strcmp(argv[1], "file-opt") == 0) {
		rc = kl_toml_parse_file(argv[2], strcmp(argv[1], "file-opt") == 0, &tree, NULL);
		if (rc == KL_OK)
			rc = print(tree);
		json_decref(tree);
		return rc;
	}
	if (read_stdin(&buf, &len) != 0) {
		fprintf(stderr, "test_toml: cannot read stdin\n");
		return KL_TEMP;
	}
	if (strcmp(argv[1], "value") == 0)
		rc = kl_toml_parse_value(buf, len, argv[2], &tree);
	else
		rc = kl_toml_parse(buf, len, argv[2], &tree, &pos);
	if (rc == KL_OK)
		rc = print(strcmp(argv[1], "pos") == 0 ? pos : tree);
	json_decref(tree);
	json_decref(pos);
	free(buf);
	return rc;
}
