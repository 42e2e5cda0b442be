/*
 * kl_rc.h - the exit codes of every kl program, and the return values of lib/.
 *
 * A number never changes meaning. kl-agent decides only on these classes
 * (docs/contract.md); the same table is in README.md.
 */
#ifndef KL_RC_H
#define KL_RC_H

enum kl_rc {
	KL_OK = 0,		/* done; stdout holds the result */
	KL_REFUSED = 1,		/* the peer said no (403, 404, 422, PoP evaluation fail) */
	KL_REAUTH = 2,		/* not authenticated (401, no or expired token): run kl-session */
	KL_RENEGOTIATE = 3,	/* challenge expired or superseded: run kl-negotiate again */
	KL_PERM = 100,		/* permanent: usage, config, bad input, protocol violation */
	KL_TEMP = 111,		/* temporary: network, timeout, 408/429/5xx, TPM busy */
};

/* One word for logs and the status file: "ok", "refused", ... */
const char *kl_rc_name(int rc);

#endif
