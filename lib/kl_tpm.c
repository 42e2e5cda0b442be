/* kl_tpm.c - see kl_tpm.h. docs/protocol.md §2.4-§2.5, §4.2, §6.3, §8. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "kl_crypto.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_tpm.h"
#include "kl_util.h"
#include "kl_banned.h"

#define NONE ESYS_TR_NONE
#define PCR_MAX 24		/* PCRs 0-23: three bytes of select bitmap (§6.3.3) */
#define QUOTE_TRIES 5		/* as the Rust agent (§6.3.1) */

/* ---------------------------------------------------------------- names */

struct alg_name {
	const char *name;
	TPM2_ALG_ID id;
};

static const struct alg_name hash_algs[] = {
	{ "sha1", TPM2_ALG_SHA1 }, { "sha256", TPM2_ALG_SHA256 },
	{ "sha384", TPM2_ALG_SHA384 }, { "sha512", TPM2_ALG_SHA512 },
	{ "sm3_256", TPM2_ALG_SM3_256 }, { NULL, 0 },
};

/* Sorted by name: kl_tpm_caps() lists them in this order (§5.1.1). */
static const struct alg_name sig_algs[] = {
	{ "ecdaa", TPM2_ALG_ECDAA }, { "ecdsa", TPM2_ALG_ECDSA },
	{ "ecschnorr", TPM2_ALG_ECSCHNORR }, { "rsapss", TPM2_ALG_RSAPSS },
	{ "rsassa", TPM2_ALG_RSASSA }, { NULL, 0 },
};

static TPM2_ALG_ID
alg_id(const struct alg_name *tab, const char *name)
{
	for (; tab->name; tab++)
		if (name && strcmp(tab->name, name) == 0)
			return tab->id;
	return TPM2_ALG_ERROR;
}

static const char *
alg_str(const struct alg_name *tab, TPM2_ALG_ID id)
{
	for (; tab->name; tab++)
		if (tab->id == id)
			return tab->name;
	return NULL;
}

/* Digest size of a TPM hash algorithm, 0 when kl_crypto cannot compute it. */
static size_t
hash_size(TPM2_ALG_ID id)
{
	return kl_crypto_digest_size(alg_str(hash_algs, id));
}

/* ---------------------------------------------------------------- errors */

/* Busy or unreachable now, fine later: the classes of kl_tpm.h. */
static int
rc_class(TSS2_RC r)
{
	TSS2_RC layer = r & TSS2_RC_LAYER_MASK, code = r & ~TSS2_RC_LAYER_MASK;

	if (layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER) {
		if (code & TPM2_RC_FMT1)
			return KL_PERM;
		switch (code) {
		case TPM2_RC_RETRY:
		case TPM2_RC_YIELDED:
		case TPM2_RC_TESTING:
		case TPM2_RC_NV_RATE:
		case TPM2_RC_LOCKOUT:
		/* Slots full: freed when their holder ends, or by the flush in kl_tpm_open. */
		case TPM2_RC_OBJECT_MEMORY:
		case TPM2_RC_SESSION_MEMORY:
		case TPM2_RC_MEMORY:
			return KL_TEMP;
		}
		return KL_PERM;
	}
	switch (code) {
	case TSS2_BASE_RC_IO_ERROR:
	case TSS2_BASE_RC_NO_CONNECTION:
	case TSS2_BASE_RC_TRY_AGAIN:
		return KL_TEMP;
	}
	return KL_PERM;
}

static int
is_tpm_rc(TSS2_RC r, TPM2_RC want)
{
	TSS2_RC layer = r & TSS2_RC_LAYER_MASK, code = r & ~TSS2_RC_LAYER_MASK;

	if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)
		return 0;
	/* Format-one codes carry the parameter/handle number in bits 6 and 8-11. */
	if (code & TPM2_RC_FMT1)
		code &= TPM2_RC_FMT1 | 0x3f;
	return code == want;
}

static int guard_fail(const char *call);
static void marker_leave(void);

/* One line for a failed tss2 call; returns its class. */
static int
tpm_fail(const char *call, TSS2_RC r)
{
	int rc;

	/* A command ended by the guard: say why, not "IO failure". */
	if ((rc = guard_fail(call)) != KL_OK)
		return rc;
	/* Slots full: of leftovers, perhaps; the next open looks (kl_tpm_open). */
	if (is_tpm_rc(r, TPM2_RC_OBJECT_MEMORY) || is_tpm_rc(r, TPM2_RC_SESSION_MEMORY) ||
	    is_tpm_rc(r, TPM2_RC_MEMORY))
		marker_leave();
	/* §8.2: not a protocol error; it goes away after the recovery time. */
	if (is_tpm_rc(r, TPM2_RC_LOCKOUT))
		return kl_fail(KL_TEMP, "%s: TPM in dictionary-attack lockout (0x%x)", call, r);
	return kl_fail(rc_class(r), "%s: %s (0x%x)", call, Tss2_RC_Decode(r), r);
}

/* An ESAPI output that is NULL or oversized means a broken TSS or TPM. */
static int
bad_output(const char *call)
{
	return kl_fail(KL_PERM, "%s: malformed output", call);
}

/* ---------------------------------------------------------------- guard: timeout, TERM/INT */

/*
 * Why a TCTI of kl's own in front of the loaded one: tss2 waits for the
 * TPM's answer in a blocking read() that it restarts after EINTR, the swtpm
 * and mssim TCTIs take no timeout, and ESAPI's synchronous calls ask every
 * TCTI to block. So before handing receive() on, the guard poll()s the
 * TCTI's own descriptor (the socket, or /dev/tpm*: its poll handle, or
 * else the descriptor it opened, see lowest_free()) for at most
 * kl_tpm_timeout_seconds; poll() is never restarted after a signal handler
 * (SA_RESTART or not), so SIGTERM/SIGINT end the wait too. Either way the
 * command fails with a TCTI I/O error that tpm_fail() turns into one line
 * and KL_TEMP. After a timeout nothing more is sent; after a signal only the
 * flushes of kl_tpm_close(), each waiting at most STOP_WAIT_MS (kl_prog's
 * alarm ends the step a second after the signal anyway). A TCTI that
 * shows no descriptor (tabrmd over D-Bus) keeps blocking, as before.
 *
 * The default: 120 s, because creating an RSA-2048 key (EK, AK) is the
 * slowest command kl sends and a hardware TPM may take a minute or more for
 * it (the prime search has no upper bound; Linux allows TPM2_CreatePrimary
 * and TPM2_Create up to 300 s, TPM2_DURATION_LONG_LONG in
 * drivers/char/tpm/tpm.h, while a quote takes well under a second).
 */
#define STOP_WAIT_MS 500


enum guard_stop { GUARD_OK, GUARD_TIMEOUT, GUARD_SIGNAL };

struct kl_tcti_guard {
	TSS2_TCTI_CONTEXT_COMMON_V1 common;	/* first: ESAPI calls through it */
	TSS2_TCTI_CONTEXT *inner;
	struct pollfd pfd;
	int have_fd;
	int closing;		/* kl_tpm_close: flushes may pass after a signal */
	int sent;		/* a command went out and no part of its answer came in */
};

/* Why the guard ended a command: process-wide, one TPM connection at a time. */
static enum guard_stop guard_stop;
static int guard_reported;

static struct kl_tcti_guard *
guard_of(TSS2_TCTI_CONTEXT *ctx)
{
	return (struct kl_tcti_guard *)(void *)ctx;
}

static int
may_send(const struct kl_tcti_guard *g)
{
	if (kl_stop_requested && guard_stop == GUARD_OK)
		guard_stop = GUARD_SIGNAL;
	return guard_stop == GUARD_OK || (guard_stop == GUARD_SIGNAL && g->closing);
}

/*
 * The lowest free descriptor: where the next socket() or open() lands (the
 * steps are single-threaded), or -1. Checked again after a TCTI call, it
 * tells which descriptor the TCTI opened and kept: the swtpm and mssim TCTIs
 * of tss2 3.x give no poll handle, and open a new socket for each command.
 */
static int
lowest_free(void)
{
	int fd = fcntl(2, F_DUPFD, 0);

	if (fd >= 0)
		close(fd);
	return fd;
}

static void
guard_watch(struct kl_tcti_guard *g, int fd)
{
	if (fd < 0 || fcntl(fd, F_GETFD) == -1)
		return;
	g->pfd.fd = fd;
	g->pfd.events = POLLIN;
	g->have_fd = 1;
}

