/*
 * kl_http.c - see kl_http.h.
 *
 * One curl easy handle per request: kl sends a handful of requests per cycle,
 * so reusing connections buys little, and a fresh handle carries no state
 * (cookies, TLS sessions, auth) from one call to the next.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kl_crypto.h"
#include "kl_http.h"
#include "kl_log.h"
#include "kl_prog.h"
#include "kl_rc.h"
#include "kl_util.h"
#include "kl_banned.h"

#define DEFAULT_TIMEOUT_MS 5000L
#define DESCRIBE_RAW_MAX 200	/* bytes of a non-JSON error body shown */
#define CONTENT_TYPE_MAX 200

/* What the curl callbacks fill in while one request runs. */
struct xfer {
	struct kl_http_resp *resp;
	size_t cap;		/* bytes allocated for resp->body */
	size_t max;		/* the reply limit */
	int too_big;		/* the write callback stopped the transfer: too long */
	int nomem;		/* ... or out of memory */
};

/* ---- callbacks ---- */

/*
 * Append a piece of the body. The buffer grows by doubling; the old one is
 * wiped before it is freed, as a reply can hold a session token.
 */
static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct kl_http_resp *r = x->resp;
	size_t n = size * nmemb;	/* size is always 1 (CURLOPT_WRITEFUNCTION) */
	size_t need, cap;
	char *p;

	if (n > x->max - r->len) {
		x->too_big = 1;
		return 0;		/* curl stops with CURLE_WRITE_ERROR */
	}
	need = r->len + n + 1;
	if (need > x->cap) {
		cap = x->cap ? x->cap : 4096;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		if ((p = malloc(cap)) == NULL) {
			x->nomem = 1;
			return 0;
		}
		if (r->body != NULL)
			memcpy(p, r->body, r->len);
		kl_secret_free(r->body, r->len);
		r->body = p;
		x->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Does this header line carry a credential? Its value is never logged. */
static int
secret_header(const char *line, size_t len)
{
	static const char *const names[] = {
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	};
	const char *colon = memchr(line, ':', len);

	if (colon == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == (size_t)(colon - line) &&
		    strncasecmp(line, names[i], (size_t)(colon - line)) == 0)
			return 1;
	return 0;
}

/* Log a block of header (or info) lines, one debug line each, sanitized. */
static void
debug_lines(const char *mark, const char *data, size_t size)
{
	const char *p = data, *end = data + size;
	char line[512];

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = (size_t)((nl ? nl : end) - p);

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0 && secret_header(p, len)) {
			size_t name = (size_t)((const char *)memchr(p, ':', len) - p) + 1;

			kl_log_sanitize(line, sizeof(line), p, name);
			kl_debug("%s %s <redacted>", mark, line);
		} else if (len > 0) {
			kl_log_sanitize(line, sizeof(line), p, len);
			kl_debug("%s %s", mark, line);
		}
		p = nl ? nl + 1 : end;
	}
}

/* debug level: headers both ways and curl's own notes; never bodies or TLS records. */
static int
on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	(void)h;
	(void)arg;
	switch (type) {
	case CURLINFO_TEXT:
		debug_lines("*", data, size);
		break;
	case CURLINFO_HEADER_OUT:
		debug_lines(">", data, size);
		break;
	case CURLINFO_HEADER_IN:
		debug_lines("<", data, size);
		break;
	default:
		break;
	}
	return 0;
}

/* ---- helpers ---- */

static int
has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* A header value must not smuggle in a line break or other control bytes. */
static int
header_value_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* 12 random hex digits: word characters, so the verifier echoes them unchanged. */
static int
make_request_id(char out[40])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[6];

	if (kl_crypto_random(r, sizeof(r)) != 0)
		return -1;
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * sizeof(r)] = '\0';
	return 0;
}

