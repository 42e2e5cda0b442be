/*
 * kl-quote: the evidence for a challenge (docs/protocol.md §6.3-§6.6, §8). No network.
 *
 * Reads the document with "agent" and "challenge" (docs/contract.md). Quotes
 * the selected PCRs of the chosen bank with the AK over the decoded nonce,
 * then reads the IMA log from the verifier's starting_offset (incrementally,
 * through a checkpoint in keylime_dir) and the UEFI log, as requested.
 * Writes the document plus "evidence" (dropping an earlier "submission"),
 * complete or not at all. A challenge that has expired, or that was made in
 * another boot, is refused with exit 3 without touching the TPM.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kl_identity.h"
#include "kl_ima.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_uefi.h"
#include "kl_util.h"
#include "kl_banned.h"

#define USAGE "usage: kl-quote [-v] [--tcti TCTI] <document >document"

/* The challenge must still be answerable (§5.3 challenges_expire_at, §6.6 boot_time). */
static int
check_fresh(const json_t *ch, time_t boot)
{
	const char *exp = kl_json_str(ch, "expires_at"), *bt = kl_json_str(ch, "boot_time");
	time_t t;

	if (exp == NULL || kl_time_parse(exp, &t) != 0)
		return kl_fail(KL_PERM, "stdin: challenge.expires_at is missing or not a time");
	if (t <= time(NULL))
		return kl_fail(KL_RENEGOTIATE, "challenge expired at %s: run kl-negotiate again", exp);
	if (bt == NULL || kl_time_parse(bt, &t) != 0)
		return kl_fail(KL_PERM, "stdin: challenge.boot_time is missing or not a time");
	if (t != boot)
		return kl_fail(KL_RENEGOTIATE, "challenge was made for the boot at %s, this boot "
		    "began at another time: run kl-negotiate again", bt);
	return KL_OK;
}

/* PCR list of the challenge into an int array (validated by kl-negotiate, checked again). */
static int
pcr_list(const json_t *q, int pcrs[24], size_t *n)
{
	json_t *a = json_object_get(q, "pcrs"), *v;
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 24)
		return kl_fail(KL_PERM, "stdin: challenge.tpm_quote.pcrs must list 1..24 PCRs");
	json_array_foreach(a, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 23)
			return kl_fail(KL_PERM, "stdin: challenge.tpm_quote.pcrs[%zu] is not a PCR number", i);
		pcrs[i] = (int)json_integer_value(v);
	}
	*n = i;
	return KL_OK;
}

static int
tpm_quote(struct kl_prog *p, const json_t *agent, const json_t *q, json_t **item)
{
	const char *nonce_b64, *hash, *sign;
	struct kl_quote out = { 0 };
	struct kl_identity id;
	struct kl_tpm tpm;
	unsigned char *nonce = NULL;
	size_t nlen, npcrs = 0;
	char *m = NULL, *s = NULL, *d = NULL;
	int pcrs[24], rc;

	if ((rc = kl_json_need_str(q, "challenge", "stdin: challenge.tpm_quote", &nonce_b64)) != KL_OK ||
	    (rc = kl_json_need_str(q, "hash_algorithm", "stdin: challenge.tpm_quote", &hash)) != KL_OK ||
	    (rc = kl_json_need_str(q, "signature_scheme", "stdin: challenge.tpm_quote", &sign)) != KL_OK ||
	    (rc = pcr_list(q, pcrs, &npcrs)) != KL_OK)
		return rc;
	if (kl_b64_decode(nonce_b64, &nonce, &nlen) != 0 || nlen == 0 || nlen > 64) {
		free(nonce);
		return kl_fail(KL_PERM, "stdin: challenge.tpm_quote.challenge is not base64 of 1..64 bytes");
	}
	if ((rc = kl_tpm_open(&tpm, kl_config_tcti(&p->cfg))) != KL_OK) {
		free(nonce);
		return rc;
	}
	if ((rc = kl_identity_load(&tpm, &p->cfg, agent, &id)) == KL_OK)
		rc = kl_tpm_quote(&tpm, id.ak, nonce, nlen, hash, sign, pcrs, npcrs, &out);
	kl_identity_release(&id);
	kl_tpm_close(&tpm);
	free(nonce);
	if (rc != KL_OK)
		return rc;
	m = kl_b64_encode(out.attest, out.attest_len);
	s = kl_b64_encode(out.sig, out.sig_len);
	d = kl_b64_encode(out.pcrs, out.pcrs_len);
	kl_tpm_quote_release(&out);
	if (m && s && d)
		*item = json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "evidence_class", "certification",
		    "evidence_type", "tpm_quote", "data", "subject_data", d, "message", m, "signature", s);
	free(m);
	free(s);
	free(d);
	return *item ? KL_OK : kl_fail(KL_TEMP, "out of memory");
}

