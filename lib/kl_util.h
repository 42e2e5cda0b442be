/*
 * kl_util.h - encodings and times that every step uses.
 */
#ifndef KL_UTIL_H
#define KL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Standard base64 with padding, no line breaks. Returns a new string (free()). */
char *kl_b64_encode(const void *buf, size_t len);

/*
 * Strict standard base64 (padding required, no whitespace). *out is a new
 * buffer (free()), *len its size. Returns 0, or -1 on invalid input.
 */
int kl_b64_decode(const char *s, unsigned char **out, size_t *len);

/* Lowercase hex into a new string (free()). */
char *kl_hex_encode(const void *buf, size_t len);
/* Hex (either case) into a new buffer. Returns 0 or -1. */
int kl_hex_decode(const char *s, unsigned char **out, size_t *len);

/* "YYYY-MM-DDTHH:MM:SSZ" for t (UTC) into out (at least 21 bytes). */
void kl_time_format(time_t t, char out[32]);
/*
 * RFC 3339 in UTC or with an offset ("...Z", "...+00:00", fractional seconds
 * allowed, as Python's isoformat() writes). Returns 0 and *t, or -1.
 */
int kl_time_parse(const char *s, time_t *t);

/* The kernel's boot time ("btime" in /proc/stat, or path when not NULL). Returns 0 or -1. */
int kl_boot_time(const char *proc_stat_path, time_t *t);

/* UUID in canonical form (8-4-4-4-12 hex)? Returns 1 if so. */
int kl_uuid_valid(const char *s);

/* Wipe and free a secret buffer. */
void kl_secret_free(void *p, size_t len);

/* Monotonic milliseconds. */
uint64_t kl_now_ms(void);

/*
 * Remove the userinfo (user:password@) of every URL in the text s, in
 * place: it is a secret, and not ours to print. kl_log applies it to every
 * line, so no caller has to remember.
 */
void kl_url_redact(char *s);

#endif
