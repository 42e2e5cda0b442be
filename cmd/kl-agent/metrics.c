/*
 * metrics.c - what kl-agent counts for its status file and its Prometheus
 * textfile (kl_metrics.h): cycles by exit class, their duration, the IMA
 * entries the verifier accepted.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_metrics.h"
#include "kl_rc.h"
#include "kl_version.h"
#include "kl_util.h"
#include "kl_banned.h"

/* entry_count of the ima_log evidence kl-quote collected, 0 when none. */
static long long
ima_entries(const json_t *doc)
{
	json_t *list = json_object_get(kl_json_obj(doc, "evidence"), "evidence_collected"), *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *type = kl_json_str(e, "evidence_type");
		json_t *n = json_object_get(kl_json_obj(e, "data"), "entry_count");

		if (type != NULL && strcmp(type, "ima_log") == 0 && json_is_integer(n) &&
		    json_integer_value(n) > 0)
			return json_integer_value(n);
	}
	return 0;
}

void
agent_count_cycle(struct agent *a, int rc, time_t now)
{
	uint64_t end = kl_now_ms();

	a->st.cycles[kl_status_class(rc)]++;
	a->st.last_attempt = now;
	if (a->cycle_start_ms != 0 && end >= a->cycle_start_ms)
		a->st.cycle_seconds = (double)(end - a->cycle_start_ms) / 1000.0;
	/* Only a submission the verifier took (202) sent its IMA entries. */
	if (rc == KL_OK && kl_json_obj(a->doc, "submission") != NULL)
		a->st.ima_entries_sent += ima_entries(a->doc);
}

void
agent_write_metrics(struct agent *a)
{
	char *path = kl_config_metrics_path(&a->cfg);

	if (path == NULL)
		return;		/* off (or out of memory: the next write tries again) */
	if (kl_metrics_write(path, &a->st, kl_version()) != KL_OK)
		kl_warn("%s: metrics not written", path);
	free(path);
}
