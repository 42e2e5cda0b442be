#!/usr/bin/env bats
# kl-verdict.bats - the verifier's verdict on submitted evidence, read from the
# agent's own record (GET /v2/agents/{id}) at the strict test verifier: pass,
# fail (a tampered quote, a changed PCR), the sticky FAIL, a slow verifier,
# an expired token, and every malformed record.
load helpers
load fixtures/e2e/steps

# Seconds of verifier delay per second of test time: programs under valgrind
# take seconds to start and stop, and the delay runs from the 202.
SLOW=$([ "${KL_WRAP:-}" = valgrind ] && echo 6 || echo 1)

setup_file() {
	file_start
	file_session
}

teardown_file() { file_stop; }

setup() {
	file_use
	# quote_interval: the agent is TIMEOUT 5 of them after its last verdict.
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" "{\"quote_interval\": $SLOW, \"verify_delay\": 0}" >/dev/null
	# A fresh record for every test (index 0, no verdict yet), with the PCRs as they are now.
	kl_enroll "$AGENT_ID"
	RECORD=$KL_VERIFIER_URL/v2/agents/$AGENT_ID
}

# submitted OUT [JQ]: negotiate, quote, (JQ over the evidence), submit.
submitted() {
	kl_run kl-negotiate <"$SES" | kl_run kl-quote | jq -c "${2:-.}" | kl_run kl-submit >"$1"
}

# tampered OUT: the same, with one byte of the quote's signature inverted.
tampered() {
	local sig=$BATS_TEST_TMPDIR/sig b64
	kl_run kl-negotiate <"$SES" | kl_run kl-quote >"$BATS_TEST_TMPDIR/ev.json"
	jq -r '.evidence.evidence_collected[] | select(.evidence_type == "tpm_quote") | .data.signature' \
		"$BATS_TEST_TMPDIR/ev.json" | base64 -d >"$sig"
	$KLFIX flip "$sig"
	b64=$(base64 -w0 "$sig")
	jq -c --arg s "$b64" '(.evidence.evidence_collected[] | select(.evidence_type == "tpm_quote")
		| .data.signature) = $s' "$BATS_TEST_TMPDIR/ev.json" | kl_run kl-submit >"$1"
}

# The second in which the verifier received the evidence of document $1.
received() { date -u -d "$(jq -r .submission.evidence_received_at "$1")" +%s; }

# ------------------------------------------------------------------ verdicts

@test "kl-verdict: evidence that passes: exit 0, the verdict and the counters of the verifier's record" {
	local e
	submitted "$D/sub.json"
	e=$(received "$D/sub.json")
	faults_clear
	run -0 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	[ -z "$stderr" ]
	jq -e --slurpfile in "$D/sub.json" --argjson e "$e" --arg url "$RECORD" '
		del(.verdict) == $in[0]
		and (.verdict | keys == ["attestation_count", "evidence_received_at", "last_received_quote",
			"last_successful_attestation", "outcome", "polls", "status", "url",
			"verification_seconds", "waited_ms"])
		and .verdict.outcome == "pass" and .verdict.status == "PASS"
		and .verdict.attestation_count == 1
		and .verdict.last_received_quote >= $e
		and .verdict.last_successful_attestation == .verdict.last_received_quote
		and .verdict.verification_seconds == .verdict.last_received_quote - $e
		and .verdict.evidence_received_at == $in[0].submission.evidence_received_at
		and .verdict.polls == 1 and .verdict.url == $url' <<<"$output"
	# One GET of the agent's own record, with its token.
	requests | jq -e --arg p "/v2/agents/$AGENT_ID" --slurpfile in "$D/sub.json" '
		length == 1 and .[0].method == "GET" and .[0].path == $p and .[0].status == 200
		and .[0].headers.authorization == "Bearer " + $in[0].session.token'
	# The same counters as the verifier's own view.
	kl_verdicts "$AGENT_ID" | jq -e --argjson v "$(jq -c .verdict <<<"$output")" '
		.status == $v.status and .attestation_count == $v.attestation_count
		and (.last_received_quote | floor) == $v.last_received_quote'
	# The next cycle's steps drop the verdict with the submission (enrolled
	# again: no quote_interval to wait).
	kl_enroll "$AGENT_ID"
	run -0 --separate-stderr kl_run kl-negotiate <<<"$output"
	jq -e 'has("verdict") or has("submission") | not' <<<"$output"
}

@test "kl-verdict: a tampered quote: exit 1, outcome fail, standing FAIL, one line on what FAIL means" {
	tampered "$D/bad.json"
	run -1 --separate-stderr kl_run kl-verdict <"$D/bad.json"
	one_error verdict
	[[ $stderr == "kl-verdict: error: the verifier failed this evidence (received in second $(received "$D/bad.json")): agent $AGENT_ID is FAIL and stays FAIL, even after passing attestations, until an administrator re-adds it with keylime_tenant" ]]
	jq -e --argjson e "$(received "$D/bad.json")" '
		.verdict.outcome == "fail" and .verdict.status == "FAIL" and .verdict.attestation_count == 0
		and .verdict.last_received_quote >= $e and .verdict.last_successful_attestation == 0' <<<"$output"
	[ "$(kl_verdicts "$AGENT_ID" | jq -r '.attestations[-1].failure_reason')" = broken_evidence_chain ]
}

