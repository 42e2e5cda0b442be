/*
 * kl_uefi.c - see kl_uefi.h.
 *
 * The parser walks the log with a cursor that refuses to move past the end:
 * every field is taken through need(), so no length in the log can make it
 * read outside the buffer. Field names follow the TCG PC Client Platform
 * Firmware Profile (section 10, "Event Logging").
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_log.h"
#include "kl_rc.h"
#include "kl_file.h"
#include "kl_uefi.h"
#include "kl_banned.h"

#define EV_NO_ACTION 0x3u
#define SHA1_SIZE 20
#define MAX_ALGS 16		/* TPMs implement a handful of hash algorithms */
#define MAX_DIGEST 64		/* the largest hash: SHA-512, SHA3-512 */

static const char SPEC_ID_03[16] = "Spec ID Event03";	/* NUL-padded to 16 */

struct cursor {
	const unsigned char *buf;
	size_t len, off;
	const char *path;
};

/* The digest sizes declared by the Spec ID event. */
struct algs {
	unsigned n;
	uint16_t id[MAX_ALGS];
	uint16_t size[MAX_ALGS];
};

/* kl_uefi_probe: failures are warnings ending in this, not errors. */
static const char *demoted;

static int ufail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* kl_fail, or a warning while kl_uefi_probe runs. */
static int
ufail(int rc, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (demoted)
		kl_warn("%s%s", msg, demoted);
	else
		kl_err("%s", msg);
	return rc;
}

static int
bad(const struct cursor *c, size_t off, const char *what)
{
	return ufail(KL_PERM, "UEFI log %s: offset %zu: %s", c->path, off, what);
}

