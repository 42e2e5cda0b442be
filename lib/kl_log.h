/*
 * kl_log.h - one line per event on stderr: "kl-<prog>: <level>: <what>: <where>".
 *
 * kl_verbose, one of KL_LOG_*: the default (0) prints errors, warnings and
 * notices; info (1, --verbose) adds info lines, debug (2, --verbose twice or
 * --log-level debug) debug lines; warn (-1) drops notices, error (-2) keeps
 * only errors. Errors are always printed.
 * No level ever prints a secret: callers never pass tokens or auth values,
 * and kl_log_redact() is there for text that came from a peer.
 */
#ifndef KL_LOG_H
#define KL_LOG_H

#include <stddef.h>

enum {
	KL_LOG_ERROR = -2, KL_LOG_WARN = -1, KL_LOG_NOTICE = 0, KL_LOG_INFO = 1, KL_LOG_DEBUG = 2,
};

extern int kl_verbose;
extern const char *kl_progname;

void kl_log_init(const char *progname);

void kl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed at the default level and above: the one line a successful step may say (the agent id). */
void kl_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kl_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kl_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* kl_err() and return rc: "return kl_fail(KL_PERM, "stdin:%d:%d: %s", ...);" */
int kl_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Copy at most cap-1 bytes of untrusted text into out for a log line:
 * non-printable bytes become '?', and long text is cut with "...".
 */
void kl_log_sanitize(char *out, size_t cap, const char *in, size_t len);

/*
 * A level name (error, warn, notice, info, debug, trace; any case) -> KL_LOG_*
 * in *level: 0, or -1 when name is none. trace is debug: kl has nothing finer.
 * "off" is error: kl's one error line is never silenced.
 */
int kl_log_level(const char *name, size_t len, int *level);

/*
 * RUST_LOG, upstream's logging knob (env_logger syntax: comma-separated
 * "level", "target" or "target=level" directives, an optional "/regex" at the
 * end, ignored): the most verbose level of the directives whose target is
 * upstream's (a prefix of "keylime_push_model_agent", or starting with
 * "keylime"; a target without a level means all of them: debug); when none
 * names such a target, the bare level. Returns 0 with *level set, or -1
 * when no directive gives a level (kl's default applies). A directive with a
 * bad level is warned about and skipped, as env_logger does.
 */
int kl_log_rust_log(const char *spec, int *level);

#endif
