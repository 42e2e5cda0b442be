/*
 * kl_log.h - one line per event on stderr: "kl-<prog>: <level>: <what>: <where>".
 *
 * kl_verbose: 0 prints errors and warnings, 1 (-v) adds info, 2 (-vv) debug.
 * No level ever prints a secret: callers never pass tokens or auth values,
 * and kl_log_redact() is there for text that came from a peer.
 */
#ifndef KL_LOG_H
#define KL_LOG_H

#include <stddef.h>

extern int kl_verbose;
extern const char *kl_progname;

void kl_log_init(const char *progname);

void kl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Printed at every level: the one line a successful step may say (e.g. the agent id). */
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

#endif
