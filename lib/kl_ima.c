/*
 * kl_ima.c - see kl_ima.h.
 *
 * One pass reads the log from a known line start to EOF in 64 KiB chunks,
 * noting each complete line: it moves the checkpoint's end forward, adds an
 * index mark every KL_IMA_MARK_BYTES, and copies the lines the caller wants.
 * Everything else here decides where that pass may safely start.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "kl_file.h"
#include "kl_ima.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

#define CHUNK (64u << 10)
#define TAIL_MAX 64		/* bytes before "end" kept to recognise the log */
#define STALE (-1)		/* internal: the log does not match the checkpoint */

static uint64_t bytes_read;	/* see kl_ima_bytes_read() */

uint64_t
kl_ima_bytes_read(void)
{
	return bytes_read;
}

struct mark {
	uint64_t entry;		/* a line index ... */
	uint64_t byte;		/* ... and the offset where that line starts */
};

struct ckpt {
	struct mark *marks;	/* ascending; marks[0] is {0, 0} */
	size_t nmarks, cap;
	struct mark end;	/* lines and bytes up to the last '\n' seen */
	unsigned char tail[TAIL_MAX];	/* the bytes just before end.byte */
	size_t tail_len;
	uint64_t warned;	/* lines below this one were warned about (not UTF-8) */
	int dirty;		/* differs from the file: save it */
};

/* One pass over the log and what it collects. */
struct scan {
	int fd;
	const char *log;
	struct ckpt *ck;
	int collect;		/* 0: only count */
	uint64_t first;		/* collect lines from this index ... */
	uint64_t max;		/* ... at most this many (0: no cap) */
	char *out;		/* the collected lines (owned) */
	size_t len, cap;
	uint64_t count;
};

static int
errno_rc(int e)
{
	return (e == EIO || e == EINTR || e == EAGAIN || e == ENOMEM) ? KL_TEMP : KL_PERM;
}

static void
ckpt_reset(struct ckpt *ck)
{
	ck->nmarks = 1;		/* ckpt_init made room for it */
	ck->marks[0] = (struct mark){ 0, 0 };
	ck->end = (struct mark){ 0, 0 };
	ck->tail_len = 0;
	ck->warned = 0;
	ck->dirty = 1;
}

static int
ckpt_init(struct ckpt *ck)
{
	memset(ck, 0, sizeof(*ck));
	if ((ck->marks = malloc(16 * sizeof(*ck->marks))) == NULL)
		return KL_TEMP;
	ck->cap = 16;
	ckpt_reset(ck);
	return KL_OK;
}

static void
ckpt_release(struct ckpt *ck)
{
	free(ck->marks);
	ck->marks = NULL;
}

static int
ckpt_add_mark(struct ckpt *ck, uint64_t entry, uint64_t byte)
{
	if (ck->nmarks == ck->cap) {
		struct mark *m = realloc(ck->marks, 2 * ck->cap * sizeof(*m));

		if (m == NULL)
			return KL_TEMP;
		ck->marks = m;
		ck->cap *= 2;
	}
	ck->marks[ck->nmarks++] = (struct mark){ entry, byte };
	ck->dirty = 1;
	return KL_OK;
}

/* A non-negative JSON integer pair [a, b] into *m. Returns 0 or -1. */
static int
pair_get(json_t *j, struct mark *m)
{
	json_int_t a = -1, b = -1;

	if (json_unpack(j, "[II!]", &a, &b) != 0 || a < 0 || b < 0)
		return -1;
	m->entry = (uint64_t)a;
	m->byte = (uint64_t)b;
	return 0;
}

/*
 * Can line b.entry start at b.byte when line a.entry starts at a.byte?
 * Each line takes at least one byte, its '\n'. strict: b must be after a.
 */
static int
follows(const struct mark *b, const struct mark *a, int strict)
{
	if (b->entry < a->entry || b->byte < a->byte || (strict && b->entry == a->entry))
		return 0;
	return b->byte - a->byte >= b->entry - a->entry;
}

/*
 * Fill ck from the members of a parsed checkpoint. Returns NULL, or why they
 * do not make a well-formed one. The caller has compared boot_time and log.
 */
