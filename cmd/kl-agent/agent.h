/*
 * agent.h - kl-agent's parts: main.c (options, start), config.c (load,
 * check, reload on HUP), registration.c (the registration record), cycle.c
 * (one attestation cycle and the state machine), schedule.c (delays, the
 * wait, the daemon loop), once.c (--once), step.c (running one step program
 * with fork/exec and pipes), sys.c (signals, sleeping, privileges),
 * verdict.c (kl-verdict after a cycle, the standing at the verifier).
 */
#ifndef KL_AGENT_H
#define KL_AGENT_H

#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "kl_backoff.h"
#include "kl_cli.h"
#include "kl_config.h"
#include "kl_status.h"

/* A step's class when kl-agent was told to stop (TERM/INT) while it ran. */
#define AGENT_STOPPED (-1)

/* The seeds' states (docs/protocol.md §9.2); every change is logged once. */
enum agent_state {
	ST_UNREGISTERED,
	ST_REGISTERED,
	ST_NEGOTIATING,
	ST_ATTESTING,
	ST_REGISTRATION_FAILED,
	ST_ATTESTATION_FAILED,
};

/* Whether the daemon's next success draws a phase spread (schedule.c). */
enum agent_rephase {
	REPHASE_NO,
	REPHASE_IF_LATE,	/* the first cycle: its start was splayed */
	REPHASE_YES,		/* after a failure */
};

struct agent {
	struct kl_config cfg;
	const struct kl_cli *cli;	/* our options (main.c) */
	int argc;
	char **argv;			/* our own argv (borrowed), re-parsed on HUP */
	char **fwd;			/* argv for a step: [0] set per run, our shared flags, NULL */
	char *step_dir;			/* where kl-register ... kl-submit are */
	char *status_path;		/* kl_status.h */
	char *reg_path;			/* the registration record (registration.c) */

	json_t *doc;			/* the document passed from step to step; holds the token */
	json_t *identity;		/* the configuration the "agent" member was registered with */
	enum agent_state state;
	struct kl_status st;
	struct kl_sched sched;
	unsigned attempt;		/* failed attempts since the last success: the backoff exponent */
	enum agent_rephase rephase;	/* daemon: spread the wait after the next success? (schedule.c) */
	uint64_t cycle_start_ms;	/* when the current cycle began (kl_now_ms) */
	bool verdict;			/* --verdict: kl-verdict after every cycle */
	long unverdicted;		/* cycles done since kl-verdict last ran (verdict_every_cycles) */
	int verdict_rc;			/* kl-verdict's class in the last cycle; -1: not run */

	/* Set by the last failing step, for the delay before the next attempt. */
	const char *failed_step;
	long retry_after;		/* its retry.after in seconds, -1: none */

	int sigfd;			/* signalfd for TERM, INT, HUP, CHLD */
	int stop;			/* TERM or INT arrived */
	int stop_sig;
	int reload;			/* HUP arrived, not yet handled */
	int config_broken;		/* the last reload failed: no cycle runs (config.c) */
};

/* main.c */
const char *agent_id(const struct agent *a);

/* config.c */
/*
 * Parse a->argv with a->cli (the shared flags as given go to pass, when not
 * NULL), load the configuration into cfg and check it. KL_OK; KL_CLI_DONE
 * after --help; else an exit code after one error line, cfg zeroed.
 */
int agent_config_load(struct agent *a, struct kl_config *cfg, char **pass);
/*
 * SIGHUP: the configuration again; a changed identity registers again. When
 * it is broken, config_broken is set until a reload succeeds: the steps read
 * the same files, so the previous configuration cannot be kept for them.
 */
int agent_reload(struct agent *a);

/* registration.c */
/* The configuration an "agent" member belongs to: change any, register again. */
json_t *agent_identity(const struct kl_config *c);
/* kl-register succeeded: remember the identity it registered, on disk too. */
void agent_registered(struct agent *a);
/* --once: take the "agent" member registered earlier with this same identity. */
void agent_load_registration(struct agent *a);

