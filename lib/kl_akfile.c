/* kl_akfile.c - see kl_akfile.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_akfile.h"
#include "kl_crypto.h"
#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

#define AKFILE_MAX (64u << 10)	/* a few KiB in practice */

static const char *const hash_names[] = { "sha1", "sha256", "sha384", "sha512", "sm3_256", NULL };
static const char *const sig_names[] = { "rsassa", "rsapss", "ecdsa", "ecschnorr", NULL };
static const char *const key_names[] = { "rsa", "ecc", NULL };

static int
one_of(const char *s, const char *const *names)
{
	for (; *names; names++)
		if (strcmp(s, *names) == 0)
			return 1;
	return 0;
}

void
kl_akfile_init(struct kl_akfile *f)
{
	memset(f, 0, sizeof(*f));
}

void
kl_akfile_release(struct kl_akfile *f)
{
	free(f->agent_id);
	free(f->ak_public);
	kl_secret_free(f->ak_private, f->ak_private_len);
	memset(f, 0, sizeof(*f));
}

/* ------------------------------------------------------------------ reading */

/* Every member of obj must be in keys; names the first that is not. */
static int
only_keys(const json_t *obj, const char *const *keys, const char *path, const char *prefix)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)obj, k, v) {
		if (!one_of(k, keys))
			return kl_fail(KL_PERM, "%s: %s%s: unknown member", path, prefix, k);
	}
	return KL_OK;
}

/* A string member of obj into out (cap bytes), one of names if names != NULL. */
static int
get_name(const json_t *obj, const char *key, const char *const *names, const char *path,
    const char *field, char *out, size_t cap)
{
	const char *s = kl_json_str(obj, key);

	if (s == NULL)
		return kl_fail(KL_PERM, "%s: %s: missing or not a string", path, field);
	if ((names && !one_of(s, names)) || strlen(s) >= cap || *s == '\0') {
		char clean[64];

		kl_log_sanitize(clean, sizeof(clean), s, strlen(s));
		return kl_fail(KL_PERM, "%s: %s: unsupported \"%s\"", path, field, clean);
	}
	memcpy(out, s, strlen(s) + 1);
	return KL_OK;
}

static int
get_b64(const json_t *obj, const char *key, const char *path, const char *field,
    unsigned char **out, size_t *len)
{
	const char *s = kl_json_str(obj, key);

	if (s == NULL)
		return kl_fail(KL_PERM, "%s: %s: missing or not a string", path, field);
	if (kl_b64_decode(s, out, len) != 0)
		return kl_fail(KL_PERM, "%s: %s: not base64", path, field);
	if (*len < 2) {
		free(*out);
		*out = NULL;
		return kl_fail(KL_PERM, "%s: %s: too short", path, field);
	}
	return KL_OK;
}