static const char *
ckpt_from_json(struct ckpt *ck, json_t *marks, json_t *end, const char *tail)
{
	unsigned char *t = NULL;
	size_t i, tlen;
	json_t *v;

	if (!json_is_array(marks))
		return "marks is not an array";
	ck->nmarks = 0;
	json_array_foreach(marks, i, v) {
		struct mark m;

		if (pair_get(v, &m) != 0)
			return "a mark is not [entry, byte]";
		if (i == 0 && (m.entry != 0 || m.byte != 0))
			return "the first mark is not [0, 0]";
		if (i > 0 && !follows(&m, &ck->marks[ck->nmarks - 1], 1))
			return "marks out of order";
		if (ckpt_add_mark(ck, m.entry, m.byte) != KL_OK)
			return "out of memory";
	}
	if (ck->nmarks == 0)
		return "no marks";
	if (pair_get(end, &ck->end) != 0)
		return "end is not [entries, bytes]";
	if (!follows(&ck->end, &ck->marks[ck->nmarks - 1], 0))
		return "end before the last mark";
	if (kl_hex_decode(tail, &t, &tlen) != 0)
		return "tail is not hex";
	if (tlen != (ck->end.byte < TAIL_MAX ? ck->end.byte : TAIL_MAX) ||
	    (tlen > 0 && t[tlen - 1] != '\n')) {
		free(t);
		return "tail does not end the last line";
	}
	memcpy(ck->tail, t, tlen);
	ck->tail_len = tlen;
	free(t);
	return NULL;
}

/*
 * Load the checkpoint at path into ck (left reset when it is missing or does
 * not belong to this boot and log). Never fails: a bad checkpoint only costs
 * a full read of the log.
 */
static void
ckpt_load(struct ckpt *ck, const char *path, const char *log, time_t boot_time)
{
	json_t *j = NULL, *marks, *end;
	const char *clog, *tail, *why = NULL;
	json_int_t version, boot, warned = 0;
	json_error_t e;
	char *buf = NULL;
	size_t len;
	int loaded = 0;

	if (kl_file_read(path, KL_IMA_CKPT_MAX, 1, &buf, &len) != KL_OK || buf == NULL)
		return;		/* missing, or kl_file_read said why */
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL)
		why = kl_json_error_text(&e);
	else if (json_unpack(j, "{s:I, s:I, s:s, s:o, s:o, s:s, s?I !}",
	    "version", &version, "boot_time", &boot, "log", &clog,
	    "marks", &marks, "end", &end, "tail", &tail, "warned", &warned) != 0 ||
	    version != 1 || warned < 0)
		why = "not a version 1 checkpoint";
	else if (boot != (json_int_t)boot_time)
		kl_info("IMA checkpoint %s: new boot; reading %s from the start", path, log);
	else if (strcmp(clog, log) != 0)
		kl_info("IMA checkpoint %s: made for %s; reading %s from the start", path, clog, log);
	else if ((why = ckpt_from_json(ck, marks, end, tail)) == NULL)
		loaded = 1;
	if (why != NULL)
		kl_warn("IMA checkpoint %s: %s; rebuilding it", path, why);
	if (loaded) {
		ck->warned = (uint64_t)warned;
		ck->dirty = 0;
	} else
		ckpt_reset(ck);
	json_decref(j);
	free(buf);
}

/*
 * Write ck to path. A checkpoint that cannot be saved costs only time on
 * the next run, so the caller goes on: kl_file_replace_mode has logged why.
 * It is a cache, so it is not fsynced (that was most of the per-cycle IMA
 * cost, 9-24 ms of wall): after a power loss an older checkpoint is still
 * checked against the log (boot time, tail bytes), and a broken one rebuilt.
 */
static void
ckpt_save(const struct ckpt *ck, const char *path, const char *log, time_t boot_time)
{
	json_t *marks = json_array(), *j = NULL;
	char *hex = kl_hex_encode(ck->tail, ck->tail_len), *text = NULL;
	size_t i;

	for (i = 0; marks != NULL && i < ck->nmarks; i++)
		if (json_array_append_new(marks, json_pack("[II]",
		    (json_int_t)ck->marks[i].entry, (json_int_t)ck->marks[i].byte)) != 0)
			break;
	/* "log" fails to pack if the path is not UTF-8. */
	if (marks != NULL && hex != NULL && i == ck->nmarks)
		j = json_pack("{s:i, s:I, s:s, s:O, s:[II], s:s, s:I}", "version", 1,
		    "boot_time", (json_int_t)boot_time, "log", log, "marks", marks,
		    "end", (json_int_t)ck->end.entry, (json_int_t)ck->end.byte, "tail", hex,
		    "warned", (json_int_t)ck->warned);
	if (j != NULL)
		text = kl_json_dump(j, NULL);
	if (text != NULL)
		(void)kl_file_replace_mode(path, text, strlen(text), 0600);
	else
		kl_warn("IMA checkpoint %s: cannot encode it; not saved", path);
	json_decref(marks);
	json_decref(j);
	free(text);
	free(hex);
}

