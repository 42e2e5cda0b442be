#!/usr/bin/env bats
# kl-negotiate.bats - capabilities negotiation (docs/protocol.md §5) against the
# strict test verifier: what kl offers, how it reads the 201, the exit codes of
# the verifier's refusals, and every malformed verifier reply.
load helpers
load fixtures/e2e/steps

# One registered, enrolled agent with a session for the file; its IMA log
# has 3 lines and it has a UEFI log of 3 events (none extended: no policy
# of this agent looks at them).
setup_file() {
	file_start
	for f in boot_aggregate /usr/bin/a /usr/bin/b; do
		$KLFIX ima-append "$IMA_LOG" "$f" >/dev/null
	done
	$KLFIX uefi-log "$D/no-uefi-log" >/dev/null
	file_session
}

teardown_file() { file_stop; }

setup() {
	file_use
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 0}' >/dev/null
}

# The body of the last POST .../attestations the verifier received.
sent() { requests '?method=POST' | jq '.[-1].body | fromjson'; }

# -------------------------------------------------------------- capabilities

@test "kl-negotiate: capabilities from the TPM, the AK, and exact IMA and UEFI entry counts" {
	local boot
	run -0 --separate-stderr kl_run kl-negotiate <"$SES"
	[ -z "$stderr" ]
	boot=$(date -u -d "@$(btime)" +%Y-%m-%dT%H:%M:%SZ)
	sent | jq -e --slurpfile d "$SES" --arg boot "$boot" '
		$d[0].agent.ak as $ak | .data.type == "attestation"
		and (.data.attributes | keys == ["evidence_supported", "system_info"])
		and .data.attributes.system_info == {"boot_time": $boot}
		and (.data.attributes.evidence_supported | length == 3)
		and .data.attributes.evidence_supported[0] == {
			"evidence_class": "certification", "evidence_type": "tpm_quote",
			"capabilities": {
				"component_version": "2.0",
				"hash_algorithms": ["sha256"],
				"signature_schemes": ["rsassa"],
				"available_subjects": {"sha256": [range(0; 24)]},
				"certification_keys": [{
					"key_class": "asymmetric", "key_algorithm": "rsa", "key_size": 2048,
					"server_identifier": "ak", "public": $ak.public,
					"local_identifier": $ak.name,
					"allowable_hash_algorithms": ["sha256"],
					"allowable_signature_schemes": ["rsassa"]}]}}
		and .data.attributes.evidence_supported[1] == {
			"evidence_class": "log", "evidence_type": "uefi_log",
			"capabilities": {"evidence_version": "2.1", "entry_count": 3,
				"supports_partial_access": false, "appendable": false,
				"formats": ["application/octet-stream"]}}
		and .data.attributes.evidence_supported[2] == {
			"evidence_class": "log", "evidence_type": "ima_log",
			"capabilities": {"entry_count": 3, "supports_partial_access": true,
				"appendable": true, "formats": ["text/plain"]}}'
	requests '?method=POST' | jq -e --slurpfile d "$SES" '.[-1].headers |
		.authorization == "Bearer " + $d[0].session.token
		and .["content-type"] == "application/vnd.api+json"'
	# The count follows the log; the boot time does not move within a boot.
	$KLFIX ima-append "$IMA_LOG" /usr/bin/c >/dev/null
	run -0 kl_run kl-negotiate <"$SES"
	sent | jq -e --arg boot "$boot" '.data.attributes.system_info.boot_time == $boot
		and .data.attributes.evidence_supported[2].capabilities.entry_count == 4'
}

@test "kl-negotiate: without IMA and UEFI logs only the quote is offered; an empty IMA log is warned about" {
	# The file's agent with a configuration of its own that names no logs.
	agent_new "$BATS_TEST_TMPDIR"
	rm -f "$IMA_LOG"
	sed -i "s/^uuid = .*/uuid = \"$FILE_ID\"/" "$KEYLIME_AGENT_CONFIG"
	run -0 --separate-stderr kl_run kl-negotiate <"$SES"
	[ -z "$stderr" ]
	sent | jq -e '.data.attributes.evidence_supported | map(.evidence_type) == ["tpm_quote"]'
	: >"$IMA_LOG"
	run -0 --separate-stderr kl_run kl-negotiate <"$SES"
	[ "$stderr" = "kl-negotiate: warning: IMA log $IMA_LOG is empty: not offered" ]
}

