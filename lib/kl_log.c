/* kl_log.c - see kl_log.h. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

KL_LOG_FN(kl_err, "error", KL_LOG_ERROR)
KL_LOG_FN(kl_warn, "warning", KL_LOG_WARN)
KL_LOG_FN(kl_notice, "notice", KL_LOG_NOTICE)
KL_LOG_FN(kl_info, "info", KL_LOG_INFO)
KL_LOG_FN(kl_debug, "debug", KL_LOG_DEBUG)

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

int
kl_log_level(const char *name, size_t len, int *level)
{
	static const struct { const char *name; int level; } map[] = {
		{ "off", KL_LOG_ERROR }, { "error", KL_LOG_ERROR }, { "warn", KL_LOG_WARN },
		{ "notice", KL_LOG_NOTICE }, { "info", KL_LOG_INFO }, { "debug", KL_LOG_DEBUG },
		{ "trace", KL_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].name) == len && strncasecmp(map[i].name, name, len) == 0) {
			*level = map[i].level;
			return 0;
		}
	return -1;
}

/* Does an env_logger target (a prefix match there) name upstream's code? */
static bool
upstream_target(const char *t, size_t len)
{
	static const char agent[] = "keylime_push_model_agent";

	return (len <= sizeof(agent) - 1 && strncmp(t, agent, len) == 0) ||
	    (len >= 7 && strncmp(t, "keylime", 7) == 0);
}

int
kl_log_rust_log(const char *spec, int *level)
{
	int bare = -100, ours = -100, l;
	const char *p = spec, *end = spec + strcspn(spec, "/");

	while (p < end) {
		const char *d = p, *dend = memchr(p, ',', (size_t)(end - p));
		const char *eq, *lv, *tend;
		char shown[64];

		dend = dend ? dend : end;
		p = dend + 1;
		while (d < dend && *d == ' ')
			d++;
		while (dend > d && dend[-1] == ' ')
			dend--;
		if (d == dend)
			continue;
		eq = memchr(d, '=', (size_t)(dend - d));
		lv = eq ? eq + 1 : dend;
		tend = eq ? eq : dend;
		while (tend > d && tend[-1] == ' ')
			tend--;
		while (lv < dend && *lv == ' ')
			lv++;
		if (eq == NULL && kl_log_level(d, (size_t)(dend - d), &l) == 0)
			bare = l > bare ? l : bare;
		else if (eq == NULL && upstream_target(d, (size_t)(dend - d)))
			ours = KL_LOG_DEBUG;	/* a target alone: all its levels */
		else if (eq != NULL && kl_log_level(lv, (size_t)(dend - lv), &l) != 0) {
			kl_log_sanitize(shown, sizeof(shown), d, (size_t)(dend - d));
			kl_warn("RUST_LOG: \"%s\": not a level (error, warn, info, debug, trace): "
			    "skipped", shown);
		} else if (eq != NULL && upstream_target(d, (size_t)(tend - d)))
			ours = l > ours ? l : ours;
	}
	l = ours != -100 ? ours : bare;
	if (l == -100)
		return -1;
	*level = l;
	return 0;
}
