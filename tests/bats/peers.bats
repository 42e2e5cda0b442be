#!/usr/bin/env bats
# peers.bats - the test registrar and verifier (tests/peers) judged with real
# TPM material: a swtpm, tpm2-tools, curl, openssl. The peers must be as strict
# as Keylime (docs/protocol.md sections 2-7), so each check here is one that kl's
# own tests rely on.

load helpers
load fixtures/peers/agent

setup_file() {
	export FX=$BATS_FILE_TMPDIR/fx
	mkdir -p "$FX"
	kl_start_swtpm
	fx_keys
	# A measured boot: the UEFI log's events go into PCRs 0, 4, 7 once.
	local ev
	for ev in $(klfix uefi-log "$FX/uefi.bin"); do
		tpm2_pcrextend "${ev%%:*}:sha256=${ev#*:}" >/dev/null
	done
	# The IMA log starts with boot_aggregate, like a real one.
	: >"$FX/ima.log"
	fx_ima_measure boot_aggregate
	fx_ima_measure /usr/bin/kl-first
	kl_start_registrar
	kl_start_verifier --quote-interval 1
}

teardown_file() {
	kl_stop_peers
	kl_stop_swtpm
}

uuid() { cat /proc/sys/kernel/random/uuid; }

# An agent registered, activated, enrolled with PCRs 0-7 and holding a token.
new_agent() {
	ID=$(uuid)
	fx_register_activate "$ID" "$FX/ak.pub" "$FX/ek.pub" "$FX_AK" "$FX_EK"
	kl_enroll "$ID" "$@"
	TOKEN=$(fx_pop "$ID" "$FX_AK")
}

# One full cycle: negotiate (201), quote, submit (202).
cycle() {
	local ima=()
	[ -s "$FX/ima.log" ] && ima=(--ima-count "$(wc -l <"$FX/ima.log")")
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" "${ima[@]}")" = 201 ] || return 1
	fx_quote "$FX_AK" || return 1
	[ "$(fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima.log")" = 202 ]
}

# The next negotiation at once: the verifier forgets the quote_interval spacing
# (else 429 premature_attestation) instead of the test sleeping it out.
rate_reset() { kl_peer_ctl POST "$KL_VERIFIER_CTL/rate-reset/$ID" >/dev/null; }

verdict() { kl_verdicts "$ID" --wait "$1" | jq -c ".attestations[$(($1 - 1))]"; }

# ------------------------------------------------------------- TPM parsing

@test "peers' checks pass the real Keylime exchange (captured from upstream Keylime) with Keylime's own choices" {
	run -0 klfix check-capture "$BATS_TEST_DIRNAME/fixtures/peers/upstream-exchange"
	jq -e '.register and .blob and .pop == null
		and ([.cycles[] | [.same_choice, .offset, .evaluation, .certified]]
		     == [[true, 0, "pass", 4], [true, 4, "pass", 1], [true, 5, "pass", 1]])' <<<"$output"
}

@test "kltpm: the PCR blob parser is exact (docs/protocol.md 6.3.3)" {
	run -0 "$KL_PYTHON" - "$KL_PEERS_DIR" <<'PY'
import struct, sys
sys.path.insert(0, sys.argv[1])
import kltpm
SHA256 = 0x000B
vals = [bytes([i]) * 32 for i in range(9)]
good = kltpm.build_pcr_blob(SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 10], vals)
def case(name, blob, alg=SHA256):
    try:
        got = kltpm.pcr_values_for_bank(blob, alg)
        print(name, "ok", len(blob), sorted(got))
    except kltpm.TpmError as e:
        print(name, "error:", e)
def patched(off, fmt, value):
    b = bytearray(good); struct.pack_into(fmt, b, off, value); return bytes(b)
case("good", good)
case("trailing", good + b"\0")
case("short", good[:-1])
case("sizeofSelect", patched(6, "<B", 2))
case("slot-size", patched(140, "<H", 65))
case("value-size", patched(140, "<H", 20))
case("extra-pcr", patched(7, "<B", 0x04 | 0x08))
case("other-bank", good, 0x0004)
case("two-banks", patched(0, "<I", 2)[:12] + struct.pack("<HB4sB", 0x0004, 3, bytes([1, 0, 0, 0]), 0) + good[20:])
PY
	[ "${lines[0]}" = "good ok 1200 [0, 1, 2, 3, 4, 5, 6, 7, 10]" ]
	[[ ${lines[1]} == "trailing error: PCR blob: 1201 bytes, expected 1200 for 2 digest blocks" ]]
	[[ ${lines[2]} == "short error: PCR blob: 1199 bytes, expected 1200"* ]]
	[[ ${lines[3]} == "sizeofSelect error: PCR blob: selection 0 has sizeofSelect 2" ]]
	[[ ${lines[4]} == "slot-size error: PCR blob: block 0 slot 0 size 65" ]]
	[[ ${lines[5]} == "value-size error: PCR blob: value 0 is 20 bytes, not 32" ]]
	[[ ${lines[6]} == "extra-pcr error: PCR blob: 9 values for 3 selected PCRs" ]]
	[[ ${lines[7]} == "other-bank error: PCR blob: selects banks ['sha256'], not only sha1" ]]
	[[ ${lines[8]} == "two-banks error: PCR blob: selects banks ['sha256', 'sha1'], not only sha256" ]]
}

