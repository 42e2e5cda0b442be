/*
 * kl_toml.c - see kl_toml.h. A recursive-descent parser over a byte buffer.
 *
 * Every parse_* function starts at ps->p, advances it past what it read and
 * returns KL_OK, or KL_PERM/KL_TEMP after logging the one error line.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_file.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_toml.h"
#include "kl_banned.h"

#define MAX_DEPTH 32		/* nested arrays; keeps the recursion bounded */

struct parser {
	const char *s;
	size_t len;
	size_t p;		/* next byte to read */
	const char *name;	/* for error lines */
	/* where(): the last offset turned into a line, to avoid rescanning */
	size_t mark_off, mark_bol;
	int mark_line;
	/* tables defined by a [header]: a second header for one is an error */
	json_t **defined;
	size_t ndefined, capdefined;
};

/* A growing, always NUL-terminated byte string. */
struct sbuf {
	char *p;
	size_t n, cap;
};

static int
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 32;
		char *np;

		while (cap < b->n + n + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

static int
sb_addc(struct sbuf *b, char c)
{
	return sb_add(b, &c, 1);
}

/* Line and column (1-based, in characters) of byte offset off. */
static void
where(struct parser *ps, size_t off, int *line, int *col)
{
	int c = 1;

	if (off < ps->mark_off) {
		ps->mark_off = ps->mark_bol = 0;
		ps->mark_line = 1;
	}
	for (size_t i = ps->mark_off; i < off; i++) {
		if (ps->s[i] == '\n') {
			ps->mark_line++;
			ps->mark_bol = i + 1;
		}
	}
	ps->mark_off = off;
	/* UTF-8 continuation bytes do not start a character. */
	for (size_t i = ps->mark_bol; i < off; i++)
		if (((unsigned char)ps->s[i] & 0xC0) != 0x80)
			c++;
	*line = ps->mark_line;
	*col = c;
}

__attribute__((format(printf, 3, 4)))
static int
fail_at(struct parser *ps, size_t off, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line, col;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where(ps, off, &line, &col);
	return kl_fail(KL_PERM, "%s:%d:%d: %s", ps->name, line, col, msg);
}

static int
oom(struct parser *ps)
{
	return kl_fail(KL_TEMP, "%s: out of memory", ps->name);
}

/* Untrusted text for a message, quoted by the caller. */
static const char *
shown(char out[48], const char *s, size_t n)
{
	kl_log_sanitize(out, 48, s, n);
	return out;
}

static int
peek(const struct parser *ps, size_t k)
{
	return ps->p + k < ps->len ? (unsigned char)ps->s[ps->p + k] : -1;
}

static int
is_control(int c)
{
	return (c >= 0 && c < 0x20 && c != '\t') || c == 0x7f;
}

static int
is_newline(const struct parser *ps)
{
	return peek(ps, 0) == '\n' || (peek(ps, 0) == '\r' && peek(ps, 1) == '\n');
}

static void
skip_newline(struct parser *ps)
{
	ps->p += peek(ps, 0) == '\r' ? 2 : 1;
}

static int
is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static void
skip_ws(struct parser *ps)
{
	while (peek(ps, 0) == ' ' || peek(ps, 0) == '\t')
		ps->p++;
}

/* At '#': skip to the end of the line (not past it). */
static int
skip_comment(struct parser *ps)
{
	while (ps->p < ps->len && !is_newline(ps)) {
		int c = peek(ps, 0);

		if (is_control(c))
			return fail_at(ps, ps->p, "control character U+%04X in a comment", c);
		ps->p++;
	}
	return KL_OK;
}

/* Whitespace, newlines and comments: what may sit between array elements. */
static int
skip_blank(struct parser *ps)
{
	for (;;) {
		int rc;

		skip_ws(ps);
		if (peek(ps, 0) == '#') {
			if ((rc = skip_comment(ps)) != KL_OK)
				return rc;
		} else if (is_newline(ps)) {
			skip_newline(ps);
		} else {
			return KL_OK;
		}
	}
}

/* After a key/value pair or a header: only a comment may follow on the line. */
static int
end_of_line(struct parser *ps, const char *after)
{
	int rc;

	skip_ws(ps);
	if (peek(ps, 0) == '#' && (rc = skip_comment(ps)) != KL_OK)
		return rc;
	if (ps->p >= ps->len)
		return KL_OK;
	if (is_newline(ps)) {
		skip_newline(ps);
		return KL_OK;
	}
	return fail_at(ps, ps->p, "unexpected text after %s", after);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
put_utf8(struct sbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return sb_add(b, u, n);
}

/* At '\' in a basic string that opened at open. */
static int
parse_escape(struct parser *ps, size_t open, int multiline, struct sbuf *b)
{
	size_t at = ps->p;
	int c = peek(ps, 1);
	const char *simple = "b\bt\tn\nf\fr\r\"\"\\\\";
	char tmp[48];

	if (c < 0)
		return fail_at(ps, open, "unterminated string");
	for (const char *s = simple; *s; s += 2) {
		if (c == s[0]) {
			ps->p += 2;
			return sb_addc(b, s[1]) ? oom(ps) : KL_OK;
		}
	}
	if (c == 'u' || c == 'U') {
		size_t n = c == 'u' ? 4 : 8;
		uint32_t cp = 0;

		for (size_t i = 0; i < n; i++) {
			int h = hexval(peek(ps, 2 + i));

			if (h < 0)
				return fail_at(ps, at, "\\%c escape needs %zu hex digits", c, n);
			cp = cp << 4 | (uint32_t)h;
		}
		if (cp == 0)
			return fail_at(ps, at, "escape \"%s\" (NUL) is not supported",
			    shown(tmp, ps->s + at, n + 2));
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return fail_at(ps, at, "escape \"%s\" is not a Unicode scalar value",
			    shown(tmp, ps->s + at, n + 2));
		ps->p += 2 + n;
		return put_utf8(b, cp) ? oom(ps) : KL_OK;
	}
	if (multiline && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
		/* Line-ending backslash: drop it, the newline and leading blanks. */
		ps->p++;
		skip_ws(ps);
		if (!is_newline(ps))
			return fail_at(ps, at, "a backslash followed by blanks must end the line");
		for (;;) {
			if (is_newline(ps))
				skip_newline(ps);
			else if (peek(ps, 0) == ' ' || peek(ps, 0) == '\t')
				ps->p++;
			else
				return KL_OK;
		}
	}
	if (c >= 0x21 && c < 0x7f)
		return fail_at(ps, at, "invalid escape sequence \"\\%c\"", c);
	return fail_at(ps, at, "invalid escape sequence");
}

/*
 * At the opening quote of any of the four string kinds: append the string's
 * value to b.
 */
static int
parse_string(struct parser *ps, struct sbuf *b)
{
	size_t open = ps->p;
	int q = peek(ps, 0);
	int literal = q == '\'';
	int multiline = peek(ps, 1) == q && peek(ps, 2) == q;

	ps->p += multiline ? 3 : 1;
	/* A newline right after the opening delimiter is not part of the value. */
	if (multiline && is_newline(ps))
		skip_newline(ps);
	if (sb_add(b, "", 0))
		return oom(ps);
	for (;;) {
		int c = peek(ps, 0), rc;

		if (c < 0)
			return fail_at(ps, open, "unterminated string");
		if (c == q && !multiline) {
			ps->p++;
			return KL_OK;
		}
		if (c == q) {
			/* Up to two quotes may stand right before the closing three. */
			size_t k = 0;

			while (peek(ps, k) == q)
				k++;
			if (k > 5)
				return fail_at(ps, ps->p, "too many quotes in a row in a multi-line string");
			for (size_t i = 0; i < (k >= 3 ? k - 3 : k); i++)
				if (sb_addc(b, (char)q))
					return oom(ps);
			ps->p += k;
			if (k >= 3)
				return KL_OK;
			continue;
		}
		if (is_newline(ps)) {
			if (!multiline)
				return fail_at(ps, ps->p, "newline in a single-line string");
			skip_newline(ps);
			if (sb_addc(b, '\n'))
				return oom(ps);
			continue;
		}
		if (c == '\\' && !literal) {
			if ((rc = parse_escape(ps, open, multiline, b)) != KL_OK)
				return rc;
			continue;
		}
		if (is_control(c))
			return fail_at(ps, ps->p, "control character U+%04X in a string", c);
		if (sb_addc(b, (char)c))
			return oom(ps);
		ps->p++;
	}
}

/* A bare or quoted key into *out (malloc). */
static int
parse_key(struct parser *ps, char **out)
{
	struct sbuf b = { 0 };
	int c = peek(ps, 0), rc;

	*out = NULL;
	if (c == '"' || c == '\'') {
		if (peek(ps, 1) == c && peek(ps, 2) == c)
			return fail_at(ps, ps->p, "a key cannot be a multi-line string");
		if ((rc = parse_string(ps, &b)) != KL_OK) {
			free(b.p);
			return rc;
		}
		*out = b.p;
		return KL_OK;
	}
	size_t start = ps->p;

	while (is_bare(peek(ps, 0)))
		ps->p++;
	if (ps->p == start)
		return fail_at(ps, ps->p, "expected a key");
	if ((*out = strndup(ps->s + start, ps->p - start)) == NULL)
		return oom(ps);
	return KL_OK;
}

/*
 * An integer in TOML syntax. Returns 0, -1 (bad syntax) or -2 (does not fit
 * in 64 bits).
 */
static int
parse_integer(const char *t, size_t n, long long *out)
{
	unsigned long long v = 0, lim = INT64_MAX;
	size_t i = 0;
	int base = 10, neg = 0, digit_before = 0, overflow = 0;

	if (n >= 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
		base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
		i = 2;
	} else {
		if (n > 0 && (t[0] == '+' || t[0] == '-')) {
			neg = t[0] == '-';
			i = 1;
		}
		if (i + 1 < n && t[i] == '0')	/* no leading zeros */
			return -1;
	}
	if (neg)
		lim = (unsigned long long)INT64_MAX + 1;
	if (i >= n)
		return -1;
	for (; i < n; i++) {
		int d;

		if (t[i] == '_') {
			/* '_' only between two digits */
			if (!digit_before || i + 1 >= n)
				return -1;
			digit_before = 0;
			continue;
		}
		d = hexval((unsigned char)t[i]);
		if (d < 0 || d >= base)
			return -1;
		if (v > (lim - (unsigned)d) / (unsigned)base)
			overflow = 1;
		else
			v = v * (unsigned)base + (unsigned)d;
		digit_before = 1;
	}
	if (overflow)
		return -2;
	if (neg)
		*out = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(long long)v;
	else
		*out = (long long)v;
	return 0;
}

/* A run of characters that may form a number, boolean, float or date. */
static int
is_token_char(int c)
{
	return is_bare(c) || c == '+' || c == '.' || c == ':';
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* A boolean or a number (an unquoted word): true, false, 42, -0x... */
static int
parse_word(struct parser *ps, json_t **out)
{
	size_t at = ps->p, n;
	const char *t = ps->s + at, *u;
	char tmp[48];
	long long v;
	int rc;

	while (is_token_char(peek(ps, 0)))
		ps->p++;
	n = ps->p - at;
	if (n == 0)
		return fail_at(ps, at, "expected a value");
	if ((n == 4 && memcmp(t, "true", 4) == 0) || (n == 5 && memcmp(t, "false", 5) == 0)) {
		*out = json_boolean(n == 4);
		return *out ? KL_OK : oom(ps);
	}
	u = (t[0] == '+' || t[0] == '-') ? t + 1 : t;
	if ((size_t)(u - t) + 3 == n && (memcmp(u, "inf", 3) == 0 || memcmp(u, "nan", 3) == 0))
		return fail_at(ps, at, "floats are not supported");
	if (!is_digit(t[0]) && t[0] != '+' && t[0] != '-')
		return fail_at(ps, at, "invalid value \"%s\" (strings need quotes)", shown(tmp, t, n));
	rc = parse_integer(t, n, &v);
	if (rc == -2)
		return fail_at(ps, at, "integer out of range: %s", shown(tmp, t, n));
	if (rc == 0) {
		*out = json_integer(v);
		return *out ? KL_OK : oom(ps);
	}
	/* Not an integer: say why if it is another TOML type. */
	if (memchr(t, ':', n) || (n > 4 && is_digit(t[0]) && is_digit(t[1]) &&
	    is_digit(t[2]) && is_digit(t[3]) && t[4] == '-'))
		return fail_at(ps, at, "dates and times are not supported");
	if (!(n >= 2 && t[0] == '0' && t[1] == 'x') &&
	    (memchr(t, '.', n) || memchr(t, 'e', n) || memchr(t, 'E', n)))
		return fail_at(ps, at, "floats are not supported");
	return fail_at(ps, at, "invalid integer \"%s\"", shown(tmp, t, n));
}

static int parse_value(struct parser *ps, int depth, json_t **out);

/* At '[': an array, possibly spread over lines. */
static int
parse_array(struct parser *ps, int depth, json_t **out)
{
	size_t open = ps->p;
	json_t *arr, *v;
	int rc;

	*out = NULL;
	if (depth > MAX_DEPTH)
		return fail_at(ps, open, "arrays nested deeper than %d levels", MAX_DEPTH);
	if ((arr = json_array()) == NULL)
		return oom(ps);
	ps->p++;
	for (;;) {
		if ((rc = skip_blank(ps)) != KL_OK)
			goto fail;
		if (ps->p >= ps->len) {
			rc = fail_at(ps, open, "unterminated array");
			goto fail;
		}
		if (peek(ps, 0) == ']')
			break;
		if ((rc = parse_value(ps, depth, &v)) != KL_OK)
			goto fail;
		if (json_array_append_new(arr, v) != 0) {
			rc = oom(ps);
			goto fail;
		}
		if ((rc = skip_blank(ps)) != KL_OK)
			goto fail;
		if (ps->p >= ps->len) {
			rc = fail_at(ps, open, "unterminated array");
			goto fail;
		}
		if (peek(ps, 0) == ']')
			break;
		if (peek(ps, 0) != ',') {
			rc = fail_at(ps, ps->p, "expected ',' or ']' in the array");
			goto fail;
		}
		ps->p++;
	}
	ps->p++;
	*out = arr;
	return KL_OK;
fail:
	json_decref(arr);
	return rc;
}

static int
parse_value(struct parser *ps, int depth, json_t **out)
{
	struct sbuf b = { 0 };
	int c = peek(ps, 0), rc;

	*out = NULL;
	switch (c) {
	case '"':
	case '\'':
		if ((rc = parse_string(ps, &b)) == KL_OK &&
		    (*out = json_stringn(b.p, b.n)) == NULL)
			rc = oom(ps);
		if (b.p)
			explicit_bzero(b.p, b.cap);	/* the value may be a password */
		free(b.p);
		return rc;
	case '[':
		return parse_array(ps, depth + 1, out);
	case '{':
		return fail_at(ps, ps->p, "inline tables are not supported");
	case '#':
	case '\n':
	case '\r':
	case -1:
		return fail_at(ps, ps->p, "missing value");
	default:
		return parse_word(ps, out);
	}
}

/* A name for messages: the parts of a table header joined with '.'. */
static void
table_name(const json_t *parts, char *out, size_t cap)
{
	size_t i, o = 0;
	json_t *part;

	out[0] = '\0';
	json_array_foreach(parts, i, part) {
		char tmp[48];

		shown(tmp, json_string_value(part), json_string_length(part));
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "." : "", tmp);
		if (o >= cap)
			break;
	}
}

static int
was_defined(const struct parser *ps, const json_t *t)
{
	for (size_t i = 0; i < ps->ndefined; i++)
		if (ps->defined[i] == t)
			return 1;
	return 0;
}

/*
 * At '[': a table header. Creates the table (and missing parents) and makes
 * it current (*tbl, *pos).
 */
static int
parse_header(struct parser *ps, json_t *root, json_t *root_pos, json_t **tbl, json_t **pos)
{
	size_t at = ps->p;
	json_t *parts, *t = root, *tp = root_pos, *part;
	char name[256], *key;
	size_t i;
	int rc;

	if (peek(ps, 1) == '[')
		return fail_at(ps, at, "arrays of tables ([[...]]) are not supported");
	if ((parts = json_array()) == NULL)
		return oom(ps);
	ps->p++;
	for (;;) {
		skip_ws(ps);
		if ((rc = parse_key(ps, &key)) != KL_OK)
			goto out;
		rc = json_array_append_new(parts, json_string(key)) ? oom(ps) : KL_OK;
		free(key);
		if (rc != KL_OK)
			goto out;
		skip_ws(ps);
		if (peek(ps, 0) == ']')
			break;
		if (peek(ps, 0) != '.') {
			rc = fail_at(ps, ps->p, "expected '.' or ']' in the table header");
			goto out;
		}
		ps->p++;
	}
	ps->p++;
	table_name(parts, name, sizeof(name));
	json_array_foreach(parts, i, part) {
		const char *k = json_string_value(part);
		json_t *child = json_object_get(t, k);

		if (child == NULL) {
			json_t *c = json_object(), *cp = json_object();

			if (c == NULL || cp == NULL || json_object_set_new(t, k, c) ||
			    json_object_set_new(tp, k, cp)) {
				rc = oom(ps);
				goto out;
			}
			child = c;
		} else if (!json_is_object(child)) {
			char tmp[48];

			rc = fail_at(ps, at, "table [%s]: key \"%s\" is already defined as a value",
			    name, shown(tmp, k, strlen(k)));
			goto out;
		}
		t = child;
		tp = json_object_get(tp, k);
	}
	if (was_defined(ps, t)) {
		rc = fail_at(ps, at, "duplicate table [%s]", name);
		goto out;
	}
	if (ps->ndefined == ps->capdefined) {
		size_t cap = ps->capdefined ? ps->capdefined * 2 : 8;
		json_t **nd = realloc(ps->defined, cap * sizeof(*nd));

		if (nd == NULL) {
			rc = oom(ps);
			goto out;
		}
		ps->defined = nd;
		ps->capdefined = cap;
	}
	ps->defined[ps->ndefined++] = t;
	*tbl = t;
	*pos = tp;
	rc = end_of_line(ps, "the table header");
out:
	json_decref(parts);
	return rc;
}

static int
parse_keyval(struct parser *ps, json_t *tbl, json_t *pos)
{
	size_t kat = ps->p, vat;
	char *key = NULL, tmp[48];
	json_t *v = NULL, *where_v;
	int rc, line, kcol, vcol;

	if ((rc = parse_key(ps, &key)) != KL_OK)
		return rc;
	skip_ws(ps);
	if (peek(ps, 0) == '.') {
		rc = fail_at(ps, kat, "dotted keys are not supported");
		goto out;
	}
	if (peek(ps, 0) != '=') {
		rc = fail_at(ps, ps->p, "expected '=' after the key");
		goto out;
	}
	ps->p++;
	skip_ws(ps);
	vat = ps->p;
	if (json_object_get(tbl, key) != NULL) {
		rc = fail_at(ps, kat, "duplicate key \"%s\"", shown(tmp, key, strlen(key)));
		goto out;
	}
	if ((rc = parse_value(ps, 0, &v)) != KL_OK)
		goto out;
	where(ps, kat, &line, &kcol);
	where(ps, vat, &line, &vcol);
	where_v = json_pack("[iii]", line, kcol, vcol);
	if (json_object_set_new(tbl, key, v) || json_object_set_new(pos, key, where_v)) {
		rc = oom(ps);
		goto out;
	}
	rc = end_of_line(ps, "the value");
out:
	free(key);
	return rc;
}

/* Offset of the first byte that is not valid UTF-8, or n. */
static size_t
utf8_check(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		uint32_t cp, min;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			k = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (n - i <= k)
			return i;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += k + 1;
	}
	return n;
}

static int
parser_init(struct parser *ps, const char *buf, size_t len, const char *name)
{
	size_t bad;

	memset(ps, 0, sizeof(*ps));
	ps->s = buf;
	ps->len = len;
	ps->name = name;
	ps->mark_line = 1;
	if ((bad = utf8_check((const unsigned char *)buf, len)) != len)
		return fail_at(ps, bad, "invalid UTF-8");
	/* An editor's byte order mark is not content. */
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		ps->p = 3;
	return KL_OK;
}

int
kl_toml_parse(const char *buf, size_t len, const char *name, json_t **out, json_t **pos)
{
	struct parser ps;
	json_t *root, *root_pos, *tbl, *tpos;
	int rc;

	*out = NULL;
	if (pos)
		*pos = NULL;
	if ((rc = parser_init(&ps, buf, len, name)) != KL_OK)
		return rc;
	root = json_object();
	root_pos = json_object();
	if (root == NULL || root_pos == NULL) {
		rc = oom(&ps);
		goto out;
	}
	tbl = root;
	tpos = root_pos;
	while (rc == KL_OK) {
		skip_ws(&ps);
		if (ps.p >= ps.len)
			break;
		if (is_newline(&ps))
			skip_newline(&ps);
		else if (peek(&ps, 0) == '#')
			rc = skip_comment(&ps);
		else if (peek(&ps, 0) == '[')
			rc = parse_header(&ps, root, root_pos, &tbl, &tpos);
		else
			rc = parse_keyval(&ps, tbl, tpos);
	}
out:
	free(ps.defined);
	if (rc != KL_OK) {
		json_decref(root);
		json_decref(root_pos);
		return rc;
	}
	*out = root;
	if (pos)
		*pos = root_pos;
	else
		json_decref(root_pos);
	return KL_OK;
}

int
kl_toml_parse_value(const char *buf, size_t len, const char *name, json_t **out)
{
	struct parser ps;
	json_t *v;
	int rc;

	*out = NULL;
	if ((rc = parser_init(&ps, buf, len, name)) != KL_OK)
		return rc;
	skip_ws(&ps);
	if ((rc = parse_value(&ps, 0, &v)) != KL_OK)
		return rc;
	if ((rc = skip_blank(&ps)) == KL_OK && ps.p < ps.len)
		rc = fail_at(&ps, ps.p, "unexpected text after the value");
	if (rc != KL_OK) {
		json_decref(v);
		return rc;
	}
	*out = v;
	return KL_OK;
}

int
kl_toml_parse_file(const char *path, int missing_ok, json_t **out, json_t **pos)
{
	char *buf;
	size_t len;
	int rc;

	*out = NULL;
	if (pos)
		*pos = NULL;
	if ((rc = kl_file_read_config(path, KL_TOML_MAX, missing_ok, &buf, &len)) != KL_OK)
		return rc;
	if (buf == NULL)
		return KL_OK;
	rc = kl_toml_parse(buf, len, path, out, pos);
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

int
kl_toml_pos(const json_t *pos_table, const char *key, int *line, int *key_col, int *val_col)
{
	json_t *p = json_object_get(pos_table, key);
	json_int_t v[3] = { 0, 0, 0 };
	int rc = -1;

	if (json_is_array(p) && json_array_size(p) == 3) {
		for (size_t i = 0; i < 3; i++)
			v[i] = json_integer_value(json_array_get(p, i));
		rc = 0;
	}
	if (line)
		*line = (int)v[0];
	if (key_col)
		*key_col = (int)v[1];
	if (val_col)
		*val_col = (int)v[2];
	return rc;
}
