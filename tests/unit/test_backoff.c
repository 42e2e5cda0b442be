/*
 * test_backoff - drive lib/kl_backoff.c from tests/bats/kl-agent.bats:
 *   cap INITIAL MAX N            print kl_backoff_cap_ms
 *   delay INITIAL MAX N R        print kl_backoff_delay_ms with random value R
 *   sample INITIAL MAX N COUNT   print COUNT delays drawn with kl_crypto_random_u64
 *   sched INTERVAL HINT...       feed kl_sched_next one reply at a time (HINT
 *                                "null": the reply lacked it); print
 *                                "<seconds> <why>" per reply
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_backoff.h"
#include "kl_log.h"
#include "kl_banned.h"

static long
num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "test_backoff: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

static unsigned long long
unum(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "test_backoff: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

int
main(int argc, char *argv[])
{
	kl_log_init("test_backoff");
	if (argc == 5 && strcmp(argv[1], "cap") == 0) {
		printf("%ld\n", kl_backoff_cap_ms(num(argv[2]), num(argv[3]), (unsigned)num(argv[4])));
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "delay") == 0) {
		printf("%ld\n", kl_backoff_delay_ms(num(argv[2]), num(argv[3]),
		    (unsigned)num(argv[4]), (uint64_t)unum(argv[5])));
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "sample") == 0) {
		for (long i = 0; i < num(argv[5]); i++) {
			uint64_t r;

			if (kl_crypto_random_u64(&r) != 0)
				return 1;
			printf("%ld\n", kl_backoff_delay_ms(num(argv[2]), num(argv[3]),
			    (unsigned)num(argv[4]), r));
		}
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "sched") == 0) {
		struct kl_sched s;

		kl_sched_init(&s);
		for (int i = 3; i < argc; i++) {
			enum kl_sched_why why;
			int has = strcmp(argv[i], "null") != 0;
			long v = kl_sched_next(&s, has, has ? num(argv[i]) : 0, num(argv[2]), &why);

			printf("%ld %s\n", v, kl_sched_why_name(why));
		}
		return 0;
	}
	fprintf(stderr, "usage: test_backoff cap|delay|sample|sched ...\n");
	return 2;
}
