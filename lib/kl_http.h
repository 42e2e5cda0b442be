/*
 * kl_http.h - HTTP(S) requests over libcurl, one function for every call kl makes.
 *
 * TLS: only the configured CA file is trusted (never the system store), the
 * host name is verified, TLS >= 1.2, no client certificate. insecure turns
 * verification off and the caller must have warned about it. A URL with
 * "http://" is refused when require_tls is set: no request of any retry ever
 * goes over plain HTTP then. Redirects are never followed. Proxies from the
 * environment are used as curl uses them (https_proxy/HTTPS_PROXY,
 * http_proxy, all_proxy, no_proxy/NO_PROXY): an https:// request goes through
 * CONNECT, so TLS and its verification stay end to end. no_env_proxy (agent.conf
 * proxy_from_env = false) ignores them and connects directly.
 *
 * At info level (kl_verbose >= 1, --verbose) each request logs one info line: method, URL,
 * status, size and time. At debug level (kl_verbose >= 2) request and response header
 * lines are logged as debug lines, the values of Authorization,
 * Proxy-Authorization, Cookie and Set-Cookie replaced by "<redacted>". Bodies
 * are never logged: a reply can hold a session token.
 */
#ifndef KL_HTTP_H
#define KL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define KL_HTTP_MAX_RESPONSE (16u << 20)	/* a 202 echoes the evidence back */
#define KL_HTTP_RETRY_AFTER_MAX 86400L	/* a day: longer is a broken peer */

struct kl_http_opts {
	const char *ca_file;		/* PEM; NULL: plain HTTP only */
	int insecure;			/* skip peer and host verification */
	int no_verify_host;		/* skip only the host name check (chain still verified) */
	int require_tls;		/* refuse http:// URLs */
	int no_env_proxy;		/* ignore *_proxy variables: connect directly */
	long connect_timeout_ms;	/* 0: 5000 */
	long timeout_ms;		/* 0: 5000 (upstream --timeout) */
	size_t max_response;		/* 0: KL_HTTP_MAX_RESPONSE */
};

struct kl_http_req {
	const char *method;		/* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *url;
	const char *content_type;	/* NULL: none; also used for Accept */
	const char *bearer;		/* NULL: no Authorization header. A secret */
	const char *body;		/* NULL: no body */
	size_t body_len;
};

struct kl_http_resp {
	long status;			/* HTTP status code */
	char *body;			/* NUL-terminated, may hold NULs; never NULL after KL_OK */
	size_t len;
	char *location;			/* Location header or NULL */
	char *content_type;		/* or NULL */
	long retry_after;		/* seconds from Retry-After, -1 when absent or invalid */
	time_t date;			/* the Date header (clock skew), 0 when absent or invalid */
	char request_id[40];		/* the X-Request-ID sent (for logs); the
					   verifier echoes it as X-Request-Id */
};

/*
 * Send one request and read the whole reply. resp is overwritten first (release
 * an earlier reply before reusing it) and is always safe to release after.
 * Headers sent: User-Agent "kl/0.1", X-Request-ID (random, 12 word characters,
 * kept in resp->request_id), Content-Type and Accept when rq->content_type,
 * Authorization: Bearer when rq->bearer.
 *
 * KL_OK means a status line came back (any status; classify it with
 * kl_http_status_class). Otherwise one error line "<METHOD> <URL>: <cause>":
 *   KL_PERM  before sending: a URL that is not http(s)://, http:// with
 *            require_tls, https:// without ca_file (and not insecure), an
 *            unsupported method, a content type over 200 bytes, a bearer
 *            token or content type holding control characters.
 *            from curl: TLS verification failed (CURLE_PEER_FAILED_VERIFICATION,
 *            which covers an unknown CA and a host name mismatch), unreadable CA
 *            file (CURLE_SSL_CACERT_BADFILE), a TLS handshake the peer refused
 *            (CURLE_SSL_CONNECT_ERROR, unless the connection broke during it:
 *            kl_http_tls_fail_class),
 *            other TLS setup errors, a reply that is not HTTP
 *            (CURLE_WEIRD_SERVER_REPLY, CURLE_UNSUPPORTED_PROTOCOL), a bad URL,
 *            a bad content encoding, a reply larger than max_response
 *            ("reply larger than N bytes").
 *   KL_TEMP  everything else: DNS failure, connection refused, timeouts
 *            (CURLE_OPERATION_TIMEDOUT), a reply cut short (CURLE_PARTIAL_FILE),
 *            no reply (CURLE_GOT_NOTHING), send or receive errors, a connection
 *            that broke during the TLS handshake, out of memory.
 */
