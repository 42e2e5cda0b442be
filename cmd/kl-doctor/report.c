/* report.c - kl-doctor's results, as text and as JSON; capturing lib/'s log lines. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doctor.h"
#include "kl_log.h"
#include "kl_util.h"
#include "kl_banned.h"

static const char *const level_names[] = { "ok", "warn", "fail", "skip" };

void
dr_add(struct doctor *d, const char *name, enum dr_level level, const char *hint,
    const char *fmt, ...)
{
	struct dr_check *c;
	va_list ap;

	if (d->n >= DR_MAX_CHECKS)
		return;
	c = &d->checks[d->n++];
	c->name = name;
	c->level = level;
	va_start(ap, fmt);
	if (vasprintf(&c->found, fmt, ap) < 0)
		c->found = NULL;
	va_end(ap);
	c->hint = hint ? strdup(hint) : NULL;
}

int
dr_failed(const struct doctor *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->checks[i].level == DR_FAIL)
			return 1;
	return 0;
}

static void
count(const struct doctor *d, size_t n[4])
{
	memset(n, 0, 4 * sizeof(n[0]));
	for (size_t i = 0; i < d->n; i++)
		n[d->checks[i].level]++;
}

char *
dr_text(const struct doctor *d)
{
	char *out = NULL;
	size_t n[4], len = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < d->n; i++) {
		const struct dr_check *c = &d->checks[i];

		fprintf(f, "%-4s  %-16s %s", level_names[c->level], c->name,
		    c->found ? c->found : "(out of memory)");
		if (c->hint && c->level != DR_OK)
			fprintf(f, " -- hint: %s", c->hint);
		fputc('\n', f);
	}
	count(d, n);
	fprintf(f, "kl-doctor: %zu ok, %zu warn, %zu fail, %zu skipped\n", n[DR_OK], n[DR_WARN],
	    n[DR_FAIL], n[DR_SKIP]);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

json_t *
dr_json(const struct doctor *d, int exit_code)
{
	json_t *list = json_array(), *o;
	size_t n[4];

	for (size_t i = 0; list != NULL && i < d->n; i++) {
		const struct dr_check *c = &d->checks[i];

		json_array_append_new(list, json_pack("{s:s,s:s,s:s?,s:s?}", "check", c->name,
		    "result", level_names[c->level], "found", c->found, "hint", c->hint));
	}
	count(d, n);
	o = json_pack("{s:o*,s:{s:I,s:I,s:I,s:I},s:i}", "checks", list, "summary",
	    "ok", (json_int_t)n[DR_OK], "warn", (json_int_t)n[DR_WARN],
	    "fail", (json_int_t)n[DR_FAIL], "skip", (json_int_t)n[DR_SKIP], "exit", exit_code);
	return o;
}

void
dr_release(struct doctor *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->checks[i].found);
		free(d->checks[i].hint);
	}
	for (size_t i = 0; i < d->nfiles; i++)
		free(d->files[i]);
	free(d->ak_public);
	if (d->token)
		kl_secret_free(d->token, strlen(d->token));
	if (d->cfg_loaded)
		kl_config_release(&d->cfg);
	memset(d, 0, sizeof(*d));
}

char *
dr_oneline(char *s)
{
	char *r = NULL;
	size_t n = 0;
	FILE *f;

	if (s == NULL || strchr(s, '\n') == NULL || (f = open_memstream(&r, &n)) == NULL)
		return s;
	for (const char *p = s; *p; p++) {
		if (*p == '\n')
			fputs("; ", f);
		else
			fputc(*p, f);
	}
	if (fclose(f) != 0) {
		free(r);
		return s;
	}
	free(s);
	return r;
}

/* ---- capturing lib/'s lines ---- */

int
dr_capture_begin(struct dr_capture *c, int verbose)
{
	FILE *tmp;

	fflush(stderr);
	c->tmp = NULL;
	c->saved_fd = -1;
	if ((tmp = tmpfile()) == NULL || (c->saved_fd = dup(2)) < 0 ||
	    dup2(fileno(tmp), 2) < 0) {
		if (c->saved_fd >= 0)
			close(c->saved_fd);
		c->saved_fd = -1;
		if (tmp)
			fclose(tmp);
		return -1;	/* the lines then go to stderr as usual */
	}
	c->tmp = tmp;
	c->saved_verbose = kl_verbose;
	c->want = verbose;
	if (verbose > kl_verbose)
		kl_verbose = verbose;
	return 0;
}

/*
 * "kl-doctor: warning: what" -> "what", and its level in *rank: 0 error,
 * warning or notice, 1 info, 2 debug (as kl_verbose counts them).
 */
static const char *
strip_prefix(const char *line, int *rank)
{
	static const struct { const char *word; int rank; } levels[] = {
		{ "error: ", 0 }, { "warning: ", 0 }, { "notice: ", 0 }, { "info: ", 1 },
		{ "debug: ", 2 },
	};
	size_t pl = strlen(kl_progname);
	const char *p = strstr(line, kl_progname);

	*rank = 0;
	if (p == NULL || p[pl] != ':' || p[pl + 1] != ' ')
		return line;
	p += pl + 2;
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strncmp(p, levels[i].word, strlen(levels[i].word)) == 0) {
			*rank = levels[i].rank;
			return p + strlen(levels[i].word);
		}
	return p;
}

char *
dr_capture_end(struct dr_capture *c)
{
	FILE *tmp = c->tmp;
	char line[2048], *out = NULL;
	size_t len = 0;
	FILE *o;

	if (tmp == NULL)
		return strdup("");
	fflush(stderr);
	dup2(c->saved_fd, 2);
	close(c->saved_fd);
	kl_verbose = c->saved_verbose;
	rewind(tmp);
	if ((o = open_memstream(&out, &len)) == NULL) {
		fclose(tmp);
		return NULL;
	}
	while (fgets(line, sizeof(line), tmp) != NULL) {
		const char *what;
		int rank;

		line[strcspn(line, "\n")] = '\0';
		what = strip_prefix(line, &rank);
		/* The user's -v must not turn info lines into findings. */
		if (line[0] == '\0' || rank > c->want)
			continue;
		fprintf(o, "%s%s", ftell(o) > 0 ? "\n" : "", what);
	}
	fclose(tmp);
	if (fclose(o) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