/* Read up to n bytes at off; *got < n means EOF. Returns KL_OK or an error. */
static int
read_at(int fd, const char *log, uint64_t off, void *buf, size_t n, size_t *got)
{
	*got = 0;
	if (lseek(fd, (off_t)off, SEEK_SET) == (off_t)-1)
		return kl_fail(errno_rc(errno), "IMA log %s: seek: %s", log, strerror(errno));
	while (*got < n) {
		ssize_t r = read(fd, (char *)buf + *got, n - *got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kl_fail(errno_rc(errno), "IMA log %s: read: %s", log, strerror(errno));
		if (r == 0)
			break;
		*got += (size_t)r;
		bytes_read += (uint64_t)r;
	}
	return KL_OK;
}

/* Does the log still hold, just before end.byte, the bytes the checkpoint saw? */
static int
ckpt_matches(const struct ckpt *ck, int fd, const char *log, int *match)
{
	unsigned char buf[TAIL_MAX];
	size_t got;
	int rc;

	*match = 1;
	if (ck->end.byte == 0)
		return KL_OK;
	rc = read_at(fd, log, ck->end.byte - ck->tail_len, buf, ck->tail_len, &got);
	if (rc == KL_OK)
		*match = got == ck->tail_len && memcmp(buf, ck->tail, got) == 0;
	return rc;
}

static int
ckpt_take_tail(struct ckpt *ck, int fd, const char *log)
{
	size_t got;
	int rc;

	ck->tail_len = ck->end.byte < TAIL_MAX ? (size_t)ck->end.byte : TAIL_MAX;
	rc = read_at(fd, log, ck->end.byte - ck->tail_len, ck->tail, ck->tail_len, &got);
	if (rc == KL_OK && got != ck->tail_len)
		return kl_fail(KL_TEMP, "IMA log %s: shrank while being read", log);
	return rc;
}

static int
append(struct scan *s, const char *p, size_t n)
{
	if (s->len + n + 1 > KL_IMA_READ_MAX)
		return kl_fail(KL_PERM, "IMA log %s: the lines from offset %" PRIu64
		    " exceed %u MiB", s->log, s->first, KL_IMA_READ_MAX >> 20);
	if (s->out == NULL || s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : CHUNK;
		char *b;

		while (cap < s->len + n + 1)
			cap *= 2;
		if ((b = realloc(s->out, cap)) == NULL)
			return kl_fail(KL_TEMP, "IMA log %s: out of memory", s->log);
		s->out = b;
		s->cap = cap;
	}
	memcpy(s->out + s->len, p, n);
	s->len += n;
	return KL_OK;
}

/*
 * Length of the well-formed UTF-8 sequence at p (n > 0 bytes left), or 0 and
 * *bad = the length of its maximal invalid subpart (Unicode ch. 3, "U+FFFD
 * substitution of maximal subparts", as Python's errors="replace" and Rust's
 * from_utf8_lossy).
 */
static size_t
utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else {
		*bad = 1;
		return 0;
	}
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;	/* no surrogates */
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;	/* nothing above U+10FFFF */
	for (size_t i = 1; i < len; i++) {
		if (i >= n || p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xBF)) {
			*bad = i;
			return 0;
		}
	}
	return len;
}

/*
 * The collected line s->out[from, s->len), index entry, as UTF-8 text. The
 * kernel writes file names as raw bytes, so a name in another encoding
 * (Latin-1) gives a line that is not UTF-8, which a JSON string cannot carry.
 * Such a line is sent with each maximal invalid subpart replaced by U+FFFD,
 * so that the verifier gets the evidence and judges it: it re-encodes the
 * name as UTF-8 to recompute the template hash, so no text could match the
 * kernel's hash of the original bytes, and it will report the mismatch. The
 * original stays in the log; one warning per line names it (ck->warned
 * remembers across runs).
 */