static TSS2_RC
guard_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd)
{
	struct kl_tcti_guard *g = guard_of(ctx);

	int fd = lowest_free();
	TSS2_RC r;

	if (!may_send(g))
		return TSS2_TCTI_RC_IO_ERROR;
	r = Tss2_Tcti_Transmit(g->inner, size, cmd);
	if (r == TSS2_RC_SUCCESS) {
		guard_watch(g, fd);
		g->sent = 1;
	}
	return r;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until the answer can be read: TSS2_RC_SUCCESS, or an I/O error and guard_stop says why. */
static TSS2_RC
guard_wait(struct kl_tcti_guard *g)
{
	long limit = g->closing && guard_stop == GUARD_SIGNAL ? STOP_WAIT_MS : kl_tpm_timeout_seconds * 1000;
	long end = now_ms() + limit;

	for (;;) {
		long left = end - now_ms();
		int n;

		if (!may_send(g))
			return TSS2_TCTI_RC_IO_ERROR;
		n = poll(&g->pfd, 1, left > 0 ? (int)(left < 3600000 ? left : 3600000) : 0);
		if (n > 0)
			return TSS2_RC_SUCCESS;
		if (n == 0 && left <= 3600000) {
			guard_stop = GUARD_TIMEOUT;
			return TSS2_TCTI_RC_IO_ERROR;
		}
		if (n < 0 && errno != EINTR)
			return TSS2_RC_SUCCESS;	/* let the TCTI itself read and report */
	}
}

static TSS2_RC
guard_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *resp, int32_t timeout)
{
	struct kl_tcti_guard *g = guard_of(ctx);
	TSS2_RC r;

	/*
	 * Only before the first part: tss2 may read an answer in two calls (the
	 * header, then the rest), and a 10-byte answer has no rest to wait for.
	 */
	if (g->have_fd && g->sent && (r = guard_wait(g)) != TSS2_RC_SUCCESS)
		return r;
	g->sent = 0;
	return Tss2_Tcti_Receive(g->inner, size, resp, timeout);
}

static TSS2_RC
guard_cancel(TSS2_TCTI_CONTEXT *ctx)
{
	return Tss2_Tcti_Cancel(guard_of(ctx)->inner);
}

static TSS2_RC
guard_poll_handles(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *h, size_t *n)
{
	return Tss2_Tcti_GetPollHandles(guard_of(ctx)->inner, h, n);
}

static TSS2_RC
guard_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
	return Tss2_Tcti_SetLocality(guard_of(ctx)->inner, locality);
}

static struct kl_tcti_guard *
guard_new(TSS2_TCTI_CONTEXT *inner, int fd)
{
	struct kl_tcti_guard *g = calloc(1, sizeof(*g));
	TSS2_TCTI_POLL_HANDLE h[1];
	size_t n = 1;

	if (g == NULL)
		return NULL;
	g->common.magic = 0x6b6c677561726431ULL;	/* "klguard1" */
	g->common.version = 1;
	g->common.transmit = guard_transmit;
	g->common.receive = guard_receive;
	g->common.cancel = guard_cancel;
	g->common.getPollHandles = guard_poll_handles;
	g->common.setLocality = guard_set_locality;
	g->inner = inner;
	if (Tss2_Tcti_GetPollHandles(inner, h, &n) == TSS2_RC_SUCCESS && n == 1) {
		g->pfd = h[0];
		g->pfd.events = POLLIN;
		g->have_fd = 1;
	} else {
		guard_watch(g, fd);
	}
	guard_stop = GUARD_OK;
	guard_reported = 0;
	return g;
}