# ---------------------------------------------------------------- registrar

@test "registrar: /version, v2 envelope, X-Request-Id echo, /v3.0 is 500" {
	run -0 fx_http GET "$KL_REGISTRAR_URL/version" --header "X-Request-ID: zz-9"
	[ "$output" = 200 ]
	[ "$(fx_header X-Request-Id)" = zz9 ]
	[ "$(fx_header Content-Type)" = application/json ]
	jq -e '.code == 200 and .status == "Success" and .results.current_version == "2.6"
		and (.results.supported_versions | index("3.0"))' "$FX/body"
	[ "$(sed -n 2p "$FX/body")" = '    "code": 200,' ]    # 4-space indent
	run -0 fx_http GET "$KL_REGISTRAR_URL/version"
	grep -qi '^X-Request-Id: *.$' "$FX/hdr"               # present, empty
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"version_status": 404}'
	run -0 fx_http GET "$KL_REGISTRAR_URL/version"
	[ "$output" = 404 ]
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"version_status": 200}'
	run -0 fx_http POST "$KL_REGISTRAR_URL/v3.0/agents/x" "$FX/ek.pub" --ctype application/json
	[ "$output" = 500 ]
	[ ! -s "$FX/body" ]
}

@test "registrar: register, activate the blob in the TPM, auth_tag by openssl -> active" {
	local id secret
	id=$(uuid)
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub"
	[ "$output" = 200 ]
	[[ $(jq -r .results.blob "$FX/body") == utzA3gAAAAEARAAg* ]]
	[ "$(jq -r .results.blob "$FX/body" | base64 -d | wc -c)" = 336 ]
	secret=$(fx_activate "$FX_AK" "$FX_EK")
	[[ $secret =~ ^[A-Za-z0-9]{32}$ ]]
	[ "$(kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$id" | jq -r '.active, .regcount')" = $'false\n1' ]
	jq -n --arg t "$(fx_auth_tag "$secret" "$id")" '{auth_tag: $t}' >"$FX/act.json"
	run -0 fx_http PUT "$KL_REGISTRAR_URL/v2.6/agents/$id/activate" "$FX/act.json" --ctype application/json
	[ "$output" = 200 ]
	jq -e '. == {"code": 200, "status": "Success", "results": {}}' "$FX/body"
	kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$id" | jq -e '.active == true'
}

@test "registrar: HTTPS listener and an ECC P-256 EK (ECDH + KDFe MakeCredential)" {
	local id secret
	id=$(uuid)
	jq -n --arg ak "$(base64 -w0 "$FX/akecc.pub")" --arg ek "$(base64 -w0 "$FX/ekecc.pub")" \
		'{aik_tpm: $ak, ek_tpm: $ek}' >"$FX/reg.json"
	run -0 fx_http POST "$KL_REGISTRAR_TLS_URL/v2.1/agents/$id" "$FX/reg.json" --ctype application/json
	[ "$output" = 200 ]
	secret=$(fx_activate "$FX_AKECC" "$FX_EKECC")
	[[ $secret =~ ^[A-Za-z0-9]{32}$ ]]
	jq -n --arg t "$(fx_auth_tag "$secret" "$id")" '{auth_tag: $t}' >"$FX/act.json"
	run -0 fx_http PUT "$KL_REGISTRAR_TLS_URL/v2.1/agents/$id" "$FX/act.json" --ctype application/json
	[ "$output" = 200 ]
	kl_peer_ctl GET "$KL_REGISTRAR_CTL/requests?method=PUT" |
		jq -e --arg p "/v2.1/agents/$id" '[.[] | select(.path == $p)][0].scheme == "https"'
}