@test "kl-negotiate: a malformed or unreadable UEFI log is left out of the offer with one warning" {
	agent_new "$BATS_TEST_TMPDIR"
	rm -f "$IMA_LOG"
	sed -i "s/^uuid = .*/uuid = \"$FILE_ID\"/" "$KEYLIME_AGENT_CONFIG"
	printf 'not a TCG log' >"$D/no-uefi-log"
	run -0 --separate-stderr kl_run kl-negotiate <"$SES"
	[ "$stderr" = "kl-negotiate: warning: UEFI log $D/no-uefi-log: offset 0: truncated event header (13 bytes left, 28 needed): not offered" ]
	sent | jq -e '.data.attributes.evidence_supported | map(.evidence_type) == ["tpm_quote"]'
	jq -e '.challenge.requested == ["tpm_quote"]' <<<"$output"
	rm "$D/no-uefi-log"
	mkdir "$D/no-uefi-log"
	run -0 --separate-stderr kl_run kl-negotiate <"$SES"
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == "kl-negotiate: warning: UEFI log $D/no-uefi-log: "*": not offered" ]]
	sent | jq -e '.data.attributes.evidence_supported | map(.evidence_type) == ["tpm_quote"]'
}

# ------------------------------------------------------------------ the 201

@test "kl-negotiate: the 201 becomes the challenge member; an earlier cycle's members are dropped" {
	local in v
	in=$(jq -c '. + {evidence: {x: 1}, submission: {y: 2}, retry: {after: 1}, other: [1]}' "$SES")
	run -0 --separate-stderr kl_run kl-negotiate <<<"$in"
	[ -z "$stderr" ]
	v=$(kl_verdicts "$AGENT_ID" | jq -c '.attestations[-1]')
	jq -e --argjson v "$v" --arg url "$URL/$(jq .index <<<"$v")" --slurpfile d "$SES" \
		--arg boot "$(date -u -d "@$(btime)" +%Y-%m-%dT%H:%M:%SZ)" '
		(del(.challenge) == ($d[0] + {other: [1]}))
		and .challenge == {
			"attestation_url": $url, "boot_time": $boot,
			"requested": ["tpm_quote"],
			"expires_at": $v.challenges_expire_at,
			"tpm_quote": {
				"challenge": $v.evidence_requested[0].chosen_parameters.challenge,
				"hash_algorithm": "sha256", "signature_scheme": "rsassa",
				"pcrs": [0, 1, 2, 3, 4, 5, 6, 7]}}' <<<"$output"
}

@test "kl-negotiate: an IMA policy gets ima_log with the verifier's starting_offset and entry_count" {
	fault "$(jq -c --arg id "$AGENT_ID" '{method: "POST", path: "/attestations$", status: 201,
		headers: {Location: "/v3.0/agents/\($id)/attestations/57"},
		body: (.data.attributes.evidence_requested[1].chosen_parameters.entry_count = 1)}' \
		"$E2E_FIX/negotiate-201.json")"
	run -0 --separate-stderr kl_run kl-negotiate <"$SES"
	jq -e --arg url "$URL/57" '.challenge.attestation_url == $url
		and .challenge.requested == ["tpm_quote", "ima_log"]
		and .challenge.ima_log == {"starting_offset": 2, "entry_count": 1}
		and .challenge.tpm_quote.pcrs == [0, 1, 2, 3, 4, 5, 6, 7, 10]
		and .challenge.tpm_quote.challenge == "urffraE4V8+1PcTI0AfBVA=="
		and .challenge.expires_at == "2099-06-01T08:40:04.731201+00:00"' <<<"$output"
	# An absolute Location on the verifier is taken as it is.
	fault "$(jq -c --arg u "$URL/58" '{method: "POST", path: "/attestations$", status: 201,
		headers: {Location: $u}, body: .}' "$E2E_FIX/negotiate-201.json")"
	run -0 kl_run kl-negotiate <"$SES"
	jq -e --arg url "$URL/58" '.challenge.attestation_url == $url
		and .challenge.ima_log.entry_count == null' <<<"$output"
}