/* The one line for a command the guard ended, or KL_OK if it did not. */
static int
guard_fail(const char *call)
{
	if (guard_stop == GUARD_OK)
		return KL_OK;
	if (guard_reported)
		return KL_TEMP;
	guard_reported = 1;
	if (guard_stop == GUARD_TIMEOUT)
		return kl_fail(KL_TEMP, "%s: the TPM did not answer within %ld s (tpm_timeout_seconds)",
		    call, kl_tpm_timeout_seconds);
	return kl_fail(KL_TEMP, "%s: stopped by %s", call, kl_stop_requested == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---------------------------------------------------------------- leftovers */

/*
 * Is tcti a TPM without a resource manager, which kl is the only user of
 * while connected? swtpm and mssim serve one connection at a time, and
 * /dev/tpmN opens once. A resource manager (/dev/tpmrmN, tabrmd) flushes a
 * client's objects itself and has other clients: never there.
 */
static int
tcti_is_raw(const char *tcti)
{
	const char *conf = tcti ? strchr(tcti, ':') : NULL, *base;
	size_t nlen;

	if (tcti == NULL || conf == NULL)
		return 0;
	nlen = (size_t)(conf - tcti);
	if (strstr(tcti, "swtpm") == tcti || strstr(tcti, "mssim") == tcti ||
	    strstr(tcti, "libtss2-tcti-swtpm") == tcti || strstr(tcti, "libtss2-tcti-mssim") == tcti)
		return 1;
	if (!((nlen == 6 && strncmp(tcti, "device", 6) == 0) ||
	    strncmp(tcti, "libtss2-tcti-device", 19) == 0))
		return 0;
	base = strrchr(conf + 1, '/');
	base = base ? base + 1 : conf + 1;
	return strncmp(base, "tpm", 3) == 0 && base[3] >= '0' && base[3] <= '9' &&
	    base[3 + strspn(base + 3, "0123456789")] == '\0';
}

/* Saved sessions are listed from 0x03000000 but keep their 0x02/0x03 handles. */
static int
same_kind(TPM2_HANDLE h, UINT32 first)
{
	UINT32 ht = h >> TPM2_HR_SHIFT, ft = first >> TPM2_HR_SHIFT;

	if (ft == TPM2_HT_TRANSIENT)
		return ht == TPM2_HT_TRANSIENT;
	return ht == TPM2_HT_HMAC_SESSION || ht == TPM2_HT_POLICY_SESSION;
}

/* Flush every handle of one range (transient, loaded or saved sessions); count them. */
static int
flush_range(struct kl_tpm *t, UINT32 first, unsigned *flushed)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_YES;
	UINT32 next = first;
	TSS2_RC r;

	while (more) {
		r = Esys_GetCapability(t->esys, NONE, NONE, NONE, TPM2_CAP_HANDLES, next,
		    TPM2_MAX_CAP_HANDLES, &more, &cap);
		if (r != TSS2_RC_SUCCESS)
			return tpm_fail("Esys_GetCapability", r);
		if (cap == NULL || cap->data.handles.count > TPM2_MAX_CAP_HANDLES) {
			Esys_Free(cap);
			return bad_output("Esys_GetCapability");
		}
		if (cap->data.handles.count == 0)
			more = TPM2_NO;
		for (UINT32 i = 0; i < cap->data.handles.count; i++) {
			TPM2_HANDLE h = cap->data.handles.handle[i];
			ESYS_TR tr;

			next = h + 1;
			if (!same_kind(h, first)) {
				more = TPM2_NO;	/* past the range asked for */
				break;
			}
			r = Esys_TR_FromTPMPublic(t->esys, h, NONE, NONE, NONE, &tr);
			if (r == TSS2_RC_SUCCESS)
				r = Esys_FlushContext(t->esys, tr);
			if (r == TSS2_RC_SUCCESS)
				(*flushed)++;
			else {
				kl_debug("leftover 0x%08x: not flushed: %s", h, Tss2_RC_Decode(r));
				marker_leave();
			}
		}
		Esys_Free(cap);
		cap = NULL;
	}
	return KL_OK;
}

static int
flush_leftovers(struct kl_tpm *t)
{
	static const UINT32 ranges[] = {
		TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST, TPM2_ACTIVE_SESSION_FIRST,
	};
	unsigned flushed = 0;
	int rc;

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if ((rc = flush_range(t, ranges[i], &flushed)) != KL_OK)
			return rc;
	if (flushed > 0)
		kl_notice("flushed %u leftover objects/sessions (no resource manager)", flushed);
	return KL_OK;
}

/* ---------------------------------------------------------------- the marker */

/*
 * Why a marker: looking for leftovers costs three TPM2_GetCapability(HANDLES)
 * at every open, a third of a steady cycle's commands (issue 10), and there
 * is rarely anything to find. Leftovers come from
 *   - a kl step that ended holding the TPM (SIGKILL, a crash, the alarm a
 *     second after TERM): its open made KL_TPM_MARKER_FILE and no clean
 *     kl_tpm_close() removed it, so the next open finds it and looks;
 *   - anything else (tpm2-tools -c, an agent of another keylime_dir on the
 *     same TPM): seen when a command fails for want of object or session
 *     memory; marker_leave() keeps or makes the marker, that step still fails
 *     (KL_TEMP) and the next open looks.
 * A power loss needs nothing: a TPM Reset flushes transient objects and
 * sessions. One marker per keylime_dir, like the saved AK context; kl-agent
 * runs its steps one at a time. When the marker cannot be made (no
 * keylime_dir, read-only or full), every open looks, silently: correctness
 * before the three commands.
 */
static int keep_marker;		/* leftovers possible: no close of this process removes it */

static int
marker_path(char *buf, size_t size)
{
	int n;

	if (kl_tpm_state_dir == NULL || kl_tpm_state_dir[0] == '\0')
		return 0;
	n = snprintf(buf, size, "%s/%s", kl_tpm_state_dir, KL_TPM_MARKER_FILE);
	return n > 0 && (size_t)n < size;
}

/* Make the marker (excl: fail if it is there); 0 on success, else errno. */
static int
marker_make(int excl)
{
	char path[4096];
	int fd;

	if (!marker_path(path, sizeof(path)))
		return ENOENT;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (excl ? O_EXCL : 0), 0600);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static void
marker_leave(void)
{
	keep_marker = 1;
	(void)marker_make(0);
}

/* At open of a TPM without a resource manager: 1 if leftovers may be there. */
static int
marker_take(struct kl_tpm *t)
{
	int e = marker_make(1);

	t->marker = e == 0 || e == EEXIST;
	return e != 0;
}

/* At close: gone when nothing this process did may have left anything. */
static void
marker_drop(struct kl_tpm *t)
{
	char path[4096];

	if (t->marker && !keep_marker && marker_path(path, sizeof(path)))
		(void)unlink(path);
	t->marker = 0;
}

static char init_line[512];
static size_t init_len;

static void
init_timeout(int sig)
{
	(void)sig;
	if (write(2, init_line, init_len) < 0)
		_exit(KL_TEMP);
	_exit(KL_TEMP);
}

/*
 * Tss2_TctiLdr_Initialize under a timer: the swtpm TCTI already talks to
 * the TPM's control channel here, in a read() that tss2 restarts after
 * EINTR, and before the guard exists. The only way out of that read is to
 * end the process, with one line (TERM/INT end it at once: nothing is
 * loaded yet).
 */
static TSS2_RC
tctildr_init(const char *tcti, TSS2_TCTI_CONTEXT **out)
{
	struct sigaction sa, old;
	TSS2_RC r;
	int n;

	n = snprintf(init_line, sizeof(init_line), "%s: error: cannot open TPM: %s: no answer "
	    "within %ld s (tpm_timeout_seconds)\n", kl_progname, tcti && *tcti ? tcti : "(default)",
	    kl_tpm_timeout_seconds);
	init_len = n < 0 ? 0 : (size_t)n < sizeof(init_line) ? (size_t)n : sizeof(init_line) - 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = init_timeout;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	alarm((unsigned)kl_tpm_timeout_seconds);
	r = Tss2_TctiLdr_Initialize(tcti && *tcti ? tcti : NULL, out);
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	return r;
}

/* The TCTI could not be loaded or reached: where to look when there is no TPM. */
static int
open_fail(const char *tcti, TSS2_RC r)
{
	const char *name = tcti && *tcti ? tcti : "(default)";

	if (tcti == NULL || *tcti == '\0' || strncmp(tcti, "device", 6) == 0)
		return kl_fail(rc_class(r), "cannot open TPM: %s: %s (0x%x): is there a TPM? "
		    "(enabled in the firmware setup? driver loaded? see ls /dev/tpm*)",
		    name, Tss2_RC_Decode(r), r);
	return kl_fail(rc_class(r), "cannot open TPM: %s: %s (0x%x)", name, Tss2_RC_Decode(r), r);
}

/* ---------------------------------------------------------------- context */

static int
track(struct kl_tpm *t, ESYS_TR h)
{
	if (t->ntracked == KL_TPM_MAX_TRACKED) {
		Esys_FlushContext(t->esys, h);
		return kl_fail(KL_PERM, "kl_tpm: too many TPM objects");
	}
	t->tracked[t->ntracked++] = h;
	return KL_OK;
}

void
kl_tpm_flush(struct kl_tpm *t, ESYS_TR h)
{
	for (size_t i = 0; i < t->ntracked; i++) {
		if (t->tracked[i] != h)
			continue;
		TSS2_RC r = Esys_FlushContext(t->esys, h);
		if (r != TSS2_RC_SUCCESS) {
			kl_debug("Esys_FlushContext: %s", Tss2_RC_Decode(r));
			keep_marker = 1;	/* h stays in the TPM */
		}
		t->tracked[i] = t->tracked[--t->ntracked];
		return;
	}
}

int
kl_tpm_open(struct kl_tpm *t, const char *tcti)
{
	TSS2_RC r;
	int fd, rc;

	memset(t, 0, sizeof(*t));
	/* tss2 logs its own errors to stderr; kl logs one line per event. */
	setenv("TSS2_LOG", "all+none", 0);
	fd = lowest_free();
	if ((r = tctildr_init(tcti, &t->tcti)) != TSS2_RC_SUCCESS)
		return open_fail(tcti, r);
	if ((t->guard = guard_new(t->tcti, fd)) == NULL) {
		kl_tpm_close(t);
		return kl_fail(KL_TEMP, "out of memory");
	}
	/* From here TERM/INT go through the guard (kl_prog.h). */
	kl_stop_deferred = 1;
	r = Esys_Initialize(&t->esys, (TSS2_TCTI_CONTEXT *)(void *)t->guard, NULL);
	if (r != TSS2_RC_SUCCESS) {
		rc = tpm_fail("Esys_Initialize", r);
		kl_tpm_close(t);
		return rc;
	}
	r = Esys_Startup(t->esys, TPM2_SU_CLEAR);
	if (r != TSS2_RC_SUCCESS && !is_tpm_rc(r, TPM2_RC_INITIALIZE)) {
		rc = tpm_fail("Esys_Startup", r);
		kl_tpm_close(t);
		return rc;
	}
	if (tcti_is_raw(tcti) && marker_take(t) && (rc = flush_leftovers(t)) != KL_OK) {
		t->marker = 0;	/* not all flushed: the next open looks again */
		kl_tpm_close(t);
		return rc;
	}
	return KL_OK;
}

void
kl_tpm_close(struct kl_tpm *t)
{
	if (t->guard)
		t->guard->closing = 1;
	/* A TPM that stopped answering gets nothing more (the guard would refuse it). */
	if (guard_stop == GUARD_TIMEOUT) {
		keep_marker = t->ntracked > 0 || keep_marker;
		t->ntracked = 0;
	}
	while (t->ntracked > 0)
		kl_tpm_flush(t, t->tracked[t->ntracked - 1]);
	if (t->esys)
		Esys_Finalize(&t->esys);
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
	marker_drop(t);
	free(t->guard);
	t->guard = NULL;
	kl_stop_deferred = 0;
	/* A stop no TPM command reported: end the step now, as outside the TPM. */
	if (kl_stop_requested && !guard_reported)
		kl_stop_exit();
}

/* ---------------------------------------------------------------- marshalling */

static int
marshal_public(const TPM2B_PUBLIC *p, unsigned char **out, size_t *len)
{
	unsigned char buf[sizeof(TPM2B_PUBLIC)];
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(p, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return bad_output("Tss2_MU_TPM2B_PUBLIC_Marshal");
	if ((*out = malloc(off)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	memcpy(*out, buf, off);
	*len = off;
	return KL_OK;
}

/* The whole of b must be one TPM2B_PUBLIC. */
static int
unmarshal_public(const unsigned char *b, size_t len, TPM2B_PUBLIC *out)
{
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	if (b == NULL || Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, len, &off, out) != TSS2_RC_SUCCESS)
		return kl_fail(KL_PERM, "public key: not a TPM2B_PUBLIC");
	if (off != len)
		return kl_fail(KL_PERM, "public key: %zu bytes after the TPM2B_PUBLIC", len - off);
	return KL_OK;
}

static int
marshal_signature(const TPMT_SIGNATURE *s, unsigned char **out, size_t *len)
{
	unsigned char buf[sizeof(TPMT_SIGNATURE)];
	size_t off = 0;

	if (Tss2_MU_TPMT_SIGNATURE_Marshal(s, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return bad_output("Tss2_MU_TPMT_SIGNATURE_Marshal");
	if ((*out = malloc(off)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	memcpy(*out, buf, off);
	*len = off;
	return KL_OK;
}

static int
dup_bytes(const void *p, size_t n, unsigned char **out, size_t *len)
{
	if ((*out = malloc(n ? n : 1)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	memcpy(*out, p, n);
	*len = n;
	return KL_OK;
}

int
kl_tpm_name(const unsigned char *pub, size_t len, unsigned char **name, size_t *name_len)
{
	TPM2B_PUBLIC p;
	unsigned char tpmt[sizeof(TPMT_PUBLIC)], *n;
	size_t off = 0, hoff = 0, dlen;
	int rc;

	*name = NULL;
	if ((rc = unmarshal_public(pub, len, &p)) != KL_OK)
		return rc;
	if ((dlen = hash_size(p.publicArea.nameAlg)) == 0)
		return kl_fail(KL_PERM, "public key: unsupported nameAlg 0x%04x", p.publicArea.nameAlg);
	/* H(TPMT_PUBLIC) over its canonical marshalling (§8.3). */
	if (Tss2_MU_TPMT_PUBLIC_Marshal(&p.publicArea, tpmt, sizeof(tpmt), &off) != TSS2_RC_SUCCESS)
		return bad_output("Tss2_MU_TPMT_PUBLIC_Marshal");
	if ((n = malloc(2 + dlen)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	if (Tss2_MU_UINT16_Marshal(p.publicArea.nameAlg, n, 2, &hoff) != TSS2_RC_SUCCESS ||
	    kl_crypto_digest(alg_str(hash_algs, p.publicArea.nameAlg), tpmt, off, n + 2) != 0) {
		free(n);
		return kl_fail(KL_PERM, "public key: cannot compute the name");
	}
	*name = n;
	*name_len = 2 + dlen;
	return KL_OK;
}

int
kl_tpm_key_info(const unsigned char *pub, size_t len, struct kl_key_info *out)
{
	TPM2B_PUBLIC p;
	const TPMT_PUBLIC *a = &p.publicArea;
	TPMT_SIG_SCHEME s = { 0 };
	const char *hash, *sig, *nalg;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = unmarshal_public(pub, len, &p)) != KL_OK)
		return rc;
	if (a->type == TPM2_ALG_RSA) {
		snprintf(out->key_algorithm, sizeof(out->key_algorithm), "rsa");
		out->key_size = a->parameters.rsaDetail.keyBits;
		s.scheme = a->parameters.rsaDetail.scheme.scheme;
		s.details.any.hashAlg = a->parameters.rsaDetail.scheme.details.anySig.hashAlg;
	} else if (a->type == TPM2_ALG_ECC) {
		snprintf(out->key_algorithm, sizeof(out->key_algorithm), "ecc");
		switch (a->parameters.eccDetail.curveID) {
		case TPM2_ECC_NIST_P256: case TPM2_ECC_BN_P256: case TPM2_ECC_SM2_P256:
			out->key_size = 256; break;
		case TPM2_ECC_NIST_P384: out->key_size = 384; break;
		case TPM2_ECC_NIST_P521: out->key_size = 521; break;
		default:
			return kl_fail(KL_PERM, "public key: unsupported curve 0x%04x",
			    a->parameters.eccDetail.curveID);
		}
		s.scheme = a->parameters.eccDetail.scheme.scheme;
		s.details.any.hashAlg = a->parameters.eccDetail.scheme.details.anySig.hashAlg;
	} else {
		return kl_fail(KL_PERM, "public key: type 0x%04x is neither RSA nor ECC", a->type);
	}
	sig = alg_str(sig_algs, s.scheme);
	hash = alg_str(hash_algs, s.details.any.hashAlg);
	nalg = alg_str(hash_algs, a->nameAlg);
	if (sig == NULL || hash == NULL || nalg == NULL)
		return kl_fail(KL_PERM, "public key: not a signing key with a fixed scheme");
	snprintf(out->signing_alg, sizeof(out->signing_alg), "%s", sig);
	snprintf(out->hash_alg, sizeof(out->hash_alg), "%s", hash);
	snprintf(out->name_alg, sizeof(out->name_alg), "%s", nalg);
	return KL_OK;
}

/* kl_tpm_public_key() copies TPM buffers into these. */
_Static_assert(sizeof(((struct kl_crypto_pubkey *)0)->n) >= sizeof(((TPM2B_PUBLIC_KEY_RSA *)0)->buffer),
    "RSA modulus buffer");
_Static_assert(sizeof(((struct kl_crypto_pubkey *)0)->x) >= sizeof(((TPM2B_ECC_PARAMETER *)0)->buffer),
    "ECC coordinate buffer");

int
kl_tpm_public_key(const unsigned char *pub, size_t len, struct kl_crypto_pubkey *out)
{
	TPM2B_PUBLIC p;
	const TPMU_PUBLIC_ID *u = &p.publicArea.unique;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = unmarshal_public(pub, len, &p)) != KL_OK)
		return rc;
	if (p.publicArea.type == TPM2_ALG_RSA) {
		out->type = KL_CRYPTO_RSA;
		/* 0 means the default exponent, 2^16 + 1 (TPM 2.0 Part 2, 12.2.3.5). */
		out->e = p.publicArea.parameters.rsaDetail.exponent ?
		    p.publicArea.parameters.rsaDetail.exponent : 65537;
		out->n_len = u->rsa.size;
		memcpy(out->n, u->rsa.buffer, u->rsa.size);
		return out->n_len ? KL_OK : kl_fail(KL_PERM, "public key: empty RSA modulus");
	}
	if (p.publicArea.type != TPM2_ALG_ECC)
		return kl_fail(KL_PERM, "public key: type 0x%04x is neither RSA nor ECC", p.publicArea.type);
	out->type = KL_CRYPTO_EC;
	switch (p.publicArea.parameters.eccDetail.curveID) {
	case TPM2_ECC_NIST_P256: out->curve_bits = 256; break;
	case TPM2_ECC_NIST_P384: out->curve_bits = 384; break;
	case TPM2_ECC_NIST_P521: out->curve_bits = 521; break;
	default:
		return kl_fail(KL_PERM, "public key: unsupported curve 0x%04x",
		    p.publicArea.parameters.eccDetail.curveID);
	}
	out->x_len = u->ecc.x.size;
	out->y_len = u->ecc.y.size;
	memcpy(out->x, u->ecc.x.buffer, u->ecc.x.size);
	memcpy(out->y, u->ecc.y.buffer, u->ecc.y.size);
	return KL_OK;
}

/* ---------------------------------------------------------------- EK */

/* PolicySecret(TPM_RH_ENDORSEMENT), the authPolicy of the default EK templates. */
static const TPM2B_DIGEST ek_policy = { 32, {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d,
	0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa } };

#define EK_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

/*
 * The TCG EK Credential Profile default templates (§8.2). Only these exact
 * bytes give the key the manufacturer certified: change nothing.
 */
static void
ek_template(int ecc, TPM2B_PUBLIC *p)
{
	TPMT_PUBLIC *a = &p->publicArea;

	memset(p, 0, sizeof(*p));
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = EK_ATTRS;
	a->authPolicy = ek_policy;
	if (!ecc) {		/* L-1: RSA-2048, AES-128-CFB, unique = 256 zero bytes */
		a->type = TPM2_ALG_RSA;
		a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
		a->parameters.rsaDetail.symmetric.keyBits.aes = 128;
		a->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		a->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
		a->parameters.rsaDetail.keyBits = 2048;
		a->parameters.rsaDetail.exponent = 0;
		a->unique.rsa.size = 256;
	} else {		/* L-2: NIST P-256, AES-128-CFB, unique = 2 x 32 zero bytes */
		a->type = TPM2_ALG_ECC;
		a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
		a->parameters.eccDetail.symmetric.keyBits.aes = 128;
		a->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
		a->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
		a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		a->unique.ecc.x.size = 32;
		a->unique.ecc.y.size = 32;
	}
}

/* "" -> empty, "hex:..." -> bytes, else the text itself (as upstream's tpm_ownerpassword). */
static int
parse_auth(const char *s, TPM2B_AUTH *out)
{
	unsigned char *b = NULL;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (s == NULL || *s == '\0')
		return KL_OK;
	if (strncmp(s, "hex:", 4) == 0) {
		if (kl_hex_decode(s + 4, &b, &n) != 0)
			return kl_fail(KL_PERM, "endorsement auth: bad hex after \"hex:\"");
	} else {
		b = (unsigned char *)s;
		n = strlen(s);
	}
	if (n > sizeof(out->buffer)) {
		if (b != (const unsigned char *)s)
			kl_secret_free(b, n);
		return kl_fail(KL_PERM, "endorsement auth: longer than %zu bytes", sizeof(out->buffer));
	}
	memcpy(out->buffer, b, n);
	out->size = (UINT16)n;
	if (b != (const unsigned char *)s)
		kl_secret_free(b, n);
	return KL_OK;
}

static int
set_endorsement_auth(struct kl_tpm *t, const TPM2B_AUTH *auth)
{
	static const TPM2B_AUTH empty;
	TSS2_RC r;

	/* A zero struct overwrites ESAPI's copy of the previous value entirely. */
	r = Esys_TR_SetAuth(t->esys, ESYS_TR_RH_ENDORSEMENT, auth ? auth : &empty);
	return r == TSS2_RC_SUCCESS ? KL_OK : tpm_fail("Esys_TR_SetAuth", r);
}

static int
parse_persistent(const char *s, uint32_t *h)
{
	char *end;
	unsigned long v;

	v = strtoul(s, &end, 16);
	if (strncmp(s, "0x", 2) != 0 || *end != '\0' || v < 0x81000000UL || v > 0x81ffffffUL)
		return kl_fail(KL_PERM, "ek_handle: \"%s\" is not a persistent handle (0x81000000-0x81ffffff)", s);
	*h = (uint32_t)v;
	return KL_OK;
}

static int
ek_fill(struct kl_ek *ek, const TPM2B_PUBLIC *pub)
{
	int rc;

	ek->name_alg = pub->publicArea.nameAlg;
	if ((rc = marshal_public(pub, &ek->pub, &ek->pub_len)) != KL_OK)
		return rc;
	return kl_tpm_name(ek->pub, ek->pub_len, &ek->name, &ek->name_len);
}

int
kl_tpm_ek(struct kl_tpm *t, const char *alg, const char *handle,
    const char *endorsement_auth, struct kl_ek *out)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION creation_pcrs = { 0 };
	TPM2B_PUBLIC tmpl, *pub = NULL;
	TPM2B_CREATION_DATA *cdata = NULL;
	TPM2B_DIGEST *chash = NULL;
	TPMT_TK_CREATION *ticket = NULL;
	TSS2_RC r;
	int ecc, rc;

	memset(out, 0, sizeof(*out));
	out->handle = ESYS_TR_NONE;
	if (alg == NULL || (strcmp(alg, "rsa") != 0 && strcmp(alg, "ecc") != 0))
		return kl_fail(KL_PERM, "tpm_encryption_alg: \"%s\" is not rsa or ecc", alg ? alg : "");
	ecc = alg[0] == 'e';
	snprintf(out->alg, sizeof(out->alg), "%s", alg);
	if ((rc = parse_auth(endorsement_auth, &out->auth)) != KL_OK)
		return rc;

	if (handle && *handle) {
		if ((rc = parse_persistent(handle, &out->persistent)) != KL_OK)
			goto fail;
		r = Esys_TR_FromTPMPublic(t->esys, out->persistent, NONE, NONE, NONE, &out->handle);
		if (r != TSS2_RC_SUCCESS) {
			rc = tpm_fail("Esys_TR_FromTPMPublic", r);
			goto fail;
		}
		r = Esys_ReadPublic(t->esys, out->handle, NONE, NONE, NONE, &pub, NULL, NULL);
		if (r != TSS2_RC_SUCCESS) {
			rc = tpm_fail("Esys_ReadPublic", r);
			goto fail;
		}
		if (pub == NULL) {
			rc = bad_output("Esys_ReadPublic");
			goto fail;
		}
		if (pub->publicArea.type != (ecc ? TPM2_ALG_ECC : TPM2_ALG_RSA)) {
			rc = kl_fail(KL_PERM, "ek_handle: %s is not an %s key", handle,
			    ecc ? "ECC" : "RSA");
			goto fail;
		}
	} else {
		ek_template(ecc, &tmpl);
		if ((rc = set_endorsement_auth(t, &out->auth)) != KL_OK)
			goto fail;
		r = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, NONE, NONE,
		    &sens, &tmpl, &outside, &creation_pcrs, &out->handle, &pub, &cdata, &chash, &ticket);
		set_endorsement_auth(t, NULL);
		Esys_Free(cdata);
		Esys_Free(chash);
		Esys_Free(ticket);
		if (r != TSS2_RC_SUCCESS) {
			out->handle = ESYS_TR_NONE;
			rc = tpm_fail("Esys_CreatePrimary", r);
			goto fail;
		}
		if ((rc = track(t, out->handle)) != KL_OK) {
			out->handle = ESYS_TR_NONE;
			goto fail;
		}
		if (pub == NULL) {
			rc = bad_output("Esys_CreatePrimary");
			goto fail;
		}
	}
	rc = ek_fill(out, pub);
	Esys_Free(pub);
	if (rc == KL_OK)
		return KL_OK;
	pub = NULL;
fail:
	Esys_Free(pub);
	kl_tpm_ek_release(out);
	return rc;
}

void
kl_tpm_ek_release(struct kl_ek *ek)
{
	free(ek->pub);
	free(ek->name);
	explicit_bzero(&ek->auth, sizeof(ek->auth));
	ek->pub = ek->name = NULL;
	ek->pub_len = ek->name_len = 0;
}

/* ---------------------------------------------------------------- NV certificates */

static int
nv_buffer_max(struct kl_tpm *t, size_t *max)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC r;

	*max = 512;	/* the smallest a TPM may have; used if it does not say */
	r = Esys_GetCapability(t->esys, NONE, NONE, NONE, TPM2_CAP_TPM_PROPERTIES,
	    TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_GetCapability", r);
	if (cap && cap->data.tpmProperties.count == 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX &&
	    cap->data.tpmProperties.tpmProperty[0].value > 0)
		*max = cap->data.tpmProperties.tpmProperty[0].value;
	if (*max > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer))
		*max = sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer);
	Esys_Free(cap);
	return KL_OK;
}

int
kl_tpm_nv_cert(struct kl_tpm *t, uint32_t index, unsigned char **der, size_t *len)
{
	ESYS_TR nv = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *npub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	unsigned char *buf = NULL;
	size_t size, off, max, dl;
	TSS2_RC r;
	int rc;

	*der = NULL;
	*len = 0;
	r = Esys_TR_FromTPMPublic(t->esys, index, NONE, NONE, NONE, &nv);
	if (r != TSS2_RC_SUCCESS) {
		if (is_tpm_rc(r, TPM2_RC_HANDLE)) {
			kl_debug("no NV index 0x%08x", index);
			return KL_OK;
		}
		return tpm_fail("Esys_TR_FromTPMPublic", r);
	}
	r = Esys_NV_ReadPublic(t->esys, nv, NONE, NONE, NONE, &npub, NULL);
	if (r != TSS2_RC_SUCCESS) {
		rc = tpm_fail("Esys_NV_ReadPublic", r);
		goto out;
	}
	if (npub == NULL) {
		rc = bad_output("Esys_NV_ReadPublic");
		goto out;
	}
	size = npub->nvPublic.dataSize;
	if (!(npub->nvPublic.attributes & TPMA_NV_AUTHREAD)) {
		rc = kl_fail(KL_PERM, "NV 0x%08x: not readable with its own authorization", index);
		goto out;
	}
	if ((rc = nv_buffer_max(t, &max)) != KL_OK)
		goto out;
	if ((buf = malloc(size ? size : 1)) == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	for (off = 0; off < size; off += data->size) {
		size_t chunk = size - off < max ? size - off : max;

		Esys_Free(data);
		data = NULL;
		/* authHandle = the index itself, empty password (§8.1). */
		r = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, NONE, NONE,
		    (UINT16)chunk, (UINT16)off, &data);
		if (r != TSS2_RC_SUCCESS) {
			rc = tpm_fail("Esys_NV_Read", r);
			goto out;
		}
		if (data == NULL || data->size != chunk) {
			rc = bad_output("Esys_NV_Read");
			goto out;
		}
		memcpy(buf + off, data->buffer, chunk);
	}
	/* The index may be padded after the DER; keep the outer SEQUENCE only (§8.4). */
	if ((dl = kl_crypto_x509_der_len(buf, size)) == 0) {
		rc = kl_fail(KL_PERM, "NV 0x%08x: not a DER certificate", index);
		goto out;
	}
	*der = buf;
	*len = dl;
	buf = NULL;
	rc = KL_OK;
out:
	free(buf);
	Esys_Free(data);
	Esys_Free(npub);
	Esys_TR_Close(t->esys, &nv);
	return rc;
}

int
kl_tpm_ek_cert(struct kl_tpm *t, const char *alg, unsigned char **der, size_t *len)
{
	/* TCG EK Credential Profile: RSA-2048 (L-1) and ECC P-256 (L-2) certificates. */
	return kl_tpm_nv_cert(t, alg && strcmp(alg, "ecc") == 0 ? 0x01c0000a : 0x01c00002, der, len);
}

/* ---------------------------------------------------------------- AK */

/*
 * A policy session satisfying the EK's authPolicy, PolicySecret(TPM_RH_ENDORSEMENT)
 * (§2.5). The endorsement auth is given to ESAPI for this one command only.
 * *sess is tracked; flush it after its one use.
 */
static int
ek_session(struct kl_tpm *t, const struct kl_ek *ek, ESYS_TR *sess)
{
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	TPM2B_TIMEOUT *timeout = NULL;
	TPMT_TK_AUTH *ticket = NULL;
	TSS2_RC r;
	int rc;

	r = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, NONE, NONE, NONE,
	    NULL, TPM2_SE_POLICY, &sym, ek->name_alg, sess);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_StartAuthSession", r);
	if ((rc = track(t, *sess)) != KL_OK)
		return rc;
	if ((rc = set_endorsement_auth(t, &ek->auth)) != KL_OK)
		goto fail;
	r = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, *sess, ESYS_TR_PASSWORD, NONE, NONE,
	    NULL, NULL, NULL, 0, &timeout, &ticket);
	set_endorsement_auth(t, NULL);
	Esys_Free(timeout);
	Esys_Free(ticket);
	if (r == TSS2_RC_SUCCESS)
		return KL_OK;
	rc = tpm_fail("Esys_PolicySecret", r);
fail:
	kl_tpm_flush(t, *sess);
	return rc;
}

#define AK_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

/* The AK template of §8.2 (tpm2_createak -G rsa|ecc -g hash -s scheme). No noDA. */
static int
ak_template(const char *ek_alg, const char *hash_alg, const char *sign_alg, TPM2B_PUBLIC *p)
{
	TPMT_PUBLIC *a = &p->publicArea;
	TPM2_ALG_ID hash = alg_id(hash_algs, hash_alg), sig = alg_id(sig_algs, sign_alg);
	int ecc = strcmp(ek_alg, "ecc") == 0;

	memset(p, 0, sizeof(*p));
	if (hash == TPM2_ALG_ERROR || hash_size(hash) == 0)
		return kl_fail(KL_PERM, "tpm_hash_alg: unsupported \"%s\"", hash_alg ? hash_alg : "");
	if (ecc ? sig != TPM2_ALG_ECDSA : (sig != TPM2_ALG_RSASSA && sig != TPM2_ALG_RSAPSS))
		return kl_fail(KL_PERM, "tpm_signing_alg: \"%s\" is not usable with an %s AK (%s)",
		    sign_alg ? sign_alg : "", ecc ? "ECC" : "RSA", ecc ? "ecdsa" : "rsassa, rsapss");
	a->nameAlg = hash;
	a->objectAttributes = AK_ATTRS;
	if (!ecc) {
		a->type = TPM2_ALG_RSA;
		a->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		a->parameters.rsaDetail.scheme.scheme = sig;
		a->parameters.rsaDetail.scheme.details.anySig.hashAlg = hash;
		a->parameters.rsaDetail.keyBits = 2048;
	} else {
		a->type = TPM2_ALG_ECC;
		a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		a->parameters.eccDetail.scheme.scheme = sig;
		a->parameters.eccDetail.scheme.details.anySig.hashAlg = hash;
		a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	}
	return KL_OK;
}

int
kl_tpm_ak_create(struct kl_tpm *t, const struct kl_ek *ek, const char *hash_alg,
    const char *sign_alg, unsigned char **pub, size_t *pub_len,
    unsigned char **priv, size_t *priv_len)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION creation_pcrs = { 0 };
	TPM2B_PUBLIC tmpl, *opub = NULL;
	TPM2B_PRIVATE *opriv = NULL;
	TPM2B_CREATION_DATA *cdata = NULL;
	TPM2B_DIGEST *chash = NULL;
	TPMT_TK_CREATION *ticket = NULL;
	unsigned char buf[sizeof(TPM2B_PRIVATE)];
	size_t off = 0;
	ESYS_TR sess;
	TSS2_RC r;
	int rc;

	*pub = *priv = NULL;
	if ((rc = ak_template(ek->alg, hash_alg, sign_alg, &tmpl)) != KL_OK)
		return rc;
	if ((rc = ek_session(t, ek, &sess)) != KL_OK)
		return rc;
	r = Esys_Create(t->esys, ek->handle, sess, NONE, NONE, &sens, &tmpl, &outside,
	    &creation_pcrs, &opriv, &opub, &cdata, &chash, &ticket);
	kl_tpm_flush(t, sess);
	Esys_Free(cdata);
	Esys_Free(chash);
	Esys_Free(ticket);
	if (r != TSS2_RC_SUCCESS) {
		rc = tpm_fail("Esys_Create", r);
		goto out;
	}
	if (opub == NULL || opriv == NULL) {
		rc = bad_output("Esys_Create");
		goto out;
	}
	if ((rc = marshal_public(opub, pub, pub_len)) != KL_OK)
		goto out;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(opriv, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS) {
		rc = bad_output("Tss2_MU_TPM2B_PRIVATE_Marshal");
		goto out;
	}
	rc = dup_bytes(buf, off, priv, priv_len);
out:
	if (rc != KL_OK) {
		free(*pub);
		*pub = NULL;
	}
	Esys_Free(opub);
	Esys_Free(opriv);
	return rc;
}