@test "registrar: the auth_tag test vectors of docs/protocol.md 2.5 (openssl and registrar)" {
	[ "$(fx_auth_tag k3J9vQx2Lm8Np4Rt7Yw1Zc6Hb5Gd0Fs2 c0ffee00-1234-4abc-9def-0123456789ab)" = \
		8c5f516f7976d62116237f61c831d247a12fdd64a6a60ff625ebff2430e97b1787f0504d15c91595cee8fd0156b6894f ]
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/agents/c0ffee00-1234-4abc-9def-0123456789ab" || true
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/agents/b8b4f8ff-8720-4a72-9f1b-503f87029ef9" || true
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"challenge": "k3J9vQx2Lm8Np4Rt7Yw1Zc6Hb5Gd0Fs2"}'
	run -0 fx_register c0ffee00-1234-4abc-9def-0123456789ab "$FX/ak.pub" "$FX/ek.pub"
	[ "$output" = 200 ]
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"challenge": "MG4mXQwixurNTQWpHIlATD0cpHJn4uHc"}'
	run -0 fx_register b8b4f8ff-8720-4a72-9f1b-503f87029ef9 "$FX/ak.pub" "$FX/ek.pub"
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"challenge": null}'
	[ "$(fx_activate "$FX_AK" "$FX_EK")" = MG4mXQwixurNTQWpHIlATD0cpHJn4uHc ]
	echo '{"auth_tag": "8c5f516f7976d62116237f61c831d247a12fdd64a6a60ff625ebff2430e97b1787f0504d15c91595cee8fd0156b6894f"}' >"$FX/act.json"
	run -0 fx_http PUT "$KL_REGISTRAR_URL/v2.6/agents/c0ffee00-1234-4abc-9def-0123456789ab" "$FX/act.json" --ctype application/json
	[ "$output" = 200 ]
	echo '{"auth_tag": "d9266b60d722e5338994235993fcef1fa55743a058fd706bf95fec4ff04eec49791d3f44f986b77d46be3e5df7930bbf"}' >"$FX/act.json"
	run -0 fx_http PUT "$KL_REGISTRAR_URL/v2.6/agents/b8b4f8ff-8720-4a72-9f1b-503f87029ef9" "$FX/act.json" --ctype application/json
	[ "$output" = 200 ]
}

@test "registrar: a wrong auth_tag is 400 with the observed text and deletes the agent" {
	local id tag
	id=$(uuid)
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub"
	tag=$(fx_auth_tag AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA "$id")
	jq -n --arg t "$tag" '{auth_tag: $t}' >"$FX/act.json"
	run -0 fx_http PUT "$KL_REGISTRAR_URL/v2.6/agents/$id" "$FX/act.json" --ctype application/json
	[ "$output" = 400 ]
	[ "$(jq -r .status "$FX/body")" = "Auth tag '$tag' for agent '$id' does not match expected value. The agent has been deleted from the database and will need to be restarted to reattempt registration" ]
	run -1 kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$id"
	run -0 fx_http PUT "$KL_REGISTRAR_URL/v2.6/agents/$id" "$FX/act.json" --ctype application/json
	[ "$output" = 404 ]
	[ "$(jq -r .status "$FX/body")" = "Agent with ID '$id' not found" ]
	echo '{}' >"$FX/act.json"                      # no auth_tag at all: 400, empty
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub"
	run -0 fx_http PUT "$KL_REGISTRAR_URL/v2.6/agents/$id" "$FX/act.json" --ctype application/json
	[ "$output" = 400 ]
	[ ! -s "$FX/body" ]
}

