/* kl_status.c - see kl_status.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kl_file.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_status.h"
#include "kl_util.h"
#include "kl_banned.h"

#define STATUS_MAX (64u << 10)

const int kl_status_class_rc[KL_STATUS_CLASSES] = {
	KL_OK, KL_REFUSED, KL_REAUTH, KL_RENEGOTIATE, KL_PERM, KL_TEMP,
};

int
kl_status_class(int rc)
{
	for (int i = 0; i < KL_STATUS_CLASSES; i++)
		if (kl_status_class_rc[i] == rc)
			return i;
	return 4;	/* KL_PERM, as kl-agent treats an unknown code */
}

void
kl_status_init(struct kl_status *st)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->state, sizeof(st->state), "%s", "Unregistered");
	st->last_exit_class = -1;
	st->last_hint = -1;
	st->cycle_seconds = -1;
	st->verdict.attestation_count = -1;
}

/* {"ok":3,"temporary":1,...}: every class, zeros too. */
static json_t *
cycles_json(const struct kl_status *st)
{
	json_t *o = json_object();

	for (int i = 0; o != NULL && i < KL_STATUS_CLASSES; i++)
		json_object_set_new(o, kl_rc_name(kl_status_class_rc[i]), json_integer(st->cycles[i]));
	return o;
}

/* An RFC 3339 string, or null for 0 ("never"). */
static json_t *
time_or_null(time_t t)
{
	char buf[32];

	if (t == 0)
		return json_null();
	kl_time_format(t, buf);
	return json_string(buf);
}

/* A string, or null for "" (not known). */
static json_t *
str_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

static json_t *
verdict_json(const struct kl_status_verdict *v)
{
	if (v->at == 0)
		return json_null();
	return json_pack("{s:o, s:o, s:i, s:o, s:o, s:o}", "outcome", str_or_null(v->outcome),
	    "status", str_or_null(v->status), "exit_class", v->exit_class, "at", time_or_null(v->at),
	    "attestation_count", v->attestation_count < 0 ? json_null() :
	    json_integer(v->attestation_count), "last_pass", time_or_null(v->last_pass));
}

int
kl_status_write(const char *path, const struct kl_status *st, pid_t pid)
{
	json_t *o;
	char *s;
	size_t n;
	int rc;

	o = json_object();
	if (o == NULL)
		return kl_fail(KL_TEMP, "%s: out of memory", path);
	json_object_set_new(o, "state", json_string(st->state));
	json_object_set_new(o, "agent_id", st->agent_id[0] ? json_string(st->agent_id) : json_null());
	json_object_set_new(o, "last_success", time_or_null(st->last_success));
	json_object_set_new(o, "consecutive_failures", json_integer(st->consecutive_failures));
	json_object_set_new(o, "next_due", time_or_null(st->next_due));
	json_object_set_new(o, "last_exit_class",
	    st->last_exit_class < 0 ? json_null() : json_integer(st->last_exit_class));
	json_object_set_new(o, "last_seconds_to_next_attestation",
	    st->last_hint < 0 ? json_null() : json_integer(st->last_hint));
	json_object_set_new(o, "last_attempt", time_or_null(st->last_attempt));
	json_object_set_new(o, "last_cycle_seconds",
	    st->cycle_seconds < 0 ? json_null() : json_real(st->cycle_seconds));
	json_object_set_new(o, "cycles_total", cycles_json(st));
	json_object_set_new(o, "ima_entries_sent_total", json_integer(st->ima_entries_sent));
	json_object_set_new(o, "verdict", verdict_json(&st->verdict));
	json_object_set_new(o, "pid", json_integer(pid));
	json_object_set_new(o, "updated_at", time_or_null(time(NULL)));

	s = kl_json_dump(o, &n);
	json_decref(o);
	if (s == NULL)
		return kl_fail(KL_TEMP, "%s: cannot encode the status", path);
	s[n] = '\n';	/* over the NUL */
	rc = kl_file_replace_mode(path, s, n + 1, 0644);
	free(s);
	return rc;
}

static time_t
get_time(const json_t *o, const char *key)
{
	const char *s = kl_json_str(o, key);
	time_t t;

	return (s != NULL && kl_time_parse(s, &t) == 0) ? t : 0;
}

static long
get_long(const json_t *o, const char *key, long dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

static void
verdict_read(const json_t *o, struct kl_status_verdict *v)
{
	const char *s;

	if (!json_is_object(o) || (v->at = get_time(o, "at")) == 0)
		return;
	v->exit_class = (int)get_long(o, "exit_class", -1);
	if ((s = kl_json_str(o, "outcome")) != NULL)
		snprintf(v->outcome, sizeof(v->outcome), "%s", s);
	if ((s = kl_json_str(o, "status")) != NULL)
		snprintf(v->status, sizeof(v->status), "%s", s);
	v->attestation_count = get_long(o, "attestation_count", -1);
	v->last_pass = get_time(o, "last_pass");
}

int
kl_status_read(const char *path, struct kl_status *st)
{
	char *buf = NULL;
	size_t len = 0;
	json_error_t e;
	json_t *o;
	const char *s;
	int rc;

	kl_status_init(st);
	rc = kl_file_read(path, STATUS_MAX, 1, &buf, &len);
	if (rc != KL_OK)
		return rc == KL_TEMP ? KL_TEMP : KL_OK;
	if (buf == NULL)
		return KL_OK;
	o = json_loadb(buf, len, 0, &e);
	free(buf);
	if (!json_is_object(o)) {
		kl_warn("%s:%d:%d: not a status file, starting afresh", path,
		    o ? 1 : e.line, o ? 1 : e.column);
		json_decref(o);
		return KL_OK;
	}
	if ((s = kl_json_str(o, "state")) != NULL)
		snprintf(st->state, sizeof(st->state), "%s", s);
	if ((s = kl_json_str(o, "agent_id")) != NULL)
		snprintf(st->agent_id, sizeof(st->agent_id), "%s", s);
	st->last_success = get_time(o, "last_success");
	st->next_due = get_time(o, "next_due");
	st->consecutive_failures = get_long(o, "consecutive_failures", 0);
	if (st->consecutive_failures < 0)
		st->consecutive_failures = 0;
	st->last_exit_class = (int)get_long(o, "last_exit_class", -1);
	st->last_hint = get_long(o, "last_seconds_to_next_attestation", -1);
	st->last_attempt = get_time(o, "last_attempt");
	if (json_is_number(json_object_get(o, "last_cycle_seconds")))
		st->cycle_seconds = json_number_value(json_object_get(o, "last_cycle_seconds"));
	for (int i = 0; i < KL_STATUS_CLASSES; i++) {
		long v = get_long(kl_json_obj(o, "cycles_total"), kl_rc_name(kl_status_class_rc[i]), 0);

		st->cycles[i] = v < 0 ? 0 : v;
	}
	st->ima_entries_sent = get_long(o, "ima_entries_sent_total", 0);
	if (st->ima_entries_sent < 0)
		st->ima_entries_sent = 0;
	verdict_read(json_object_get(o, "verdict"), &st->verdict);
	json_decref(o);
	return KL_OK;
}