int
kl_tpm_ak_load(struct kl_tpm *t, const struct kl_ek *ek, const unsigned char *pub,
    size_t pub_len, const unsigned char *priv, size_t priv_len, ESYS_TR *ak)
{
	TPM2B_PUBLIC p;
	TPM2B_PRIVATE s = { 0 };
	size_t off = 0;
	ESYS_TR sess;
	TSS2_RC r;
	int rc;

	*ak = ESYS_TR_NONE;
	if ((rc = unmarshal_public(pub, pub_len, &p)) != KL_OK)
		return rc;
	if (priv == NULL || Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv, priv_len, &off, &s) != TSS2_RC_SUCCESS ||
	    off != priv_len)
		return kl_fail(KL_PERM, "private key: not a TPM2B_PRIVATE");
	if ((rc = ek_session(t, ek, &sess)) != KL_OK)
		return rc;
	r = Esys_Load(t->esys, ek->handle, sess, NONE, NONE, &s, &p, ak);
	kl_tpm_flush(t, sess);
	explicit_bzero(&s, sizeof(s));
	if (r != TSS2_RC_SUCCESS) {
		*ak = ESYS_TR_NONE;
		return tpm_fail("Esys_Load", r);
	}
	return track(t, *ak);
}

/* ---------------------------------------------------------------- activation */