@test "registrar: re-registration: same identity renews, another AK is 403, ekcert rules" {
	local id pem
	id=$(uuid)
	klfix ekcert "$FX/ek.pub" "$FX/ek.der"
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub"
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub" "{\"ekcert\": \"$(base64 -w0 "$FX/ek.der")\"}"
	[ "$output" = 200 ]                          # adding the EK certificate later is allowed
	pem=$(openssl x509 -inform der -in "$FX/ek.der")
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub" "$(jq -n --arg p "$pem" '{ekcert: $p}')"
	[ "$output" = 200 ]                          # the same certificate as PEM: unchanged
	kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$id" | jq -e '.regcount == 3 and .active == false'
	run -0 fx_register "$id" "$FX/ak2.pub" "$FX/ek.pub" "$(jq -n --arg p "$pem" '{ekcert: $p}')"
	[ "$output" = 403 ]
	[ "$(jq -r .status "$FX/body")" = "Agent re-registration with different TPM identity is forbidden for security reasons" ]
	run -0 fx_register "$id" "$FX/ak.pub" "$FX/ek.pub"  # dropping the certificate is a change
	[ "$output" = 403 ]
	klfix ekcert "$FX/ekecc.pub" "$FX/ekecc.der"      # a certificate of another key
	run -0 fx_register "$(uuid)" "$FX/ak.pub" "$FX/ek.pub" "{\"ekcert\": \"$(base64 -w0 "$FX/ekecc.der")\"}"
	[ "$output" = 400 ]
	[ "$(jq -r .status "$FX/body")" = "Could not register agent with invalid data" ]
}

@test "registrar: invalid registrations: trailing byte, not an AK, no JSON type, bad JSON" {
	cp "$FX/ek.pub" "$FX/ek-trail.pub" && printf '\0' >>"$FX/ek-trail.pub"
	run -0 fx_register "$(uuid)" "$FX/ak.pub" "$FX/ek-trail.pub"
	[ "$output" = 400 ]
	jq -e '.code == 400 and .status == "Could not register agent with invalid data"' "$FX/body"
	run -0 fx_register "$(uuid)" "$FX/ek.pub" "$FX/ek.pub"     # EK as AK: not a signing key
	[ "$output" = 400 ]
	jq -n --arg ak "$(base64 -w0 "$FX/ak.pub")" --arg ek "$(base64 -w0 "$FX/ek.pub")" \
		'{aik_tpm: $ak, ek_tpm: $ek}' >"$FX/reg.json"
	run -0 fx_http POST "$KL_REGISTRAR_URL/v2.6/agents/$(uuid)" "$FX/reg.json" --ctype text/plain
	[ "$output" = 400 ]
	jq -e '.status == "Could not register agent with invalid data"' "$FX/body"
	echo '{"aik_tpm": ' >"$FX/bad.json"
	run -0 fx_http POST "$KL_REGISTRAR_URL/v2.6/agents/$(uuid)" "$FX/bad.json" --ctype application/json
	[ "$output" = 400 ]
	[ ! -s "$FX/body" ]
	[[ $(fx_header Content-Type) == text/html* ]]
}

# ----------------------------------------------------------------- verifier

@test "verifier: PoP with a raw TPM2_Certify gives a token; a session is single use" {
	local sid
	new_agent
	sid=${TOKEN%%.*}
	[[ $TOKEN =~ ^$sid\.[A-Za-z0-9_-]{43}$ ]]
	jq -e '.data.attributes.evaluation == "pass" and .data.attributes.token_expires_at' "$FX/body"
	run -0 fx_http PATCH "$KL_VERIFIER_URL/v3/sessions/$sid" "$FX/popreq.json"
	[ "$output" = 404 ]
	jq -e '.errors[0] == {"status": "404", "title": "Not Found", "detail": "Session not found"}' "$FX/body"
}

@test "verifier: PoP failures: wrong nonce 401, another AK 401, expired 200 fail, not enrolled 200 fail" {
	local sid ch
	new_agent
	klfix session-body "$ID" >"$FX/sess.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3.0/sessions" "$FX/sess.json" --ctype application/json
	[ "$output" = 200 ]
	sid=$(jq -r .data.id "$FX/body")
	fx_certify "$FX_AK" AAAAAAAAAAAAAAAAAAAAAA==        # not the challenge
	fx_proof "$sid" "$ID"
	run -0 fx_http PATCH "$KL_VERIFIER_URL/v3.0/sessions/$sid" "$FX/popreq.json"
	[ "$output" = 401 ]
	jq -e '.data.attributes.evaluation == "fail" and (.data.attributes | has("token") | not)' "$FX/body"

	fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json" >/dev/null
	sid=$(jq -r .data.id "$FX/body")
	ch=$(jq -r '.data.attributes.authentication_requested[0].chosen_parameters.challenge' "$FX/body")
	fx_certify "$FX_AK2" "$ch"                           # right nonce, wrong key
	fx_proof "$sid" "$ID"
	run -0 fx_http PATCH "$KL_VERIFIER_URL/v3/sessions/$sid" "$FX/popreq.json"
	[ "$output" = 401 ]

	fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json" >/dev/null
	sid=$(jq -r .data.id "$FX/body")
	ch=$(jq -r '.data.attributes.authentication_requested[0].chosen_parameters.challenge' "$FX/body")
	fx_certify "$FX_AK" "$ch"
	fx_proof "$sid" "$ID"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-challenge/$ID"
	run -0 fx_http PATCH "$KL_VERIFIER_URL/v3/sessions/$sid" "$FX/popreq.json"
	[ "$output" = 200 ]
	jq -e '.data.attributes.evaluation == "fail" and .data.attributes.token_expires_at == null' "$FX/body"

	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/agents/$ID"
	run -1 fx_pop "$ID" "$FX_AK"                   # not enrolled: 200, fail, no token
	jq -e '.data.attributes.evaluation == "fail"' "$FX/body"
}

@test "verifier: auth layer: 403 without token or for another agent, 401 bad token, admin-only GET" {
	local other
	new_agent
	other=$ID
	new_agent
	klfix caps-body "$FX/ak.pub" >"$FX/caps.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/caps.json"
	[ "$output" = 403 ]
	jq -e '.errors[0].title == "Forbidden" and .errors[0].detail == "Action submit_attestation requires agent authentication (PoP token)"' "$FX/body"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$other/attestations" "$FX/caps.json" --token "$TOKEN"
	[ "$output" = 403 ]
	jq -e --arg d "Agent $ID cannot access resource $other (ownership required)" '.errors[0].detail == $d' "$FX/body"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/caps.json" --token "x${TOKEN}"
	[ "$output" = 401 ]
	jq -e '.errors[0] == {"status": "401", "title": "Unauthorized", "detail": "Invalid authentication token"}' "$FX/body"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/caps.json" --header "Authorization: Basic $TOKEN"
	[ "$output" = 401 ]
	jq -e '.errors[0].detail == "Invalid Authorization header format"' "$FX/body"
	run -0 fx_http GET "$KL_VERIFIER_URL/v3/agents/$ID/attestations/latest" --token "$TOKEN"
	[ "$output" = 403 ]
	jq -e '.errors[0].detail == "Action read_attestation requires admin authentication (mTLS certificate)"' "$FX/body"
	run -0 fx_http GET "$KL_VERIFIER_URL/v2.6/agents/$ID" --token "$TOKEN"
	[ "$output" = 200 ]
	jq -e '.results.attestation_status == "PENDING" and .results.attestation_count == 0' "$FX/body"
}

@test "verifier: JSON:API rules: 415 wrong type, 400 empty for bad JSON/extra member/null, 500 wrong data.type" {
	new_agent
	klfix caps-body "$FX/ak.pub" >"$FX/caps.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/caps.json" --token "$TOKEN" --ctype application/json
	[ "$output" = 415 ]
	[ ! -s "$FX/body" ]
	echo '{"data": ' >"$FX/bad.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/bad.json" --token "$TOKEN"
	[ "$output" = 400 ]
	[ ! -s "$FX/body" ]
	[[ $(fx_header Content-Type) == text/html* ]]
	jq '. + {extra: 1}' "$FX/caps.json" >"$FX/bad.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/bad.json" --token "$TOKEN"
	[ "$output" = 400 ]
	jq '.data.attributes.system_info = null' "$FX/caps.json" >"$FX/bad.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/bad.json" --token "$TOKEN"
	[ "$output" = 400 ]
	[ ! -s "$FX/body" ]
	jq '.data.type = "session"' "$FX/caps.json" >"$FX/bad.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/bad.json" --token "$TOKEN"
	[ "$output" = 500 ]
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/caps.json" --token "$TOKEN" --ctype "application/vnd.api+json; charset=utf-8"
	[ "$output" = 201 ]
}

@test "verifier: a good quote passes; 201 Location keeps the prefix; 429 too early; evidence_immutable" {
	new_agent
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub"
	[ "$output" = 201 ]
	[ "$(fx_header Location)" = "/v3/agents/$ID/attestations/0" ]
	jq -e --arg l "/v3/agents/$ID/attestations/0" '.data.links.self == $l and (.data | has("id") | not)
		and (.data.attributes.evidence_requested | length == 1)
		and .data.attributes.evidence_requested[0].chosen_parameters.selected_subjects.sha256 == [0,1,2,3,4,5,6,7]' "$FX/body"
	fx_quote "$FX_AK"
	run -0 fx_submit "$ID" "$TOKEN"
	[ "$output" = 202 ]
	[ "$(fx_header Location)" = "/3/agents/$ID/attestations/0" ]
	jq -e '.meta.seconds_to_next_attestation == 1 and .data.attributes.stage == "evaluating_evidence"' "$FX/body"
	verdict 1 | jq -e '.evaluation == "pass" and .failure_reason == null'
	run -0 fx_http PATCH "$KL_VERIFIER_URL/v3/agents/$ID/attestations/0" "$FX/evidence.json" --token "$TOKEN"
	[ "$output" = 403 ]
	jq -e '.errors[0].code == "evidence_immutable"' "$FX/body"
	# Too early: a 60 s interval for this one request, so that a loaded
	# machine cannot let the 1 s interval pass since the submit.
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 60}' >/dev/null
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 1}' >/dev/null
	[ "$output" = 429 ]
	local ra
	ra=$(fx_header Retry-After)
	[ "$ra" -le 60 ]
	[ "$ra" -ge 50 ]
	jq -e '.errors[0].code == "premature_attestation"' "$FX/body"
	rate_reset
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub"     # the other prefix
	[ "$output" = 201 ]
	fx_http POST "$KL_VERIFIER_URL/v3.0/agents/$ID/attestations" "$FX/caps.json" --token "$TOKEN" >/dev/null
	[ "$(fx_header Location)" = "/v3.0/agents/$ID/attestations/2" ]
	run -0 fx_http PATCH "$KL_VERIFIER_URL/v3/agents/$ID/attestations/1" "$FX/evidence.json" --token "$TOKEN"
	[ "$output" = 403 ]
	jq -e '.errors[0].code == "old_attestation"' "$FX/body"
}

