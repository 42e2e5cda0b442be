/*
 * local.c - the checks that need no network: the configuration, the TPM
 * (banks and algorithms, EK certificate, AK file), the agent id, the
 * measurement logs, and the pull-mode agent running alongside.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "doctor.h"
#include "kl_akfile.h"
#include "kl_crypto.h"
#include "kl_hash_ek.h"
#include "kl_json.h"
#include "kl_log.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "kl_banned.h"

/* ---- configuration ---- */

/* Values the loader takes as strings but kl refuses later: one line, or "" when fine. */
static void
value_problems(const struct kl_config *c, char *out, size_t cap)
{
	char why[200];
	size_t o = 0;

	out[0] = '\0';
#define PROBLEM(...) do { int k_ = snprintf(out + o, cap - o, "%s", o ? "; " : ""); \
	if (k_ > 0 && (size_t)k_ < cap - o) o += (size_t)k_; \
	k_ = snprintf(out + o, cap - o, __VA_ARGS__); \
	if (k_ > 0 && (size_t)k_ < cap - o) o += (size_t)k_; } while (0)
	/* kl-register's own check (kl_config_algorithms): the same words. */
	if (kl_config_algorithms(c, why, sizeof(why)) != 0)
		PROBLEM("%s", why);
	if (strcmp(c->uuid, "generate") != 0 && strcmp(c->uuid, "hash_ek") != 0 &&
	    !kl_uuid_valid(c->uuid))
		PROBLEM("uuid \"%.64s\" is not a UUID, generate or hash_ek", c->uuid);
	if (c->exponential_backoff_initial_delay > c->exponential_backoff_max_delay)
		PROBLEM("exponential_backoff_initial_delay %ld > exponential_backoff_max_delay %ld",
		    c->exponential_backoff_initial_delay, c->exponential_backoff_max_delay);
#undef PROBLEM
}

/* The captured lines of the loader: files read into d->files, the rest into other. */
static void
sort_lines(struct doctor *d, const char *lines, FILE *other)
{
	static const char reading[] = "config: reading ";
	const char *p = lines;

	while (p && *p) {
		size_t len = strcspn(p, "\n");

		if (len > sizeof(reading) - 1 && strncmp(p, reading, sizeof(reading) - 1) == 0) {
			if (d->nfiles < DR_MAX_FILES)
				d->files[d->nfiles++] = strndup(p + sizeof(reading) - 1,
				    len - (sizeof(reading) - 1));
		} else if (strncmp(p, "config: ", 8) != 0 || strstr(p, "not found") == NULL) {
			fprintf(other, "%s%.*s", ftell(other) > 0 ? "; " : "", (int)len, p);
		}
		p += len;
		if (*p == '\n')
			p++;
	}
}

int
dr_config(struct doctor *d)
{
	struct dr_capture cap;
	char *lines, *other = NULL, problems[1024], files[2048];
	size_t olen = 0, o = 0;
	FILE *f;
	int rc;

	dr_capture_begin(&cap, 1);
	rc = kl_config_load(&d->cfg, &d->flags);
	lines = dr_capture_end(&cap);
	d->cfg_loaded = rc == KL_OK;
	if ((f = open_memstream(&other, &olen)) == NULL) {
		free(lines);
		return kl_fail(KL_TEMP, "out of memory");
	}
	sort_lines(d, lines, f);
	fclose(f);
	free(lines);
	files[0] = '\0';
	for (size_t i = 0; i < d->nfiles && o < sizeof(files); i++) {
		int k = snprintf(files + o, sizeof(files) - o, "%s%s", i ? ", " : "", d->files[i]);

		if (k > 0)
			o += (size_t)k;
	}
	if (rc != KL_OK) {
		dr_add(d, "config", DR_FAIL, "fix the value named (file:line); kl-agent refuses "
		    "to start with it", "%s", other && *other ? other : "cannot be loaded");
		free(other);
		return KL_PERM;
	}
	value_problems(&d->cfg, problems, sizeof(problems));
	if (problems[0])
		dr_add(d, "config", DR_FAIL, "fix these keys: kl-register refuses them",
		    "read %s; %s", d->nfiles ? files : "no file (built-in defaults)", problems);
	else if (other && *other)
		dr_add(d, "config", DR_WARN, "unknown keys are ignored: a typo leaves the default "
		    "in force", "read %s; %s", d->nfiles ? files : "no file", other);
	else
		dr_add(d, "config", DR_OK, NULL, "read %s", d->nfiles ? files :
		    "no file: built-in defaults and the environment");
	free(other);
	return KL_OK;
}

