/*
 * kl_prog.h - the frame every step program's main() uses:
 *
 *	int main(int argc, char *argv[])
 *	{
 *		return kl_prog_main("kl-quote", argc, argv, &cli, quote);
 *	}
 *
 * where cli declares the program's own options (kl_cli.h) and
 * quote(struct kl_prog *p, json_t **out) reads p->doc and p->cfg and sets
 * *out to the output document (docs/contract.md) or returns an exit code.
 *
 * kl_prog_start: kl_prog_init, TERM/INT end the step (below), argv parsed
 * (kl_cli.h), configuration loaded (kl_config.h), then the whole stdin
 * document read (kl_json.h) -- before any TPM or network access.
 */
#ifndef KL_PROG_H
#define KL_PROG_H

#include <signal.h>
#include <jansson.h>

#include "kl_config.h"

struct kl_prog {
	const char *name;
	struct kl_config cfg;
	json_t *doc;		/* the input document (owned) */
	int help;		/* -h was given: usage printed, exit 0 */
};

/*
 * When set (kl_http's dry-run mode, kl_http.h), kl_prog_finish writes this
 * document instead of the step's and exits 0, whatever the step returned.
 */
extern json_t *kl_prog_answer;

/*
 * SIGTERM/SIGINT: kl_stop_requested is set to the signal, and the step ends
 * at once with one line and exit 111 -- unless kl_stop_deferred is set (kl_tpm
 * sets it while the TPM is open): then the TPM layer ends the command in
 * flight and flushes, and an alarm ends the step after a second at the latest.
 */
extern volatile sig_atomic_t kl_stop_requested;
extern volatile sig_atomic_t kl_stop_deferred;

/* The longest wait for a TPM answer (kl_tpm.c): tpm_timeout_seconds, default 120. */
extern long kl_tpm_timeout_seconds;

/*
 * Where kl_tpm keeps its marker KL_TPM_MARKER_FILE (kl_tpm.h): keylime_dir,
 * set by kl_prog_start. NULL (a program without kl_prog_start): kl_tpm looks
 * for leftovers at every open of a TPM without a resource manager.
 */
extern const char *kl_tpm_state_dir;

/* "<prog>: error: stopped by SIGTERM" and _exit(111). Async-signal-safe. */
void kl_stop_exit(void) __attribute__((noreturn));

/*
 * The prologue of every kl program, kl-agent included: fds 0-2 open (so no
 * file we open becomes "stdout"), logging as name, umask 077, SIGPIPE
 * ignored, a jansson allocator that wipes freed memory.
 */
void kl_prog_init(const char *name);

/*
 * Returns KL_OK, or an exit code after one error line. After -h it returns
 * KL_OK with p->help set; kl_prog_finish then exits 0 without output.
 */
int kl_prog_start(struct kl_prog *p, const char *name, int argc, char *argv[], const struct kl_cli *cli);

/*
 * Write out (when rc is KL_OK, or when rc is KL_TEMP and out holds a "retry"
 * member), release everything, and return the exit code. Takes ownership of out
 * (may be NULL).
 */
int kl_prog_finish(struct kl_prog *p, int rc, json_t *out);

/* kl_prog_start, run (unless -h), kl_prog_finish: a step's whole main(). */
int kl_prog_main(const char *name, int argc, char *argv[], const struct kl_cli *cli,
    int (*run)(struct kl_prog *p, json_t **out));

/*
 * For a temporary failure with a server-given delay: a copy of doc with
 * "retry": {"step": name, "status": status, "after": seconds}.
 */
json_t *kl_prog_retry_doc(const struct kl_prog *p, long status, long after);

#endif
