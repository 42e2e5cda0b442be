/*
 * kl_crypto_tls.c - TLS session resumption across processes (kl_crypto.h),
 * on the SSL_CTX libcurl hands to kl_http. The only file that calls libssl.
 *
 * libcurl 7.88 keeps TLS sessions in its own process only, so the session is
 * taken out with OpenSSL's "new session" callback (TLS 1.3 tickets arrive
 * after the handshake, while the reply is read: the callback runs then) and
 * set on the next process's connection when its handshake starts (the info
 * callback at SSL_CB_HANDSHAKE_START runs before the ClientHello is built).
 * curl sets its own session callback and the client cache mode before it
 * calls kl_http's CURLOPT_SSL_CTX_FUNCTION, so this one replaces it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "kl_crypto.h"
#include "kl_util.h"
#include "kl_banned.h"

static int ex_index = -1;

static struct kl_crypto_tls_resume *
resume_of(const SSL *ssl)
{
	return ex_index < 0 ? NULL : SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
}

/* The saved session onto the connection, before the ClientHello is built. */
static void
offer(SSL *ssl, struct kl_crypto_tls_resume *r)
{
	const unsigned char *p = r->offer;
	SSL_SESSION *s;

	r->offered = 1;
	if (r->offer_len > LONG_MAX ||
	    (s = d2i_SSL_SESSION(NULL, &p, (long)r->offer_len)) == NULL) {
		r->bad_offer = 1;
		return;
	}
	if (p != r->offer + r->offer_len || SSL_set_session(ssl, s) != 1)
		r->bad_offer = 1;
	SSL_SESSION_free(s);
}

static void
on_info(const SSL *ssl, int where, int ret)
{
	struct kl_crypto_tls_resume *r = resume_of(ssl);

	(void)ret;
	if (r == NULL)
		return;
	if ((where & SSL_CB_HANDSHAKE_START) && !r->offered && r->offer != NULL)
		offer((SSL *)ssl, r);	/* the callback's const is OpenSSL's, not the SSL's */
	if ((where & SSL_CB_HANDSHAKE_DONE) && !r->done) {
		r->done = 1;
		r->resumed = SSL_session_reused(ssl) == 1;
	}
}

/* A session the server gave (one per TLS 1.3 ticket): the first is kept as DER. */
static int
on_new_session(SSL *ssl, SSL_SESSION *s)
{
	struct kl_crypto_tls_resume *r = resume_of(ssl);
	unsigned char *der, *p;
	int n;

	if (r == NULL || r->got != NULL || !SSL_SESSION_is_resumable(s))
		return 0;
	if ((n = i2d_SSL_SESSION(s, NULL)) <= 0 || (der = malloc((size_t)n)) == NULL)
		return 0;
	p = der;
	if (i2d_SSL_SESSION(s, &p) != n) {
		kl_secret_free(der, (size_t)n);
		return 0;
	}
	r->got = der;
	r->got_len = (size_t)n;
	return 0;	/* OpenSSL keeps no reference for us */
}

int
kl_crypto_tls_resume_attach(void *ssl_ctx, struct kl_crypto_tls_resume *r)
{
	SSL_CTX *ctx = ssl_ctx;

	if (ex_index < 0 &&
	    (ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
		return -1;
	if (SSL_CTX_set_ex_data(ctx, ex_index, r) != 1)
		return -1;
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	SSL_CTX_set_info_callback(ctx, on_info);
	return 0;
}

void
kl_crypto_tls_resume_release(struct kl_crypto_tls_resume *r)
{
	kl_secret_free(r->got, r->got_len);
	r->got = NULL;
	r->got_len = 0;
}
