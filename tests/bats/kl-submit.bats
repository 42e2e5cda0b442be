#!/usr/bin/env bats
# kl-submit.bats - evidence submission (docs/protocol.md §6.1, §6.7, §6.8) against
# the strict test verifier: the PATCH and its 202, evidence that is never sent
# because it is incomplete or stale, the verifier's refusals, and every
# malformed verifier reply.
load helpers
load fixtures/e2e/steps

setup_file() {
	file_start
	file_evidence
}

teardown_file() { file_stop; }

setup() {
	file_use
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 0}' >/dev/null
	QUO=$D/quo.json
}

# fresh_evidence OUT: a new challenge and its evidence, not yet submitted.
fresh_evidence() {
	kl_run kl-negotiate <"$SES" | kl_run kl-quote >"$1"
}

verdict() { kl_verdicts "$AGENT_ID" | jq -r '.attestations[-1].evaluation'; }

# ------------------------------------------------------------------ the 202

@test "kl-submit: the evidence goes to the attestation URL; the 202 gives seconds_to_next_attestation" {
	local in
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 3}' >/dev/null
	fresh_evidence "$BATS_TEST_TMPDIR/quo.json"
	faults_clear
	in=$(jq -c '. + {retry: {after: 2}}' "$BATS_TEST_TMPDIR/quo.json")
	run -0 --separate-stderr kl_run kl-submit <<<"$in"
	[ -z "$stderr" ]
	jq -e --argjson in "$in" --arg now "$(iso_in -5)" '
		(del(.submission) == ($in | del(.retry)))
		and (.submission | keys == ["attestation_url", "evidence_received_at",
			"seconds_to_next_attestation", "status", "submitted_at"])
		and .submission.evidence_received_at >= $now
		and .submission.status == 202 and .submission.attestation_url == $in.challenge.attestation_url
		and (.submission.seconds_to_next_attestation | . == 3 or . == 2)
		and .submission.submitted_at >= $now' <<<"$output"
	# Exactly one request: the PATCH of the evidence, with the token.
	requests | jq -e --argjson in "$in" --arg base "$KL_VERIFIER_URL" '
		length == 1 and .[0].method == "PATCH" and $base + .[0].path == $in.challenge.attestation_url
		and .[0].status == 202
		and .[0].headers.authorization == "Bearer " + $in.session.token
		and .[0].headers["content-type"] == "application/vnd.api+json"
		and (.[0].body | fromjson) == {"data": {"type": "attestation", "attributes":
			{"evidence_collected": $in.evidence.evidence_collected}}}'
	[ "$(verdict)" = pass ]
}

@test "kl-submit: without an attestation URL the evidence goes to .../attestations/latest" {
	fresh_evidence "$BATS_TEST_TMPDIR/quo.json"
	faults_clear
	run -0 --separate-stderr kl_run kl-submit < <(jq -c 'del(.challenge.attestation_url)' "$BATS_TEST_TMPDIR/quo.json")
	jq -e --arg url "$URL/latest" '.submission.attestation_url == $url' <<<"$output"
	[ "$(requests | jq -r '.[0].path')" = "/v3.0/agents/$AGENT_ID/attestations/latest" ]
	[ "$(verdict)" = pass ]
}

# ------------------------------------------------------- nothing is sent

