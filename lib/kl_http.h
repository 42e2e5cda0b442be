/*
 * kl_http.h - HTTP(S) requests over libcurl, one function for every call kl makes.
 *
 * TLS: only the configured CA file is trusted (never the system store), the
 * host name is verified, TLS >= 1.2, no client certificate. insecure turns
 * verification off and the caller must have warned about it. A URL with
 * "http://" is refused when require_tls is set: no request of any retry ever
 * goes over plain HTTP then.
 */
#ifndef KL_HTTP_H
#define KL_HTTP_H

#include <stddef.h>
#include <time.h>

#define KL_HTTP_MAX_RESPONSE (16u << 20)	/* a 202 echoes the evidence back */

struct kl_http_opts {
	const char *ca_file;		/* PEM; NULL: plain HTTP only */
	int insecure;			/* skip peer and host verification */
	int require_tls;		/* refuse http:// URLs */
	long connect_timeout_ms;	/* 0: 5000 */
	long timeout_ms;		/* 0: 5000 (upstream --timeout) */
	size_t max_response;		/* 0: KL_HTTP_MAX_RESPONSE */
};

struct kl_http_req {
	const char *method;		/* "GET", "POST", "PUT", "PATCH" */
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
	char request_id[40];		/* the X-Request-ID sent (for logs) */
};

/*
 * Send one request and read the whole reply. KL_OK means a status line came
 * back (any status). Network errors, timeouts and resets give KL_TEMP;
 * TLS verification failures, a refused http:// URL, a reply larger than
 * max_response or a malformed reply give KL_PERM. One line on stderr on failure,
 * naming method, URL path and the cause. resp is always safe to release.
 */
int kl_http_do(const struct kl_http_opts *o, const struct kl_http_req *rq, struct kl_http_resp *resp);
void kl_http_resp_release(struct kl_http_resp *resp);

/*
 * Retry-After value: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 850,
 * asctime) relative to now. Returns seconds >= 0, or -1 if invalid.
 */
long kl_http_parse_retry_after(const char *value, time_t now);

/*
 * Class of an HTTP status for a kl exit code: 2xx KL_OK, 401 KL_REAUTH,
 * 408/429/5xx KL_TEMP, other 4xx KL_REFUSED, anything else KL_PERM.
 */
int kl_http_status_class(long status);

/*
 * A one-line, sanitized description of an error reply for logs:
 * "HTTP 422 invalid_resource_data: Attribute 'evidence' ..." taken from
 * JSON:API errors[0] (code/title, detail), the v2 envelope "status", or
 * the first bytes of a non-JSON body.
 */
void kl_http_describe(const struct kl_http_resp *resp, char *out, size_t cap);

/* Call once per process before any request (curl_global_init). */
int kl_http_global_init(void);
void kl_http_global_cleanup(void);

#endif
