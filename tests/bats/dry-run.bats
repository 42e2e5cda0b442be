#!/usr/bin/env bats
# dry-run.bats - --dry-run of kl-register, kl-session, kl-negotiate and kl-submit
# (kl_http's dry-run mode): the request each would send, as one JSON document,
# exit 0, the token redacted, and no connection opened: the URLs point at a
# listener that records every accept (fixtures/doctor/listener.py).
load helpers
load fixtures/e2e/steps

setup_file() {
	file_start
	file_evidence
}

teardown_file() { file_stop; }

setup() {
	file_use
	L=$BATS_TEST_TMPDIR/listener
	mkdir -p "$L"
	/usr/bin/python3 "$BATS_TEST_DIRNAME/fixtures/doctor/listener.py" "$L" 3>&- &
	LPID=$!
	for ((i = 0; i < 100; i++)); do [ -s "$L/port" ] && break; sleep 0.05; done
	LPORT=$(cat "$L/port")
	# The listener works: a connection to it is recorded.
	curl -s --max-time 2 "http://127.0.0.1:$LPORT/" >/dev/null || true
	[ "$(wc -l <"$L/accepts.log")" = 1 ]
	: >"$L/accepts.log"
}

teardown() {
	kill "$LPID" 2>/dev/null; wait "$LPID" 2>/dev/null || true
}

no_accept() {
	[ ! -s "$L/accepts.log" ] || { echo "a connection was opened" >&2; return 1; }
}

@test "kl-register --dry-run: the registration POST, no GET /version, no connection" {
	run -0 --separate-stderr kl_run kl-register --dry-run --registrar-url "http://127.0.0.1:$LPORT" </dev/null
	no_accept
	jq -e --arg url "http://127.0.0.1:$LPORT/v2.6/agents/$AGENT_ID" '
		.dry_run == true and .method == "POST" and .url == $url
		and .headers["Content-Type"] == "application/json" and (.headers.Authorization == null)
		and (.body | keys) == ["aik_tpm", "ek_tpm", "ekcert"]' <<<"$output"
	# The body is the one a real registration sends: the registrar holds this AK.
	[ "$(jq -r .body.aik_tpm <<<"$output")" = "$(kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$AGENT_ID" | jq -r .aik_tpm)" ]
	[ -z "$stderr" ]
}

@test "kl-session --dry-run: the POST /sessions, no connection" {
	run -0 --separate-stderr kl_run kl-session --dry-run --verifier-url "https://127.0.0.1:$LPORT" <"$D/reg.json"
	no_accept
	jq -e --arg url "https://127.0.0.1:$LPORT/v3.0/sessions" --arg id "$AGENT_ID" '
		.method == "POST" and .url == $url
		and .headers["Content-Type"] == "application/vnd.api+json"
		and .body.data.attributes.agent_id == $id' <<<"$output"
}

@test "kl-negotiate --dry-run: the capabilities POST with the token redacted, no connection" {
	local tok
	tok=$(jq -r .session.token "$SES")
	run -0 --separate-stderr kl_run kl-negotiate --dry-run --verifier-url "https://127.0.0.1:$LPORT" \
		< <(jq -c --arg u "https://127.0.0.1:$LPORT" '.session.verifier_url = $u' "$SES")
	no_accept
	jq -e --arg url "https://127.0.0.1:$LPORT/v3.0/agents/$AGENT_ID/attestations" '
		.method == "POST" and .url == $url and .headers.Authorization == "Bearer <redacted>"
		and .body.data.type == "attestation"
		and (.body.data.attributes.evidence_supported | length) >= 1' <<<"$output"
	[[ $output != *"$tok"* ]] && [[ $stderr != *"$tok"* ]]
	[[ $output != *"${tok#*.}"* ]]
}

@test "kl-submit --dry-run: the evidence PATCH; a saved document is then sent for real" {
	local tok in
	tok=$(jq -r .session.token "$D/quo.json")
	in=$(jq -c --arg v "$KL_VERIFIER_URL" --arg u "https://127.0.0.1:$LPORT" \
		'.challenge.attestation_url |= sub($v; $u)' "$D/quo.json")
	run -0 --separate-stderr kl_run kl-submit --dry-run --verifier-url "https://127.0.0.1:$LPORT" <<<"$in"
	no_accept
	jq -e --argjson in "$in" '.method == "PATCH" and .url == $in.challenge.attestation_url
		and .headers.Authorization == "Bearer <redacted>"
		and .body.data.attributes.evidence_collected == $in.evidence.evidence_collected' <<<"$output"
	[[ $output != *"${tok#*.}"* ]]
	# Against the real verifier URL too: nothing reaches it; the same document then goes for real.
	faults_clear
	run -0 --separate-stderr kl_run kl-submit --dry-run <"$D/quo.json"
	[ "$(requests | jq length)" = 0 ]
	run -0 --separate-stderr kl_run kl-submit <"$D/quo.json"
	[ "$(jq .submission.status <<<"$output")" = 202 ]
}

@test "--dry-run: a request that cannot be sent is still an error; other steps refuse the flag" {
	run -100 --separate-stderr kl_run kl-session --dry-run --verifier-url "ftp://127.0.0.1:$LPORT" <"$D/reg.json"
	[ -z "$output" ]
	one_error session
	[[ $stderr == *"ftp://127.0.0.1:$LPORT"* ]]
	run -100 --separate-stderr kl_run kl-quote --dry-run </dev/null
	run -100 --separate-stderr kl_run kl-agent --dry-run
	no_accept
}