@test "kl-submit: incomplete or mismatched evidence is never sent" {
	local f want
	while IFS='#' read -r f want; do
		run -100 --separate-stderr kl_run kl-submit < <(jq -c "$f" "$QUO")
		[ -z "$output" ]
		if [ "$stderr" != "kl-submit: error: $want" ]; then
			printf 'filter: %s\nstderr: %s\nwant:   %s\n' "$f" "$stderr" "kl-submit: error: $want"
			return 1
		fi
	done <<-'CASES'
	del(.evidence)#stdin: "evidence" is missing
	del(.challenge)#stdin: "challenge" is missing
	.evidence.evidence_collected = []#stdin: evidence has 0 items, the verifier asked for 1
	.evidence.evidence_collected += .evidence.evidence_collected#stdin: evidence has 2 items, the verifier asked for 1
	del(.evidence.evidence_collected)#stdin: evidence.evidence_collected is missing
	.challenge.requested = []#stdin: challenge.requested is missing or empty
	.evidence.challenge = "AAAAAAAAAAAAAAAAAAAAAA=="#stdin: the evidence was quoted for another challenge: run kl-quote again
	.evidence.evidence_collected[0].evidence_type = "ima_log"#stdin: evidence.evidence_collected[0]: is ima_log, the verifier asked for tpm_quote
	.evidence.evidence_collected[0].evidence_class = "log"#stdin: evidence.evidence_collected[0]: is tpm_quote, the verifier asked for tpm_quote
	del(.evidence.evidence_collected[0].data)#stdin: evidence.evidence_collected[0]: "data" is missing
	.evidence.evidence_collected[0].data.signature = ""#stdin: evidence.evidence_collected[0]: data.signature is missing, empty or not base64
	.evidence.evidence_collected[0].data.message = "not base64"#stdin: evidence.evidence_collected[0]: data.message is missing, empty or not base64
	del(.evidence.evidence_collected[0].data.subject_data)#stdin: evidence.evidence_collected[0]: data.subject_data is missing, empty or not base64
	.challenge.requested += ["ima_log"] | .evidence.evidence_collected += [{evidence_class: "log", evidence_type: "ima_log", data: {entry_count: 2, entries: "10 a ima-ng sha256:0 /x\n"}}]#stdin: evidence.evidence_collected[1]: data.entries must be whole lines and data.entry_count their number
	.challenge.requested += ["ima_log"] | .evidence.evidence_collected += [{evidence_class: "log", evidence_type: "ima_log", data: {entry_count: 1, entries: "10 a ima-ng sha256:0 /x"}}]#stdin: evidence.evidence_collected[1]: data.entries must be whole lines and data.entry_count their number
	.challenge.requested += ["uefi_log"] | .evidence.evidence_collected += [{evidence_class: "log", evidence_type: "uefi_log", data: {entries: ""}}]#stdin: evidence.evidence_collected[1]: data.entries is missing, empty or not base64
	CASES
	[ "$(requests | jq length)" = 0 ]
}

@test "kl-submit: an expired challenge is the re-negotiate code, no token the re-authenticate code; no request" {
	run -3 --separate-stderr kl_run kl-submit < <(jq -c '.challenge.expires_at = "2021-01-01T00:00:00Z"' "$QUO")
	[ -z "$output" ]
	[ "$stderr" = "kl-submit: error: challenge expired at 2021-01-01T00:00:00Z: run kl-negotiate again" ]
	run -2 --separate-stderr kl_run kl-submit < <(jq -c 'del(.session)' "$QUO")
	[ -z "$output" ]
	[ "$stderr" = "kl-submit: error: stdin: no session.token: run kl-session first" ]
	[ "$(requests | jq length)" = 0 ]
}

@test "kl-submit: an attestation URL of another host or agent is permanent, without a request" {
	local u
	for u in "https://evil.example/v3.0/agents/$AGENT_ID/attestations/0" \
		"$KL_VERIFIER_URL/v3.0/agents/00000000-0000-4000-8000-000000000000/attestations/0" \
		"$KL_VERIFIER_URL/v3.0/agents/$AGENT_ID/attestations/0/../../x" "/v3.0/sessions"; do
		run -100 --separate-stderr kl_run kl-submit < <(jq -c --arg u "$u" '.challenge.attestation_url = $u' "$QUO")
		[ -z "$output" ]
		[ "$stderr" = "kl-submit: error: stdin: challenge.attestation_url $u is not an attestation of agent $AGENT_ID on $KL_VERIFIER_URL" ]
	done
	[ "$(requests | jq length)" = 0 ]
}

# --------------------------------------------------- the verifier refuses