# ---------------------------------------------------------------- refusals

@test "kl-negotiate: no token is the re-authenticate code, without a request" {
	run -2 --separate-stderr kl_run kl-negotiate < <(jq -c 'del(.session)' "$SES")
	[ -z "$output" ]
	[ "$stderr" = "kl-negotiate: error: stdin: no session.token: run kl-session first" ]
	[ "$(requests | jq length)" = 0 ]
}

@test "kl-negotiate: an expired token (401) or another agent's (403) is the re-authenticate code" {
	touch "$FILE_D/stale"
	kl_run kl-session <"$D/reg.json" >"$BATS_TEST_TMPDIR/ses.json"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	run -2 --separate-stderr kl_run kl-negotiate <"$BATS_TEST_TMPDIR/ses.json"
	[ -z "$output" ]
	[ "$stderr" = "kl-negotiate: error: POST $URL: HTTP 401 Unauthorized: Authentication token expired" ]
	# A valid token of another agent.
	kl_run kl-session <"$D/reg.json" >"$BATS_TEST_TMPDIR/ses.json"
	run -2 --separate-stderr kl_run kl-negotiate < <(jq -c \
		'.agent.id = "00000000-0000-4000-8000-000000000000"' "$BATS_TEST_TMPDIR/ses.json")
	[ -z "$output" ]
	[[ $stderr == "kl-negotiate: error: POST $KL_VERIFIER_URL/v3.0/agents/00000000-0000-4000-8000-000000000000/attestations: HTTP 403 Forbidden: Agent $AGENT_ID cannot access resource"* ]]
}

@test "kl-negotiate: an agent the verifier does not know (404) is refused with its text" {
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/agents/$AGENT_ID" >/dev/null
	run -1 --separate-stderr kl_run kl-negotiate <"$SES"
	kl_enroll "$AGENT_ID"
	[ -z "$output" ]
	[ "$stderr" = "kl-negotiate: error: POST $URL: HTTP 404 not_found: Agent '$AGENT_ID' not found" ]
}

@test "kl-negotiate: capabilities the policy cannot use (422) are refused with the verifier's text" {
	kl_enroll "$AGENT_ID" --hash-algs sha384
	run -1 --separate-stderr kl_run kl-negotiate <"$SES"
	kl_enroll "$AGENT_ID"
	[ -z "$output" ]
	[ "$stderr" = "kl-negotiate: error: POST $URL: HTTP 422 invalid_resource_data: Attribute 'evidence' must have 'tpm_quote' with capabilities which are valid and satisfy agent policy (check PCR banks in 'available_subjects')." ]
}

@test "kl-negotiate: an agent enrolled without any policy gets nothing to prove: exit 1" {
	kl_enroll "$AGENT_ID" --pcrs ""
	run -1 --separate-stderr kl_run kl-negotiate <"$SES"
	kl_enroll "$AGENT_ID"
	[ -z "$output" ]
	[ "$stderr" = "kl-negotiate: error: POST $URL: the verifier requests no evidence: the agent was enrolled without a TPM or runtime policy (re-enroll it with one)" ]
}

@test "kl-negotiate: too early (429 premature_attestation) is temporary with the verifier's delay" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 30}' >/dev/null
	cycle "$SES" "$BATS_TEST_TMPDIR/c"
	run -111 --separate-stderr kl_run kl-negotiate <"$SES"
	one_error negotiate
	[[ $stderr == "kl-negotiate: error: POST $URL: HTTP 429 premature_attestation: Cannot create attestation for agent '$AGENT_ID' before the configured interval has elapsed. Wait "*" seconds before trying again." ]]
	jq -e --slurpfile in "$SES" 'del(.retry) == $in[0] and .retry.step == "kl-negotiate"
		and .retry.status == 429 and .retry.after >= 28 and .retry.after <= 30' <<<"$output"
}

