#!/usr/bin/env bats
# kl-session.bats - PoP authentication (docs/protocol.md §4) against the strict test
# verifier, which checks the TPM2_Certify proof itself: a fresh token, reuse of
# a valid one, refusals, rate limiting, and every malformed verifier reply.
load helpers
load fixtures/e2e/steps

# One registered, enrolled agent for the file; tests that change its
# enrollment or need their own history make a fresh one (agent_new).
setup_file() { file_start; }

teardown_file() { file_stop; }

setup() {
	file_use
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" \
		'{"session_rate_per_agent": 0, "nonce_lifetime": 60, "session_lifetime": 180}' >/dev/null
	REG=$D/reg.json
	# These tests are about the PoP: start without the kept token (kl_token.h),
	# which the tests at the end of the file exercise.
	rm -f "$KDIR/kl-session.json"
}

# session_ok: $output holds a session member for this agent and verifier.
session_ok() {
	jq -e --arg url "$KL_VERIFIER_URL" --arg id "$AGENT_ID" --arg now "$(iso_in 0)" '
		.session as $s | ($s | keys == ["agent_id", "created_at", "expires_at", "session_id",
			"token", "verifier_url"])
		and $s.verifier_url == $url and $s.agent_id == $id
		and ($s.token | test("^[A-Za-z0-9_.-]{8,512}$"))
		and ($s.token | startswith($s.session_id + ".")) and $s.expires_at > $now' <<<"$output"
}

# -------------------------------------------------------------------- success

@test "kl-session: POST, certify, PATCH: the input plus a session with a token the verifier takes" {
	run -0 --separate-stderr kl_run kl-session <"$REG"
	[ -z "$stderr" ]
	session_ok
	# The rest of the document is the input, unchanged.
	[ "$(jq -c 'del(.session)' <<<"$output")" = "$(jq -c . "$REG")" ]
	# Two requests, no Authorization header; the PATCH went to the session of the POST.
	requests | jq -e --arg sid "$(jq -r .session.session_id <<<"$output")" '
		length == 2 and .[0].method == "POST" and .[0].path == "/v3.0/sessions"
		and .[1].method == "PATCH" and .[1].path == "/v3.0/sessions/" + $sid
		and all(.[]; .headers | has("authorization") | not) and all(.[]; .status == 200)'
	# The verifier's record shows the token active until the expiry we wrote.
	kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$AGENT_ID" | jq -e --arg exp \
		"$(jq -r .session.expires_at <<<"$output")" '.token_expires_at == $exp'
	# And the token works: a negotiation with it gets its 201.
	kl_run kl-negotiate <<<"$output" >/dev/null
}