/* kl_fail() with "<METHOD> <URL>: " in front; both sanitized. */
__attribute__((format(printf, 3, 4)))
static int
req_fail(int rc, const struct kl_http_req *rq, const char *fmt, ...)
{
	char method[16], url[512], cause[768];
	va_list ap;

	kl_log_sanitize(method, sizeof(method), rq->method, strlen(rq->method));
	kl_log_sanitize(url, sizeof(url), rq->url, strlen(rq->url));
	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	return kl_fail(rc, "%s %s: %s", method, url, cause);
}

/* Checks that need no network. Returns KL_OK or KL_PERM (logged). */
static int
check_request(const struct kl_http_opts *o, const struct kl_http_req *rq)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE" };
	size_t i;
	int tls;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(rq->method, methods[i]) == 0)
			break;
	if (i == sizeof(methods) / sizeof(methods[0]))
		return req_fail(KL_PERM, rq, "unsupported method");
	if (has_prefix_ci(rq->url, "https://"))
		tls = 1;
	else if (has_prefix_ci(rq->url, "http://"))
		tls = 0;
	else
		return req_fail(KL_PERM, rq, "not an http:// or https:// URL");
	if (!tls && o->require_tls)
		return req_fail(KL_PERM, rq, "plain HTTP refused: TLS is required");
	if (tls && o->ca_file == NULL && !o->insecure)
		return req_fail(KL_PERM, rq, "no CA file to verify the server with");
	if (rq->content_type && (strlen(rq->content_type) > CONTENT_TYPE_MAX ||
	    !header_value_ok(rq->content_type)))
		return req_fail(KL_PERM, rq, "content type too long or holds a control character");
	if (rq->bearer && (rq->bearer[0] == '\0' || !header_value_ok(rq->bearer)))
		return req_fail(KL_PERM, rq, "bearer token is empty or holds a control character");
	return KL_OK;
}

/* Free the header list, wiping the copy of the token curl_slist_append made. */
static void
free_headers(struct curl_slist *l)
{
	for (struct curl_slist *n = l; n; n = n->next)
		if (has_prefix_ci(n->data, "Authorization:"))
			explicit_bzero(n->data, strlen(n->data));
	curl_slist_free_all(l);
}

/* Append one header line to *l. Returns 0, or -1 when out of memory. */
static int
append(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (n == NULL)
		return -1;
	*l = n;
	return 0;
}

/*
 * The request headers. Content-Type goes only with a body (upstream's
 * registrar answers 400 to a GET that names one); "Content-Type:" with no
 * value removes curl's default application/x-www-form-urlencoded. Accept
 * names the same type. "Expect:" stops curl from waiting for 100-continue
 * before a large body. Returns NULL when out of memory.
 */
static struct curl_slist *
make_headers(const struct kl_http_req *rq, const char *request_id)
{
	static const char auth[] = "Authorization: Bearer ";
	struct curl_slist *l = NULL;
	const char *ct = rq->content_type ? rq->content_type : "";
	char line[CONTENT_TYPE_MAX + 32], *a = NULL;
	size_t alen = 0;
	int err = 0;

	snprintf(line, sizeof(line), "X-Request-ID: %s", request_id);
	err |= append(&l, line);
	snprintf(line, sizeof(line), "Content-Type:%s%s", *ct && rq->body ? " " : "",
	    rq->body ? ct : "");
	err |= append(&l, line);
	if (*ct) {
		snprintf(line, sizeof(line), "Accept: %s", ct);
		err |= append(&l, line);
	}
	err |= append(&l, "Expect:");
	if (rq->bearer) {
		alen = sizeof(auth) + strlen(rq->bearer);
		if ((a = malloc(alen)) == NULL)
			err = -1;
		else {
			snprintf(a, alen, "%s%s", auth, rq->bearer);
			err |= append(&l, a);
		}
	}
	kl_secret_free(a, alen);
	if (err) {
		free_headers(l);
		return NULL;
	}
	return l;
}

