/*
 * bundle.c - kl-doctor --bundle FILE: what support needs in one tar.gz,
 * mode 0600, and never a secret:
 *
 *   doctor.txt, doctor.json     the report
 *   versions.txt                kl, the kernel, libcurl, OpenSSL, jansson
 *   config/NN-<name>            every configuration file read, secret values masked
 *   environment.txt             KEYLIME_*, KL_*, TCTI (secret values masked)
 *   state/<name>.json           the JSON files of keylime_dir (status, registration
 *                               record, AK file ...), tokens, auth values and key
 *                               material removed
 *   metrics.prom                metrics_textfile, when set
 *   journal.txt                 kl-agent's last journal lines, when journalctl is there
 *
 * Files are staged in a 0700 directory made with mkdtemp and packed by
 * tar(1), run with fork/exec (no shell) into a descriptor we opened 0600.
 * Every staged byte passes scrub(), which replaces the secrets kl-doctor
 * knows (the token, the owner password) wherever they appear.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "doctor.h"
#include "kl_crypto.h"
#include "kl_file.h"
#include "kl_http.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_metrics.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_version.h"
#include "kl_banned.h"

#define STAGE_MAX (4u << 20)	/* bytes of one file taken into the bundle */
#define MASK "<redacted>"

extern char **environ;

/* Does a key name say its value is a secret? */
static int
secret_name(const char *k, size_t n)
{
	static const char *const words[] = { "password", "token", "secret", "auth", "private",
	    "key_pass", NULL };

	for (size_t i = 0; words[i]; i++) {
		size_t w = strlen(words[i]);

		for (size_t j = 0; j + w <= n; j++)
			if (strncasecmp(k + j, words[i], w) == 0)
				return 1;
	}
	return 0;
}

/* Replace every occurrence of secret in buf (len bytes, NUL-terminated) with MASK. */
static char *
scrub_one(char *buf, size_t *len, const char *secret)
{
	size_t sl = secret ? strlen(secret) : 0, o = 0;
	char *out, *p, *q;
	FILE *f;

	if (sl < 4 || strstr(buf, secret) == NULL)	/* "" or tiny values would mask everything */
		return buf;
	if ((f = open_memstream(&out, &o)) == NULL)
		return buf;
	for (p = buf; (q = strstr(p, secret)) != NULL; p = q + sl) {
		fwrite(p, 1, (size_t)(q - p), f);
		fputs(MASK, f);
	}
	fputs(p, f);
	if (fclose(f) != 0)
		return buf;
	kl_secret_free(buf, *len);
	*len = o;
	return out;
}

static char *
scrub(const struct doctor *d, char *buf, size_t *len)
{
	const char *t = d->token, *dot = t ? strchr(t, '.') : NULL;
	const char *pw = d->cfg_loaded ? d->cfg.tpm_ownerpassword : NULL;

	buf = scrub_one(buf, len, t);
	if (dot != NULL)
		buf = scrub_one(buf, len, dot + 1);	/* the secret half of "<id>.<secret>" */
	if (pw != NULL && strncmp(pw, "hex:", 4) == 0)
		buf = scrub_one(buf, len, pw + 4);
	return scrub_one(buf, len, pw);
}