/* Are n more bytes there? If not, log "truncated <field>". */
static int
need(const struct cursor *c, size_t n, const char *field)
{
	char what[128];

	if (c->len - c->off >= n)
		return KL_OK;
	snprintf(what, sizeof(what), "truncated %s (%zu bytes left, %zu needed)",
	    field, c->len - c->off, n);
	return bad(c, c->off, what);
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t
get_u32(struct cursor *c)
{
	c->off += 4;
	return le32(c->buf + c->off - 4);
}

static uint16_t
get_u16(struct cursor *c)
{
	const unsigned char *p = c->buf + c->off;

	c->off += 2;
	return (uint16_t)(p[0] | p[1] << 8);
}

/* eventSize u32 and the event data after it. */
static int
skip_event_data(struct cursor *c)
{
	size_t at = c->off;
	uint32_t size;
	int rc;

	if ((rc = need(c, 4, "eventSize")) != KL_OK)
		return rc;
	size = get_u32(c);
	if (c->len - c->off < size) {
		char what[128];

		snprintf(what, sizeof(what), "event data of %u bytes runs past the end (%zu bytes left)",
		    size, c->len - c->off);
		return bad(c, at, what);
	}
	c->off += size;
	return KL_OK;
}

/* The first event's data starts after pcrIndex, eventType, digest, eventSize. */
#define FIRST_DATA (8 + SHA1_SIZE + 4)

/* Is the first event, buf[0, end), a Spec ID Event03 (a crypto-agile log)? */
static int
is_spec_id03(const unsigned char *buf, size_t end)
{
	return le32(buf) == 0 && le32(buf + 4) == EV_NO_ACTION &&
	    end - FIRST_DATA >= sizeof(SPEC_ID_03) &&
	    memcmp(buf + FIRST_DATA, SPEC_ID_03, sizeof(SPEC_ID_03)) == 0;
}

/* One TCG_PCR_EVENT: the SHA-1 format. */
static int
legacy_event(struct cursor *c)
{
	int rc;

	if ((rc = need(c, 8 + SHA1_SIZE, "event header")) != KL_OK)
		return rc;
	c->off += 8 + SHA1_SIZE;	/* pcrIndex, eventType, digest */
	return skip_event_data(c);
}

/*
 * The TCG_EfiSpecIDEvent in the first event's data [c->off, end):
 * signature[16], platformClass u32, specVersionMinor, specVersionMajor,
 * specErrata, uintnSize (u8 each), numberOfAlgorithms u32,
 * digestSizes[] (algorithmId u16, digestSize u16), vendorInfoSize u8, vendorInfo.
 */
static int
spec_id_event(struct cursor *c, size_t end, struct algs *a)
{
	struct cursor d = *c;	/* bounded by the event data, not the log */
	char what[128];
	uint32_t n;
	size_t at;
	int rc;

	d.len = end;
	if ((rc = need(&d, 16 + 4 + 4 + 4, "Spec ID event")) != KL_OK)
		return rc;
	d.off += 16 + 4 + 4;
	at = d.off;
	n = get_u32(&d);
	if (n == 0 || n > MAX_ALGS) {
		snprintf(what, sizeof(what), "Spec ID event: %u digest algorithms (1 to %d expected)",
		    n, MAX_ALGS);
		return bad(c, at, what);
	}
	if ((rc = need(&d, 4 * (size_t)n, "Spec ID event digest sizes")) != KL_OK)
		return rc;
	for (a->n = 0; a->n < n; a->n++) {
		at = d.off;
		a->id[a->n] = get_u16(&d);
		a->size[a->n] = get_u16(&d);
		for (unsigned i = 0; i < a->n; i++)
			if (a->id[i] == a->id[a->n]) {
				snprintf(what, sizeof(what), "Spec ID event: algorithm 0x%04x listed twice",
				    a->id[i]);
				return bad(c, at, what);
			}
		if (a->size[a->n] == 0 || a->size[a->n] > MAX_DIGEST) {
			snprintf(what, sizeof(what), "Spec ID event: digest size %u for algorithm 0x%04x",
			    a->size[a->n], a->id[a->n]);
			return bad(c, at, what);
		}
	}
	if ((rc = need(&d, 1, "Spec ID event vendorInfoSize")) != KL_OK)
		return rc;
	n = d.buf[d.off++];
	return need(&d, n, "Spec ID event vendorInfo");
}

/* One TCG_PCR_EVENT2, its digests sized by the Spec ID event. */
static int
agile_event(struct cursor *c, const struct algs *a)
{
	char what[128];
	uint32_t count;
	size_t at;
	int rc;

	if ((rc = need(c, 12, "event header")) != KL_OK)
		return rc;
	c->off += 8;		/* pcrIndex, eventType */
	at = c->off;
	count = get_u32(c);
	if (count > a->n) {
		snprintf(what, sizeof(what), "%u digests, but the Spec ID event declares %u algorithms",
		    count, a->n);
		return bad(c, at, what);
	}
	for (uint32_t i = 0; i < count; i++) {
		unsigned j;
		uint16_t id;

		if ((rc = need(c, 2, "digest algorithm")) != KL_OK)
			return rc;
		at = c->off;
		id = get_u16(c);
		for (j = 0; j < a->n && a->id[j] != id; j++)
			;
		if (j == a->n) {
			snprintf(what, sizeof(what), "digest algorithm 0x%04x is not in the Spec ID event", id);
			return bad(c, at, what);
		}
		if ((rc = need(c, a->size[j], "digest")) != KL_OK)
			return rc;
		c->off += a->size[j];
	}
	return skip_event_data(c);
}

int
kl_uefi_parse(const unsigned char *buf, size_t len, const char *path, uint64_t *event_count)
{
	struct cursor c = { buf, len, 0, path };
	struct algs a = { 0 };
	uint64_t n = 0;
	int rc, agile;

	*event_count = 0;
	if (len == 0)
		return bad(&c, 0, "empty log");
	/* Both formats start with a TCG_PCR_EVENT. */
	if ((rc = legacy_event(&c)) != KL_OK)
		return rc;
	agile = is_spec_id03(buf, c.off);
	if (agile) {
		struct cursor spec = { buf, len, FIRST_DATA, path };

		if ((rc = spec_id_event(&spec, c.off, &a)) != KL_OK)
			return rc;
	} else {
		n = 1;
	}
	while (c.off < len) {
		rc = agile ? agile_event(&c, &a) : legacy_event(&c);
		if (rc != KL_OK)
			return rc;
		n++;
	}
	*event_count = n;
	return KL_OK;
}

int
kl_uefi_read(const char *path, size_t max_bytes, unsigned char **buf, size_t *len,
    uint64_t *event_count)
{
	size_t cap = 65536, got = 0;
	unsigned char *b = NULL;
	int fd, rc = KL_OK;

	*buf = NULL;
	*len = 0;
	*event_count = 0;
	if (max_bytes == 0)
		max_bytes = KL_UEFI_LOG_MAX;
	if ((fd = kl_file_open_log(path, "KL_MEASUREDBOOT_ML_FD")) < 0)
		return ufail(errno == EIO ? KL_TEMP : KL_PERM, "UEFI log %s: %s", path, strerror(errno));
	if ((b = malloc(cap)) == NULL) {
		close(fd);
		return ufail(KL_TEMP, "UEFI log %s: out of memory", path);
	}
	for (;;) {
		ssize_t r;

		if (got == cap) {
			unsigned char *nb = realloc(b, cap * 2);

			if (nb == NULL) {
				rc = ufail(KL_TEMP, "UEFI log %s: out of memory", path);
				break;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = ufail(errno == EIO ? KL_TEMP : KL_PERM, "UEFI log %s: read: %s",
			    path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > max_bytes) {
			rc = ufail(KL_PERM, "UEFI log %s: larger than %zu bytes", path, max_bytes);
			break;
		}
	}
	close(fd);
	if (rc == KL_OK)
		rc = kl_uefi_parse(b, got, path, event_count);
	if (rc != KL_OK) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = got;
	return KL_OK;
}

int
kl_uefi_probe(const char *path, const char *suffix, uint64_t *event_count)
{
	unsigned char *buf = NULL;
	size_t len;
	int rc;

	demoted = suffix;
	rc = kl_uefi_read(path, 0, &buf, &len, event_count);
	demoted = NULL;
	free(buf);
	return rc;
}