@test "kl-session: a token valid for more than 30 s is reused without contacting the verifier" {
	kl_run kl-session <"$REG" >"$BATS_TEST_TMPDIR/s1.json"
	faults_clear
	run -0 --separate-stderr kl_run kl-session --verbose <"$BATS_TEST_TMPDIR/s1.json"
	[ "$output" = "$(jq -c . "$BATS_TEST_TMPDIR/s1.json")" ]
	[ "$stderr" = "kl-session: info: config: reading $KEYLIME_AGENT_CONFIG
kl-session: info: reusing the session token valid until $(jq -r .session.expires_at "$BATS_TEST_TMPDIR/s1.json")" ]
	[ "$(requests | jq length)" = 0 ]
	# A retry member of an earlier failure is dropped.
	run -0 kl_run kl-session < <(jq -c '. + {retry: {after: 1}}' "$BATS_TEST_TMPDIR/s1.json")
	[ "$output" = "$(jq -c . "$BATS_TEST_TMPDIR/s1.json")" ]
}

@test "kl-session: a token near its expiry, or for another verifier or agent, is replaced" {
	local s1 tok
	s1=$(kl_run kl-session <"$REG")
	tok=$(jq -r .session.token <<<"$s1")
	faults_clear
	for edit in '.session.expires_at = $soon' '.session.verifier_url = "https://127.0.0.1:1"' \
		'.session.agent_id = "00000000-0000-4000-8000-000000000000"' 'del(.session.expires_at)' \
		'.session.expires_at = "yesterday"'; do
		run -0 kl_run kl-session < <(jq -c --arg soon "$(iso_in 20)" "$edit" <<<"$s1")
		session_ok
		[ "$(jq -r .session.token <<<"$output")" != "$tok" ]
	done
	[ "$(nreq '^/v3.0/sessions$')" = 5 ]
}

@test "kl-session: the token is in no log line at debug level and in no file but the 0600 kept session" {
	local tok
	run -0 --separate-stderr kl_run kl-session --log-level debug <"$REG"
	tok=$(jq -r .session.token <<<"$output")
	[ -n "$tok" ] && [ "${#stderr_lines[@]}" -gt 10 ]
	[[ $stderr != *"${tok#*.}"* ]]
	[ "$(grep -rlF -- "${tok#*.}" "$D")" = "$KDIR/kl-session.json" ]
	[ "$(stat -c %a "$KDIR/kl-session.json")" = 600 ]
	# No step takes a token on its command line.
	for step in kl-session kl-negotiate kl-submit; do
		run -100 --separate-stderr kl_run "$step" --token "$tok" </dev/null
		[ -z "$output" ] && [[ $stderr != *"${tok#*.}"* ]]
	done
}

# ------------------------------------------------------------------- refusals

@test "kl-session: an agent the verifier has not enrolled gets evaluation fail: exit 1" {
	agent_new
	register
	run -1 --separate-stderr kl_run kl-session <"$D/reg.json"
	[ -z "$output" ]
	[ "$stderr" = "kl-session: error: PATCH $KL_VERIFIER_URL/v3.0/sessions/$(requests |
		jq -r '.[1].path | split("/") | last'): evaluation fail: the agent is not enrolled at the verifier, or the challenge expired" ]
}

@test "kl-session: a challenge answered after nonce_lifetime gets evaluation fail: exit 1" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"nonce_lifetime": 0.2}' >/dev/null
	fault '{"method": "PATCH", "path": "^/v3.0/sessions/", "delay": 0.5}'
	run -1 --separate-stderr kl_run kl-session <"$REG"
	[ -z "$output" ]
	one_error session
	[[ $stderr == *": evaluation fail: the agent is not enrolled at the verifier, or the challenge expired" ]]
}

@test "kl-session: a proof by another AK than the enrolled one is refused (401): exit 1, one line" {
	agent_new
	register
	# Enroll this agent id with the AK of the file's agent.
	kl_enroll "$AGENT_ID" --aik "$(jq -r .agent.ak.public "$FILE_D/reg.json")"
	run -1 --separate-stderr kl_run kl-session <"$D/reg.json"
	[ -z "$output" ]
	one_error session
	[[ $stderr == "kl-session: error: PATCH $KL_VERIFIER_URL/v3.0/sessions/"*": HTTP 401 (JSON reply of "*" bytes); the verifier rejected the TPM proof: is the agent enrolled with this AK?" ]]
	[ "$(requests | jq -r '.[1].status')" = 401 ]
}

@test "kl-session: the per-agent rate limit (429 + Retry-After) is temporary with the delay in stdout" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"session_rate_per_agent": 1}' >/dev/null
	kl_run kl-session <"$REG" >/dev/null
	rm "$KDIR/kl-session.json"	# else the second run takes the kept token
	run -111 --separate-stderr kl_run kl-session <"$REG"
	one_error session
	[ "$stderr" = "kl-session: error: POST $KL_VERIFIER_URL/v3.0/sessions: HTTP 429 Too Many Requests: Rate limit exceeded for this agent. Please try again later." ]
	jq -e --slurpfile in "$REG" '(del(.retry) == $in[0]) and .retry.step == "kl-session"
		and .retry.status == 429 and (.retry.after | type == "number" and . >= 1 and . <= 60)' <<<"$output"
}

@test "kl-session: a session that vanished before the PATCH (404) is temporary" {
	fault '{"method": "PATCH", "path": "^/v3.0/sessions/", "status": 404, "content_type": "application/json",
		"body": {"errors": [{"status": "404", "title": "Not Found", "detail": "Session not found"}]}}'
	run -111 --separate-stderr kl_run kl-session <"$REG"
	[ -z "$output" ]
	one_error session
	[[ $stderr == *": HTTP 404 Not Found: Session not found" ]]
}