/* Stop at the first option curl refuses: a TLS option ignored would be a hole. */
#define TRY(call) do { CURLcode c_ = (call); if (c_ != CURLE_OK) return c_; } while (0)

static CURLcode
setup(CURL *h, const struct kl_http_opts *o, const struct kl_http_req *rq,
      struct curl_slist *hdrs, struct xfer *x, char *errbuf)
{
	const char *protos = o->require_tls ? "https" : "http,https";
	long cto = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
	long to = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	/* POST, PUT and PATCH always send a body, if empty: Content-Length: 0. */
	int with_body = rq->body != NULL ||
	    (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "DELETE") != 0);

	TRY(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf));
	TRY(curl_easy_setopt(h, CURLOPT_URL, rq->url));
	TRY(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protos));
	TRY(curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, protos));
	TRY(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));
	/* Without CURLOPT_PROXY curl honours https_proxy/no_proxy (CONNECT: TLS stays end to end). */
	if (o->no_env_proxy)
		TRY(curl_easy_setopt(h, CURLOPT_PROXY, ""));
	TRY(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
	TRY(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cto));
	TRY(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to));
	/* Keylime's servers (tornado) speak HTTP/1.1 only; no ALPN surprises. */
	TRY(curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1));
	TRY(curl_easy_setopt(h, CURLOPT_USERAGENT, "kl/0.1"));
	TRY(curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs));
	TRY(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body));
	TRY(curl_easy_setopt(h, CURLOPT_WRITEDATA, x));
	/* Refuses at once a reply whose Content-Length is over the limit. */
	if ((uint64_t)x->max <= INT64_MAX)	/* curl_off_t is 64 bits */
		TRY(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max));

	/*
	 * TLS: CAINFO replaces the default bundle (OpenSSL backend) and CAPATH
	 * NULL drops the default directory, so the CA file is the only trust.
	 */
	TRY(curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2));
	TRY(curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file));
	TRY(curl_easy_setopt(h, CURLOPT_CAPATH, NULL));
	TRY(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L));
	TRY(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST,
	    o->insecure || o->no_verify_host ? 0L : 2L));

	if (with_body) {
		TRY(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(rq->body ? rq->body_len : 0)));
		TRY(curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : ""));
	}
	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0)
		TRY(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method));

	if (kl_verbose >= 2) {
		TRY(curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug));
		TRY(curl_easy_setopt(h, CURLOPT_VERBOSE, 1L));
	}
	return CURLE_OK;
}

#undef TRY

int
kl_http_tls_fail_class(const char *why)
{
	static const char *const broke[] = {
		"SSL_ERROR_SYSCALL", "reset by peer", "unexpected eof", "Broken pipe",
		"timed out", "timeout", "errno ",
	};

	for (size_t i = 0; i < sizeof(broke) / sizeof(broke[0]); i++)
		if (strstr(why, broke[i]) != NULL)
			return KL_TEMP;
	return KL_PERM;
}

/* Map a failed transfer to KL_PERM or KL_TEMP (table in kl_http.h) and log it. */
static int
transfer_fail(CURLcode cc, const struct xfer *x, const char *errbuf,
    const struct kl_http_opts *o, const struct kl_http_req *rq)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
	const char *ca = o->ca_file ? o->ca_file : "none";

	switch (cc) {
	case CURLE_WRITE_ERROR:
		if (x->too_big)
			return req_fail(KL_PERM, rq, "reply larger than %zu bytes", x->max);
		if (x->nomem)
			return req_fail(KL_TEMP, rq, "out of memory");
		break;
	case CURLE_FILESIZE_EXCEEDED:
		return req_fail(KL_PERM, rq, "reply larger than %zu bytes", x->max);
	case CURLE_PEER_FAILED_VERIFICATION:
		if (strncmp(why, "SSL certificate problem: ", 25) == 0)
			why += 25;
		else if (strncmp(why, "SSL: ", 5) == 0)
			why += 5;
		return req_fail(KL_PERM, rq, "TLS: certificate verify failed: %s (CA %s)", why, ca);
	case CURLE_SSL_CACERT_BADFILE:
		return req_fail(KL_PERM, rq, "TLS: cannot load CA file %s", ca);
	case CURLE_SSL_CONNECT_ERROR:
		return req_fail(kl_http_tls_fail_class(why), rq,
		    "TLS handshake failed: %s", why);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return req_fail(KL_PERM, rq, "TLS: %s", why);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return req_fail(KL_PERM, rq, "%s", why);
	default:
		break;
	}
	return req_fail(KL_TEMP, rq, "%s", why);
}

