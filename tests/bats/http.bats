# tests/bats/http.bats - lib/kl_http.c through build/tests/test_http, against
# fixtures/http/server.py on loopback ports, with a CA made by openssl per run.
load helpers

FIX="$BATS_TEST_DIRNAME/fixtures/http"

# make_certs DIR: ca.pem signs srv (127.0.0.1, localhost) and other
# (other.example); ca2.pem is a CA nobody uses.
make_certs() {
	local d=$1 n ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
		-subj "/CN=kl test CA" 2>/dev/null
	openssl req -x509 "${ec[@]}" -keyout "$d/ca2.key" -out "$d/ca2.pem" -days 2 \
		-subj "/CN=kl unrelated CA" 2>/dev/null
	for n in srv:IP:127.0.0.1,DNS:localhost other:DNS:other.example; do
		local name=${n%%:*} san=${n#*:}
		openssl req "${ec[@]}" -keyout "$d/$name.key" -out "$d/$name.csr" \
			-subj "/CN=$name" 2>/dev/null
		printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
			"$san" >"$d/$name.ext"
		openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -out "$d/$name.pem" -extfile "$d/$name.ext" 2>/dev/null
	done
	[ -s "$d/srv.pem" ] && [ -s "$d/other.pem" ]
}

setup_file() {
	local d=$BATS_FILE_TMPDIR p
	make_certs "$d"
	p=$(kl_free_port 4)
	export CA=$d/ca.pem CA2=$d/ca2.pem SRVLOG=$d/requests.log
	export HTTP=http://127.0.0.1:$p HTTPS=https://127.0.0.1:$((p + 1))
	export OTHER=https://127.0.0.1:$((p + 2)) DROP_PORT=$((p + 3))
	/usr/bin/python3 "$FIX/server.py" --log "$SRVLOG" --ready "$d/ready" \
		--http "$p" --https "$((p + 1)):$d/srv.pem:$d/srv.key" \
		--https "$((p + 2)):$d/other.pem:$d/other.key" --drop "$DROP_PORT" \
		</dev/null >"$d/server.out" 2>"$d/server.err" 3>&- &
	echo $! >"$d/server.pid"
	for _ in $(seq 50); do
		[ -e "$d/ready" ] && return 0
		sleep 0.1
	done
	echo "server.py did not start: $(cat "$d/server.err")" >&2
	return 1
}

teardown_file() {
	if [ -e "$BATS_FILE_TMPDIR/server.pid" ]; then
		kill "$(cat "$BATS_FILE_TMPDIR/server.pid")" || true
	fi
}

setup() {
	: >"$SRVLOG"
}

req() {
	kl_unit http request "$@"
}

# srv_header NAME: the value of header NAME in the last request the server logged.
srv_header() {
	tail -n 1 "$SRVLOG" | jq -r --arg n "$1" \
		'[.headers[] | select(.[0] | ascii_downcase == ($n | ascii_downcase)) | .[1]] | first // "ABSENT"'
}

# ---- Retry-After ----

# 784111747 is 1994-11-06T08:48:07Z, 30 s before the RFC 9110 example date.
NOW=784111747

ra() {
	run -0 --separate-stderr kl_unit http retry-after "$1" "${2:-$NOW}"
	[ "$output" = "$3" ] || { echo "retry-after '$1': got '$output', want '$3'"; return 1; }
	[ -z "$stderr" ]
}

@test "retry-after: delta-seconds" {
	ra "120" "" 120
	ra "0" "" 0
	ra " 7	" "" 7
	ra "99999999999999999999999" "" 86400
	ra "86401" "" 86400
}

@test "retry-after: garbage, signs and fractions are invalid" {
	ra "" "" -1
	ra " " "" -1
	ra "-5" "" -1
	ra "+5" "" -1
	ra "1.5" "" -1
	ra "5s" "" -1
	ra "soon" "" -1
	ra "0x10" "" -1
}

@test "retry-after: IMF-fixdate, RFC 850 and asctime dates" {
	ra "Sun, 06 Nov 1994 08:49:37 GMT" "" 30
	ra "Sunday, 06-Nov-94 08:49:37 GMT" "" 30
	ra "Sun Nov  6 08:49:37 1994" "" 30
	ra "Wed Nov 16 08:49:37 1994" $((NOW + 864000)) 30
	ra "Thu, 01 Jan 1970 00:00:10 GMT" 0 10
}

@test "retry-after: a date in the past gives 0, far future is capped" {
	ra "Sun, 06 Nov 1994 08:48:06 GMT" "" 0
	ra "Thu, 01 Jan 1970 00:00:00 GMT" "" 0
	ra "Fri, 01 Jan 2100 00:00:00 GMT" "" 86400
}

@test "retry-after: RFC 850 two-digit years within 50 years ahead are next century" {
	# now: 2099-12-31T23:59:50Z; "00" is 2100, 10 s ahead, not 2000.
	ra "Friday, 01-Jan-00 00:00:00 GMT" 4102444790 10
	# now: 1994; "94" is 1994.
	ra "Sunday, 06-Nov-94 08:49:37 GMT" "" 30
}

@test "retry-after: malformed dates are invalid" {
	ra "sun, 06 Nov 1994 08:49:37 GMT" "" -1
	ra "Sun, 06 nov 1994 08:49:37 GMT" "" -1
	ra "Sun, 06 Nov 1994 08:49:37 UTC" "" -1
	ra "Sun, 6 Nov 1994 08:49:37 GMT" "" -1
	ra "Sun, 31 Feb 1994 08:49:37 GMT" "" -1
	ra "Sun, 06 Nov 1994 24:00:00 GMT" "" -1
	ra "Sun, 06 Nov 1994 08:49:37 GMT x" "" -1
	ra "Sunday, 06-Nov-1994 08:49:37 GMT" "" -1
	ra "Sun Nov 6 08:49:37 1994" "" -1
	ra "Mon Feb 29 00:00:00 2023" "" -1
	ra "Thu Feb 29 00:00:00 2024" 1709164800 0
	ra "1994-11-06T08:49:37Z" "" -1
}

@test "retry-after: zero-padded asctime day, leap second, years curl alone refuses" {
	ra "Sun Nov 06 08:49:37 1994" "" 30
	ra "Sun, 06 Nov 1994 08:49:60 GMT" "" 53
	ra "Sun Nov  6 08:49:60 1994" "" 53
	ra "Wed, 31 Dec 1969 23:59:59 GMT" -3 2
	ra "Sat, 01 Jan 0000 00:00:10 GMT" -62167219200 10
	ra "Mon, 01 Jan 1582 00:00:00 GMT" "" 0
	ra "Tue, 29 Feb 1600 00:00:00 GMT" -11670998500 100
	ra "Sun, 29 Feb 1700 00:00:00 GMT" "" -1
}

# ---- status classes and error descriptions ----

@test "status-class: 2xx ok, 401 reauth, 408/429/5xx temporary, 4xx refused, rest permanent" {
	local pair
	for pair in 200:0 201:0 202:0 204:0 401:2 400:1 403:1 404:1 409:1 415:1 422:1 \
		408:111 429:111 500:111 502:111 503:111 504:111 599:111 \
		100:100 301:100 302:100 304:100 0:100 600:100; do
		run -0 kl_unit http status-class "${pair%%:*}"
		[ "$output" = "${pair#*:}" ] || { echo "status ${pair%%:*}: got $output"; return 1; }
	done
}

@test "tls-class: a handshake the connection broke is temporary, one the peer refused permanent" {
	local m
	# curl's texts seen here (libcurl 7.88, OpenSSL 3.0). The getpeername one
	# came from a fleet whose verifier closed its listeners: curl keeps the
	# first error of a transfer, and the handshake then failed on the reset.
	for m in "OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to 127.0.0.1:8881 " \
		"Recv failure: Connection reset by peer" "Send failure: Broken pipe" \
		"error:0A000126:SSL routines::unexpected eof while reading" \
		"getpeername() failed with errno 107: Transport endpoint is not connected" \
		"SSL connection timeout" "Connection timed out after 10001 milliseconds"; do
		run -0 kl_unit http tls-class "$m"
		[ "$output" = 111 ] || { echo "$m: got $output"; return 1; }
	done
	for m in "error:0A00010B:SSL routines::wrong version number" \
		"error:0A00042E:SSL routines::tlsv1 alert protocol version" \
		"error:0A000410:SSL routines::sslv3 alert handshake failure" \
		"error:0A0000BF:SSL routines::no protocols available"; do
		run -0 kl_unit http tls-class "$m"
		[ "$output" = 100 ] || { echo "$m: got $output"; return 1; }
	done
}

@test "describe: JSON:API errors[0] code and detail" {
	run -0 --separate-stderr kl_unit http describe 429 "$FIX/jsonapi-429.json"
	[ "$output" = "HTTP 429 premature_attestation: Cannot create attestation for agent 'c0ffee00-1234-4abc-9def-0123456789ab' before the configured interval has elapsed. Wait 2 seconds before trying again." ]
}

@test "describe: JSON:API title when there is no code" {
	run -0 --separate-stderr kl_unit http describe 401 "$FIX/auth-401.json"
	[ "$output" = "HTTP 401 Unauthorized: Authentication token expired" ]
}

@test "describe: v2 envelope status" {
	run -0 --separate-stderr kl_unit http describe 400 "$FIX/v2-400.json"
	[ "$output" = "HTTP 400 Could not register agent with invalid data" ]
}

@test "describe: empty body" {
	run -0 --separate-stderr kl_unit http describe 500 /dev/null
	[ "$output" = "HTTP 500 (empty body)" ]
}

@test "describe: control characters become ?" {
	run -0 --separate-stderr kl_unit http describe 422 "$FIX/control-422.json"
	[ "$output" = "HTTP 422 bad?thing: line1?line2?[31m" ]
	run -0 --separate-stderr kl_unit http describe 502 "$FIX/html-502.txt"
	[ "$output" = "HTTP 502 <html><body>502 Bad Gateway???nginx</body></html>?" ]
}

@test "describe: a non-JSON body is cut at 200 bytes" {
	run -0 --separate-stderr kl_unit http describe 500 "$FIX/long-500.txt"
	[ "$output" = "HTTP 500 $(printf 'x%.0s' $(seq 197))..." ]
}

@test "describe: other JSON is not shown (it may hold a token)" {
	run -0 --separate-stderr kl_unit http describe 200 "$FIX/session-200.json"
	[ "$output" = "HTTP 200 (JSON reply of 166 bytes)" ]
}

@test "describe: output is bounded by the buffer" {
	run -0 --separate-stderr kl_unit http describe 429 "$FIX/jsonapi-429.json" 20
	[ "$output" = "HTTP 429 premature_" ]
}

# ---- requests ----

@test "request: HTTPS 200 with body, content type and request id" {
	run -0 --separate-stderr req GET "$HTTPS/ok" --ca "$CA"
	[ -z "$stderr" ]
	jq -e '.status == 200 and .len == 11 and .body == "{\"ok\":true}" and
		.content_type == "application/json" and .location == null and
		.retry_after == -1' <<<"$output"
	[ "$(wc -l <"$SRVLOG")" -eq 1 ]
	[ "$(srv_header User-Agent)" = "kl/0.1" ]
}

@test "request: plain HTTP without a CA" {
	run -0 --separate-stderr req GET "$HTTP/ok"
	jq -e '.status == 200 and .body == "{\"ok\":true}"' <<<"$output"
}

@test "request: the X-Request-ID is sent and returned" {
	run -0 --separate-stderr req GET "$HTTPS/ok" --ca "$CA"
	id=$(jq -r .request_id <<<"$output")
	[[ $id =~ ^[A-Za-z0-9_]{6,12}$ ]]
	[ "$(srv_header X-Request-ID)" = "$id" ]
	run -0 --separate-stderr req GET "$HTTPS/ok" --ca "$CA"
	[ "$(jq -r .request_id <<<"$output")" != "$id" ]
}

@test "request: an error status is KL_OK with Location and Retry-After read" {
	run -0 --separate-stderr req POST "$HTTP/status/201?location=/v3.0/agents/x/attestations/3" \
		--ctype application/json
	jq -e '.status == 201 and .location == "/v3.0/agents/x/attestations/3" and .retry_after == -1' <<<"$output"
	run -0 --separate-stderr req GET "$HTTPS/status/429?retry_after=2&body=%7B%7D" --ca "$CA"
	[ -z "$stderr" ]
	jq -e '.status == 429 and .retry_after == 2 and .body == "{}"' <<<"$output"
	run -0 --separate-stderr req GET "$HTTP/status/503?retry_after=Thu,%2001%20Jan%201970%2000:00:00%20GMT"
	jq -e '.status == 503 and .retry_after == 0' <<<"$output"
	run -0 --separate-stderr req GET "$HTTP/status/503?retry_after=later"
	jq -e '.status == 503 and .retry_after == -1' <<<"$output"
}

@test "request: content type and accept are sent as asked, with the body" {
	printf '{"data":{"type":"attestation"}}' >"$BATS_TEST_TMPDIR/body.json"
	run -0 --separate-stderr req PATCH "$HTTPS/echo" --ca "$CA" \
		--ctype application/vnd.api+json --body-file "$BATS_TEST_TMPDIR/body.json"
	jq -e '.status == 200 and .body == "{\"data\":{\"type\":\"attestation\"}}"' <<<"$output"
	[ "$(tail -n 1 "$SRVLOG" | jq -r .method)" = PATCH ]
	[ "$(srv_header Content-Type)" = "application/vnd.api+json" ]
	[ "$(srv_header Accept)" = "application/vnd.api+json" ]
	[ "$(srv_header Content-Length)" = 31 ]
	run -0 --separate-stderr req POST "$HTTP/echo" --ctype application/json \
		--body-file "$BATS_TEST_TMPDIR/body.json"
	[ "$(srv_header Content-Type)" = "application/json" ]
	[ "$(srv_header Accept)" = "application/json" ]
}

@test "request: a request without a body names no Content-Type, only Accept" {
	run -0 --separate-stderr req GET "$HTTP/echo" --ctype application/json
	[ "$(srv_header Content-Type)" = ABSENT ]
	[ "$(srv_header Accept)" = "application/json" ]
}

@test "request: no content type means none is sent, not curl's form default" {
	run -0 --separate-stderr req POST "$HTTP/echo"
	[ "$(srv_header Content-Type)" = ABSENT ]
	[ "$(srv_header Content-Length)" = 0 ]
	[ "$(srv_header Authorization)" = ABSENT ]
}

@test "request: a reply over the cap is permanent (Content-Length and chunked)" {
	run -100 --separate-stderr req GET "$HTTP/big?n=1001" --max 1000
	[ -z "$output" ]
	[ "$stderr" = "test_http: error: GET $HTTP/big?n=1001: reply larger than 1000 bytes" ]
	run -100 --separate-stderr req GET "$HTTP/chunked?n=5000" --max 1000
	[ -z "$output" ]
	[ "$stderr" = "test_http: error: GET $HTTP/chunked?n=5000: reply larger than 1000 bytes" ]
	run -0 --separate-stderr req GET "$HTTP/chunked?n=1000" --max 1000
	jq -e '.len == 1000' <<<"$output"
}

@test "request: a truncated reply is temporary" {
	run -111 --separate-stderr req GET "$HTTP/truncated"
	[ -z "$output" ]
	[ "$stderr" = "test_http: error: GET $HTTP/truncated: transfer closed with 90 bytes remaining to read" ]
}

@test "request: no reply at all is temporary" {
	run -111 --separate-stderr req GET "$HTTP/close"
	[ "$stderr" = "test_http: error: GET $HTTP/close: Empty reply from server" ]
	run -111 --separate-stderr req GET "http://127.0.0.1:$DROP_PORT/x"
	[[ $stderr == "test_http: error: GET http://127.0.0.1:$DROP_PORT/x: "* ]]
}

@test "request: a connection closed during the TLS handshake is temporary" {
	run -111 --separate-stderr req GET "https://127.0.0.1:$DROP_PORT/x" --ca "$CA"
	[[ $stderr == "test_http: error: GET https://127.0.0.1:$DROP_PORT/x: TLS handshake failed: "* ]]
}

@test "request: connection refused is temporary" {
	port=$(kl_free_port)
	run -111 --separate-stderr req GET "http://127.0.0.1:$port/ok"
	[ -z "$output" ]
	[[ $stderr == "test_http: error: GET http://127.0.0.1:$port/ok: Failed to connect to 127.0.0.1 port $port "* ]]
}

@test "request: a server that never answers times out, temporary, on time" {
	t0=$(date +%s%N)
	run -111 --separate-stderr req GET "$HTTP/hang" --timeout 1000
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -ge 900 ] && [ "$ms" -lt 3000 ] || { echo "took $ms ms"; return 1; }
	[[ $stderr == "test_http: error: GET $HTTP/hang: Operation timed out after "* ]]
}

