/* kl_json.c - see kl_json.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_banned.h"

const char *
kl_json_error_text(json_error_t *e)
{
	/*
	 * jansson quotes the text near the error ("invalid escape near
	 * '"TOPSECRET\q'"): that may be a token, so it is cut off; the line and
	 * column say where.
	 */
	char *near = strstr(e->text, " near ");

	if (near != NULL)
		*near = '\0';
	return e->text;
}

int
kl_json_parse(const char *buf, size_t len, const char *what, json_t **out)
{
	json_error_t e;
	json_t *j;

	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL)
		return kl_fail(KL_PERM, "%s:%d:%d: %s", what, e.line, e.column,
		    kl_json_error_text(&e));
	if (!json_is_object(j)) {
		json_decref(j);
		return kl_fail(KL_PERM, "%s:1:1: expected a JSON object", what);
	}
	*out = j;
	return KL_OK;
}

static int
all_space(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r')
			return 0;
	return 1;
}

int
kl_json_read_stdin(size_t max, json_t **out)
{
	size_t cap = 65536, len = 0;
	char *buf;
	int rc;

	if (max == 0)
		max = KL_STDIN_MAX;
	if ((buf = malloc(cap)) == NULL)
		return kl_fail(KL_TEMP, "stdin: out of memory");
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap > max) {
				free(buf);
				return kl_fail(KL_PERM, "stdin: document larger than %zu bytes", max);
			}
			cap *= 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return kl_fail(KL_TEMP, "stdin: out of memory");
			}
			buf = nb;
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return kl_fail(KL_TEMP, "stdin: read: %s", strerror(errno));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			return kl_fail(KL_PERM, "stdin: document larger than %zu bytes", max);
		}
	}
	if (all_space(buf, len)) {
		free(buf);
		*out = json_pack("{s:i}", "schema", KL_SCHEMA);
		return *out ? KL_OK : kl_fail(KL_TEMP, "stdin: out of memory");
	}
	rc = kl_json_parse(buf, len, "stdin", out);
	free(buf);
	if (rc != KL_OK)
		return rc;
	{
		json_t *s = json_object_get(*out, "schema");

		if (s == NULL) {
			json_object_set_new(*out, "schema", json_integer(KL_SCHEMA));
		} else if (!json_is_integer(s) || json_integer_value(s) != KL_SCHEMA) {
			json_decref(*out);
			*out = NULL;
			return kl_fail(KL_PERM, "stdin: \"schema\" must be %d (docs/contract.md)", KL_SCHEMA);
		}
	}
	return KL_OK;
}

int
kl_json_write_stdout(const json_t *doc)
{
	char *s;
	size_t n;
	int rc = KL_OK;

	s = kl_json_dump(doc, &n);
	if (s == NULL)
		return kl_fail(KL_TEMP, "stdout: cannot encode the document");
	if (fwrite(s, 1, n, stdout) != n || fputc('\n', stdout) == EOF ||
	    fflush(stdout) == EOF)
		rc = kl_fail(KL_TEMP, "stdout: write: %s", strerror(errno));
	explicit_bzero(s, n);
	free(s);
	return rc;
}

const char *
kl_json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

json_t *
kl_json_obj(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_object(v) ? v : NULL;
}

int
kl_json_need_str(const json_t *obj, const char *key, const char *what, const char **out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return kl_fail(KL_PERM, "%s: \"%s\" %s", what, key,
		    v ? "must be a string" : "is missing");
	*out = json_string_value(v);
	return KL_OK;
}

int
kl_json_need_int(const json_t *obj, const char *key, const char *what, long long *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return kl_fail(KL_PERM, "%s: \"%s\" %s", what, key,
		    v ? "must be an integer" : "is missing");
	*out = json_integer_value(v);
	return KL_OK;
}

int
kl_json_need_obj(const json_t *obj, const char *key, const char *what, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_object(v))
		return kl_fail(KL_PERM, "%s: \"%s\" %s", what, key,
		    v ? "must be an object" : "is missing");
	*out = v;
	return KL_OK;
}

/*
 * jansson frees without telling the size, so the wiping allocator keeps it
 * in a header in front of every block.
 */
struct hdr {
	size_t size;
	size_t pad;	/* keep 16-byte alignment */
};

static void *
wipe_malloc(size_t n)
{
	struct hdr *h = malloc(sizeof(*h) + n);

	if (h == NULL)
		return NULL;
	h->size = n;
	return h + 1;
}

static void
wipe_free(void *p)
{
	struct hdr *h;

	if (p == NULL)
		return;
	h = (struct hdr *)p - 1;
	explicit_bzero(p, h->size);
	free(h);
}

void
kl_json_use_wiping_allocator(void)
{
	json_set_alloc_funcs(wipe_malloc, wipe_free);
}

void
kl_json_free(void *p)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	f(p);
}

char *
kl_json_dump(const json_t *obj, size_t *len)
{
	return kl_json_dump_flags(obj, JSON_COMPACT | JSON_PRESERVE_ORDER, len);
}

/* json_dump_callback target: a malloc()ed buffer that doubles as it fills. */
struct dumpbuf {
	char *p;
	size_t len, cap;
};

static int
dump_append(const char *b, size_t n, void *data)
{
	struct dumpbuf *d = data;

	if (d->len + n + 1 > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		char *np;

		while (d->len + n + 1 > cap)
			cap *= 2;
		if ((np = malloc(cap)) == NULL)
			return -1;
		/* Copy and wipe rather than realloc: the text may hold a token. */
		if (d->p != NULL) {
			memcpy(np, d->p, d->len);
			explicit_bzero(d->p, d->len);
			free(d->p);
		}
		d->p = np;
		d->cap = cap;
	}
	memcpy(d->p + d->len, b, n);
	d->len += n;
	return 0;
}

/* One encoding pass (json_dumpb(NULL) to size the buffer would be a second one). */
char *
kl_json_dump_flags(const json_t *obj, size_t flags, size_t *len)
{
	struct dumpbuf d = { NULL, 0, 0 };

	if (json_dump_callback(obj, dump_append, &d, flags) != 0 || d.p == NULL) {
		if (d.p != NULL)
			explicit_bzero(d.p, d.len);
		free(d.p);
		return NULL;
	}
	d.p[d.len] = '\0';
	if (len)
		*len = d.len;
	return d.p;
}