/*
 * The configuration's TLS relaxations onto o, with one warning naming what
 * is off for url: insecure (--insecure) or accept_invalid_certs turn off all
 * verification; accept_invalid_hostnames alone only the host name check, as
 * upstream does (the chain is still verified against the CA).
 */
void kl_http_tls_relax(struct kl_http_opts *o, const char *url, int insecure,
    int accept_invalid_certs, int accept_invalid_hostnames);

int kl_http_do(const struct kl_http_opts *o, const struct kl_http_req *rq, struct kl_http_resp *resp);
void kl_http_resp_release(struct kl_http_resp *resp);

/*
 * Dry-run mode (--dry-run of kl-register, kl-session, kl-negotiate and
 * kl-submit): kl_http_do checks and builds the first request as usual, then
 * opens no connection. It keeps the request as the program's answer
 * (kl_prog_answer, kl_prog.h), a JSON document
 *   {"dry_run":true,"method":"POST","url":"...","headers":{"User-Agent":...,
 *    "Content-Type":...,"Accept":...,"Authorization":"Bearer <redacted>"},
 *    "body":<the JSON body, the text of another body, or null>}
 * and returns KL_PERM without a log line, so the program unwinds as after any
 * failure (its TPM objects flushed) and kl_prog_finish prints the request and
 * exits 0. The token is never in it.
 */
extern bool kl_http_dry_run;
#define KL_HTTP_DRY_RUN_OPT KL_CLI_FLAG("dry-run", &kl_http_dry_run, \
	"print the request this step would send (token redacted) as JSON; open no connection")

/*
 * Retry-After value (RFC 9110 10.2.3): delta-seconds, or an HTTP-date
 * (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94
 * 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994") relative to now.
 * Surrounding blanks are allowed. Returns seconds >= 0, capped at
 * KL_HTTP_RETRY_AFTER_MAX (a date in the past gives 0), or -1 if invalid.
 * Locale-independent.
 */
long kl_http_parse_retry_after(const char *value, time_t now);

/*
 * Class of a failed TLS handshake (CURLE_SSL_CONNECT_ERROR) from curl's error
 * text: KL_TEMP when the connection broke during it (SSL_ERROR_SYSCALL, a
 * reset, an unexpected EOF, a broken pipe, a timeout, or a socket call that
 * failed with an errno -- curl keeps the first error of a transfer, so a
 * server that closed at once leaves "getpeername() failed with errno 107"),
 * else KL_PERM: the peer refused (an alert, a reply that is not TLS).
 */
int kl_http_tls_fail_class(const char *why);

/*
 * Class of an HTTP status for a kl exit code: 2xx KL_OK, 401 KL_REAUTH,
 * 408/429/5xx KL_TEMP, other 4xx KL_REFUSED, anything else KL_PERM.
 */
int kl_http_status_class(long status);

/*
 * A one-line, sanitized description of an error reply for logs:
 * "HTTP 422 invalid_resource_data: Attribute 'evidence' ..." taken from
 * JSON:API errors[0] (code/title, detail), the v2 envelope "status", or
 * the first 200 bytes of a non-JSON body; "HTTP 500 (empty body)". Other JSON
 * is not shown ("(JSON reply of N bytes)"): it may hold a token. out gets at
 * most cap-1 characters and a NUL.
 */
void kl_http_describe(const struct kl_http_resp *resp, char *out, size_t cap);

/*
 * curl_global_init, once per process (kl_http_do calls it; the cleanup runs
 * at exit). KL_OK or KL_PERM.
 */
int kl_http_global_init(void);

/* "libcurl 7.88.1 (OpenSSL/3.0.x)": the run-time library's version, for --version. */
const char *kl_http_version(void);

#endif