@test "kl-negotiate: 503 with Retry-After writes the delay; without it stdout stays empty" {
	fault '{"method": "POST", "path": "/attestations$", "status": 503, "headers": {"Retry-After": "7"},
		"body": {"errors": [{"status": "503", "code": "verification_in_progress", "detail": "busy"}]}}'
	run -111 --separate-stderr kl_run kl-negotiate <"$SES"
	[ "$stderr" = "kl-negotiate: error: POST $URL: HTTP 503 verification_in_progress: busy" ]
	jq -e '.retry == {"step": "kl-negotiate", "status": 503, "after": 7}' <<<"$output"
	fault '{"method": "POST", "path": "/attestations$", "status": 503}'
	run -111 --separate-stderr kl_run kl-negotiate <"$SES"
	[ -z "$output" ]
	[ "$stderr" = "kl-negotiate: error: POST $URL: HTTP 503 (empty body)" ]
}

@test "kl-negotiate: an unreachable TPM is temporary, before any request" {
	local port
	port=$(kl_free_port 2)
	run -111 --separate-stderr kl_run kl-negotiate --tcti "swtpm:host=127.0.0.1,port=$port" <"$SES"
	[ -z "$output" ]
	one_error negotiate
	[ "$(requests | jq length)" = 0 ]
}

# ----------------------------------------------------- malformed 201 replies

# bad_201 CODE FILTER [HEADERS]: the verifier answers 201 with negotiate-201.json
# edited by FILTER (jq, $id is the agent id) and a Location of this agent
# unless HEADERS (a JSON object) says otherwise.
bad_201() {
	local body headers=${3:-}
	body=$(jq -cr --arg id "$AGENT_ID" "$2" "$E2E_FIX/negotiate-201.json")
	[ -n "$headers" ] || headers="{\"Location\": \"/v3.0/agents/$AGENT_ID/attestations/57\"}"
	bad_reply "$1" "{\"status\": 201, \"headers\": $headers, \"body\": $(jq -Rs . <<<"$body")}"
}

# bad_reply CODE RULE: a fault on the POST -> exit CODE, no stdout, one error line.
bad_reply() {
	faults_clear
	fault "$(jq -c '. + {"method": "POST", "path": "/attestations$"}' <<<"$2")"
	run "-$1" --separate-stderr kl_run kl-negotiate <"$SES"
	[ -z "$output" ]
	one_error negotiate
}

@test "kl-negotiate: 500 with an HTML page or an empty body is temporary" {
	bad_reply 111 '{"status": 500, "content_type": "text/html", "body": "<h1>500: Internal Server Error</h1>"}'
	[ "$stderr" = "kl-negotiate: error: POST $URL: HTTP 500 <h1>500: Internal Server Error</h1>" ]
	bad_reply 111 '{"status": 500}'
}

@test "kl-negotiate: 201 that is not JSON, or JSON without evidence_requested, is permanent" {
	bad_201 100 'tostring | .[0:100]'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply is not a JSON:API attestation with evidence_requested" ]
	bad_201 100 'del(.data.attributes.evidence_requested)'
	bad_201 100 '.data.attributes.evidence_requested = {}'
	bad_201 100 '.data = [.data]'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply is not a JSON:API attestation with evidence_requested" ]
}

@test "kl-negotiate: 201 without a Location, or one on another host or agent, is permanent" {
	bad_201 100 . '{}'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply has no Location header" ]
	bad_201 100 . '{"Location": "https://evil.example/v3.0/agents/'"$AGENT_ID"'/attestations/57"}'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply has Location \"https://evil.example/v3.0/agents/$AGENT_ID/attestations/57\", not an attestation of this agent on $KL_VERIFIER_URL" ]
	bad_201 100 . '{"Location": "//evil.example/v3.0/agents/'"$AGENT_ID"'/attestations/57"}'
	bad_201 100 . '{"Location": "/v3.0/agents/00000000-0000-4000-8000-000000000000/attestations/57"}'
	bad_201 100 . '{"Location": "/v3.0/agents/'"$AGENT_ID"'/attestations/57/../../x"}'
	bad_201 100 . '{"Location": "/v3.0/agents/'"$AGENT_ID"'/attestations/"}'
	bad_201 100 . '{"Location": "/v3.0/agents/'"$AGENT_ID"'/attestations/5 7"}'
}

