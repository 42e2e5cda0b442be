/*
 * test_ima - drive lib/kl_ima from tests/bats/ima.bats and scripts/bench.
 *
 *	test_ima count LOG CKPT BOOT
 *		stdout: {"entries":N,"bytes_read":B,"usec":T,"maxrss_delta_kb":K}
 *	test_ima read LOG CKPT BOOT OFFSET MAX OUT
 *		the lines go to the file OUT, byte-exact;
 *		stdout: {"count":N,"len":L,"bytes_read":B,"usec":T,"maxrss_delta_kb":K}
 *
 * CKPT "-" means no checkpoint. bytes_read is kl_ima_bytes_read(): how much of
 * the log the call read. usec and maxrss_delta_kb time the call alone
 * (monotonic clock; growth of the peak RSS). Exits with the call's code.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kl_ima.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

#define USAGE "usage: test_ima count LOG CKPT BOOT | read LOG CKPT BOOT OFFSET MAX OUT"

struct probe {
	struct timespec t0;
	long rss0;
};

static long
maxrss_kb(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : 0;
}

static void
probe_start(struct probe *p)
{
	p->rss0 = maxrss_kb();
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
}

/* Append ,"bytes_read":B,"usec":T,"maxrss_delta_kb":K} and a newline. */
static void
probe_print(const struct probe *p)
{
	struct timespec t1;
	long long usec;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	usec = (t1.tv_sec - p->t0.tv_sec) * 1000000LL + (t1.tv_nsec - p->t0.tv_nsec) / 1000;
	printf(",\"bytes_read\":%" PRIu64 ",\"usec\":%lld,\"maxrss_delta_kb\":%ld}\n",
	    kl_ima_bytes_read(), usec, maxrss_kb() - p->rss0);
}

static int
number(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	*v = strtoull(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static int
do_read(const char *log, const char *ckpt, time_t boot, char **argv)
{
	uint64_t offset, max, count;
	struct probe p;
	char *entries;
	size_t len;
	FILE *f;
	int rc;

	if (number(argv[0], &offset) != 0 || number(argv[1], &max) != 0)
		return kl_fail(KL_PERM, "%s", USAGE);
	probe_start(&p);
	rc = kl_ima_read(log, ckpt, boot, offset, max, &entries, &len, &count);
	if (rc != KL_OK)
		return rc;
	printf("{\"count\":%" PRIu64 ",\"len\":%zu", count, len);
	probe_print(&p);
	if ((f = fopen(argv[2], "wb")) == NULL ||
	    fwrite(entries, 1, len, f) != len || fclose(f) != 0)
		rc = kl_fail(KL_TEMP, "%s: cannot write", argv[2]);
	free(entries);
	return rc;
}

int
main(int argc, char *argv[])
{
	const char *log, *ckpt;
	uint64_t boot, n;
	struct probe p;
	int rc;

	kl_log_init("test_ima");
	if (argc < 5 || number(argv[4], &boot) != 0)
		return kl_fail(KL_PERM, "%s", USAGE);
	log = argv[2];
	ckpt = strcmp(argv[3], "-") == 0 ? NULL : argv[3];
	if (strcmp(argv[1], "count") == 0 && argc == 5) {
		probe_start(&p);
		if ((rc = kl_ima_count(log, ckpt, (time_t)boot, &n)) == KL_OK) {
			printf("{\"entries\":%" PRIu64, n);
			probe_print(&p);
		}
		return rc;
	}
	if (strcmp(argv[1], "read") == 0 && argc == 8)
		return do_read(log, ckpt, (time_t)boot, argv + 5);
	return kl_fail(KL_PERM, "%s", USAGE);
}