static int
ima_log(struct kl_prog *p, const json_t *ch, time_t boot, json_t **item)
{
	json_t *il = kl_json_obj(ch, "ima_log"), *cap;
	char *log = kl_config_path(&p->cfg, p->cfg.ima_ml_path, NULL);
	char *ckpt = kl_config_path(&p->cfg, KL_IMA_CHECKPOINT_NAME, NULL);
	char *entries = NULL;
	long long off;
	uint64_t count = 0;
	size_t len = 0;
	int rc;

	if ((rc = kl_json_need_int(il, "starting_offset", "stdin: challenge.ima_log", &off)) != KL_OK)
		goto out;
	if (off < 0) {
		rc = kl_fail(KL_PERM, "stdin: challenge.ima_log.starting_offset is negative");
		goto out;
	}
	cap = json_object_get(il, "entry_count");
	rc = kl_ima_read(log, ckpt, boot, (uint64_t)off,
	    json_is_integer(cap) && json_integer_value(cap) > 0 ? (uint64_t)json_integer_value(cap) : 0,
	    &entries, &len, &count);
	if (rc != KL_OK)
		goto out;
	*item = json_pack("{s:s,s:s,s:{s:I,s:s%}}", "evidence_class", "log", "evidence_type", "ima_log",
	    "data", "entry_count", (json_int_t)count, "entries", entries, len);
	if (*item == NULL) {
		rc = kl_fail(KL_PERM, "IMA log %s: the entries are not valid UTF-8 text", log);
		goto out;
	}
	kl_info("IMA log: %llu entries from offset %lld", (unsigned long long)count, off);
	/* Tests check with this that the cost does not grow with the log (kl_ima.h). */
	kl_debug("IMA log %s: read %llu bytes of it for %zu bytes of entries", log,
	    (unsigned long long)kl_ima_bytes_read(), len);
out:
	free(entries);
	free(log);
	free(ckpt);
	return rc;
}

static int
uefi_log(struct kl_prog *p, json_t **item)
{
	char *path = kl_config_path(&p->cfg, p->cfg.measuredboot_ml_path, NULL);
	unsigned char *buf = NULL;
	char *b64 = NULL;
	size_t len = 0;
	uint64_t n;
	int rc;

	if ((rc = kl_uefi_read(path, KL_UEFI_LOG_MAX, &buf, &len, &n)) == KL_OK) {
		if ((b64 = kl_b64_encode(buf, len)) != NULL)
			*item = json_pack("{s:s,s:s,s:{s:s}}", "evidence_class", "log",
			    "evidence_type", "uefi_log", "data", "entries", b64);
		rc = *item ? KL_OK : kl_fail(KL_TEMP, "out of memory");
	}
	free(b64);
	free(buf);
	free(path);
	return rc;
}

static int
quote(struct kl_prog *p, json_t **out)
{
	static const char *const kinds[3] = { "tpm_quote", "uefi_log", "ima_log" };
	json_t *agent, *ch, *req, *v, *items = NULL, *ev, *got[3] = { NULL, NULL, NULL };
	time_t boot;
	size_t i;
	char now[32];
	int rc;

	if ((rc = kl_json_need_obj(p->doc, "agent", "stdin", &agent)) != KL_OK ||
	    (rc = kl_json_need_obj(p->doc, "challenge", "stdin", &ch)) != KL_OK)
		return rc;
	req = json_object_get(ch, "requested");
	if (!json_is_array(req) || json_array_size(req) == 0)
		return kl_fail(KL_PERM, "stdin: challenge.requested is missing or empty");
	if (kl_boot_time(NULL, &boot) != 0)
		return kl_fail(KL_PERM, "/proc/stat: no btime: cannot tell the boot time");
	if ((rc = check_fresh(ch, boot)) != KL_OK)
		return rc;
	/*
	 * The quote first, then the logs: the IMA log read after the quote holds
	 * every measurement folded into the quoted PCR 10 (§6.5).
	 */
	json_array_foreach(req, i, v) {
		const char *k = json_string_value(v);

		if (k == NULL || (strcmp(k, kinds[0]) && strcmp(k, kinds[1]) && strcmp(k, kinds[2]))) {
			rc = kl_fail(KL_PERM, "stdin: challenge.requested[%zu] is not an evidence type kl produces", i);
			goto out;
		}
		if (json_object_get(ch, k) == NULL) {
			rc = kl_fail(KL_PERM, "stdin: challenge.requested names %s but challenge.%s is missing", k, k);
			goto out;
		}
	}
	if ((rc = tpm_quote(p, agent, kl_json_obj(ch, "tpm_quote"), &got[0])) != KL_OK)
		goto out;
	if (json_object_get(ch, "uefi_log") && (rc = uefi_log(p, &got[1])) != KL_OK)
		goto out;
	if (json_object_get(ch, "ima_log") && (rc = ima_log(p, ch, boot, &got[2])) != KL_OK)
		goto out;
	if ((rc = check_fresh(ch, boot)) != KL_OK)
		goto out;
	/* In the verifier's order (§6.2). */
	items = json_array();
	json_array_foreach(req, i, v)
		for (int k = 0; k < 3; k++)
			if (!strcmp(json_string_value(v), kinds[k]))
				json_array_append(items, got[k]);
	kl_time_format(time(NULL), now);
	ev = json_pack("{s:O,s:s,s:O}", "challenge", json_object_get(kl_json_obj(ch, "tpm_quote"), "challenge"),
	    "quoted_at", now, "evidence_collected", items);
	if (ev == NULL || (*out = json_deep_copy(p->doc)) == NULL) {
		json_decref(ev);
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	json_object_del(*out, "submission");
	json_object_del(*out, "retry");
	json_object_set_new(*out, "evidence", ev);
out:
	for (int k = 0; k < 3; k++)
		json_decref(got[k]);
	json_decref(items);
	return rc;
}

int
main(int argc, char *argv[])
{
	return kl_prog_main("kl-quote", argc, argv, USAGE, quote);
}