@test "request: unknown CA is permanent and nothing reaches the handler" {
	run -100 --separate-stderr req POST "$HTTPS/echo" --ca "$CA2"
	[ -z "$output" ]
	[ "$stderr" = "test_http: error: POST $HTTPS/echo: TLS: certificate verify failed: unable to get local issuer certificate (CA $CA2)" ]
	[ ! -s "$SRVLOG" ]
}

@test "request: only the CA file is trusted, not the default stores" {
	SSL_CERT_FILE=$CA SSL_CERT_DIR=$BATS_FILE_TMPDIR CURL_CA_BUNDLE=$CA \
		run -100 --separate-stderr req GET "$HTTPS/ok" --ca "$CA2"
	[[ $stderr == *"TLS: certificate verify failed"* ]]
	[ ! -s "$SRVLOG" ]
}

@test "request: host name mismatch is permanent" {
	run -100 --separate-stderr req GET "$OTHER/ok" --ca "$CA"
	[ "$stderr" = "test_http: error: GET $OTHER/ok: TLS: certificate verify failed: no alternative certificate subject name matches target host name '127.0.0.1' (CA $CA)" ]
	[ ! -s "$SRVLOG" ]
}

@test "request: insecure skips verification" {
	run -0 --separate-stderr req GET "$OTHER/ok" --ca "$CA2" --insecure
	jq -e '.status == 200' <<<"$output"
	run -0 --separate-stderr req GET "$OTHER/ok" --insecure
	jq -e '.status == 200' <<<"$output"
}