@test "verifier: a bad quote signature always fails, even with only an IMA policy" {
	new_agent --pcrs "" --ima-permissive
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count "$(wc -l <"$FX/ima.log")")" = 201 ]
	fx_quote "$FX_AK"
	klfix flip "$FX/q.sig"
	run -0 fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima.log"
	[ "$output" = 202 ]
	verdict 1 | jq -e '.evaluation == "fail" and .failure_reason == "broken_evidence_chain"
		and (.failures[0] | test("signature"))'
}

@test "verifier: wrong nonce, altered PCR blob and a changed PCR fail" {
	local sel hash
	tpm2_pcrreset 23
	new_agent --pcrs 0,23
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub")" = 201 ]
	read -r sel _ hash _ < <(klfix quote-args "$FX/neg.json")
	tpm2_quote -c "$FX_AK" -l "$sel" -q 00112233445566778899aabbccddeeff -g "$hash" \
		-m "$FX/q.msg" -s "$FX/q.sig" -o "$FX/q.pcrs" >/dev/null
	[ "$(fx_submit "$ID" "$TOKEN")" = 202 ]
	verdict 1 | jq -e '.evaluation == "fail" and (.failures[0] | test("nonce"))'
	rate_reset
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub")" = 201 ]
	fx_quote "$FX_AK"
	klfix flip "$FX/q.pcrs" 142                       # first byte of PCR 0's value
	[ "$(fx_submit "$ID" "$TOKEN")" = 202 ]
	verdict 2 | jq -e '.evaluation == "fail" and .failure_reason == "broken_evidence_chain"
		and (.failures[0] | test("pcrDigest"))'
	rate_reset
	tpm2_pcrextend "23:sha256=$(printf '%064d' 1)" >/dev/null
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub")" = 201 ]
	fx_quote "$FX_AK"
	[ "$(fx_submit "$ID" "$TOKEN")" = 202 ]
	verdict 3 | jq -e '.evaluation == "fail" and .failure_reason == "policy_violation"
		and (.failures[0] | test("PCR #23"))'
	tpm2_pcrreset 23
	kl_verdicts "$ID" | jq -e '.status == "FAIL" and .attestation_count == 0'
}