@test "kl-submit: evidence for a superseded or already answered attestation: re-negotiate (403)" {
	fresh_evidence "$BATS_TEST_TMPDIR/old.json"
	fresh_evidence "$BATS_TEST_TMPDIR/new.json"
	run -3 --separate-stderr kl_run kl-submit <"$BATS_TEST_TMPDIR/old.json"
	[ -z "$output" ]
	[[ $stderr == "kl-submit: error: PATCH $(jq -r .challenge.attestation_url "$BATS_TEST_TMPDIR/old.json"): HTTP 403 old_attestation: Attestation "*" is not the latest attestation of agent '$AGENT_ID'." ]]
	kl_run kl-submit <"$BATS_TEST_TMPDIR/new.json" >/dev/null
	run -3 --separate-stderr kl_run kl-submit <"$BATS_TEST_TMPDIR/new.json"
	[ -z "$output" ]
	[[ $stderr == *": HTTP 403 evidence_immutable: Evidence for attestation "*" has already been received." ]]
	one_error submit
}

@test "kl-submit: a challenge the verifier expired is the re-negotiate code (403 challenges_expired)" {
	fresh_evidence "$BATS_TEST_TMPDIR/quo.json"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-challenge/$AGENT_ID" >/dev/null
	run -3 --separate-stderr kl_run kl-submit <"$BATS_TEST_TMPDIR/quo.json"
	[ -z "$output" ]
	one_error submit
	[[ $stderr == *": HTTP 403 challenges_expired: Challenges for attestation "*" expired at "* ]]
}

@test "kl-submit: an expired token is the re-authenticate code (401)" {
	fresh_evidence "$BATS_TEST_TMPDIR/quo.json"
	touch "$FILE_D/stale"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	run -2 --separate-stderr kl_run kl-submit <"$BATS_TEST_TMPDIR/quo.json"
	[ -z "$output" ]
	[ "$stderr" = "kl-submit: error: PATCH $(jq -r .challenge.attestation_url "$BATS_TEST_TMPDIR/quo.json"): HTTP 401 Unauthorized: Authentication token expired" ]
}

@test "kl-submit: an agent the verifier dropped (404) is the re-negotiate code" {
	fresh_evidence "$BATS_TEST_TMPDIR/quo.json"
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/agents/$AGENT_ID" >/dev/null
	run -3 --separate-stderr kl_run kl-submit <"$BATS_TEST_TMPDIR/quo.json"
	kl_enroll "$AGENT_ID"
	[ -z "$output" ]
	[ "$stderr" = "kl-submit: error: PATCH $(jq -r .challenge.attestation_url "$BATS_TEST_TMPDIR/quo.json"): HTTP 404 not_found: Agent '$AGENT_ID' not found" ]
}

# bad_reply CODE RULE: a fault on the PATCH -> exit CODE, no stdout, one error line.
bad_reply() {
	faults_clear
	fault "$(jq -c '. + {"method": "PATCH", "path": "/attestations/"}' <<<"$2")"
	run "-$1" --separate-stderr kl_run kl-submit <"$QUO"
	[ -z "$output" ]
	one_error submit
	WHAT="kl-submit: error: PATCH $(jq -r .challenge.attestation_url "$QUO")"
}

@test "kl-submit: 422 is refused with the verifier's text" {
	bad_reply 1 '{"status": 422, "body": {"errors": [{"status": "422", "code": "invalid_resource_data",
		"detail": "Attribute '"'"'evidence'"'"' must contain at least the PCRs requested.",
		"source": {"pointer": "/data/attributes/evidence/0/data/subject_data"}}]}}'
	[ "$stderr" = "$WHAT: HTTP 422 invalid_resource_data: Attribute 'evidence' must contain at least the PCRs requested." ]
}

@test "kl-submit: 429 or 503 with Retry-After is temporary with the delay in stdout" {
	faults_clear
	fault '{"method": "PATCH", "path": "/attestations/", "status": 429, "headers": {"Retry-After": "4"}}'
	run -111 --separate-stderr kl_run kl-submit <"$QUO"
	one_error submit
	jq -e --slurpfile in "$QUO" 'del(.retry) == $in[0]
		and .retry == {"step": "kl-submit", "status": 429, "after": 4}' <<<"$output"
	bad_reply 111 '{"status": 503}'
	[ "$stderr" = "$WHAT: HTTP 503 (empty body)" ]
}

# ------------------------------------------------------- malformed replies