/*
 * The tpm2-tools credential file of §2.4: magic, version, then a TPM2B_ID_OBJECT
 * and a TPM2B_ENCRYPTED_SECRET, which is exactly their marshalled form.
 */
static int
parse_credential(const unsigned char *b, size_t len, TPM2B_ID_OBJECT *cred,
    TPM2B_ENCRYPTED_SECRET *secret)
{
	UINT32 magic = 0, version = 0;
	size_t off = 0;

	memset(cred, 0, sizeof(*cred));
	memset(secret, 0, sizeof(*secret));
	if (Tss2_MU_UINT32_Unmarshal(b, len, &off, &magic) != TSS2_RC_SUCCESS ||
	    Tss2_MU_UINT32_Unmarshal(b, len, &off, &version) != TSS2_RC_SUCCESS)
		return kl_fail(KL_PERM, "credential blob: %zu bytes, too short", len);
	if (magic != 0xBADCC0DEu)
		return kl_fail(KL_PERM, "credential blob: bad magic 0x%08x (want 0xbadcc0de)", magic);
	if (version != 1)
		return kl_fail(KL_PERM, "credential blob: unsupported version %u", version);
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(b, len, &off, cred) != TSS2_RC_SUCCESS)
		return kl_fail(KL_PERM, "credential blob: credential at offset 8 truncated or too large");
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(b, len, &off, secret) != TSS2_RC_SUCCESS)
		return kl_fail(KL_PERM, "credential blob: secret at offset %zu truncated or too large",
		    10 + (size_t)cred->size);
	if (cred->size == 0 || secret->size == 0)
		return kl_fail(KL_PERM, "credential blob: empty %s", cred->size ? "secret" : "credential");
	if (off != len)
		return kl_fail(KL_PERM, "credential blob: trailing data at offset %zu", off);
	return KL_OK;
}