/* Copy a header of the final response into *out (NULL when absent). 0 or -1 (memory). */
static int
reply_header(CURL *h, const char *name, char **out)
{
	struct curl_header *hh;

	*out = NULL;
	if (curl_easy_header(h, name, 0, CURLH_HEADER, -1, &hh) != CURLHE_OK)
		return 0;
	return (*out = strdup(hh->value)) != NULL ? 0 : -1;
}

/* ---- dry run ---- */

bool kl_http_dry_run;

/* The request's body for the dry-run document: JSON as JSON, else text, else null. */
static json_t *
dry_body(const struct kl_http_req *rq)
{
	json_t *j;

	if (rq->body == NULL)
		return json_null();
	if (rq->content_type && strstr(rq->content_type, "json") &&
	    (j = json_loadb(rq->body, rq->body_len, 0, NULL)) != NULL)
		return j;
	return json_stringn(rq->body, rq->body_len);
}

/* The request as kl_http_do would send it, kept as the program's answer (kl_http.h). */
static int
dry_run(const struct kl_http_req *rq)
{
	json_t *h = json_pack("{s:s}", "User-Agent", "kl/0.1"), *d;

	if (h != NULL && rq->content_type && rq->body)
		json_object_set_new(h, "Content-Type", json_string(rq->content_type));
	if (h != NULL && rq->content_type)
		json_object_set_new(h, "Accept", json_string(rq->content_type));
	if (h != NULL && rq->bearer)
		json_object_set_new(h, "Authorization", json_string("Bearer <redacted>"));
	d = json_pack("{s:b,s:s,s:s,s:o*,s:o*}", "dry_run", 1, "method", rq->method,
	    "url", rq->url, "headers", h, "body", dry_body(rq));
	if (d == NULL)
		return req_fail(KL_TEMP, rq, "out of memory");
	if (kl_prog_answer == NULL)
		kl_prog_answer = d;
	else
		json_decref(d);
	kl_info("%s: --dry-run: not sent", rq->url);
	return KL_PERM;
}

/* ---- kl_http_do ---- */