@test "verifier: IMA lines replaying PCR 10 pass, then only new lines are asked for" {
	local n
	new_agent --pcrs 0 --ima-permissive
	n=$(wc -l <"$FX/ima.log")
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count "$n"
	[ "$output" = 201 ]
	jq -e '.data.attributes.evidence_requested | map(.evidence_type) == ["tpm_quote", "ima_log"]
		and .[1].chosen_parameters == {"starting_offset": 0, "format": "text/plain"}' "$FX/body"
	fx_quote "$FX_AK"
	[ "$(fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima.log")" = 202 ]
	verdict 1 | jq -e --argjson n "$n" '.evaluation == "pass" and .starting_offset == 0
		and .ima_entries == $n and .certified_entry_count == $n'
	fx_ima_measure /usr/bin/kl-second
	rate_reset
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count "$((n + 1))"
	jq -e --argjson n "$n" '.data.attributes.evidence_requested[1].chosen_parameters.starting_offset == $n' "$FX/body"
	fx_quote "$FX_AK"
	[ "$(fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima.log")" = 202 ]
	verdict 2 | jq -e --argjson n "$n" '.evaluation == "pass" and .starting_offset == $n
		and .ima_entries == 1 and (.received.ima_entries_text | test("kl-second\n$"))'
	kl_verdicts "$ID" | jq -e '.status == "PASS" and .attestation_count == 2'
	# Too few lines for the announced entry_count: 422.
	rate_reset
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count "$((n + 3))")" = 201 ]
	fx_quote "$FX_AK"
	run -0 fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima.log"
	[ "$output" = 422 ]
	jq -e '.errors[0].detail | test("must contain at least 2 entries")' "$FX/body"
}

@test "verifier: IMA: a line not in PCR 10 breaks the chain, a file outside the allowlist is a violation" {
	local n allow
	allow=$(jq -n --arg a "$(printf %s boot_aggregate | sha256sum | cut -c1-64)" \
		--arg b "$(printf %s /usr/bin/kl-first | sha256sum | cut -c1-64)" \
		'{"boot_aggregate": [$a], "/usr/bin/kl-first": [$b]}')
	new_agent --pcrs "" --ima-allow "$allow"
	head -n -1 "$FX/ima.log" >"$FX/ima-fake.log"       # a line PCR 10 never saw,
	klfix ima-append "$FX/ima-fake.log" /usr/bin/not-measured >/dev/null
	tail -n 1 "$FX/ima.log" >>"$FX/ima-fake.log"       # before the last real one
	n=$(wc -l <"$FX/ima-fake.log")
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count "$n")" = 201 ]
	fx_quote "$FX_AK"
	[ "$(fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima-fake.log")" = 202 ]
	verdict 1 | jq -e '.evaluation == "fail" and .failure_reason == "broken_evidence_chain"
		and any(.failures[]; test("pcr_mismatch"))'
	rate_reset
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count "$(wc -l <"$FX/ima.log")")" = 201 ]
	fx_quote "$FX_AK"
	[ "$(fx_submit "$ID" "$TOKEN" --ima-log "$FX/ima.log")" = 202 ]
	verdict 2 | jq -e '.evaluation == "fail" and .failure_reason == "policy_violation"
		and any(.failures[]; test("allowlist"))'
}

