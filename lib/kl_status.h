/*
 * kl_status.h - kl-agent's status file: one JSON object, replaced atomically
 * (kl_file_replace_mode: not fsynced, a report) after every state change, so
 * a monitor or a later `kl-agent --once` never reads half of it. It holds no
 * secret.
 *
 *   {"state":"Negotiating","agent_id":"d432fbb3-...","last_success":"2026-...Z",
 *    "consecutive_failures":0,"next_due":"2026-...Z","last_exit_class":0,
 *    "last_seconds_to_next_attestation":2,"verdict":{...},"pid":1234,
 *    "updated_at":"2026-...Z"}
 *
 * "verdict" is null until kl-agent has asked kl-verdict (--verdict,
 * verdict_every_cycles), then {"outcome":"pass"|"fail"|"unknown"|null,
 * "status":"PASS"|"FAIL"|...|null, "exit_class":0, "at":"2026-...Z",
 * "attestation_count":1, "last_pass":"2026-...Z"|null}: the last check's
 * outcome and exit class, and the standing as last read from the verifier.
 *
 * Times are RFC 3339 UTC; a time, id or value not known yet is null.
 * Also: "last_attempt", "last_cycle_seconds", "cycles_total" ({"ok":3,
 * "temporary":1,...}, by exit class) and "ima_entries_sent_total", which
 * kl-agent --once carries from run to run and the metrics (kl_metrics.h) show.
 */
#ifndef KL_STATUS_H
#define KL_STATUS_H

#include <sys/types.h>
#include <time.h>

#define KL_STATUS_CLASSES 6

struct kl_status {
	char state[32];			/* "Unregistered", "Negotiating", ... */
	char agent_id[128];		/* "" when not known yet */
	time_t last_success;		/* 0: never */
	long consecutive_failures;
	time_t next_due;		/* 0: nothing scheduled */
	int last_exit_class;		/* the last cycle's exit code, -1: none yet */
	long last_hint;			/* last seconds_to_next_attestation, -1: none */
	time_t last_attempt;		/* end of the last attempt, 0: none */
	double cycle_seconds;		/* the last cycle's duration, -1: none */
	long cycles[KL_STATUS_CLASSES];	/* cycles by exit class (kl_status_class) */
	long long ima_entries_sent;	/* IMA entries in accepted evidence, all time */
	struct kl_status_verdict {
		time_t at;		/* when kl-verdict last ran; 0: never (the rest unset) */
		int exit_class;		/* its exit code */
		char outcome[16];	/* "pass", "fail", "unknown"; "": no verdict that time */
		char status[16];	/* the standing as last read ("PASS", "FAIL"...); "": never read */
		long attestation_count;	/* the verifier's passes, as last read; -1: never read */
		time_t last_pass;	/* the verifier's last_successful_attestation; 0: none */
	} verdict;
};

/* The exit classes counted, in the order of cycles[]: 0 1 2 3 100 111. */
extern const int kl_status_class_rc[KL_STATUS_CLASSES];
/* The index in cycles[] of an exit class; anything else counts as 100. */
int kl_status_class(int rc);

/* An empty status: state "Unregistered", nothing known. */
void kl_status_init(struct kl_status *st);

/*
 * Write st (with pid and the current time) to path atomically, mode 0644:
 * it holds no secret, and monitors running as other users read it.
 * Returns KL_OK, or KL_PERM / KL_TEMP after one error line.
 */
int kl_status_write(const char *path, const struct kl_status *st, pid_t pid);

/*
 * Read a status file written earlier. A missing file gives an empty status
 * and KL_OK. A file that cannot be parsed gives an empty status, a warning
 * and KL_OK too: the status is informational and must never stop the agent.
 * Returns KL_TEMP only when the file exists but cannot be read.
 */
int kl_status_read(const char *path, struct kl_status *st);

#endif
