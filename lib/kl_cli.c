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
#include "kl_banned.h"

#define KL_CLI_VAL0	256	/* getopt_long value of option 0; short options are < 256 */
#define N_SHARED	13

/* keylime_push_model_agent's test-only flags: accepted, ignored, warned about. */
static const char *const ignored[] = {
	"json-file", "attestation-index", "session-index", "message-type", "method",
};
#define N_IGNORED (sizeof(ignored) / sizeof(ignored[0]))

static const char *const config_note =
	"config: $KL_SYSCONFDIR/agent.conf (default /etc/keylime), agent.conf.d/*.conf,\n"
	"or $KEYLIME_AGENT_CONFIG; then KEYLIME_AGENT_<KEY> and KEYLIME_DIR; then options.\n";

/* All options of one parse: the shared ones, then the program's own. */
struct optlist {
	struct kl_cli_opt o[N_SHARED + 64];
	size_t n, nshared;
	bool help;
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

/* The list for one parse; KL_PERM when the program's table is unusable. */
static int
make_list(struct optlist *l, const struct kl_cli *cli, struct kl_cli_flags *f)
{
	const struct kl_cli_opt shared[N_SHARED] = {
		KL_CLI_STR("verifier-url", "URL", &f->verifier_url, "verifier base URL (verifier_url)"),
		KL_CLI_STR("registrar-url", "URL", &f->registrar_url,
		    "registrar URL (default from registrar_ip/port)"),
		KL_CLI_STR("agent-identifier", "ID", &f->agent_id, "agent UUID (uuid)"),
		KL_CLI_NUM("attestation-interval-seconds", "N", &f->interval,
		    "attestation_interval_seconds"),
		KL_CLI_STR("ca-certificate", "FILE", &f->ca, "verifier CA (verifier_tls_ca_cert)"),
		{ "api-version", 0, "V", "verifier API version (default v3.0)",
		    NULL, NULL, &f->api_version, NULL, check_api_version },
		KL_CLI_NUM("timeout", "MS", &f->timeout, "HTTP timeout in milliseconds (default 5000)"),
		KL_CLI_FLAG("insecure", &f->insecure, "no TLS verification (testing only)"),
		KL_CLI_FLAG("avoid-tpm", &f->avoid_tpm, "(testing only)"),
		KL_CLI_STR("tcti", "TCTI", &f->tcti,
		    "TPM access (default: $TCTI or device:/dev/tpmrm0)"),
		{ "verbose", 'v', NULL, "more messages (-vv: debug)", NULL, &f->verbose, NULL, NULL, NULL },
		{ "help", 'h', NULL, "this help", &l->help, NULL, NULL, NULL, NULL },
		KL_CLI_END,
	};

	memcpy(l->o, shared, sizeof(shared));
	l->n = l->nshared = N_SHARED - 1;
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
		snprintf(left, sizeof(left), "%s--%s%s%s", sh, o->name, o->arg ? " " : "",
		    o->arg ? o->arg : "");
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
	else if (o->check)
		want = o->check(arg);
	if (want)
		return usage_error(cli, l, "--%s: expected %s, not \"%s\"", o->name, want, shown(arg, s));
	if (o->num)
		*o->num = (long)n;
	else if (o->str)
		*o->str = arg;
	return KL_OK;
}

/* Set option o's target; KL_PERM after a usage error. */
static int
take(const struct kl_cli *cli, const struct optlist *l, const struct kl_cli_opt *o,
    const char *arg)
{
	if (o->flag)
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

/* getopt_long's table: the list, then the ignored flags. NULL when out of memory. */
static struct option *
getopt_table(const struct optlist *l, char shorts[16])
{
	struct option *t = calloc(l->n + N_IGNORED + 1, sizeof(*t));
	size_t ns = 0;

	if (t == NULL)
		return NULL;
	shorts[ns++] = ':';	/* ':' for a missing value, our messages */
	for (size_t i = 0; i < l->n; i++) {
		t[i] = (struct option){ l->o[i].name, l->o[i].arg ? required_argument : no_argument,
		    NULL, KL_CLI_VAL0 + (int)i };
		if (l->o[i].short_name && ns < 15)
			shorts[ns++] = l->o[i].short_name;
	}
	shorts[ns] = '\0';
	for (size_t i = 0; i < N_IGNORED; i++)
		t[l->n + i] = (struct option){ ignored[i], required_argument, NULL,
		    KL_CLI_VAL0 + (int)(l->n + i) };
	return t;
}

/* The option getopt_long returned as ch; NULL for an ignored one. */
static const struct kl_cli_opt *
which(const struct optlist *l, int ch)
{
	if (ch >= KL_CLI_VAL0)
		return (size_t)(ch - KL_CLI_VAL0) < l->n ? &l->o[ch - KL_CLI_VAL0] : NULL;
	for (size_t i = 0; i < l->n; i++)
		if (l->o[i].short_name == ch)
			return &l->o[i];
	return NULL;
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
	while (rc == KL_OK && !l->help && (ch = getopt_long(argc, argv, shorts, t, NULL)) != -1) {
		const struct kl_cli_opt *o;
		const char *name;
		int at;

		if (ch == ':')
			return usage_error(cli, l, "option \"%s\" needs a value",
			    shown(argv[optind - 1], s));
		if (ch == '?' && optopt && optopt < KL_CLI_VAL0)
			return usage_error(cli, l, "unknown option \"-%c\"", optopt);
		if (ch == '?')
			return usage_error(cli, l, "unknown option \"%s\"", shown(argv[optind - 1], s));
		o = which(l, ch);
		/* The option's words: argv[at] (and its value, when separate) up to optind. */
		at = optarg && optarg == argv[optind - 1] ? optind - 2 : optind - 1;
		name = o ? o->name : ignored[ch - KL_CLI_VAL0 - (int)l->n];
		if (ch >= KL_CLI_VAL0 && !spelt_out(argv[at], name))
			return usage_error(cli, l, "unknown option \"%s\"", shown(argv[at], s));
		if (o == NULL)
			kl_warn("--%s: ignored (kept for compatibility with keylime_push_model_agent)",
			    name);
		else
			rc = take(cli, l, o, optarg);
		/*
		 * The shared options' words, as given, for f->pass; "-vv" is two
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
	if (rc == KL_OK && !l->help && optind < argc)
		rc = usage_error(cli, l, "unexpected argument \"%s\"", shown(argv[optind], s));
	return rc;
}

int
kl_cli_parse(const struct kl_cli *cli, int argc, char *argv[], struct kl_cli_flags *f)
{
	char **pass = f->pass, shorts[16];
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
	rc = parse_loop(cli, &l, t, shorts, argc, argv, f);
	free(t);
	if (rc != KL_OK)
		return rc;
	if (kl_verbose < f->verbose)
		kl_verbose = f->verbose;
	if (l.help) {
		print_help(cli, &l);
		return KL_CLI_DONE;
	}
	return KL_OK;
}