int
kl_tpm_activate(struct kl_tpm *t, const struct kl_ek *ek, ESYS_TR ak,
    const unsigned char *blob, size_t len, unsigned char **secret, size_t *slen)
{
	TPM2B_ID_OBJECT cred;
	TPM2B_ENCRYPTED_SECRET enc;
	TPM2B_DIGEST *info = NULL;
	ESYS_TR sess;
	TSS2_RC r;
	int rc;

	*secret = NULL;
	*slen = 0;
	if ((rc = parse_credential(blob, len, &cred, &enc)) != KL_OK)
		return rc;
	if ((rc = ek_session(t, ek, &sess)) != KL_OK)
		return rc;
	/* AK: password session (userWithAuth, empty); EK: the policy session (§2.5). */
	r = Esys_ActivateCredential(t->esys, ak, ek->handle, ESYS_TR_PASSWORD, sess, NONE,
	    &cred, &enc, &info);
	kl_tpm_flush(t, sess);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_ActivateCredential", r);
	if (info == NULL || info->size > sizeof(info->buffer)) {
		Esys_Free(info);
		return bad_output("Esys_ActivateCredential");
	}
	rc = dup_bytes(info->buffer, info->size, secret, slen);
	explicit_bzero(info, sizeof(*info));
	Esys_Free(info);
	return rc;
}

/* ---------------------------------------------------------------- certify, quote */

static int
set_data(TPM2B_DATA *d, const unsigned char *nonce, size_t len, const char *what)
{
	memset(d, 0, sizeof(*d));
	if (len > sizeof(d->buffer))
		return kl_fail(KL_PERM, "%s: nonce of %zu bytes, more than %zu", what, len, sizeof(d->buffer));
	if (len)
		memcpy(d->buffer, nonce, len);
	d->size = (UINT16)len;
	return KL_OK;
}

int
kl_tpm_certify(struct kl_tpm *t, ESYS_TR ak, const unsigned char *nonce, size_t nonce_len,
    unsigned char **attest, size_t *alen, unsigned char **sig, size_t *slen)
{
	TPMT_SIG_SCHEME null_scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DATA qd;
	TPM2B_ATTEST *info = NULL;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC r;
	int rc;

	*attest = *sig = NULL;
	if ((rc = set_data(&qd, nonce, nonce_len, "certify")) != KL_OK)
		return rc;
	/* The AK certifies itself; inScheme NULL: its own scheme (§4.2). */
	r = Esys_Certify(t->esys, ak, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, NONE,
	    &qd, &null_scheme, &info, &s);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_Certify", r);
	if (info == NULL || s == NULL || info->size == 0 || info->size > sizeof(info->attestationData)) {
		rc = bad_output("Esys_Certify");
		goto out;
	}
	if ((rc = dup_bytes(info->attestationData, info->size, attest, alen)) != KL_OK)
		goto out;
	if ((rc = marshal_signature(s, sig, slen)) != KL_OK) {
		free(*attest);
		*attest = NULL;
	}
out:
	Esys_Free(info);
	Esys_Free(s);
	return rc;
}

/* Sort and check a PCR list into an ascending array and a 3-byte bitmap. */
static int
pcr_list(const int *pcrs, size_t n, int *sorted, unsigned char select[3], const char *what)
{
	size_t k = 0;

	memset(select, 0, 3);
	if (n == 0)
		return kl_fail(KL_PERM, "%s: no PCR selected", what);
	for (size_t i = 0; i < n; i++) {
		if (pcrs[i] < 0 || pcrs[i] >= PCR_MAX)
			return kl_fail(KL_PERM, "%s: PCR %d out of range 0-%d", what, pcrs[i], PCR_MAX - 1);
		if (select[pcrs[i] / 8] & (1u << (pcrs[i] % 8)))
			return kl_fail(KL_PERM, "%s: PCR %d selected twice", what, pcrs[i]);
		select[pcrs[i] / 8] |= (unsigned char)(1u << (pcrs[i] % 8));
	}
	for (int p = 0; p < PCR_MAX; p++)
		if (select[p / 8] & (1u << (p % 8)))
			sorted[k++] = p;
	return KL_OK;
}

static void
selection(TPM2_ALG_ID bank, const unsigned char select[3], TPML_PCR_SELECTION *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = bank;
	sel->pcrSelections[0].sizeofSelect = 3;
	memcpy(sel->pcrSelections[0].pcrSelect, select, 3);
}

