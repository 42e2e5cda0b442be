/*
 * kl_json.h - the document on stdin and stdout (docs/contract.md), over jansson.
 *
 * Ownership follows jansson: functions returning json_t * give the caller a
 * new reference, to be released with json_decref().
 */
#ifndef KL_JSON_H
#define KL_JSON_H

#include <stddef.h>
#include <jansson.h>

#define KL_SCHEMA 1
#define KL_STDIN_MAX (256u << 20)	/* 256 MiB: a whole IMA log fits */

/*
 * Parse one JSON object from buf (len bytes, need not be NUL-terminated).
 * Duplicate keys, trailing garbage and non-objects are errors. "what" names
 * the source in the error line ("stdin", "registrar reply"), which carries
 * line and column. Returns KL_OK or KL_PERM; *out is set on success.
 */
/* e's message without the text jansson quotes from the input (it may be a secret). */
const char *kl_json_error_text(json_error_t *e);
int kl_json_parse(const char *buf, size_t len, const char *what, json_t **out);

/*
 * Read all of stdin (at most max bytes; 0 means KL_STDIN_MAX) and parse it.
 * Empty stdin (or only whitespace) gives a new document {"schema":1}.
 * A document whose "schema" is not KL_SCHEMA is refused.
 * Returns KL_OK, KL_PERM (bad input) or KL_TEMP (read error).
 */
int kl_json_read_stdin(size_t max, json_t **out);

/*
 * Write doc compactly plus a newline on stdout, flush and check.
 * Returns KL_OK or KL_TEMP. Nothing is written if encoding fails.
 */
int kl_json_write_stdout(const json_t *doc);

/*
 * Typed getters on an object: return the value, or def/NULL when the key is
 * absent or has another type. Borrowed references and pointers.
 */
const char *kl_json_str(const json_t *obj, const char *key);
json_t *kl_json_obj(const json_t *obj, const char *key);

/* Strict getters: log "<what>: <key> ..." and return KL_PERM when missing/wrong. */
int kl_json_need_str(const json_t *obj, const char *key, const char *what, const char **out);
int kl_json_need_int(const json_t *obj, const char *key, const char *what, long long *out);
int kl_json_need_obj(const json_t *obj, const char *key, const char *what, json_t **out);

/*
 * jansson allocator that wipes every block before freeing (secrets pass through).
 * Once installed, strings from json_dumps() must be freed with kl_json_free().
 */
void kl_json_use_wiping_allocator(void);

/* Free what json_dumps() returned, with whatever allocator jansson uses. */
void kl_json_free(void *p);

/* json_dumps(JSON_COMPACT) of obj into a malloc()ed string (free() it), or NULL. */
char *kl_json_dump(const json_t *obj, size_t *len);
/* The same with jansson's encoding flags (JSON_INDENT(2) ...). Never use
 * json_dumps() + free(): under the wiping allocator that is an invalid free. */
char *kl_json_dump_flags(const json_t *obj, size_t flags, size_t *len);

#endif
