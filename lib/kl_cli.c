/*
 * kl_cli.c - see kl_cli.h.
 *
 * The shared options and the program's own are one list of struct
 * kl_cli_opt, built per call (the shared ones point into the caller's
 * struct kl_cli_flags), turned into getopt_long's table: the value of
 * option i is KL_CLI_VAL0 + i, so the same code serves both, and the usage
 * line and --help are printed from the same list.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kl_cli.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_version.h"
#include "kl_banned.h"

#define KL_CLI_VAL0	256	/* getopt_long value of option 0; short options are < 256 */
#define N_OPTS		80	/* the shared options and a program's own */

/* keylime_push_model_agent's test-only flags: accepted, ignored, warned about. */
static const struct { const char *name; char short_name; } ignored[] = {
	{ "json-file", 'j' }, { "attestation-index", 0 }, { "session-index", 0 },
	{ "message-type", 0 }, { "method", 0 },
};
#define N_IGNORED (sizeof(ignored) / sizeof(ignored[0]))

/* kl's -v was verbose before it became upstream's --verifier-url. */
static const char *const old_v =
	"-v is --verifier-url (as in keylime_push_model_agent) and needs a URL; "
	"for more messages use --verbose (twice: debug) or --log-level LEVEL";

static const char *const config_note =
	"config: $KL_SYSCONFDIR/agent.conf (default /etc/keylime), agent.conf.d/*.conf,\n"
	"or $KEYLIME_AGENT_CONFIG; then KEYLIME_AGENT_<KEY> and KEYLIME_DIR; then options.\n";

/* All options of one parse: the shared ones, then the program's own. */
struct optlist {
	struct kl_cli_opt o[N_OPTS];
	size_t n, nshared;
	bool help, version;
	int verbose;	/* --verbose, counted */
};

int
kl_cli_api_prefix(const char *v, char out[20])
{
	const char *p = v;
	size_t i, dots = 0;

	if (*p == '/')
		p++;
	if (*p == 'v')
		p++;
	if (*p < '0' || *p > '9' || strlen(p) > 16)
		return -1;
	for (i = 0; p[i]; i++) {
		if (p[i] == '.' && i > 0 && p[i - 1] != '.' && p[i + 1] != '\0' && ++dots == 1)
			continue;
		if (p[i] < '0' || p[i] > '9')
			return -1;
	}
	snprintf(out, 20, "/v%s", p);
	return 0;
}