@test "kl-verdict: a PCR changed after enrollment (tpm2_pcrextend 7): exit 1, outcome fail" {
	tpm2_pcrextend "7:sha256=$(printf '%064d' 7)" >/dev/null
	submitted "$D/sub.json"
	run -1 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	one_error verdict
	jq -e '.verdict.outcome == "fail" and .verdict.status == "FAIL"' <<<"$output"
	[ "$(kl_verdicts "$AGENT_ID" | jq -r '.attestations[-1].failure_reason')" = policy_violation ]
}

@test "kl-verdict: a good submission after a FAIL passes, but the standing stays FAIL: exit 1 until re-added" {
	tampered "$D/bad.json"
	run -1 kl_run kl-verdict <"$D/bad.json"
	# The rule needs the earlier verdict in an earlier second than this
	# evidence; Keylime's quote_interval sees to that (and to this sleep).
	sleep "$SLOW"
	submitted "$D/good.json"
	run -1 --separate-stderr kl_run kl-verdict <"$D/good.json"
	one_error verdict
	[ "$stderr" = "kl-verdict: error: this evidence passed, but the verifier keeps agent $AGENT_ID at FAIL after an earlier failure until an administrator re-adds it with keylime_tenant" ]
	jq -e '.verdict.outcome == "pass" and .verdict.status == "FAIL" and .verdict.attestation_count == 1
		and .verdict.last_successful_attestation == .verdict.last_received_quote' <<<"$output"
	# Re-added (tenant -c add again): the next pass counts.
	kl_enroll "$AGENT_ID"
	submitted "$D/again.json"
	run -0 kl_run kl-verdict <"$D/again.json"
	jq -e '.verdict.outcome == "pass" and .verdict.status == "PASS"' <<<"$output"
}

# ------------------------------------------------------------- waiting

@test "kl-verdict: a verdict that comes late is waited for" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" "{\"verify_delay\": $((2 * SLOW))}" >/dev/null
	submitted "$D/sub.json"
	run -0 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	[ -z "$stderr" ]
	jq -e '.verdict.outcome == "pass" and .verdict.polls > 1 and .verdict.waited_ms >= 1000
		and .verdict.verification_seconds >= 1' <<<"$output"
}

@test "kl-verdict: a verifier slower than verdict_timeout_seconds: exit 111 after the timeout, outcome unknown" {
	local t0 t1
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" "{\"verify_delay\": $((4 * SLOW))}" >/dev/null
	submitted "$D/sub.json"
	t0=$(date +%s%N)
	KEYLIME_AGENT_VERDICT_TIMEOUT_SECONDS=1 run -111 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	t1=$(date +%s%N)
	one_error verdict
	[[ $stderr == "kl-verdict: error: GET $RECORD: no verdict on the evidence received at $(jq -r .submission.evidence_received_at "$D/sub.json") within 1 s (verdict_timeout_seconds); the last verification was at 0" ]]
	(( (t1 - t0) / 1000000 >= 1000 && (t1 - t0) / 1000000 < 3000 * SLOW ))
	# Polled until the deadline (one slow poll under valgrind may take it all).
	jq -e --argjson n "$((SLOW > 1 ? 1 : 2))" '.verdict.outcome == "unknown" and .verdict.status == "PENDING"
		and .verdict.verification_seconds == null and .verdict.polls >= $n
		and (has("retry") | not)' <<<"$output"
	# Meanwhile the verifier takes no new negotiation (503 verification_in_progress).
	run -111 --separate-stderr kl_run kl-negotiate <"$SES"
	[[ $stderr == *"HTTP 503 verification_in_progress"* ]]
	# Once it has judged, the same document gets its verdict.
	run -0 kl_run kl-verdict <"$D/sub.json"
	jq -e --argjson s "$((4 * SLOW - 1))" '.verdict.outcome == "pass" and .verdict.verification_seconds >= $s' <<<"$output"
}

@test "kl-verdict: a verdict from an earlier second is not this evidence's" {
	local e base
	submitted "$D/sub.json"
	e=$(received "$D/sub.json")
	base=$(jq -cn --argjson t "$((e - 1))" '{code: 200, status: "Success", results: {
		attestation_status: "PASS", attestation_count: 5, last_received_quote: $t,
		last_successful_attestation: $t, attestation_period: "2s", maximum_attestation_interval: "10s"}}')
	faults_clear
	fault "$(jq -c '{method: "GET", path: "/v2/agents/", status: 200, count: -1, body: .}' <<<"$base")"
	KEYLIME_AGENT_VERDICT_TIMEOUT_SECONDS=1 run -111 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	jq -e '.verdict.outcome == "unknown" and .verdict.attestation_count == 5' <<<"$output"
	# The same second, with no pass ever (null, as Keylime after a first failure): fail.
	faults_clear
	fault "$(jq -c --argjson t "$e" '.results += {attestation_status: "FAIL", attestation_count: 0,
		last_received_quote: $t, last_successful_attestation: null}
		| {method: "GET", path: "/v2/agents/", status: 200, body: .}' <<<"$base")"
	run -1 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	jq -e '.verdict.outcome == "fail" and .verdict.last_successful_attestation == null
		and .verdict.verification_seconds == 0' <<<"$output"
}