/* ---- TPM ---- */

/* Is name in the JSON array list? */
static int
in_array(const json_t *list, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return 1;
	return 0;
}

/* "a, b, c" of a JSON array of strings. */
static void
join(const json_t *list, char *out, size_t cap)
{
	size_t i, o = 0;
	json_t *v;

	out[0] = '\0';
	json_array_foreach(list, i, v) {
		int k = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", json_string_value(v) ?
		    json_string_value(v) : "?");

		if (k < 0 || (size_t)k >= cap - o)
			break;
		o += (size_t)k;
	}
}

static void
check_algorithms(struct doctor *d, struct kl_tpm *t)
{
	struct dr_capture cap;
	json_t *caps = NULL;
	char banks[128], schemes[128], *why;
	int rc;

	dr_capture_begin(&cap, 0);
	rc = kl_tpm_caps(t, &caps);
	why = dr_oneline(dr_capture_end(&cap));
	if (rc != KL_OK) {
		dr_add(d, "tpm-algorithms", DR_FAIL, NULL, "cannot read the TPM's capabilities: %s",
		    why ? why : "");
		free(why);
		return;
	}
	free(why);
	join(json_object_get(caps, "hash_algorithms"), banks, sizeof(banks));
	join(json_object_get(caps, "signature_schemes"), schemes, sizeof(schemes));
	if (!in_array(json_object_get(caps, "hash_algorithms"), d->cfg.tpm_hash_alg))
		dr_add(d, "tpm-algorithms", DR_FAIL, "set tpm_hash_alg to a bank the TPM has "
		    "(tpm2_pcrallocate changes the banks)", "tpm_hash_alg %s: no such PCR bank "
		    "(banks: %s)", d->cfg.tpm_hash_alg, banks);
	else if (!in_array(json_object_get(caps, "signature_schemes"), d->cfg.tpm_signing_alg))
		dr_add(d, "tpm-algorithms", DR_FAIL, "set tpm_signing_alg to a scheme the TPM has",
		    "tpm_signing_alg %s: not supported (schemes: %s)", d->cfg.tpm_signing_alg, schemes);
	else
		dr_add(d, "tpm-algorithms", DR_OK, NULL, "PCR banks %s; schemes %s; configured %s/%s",
		    banks, schemes, d->cfg.tpm_hash_alg, d->cfg.tpm_signing_alg);
	json_decref(caps);
}