int
kl_http_do(const struct kl_http_opts *o, const struct kl_http_req *rq, struct kl_http_resp *resp)
{
	struct xfer x = { 0 };
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *retry = NULL, *date = NULL;
	CURL *h = NULL;
	CURLcode cc;
	char url[512];
	uint64_t t0;
	int rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (rq->method == NULL || rq->url == NULL)
		return kl_fail(KL_PERM, "kl_http_do: no method or URL");
	if ((rc = kl_http_global_init()) != KL_OK)
		return rc;
	if ((rc = check_request(o, rq)) != KL_OK)
		return rc;
	if (kl_http_dry_run)
		return dry_run(rq);
	kl_log_sanitize(url, sizeof(url), rq->url, strlen(rq->url));
	if (make_request_id(resp->request_id) != 0)
		return KL_TEMP;	/* logged by kl_crypto_random() */

	x.resp = resp;
	x.max = o->max_response ? o->max_response : KL_HTTP_MAX_RESPONSE;
	if ((h = curl_easy_init()) == NULL || (hdrs = make_headers(rq, resp->request_id)) == NULL) {
		rc = req_fail(KL_TEMP, rq, "out of memory");
		goto out;
	}
	if ((cc = setup(h, o, rq, hdrs, &x, errbuf)) != CURLE_OK) {
		rc = req_fail(KL_PERM, rq, "libcurl refused an option: %s", curl_easy_strerror(cc));
		goto out;
	}

	kl_debug("%s %s: X-Request-ID %s", rq->method, url, resp->request_id);
	t0 = kl_now_ms();
	if ((cc = curl_easy_perform(h)) != CURLE_OK) {
		rc = transfer_fail(cc, &x, errbuf, o, rq);
		goto out;
	}

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (resp->status < 100 || resp->status > 599) {
		rc = req_fail(KL_PERM, rq, "malformed status %ld", resp->status);
		goto out;
	}
	if (resp->body == NULL && (resp->body = calloc(1, 1)) == NULL) {
		rc = req_fail(KL_TEMP, rq, "out of memory");
		goto out;
	}
	if (reply_header(h, "Location", &resp->location) != 0 ||
	    reply_header(h, "Content-Type", &resp->content_type) != 0 ||
	    reply_header(h, "Retry-After", &retry) != 0 || reply_header(h, "Date", &date) != 0) {
		rc = req_fail(KL_TEMP, rq, "out of memory");
		goto out;
	}
	if (retry != NULL)
		resp->retry_after = kl_http_parse_retry_after(retry, time(NULL));
	if (date != NULL && (resp->date = curl_getdate(date, NULL)) < 0)
		resp->date = 0;
	kl_info("%s %s: HTTP %ld, %zu bytes in %llu ms", rq->method, url,
	    resp->status, resp->len, (unsigned long long)(kl_now_ms() - t0));
	rc = KL_OK;
out:
	free(retry);
	free(date);
	if (h != NULL)
		curl_easy_cleanup(h);
	free_headers(hdrs);
	return rc;
}

void
kl_http_resp_release(struct kl_http_resp *resp)
{
	if (resp == NULL)
		return;
	kl_secret_free(resp->body, resp->len);
	free(resp->location);
	free(resp->content_type);
	resp->body = resp->location = resp->content_type = NULL;
	resp->len = 0;
}

void
kl_http_tls_relax(struct kl_http_opts *o, const char *url, int insecure,
    int accept_invalid_certs, int accept_invalid_hostnames)
{
	o->insecure = insecure || accept_invalid_certs;
	o->no_verify_host = accept_invalid_hostnames && !o->insecure;
	if (o->insecure)
		kl_warn("%s: TLS verification is OFF (%s: certificate and host name): anyone "
		    "on the path can pose as the server and take the bearer token", url,
		    insecure ? "--insecure" : "tls_accept_invalid_certs");
	else if (o->no_verify_host)
		kl_warn("%s: tls_accept_invalid_hostnames: the server's host name is not checked "
		    "against its certificate; the certificate is still verified against the CA", url);
}

/* ---- Retry-After (RFC 9110 10.2.3, dates 5.6.7) ---- */

/*
 * libcurl turns dates into times (curl_getdate); what is left here is the
 * strictness curl does not have: RFC 9110's three forms exactly, names
 * case-sensitive, fields zero-padded, real calendar days. A date passes when
 * curl's time, written back in the same form, gives the same text.
 *
 * CURLINFO_RETRY_AFTER is not used: it reports 0 alike for no header, an
 * invalid one, "0" and a past date, and reads "5s" as 5, where kl keeps -1
 * for absent or invalid and 0 for "retry now".
 */