static int
line_utf8(struct scan *s, size_t from, uint64_t entry)
{
	const unsigned char *p = (const unsigned char *)s->out + from;
	size_t n = s->len - from, i = 0, k, bad = 0;
	unsigned char *fixed;
	int rc;

	while (i < n && (k = utf8_seq(p + i, n - i, &bad)) != 0)
		i += k;
	if (i == n)
		return KL_OK;
	if ((fixed = malloc(3 * n)) == NULL)
		return kl_fail(KL_TEMP, "IMA log %s: out of memory", s->log);
	for (i = 0, k = 0; i < n;) {
		size_t len = utf8_seq(p + i, n - i, &bad);

		if (len) {
			memcpy(fixed + k, p + i, len);
			k += len;
			i += len;
		} else {
			memcpy(fixed + k, "\xef\xbf\xbd", 3);	/* U+FFFD */
			k += 3;
			i += bad;
		}
	}
	s->len = from;
	rc = append(s, (const char *)fixed, k);
	free(fixed);
	if (rc == KL_OK && entry >= s->ck->warned) {
		kl_warn("IMA log %s: entry %" PRIu64 " (line %" PRIu64 ") is not UTF-8 (a file name "
		    "in another encoding?): sent with U+FFFD for the invalid bytes; the verifier "
		    "cannot match its template hash", s->log, entry, entry + 1);
		s->ck->warned = entry + 1;
		s->ck->dirty = 1;
	}
	return rc;
}

/*
 * A complete line [start, end) with index entry was seen: move the end
 * forward, and mark the line if the last mark is KL_IMA_MARK_BYTES behind.
 * (A pass that starts at an earlier mark sees lines already indexed.)
 */
static int
note_line(struct ckpt *ck, uint64_t entry, uint64_t start, uint64_t end)
{
	uint64_t last = ck->marks[ck->nmarks - 1].byte;

	if (end > ck->end.byte) {
		ck->end = (struct mark){ entry + 1, end };
		ck->dirty = 1;
	}
	if (start > last && start - last >= KL_IMA_MARK_BYTES)
		return ckpt_add_mark(ck, entry, start);
	return KL_OK;
}

/*
 * Read from the line start `from` to EOF (or until s->max lines are
 * collected). Returns KL_OK, an error, or STALE when the byte before
 * from.byte is not a line break (the log is not the one indexed).
 */