@test "kl-session: stdin without an agent or its AK is permanent, before any request" {
	run -100 --separate-stderr kl_run kl-session <<<'{"schema":1}'
	[ -z "$output" ]
	[ "$stderr" = 'kl-session: error: stdin: "agent" is missing' ]
	run -100 --separate-stderr kl_run kl-session < <(jq -c 'del(.agent.ak.public)' "$REG")
	[ -z "$output" ]
	[ "$stderr" = 'kl-session: error: stdin: agent.ak: "public" is missing' ]
	[ "$(requests | jq length)" = 0 ]
}

# ------------------------------------------- malformed replies, POST /sessions

# bad_post CODE RULE: a fault on POST /sessions -> exit CODE, no stdout, one error line.
bad_post() {
	faults_clear
	fault "$(jq -c '. + {"method": "POST", "path": "^/v3.0/sessions$"}' <<<"$2")"
	run "-$1" --separate-stderr kl_run kl-session <"$REG"
	[ -z "$output" ]
	one_error session
	[ "$(nreq '^/v3.0/sessions/')" = 0 ]	# no PATCH after a bad challenge
}

# A valid POST /sessions reply, edited by the jq filter $1.
challenge_reply() {
	jq -c "$1" "$E2E_FIX/session-200.json"
}

@test "kl-session: POST /sessions: 500 with an HTML page is temporary" {
	bad_post 111 '{"status": 500, "content_type": "text/html", "body": "<html><b>oops</b></html>"}'
	[[ $stderr == *"/v3.0/sessions: HTTP 500 <html><b>oops</b></html>" ]]
}

@test "kl-session: POST /sessions: 200 that is not JSON is permanent" {
	bad_post 100 '{"status": 200, "body": "challenge: abc"}'
	[[ $stderr == *": reply lacks data.id or authentication_requested" ]]
}

@test "kl-session: POST /sessions: 200 JSON without data.id or authentication_requested is permanent" {
	bad_post 100 "{\"status\": 200, \"body\": $(challenge_reply 'del(.data.id)')}"
	bad_post 100 "{\"status\": 200, \"body\": $(challenge_reply '.data.id = "../../agents"')}"
	bad_post 100 "{\"status\": 200, \"body\": $(challenge_reply 'del(.data.attributes.authentication_requested)')}"
	[[ $stderr == *": reply lacks data.id or authentication_requested" ]]
}

@test "kl-session: POST /sessions: a challenge that is not base64, or no tpm_pop, is permanent" {
	bad_post 100 "{\"status\": 200, \"body\": $(challenge_reply \
		'.data.attributes.authentication_requested[0].chosen_parameters.challenge = "not base64!"')}"
	[[ $stderr == *": the tpm_pop challenge is not base64 of 8..64 bytes" ]]
	bad_post 100 "{\"status\": 200, \"body\": $(challenge_reply \
		'.data.attributes.authentication_requested[0].chosen_parameters.challenge = "AAAA"')}"
	bad_post 100 "{\"status\": 200, \"body\": $(challenge_reply \
		'.data.attributes.authentication_requested[0].authentication_type = "password"')}"
	[[ $stderr == *": the verifier offers no tpm_pop authentication" ]]
}

@test "kl-session: POST /sessions: truncated or no reply is temporary, a 20 MB reply permanent" {
	bad_post 111 '{"status": 200, "truncate": true, "body": "{\"data\": {\"type\": \"session\", \"id\": \"x\"}}"}'
	bad_post 111 '{"close": true}'
	bad_post 100 '{"status": 200, "huge": 20000000}'
	[[ $stderr == *"/v3.0/sessions: reply larger than 16777216 bytes" ]]
}