static int
parse(struct kl_akfile *f, const json_t *root, const char *path)
{
	static const char *const top_keys[] = { "version", "agent_id", "ek", "ak", NULL };
	static const char *const ek_keys[] = { "algorithm", "public_sha256", NULL };
	static const char *const ak_keys[] = { "public", "private", "hash_alg", "signing_alg",
		"key_algorithm", NULL };
	const json_t *v, *ek, *ak;
	const char *s;
	int rc;

	if ((rc = only_keys(root, top_keys, path, "")) != KL_OK)
		return rc;
	v = json_object_get(root, "version");
	if (!json_is_integer(v))
		return kl_fail(KL_PERM, "%s: version: missing or not an integer", path);
	if (json_integer_value(v) != KL_AKFILE_VERSION)
		return kl_fail(KL_PERM, "%s: version: unsupported %" JSON_INTEGER_FORMAT, path,
		    json_integer_value(v));
	if ((v = json_object_get(root, "agent_id")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255)
			return kl_fail(KL_PERM, "%s: agent_id: not a non-empty string", path);
		if ((f->agent_id = strdup(json_string_value(v))) == NULL)
			return kl_fail(KL_TEMP, "%s: out of memory", path);
	}

	if (!json_is_object(ek = json_object_get(root, "ek")))
		return kl_fail(KL_PERM, "%s: ek: missing or not an object", path);
	if ((rc = only_keys(ek, ek_keys, path, "ek.")) != KL_OK ||
	    (rc = get_name(ek, "algorithm", key_names, path, "ek.algorithm", f->ek_algorithm,
		sizeof(f->ek_algorithm))) != KL_OK)
		return rc;
	s = kl_json_str(ek, "public_sha256");
	if (s == NULL || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
		return kl_fail(KL_PERM, "%s: ek.public_sha256: not 64 lowercase hex digits", path);
	memcpy(f->ek_public_sha256, s, 65);

	if (!json_is_object(ak = json_object_get(root, "ak")))
		return kl_fail(KL_PERM, "%s: ak: missing or not an object", path);
	if ((rc = only_keys(ak, ak_keys, path, "ak.")) != KL_OK ||
	    (rc = get_b64(ak, "public", path, "ak.public", &f->ak_public, &f->ak_public_len)) != KL_OK ||
	    (rc = get_b64(ak, "private", path, "ak.private", &f->ak_private, &f->ak_private_len)) != KL_OK ||
	    (rc = get_name(ak, "hash_alg", hash_names, path, "ak.hash_alg", f->hash_alg,
		sizeof(f->hash_alg))) != KL_OK ||
	    (rc = get_name(ak, "signing_alg", sig_names, path, "ak.signing_alg", f->signing_alg,
		sizeof(f->signing_alg))) != KL_OK ||
	    (rc = get_name(ak, "key_algorithm", key_names, path, "ak.key_algorithm",
		f->key_algorithm, sizeof(f->key_algorithm))) != KL_OK)
		return rc;
	return KL_OK;
}

int
kl_akfile_load(struct kl_akfile *f, const char *path, int missing_ok)
{
	char *buf = NULL;
	size_t len;
	json_t *root = NULL;
	int rc;

	kl_akfile_init(f);
	if ((rc = kl_file_read(path, AKFILE_MAX, missing_ok, &buf, &len)) != KL_OK || buf == NULL)
		return rc;
	if ((rc = kl_json_parse(buf, len, path, &root)) == KL_OK)
		rc = parse(f, root, path);
	if (rc != KL_OK)
		kl_akfile_release(f);
	json_decref(root);
	kl_secret_free(buf, len);
	return rc;
}

/* ------------------------------------------------------------------ writing */

int
kl_akfile_save(const struct kl_akfile *f, const char *path)
{
	char *pub = NULL, *priv = NULL, *text = NULL, *dir = NULL, *slash;
	json_t *root = NULL;
	int rc;

	pub = kl_b64_encode(f->ak_public, f->ak_public_len);
	priv = kl_b64_encode(f->ak_private, f->ak_private_len);
	if (pub == NULL || priv == NULL) {
		rc = kl_fail(KL_TEMP, "%s: out of memory", path);
		goto out;
	}
	/* "s*": agent_id is left out when NULL. */
	root = json_pack("{s:i,s:s*,s:{s:s,s:s},s:{s:s,s:s,s:s,s:s,s:s}}",
	    "version", KL_AKFILE_VERSION, "agent_id", f->agent_id,
	    "ek", "algorithm", f->ek_algorithm, "public_sha256", f->ek_public_sha256,
	    "ak", "public", pub, "private", priv, "hash_alg", f->hash_alg,
	    "signing_alg", f->signing_alg, "key_algorithm", f->key_algorithm);
	if (root == NULL) {
		rc = kl_fail(KL_PERM, "%s: cannot encode the agent data", path);
		goto out;
	}
	if ((text = kl_json_dump_flags(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER, NULL)) == NULL) {
		rc = kl_fail(KL_TEMP, "%s: out of memory", path);
		goto out;
	}
	/* The directory (keylime_dir) may not exist on a first run. */
	if ((dir = strdup(path)) != NULL && (slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if ((rc = kl_file_mkdirs(dir)) != KL_OK)
			goto out;
	}
	{
		size_t n = strlen(text);
		char *nl = realloc(text, n + 2);

		if (nl == NULL) {
			rc = kl_fail(KL_TEMP, "%s: out of memory", path);
			goto out;
		}
		text = nl;
		memcpy(text + n, "\n", 2);
		rc = kl_file_write_atomic(path, text, n + 1);
	}
out:
	free(dir);
	free(pub);
	if (priv)
		kl_secret_free(priv, strlen(priv));
	if (text)
		kl_secret_free(text, strlen(text));
	json_decref(root);
	return rc;
}

int
kl_akfile_set(struct kl_akfile *f, const char *ek_alg, const unsigned char *ek_pub,
    size_t ek_pub_len, const unsigned char *ak_pub, size_t ak_pub_len,
    const unsigned char *ak_priv, size_t ak_priv_len, const char *hash_alg,
    const char *signing_alg, const char *key_algorithm)
{
	unsigned char *pub, *priv;

	if (!one_of(ek_alg, key_names) || !one_of(hash_alg, hash_names) ||
	    !one_of(signing_alg, sig_names) || !one_of(key_algorithm, key_names))
		return kl_fail(KL_PERM, "agent data: unsupported algorithm %s/%s/%s/%s",
		    ek_alg, hash_alg, signing_alg, key_algorithm);
	if ((pub = malloc(ak_pub_len ? ak_pub_len : 1)) == NULL ||
	    (priv = malloc(ak_priv_len ? ak_priv_len : 1)) == NULL) {
		free(pub);
		return kl_fail(KL_TEMP, "agent data: out of memory");
	}
	if (kl_crypto_sha256_hex(ek_pub, ek_pub_len, f->ek_public_sha256) != 0) {
		free(pub);
		free(priv);
		return kl_fail(KL_PERM, "agent data: cannot hash the EK");
	}
	memcpy(pub, ak_pub, ak_pub_len);
	memcpy(priv, ak_priv, ak_priv_len);
	free(f->ak_public);
	kl_secret_free(f->ak_private, f->ak_private_len);
	f->ak_public = pub;
	f->ak_public_len = ak_pub_len;
	f->ak_private = priv;
	f->ak_private_len = ak_priv_len;
	snprintf(f->ek_algorithm, sizeof(f->ek_algorithm), "%s", ek_alg);
	snprintf(f->hash_alg, sizeof(f->hash_alg), "%s", hash_alg);
	snprintf(f->signing_alg, sizeof(f->signing_alg), "%s", signing_alg);
	snprintf(f->key_algorithm, sizeof(f->key_algorithm), "%s", key_algorithm);
	return KL_OK;
}

int
kl_akfile_matches(const struct kl_akfile *f, const unsigned char *ek_pub, size_t ek_pub_len,
    const char *hash_alg, const char *signing_alg)
{
	char h[65];

	if (f->ak_public == NULL || hash_alg == NULL || signing_alg == NULL)
		return 0;
	if (kl_crypto_sha256_hex(ek_pub, ek_pub_len, h) != 0 || strcmp(h, f->ek_public_sha256) != 0)
		return 0;
	return strcmp(f->hash_alg, hash_alg) == 0 && strcmp(f->signing_alg, signing_alg) == 0;
}