@test "kl-negotiate: 201 with a bad challenge, expiry or PCR selection is permanent" {
	local q='.data.attributes.evidence_requested[0].chosen_parameters'
	bad_201 100 "$q.challenge = \"not base64!\""
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply has a challenge that is not base64 of 8..64 bytes in evidence_requested[0]" ]
	bad_201 100 "$q.challenge = \"AAAA\""
	bad_201 100 "del($q.challenge)"
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply lacks challenge/hash_algorithm/signature_scheme in evidence_requested[0]" ]
	bad_201 100 'del(.data.attributes.challenges_expire_at)'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply lacks a valid challenges_expire_at" ]
	bad_201 100 '.data.attributes.challenges_expire_at = "tomorrow"'
	bad_201 100 "$q.selected_subjects.sha256 = null"
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply selects no PCRs of the chosen bank in evidence_requested[0]" ]
	bad_201 100 "$q.selected_subjects.sha256 = [0, 24]"
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply selects a PCR outside 0..23 in evidence_requested[0]" ]
	bad_201 100 "$q.selected_subjects.sha256 = [0, \"1\"]"
	bad_201 100 "$q.selected_subjects.sha256 = [7, 7]"
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply selects a PCR twice in evidence_requested[0]" ]
	bad_201 100 ".data.attributes.evidence_requested[1].chosen_parameters.starting_offset = -1"
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply has no valid starting_offset in evidence_requested[1]" ]
	bad_201 100 ".data.attributes.evidence_requested[1].chosen_parameters.entry_count = \"all\""
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply has an invalid entry_count in evidence_requested[1]" ]
}

@test "kl-negotiate: 201 asking for what kl cannot give is permanent" {
	local q='.data.attributes.evidence_requested[0].chosen_parameters'
	bad_201 100 "$q.hash_algorithm = \"sha384\""
	[ "$stderr" = "kl-negotiate: error: POST $URL: the verifier chose rsassa/sha384, but the AK signs only with rsassa/sha256" ]
	bad_201 100 "$q.signature_scheme = \"rsapss\""
	bad_201 100 '.data.attributes.evidence_requested += [{"evidence_class": "log", "evidence_type": "tpm_event_log", "chosen_parameters": {}}]'
	[ "$stderr" = "kl-negotiate: error: POST $URL: the verifier requests evidence type \"tpm_event_log\", which kl does not produce" ]
	bad_201 100 '.data.attributes.evidence_requested |= [.[1]]'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply requests no tpm_quote" ]
	bad_201 100 '.data.attributes.evidence_requested += [.data.attributes.evidence_requested[1]]'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply requests the same evidence twice in evidence_requested[2]" ]
	bad_201 100 '.data.attributes.evidence_requested[1] = "ima_log"'
	[ "$stderr" = "kl-negotiate: error: POST $URL: 201 reply has a malformed evidence_requested[1]" ]
}

@test "kl-negotiate: truncated or no reply is temporary; 20 MB or 200 instead of 201 permanent" {
	bad_reply 111 '{"status": 201, "truncate": true, "headers": {"Location": "/v3.0/x"}}'
	bad_reply 111 '{"close": true}'
	bad_reply 100 '{"status": 201, "huge": 20000000}'
	[ "$stderr" = "kl-negotiate: error: POST $URL: reply larger than 16777216 bytes" ]
	faults_clear
	fault "$(jq -c --arg id "$AGENT_ID" '{method: "POST", path: "/attestations$", status: 200,
		headers: {Location: "/v3.0/agents/\($id)/attestations/57"}, body: .}' "$E2E_FIX/negotiate-201.json")"
	run -100 --separate-stderr kl_run kl-negotiate <"$SES"
	[ -z "$output" ]
	[[ $stderr == "kl-negotiate: error: POST $URL: HTTP 200 (JSON reply of "*" bytes)" ]]
}

@test "kl-negotiate: the TPM is free while it waits for the verifier" {
	local n
	fault '{"method": "POST", "path": "/attestations$", "delay": 2}'
	kl_run kl-negotiate <"$SES" >"$BATS_TEST_TMPDIR/out.json" 3>&- &
	for ((n = 0; n < 200; n++)); do
		[ "$(nreq '/attestations$')" = 1 ] && break
		sleep 0.05
	done
	timeout 1 tpm2_pcrread sha256:0 >/dev/null
	wait $!
	jq -e .challenge.tpm_quote "$BATS_TEST_TMPDIR/out.json"
}