@test "verifier: challenges_expired after the deadline or with no policy at all" {
	new_agent
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub")" = 201 ]
	fx_quote "$FX_AK"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-challenge/$ID"
	run -0 fx_submit "$ID" "$TOKEN"
	[ "$output" = 403 ]
	jq -e '.errors[0].code == "challenges_expired" and .jsonapi.version == "1.1"' "$FX/body"
	kl_enroll "$ID" --pcrs ""                      # re-enrolled without any policy
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub"
	[ "$output" = 201 ]
	jq -e '.data.attributes.evidence_requested == [] and (.data.attributes | has("challenges_expire_at") | not)' "$FX/body"
	[ "$(fx_header Location)" = "/v3/agents/$ID/attestations/0" ]
	run -0 fx_submit "$ID" "$TOKEN"
	[ "$output" = 403 ]
	jq -e '.errors[0].code == "challenges_expired"' "$FX/body"
}

@test "verifier: an expired token is 401, a new PoP works, the newest token wins, passes extend it" {
	local old
	new_agent
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$ID"
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub"
	[ "$output" = 401 ]
	jq -e '.errors[0].detail == "Authentication token expired" and (.errors[0] | has("code") | not)' "$FX/body"
	old=$(fx_pop "$ID" "$FX_AK")
	TOKEN=$(fx_pop "$ID" "$FX_AK")
	run -0 fx_negotiate "$ID" "$old" "$FX/ak.pub"
	[ "$output" = 401 ]
	jq -e '.errors[0].detail == "Authentication session not active"' "$FX/body"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"session_lifetime": 5}'
	TOKEN=$(fx_pop "$ID" "$FX_AK")
	old=$(kl_verdicts "$ID" | jq -r .token_expires_at)
	# No sleep: the times have microseconds, a pass extends to a strictly later one.
	cycle
	verdict 1 | jq -e '.evaluation == "pass"'
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"session_lifetime": 180}'
	[[ $(kl_verdicts "$ID" | jq -r .token_expires_at) > $old ]]
}

@test "verifier: capability checks: 422 shapes, boot_time rules, 500 quirks" {
	new_agent --ima-permissive
	jq '.data.attributes.evidence_supported[0].capabilities.available_subjects = [0,1,2]' \
		<(klfix caps-body "$FX/ak.pub" --ima-count 2) >"$FX/bad.json"
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/agents/$ID/attestations" "$FX/bad.json" --token "$TOKEN"
	[ "$output" = 422 ]
	jq -e '[.errors[].source.pointer] == ["/data/attributes/evidence",
		"/data/attributes/evidence/0/capabilities/available_subjects"]
		and .errors[1].detail == "Attribute '"'evidence'"' must be a dictionary mapping PCR bank names to PCR numbers for tpm_quote evidence."' "$FX/body"
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count 0
	[ "$output" = 422 ]
	jq -e '.errors[0].source.pointer == "/data/attributes/evidence/1/chosen_parameters/starting_offset"' "$FX/body"
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count 2 --boot-time none
	[ "$output" = 422 ]
	jq -e '.errors[0].detail == "Attribute '"'system_info'"' is required."' "$FX/body"
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count 2 --no-quote
	[ "$output" = 422 ]
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count 2 --boot-time 1795000000
	[ "$output" = 201 ]
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --ima-count 2 --boot-time 1794999999
	[ "$output" = 422 ]
	jq -e '.errors[0].detail | test("equal to or greater than the boot time")' "$FX/body"
	kl_enroll "$ID"                                # no IMA policy: missing boot_time is a 500
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --boot-time none
	[ "$output" = 500 ]
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/akecc.pub"   # an ECC key: "ecc" prefixes no scheme
	[ "$output" = 422 ]
	jq -e '.errors[0].detail == "Attribute '"'evidence'"' must be compatible with a given signature schemes."' "$FX/body"
}

@test "verifier: ECC AK: PoP refused like Keylime; with allow_ecc ECDSA PoP and quote pass" {
	ID=$(uuid)
	fx_register_activate "$ID" "$FX/akecc.pub" "$FX/ekecc.pub" "$FX_AKECC" "$FX_EKECC"
	kl_enroll "$ID"                                # like Keylime: PoP is RSASSA/SHA-256 only
	run -1 fx_pop "$ID" "$FX_AKECC"
	[ "$(jq -r .data.attributes.evaluation "$FX/body")" = fail ]
	kl_enroll "$ID" --allow-ecc
	TOKEN=$(fx_pop "$ID" "$FX_AKECC")
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/akecc.pub"
	[ "$output" = 201 ]
	jq -e '.data.attributes.evidence_requested[0].chosen_parameters.signature_scheme == "ecdsa"' "$FX/body"
	fx_quote "$FX_AKECC"
	[ "$(fx_submit "$ID" "$TOKEN")" = 202 ]
	verdict 1 | jq -e '.evaluation == "pass" and .received.signature_scheme == "ecdsa"'
}