/* cycle.c */
const char *agent_state_name(enum agent_state s);
void agent_set_state(struct agent *a, enum agent_state s);
/* Persist the status (state, counters, next_due). KL_OK, or an error after one line. */
int agent_save_status(struct agent *a);
/*
 * One cycle: [kl-register] [kl-session] kl-negotiate kl-quote kl-submit
 * [kl-verdict], with re-authentication, re-negotiation and in-step retries.
 * kl-register runs when the document has no "agent" member, kl-session when
 * it has no session.token, kl-verdict when agent_verdict says so. Returns 0,
 * the class that ended the cycle (1, 2, 3, 100, 111), or AGENT_STOPPED; the
 * verdict's class goes to a->verdict_rc, not into the return.
 */
int agent_cycle(struct agent *a);
/*
 * Run one step on a->doc and take its document (kl-verdict's with its exit
 * 1 or 111 too: the verdict). Temporary failures are retried here, as
 * upstream retries a request (docs/protocol.md §9.3). Returns the class, or
 * AGENT_STOPPED.
 */
int agent_run_step(struct agent *a, const char *name);
/* A step said 2: drop the session and run kl-session (logged). Its class. */
int agent_reauth(struct agent *a, const char *step);

/* metrics.c */
/* A cycle ended with class rc at now: the counters of the status and metrics. */
void agent_count_cycle(struct agent *a, int rc, time_t now);
/* Write metrics_textfile from the status, when it is set; failures only warn. */
void agent_write_metrics(struct agent *a);

/* schedule.c */
/*
 * The delay before the next attempt after a failed one (a->attempt already
 * counts it): retry.after when the step gave one above 0, the maximum delay
 * for a permanent failure, else full-jitter backoff (at least 1 s after a
 * retry.after of 0). *why: "retry-after", "permanent", "retry-after-zero"
 * or "backoff".
 */
long agent_failure_delay_ms(struct agent *a, int class, const char **why);
/*
 * After a cycle that ended with rc: counters, state, the delay to the next
 * attempt (returned, in ms; *why says where it came from), one log line,
 * the status file.
 */
long agent_after_cycle(struct agent *a, int rc, const char **why);
/* The daemon: cycles and waits until TERM/INT; KL_OK, or KL_PERM. */
int agent_run_daemon(struct agent *a);

/* verdict.c */
/* kl-verdict is needed at all: --verdict, or verdict_every_cycles > 0. */
bool agent_verdict_used(const struct agent *a);
/*
 * After an accepted submission, when due: kl-verdict (re-authenticating once
 * on 2), the verdict into a->st.verdict, a change of standing logged once.
 * Sets a->verdict_rc (-1 when not due); returns KL_OK, or AGENT_STOPPED.
 */
int agent_verdict(struct agent *a);

/* once.c */
/* --once: one cycle; its class, and one JSON line on stdout. */
int agent_run_once(struct agent *a);

/* step.c */
/*
 * Run step `name` from a->step_dir with `in` on its stdin and our flags.
 * *code gets its exit class (128+n when killed by signal n; 100 when it
 * cannot be started); *out its stdout when that is a JSON object, else NULL.
 * Returns 0, or AGENT_STOPPED when TERM/INT came in meanwhile: the child was
 * stopped with SIGTERM and reaped.
 */
int step_run(struct agent *a, const char *name, const json_t *in, int *code, json_t **out);

/* sys.c */
/*
 * Descriptors inherited from our parent (`kl-agent 9>file`) must not reach
 * the steps: mark all above 2 close-on-exec, except the measurement logs a
 * parent named in KL_IMA_ML_FD / KL_MEASUREDBOOT_ML_FD for the steps.
 */
void sys_close_inherited(void);
int sys_signals_init(void);		/* block TERM INT HUP CHLD; a signalfd, or -1 */
void sys_signals_child(void);		/* in a child: default dispositions, nothing blocked */
/* Read pending signals into a->stop / a->reload. */
void sys_signals_read(struct agent *a);
/* Sleep ms, returning early (1) on TERM/INT or HUP, else 0. */
int sys_sleep(struct agent *a, long ms);
/* The directory of our own executable, or $KL_STEP_DIR (new string). */
char *sys_step_dir(void);
/*
 * run_as "user[:group]": keep the measurement logs open for the steps, drop
 * to user and group, check that root cannot be regained. KL_OK or KL_PERM.
 */
int sys_drop_privileges(const struct kl_config *cfg);

#endif