/* Write dir/name (0600) from a copy of text, scrubbed. */
static int
stage(const struct doctor *d, const char *dir, const char *name, const char *text, size_t len)
{
	char path[4096], *buf = malloc(len + 1);
	int rc;

	if (buf == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	memcpy(buf, text, len);
	buf[len] = '\0';
	buf = scrub(d, buf, &len);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = kl_file_write_atomic(path, buf, len);
	kl_secret_free(buf, len);
	return rc;
}

/* A configuration file with the values of secret keys masked, line by line. */
static char *
mask_config(const char *text)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	const char *p = text;

	if (f == NULL)
		return NULL;
	while (*p) {
		size_t len = strcspn(p, "\n"), k = 0;
		const char *s = p;

		while (s < p + len && (*s == ' ' || *s == '\t'))
			s++;
		while (s + k < p + len && (s[k] == '_' || s[k] == '-' || (s[k] >= 'a' && s[k] <= 'z') ||
		    (s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= '0' && s[k] <= '9')))
			k++;
		if (k > 0 && secret_name(s, k) && memchr(s + k, '=', len - (size_t)(s + k - p)))
			fprintf(f, "%.*s = \"" MASK "\"", (int)(s - p + (long)k), p);
		else
			fprintf(f, "%.*s", (int)len, p);
		p += len;
		if (*p == '\n') {
			fputc('\n', f);
			p++;
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void
stage_config(const struct doctor *d, const char *dir)
{
	char name[300], *buf, *masked;
	size_t len;

	for (size_t i = 0; i < d->nfiles; i++) {
		const char *base = strrchr(d->files[i], '/');

		if (kl_file_read(d->files[i], STAGE_MAX, 1, &buf, &len) != KL_OK || buf == NULL)
			continue;
		masked = mask_config(buf);
		kl_secret_free(buf, len);
		if (masked == NULL)
			continue;
		snprintf(name, sizeof(name), "config/%02zu-%.200s", i, base ? base + 1 : d->files[i]);
		stage(d, dir, name, masked, strlen(masked));
		kl_secret_free(masked, strlen(masked));
	}
}

static void
stage_environment(const struct doctor *d, const char *dir)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	if (f == NULL)
		return;
	for (char **e = environ; *e; e++) {
		size_t k = strcspn(*e, "=");

		if (strncmp(*e, "KEYLIME_", 8) != 0 && strncmp(*e, "KL_", 3) != 0 &&
		    strncmp(*e, "TCTI=", 5) != 0)
			continue;
		if (secret_name(*e, k))
			fprintf(f, "%.*s=" MASK "\n", (int)k, *e);
		else
			fprintf(f, "%s\n", *e);
	}
	if (fclose(f) == 0)
		stage(d, dir, "environment.txt", out, n);
	free(out);
}

/* Drop every member whose name says secret, and key blobs, at any depth. */
static void
strip_secrets(json_t *j)
{
	const char *k;
	json_t *v;
	void *tmp;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach_safe(j, tmp, k, v) {
			if (secret_name(k, strlen(k)))
				json_object_set_new(j, k, json_string(MASK));
			else
				strip_secrets(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			strip_secrets(v);
	}
}

/* keylime_dir's *.json files, stripped; invalid JSON is left out (it could hold anything). */
static void
stage_state(const struct doctor *d, const char *dir)
{
	const char *kd = d->cfg.keylime_dir;
	struct dirent *e;
	DIR *dd = opendir(kd);

	while (dd != NULL && (e = readdir(dd)) != NULL) {
		size_t n = strlen(e->d_name);
		char path[4096], name[300], *buf = NULL, *s;
		json_t *j;

		if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", kd, e->d_name);
		if (kl_file_read(path, STAGE_MAX, 1, &buf, &n) != KL_OK || buf == NULL)
			continue;
		j = json_loadb(buf, n, 0, NULL);
		kl_secret_free(buf, n);
		if (j == NULL)
			continue;
		strip_secrets(j);
		if ((s = kl_json_dump_flags(j, JSON_INDENT(2), &n)) != NULL) {
			snprintf(name, sizeof(name), "state/%.200s", e->d_name);
			stage(d, dir, name, s, n);
			kl_secret_free(s, n);
		}
		json_decref(j);
	}
	if (dd)
		closedir(dd);
}

static void
stage_file(const struct doctor *d, const char *dir, const char *name, const char *path)
{
	char *buf = NULL;
	size_t len = 0;

	if (path && kl_file_read(path, STAGE_MAX, 1, &buf, &len) == KL_OK && buf != NULL)
		stage(d, dir, name, buf, len);
	if (buf)
		kl_secret_free(buf, len);
}

static void
stage_versions(const struct doctor *d, const char *dir)
{
	struct utsname u;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	if ((f = open_memstream(&text, &len)) == NULL)
		return;
	/* kl-doctor's --version lines (kl and every library it links), then the kernel. */
	kl_version_print(f, NULL);
	fprintf(f, "kernel %s %s %s\n", u.sysname, u.release, u.machine);
	if (fclose(f) == 0)
		stage(d, dir, "versions.txt", text, len);
	free(text);
}

/* Run argv with stdout into fd (stderr to /dev/null); its exit status, or -1. */
static int
run(char *const argv[], int fd)
{
	pid_t pid = fork();
	int st, null;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		null = open("/dev/null", O_RDWR);
		if (dup2(fd, 1) < 0 || (null >= 0 && (dup2(null, 0) < 0 || dup2(null, 2) < 0)))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* kl-agent's last journal lines, scrubbed like the rest. */
static void
stage_journal(const struct doctor *d, const char *dir /* < 4096 bytes */)
{
	static const char *const bins[] = { "/usr/bin/journalctl", "/bin/journalctl", NULL };
	char path[4200];
	int fd;

	for (size_t i = 0; bins[i]; i++) {
		char *argv[] = { (char *)bins[i], "-u", "kl-agent", "-n", "200", "--no-pager",
		    "-o", "short-iso", NULL };

		if (access(bins[i], X_OK) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/journal.raw", dir);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
			return;
		run(argv, fd);
		close(fd);
		stage_file(d, dir, "journal.txt", path);
		unlink(path);
		return;
	}
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int
dr_bundle(struct doctor *d, const char *path, const char *text, const char *json)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096], sub[4200];
	char *status = NULL, *metrics = NULL;
	int fd, rc = KL_OK;

	snprintf(dir, sizeof(dir), "%s/kl-doctor.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return kl_fail(KL_TEMP, "%s: mkdtemp: %s", dir, strerror(errno));
	snprintf(sub, sizeof(sub), "%s/config", dir);
	mkdir(sub, 0700);
	snprintf(sub, sizeof(sub), "%s/state", dir);
	mkdir(sub, 0700);
	stage(d, dir, "doctor.txt", text, strlen(text));
	stage(d, dir, "doctor.json", json, strlen(json));
	stage_versions(d, dir);
	stage_environment(d, dir);
	if (d->cfg_loaded) {
		stage_config(d, dir);
		stage_state(d, dir);
		status = kl_config_status_path(&d->cfg);
		metrics = kl_config_metrics_path(&d->cfg);
		if (status && strncmp(status, d->cfg.keylime_dir, strlen(d->cfg.keylime_dir)) != 0)
			stage_file(d, dir, "state/kl-status.json", status);
		stage_file(d, dir, "metrics.prom", metrics);
	} else {
		stage_config(d, dir);
	}
	stage_journal(d, dir);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0) {
		rc = kl_fail(KL_PERM, "--bundle %s: %s", path, strerror(errno));
	} else {
		char *argv[] = { "/bin/tar", "-czf", "-", "-C", dir, "--owner=0", "--group=0",
		    "--numeric-owner", ".", NULL };

		if (run(argv, fd) != 0)
			rc = kl_fail(KL_TEMP, "--bundle %s: /bin/tar failed", path);
	}
	if (fd >= 0 && close(fd) != 0 && rc == KL_OK)
		rc = kl_fail(KL_TEMP, "--bundle %s: %s", path, strerror(errno));
	if (rc != KL_OK && fd >= 0)
		unlink(path);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(status);
	free(metrics);
	return rc;
}
