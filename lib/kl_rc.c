/* kl_rc.c - see kl_rc.h. */
#include "kl_rc.h"
#include "kl_banned.h"

const char *
kl_rc_name(int rc)
{
	switch (rc) {
	case KL_OK: return "ok";
	case KL_REFUSED: return "refused";
	case KL_REAUTH: return "reauth";
	case KL_RENEGOTIATE: return "renegotiate";
	case KL_PERM: return "permanent";
	case KL_TEMP: return "temporary";
	default: return "unknown";
	}
}