static void
check_ek_cert(struct doctor *d, struct kl_tpm *t, const struct kl_ek *ek)
{
	struct kl_crypto_pubkey k;
	unsigned char *der = NULL;
	struct dr_capture cap;
	char issuer[256] = "", *why;
	size_t len = 0;
	int rc, has = -1;

	dr_capture_begin(&cap, 0);
	rc = kl_tpm_ek_cert(t, ek->alg, &der, &len);
	if (rc == KL_OK && der != NULL && kl_tpm_public_key(ek->pub, ek->pub_len, &k) == KL_OK)
		has = kl_crypto_cert_has_key(der, len, &k, issuer, sizeof(issuer));
	why = dr_oneline(dr_capture_end(&cap));
	if (rc != KL_OK)
		dr_add(d, "ek-certificate", DR_FAIL, NULL, "cannot read the EK certificate's NV "
		    "index: %s", why ? why : "");
	else if (der == NULL)
		dr_add(d, "ek-certificate", DR_WARN, "a registrar that checks EK certificates "
		    "refuses this TPM; swtpm makes one with swtpm_setup --create-ek-cert",
		    "no %s EK certificate in NV", ek->alg);
	else if (has < 0)
		dr_add(d, "ek-certificate", DR_FAIL, "the TPM's EK certificate is corrupt",
		    "the %s EK certificate in NV (%zu bytes) is not DER X.509", ek->alg, len);
	else if (has == 0)
		dr_add(d, "ek-certificate", DR_FAIL, "the certificate is for another key: check "
		    "ek_handle and tpm_encryption_alg", "the EK certificate (issuer %s) does not "
		    "hold the EK's public key", issuer);
	else
		dr_add(d, "ek-certificate", DR_OK, NULL, "%s EK certificate in NV matches the EK "
		    "(issuer %s)", ek->alg, issuer);
	free(der);
	free(why);
}

static void
check_ak(struct doctor *d, struct kl_tpm *t, const struct kl_ek *ek, struct kl_akfile *akf)
{
	char *path = kl_config_agent_data(&d->cfg), *why;
	struct dr_capture cap;
	ESYS_TR ak;
	int rc;

	if (path == NULL)
		return;
	dr_capture_begin(&cap, 0);
	rc = kl_akfile_load(akf, path, 1);
	why = dr_oneline(dr_capture_end(&cap));
	if (rc != KL_OK) {
		dr_add(d, "ak-file", DR_FAIL, "move the file away: kl-register makes a new AK "
		    "(and the agent must be registered and enrolled again)", "%s",
		    why && *why ? why : path);
	} else if (akf->ak_public == NULL) {
		dr_add(d, "ak-file", DR_WARN, "kl-register makes it on its first run",
		    "%s: no AK yet", path);
	} else {
		snprintf(d->ak_hash, sizeof(d->ak_hash), "%s", akf->hash_alg);
		snprintf(d->ak_sign, sizeof(d->ak_sign), "%s", akf->signing_alg);
		d->ak_public = kl_b64_encode(akf->ak_public, akf->ak_public_len);
		if (!kl_akfile_matches(akf, ek->pub, ek->pub_len, d->cfg.tpm_hash_alg,
		    d->cfg.tpm_signing_alg)) {
			dr_add(d, "ak-file", DR_WARN, "kl-register will make a new AK, and the "
			    "registrar refuses it (403) until the agent is deleted there",
			    "%s: made for another EK or with %s/%s, not the configured %s/%s", path,
			    akf->hash_alg, akf->signing_alg, d->cfg.tpm_hash_alg,
			    d->cfg.tpm_signing_alg);
		} else {
			free(why);
			dr_capture_begin(&cap, 0);
			rc = kl_tpm_ak_load(t, ek, akf->ak_public, akf->ak_public_len,
			    akf->ak_private, akf->ak_private_len, &ak);
			why = dr_oneline(dr_capture_end(&cap));
			if (rc != KL_OK)
				dr_add(d, "ak-file", DR_FAIL, "the TPM was cleared or is another "
				    "one: move the file away and register again", "%s: the TPM "
				    "cannot load the AK: %s", path, why ? why : "");
			else
				dr_add(d, "ak-file", DR_OK, NULL, "%s: %s %s/%s AK, loads under the EK",
				    path, akf->key_algorithm, akf->hash_alg, akf->signing_alg);
		}
	}
	free(why);
	free(path);
}