static const char *const wkday[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", NULL };
static const char *const weekday[] = {
	"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", NULL,
};
static const char *const month[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* After a day name of names and then sep at s, or NULL. The name is checked
 * for form only: a wrong weekday is the sender's typo, not a different time. */
static const char *
after_day(const char *s, const char *const *names, const char *sep)
{
	for (; *names; names++) {
		size_t n = strlen(*names);

		if (strncmp(s, *names, n) == 0 && strncmp(s + n, sep, strlen(sep)) == 0)
			return s + n + strlen(sep);
	}
	return NULL;
}

/* t written as "DD Mon YYYY HH:MM:SS GMT", or for asctime "Mon DD HH:MM:SS YYYY"
 * with the day padded with a space. */
static int
date_text(time_t t, int asc, char *out, size_t cap)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year > 9999 - 1900)
		return -1;
	if (asc)
		snprintf(out, cap, "%s %2d %02d:%02d:%02d %04d", month[tm.tm_mon], tm.tm_mday,
		    tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	else
		snprintf(out, cap, "%02d %s %04d %02d:%02d:%02d GMT", tm.tm_mday, month[tm.tm_mon],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return 0;
}

/*
 * RFC 850's "DD-Mon-YY HH:MM:SS GMT" as "DD Mon YYYY HH:MM:SS GMT": a
 * two-digit year more than 50 years ahead of now is in the past century.
 */
static int
widen_rfc850(const char *s, time_t now, char *out, size_t cap)
{
	struct tm tm;
	int y, cy;

	if (strlen(s) != 22 || s[2] != '-' || s[6] != '-' || s[9] != ' ' ||
	    s[7] < '0' || s[7] > '9' || s[8] < '0' || s[8] > '9' || gmtime_r(&now, &tm) == NULL)
		return -1;
	cy = tm.tm_year + 1900;
	y = cy - cy % 100 + (s[7] - '0') * 10 + (s[8] - '0');
	if (y > cy + 50)
		y -= 100;
	else if (y + 100 <= cy + 50)
		y += 100;
	snprintf(out, cap, "%.2s %.3s %04d %s", s, s + 3, y, s + 10);
	return 0;
}

/*
 * Years before 2000 are moved up by whole 400-year Gregorian cycles (146097
 * days, the same calendar) before curl sees them: curl refuses years before
 * 1583 and returns 0 for 1969-12-31 23:59:59, whose time is its error value.
 * date's year is 4 digits at y; returns the cycles added.
 */
static int
shift_year(char *date, size_t y)
{
	int year = 0, cycles;

	for (size_t i = y; i < y + 4; i++) {
		if (date[i] < '0' || date[i] > '9')
			return 0;	/* not a date: the comparison will tell */
		year = year * 10 + (date[i] - '0');
	}
	cycles = year < 2000 ? (2000 - year + 399) / 400 : 0;
	year += 400 * cycles;
	for (size_t i = y + 4; i-- > y; year /= 10)
		date[i] = (char)('0' + year % 10);
	return cycles;
}

/* An HTTP-date (value, NUL-terminated, no blanks around) in any of the three forms into *t. */
static int
parse_http_date(const char *value, time_t now, time_t *t)
{
	char date[40], again[40];
	const char *rest;
	int asc = 0, leap, cycles;

	if ((rest = after_day(value, wkday, ", ")) != NULL)		/* IMF-fixdate */
		snprintf(date, sizeof(date), "%s", rest);
	else if ((rest = after_day(value, weekday, ", ")) != NULL) {	/* RFC 850 */
		if (widen_rfc850(rest, now, date, sizeof(date)) != 0)
			return -1;
	} else if ((rest = after_day(value, wkday, " ")) != NULL) {	/* asctime */
		snprintf(date, sizeof(date), "%s", rest);
		asc = 1;
	} else {
		return -1;
	}
	if (strlen(date) != (asc ? 20u : 24u))
		return -1;
	if (asc && date[4] == '0')	/* asctime's day is "06" or " 6" */
		date[4] = ' ';
	/* A leap second: curl would roll it into the next minute, and the text would differ. */
	if ((leap = strncmp(date + (asc ? 13 : 18), "60", 2) == 0))
		memcpy(date + (asc ? 13 : 18), "59", 2);
	cycles = shift_year(date, asc ? 16 : 7);
	*t = curl_getdate(date, NULL);
	if (date_text(*t, asc, again, sizeof(again)) != 0 || strcmp(again, date) != 0)
		return -1;
	*t += leap - (time_t)cycles * 146097 * 86400;
	return 0;
}

long
kl_http_parse_retry_after(const char *value, time_t now)
{
	const char *s = value;
	char date[64];
	size_t len, i;
	long secs = 0;
	time_t t;

	if (s == NULL)
		return -1;
	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0)
		return -1;

	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		if (secs < KL_HTTP_RETRY_AFTER_MAX)
			secs = secs * 10 + (s[i] - '0');
	if (i == len)
		return secs > KL_HTTP_RETRY_AFTER_MAX ? KL_HTTP_RETRY_AFTER_MAX : secs;

	if (len >= sizeof(date))
		return -1;
	memcpy(date, s, len);
	date[len] = '\0';
	if (parse_http_date(date, now, &t) != 0)
		return -1;
	if (t <= now)
		return 0;
	return t - now > KL_HTTP_RETRY_AFTER_MAX ? KL_HTTP_RETRY_AFTER_MAX : (long)(t - now);
}

/* ---- status and error replies ---- */

int
kl_http_status_class(long status)
{
	if (status >= 200 && status <= 299)
		return KL_OK;
	if (status == 401)
		return KL_REAUTH;
	if (status == 408 || status == 429 || (status >= 500 && status <= 599))
		return KL_TEMP;
	if (status >= 400 && status <= 499)
		return KL_REFUSED;
	return KL_PERM;
}

void
kl_http_describe(const struct kl_http_resp *resp, char *out, size_t cap)
{
	char text[512], clean[320];
	const char *what = NULL, *detail = NULL;
	json_t *doc, *e;

	if (cap == 0)
		return;
	if (resp->body == NULL || resp->len == 0) {
		snprintf(out, cap, "HTTP %ld (empty body)", resp->status);
		return;
	}
	doc = json_loadb(resp->body, resp->len, 0, NULL);
	if (doc == NULL) {
		kl_log_sanitize(clean, DESCRIBE_RAW_MAX + 1, resp->body, resp->len);
		snprintf(out, cap, "HTTP %ld %s", resp->status, clean);
		return;
	}
	/* JSON:API errors[0] (verifier), else the v2 envelope's "status" (registrar). */
	e = json_array_get(json_object_get(doc, "errors"), 0);
	if (json_is_object(e)) {
		what = json_string_value(json_object_get(e, "code"));
		if (what == NULL)
			what = json_string_value(json_object_get(e, "title"));
		detail = json_string_value(json_object_get(e, "detail"));
	} else {
		what = json_string_value(json_object_get(doc, "status"));
	}
	if (what || detail) {
		snprintf(text, sizeof(text), "%s%s%s", what ? what : "",
		    what && detail ? ": " : "", detail ? detail : "");
		kl_log_sanitize(clean, sizeof(clean), text, strlen(text));
	} else {
		snprintf(clean, sizeof(clean), "(JSON reply of %zu bytes)", resp->len);
	}
	json_decref(doc);
	snprintf(out, cap, "HTTP %ld %s", resp->status, clean);
}

static int global_done;

static void
global_cleanup(void)
{
	curl_global_cleanup();
}

int
kl_http_global_init(void)
{
	CURLcode cc;

	if (global_done)
		return KL_OK;
	if ((cc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK)
		return kl_fail(KL_PERM, "curl_global_init: %s", curl_easy_strerror(cc));
	global_done = 1;
	atexit(global_cleanup);
	return KL_OK;
}


const char *
kl_http_version(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	static char line[128];

	snprintf(line, sizeof(line), "libcurl %s (%s)", v->version,
	    v->ssl_version ? v->ssl_version : "no TLS");
	return line;
}