/* PCR_Read returns at most 8 values per call: read until every PCR is covered. */
static int
pcr_read(struct kl_tpm *t, TPM2_ALG_ID bank, const unsigned char select[3],
    unsigned char *values, size_t dlen)
{
	unsigned char left[3];
	TPML_PCR_SELECTION in, *out = NULL;
	TPML_DIGEST *digests = NULL;
	UINT32 counter;
	TSS2_RC r;
	int rc = KL_OK;

	memcpy(left, select, 3);
	while (left[0] | left[1] | left[2]) {
		selection(bank, left, &in);
		r = Esys_PCR_Read(t->esys, NONE, NONE, NONE, &in, &counter, &out, &digests);
		if (r != TSS2_RC_SUCCESS)
			return tpm_fail("Esys_PCR_Read", r);
		if (out == NULL || digests == NULL || digests->count > 8) {
			rc = bad_output("Esys_PCR_Read");
			goto out;
		}
		if (digests->count == 0 || out->count != 1 || out->pcrSelections[0].hash != bank) {
			rc = kl_fail(KL_PERM, "Esys_PCR_Read: bank %s lacks a selected PCR",
			    alg_str(hash_algs, bank));
			goto out;
		}
		/* The values come in ascending PCR order of the returned selection. */
		UINT32 used = 0;
		for (int p = 0; p < PCR_MAX && used < digests->count; p++) {
			unsigned char bit = (unsigned char)(1u << (p % 8));

			if (!(out->pcrSelections[0].pcrSelect[p / 8] & bit))
				continue;
			if (!(left[p / 8] & bit) || digests->digests[used].size != dlen) {
				rc = bad_output("Esys_PCR_Read");
				goto out;
			}
			/* Slot of PCR p: how many selected PCRs are below it. */
			size_t slot = 0;
			for (int q = 0; q < p; q++)
				slot += (select[q / 8] >> (q % 8)) & 1;
			memcpy(values + slot * dlen, digests->digests[used].buffer, dlen);
			used++;
			left[p / 8] &= (unsigned char)~bit;
		}
		if (used != digests->count) {
			rc = bad_output("Esys_PCR_Read");
			goto out;
		}
		Esys_Free(out);
		Esys_Free(digests);
		out = NULL;
		digests = NULL;
	}
out:
	Esys_Free(out);
	Esys_Free(digests);
	return rc;
}

