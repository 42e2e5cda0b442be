/* kl_util.c - see kl_util.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_util.h"
#include "kl_banned.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
kl_b64_encode(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i, o = 0;
	char *s;

	if ((s = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		s[o++] = b64[v >> 18];
		s[o++] = b64[(v >> 12) & 63];
		s[o++] = b64[(v >> 6) & 63];
		s[o++] = b64[v & 63];
	}
	if (i < len) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < len ? (unsigned)p[i + 1] << 8 : 0);
		s[o++] = b64[v >> 18];
		s[o++] = b64[(v >> 12) & 63];
		s[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		s[o++] = '=';
	}
	s[o] = '\0';
	return s;
}

static int
b64val(int c)
{
	const char *p;

	if (c == 0 || (p = strchr(b64, c)) == NULL)
		return -1;
	return (int)(p - b64);
}

int
kl_b64_decode(const char *s, unsigned char **out, size_t *len)
{
	size_t n = strlen(s), i, o = 0, pad = 0;
	unsigned char *b;

	if (n % 4 != 0)
		return -1;
	if (n >= 1 && s[n - 1] == '=')
		pad++;
	if (n >= 2 && s[n - 2] == '=')
		pad++;
	if ((b = malloc(n / 4 * 3 + 1)) == NULL)
		return -1;
	for (i = 0; i < n; i += 4) {
		int v[4];

		for (int k = 0; k < 4; k++) {
			if (i + (size_t)k >= n - pad) {
				v[k] = 0;
				continue;
			}
			if ((v[k] = b64val((unsigned char)s[i + k])) < 0) {
				free(b);
				return -1;
			}
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
		b[o++] = (unsigned char)(w >> 16);
		b[o++] = (unsigned char)(w >> 8);
		b[o++] = (unsigned char)w;
	}
	*out = b;
	*len = o - pad;
	return 0;
}

char *
kl_hex_encode(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	char *s = malloc(2 * len + 1);

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * len] = '\0';
	return s;
}

int
kl_hex_decode(const char *s, unsigned char **out, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *b;

	if (n % 2 != 0)
		return -1;
	if ((b = malloc(n / 2 + 1)) == NULL)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = isxdigit((unsigned char)s[2 * i]), lo = isxdigit((unsigned char)s[2 * i + 1]);
		char t[3] = { s[2 * i], s[2 * i + 1], 0 };

		if (!hi || !lo) {
			free(b);
			return -1;
		}
		b[i] = (unsigned char)strtoul(t, NULL, 16);
	}
	*out = b;
	*len = n / 2;
	return 0;
}

void
kl_time_format(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
kl_time_parse(const char *s, time_t *t)
{
	struct tm tm;
	const char *p;
	long off = 0;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh, mm;

		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
			return -1;
		off = sign * (hh * 3600L + mm * 60L);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	*t = timegm(&tm) - off;
	return 0;
}

int
kl_boot_time(const char *path, time_t *t)
{
	FILE *f = fopen(path ? path : "/proc/stat", "re");
	char line[512];
	int rc = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		long long v;

		if (sscanf(line, "btime %lld", &v) == 1 && v > 0) {
			*t = (time_t)v;
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int
kl_uuid_valid(const char *s)
{
	static const int dash[] = { 8, 13, 18, 23 };

	if (strlen(s) != 36)
		return 0;
	for (int i = 0, d = 0; i < 36; i++) {
		if (d < 4 && i == dash[d]) {
			if (s[i] != '-')
				return 0;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

void
kl_secret_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

uint64_t
kl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
kl_url_redact(char *s)
{
	char *p = s;

	while ((p = strstr(p, "://")) != NULL) {
		char *host = p + 3, *end = host + strcspn(host, "/?#\"' \t<>()[],;"), *at = NULL;

		for (char *q = host; q < end; q++)
			if (*q == '@')
				at = q;
		if (at != NULL)
			memmove(host, at + 1, strlen(at + 1) + 1);
		p = host;
	}
}