int
kl_cli_decimal(const char *s, long long *out)
{
	char *end;

	if (!((s[0] >= '0' && s[0] <= '9') ||
	    ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')))
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return (errno != 0 || *end != '\0') ? -1 : 0;
}

static const char *
check_api_version(const char *arg)
{
	char prefix[20];

	return kl_cli_api_prefix(arg, prefix) == 0 ? NULL : "a version like v3.0";
}

static const char *
check_level(const char *arg)
{
	int level;

	return kl_log_level(arg, strlen(arg), &level) == 0 ? NULL :
	    "error, warn, notice, info, debug or trace";
}

/* The list for one parse; KL_PERM when the program's table is unusable. */
static int
make_list(struct optlist *l, const struct kl_cli *cli, struct kl_cli_flags *f)
{
	const struct kl_cli_opt shared[] = {
		{ "verifier-url", 'v', "URL", "verifier base URL (verifier_url)",
		    NULL, NULL, &f->verifier_url, NULL, NULL, NULL },
		KL_CLI_STR("registrar-url", "URL", &f->registrar_url,
		    "registrar URL (default from registrar_ip/port)"),
		KL_CLI_STR("agent-identifier", "ID", &f->agent_id, "agent UUID (uuid)"),
		KL_CLI_NUM("attestation-interval-seconds", "N", &f->interval,
		    "attestation_interval_seconds"),
		KL_CLI_STR("ca-certificate", "FILE", &f->ca, "verifier CA (verifier_tls_ca_cert)"),
		{ "api-version", 0, "V", "verifier API version (default v3.0)",
		    NULL, NULL, &f->api_version, NULL, check_api_version, NULL },
		KL_CLI_NUM("timeout", "MS", &f->timeout, "HTTP timeout in milliseconds (default 5000)"),
		{ "insecure", 0, "BOOL", "no TLS verification (testing only); alone: true",
		    &f->insecure, NULL, NULL, NULL, NULL, "true" },
		{ "avoid-tpm", 0, "BOOL", "true is refused (kl needs a TPM); alone: false, as upstream",
		    &f->avoid_tpm, NULL, NULL, NULL, NULL, "false" },
		KL_CLI_STR("tcti", "TCTI", &f->tcti,
		    "TPM access (default: $TCTI or device:/dev/tpmrm0)"),
		{ "verbose", 0, NULL, "info lines; twice: debug lines", NULL, &l->verbose,
		    NULL, NULL, NULL, NULL },
		{ "log-level", 0, "LEVEL", "error, warn, notice (default), info, debug, trace "
		    "(over RUST_LOG)", NULL, NULL, &f->log_level, NULL, check_level, NULL },
		{ "version", 'V', NULL, "the versions of kl and of its libraries",
		    &l->version, NULL, NULL, NULL, NULL, NULL },
		{ "help", 'h', NULL, "this help", &l->help, NULL, NULL, NULL, NULL, NULL },
	};

	memcpy(l->o, shared, sizeof(shared));
	l->n = l->nshared = sizeof(shared) / sizeof(shared[0]);
	for (size_t i = 0; cli && cli->opts && cli->opts[i].name; i++) {
		for (size_t j = 0; j < l->n; j++)
			if (strcmp(l->o[j].name, cli->opts[i].name) == 0)
				return kl_fail(KL_PERM, "internal: option --%s declared twice",
				    cli->opts[i].name);
		if (l->n == sizeof(l->o) / sizeof(l->o[0]) - 1)
			return kl_fail(KL_PERM, "internal: too many options");
		l->o[l->n++] = cli->opts[i];
	}
	return KL_OK;
}

/* "usage: kl-agent [--once] [options] <operands>" */
static void
print_usage(FILE *out, const struct kl_cli *cli, const struct optlist *l)
{
	fprintf(out, "usage: %s", kl_progname);
	for (size_t i = l->nshared; i < l->n; i++)
		fprintf(out, " [--%s%s%s]", l->o[i].name, l->o[i].arg ? " " : "",
		    l->o[i].arg ? l->o[i].arg : "");
	fprintf(out, " [options]%s%s\n", cli && cli->operands ? " " : "",
	    cli && cli->operands ? cli->operands : "");
}

static void
print_opts(const struct optlist *l, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		const struct kl_cli_opt *o = &l->o[i];
		char left[64], sh[8] = "";

		if (o->help == NULL)
			continue;
		if (o->short_name)
			snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
		snprintf(left, sizeof(left), "%s--%s%s%s%s%s", sh, o->name, o->arg ? " " : "",
		    o->flag && o->arg ? "[" : "", o->arg ? o->arg : "", o->flag && o->arg ? "]" : "");
		printf("  %-34s  %s\n", left, o->help);
	}
}

static void
print_help(const struct kl_cli *cli, const struct optlist *l)
{
	print_usage(stdout, cli, l);
	if (l->n > l->nshared) {
		printf("options of %s:\n", kl_progname);
		print_opts(l, l->nshared, l->n);
	}
	printf("options of every kl program (as keylime_push_model_agent; they override "
	    "agent.conf and KEYLIME_AGENT_*):\n");
	print_opts(l, 0, l->nshared);
	fputs(config_note, stdout);
	if (cli && cli->about)
		fputs(cli->about, stdout);
	fflush(stdout);
}

__attribute__((format(printf, 3, 4)))
static int
usage_error(const struct kl_cli *cli, const struct optlist *l, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kl_err("%s", msg);
	print_usage(stderr, cli, l);
	return KL_PERM;
}

/* argv[i] for the message, made printable. */
static const char *
shown(const char *arg, char out[64])
{
	kl_log_sanitize(out, 64, arg, strlen(arg));
	return out;
}

/* The value of option o; KL_PERM after a usage error. */
static int
take_value(const struct kl_cli *cli, const struct optlist *l, const struct kl_cli_opt *o,
    const char *arg)
{
	const char *want = NULL;
	long long n = 0;
	char s[64];

	if (o->num && (kl_cli_decimal(arg, &n) != 0 || n < 1 || n > INT_MAX))
		want = "a positive integer";
	else if (o->flag && strcmp(arg, "true") != 0 && strcmp(arg, "false") != 0)
		want = "true or false";
	else if (o->check)
		want = o->check(arg);
	if (want)
		return usage_error(cli, l, "--%s: expected %s, not \"%s\"", o->name, want, shown(arg, s));
	if (o->num)
		*o->num = (long)n;
	else if (o->flag)
		*o->flag = strcmp(arg, "true") == 0;
	else if (o->str)
		*o->str = arg;
	return KL_OK;
}

/* Set option o's target from its value arg (NULL: none); KL_PERM after a usage error. */
static int
take(const struct kl_cli *cli, const struct optlist *l, const struct kl_cli_opt *o,
    const char *arg)
{
	if (o->flag && o->arg && arg == NULL)
		arg = o->missing;
	if (o->flag && o->arg == NULL)
		*o->flag = true;
	else if (o->count)
		(*o->count)++;
	else
		return take_value(cli, l, o, arg);
	return KL_OK;
}

/* getopt_long takes "--onc" for "--once": upstream (clap) does not. */
static bool
spelt_out(const char *word, const char *name)
{
	size_t len = strlen(name);

	return strncmp(word + 2, name, len) == 0 && (word[2 + len] == '\0' || word[2 + len] == '=');
}

/* Optimal string alignment distance (edits and swaps of neighbours), both < 64 bytes. */
static size_t
distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[64][64];

	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

/*
 * The known option nearest to the unknown "--word[=value]", or NULL when none
 * is near: an abbreviation of one, or at most 1 edit (2 beyond 4 letters, 3
 * beyond 10), so that "--verifier_url" finds --verifier-url.
 */
static const char *
nearest(const struct optlist *l, const char *word)
{
	const char *name = word + 2, *best = NULL;
	size_t len = strcspn(name, "="), best_d = len <= 4 ? 2 : len <= 10 ? 3 : 4;

	if (strncmp(word, "--", 2) != 0 || len == 0 || len >= 64)
		return NULL;
	for (size_t i = 0; i < l->n + N_IGNORED; i++) {
		const char *c = i < l->n ? l->o[i].name : ignored[i - l->n].name;
		size_t d = strlen(c) < 64 ? distance(name, len, c, strlen(c)) : 64;

		if (len >= 3 && len < strlen(c) && strncmp(name, c, len) == 0)
			d = 1;
		if (d < best_d) {
			best_d = d;
			best = c;
		}
	}
	return best;
}

static int
unknown(const struct kl_cli *cli, const struct optlist *l, const char *word)
{
	const char *near = nearest(l, word);
	char s[64];

	if (near)
		return usage_error(cli, l, "unknown option \"%s\"; did you mean --%s?",
		    shown(word, s), near);
	return usage_error(cli, l, "unknown option \"%s\"", shown(word, s));
}

/* getopt_long's table: the list, then the ignored flags. NULL when out of memory. */
static struct option *
getopt_table(const struct optlist *l, char shorts[32])
{
	struct option *t = calloc(l->n + N_IGNORED + 1, sizeof(*t));
	size_t ns = 0;

	if (t == NULL)
		return NULL;
	shorts[ns++] = '+';	/* no reordering: a value word stays next to its option */
	shorts[ns++] = ':';	/* ':' for a missing value, our messages */
	for (size_t i = 0; i < l->n + N_IGNORED; i++) {
		const char *name = i < l->n ? l->o[i].name : ignored[i - l->n].name;
		char sh = i < l->n ? l->o[i].short_name : ignored[i - l->n].short_name;
		int has = i >= l->n || (l->o[i].arg && !l->o[i].flag) ? required_argument :
		    l->o[i].arg ? optional_argument : no_argument;

		t[i] = (struct option){ name, has, NULL, KL_CLI_VAL0 + (int)i };
		if (sh && ns < 29) {
			shorts[ns++] = sh;
			if (has == required_argument)
				shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
	return t;
}

/* The index (in the list, then in ignored[]) of the option getopt_long returned as ch. */
static size_t
which(const struct optlist *l, int ch)
{
	if (ch >= KL_CLI_VAL0)
		return (size_t)(ch - KL_CLI_VAL0);
	for (size_t i = 0; i < l->n; i++)
		if (l->o[i].short_name == ch)
			return i;
	for (size_t i = 0; i < N_IGNORED; i++)
		if (ignored[i].short_name == ch)
			return l->n + i;
	return l->n + N_IGNORED;	/* not reached: getopt knows only these */
}

/*
 * The value of the option getopt_long returned last, checked as clap does:
 * a separate word that looks like an option is no value (but "-" and "-1"
 * are: the latter gets its own message);
 * "--insecure false" takes the next word as an optional value when it is
 * not an option. kl's old "-v"/"-vv" is explained. NULL value: none.
 */
static int
value_of(const struct kl_cli *cli, const struct optlist *l, const struct kl_cli_opt *o, int ch,
    int argc, char *argv[], const char **val)
{
	char s[64];

	*val = optarg;
	if (o && o->flag && o->arg && optarg == NULL && optind < argc && argv[optind][0] != '-')
		*val = argv[optind++];
	if (*val == NULL)
		return KL_OK;
	if (*val == argv[optind - 1] && (*val)[0] == '-' && (*val)[1] != '\0' &&
	    !((*val)[1] >= '0' && (*val)[1] <= '9'))
		return ch == 'v' ? usage_error(cli, l, "%s", old_v) :
		    usage_error(cli, l, "option \"%s\" needs a value", shown(argv[optind - 2], s));
	if (ch == 'v' && *val != argv[optind - 1] && strspn(*val, "v") == strlen(*val))
		return usage_error(cli, l, "%s", old_v);	/* -vv, -vvv */
	if (ch < KL_CLI_VAL0 && *val != argv[optind - 1] && (*val)[0] == '=')
		(*val)++;	/* "-v=URL", as clap */
	return KL_OK;
}

static int
parse_loop(const struct kl_cli *cli, struct optlist *l, const struct option *t,
    const char *shorts, int argc, char *argv[], struct kl_cli_flags *f)
{
	size_t np = 0;
	char s[64];
	int ch, before = 1, rc = KL_OK;

	optind = 0;	/* glibc: start over (at 1), even if getopt ran before */
	opterr = 0;	/* our messages, in our format */
	while (rc == KL_OK && !l->help && !l->version &&
	    (ch = getopt_long(argc, argv, shorts, t, NULL)) != -1) {
		const struct kl_cli_opt *o;
		const char *name, *val;
		size_t i;
		int at;

		if (ch == ':' && optopt == 'v')
			return usage_error(cli, l, "%s", old_v);
		if (ch == ':')
			return usage_error(cli, l, "option \"%s\" needs a value",
			    shown(argv[optind - 1], s));
		if (ch == '?' && optopt && optopt < KL_CLI_VAL0)
			return usage_error(cli, l, "unknown option \"-%c\"", optopt);
		if (ch == '?')
			return unknown(cli, l, argv[optind - 1]);
		i = which(l, ch);
		o = i < l->n ? &l->o[i] : NULL;
		name = o ? o->name : ignored[i - l->n].name;
		if ((rc = value_of(cli, l, o, ch, argc, argv, &val)) != KL_OK)
			return rc;
		/* The option's words: argv[at] (and its value, when separate) up to optind. */
		at = val && val == argv[optind - 1] ? optind - 2 : optind - 1;
		if (ch >= KL_CLI_VAL0 && !spelt_out(argv[at], name))
			return unknown(cli, l, argv[at]);
		if (o == NULL)
			kl_warn("--%s: ignored (kept for compatibility with keylime_push_model_agent)",
			    name);
		else
			rc = take(cli, l, o, val);
		/*
		 * The shared options' words, as given, for f->pass; "-Vh" is two
		 * options in one word, finished when getopt moved past it.
		 */
		if (f->pass && (o == NULL || o < l->o + l->nshared) &&
		    (ch >= KL_CLI_VAL0 || optind != before))
			while (at < optind)
				f->pass[np++] = argv[at++];
		before = optind;
	}
	if (f->pass)
		f->pass[np] = NULL;
	if (rc == KL_OK && !l->help && !l->version && optind < argc)
		rc = usage_error(cli, l, "unexpected argument \"%s\"", shown(argv[optind], s));
	return rc;
}

/* RUST_LOG's level (upstream's knob), else kl's default. */
static int
env_level(void)
{
	const char *env = getenv("RUST_LOG");
	int level = KL_LOG_NOTICE;

	if (env != NULL)
		(void)kl_log_rust_log(env, &level);
	return level;
}

/* --log-level over RUST_LOG, then --verbose raising it to info (once) or debug. */
static int
log_level(const struct kl_cli_flags *f, int level, int verbose)
{
	if (f->log_level != NULL)
		(void)kl_log_level(f->log_level, strlen(f->log_level), &level);
	verbose = verbose > KL_LOG_DEBUG ? KL_LOG_DEBUG : verbose;
	return verbose > 0 && level < verbose ? verbose : level;
}

int
kl_cli_parse(const struct kl_cli *cli, int argc, char *argv[], struct kl_cli_flags *f)
{
	char **pass = f->pass, shorts[32];
	struct optlist l;
	struct option *t;
	int rc;

	memset(f, 0, sizeof(*f));
	f->pass = pass;
	memset(&l, 0, sizeof(l));
	if ((rc = make_list(&l, cli, f)) != KL_OK)
		return rc;
	if ((t = getopt_table(&l, shorts)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	kl_verbose = env_level();	/* RUST_LOG=error quiets the parser's warnings too */
	rc = parse_loop(cli, &l, t, shorts, argc, argv, f);
	free(t);
	if (rc != KL_OK)
		return rc;
	kl_verbose = f->verbose = log_level(f, kl_verbose, l.verbose);
	if (l.help) {
		print_help(cli, &l);
		return KL_CLI_DONE;
	}
	if (l.version) {
		kl_version_print(stdout, cli ? cli->version_note : NULL);
		return KL_CLI_DONE;
	}
	return KL_OK;
}
