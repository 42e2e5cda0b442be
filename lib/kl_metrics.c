/* kl_metrics.c - see kl_metrics.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_file.h"
#include "kl_log.h"
#include "kl_metrics.h"
#include "kl_rc.h"
#include "kl_banned.h"

/* A growing text buffer; err is set once anything failed. */
struct buf {
	char *s;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3)))
static void
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int pass = 0; !b->err && pass < 2; pass++) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = 1;
		} else if (b->s != NULL && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		} else {
			size_t cap = b->cap * 2 + (size_t)n + 256;
			char *p = realloc(b->s, cap);

			if (p == NULL)
				b->err = 1;
			else {
				b->s = p;
				b->cap = cap;
			}
		}
	}
}

/* A label value escaped as the text format wants: \\ \" \n. */
static void
put_label(struct buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(b, "\\%c", *v);
		else if (*v == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *v);
	}
}

static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *
kl_metrics_text(const struct kl_status *st, const char *version)
{
	struct buf b = { 0 };

	head(&b, "kl_last_success_timestamp_seconds", "gauge",
	    "Time of the last successful attestation cycle (0: never).");
	put(&b, "kl_last_success_timestamp_seconds %lld\n", (long long)st->last_success);
	head(&b, "kl_last_attempt_timestamp_seconds", "gauge",
	    "Time of the last attestation attempt (0: none yet).");
	put(&b, "kl_last_attempt_timestamp_seconds %lld\n", (long long)st->last_attempt);
	head(&b, "kl_consecutive_failures", "gauge", "Failed cycles since the last success.");
	put(&b, "kl_consecutive_failures %ld\n", st->consecutive_failures);
	head(&b, "kl_cycles_total", "counter", "Attestation cycles by exit class.");
	for (int i = 0; i < KL_STATUS_CLASSES; i++)
		put(&b, "kl_cycles_total{result=\"%s\"} %ld\n",
		    kl_rc_name(kl_status_class_rc[i]), st->cycles[i]);
	head(&b, "kl_cycle_duration_seconds", "gauge", "Duration of the last cycle.");
	put(&b, "kl_cycle_duration_seconds %.3f\n", st->cycle_seconds < 0 ? 0.0 : st->cycle_seconds);
	head(&b, "kl_ima_entries_sent_total", "counter", "IMA log entries sent in accepted evidence.");
	put(&b, "kl_ima_entries_sent_total %lld\n", st->ima_entries_sent);
	head(&b, "kl_next_attestation_timestamp_seconds", "gauge",
	    "Time of the next scheduled attempt (0: none).");
	put(&b, "kl_next_attestation_timestamp_seconds %lld\n", (long long)st->next_due);
	/* Only after kl-verdict has read the standing (kl-agent --verdict, verdict_every_cycles). */
	if (st->verdict.status[0] != '\0') {
		head(&b, "kl_verdict", "gauge",
		    "The agent's standing at the verifier as kl-verdict last read it (1 for that status).");
		put(&b, "kl_verdict{status=\"");
		put_label(&b, st->verdict.status);
		put(&b, "\"} 1\n");
		head(&b, "kl_last_pass_timestamp_seconds", "gauge",
		    "The verifier's last successful attestation of this agent (0: none).");
		put(&b, "kl_last_pass_timestamp_seconds %lld\n", (long long)st->verdict.last_pass);
	}
	head(&b, "kl_info", "gauge", "kl-agent's version and agent id.");
	put(&b, "kl_info{version=\"");
	put_label(&b, version);
	put(&b, "\",agent_id=\"");
	put_label(&b, st->agent_id);
	put(&b, "\"} 1\n");
	if (b.err) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

int
kl_metrics_write(const char *path, const struct kl_status *st, const char *version)
{
	char *text = kl_metrics_text(st, version);
	int rc;

	if (text == NULL)
		return kl_fail(KL_TEMP, "%s: out of memory", path);
	rc = kl_file_replace_mode(path, text, strlen(text), 0644);
	free(text);
	return rc;
}