@test "request: tls_accept_invalid_hostnames skips only the name check, never the CA" {
	# A certificate for another name, from our CA: accepted, with a warning.
	run -0 --separate-stderr req GET "$OTHER/ok" --ca "$CA" --accept-invalid-hostnames
	jq -e '.status == 200' <<<"$output"
	[ "$stderr" = "test_http: warning: URL: tls_accept_invalid_hostnames: the server's host name is not checked against its certificate; the certificate is still verified against the CA" ]
	# The same server with a CA that did not sign it: refused, nothing sent.
	: >"$SRVLOG"
	run -100 --separate-stderr req POST "$OTHER/echo" --ca "$CA2" --accept-invalid-hostnames
	[[ $stderr == *"TLS: certificate verify failed: unable to get local issuer certificate (CA $CA2)" ]]
	[ ! -s "$SRVLOG" ]
}

@test "request: the userinfo of a URL never reaches a log line" {
	local u=${HTTPS/https:\/\//https://user:TOPSECRET@}
	run -100 --separate-stderr req GET "$u/ok" --ca "$CA2"
	[[ $stderr == "test_http: error: GET $HTTPS/ok: TLS: certificate verify failed"* ]]
	[[ $stderr != *TOPSECRET* ]] && [[ $stderr != *user* ]]
	run -111 --separate-stderr req GET "http://u:TOPSECRET@127.0.0.1:$DROP_PORT/x?y=a@b" --timeout 500
	[[ $stderr == "test_http: error: GET http://127.0.0.1:$DROP_PORT/x?y=a@b: "* ]]
}

@test "request: an unreadable CA file is permanent" {
	run -100 --separate-stderr req GET "$HTTPS/ok" --ca "$BATS_TEST_TMPDIR/missing.pem"
	[ "$stderr" = "test_http: error: GET $HTTPS/ok: TLS: cannot load CA file $BATS_TEST_TMPDIR/missing.pem" ]
}

@test "request: https without a CA file is refused before connecting" {
	run -100 --separate-stderr req GET "$HTTPS/ok"
	[ "$stderr" = "test_http: error: GET $HTTPS/ok: no CA file to verify the server with" ]
	[ ! -s "$SRVLOG" ]
}

@test "request: TLS to a plain HTTP port is permanent" {
	run -100 --separate-stderr req GET "https://${HTTP#http://}/ok" --ca "$CA"
	[[ $stderr == "test_http: error: GET https://${HTTP#http://}/ok: TLS handshake failed: "* ]]
}

@test "request: require-tls refuses http:// before sending anything" {
	run -100 --separate-stderr req POST "$HTTP/echo" --require-tls --ca "$CA"
	[ -z "$output" ]
	[ "$stderr" = "test_http: error: POST $HTTP/echo: plain HTTP refused: TLS is required" ]
	[ ! -s "$SRVLOG" ]
	run -100 --separate-stderr req POST "HTTP://${HTTP#http://}/echo" --require-tls --ca "$CA"
	[ ! -s "$SRVLOG" ]
	run -0 --separate-stderr req POST "$HTTPS/echo" --require-tls --ca "$CA"
	jq -e '.status == 200' <<<"$output"
}

@test "request: only http and https URLs" {
	run -100 --separate-stderr req GET "ftp://127.0.0.1/x"
	[ "$stderr" = "test_http: error: GET ftp://127.0.0.1/x: not an http:// or https:// URL" ]
	run -100 --separate-stderr req GET "file:///etc/passwd"
	[ -z "$output" ]
	run -100 --separate-stderr req TRACE "$HTTP/ok"
	[ "$stderr" = "test_http: error: TRACE $HTTP/ok: unsupported method" ]
}

@test "request: the bearer token is sent and never logged, even at -vv" {
	export KL_TEST_TOKEN="7.s3cr3t-t0ken-VALUE"
	printf '{"data":{"attributes":{"token":"%s"}}}' "$KL_TEST_TOKEN" >"$BATS_TEST_TMPDIR/body.json"
	run -0 --separate-stderr req -vv POST "$HTTPS/echo" --ca "$CA" --bearer-env KL_TEST_TOKEN \
		--ctype application/vnd.api+json --body-file "$BATS_TEST_TMPDIR/body.json"
	[ "$(srv_header Authorization)" = "Bearer $KL_TEST_TOKEN" ]
	[[ $output == *"$KL_TEST_TOKEN"* ]]	# the echo came back (stdout only)
	[[ $stderr == *"test_http: debug: > Authorization: <redacted>"* ]]
	[[ $stderr == *"test_http: debug: > X-Request-ID: "* ]]
	[[ $stderr == *"test_http: debug: < HTTP/1.1 200 OK"* ]]
	[[ $stderr != *"s3cr3t"* ]]
	# One event per line: every line is a test_http log line.
	[ "$(grep -vc '^test_http: \(debug\|info\): ' <<<"$stderr")" -eq 0 ]
}

@test "request: a bearer token with a line break is refused" {
	export KL_TEST_BAD_TOKEN=$'abc\r\nX-Evil: 1'
	run -100 --separate-stderr req GET "$HTTP/ok" --bearer-env KL_TEST_BAD_TOKEN
	[ "$stderr" = "test_http: error: GET $HTTP/ok: bearer token is empty or holds a control character" ]
	[ ! -s "$SRVLOG" ]
}

@test "request: redirects are not followed" {
	run -0 --separate-stderr req GET "$HTTP/status/302?location=$HTTP/ok"
	jq -e ".status == 302 and .location == \"$HTTP/ok\"" <<<"$output"
	[ "$(wc -l <"$SRVLOG")" -eq 1 ]
}