@test "verifier: measured boot: uefi_log requested in order and replayed against PCRs 0-7" {
	new_agent --pcrs "" --mb-replay
	run -0 fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --uefi
	[ "$output" = 201 ]
	jq -e '.data.attributes.evidence_requested | map(.evidence_type) == ["tpm_quote", "uefi_log"]
		and .[0].chosen_parameters.selected_subjects.sha256 == [0,1,2,3,4,5,6,7,8,9,11,12,13,14,15]' "$FX/body"
	fx_quote "$FX_AK"
	[ "$(fx_submit "$ID" "$TOKEN" --uefi-log "$FX/uefi.bin")" = 202 ]
	verdict 1 | jq -e '.evaluation == "pass"'
	rate_reset
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub" --uefi)" = 201 ]
	fx_quote "$FX_AK"
	cp "$FX/uefi.bin" "$FX/uefi-bad.bin"
	klfix flip "$FX/uefi-bad.bin" 80              # in the digest of the PCR 0 event
	[ "$(fx_submit "$ID" "$TOKEN" --uefi-log "$FX/uefi-bad.bin")" = 202 ]
	verdict 2 | jq -e '.evaluation == "fail" and .failure_reason == "broken_evidence_chain"'
}

@test "verifier: status PASS -> TIMEOUT -> PASS -> FAIL (sticky), like cvstatus" {
	new_agent
	cycle
	verdict 1 | jq -e '.evaluation == "pass"'
	kl_verdicts "$ID" | jq -e '.status == "PASS" and .attestation_count == 1'
	kl_peer_ctl POST "$KL_VERIFIER_CTL/timeout/$ID" | jq -e '.status == "TIMEOUT"'
	rate_reset
	cycle
	verdict 2 | jq -e '.evaluation == "pass"'
	kl_verdicts "$ID" | jq -e '.status == "PASS" and .attestation_count == 2'
	rate_reset
	[ "$(fx_negotiate "$ID" "$TOKEN" "$FX/ak.pub")" = 201 ]
	fx_quote "$FX_AK"
	klfix flip "$FX/q.msg" 50                     # inside extraData: signature breaks
	[ "$(fx_submit "$ID" "$TOKEN")" = 202 ]
	verdict 3 | jq -e '.evaluation == "fail"'
	rate_reset
	cycle
	verdict 4 | jq -e '.evaluation == "pass"'
	kl_verdicts "$ID" | jq -e '.status == "FAIL" and .consecutive_failures == 1'
}

@test "verifier: session rate limit per agent: 429 with Retry-After" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"session_rate_per_agent": 2}'
	klfix session-body "$(uuid)" >"$FX/sess.json"
	[ "$(fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json")" = 200 ]
	[ "$(fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json")" = 200 ]
	run -0 fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"session_rate_per_agent": 15}'
	[ "$output" = 429 ]
	[[ $(fx_header Retry-After) =~ ^[0-9]+$ ]]
	jq -e '.errors[0].title == "Too Many Requests"' "$FX/body"
}

# ------------------------------------------------------------------- faults

@test "faults: status + Retry-After once, close, truncate, huge, delay; all recorded" {
	local since
	since=$(kl_peer_ctl GET "$KL_REGISTRAR_CTL/requests" | jq 'map(.seq) | max // 0')
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/faults" \
		'{"method": "GET", "path": "^/version$", "status": 503, "headers": {"Retry-After": "3"}, "body": {"x": 1}}'
	run -0 fx_http GET "$KL_REGISTRAR_URL/version"
	[ "$output" = 503 ]
	[ "$(fx_header Retry-After)" = 3 ]
	jq -e '. == {"x": 1}' "$FX/body"
	run -0 fx_http GET "$KL_REGISTRAR_URL/version"
	[ "$output" = 200 ]                            # count 1: used up
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/faults" '[{"path": "/version", "close": true},
		{"path": "/version", "truncate": true, "status": 200},
		{"path": "/version", "huge": 3000000},
		{"path": "/version", "delay": 1}]'
	run -52 curl -sS "$KL_REGISTRAR_URL/version"   # empty reply
	run -18 curl -sS "$KL_REGISTRAR_URL/version"   # partial file
	run -0 curl -sS -o "$FX/huge" -w '%{size_download}' "$KL_REGISTRAR_URL/version"
	[ "$output" = 3000000 ]
	SECONDS=0
	run -0 fx_http GET "$KL_REGISTRAR_URL/version"
	[ "$output" = 200 ] && [ "$SECONDS" -ge 1 ]
	kl_peer_ctl GET "$KL_REGISTRAR_CTL/requests?since=$since&path=^/version$" |
		jq -e '[.[].fault] == [0, null, 1, 2, 3, 4] and .[0].status == 503 and .[2].status == "closed"'
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/faults"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/faults" '{"path": "/sessions$", "status": 503, "count": 2}'
	klfix session-body x >"$FX/sess.json"
	[ "$(fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json")" = 503 ]
	[ "$(fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json")" = 503 ]
	[ "$(fx_http POST "$KL_VERIFIER_URL/v3/sessions" "$FX/sess.json")" = 200 ]
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/faults"
}