int
kl_tpm_pcr_read(struct kl_tpm *t, const char *bank, const int *pcrs, size_t npcrs,
    unsigned char **values, size_t *dlen)
{
	TPM2_ALG_ID b = alg_id(hash_algs, bank);
	int sorted[PCR_MAX] = { 0 };
	unsigned char select[3];
	int rc;

	*values = NULL;
	if (b == TPM2_ALG_ERROR || (*dlen = hash_size(b)) == 0)
		return kl_fail(KL_PERM, "PCR read: unknown bank \"%s\"", bank ? bank : "");
	if ((rc = pcr_list(pcrs, npcrs, sorted, select, "PCR read")) != KL_OK)
		return rc;
	if ((*values = malloc(npcrs * *dlen)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	if ((rc = pcr_read(t, b, select, *values, *dlen)) != KL_OK) {
		free(*values);
		*values = NULL;
	}
	return rc;
}

static void
put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void
put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/*
 * §6.3.3: the little-endian memory image of TPML_PCR_SELECTION (4 + 16 x 8),
 * a u32 block count, then blocks of TPML_DIGEST (4 + 8 x 66). Written byte by
 * byte so that the layout does not depend on this machine's structs.
 */
int
kl_tpm_pcr_blob(const char *bank, const int *pcrs, size_t npcrs,
    const unsigned char *values, size_t dlen, unsigned char **blob, size_t *len)
{
	TPM2_ALG_ID b = alg_id(hash_algs, bank);
	int sorted[PCR_MAX] = { 0 };
	unsigned char select[3], *o;
	size_t nblocks, i;
	int rc;

	*blob = NULL;
	if (b == TPM2_ALG_ERROR || dlen != hash_size(b))
		return kl_fail(KL_PERM, "PCR blob: bad bank \"%s\" or digest size %zu", bank ? bank : "", dlen);
	if ((rc = pcr_list(pcrs, npcrs, sorted, select, "PCR blob")) != KL_OK)
		return rc;
	for (i = 0; i < npcrs; i++)
		if (pcrs[i] != sorted[i])
			return kl_fail(KL_PERM, "PCR blob: PCRs not in ascending order");
	nblocks = (npcrs + 7) / 8;
	*len = 136 + 532 * nblocks;
	if ((o = calloc(1, *len)) == NULL)
		return kl_fail(KL_TEMP, "out of memory");
	put_le32(o, 1);				/* pcrSelections.count */
	put_le16(o + 4, b);			/* pcrSelections[0].hash */
	o[6] = 3;				/* sizeofSelect */
	memcpy(o + 7, select, 3);		/* pcrSelect[0..2]; [3] and padding stay 0 */
	put_le32(o + 132, (uint32_t)nblocks);
	for (i = 0; i < npcrs; i++) {
		unsigned char *blk = o + 136 + 532 * (i / 8);
		unsigned char *slot = blk + 4 + 66 * (i % 8);

		if (i % 8 == 0)
			put_le32(blk, (uint32_t)(npcrs - i < 8 ? npcrs - i : 8));
		put_le16(slot, (uint16_t)dlen);
		memcpy(slot + 2, values + i * dlen, dlen);
	}
	*blob = o;
	return KL_OK;
}

/* The AK's own scheme must be the one asked for (§6.3.1: the Rust agent refuses too). */
static int
check_ak_scheme(struct kl_tpm *t, ESYS_TR ak, TPM2_ALG_ID hash, TPM2_ALG_ID sig)
{
	TPM2B_PUBLIC *pub = NULL;
	TPMT_SIG_SCHEME s = { 0 };
	TSS2_RC r;
	int rc = KL_OK;

	r = Esys_ReadPublic(t->esys, ak, NONE, NONE, NONE, &pub, NULL, NULL);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_ReadPublic", r);
	if (pub == NULL)
		return bad_output("Esys_ReadPublic");
	if (pub->publicArea.type == TPM2_ALG_RSA) {
		s.scheme = pub->publicArea.parameters.rsaDetail.scheme.scheme;
		s.details.any.hashAlg = pub->publicArea.parameters.rsaDetail.scheme.details.anySig.hashAlg;
	} else if (pub->publicArea.type == TPM2_ALG_ECC) {
		s.scheme = pub->publicArea.parameters.eccDetail.scheme.scheme;
		s.details.any.hashAlg = pub->publicArea.parameters.eccDetail.scheme.details.anySig.hashAlg;
	}
	if (s.scheme != sig || s.details.any.hashAlg != hash) {
		const char *hs = alg_str(hash_algs, s.details.any.hashAlg);
		const char *ss = alg_str(sig_algs, s.scheme);

		rc = kl_fail(KL_PERM, "quote: the AK signs with %s/%s, not %s/%s",
		    ss ? ss : "?", hs ? hs : "?", alg_str(sig_algs, sig), alg_str(hash_algs, hash));
	}
	Esys_Free(pub);
	return rc;
}

/* One quote and one read of the same PCRs; *same says whether they agree. */
static int
quote_once(struct kl_tpm *t, ESYS_TR ak, const TPM2B_DATA *qd, const TPMT_SIG_SCHEME *scheme,
    const TPML_PCR_SELECTION *sel, const unsigned char select[3], const int *sorted,
    size_t npcrs, struct kl_quote *out, int *same)
{
	TPM2_ALG_ID bank = sel->pcrSelections[0].hash;
	size_t dlen = hash_size(bank), off = 0;
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *s = NULL;
	TPMS_ATTEST att;
	unsigned char *values = NULL, digest[KL_CRYPTO_MAX_DIGEST];
	TSS2_RC r;
	int rc;

	*same = 0;
	r = Esys_Quote(t->esys, ak, ESYS_TR_PASSWORD, NONE, NONE, qd, scheme, sel, &quoted, &s);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_Quote", r);
	if (quoted == NULL || s == NULL || quoted->size == 0 ||
	    quoted->size > sizeof(quoted->attestationData) ||
	    Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size, &off, &att) != TSS2_RC_SUCCESS ||
	    off != quoted->size || att.magic != TPM2_GENERATED_VALUE || att.type != TPM2_ST_ATTEST_QUOTE) {
		rc = bad_output("Esys_Quote");
		goto out;
	}
	if ((values = malloc(npcrs * dlen)) == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	if ((rc = pcr_read(t, bank, select, values, dlen)) != KL_OK)
		goto out;
	/* pcrDigest = H_sign(values in ascending PCR order) (§6.3.1). */
	if (kl_crypto_digest(alg_str(hash_algs, bank), values, npcrs * dlen, digest) != 0) {
		rc = kl_fail(KL_PERM, "quote: cannot hash the PCR values");
		goto out;
	}
	if (att.attested.quote.pcrDigest.size != dlen ||
	    memcmp(att.attested.quote.pcrDigest.buffer, digest, dlen) != 0) {
		kl_debug("quote: PCRs changed between TPM2_Quote and TPM2_PCR_Read");
		rc = KL_OK;
		goto out;
	}
	if ((rc = dup_bytes(quoted->attestationData, quoted->size, &out->attest, &out->attest_len)) != KL_OK ||
	    (rc = marshal_signature(s, &out->sig, &out->sig_len)) != KL_OK ||
	    (rc = kl_tpm_pcr_blob(alg_str(hash_algs, bank), sorted, npcrs, values, dlen,
		&out->pcrs, &out->pcrs_len)) != KL_OK) {
		kl_tpm_quote_release(out);
		goto out;
	}
	*same = 1;
out:
	free(values);
	Esys_Free(quoted);
	Esys_Free(s);
	return rc;
}

int
kl_tpm_quote(struct kl_tpm *t, ESYS_TR ak, const unsigned char *nonce, size_t nonce_len,
    const char *hash_alg, const char *sign_alg, const int *pcrs, size_t npcrs,
    struct kl_quote *out)
{
	TPM2_ALG_ID hash = alg_id(hash_algs, hash_alg), sig = alg_id(sig_algs, sign_alg);
	TPMT_SIG_SCHEME scheme = { 0 };
	TPML_PCR_SELECTION sel;
	TPM2B_DATA qd;
	unsigned char select[3];
	int sorted[PCR_MAX] = { 0 }, same = 0, rc;

	memset(out, 0, sizeof(*out));
	if (hash == TPM2_ALG_ERROR || hash_size(hash) == 0)
		return kl_fail(KL_PERM, "quote: unsupported hash algorithm \"%s\"", hash_alg ? hash_alg : "");
	if (sig == TPM2_ALG_ERROR)
		return kl_fail(KL_PERM, "quote: unsupported signature scheme \"%s\"", sign_alg ? sign_alg : "");
	if ((rc = set_data(&qd, nonce, nonce_len, "quote")) != KL_OK ||
	    (rc = pcr_list(pcrs, npcrs, sorted, select, "quote")) != KL_OK ||
	    (rc = check_ak_scheme(t, ak, hash, sig)) != KL_OK)
		return rc;
	/* One bank only, that of the signing hash (§6.3.3). */
	selection(hash, select, &sel);
	scheme.scheme = sig;
	scheme.details.any.hashAlg = hash;
	for (int i = 0; i < QUOTE_TRIES && !same; i++)
		if ((rc = quote_once(t, ak, &qd, &scheme, &sel, select, sorted, npcrs, out, &same)) != KL_OK)
			return rc;
	if (!same)
		return kl_fail(KL_TEMP, "quote: PCRs kept changing during %d tries", QUOTE_TRIES);
	return KL_OK;
}

void
kl_tpm_quote_release(struct kl_quote *q)
{
	free(q->attest);
	free(q->sig);
	free(q->pcrs);
	memset(q, 0, sizeof(*q));
}

/* ---------------------------------------------------------------- capabilities */

int
kl_tpm_caps(struct kl_tpm *t, json_t **out)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_YES;
	TPML_PCR_SELECTION banks;
	json_t *hashes = json_array(), *schemes = json_array(), *subjects = json_object();
	UINT32 next = TPM2_ALG_FIRST;
	int have_sig[sizeof(sig_algs) / sizeof(sig_algs[0])] = { 0 };
	int hash_ok[sizeof(hash_algs) / sizeof(hash_algs[0])] = { 0 };
	TSS2_RC r;
	int rc = KL_OK;

	*out = NULL;
	if (hashes == NULL || schemes == NULL || subjects == NULL) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	/* Which hash and signing algorithms the TPM implements. */
	while (more) {
		r = Esys_GetCapability(t->esys, NONE, NONE, NONE, TPM2_CAP_ALGS, next,
		    TPM2_MAX_CAP_ALGS, &more, &cap);
		if (r != TSS2_RC_SUCCESS) {
			rc = tpm_fail("Esys_GetCapability", r);
			goto out;
		}
		if (cap == NULL || cap->data.algorithms.count > TPM2_MAX_CAP_ALGS) {
			rc = bad_output("Esys_GetCapability");
			goto out;
		}
		if (cap->data.algorithms.count == 0)
			more = TPM2_NO;
		for (UINT32 i = 0; i < cap->data.algorithms.count; i++) {
			const TPMS_ALG_PROPERTY *a = &cap->data.algorithms.algProperties[i];

			for (size_t k = 0; sig_algs[k].name; k++)
				if (sig_algs[k].id == a->alg && (a->algProperties & TPMA_ALGORITHM_SIGNING) &&
				    (a->algProperties & TPMA_ALGORITHM_ASYMMETRIC))
					have_sig[k] = 1;
			for (size_t k = 0; hash_algs[k].name; k++)
				if (hash_algs[k].id == a->alg && (a->algProperties & TPMA_ALGORITHM_HASH))
					hash_ok[k] = 1;
			next = (UINT32)a->alg + 1;
		}
		Esys_Free(cap);
		cap = NULL;
	}
	for (size_t k = 0; sig_algs[k].name; k++)
		if (have_sig[k] && json_array_append_new(schemes, json_string(sig_algs[k].name)) != 0)
			rc = KL_TEMP;

	/* Which banks are allocated, with which PCRs. */
	r = Esys_GetCapability(t->esys, NONE, NONE, NONE, TPM2_CAP_PCRS, 0, 1, &more, &cap);
	if (r != TSS2_RC_SUCCESS) {
		rc = tpm_fail("Esys_GetCapability", r);
		goto out;
	}
	if (cap == NULL || cap->data.assignedPCR.count > TPM2_NUM_PCR_BANKS) {
		rc = bad_output("Esys_GetCapability");
		goto out;
	}
	banks = cap->data.assignedPCR;
	for (UINT32 i = 0; i < banks.count; i++) {
		const TPMS_PCR_SELECTION *b = &banks.pcrSelections[i];
		const char *name = NULL;
		json_t *list;

		for (size_t k = 0; hash_algs[k].name; k++)
			if (hash_algs[k].id == b->hash && hash_ok[k])
				name = hash_algs[k].name;
		if (name == NULL || (list = json_array()) == NULL)
			continue;
		for (int p = 0; p < PCR_MAX && p / 8 < b->sizeofSelect; p++)
			if (b->pcrSelect[p / 8] & (1u << (p % 8)))
				json_array_append_new(list, json_integer(p));
		if (json_array_size(list) == 0) {
			json_decref(list);
			continue;
		}
		json_array_append_new(hashes, json_string(name));
		json_object_set_new(subjects, name, list);
	}
	if (rc != KL_OK) {
		rc = kl_fail(KL_TEMP, "out of memory");
		goto out;
	}
	*out = json_pack("{s:O,s:O,s:O}", "hash_algorithms", hashes, "signature_schemes", schemes,
	    "available_subjects", subjects);
	if (*out == NULL)
		rc = kl_fail(KL_TEMP, "out of memory");
out:
	Esys_Free(cap);
	json_decref(hashes);
	json_decref(schemes);
	json_decref(subjects);
	return rc;
}

/* ---------------------------------------------------------------- saved contexts */

int
kl_tpm_context_save(struct kl_tpm *t, ESYS_TR obj, unsigned char **blob, size_t *len)
{
	TPMS_CONTEXT *ctx = NULL;
	unsigned char buf[sizeof(TPMS_CONTEXT)];
	size_t off = 0;
	TSS2_RC r;
	int rc;

	*blob = NULL;
	*len = 0;
	r = Esys_ContextSave(t->esys, obj, &ctx);
	if (r != TSS2_RC_SUCCESS)
		return tpm_fail("Esys_ContextSave", r);
	if (ctx == NULL)
		return bad_output("Esys_ContextSave");
	if (Tss2_MU_TPMS_CONTEXT_Marshal(ctx, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		rc = bad_output("Tss2_MU_TPMS_CONTEXT_Marshal");
	else
		rc = dup_bytes(buf, off, blob, len);
	Esys_Free(ctx);
	return rc;
}

int
kl_tpm_context_load(struct kl_tpm *t, const unsigned char *blob, size_t len,
    const unsigned char *pub, size_t pub_len, ESYS_TR *obj)
{
	TPMS_CONTEXT ctx;
	TPM2B_NAME *got = NULL;
	unsigned char *want = NULL;
	size_t off = 0, want_len = 0;
	TSS2_RC r;
	int rc;

	*obj = ESYS_TR_NONE;
	memset(&ctx, 0, sizeof(ctx));
	if (Tss2_MU_TPMS_CONTEXT_Unmarshal(blob, len, &off, &ctx) != TSS2_RC_SUCCESS || off != len)
		return KL_REFUSED;
	r = Esys_ContextLoad(t->esys, &ctx, obj);
	if (r != TSS2_RC_SUCCESS) {
		*obj = ESYS_TR_NONE;
		/* Unreachable or busy is the caller's error; anything else: stale. */
		if (rc_class(r) == KL_TEMP)
			return tpm_fail("Esys_ContextLoad", r);
		kl_info("saved AK context not taken by the TPM (%s): re-creating it",
		    Tss2_RC_Decode(r));
		return KL_REFUSED;
	}
	if ((rc = track(t, *obj)) != KL_OK) {
		*obj = ESYS_TR_NONE;
		return rc;
	}
	/* The TPM vouches for the blob; that it is this key, the name says. */
	if ((rc = kl_tpm_name(pub, pub_len, &want, &want_len)) != KL_OK)
		return rc;
	r = Esys_TR_GetName(t->esys, *obj, &got);
	if (r != TSS2_RC_SUCCESS || got == NULL || got->size != want_len ||
	    memcmp(got->name, want, want_len) != 0) {
		kl_info("saved AK context holds another key: re-creating it");
		kl_tpm_flush(t, *obj);
		*obj = ESYS_TR_NONE;
		rc = KL_REFUSED;
	}
	Esys_Free(got);
	free(want);
	return rc;
}

#ifndef KL_TSS2_VERSION
#define KL_TSS2_VERSION "unknown"
#endif

const char *
kl_tpm_version(void)
{
	return "tss2-esys " KL_TSS2_VERSION " (build time)";
}
