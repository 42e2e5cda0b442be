/*
 * kl_cli.h - the command line of every kl program: argv parsing, the usage
 * line and --help, the options every program shares, and each program's own.
 *
 * Shared options, upstream keylime_push_model_agent's flags as upstream
 * (clap) means them, and kl's:
 *   -v/--verifier-url URL, --registrar-url URL, --agent-identifier ID,
 *   --attestation-interval-seconds N, --ca-certificate FILE, --api-version V,
 *   --timeout MS, --insecure [BOOL], --avoid-tpm [BOOL], -V/--version,
 *   -h/--help; kl's --tcti TCTI, --verbose (repeated: debug), --log-level LEVEL.
 *   Upstream's test leftovers (-j/--json-file, --attestation-index,
 *   --session-index, --message-type, --method) are accepted with a warning.
 *   The log level: RUST_LOG (kl_log_rust_log), replaced by --log-level,
 *   raised to info by --verbose and to debug by --verbose --verbose.
 *   -v is no longer kl's verbose: "-v" alone, "-vv" or "-v --flag" is a usage
 *   error that names --verbose.
 *
 * A program's own options are one table, one line an option, each pointing
 * at where its value goes:
 *
 *	static bool once;
 *	static const struct kl_cli_opt own[] = {
 *		KL_CLI_FLAG("once", &once, "run one cycle and exit"),
 *		KL_CLI_END,
 *	};
 *	static const struct kl_cli cli = { .opts = own };
 *
 * An option of no table (another program's) is a usage error: one error
 * line and the usage line on stderr, KL_PERM; an unknown long option gets
 * the nearest known one as a suggestion ("did you mean --verifier-url?").
 * --help lists the program's own options and the shared ones. Long options
 * must be spelt out in full (as upstream's clap parser wants): "--onc" is not
 * "--once". A value that looks like an option ("--verifier-url --insecure")
 * is a missing value, as in clap.
 */
#ifndef KL_CLI_H
#define KL_CLI_H

#include <stdbool.h>

/* kl_cli_parse: the help or the version was printed; the program exits 0 doing nothing. */
#define KL_CLI_DONE (-1)

/*
 * One option. Exactly one target is set; it tells what the option takes:
 * flag (no value, set true; with arg: an optional true/false, "missing"
 * when none is given, clap's default_missing_value), count (no value,
 * counted: --verbose --verbose), str (a value, kept as given: borrowed from
 * argv), num (a value, 1..INT_MAX).
 */
struct kl_cli_opt {
	const char *name;	/* long name, without "--" */
	char short_name;	/* 'v', or 0 */
	const char *arg;	/* the value's name in --help ("URL"); NULL for flag and count */
	const char *help;	/* one line for --help; NULL: not listed */
	bool *flag;
	int *count;
	const char **str;
	long *num;
	/* str: NULL when arg is fine, else what was expected ("a version like v3.0"). */
	const char *(*check)(const char *arg);
	const char *missing;	/* flag with arg: "true" or "false" */
};

#define KL_CLI_FLAG(name, target, help) \
	{ name, 0, NULL, help, target, NULL, NULL, NULL, NULL, NULL }
#define KL_CLI_STR(name, arg, target, help) \
	{ name, 0, arg, help, NULL, NULL, target, NULL, NULL, NULL }
#define KL_CLI_NUM(name, arg, target, help) \
	{ name, 0, arg, help, NULL, NULL, NULL, target, NULL, NULL }
#define KL_CLI_END { NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/* A program's command line. */
struct kl_cli {
	const struct kl_cli_opt *opts;	/* its own options, ended by KL_CLI_END; may be NULL */
	const char *operands;		/* end of the usage line: "<document >document", or NULL */
	const char *about;		/* more lines at the end of --help, or NULL */
	const char *version_note;	/* one more line at the end of --version, or NULL */
};

/* The shared options' values. Strings are borrowed from argv; 0/NULL: not given. */
struct kl_cli_flags {
	const char *verifier_url, *registrar_url, *agent_id, *ca, *api_version, *tcti;
	const char *log_level;
	long interval, timeout;
	bool insecure, avoid_tpm;
	int verbose;	/* out: the log level (KL_LOG_*, kl_log.h): RUST_LOG and the options */
	/*
	 * In: NULL, or room for argc pointers. Out: the shared options exactly
	 * as given, NULL-terminated, for a program that runs the others
	 * (kl-agent passes them on to the steps, without its own).
	 */
	char **pass;
};

/*
 * Parse argv (from argv[1]) into f (zeroed first, but for f->pass) and the
 * program's targets. Sets the global kl_verbose to f->verbose at once, so
 * that the configuration can log at that level. Returns KL_OK; KL_CLI_DONE
 * after printing the help or the version on stdout (-h and -V stop the
 * parsing); KL_PERM after a usage
 * error (one error line, then the usage line, on stderr); KL_TEMP when out
 * of memory. Never reads a file. May be called again on the same argv.
 */
int kl_cli_parse(const struct kl_cli *cli, int argc, char *argv[], struct kl_cli_flags *f);

/* A decimal integer, nothing else (no blanks, no "0x", no trailing text): 0, or -1. */
int kl_cli_decimal(const char *s, long long *out);

/* "v3.0", "3.0", "/v3" ... -> "/v3.0" in out; -1 when v is not a version. */
int kl_cli_api_prefix(const char *v, char out[20]);

#endif