static int
scan_from(struct scan *s, struct mark from)
{
	uint64_t entry = from.entry, line_start = from.byte;
	uint64_t pos = from.byte > 0 ? from.byte - 1 : 0;	/* offset of buf[0] */
	int need_nl = from.byte > 0, rc = KL_OK;
	size_t committed = s->len;	/* s->len after the last complete line */
	char *buf;

	if ((buf = malloc(CHUNK)) == NULL)
		return kl_fail(KL_TEMP, "IMA log %s: out of memory", s->log);
	if (lseek(s->fd, (off_t)pos, SEEK_SET) == (off_t)-1) {
		rc = kl_fail(errno_rc(errno), "IMA log %s: seek: %s", s->log, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = read(s->fd, buf, CHUNK);
		char *p = buf, *endp;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = kl_fail(errno_rc(errno), "IMA log %s: read: %s", s->log, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		bytes_read += (uint64_t)n;
		endp = buf + n;
		if (need_nl) {
			if (*p++ != '\n') {
				rc = STALE;
				goto out;
			}
			need_nl = 0;
		}
		while (p < endp) {
			char *nl = memchr(p, '\n', (size_t)(endp - p));
			char *q = nl ? nl + 1 : endp;
			uint64_t line_end = pos + (uint64_t)(q - buf);
			int want = s->collect && entry >= s->first &&
			    (s->max == 0 || s->count < s->max);

			/* A line cut by the chunk end is copied in pieces. */
			if (want && (rc = append(s, p, (size_t)(q - p))) != KL_OK)
				goto out;
			p = q;
			if (nl == NULL)
				break;
			if ((rc = note_line(s->ck, entry, line_start, line_end)) != KL_OK) {
				kl_err("IMA log %s: out of memory", s->log);
				goto out;
			}
			entry++;
			line_start = line_end;
			if (want) {
				if ((rc = line_utf8(s, committed, entry - 1)) != KL_OK)
					goto out;
				committed = s->len;
				if (++s->count == s->max)
					goto out;
			}
		}
		pos += (uint64_t)n;
	}
out:
	s->len = committed;	/* a last line without its '\n' is not ours yet */
	free(buf);
	return rc;
}

/* The last mark at or before line `entry` (the end, if entry is past it). */
static struct mark
ckpt_seek(const struct ckpt *ck, uint64_t entry)
{
	size_t lo = 0, hi = ck->nmarks;

	if (entry >= ck->end.entry)
		return ck->end;
	while (hi - lo > 1) {	/* marks[lo].entry <= entry < marks[hi].entry */
		size_t mid = lo + (hi - lo) / 2;

		if (ck->marks[mid].entry <= entry)
			lo = mid;
		else
			hi = mid;
	}
	return ck->marks[lo];
}

/*
 * The frame of both calls: load and check the checkpoint, scan from the
 * mark nearest s->first (from the end when only counting), save.
 * *total is the number of lines up to where the scan stopped.
 */
static int
ima_run(struct scan *s, const char *ckpt, time_t boot_time, uint64_t *total)
{
	const char *cname = ckpt ? ckpt : "(none)";
	struct ckpt ck;
	int rc, match;

	if (ckpt_init(&ck) != KL_OK)
		return kl_fail(KL_TEMP, "IMA log %s: out of memory", s->log);
	s->ck = &ck;
	if ((s->fd = kl_file_open_log(s->log, "KL_IMA_ML_FD")) < 0) {
		rc = kl_fail(errno_rc(errno), "IMA log %s: %s", s->log, strerror(errno));
		goto out;
	}
	if (ckpt != NULL)
		ckpt_load(&ck, ckpt, s->log, boot_time);
	if ((rc = ckpt_matches(&ck, s->fd, s->log, &match)) != KL_OK)
		goto out;
	if (!match) {
		kl_warn("IMA log %s: does not match checkpoint %s (replaced or truncated); "
		    "reading it from the start", s->log, cname);
		ckpt_reset(&ck);
	}
	rc = scan_from(s, ckpt_seek(&ck, s->collect ? s->first : UINT64_MAX));
	if (rc == STALE) {
		kl_warn("IMA log %s: no line starts where checkpoint %s says; "
		    "reading it from the start", s->log, cname);
		ckpt_reset(&ck);
		s->len = 0;
		s->count = 0;
		rc = scan_from(s, ck.marks[0]);
	}
	if (rc == KL_OK && ckpt != NULL && ck.dirty &&
	    (rc = ckpt_take_tail(&ck, s->fd, s->log)) == KL_OK)
		ckpt_save(&ck, ckpt, s->log, boot_time);
	*total = ck.end.entry;
out:
	if (s->fd >= 0)
		close(s->fd);
	s->ck = NULL;
	ckpt_release(&ck);
	return rc;
}

int
kl_ima_count(const char *log, const char *ckpt, time_t boot_time, uint64_t *entries)
{
	struct scan s = { .fd = -1, .log = log };

	*entries = 0;
	return ima_run(&s, ckpt, boot_time, entries);
}

int
kl_ima_read(const char *log, const char *ckpt, time_t boot_time,
    uint64_t starting_offset, uint64_t max_entries,
    char **entries, size_t *len, uint64_t *count)
{
	struct scan s = { .fd = -1, .log = log, .collect = 1,
	    .first = starting_offset, .max = max_entries };
	uint64_t total = 0;
	int rc;

	*entries = NULL;
	*len = 0;
	*count = 0;
	rc = ima_run(&s, ckpt, boot_time, &total);
	if (rc == KL_OK && starting_offset > total)
		rc = kl_fail(KL_PERM, "IMA log %s: starting_offset %" PRIu64 " is beyond its %"
		    PRIu64 " entries (an offset from another boot or another log)",
		    log, starting_offset, total);
	if (rc != KL_OK) {
		free(s.out);
		return rc;
	}
	if (s.out == NULL && (s.out = malloc(1)) == NULL)	/* nothing new: "" */
		return kl_fail(KL_TEMP, "IMA log %s: out of memory", log);
	s.out[s.len] = '\0';
	*entries = s.out;
	*len = s.len;
	*count = s.count;
	return KL_OK;
}