@test "kl-session: POST /sessions: 201, or 400 with the verifier's text, is permanent" {
	bad_post 100 "{\"status\": 201, \"body\": $(challenge_reply .)}"
	[[ $stderr == *"/v3.0/sessions: HTTP 201 (JSON reply of "*" bytes)" ]]
	bad_post 100 '{"status": 400, "body": {"errors": [{"status": "400", "title": "Bad Request",
		"detail": "agent_id is required"}]}}'
	[[ $stderr == *"/v3.0/sessions: HTTP 400 Bad Request: agent_id is required" ]]
}

# ---------------------------------------- malformed replies, PATCH /sessions/ID

# bad_patch CODE RULE: the real challenge, then a fault on the PATCH.
bad_patch() {
	faults_clear
	fault "$(jq -c '. + {"method": "PATCH", "path": "^/v3.0/sessions/"}' <<<"$2")"
	run "-$1" --separate-stderr kl_run kl-session <"$REG"
	[ -z "$output" ]
	one_error session
	[ "$(nreq '^/v3.0/sessions/')" = 1 ]
}

# A valid PATCH reply with a token, edited by the jq filter $1.
token_reply() {
	jq -c "$1" "$E2E_FIX/session-pass.json"
}

@test "kl-session: PATCH /sessions: 502 with a text body is temporary" {
	bad_patch 111 '{"status": 502, "body": "bad gateway\u0000\u001b[1m"}'
	[[ $stderr == *": HTTP 502 bad gateway??[1m" ]]
}

@test "kl-session: PATCH /sessions: 200 that is not JSON, or without evaluation, is permanent" {
	bad_patch 100 '{"status": 200, "body": "token=abc"}'
	[[ $stderr == *": evaluation (missing): the agent is not enrolled at the verifier, or the challenge expired" ]]
	bad_patch 100 "{\"status\": 200, \"body\": $(token_reply 'del(.data.attributes.evaluation)')}"
	bad_patch 100 "{\"status\": 200, \"body\": $(token_reply '.data.attributes.evaluation = "maybe"')}"
}

@test "kl-session: PATCH /sessions: pass without a well-formed token or expiry is permanent" {
	bad_patch 100 "{\"status\": 200, \"body\": $(token_reply 'del(.data.attributes.token)')}"
	[[ $stderr == *": evaluation pass without a well-formed token" ]]
	bad_patch 100 "{\"status\": 200, \"body\": $(token_reply '.data.attributes.token = "abc\ndef.ghijkl"')}"
	bad_patch 100 "{\"status\": 200, \"body\": $(token_reply '.data.attributes.token = 42')}"
	bad_patch 100 "{\"status\": 200, \"body\": $(token_reply '.data.attributes.token_expires_at = "soon"')}"
	[[ $stderr == *": token_expires_at is not a time" ]]
}

@test "kl-session: PATCH /sessions: pass without token_expires_at assumes 15 minutes" {
	fault "{\"method\": \"PATCH\", \"path\": \"^/v3.0/sessions/\", \"status\": 200,
		\"body\": $(token_reply 'del(.data.attributes.token_expires_at)')}"
	run -0 --separate-stderr kl_run kl-session <"$REG"
	jq -e --arg lo "$(iso_in 890)" --arg hi "$(iso_in 910)" \
		'.session.token == "f2072e19-4955-446c-b66a-5a9b3b410424.9XG-CNShsUE-O7m1O00LZZcdndmdRM2HaIc-KWKRPWM"
		and .session.expires_at > $lo and .session.expires_at < $hi' <<<"$output"
}

@test "kl-session: PATCH /sessions: truncated or no reply is temporary, 20 MB or 204 permanent" {
	bad_patch 111 '{"status": 200, "truncate": true, "body": "{\"data\": {\"attributes\": {\"token\": \"x\"}}}"}'
	bad_patch 111 '{"close": true}'
	bad_patch 100 '{"status": 200, "huge": 20000000}'
	[[ $stderr == *": reply larger than 16777216 bytes" ]]
	bad_patch 100 '{"status": 204}'
	[[ $stderr == *": HTTP 204 (empty body)" ]]
}

