/* kl_log.c - see kl_log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

int kl_verbose;
const char *kl_progname = "kl";

void
kl_log_init(const char *progname)
{
	kl_progname = progname;
}

/*
 * Is stderr the journal? systemd sets JOURNAL_STREAM="<dev>:<inode>" of the
 * stream it connected; a match with fstat(2) (not only the variable, which a
 * child with redirected stderr inherits) means it is. Checked once.
 */
static int
stderr_is_journal(void)
{
	static int known = -1;
	const char *env;
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (known >= 0)
		return known;
	known = 0;
	env = getenv("JOURNAL_STREAM");
	if (env != NULL && sscanf(env, "%llu:%llu%n", &dev, &ino, &n) == 2 &&
	    env[n] == '\0' && fstat(2, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		known = 1;
	return known;
}

/* "<N>" syslog priority in front of a line for the journal (sd-daemon(3)). */
static const char *
journal_prefix(const char *level)
{
	static const struct { const char *level, *prefix; } map[] = {
		{ "error", "<3>" }, { "warning", "<4>" }, { "notice", "<5>" },
		{ "info", "<6>" }, { "debug", "<7>" },
	};

	if (!stderr_is_journal())
		return "";
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].level, level) == 0)
			return map[i].prefix;
	return "";
}

static void vlog(const char *level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
vlog(const char *level, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	n = snprintf(line, sizeof(line), "%s%s: %s: ", journal_prefix(level),
	    kl_progname, level);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	kl_url_redact(line + n);
	/* One event, one line: a newline inside a message would split it. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "%s\n", line);
}

#define KL_LOG_FN(name, level, min)			\
	void name(const char *fmt, ...)			\
	{						\
		va_list ap;				\
		if (kl_verbose < (min))			\
			return;				\
		va_start(ap, fmt);			\
		vlog(level, fmt, ap);			\
		va_end(ap);				\
	}

KL_LOG_FN(kl_err, "error", 0)
KL_LOG_FN(kl_warn, "warning", 0)
KL_LOG_FN(kl_notice, "notice", 0)
KL_LOG_FN(kl_info, "info", 1)
KL_LOG_FN(kl_debug, "debug", 2)

int
kl_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error", fmt, ap);
	va_end(ap);
	return rc;
}

void
kl_log_sanitize(char *out, size_t cap, const char *in, size_t len)
{
	size_t i, o = 0;

	if (cap == 0)
		return;
	for (i = 0; i < len && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < len && cap > 4) {
		o = o > cap - 4 ? cap - 4 : o;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}