static void
check_agent_id(struct doctor *d, const struct kl_ek *ek, const struct kl_akfile *akf)
{
	const char *u = d->cfg.uuid;
	char id[65];

	if (strcmp(u, "hash_ek") == 0) {
		if (ek == NULL || kl_hash_ek(ek->pub, ek->pub_len, id) != KL_OK) {
			dr_add(d, "agent-id", DR_FAIL, "the TPM is needed for uuid = hash_ek",
			    "uuid = hash_ek: cannot hash the EK");
			return;
		}
		snprintf(d->agent_id, sizeof(d->agent_id), "%s", id);
		dr_add(d, "agent-id", DR_OK, NULL, "uuid = hash_ek: %s", id);
	} else if (strcmp(u, "generate") == 0) {
		if (akf == NULL || akf->agent_id == NULL) {
			dr_add(d, "agent-id", DR_WARN, "kl-register makes it once and keeps it in the "
			    "AK file", "uuid = generate: not made yet");
			return;
		}
		snprintf(d->agent_id, sizeof(d->agent_id), "%s", akf->agent_id);
		dr_add(d, "agent-id", DR_OK, NULL, "uuid = generate: %s (kept in the AK file)",
		    akf->agent_id);
	} else if (kl_uuid_valid(u)) {
		for (size_t i = 0; u[i] && i + 1 < sizeof(d->agent_id); i++)
			d->agent_id[i] = (char)tolower((unsigned char)u[i]);
		dr_add(d, "agent-id", DR_OK, NULL, "uuid = %s", d->agent_id);
	} else {
		dr_add(d, "agent-id", DR_FAIL, "uuid must be a UUID, generate or hash_ek",
		    "uuid is not a UUID");
	}
}

void
dr_tpm(struct doctor *d)
{
	const char *tcti = kl_config_tcti(&d->cfg);
	struct kl_akfile akf;
	struct dr_capture cap;
	struct kl_tpm t;
	struct kl_ek ek;
	char *why;
	int rc, have_ek;

	memset(&ek, 0, sizeof(ek));
	kl_akfile_init(&akf);
	dr_capture_begin(&cap, 0);
	rc = kl_tpm_open(&t, tcti);
	why = dr_oneline(dr_capture_end(&cap));
	if (rc != KL_OK) {
		dr_add(d, "tpm", DR_FAIL, "is the TPM there and may this user open it (group tss "
		    "for /dev/tpmrm0)? Is swtpm running? tcti and $TCTI name it", "TPM %s: %s",
		    tcti, why && *why ? why : "cannot be opened");
		free(why);
		check_agent_id(d, NULL, NULL);
		return;
	}
	free(why);
	dr_add(d, "tpm", DR_OK, NULL, "TPM %s answers", tcti);
	check_algorithms(d, &t);
	dr_capture_begin(&cap, 0);
	rc = kl_tpm_ek(&t, d->cfg.tpm_encryption_alg, d->cfg.ek_handle, d->cfg.tpm_ownerpassword,
	    &ek);
	why = dr_oneline(dr_capture_end(&cap));
	have_ek = rc == KL_OK;
	if (!have_ek)
		dr_add(d, "ek", DR_FAIL, "check ek_handle, tpm_encryption_alg and tpm_ownerpassword "
		    "(the endorsement hierarchy's password)", "%s", why ? why : "no EK");
	free(why);
	if (have_ek) {
		check_ek_cert(d, &t, &ek);
		check_ak(d, &t, &ek, &akf);
	}
	check_agent_id(d, have_ek ? &ek : NULL, &akf);
	kl_akfile_release(&akf);
	if (have_ek)
		kl_tpm_ek_release(&ek);
	kl_tpm_close(&t);
}

/* ---- logs ---- */