@test "kl-session: the TPM is free while it waits for the verifier" {
	local n
	fault '{"method": "PATCH", "path": "^/v3.0/sessions/", "delay": 2}'
	kl_run kl-session <"$REG" >"$BATS_TEST_TMPDIR/out.json" 3>&- &
	for ((n = 0; n < 200; n++)); do
		[ "$(nreq '^/v3.0/sessions/')" = 1 ] && break
		sleep 0.05
	done
	# The proof is made and sent; the answer is 2 s away.
	timeout 1 tpm2_pcrread sha256:0 >/dev/null
	wait $!
	jq -e .session.token "$BATS_TEST_TMPDIR/out.json"
}

# ------------------------------------------------- the kept token (kl_token.h)

@test "kl-session: a second run within the token's lifetime takes the kept token: no PoP" {
	run -0 kl_run kl-session <"$REG"
	local s1=$output
	[ "$(stat -c %a "$KDIR/kl-session.json")" = 600 ]
	jq -e --argjson s "$(jq -c .session <<<"$s1")" '. == $s' "$KDIR/kl-session.json"
	faults_clear
	run -0 --separate-stderr kl_run kl-session --verbose <"$REG"
	[ "$output" = "$s1" ]
	[ "$(requests | jq length)" = 0 ]
	[[ $stderr == *"info: reusing the session token valid until $(jq -r .session.expires_at <<<"$s1")" ]]
	# And the verifier takes it.
	kl_run kl-negotiate <<<"$output" >/dev/null
}

@test "kl-session: the kept token is dropped on 401 from kl-negotiate or kl-submit, and only that token" {
	local t=$BATS_TEST_TMPDIR
	kl_run kl-session <"$REG" >"$t/s1.json"
	# A 401 for another token (an old document) leaves the kept one.
	run -2 kl_run kl-negotiate < <(jq -c '.session.token = "00000000-0000-4000-8000-000000000000.x"' "$t/s1.json")
	[ -e "$KDIR/kl-session.json" ]
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	run -2 kl_run kl-negotiate <"$t/s1.json"
	[ ! -e "$KDIR/kl-session.json" ]
	faults_clear
	kl_run kl-session <"$REG" >"$t/s2.json"
	[ "$(nreq '^/v3.0/sessions$')" = 1 ]
	[ "$(jq -r .session.token "$t/s2.json")" != "$(jq -r .session.token "$t/s1.json")" ]
	kl_run kl-negotiate <"$t/s2.json" | kl_run kl-quote >"$t/ev.json"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	run -2 kl_run kl-submit <"$t/ev.json"
	[ ! -e "$KDIR/kl-session.json" ]
	touch "$FILE_D/stale"
}

@test "kl-session: a kept token near its expiry, or for another verifier or agent, is dropped" {
	local tok
	kl_run kl-session <"$REG" >/dev/null
	tok=$(jq -r .token "$KDIR/kl-session.json")
	# Another verifier: dropped before the (failing) PoP there.
	run -111 kl_run kl-session --verifier-url https://127.0.0.1:1 <"$REG"
	[ ! -e "$KDIR/kl-session.json" ]
	kl_run kl-session <"$REG" >/dev/null
	# Another agent: dropped; that agent is not enrolled.
	run -1 kl_run kl-session < <(jq -c '.agent.id = "00000000-0000-4000-8000-000000000000"' "$REG")
	[ ! -e "$KDIR/kl-session.json" ]
	kl_run kl-session <"$REG" >/dev/null
	# 20 s left is too little: a new PoP.
	jq -c --arg soon "$(iso_in 20)" '.expires_at = $soon' "$KDIR/kl-session.json" >"$BATS_TEST_TMPDIR/k"
	cp "$BATS_TEST_TMPDIR/k" "$KDIR/kl-session.json"
	faults_clear
	run -0 kl_run kl-session <"$REG"
	[ "$(nreq '^/v3.0/sessions$')" = 1 ]
	[ "$(jq -r .session.token <<<"$output")" != "$tok" ]
	# Not JSON: dropped, a new PoP, no error.
	echo garbage >"$KDIR/kl-session.json"
	run -0 --separate-stderr kl_run kl-session <"$REG"
	[ -z "$stderr" ]
	[ "$(jq -r .session.token <<<"$output")" = "$(jq -r .token "$KDIR/kl-session.json")" ]
}