# ------------------------------------------------------------ refusals

@test "kl-verdict: an expired token: exit 2, stdout empty" {
	submitted "$D/sub.json"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	touch "$FILE_D/stale"
	faults_clear
	run -2 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	[ -z "$output" ]
	one_error verdict
	[ "$stderr" = "kl-verdict: error: GET $RECORD: HTTP 401 Unauthorized: Authentication token expired" ]
	[ "$(requests | jq -r '.[0].status')" = 401 ]
}

@test "kl-verdict: no token, no submission, no reference time: no request; an agent not enrolled: 1" {
	local f want
	submitted "$D/sub.json"
	faults_clear
	while IFS='#' read -r code f want; do
		run "-$code" --separate-stderr kl_run kl-verdict < <(jq -c "$f" "$D/sub.json")
		[ -z "$output" ]
		[ "$stderr" = "kl-verdict: error: $want" ] || { printf '%s\n%s\n' "$f" "$stderr"; return 1; }
	done <<-'CASES'
	2#del(.session.token)#stdin: no session.token: run kl-session first
	100#del(.submission)#stdin: "submission" is missing
	100#del(.submission.evidence_received_at)#stdin: submission.evidence_received_at is missing: the verifier's 202 must say when it received the evidence (run kl-submit again)
	100#.submission.evidence_received_at = "yesterday"#stdin: submission.evidence_received_at is not an RFC 3339 time: the verifier's 202 must say when it received the evidence (run kl-submit again)
	100#.agent.id = "../x"#stdin: agent.id is not a Keylime agent id
	CASES
	[ "$(nreq /agents/)" = 0 ]
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/agents/$AGENT_ID" >/dev/null
	run -1 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	[ -z "$output" ]
	[ "$stderr" = "kl-verdict: error: GET $RECORD: HTTP 404 agent id not found" ]
}

@test "kl-verdict: a record with fields missing or malformed: exit 100, one line naming the field" {
	local e base f want
	submitted "$D/sub.json"
	e=$(received "$D/sub.json")
	base=$(jq -cn --argjson t "$e" '{code: 200, status: "Success", results: {
		attestation_status: "PASS", attestation_count: 1, last_received_quote: $t,
		last_successful_attestation: $t, attestation_period: "2s", maximum_attestation_interval: "10s"}}')
	while IFS='#' read -r f want; do
		faults_clear
		fault "$(jq -c "$f"' | {method: "GET", path: "/v2/agents/", status: 200, body: .}' <<<"$base")"
		run -100 --separate-stderr kl_run kl-verdict <"$D/sub.json"
		[ -z "$output" ]
		[ "$stderr" = "kl-verdict: error: GET $RECORD: $want" ] || { printf '%s\n%s\n' "$f" "$stderr"; return 1; }
	done <<-CASES
	del(.results)#results is missing or not an object
	.results = []#results is missing or not an object
	del(.results.attestation_status)#results.attestation_status is missing, not PENDING, PASS, FAIL or TIMEOUT
	.results.attestation_status = "GOOD"#results.attestation_status is malformed, not PENDING, PASS, FAIL or TIMEOUT
	del(.results.attestation_count)#results.attestation_count is missing, not an integer >= 0
	.results.attestation_count = "1"#results.attestation_count is malformed, not an integer >= 0
	.results.attestation_count = null#results.attestation_count is malformed, not an integer >= 0
	del(.results.last_received_quote)#results.last_received_quote is missing, not an integer >= 0 or null
	.results.last_received_quote = -1#results.last_received_quote is malformed, not an integer >= 0 or null
	.results.last_successful_attestation = 1.5#results.last_successful_attestation is malformed, not an integer >= 0 or null
	.results.last_successful_attestation += 1#results.last_successful_attestation $((e + 1)) is after last_received_quote $e
	.results.attestation_count = 0#results.attestation_count is 0 after a pass at $e
	CASES
	faults_clear
	fault '{"method": "GET", "path": "/v2/agents/", "status": 200, "body": "not json"}'
	run -100 --separate-stderr kl_run kl-verdict <"$D/sub.json"
	[ "$stderr" = "kl-verdict: error: GET $RECORD: the 200 is not a JSON object" ]
}