/* Can user (name or name:group) open path? 1 yes, 0 no, -1 cannot tell (not root). */
static int
readable_as(const char *run_as, const char *path)
{
	char user[128], *colon;
	struct passwd *pw;
	struct group *gr;
	gid_t gid;
	pid_t pid;
	int st;

	snprintf(user, sizeof(user), "%s", run_as);
	if ((colon = strchr(user, ':')) != NULL)
		*colon++ = '\0';
	if (geteuid() != 0 || (pw = getpwnam(user)) == NULL)
		return -1;
	gid = pw->pw_gid;
	if (colon && *colon) {
		if ((gr = getgrnam(colon)) == NULL)
			return -1;
		gid = gr->gr_gid;
	}
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(2);
		_exit(open(path, O_RDONLY | O_CLOEXEC) >= 0 ? 0 : 1);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 2)
		return -1;
	return WEXITSTATUS(st) == 0;
}

static void
check_log(struct doctor *d, const char *name, const char *path, const char *missing_hint)
{
	struct stat st;
	int fd, as;

	if (stat(path, &st) != 0) {
		dr_add(d, name, DR_WARN, missing_hint, "%s: %s", path, strerror(errno));
		return;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		dr_add(d, name, DR_FAIL, "kl-agent must start as root (it opens the logs before "
		    "dropping to run_as), or the file must be readable", "%s: not readable as uid "
		    "%ld: %s", path, (long)geteuid(), strerror(errno));
		return;
	}
	close(fd);
	if (d->cfg.run_as[0] && (as = readable_as(d->cfg.run_as, path)) == 0) {
		dr_add(d, name, DR_WARN, "fine under kl-agent, which opens it before dropping "
		    "privileges; a step run by hand as that user cannot read it",
		    "%s: readable, but not by run_as %s", path, d->cfg.run_as);
		return;
	}
	dr_add(d, name, DR_OK, NULL, "%s: readable%s%s", path, d->cfg.run_as[0] ?
	    " (run_as " : "", d->cfg.run_as[0] ? (readable_as(d->cfg.run_as, path) == 1 ?
	    "can read it too)" : "not checked: needs root)") : "");
}

void
dr_logs(struct doctor *d)
{
	check_log(d, "ima-log", d->cfg.ima_ml_path, "no IMA in this kernel (ima_policy=...): "
	    "the verifier asks for ima_log only with a runtime policy; set ima_ml_path if it "
	    "is elsewhere");
	check_log(d, "uefi-log", d->cfg.measuredboot_ml_path, "no UEFI event log (BIOS boot, "
	    "or securityfs not mounted): the verifier asks for it only with a measured-boot "
	    "policy");
}

/* ---- the pull-mode agent ---- */

/* Where systemd keeps an enabled keylime_agent.service (upstream's unit). */
#define PULL_UNIT_WANTS "/etc/systemd/system/multi-user.target.wants/keylime_agent.service"

void
dr_pull_agent(struct doctor *d)
{
	char path[64], comm[32];
	long pids[8];
	size_t n = 0;
	struct dirent *e;
	DIR *proc = opendir("/proc");
	FILE *f;

	while (proc != NULL && (e = readdir(proc)) != NULL && n < 8) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/comm", e->d_name);
		if ((f = fopen(path, "re")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL) {
			comm[strcspn(comm, "\n")] = '\0';
			if (strcmp(comm, "keylime_agent") == 0)
				pids[n++] = strtol(e->d_name, NULL, 10);
		}
		fclose(f);
	}
	if (proc)
		closedir(proc);
	if (n == 0 && access(PULL_UNIT_WANTS, F_OK) == 0)
		dr_add(d, "pull-agent", DR_WARN, "it starts at the next boot and takes the TPM: "
		    "systemctl disable keylime_agent", "keylime_agent.service is enabled (%s), "
		    "though not running", PULL_UNIT_WANTS);
	else if (n == 0)
		dr_add(d, "pull-agent", DR_OK, NULL, "no keylime_agent (pull mode) process");
	else
		dr_add(d, "pull-agent", DR_WARN, "the pull-mode agent uses the same TPM and agent "
		    "id: stop it (systemctl disable --now keylime_agent), as upstream advises",
		    "keylime_agent runs (pid %ld%s)", pids[0], n > 1 ? " and others" : "");
}