@test "kl-submit: 500 with garbage, a truncated reply or none is temporary" {
	bad_reply 111 '{"status": 500, "content_type": "text/html", "body": "<html>Traceback\n  File x</html>"}'
	[ "$stderr" = "$WHAT: HTTP 500 <html>Traceback?  File x</html>" ]
	bad_reply 111 '{"status": 202, "truncate": true, "body": "{\"meta\": {\"seconds_to_next_attestation\": 2}}"}'
	bad_reply 111 '{"close": true}'
	[ "$stderr" = "$WHAT: Empty reply from server" ]
}

@test "kl-submit: 200 instead of 202, a 20 MB reply, 400 or 415 is permanent" {
	bad_reply 100 '{"status": 200, "body": {"meta": {"seconds_to_next_attestation": 2}}}'
	[[ $stderr == "$WHAT: HTTP 200 (JSON reply of "*" bytes)" ]]
	bad_reply 100 '{"status": 202, "huge": 20000000}'
	[ "$stderr" = "$WHAT: reply larger than 16777216 bytes" ]
	bad_reply 100 '{"status": 400, "content_type": "text/html; charset=UTF-8"}'
	[ "$stderr" = "$WHAT: HTTP 400 (empty body)" ]
	bad_reply 100 '{"status": 415}'
}

@test "kl-submit: a 202 whose body is not what docs/protocol.md §6.7 says is still an acceptance" {
	local b
	for b in '"accepted"' '{"meta": {"seconds_to_next_attestation": "2"}}' \
		'{"meta": {"seconds_to_next_attestation": -1}}' '{"data": {}}'; do
		faults_clear
		fault "{\"method\": \"PATCH\", \"path\": \"/attestations/\", \"status\": 202, \"body\": $b}"
		run -0 --separate-stderr kl_run kl-submit <"$QUO"
		jq -e '.submission.status == 202 and .submission.seconds_to_next_attestation == null' <<<"$output"
		[ "${#stderr_lines[@]}" = 1 ] && [[ $stderr == "kl-submit: warning: PATCH "* ]]
	done
}

@test "kl-submit: evidence_received_at is kept for kl-verdict only when it is an RFC 3339 time" {
	local b='{"meta": {"seconds_to_next_attestation": 2}, "data": {"attributes": {"evidence_received_at": '
	fault "{\"method\": \"PATCH\", \"path\": \"/attestations/\", \"status\": 202, \"body\": $b \"soon\"}}}}"
	run -0 --separate-stderr kl_run kl-submit <"$QUO"
	jq -e '.submission.status == 202 and .submission.evidence_received_at == null' <<<"$output"
	[[ $stderr == "kl-submit: warning: PATCH "*": data.attributes.evidence_received_at is not an RFC 3339 time: ignored" ]]
	faults_clear
	fault "{\"method\": \"PATCH\", \"path\": \"/attestations/\", \"status\": 202, \"body\": $b \"2026-11-30T18:00:32.5+00:00\"}}}}"
	run -0 --separate-stderr kl_run kl-submit <"$QUO"
	[ -z "$stderr" ]
	jq -e '.submission.evidence_received_at == "2026-11-30T18:00:32.5+00:00"' <<<"$output"
}

@test "kl-submit: the 202 echoes the evidence: the reply may be as large as three times it" {
	local T=$BATS_TEST_TMPDIR
	"$KL_TOP/scripts/gen-ima-log" -n 40000 >"$T/ima"	# 6 MB of IMA lines
	jq -c --rawfile e "$T/ima" '.challenge.requested += ["ima_log"]
		| .evidence.evidence_collected += [{evidence_class: "log", evidence_type: "ima_log",
			data: {entry_count: 40000, entries: $e}}]' "$QUO" >"$T/big.json"
	fault '{"method": "PATCH", "path": "/attestations/", "status": 202, "huge": 18000000}'
	run -0 --separate-stderr kl_run kl-submit <"$T/big.json"
	jq -e '.submission.status == 202' <<<"$output"
	[[ $stderr == "kl-submit: warning: PATCH "*": 202 without meta.seconds_to_next_attestation" ]]
	[ "$(requests | jq '.[0].body | length')" -gt 6000000 ]
	# The same reply to a small document is over the limit.
	bad_reply 100 '{"status": 202, "huge": 18000000}'
	[ "$stderr" = "$WHAT: reply larger than 16777216 bytes" ]
}
