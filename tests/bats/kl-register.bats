#!/usr/bin/env bats
# kl-register.bats - registration and activation against the strict test
# registrar (tests/peers/registrar.py) with a swtpm per test: the registrar
# itself checks the EK, the AK, the activation and the auth_tag.
load helpers

setup_file() {
	kl_start_registrar 3>&-
	export REG_HTTP_PORT=${KL_REGISTRAR_URL##*:} REG_TLS_PORT=${KL_REGISTRAR_TLS_URL##*:}
}

teardown_file() {
	kl_stop_peers
}

setup() {
	local v
	unset KEYLIME_AGENT_CONFIG KEYLIME_DIR TCTI
	for v in $(compgen -e); do
		[[ $v == KEYLIME_AGENT_* ]] && unset "$v"
	done
	export KL_SYSCONFDIR=$BATS_TEST_TMPDIR/etc
	mkdir -p "$KL_SYSCONFDIR"
	export KEYLIME_DIR=$BATS_TEST_TMPDIR/kd
	export KEYLIME_AGENT_REGISTRAR_PORT=$REG_HTTP_PORT
	ID=$(cat /proc/sys/kernel/random/uuid)
	export KEYLIME_AGENT_UUID=$ID
	AKF=$KEYLIME_DIR/agent_data.json
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/faults" >/dev/null
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/requests" >/dev/null
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"current_version": "2.6", "version_status": 200,
		"supported_versions": ["2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "3.0"],
		"challenge": null}' >/dev/null
	kl_start_swtpm 3>&-
}

teardown() {
	kl_stop_swtpm
}

# reg CODE [ARGS...]: kl-register with an empty stdin, expecting exit CODE.
reg() {
	local code=$1
	shift
	run "-$code" --separate-stderr kl_run kl-register "$@" </dev/null
}

# line TEXT: stderr is exactly this one line.
line() {
	if [ "$stderr" != "$1" ]; then
		printf 'stderr: %s\nwant:   %s\n' "$stderr" "$1"
		return 1
	fi
}

notice_ok() {
	line "kl-register: notice: agent $1 registered and activated at ${2:-$KL_REGISTRAR_URL} (API ${3:-2.6})"
}

fault() { kl_peer_ctl POST "$KL_REGISTRAR_CTL/faults" "$1" >/dev/null; }
requests() { kl_peer_ctl GET "$KL_REGISTRAR_CTL/requests$1"; }
record() { kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$1"; }
aksum() { sha256sum "$AKF" | cut -d' ' -f1; }

# No transient object or session left in the TPM (swtpm has three slots).
tpm_clean() {
	[ -z "$(tpm2_getcap handles-transient)" ] && [ -z "$(tpm2_getcap handles-loaded-session)" ]
}

# A first successful registration; SUM is the AK file's checksum after it.
registered() {
	reg 0
	record "$ID" | jq -e '.active == true' >/dev/null
	SUM=$(aksum)
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/requests" >/dev/null
}

# fails_intact CODE LINE: exit CODE, stdout empty, stderr LINE, AK file and TPM clean.
fails_intact() {
	reg "$1"
	[ -z "$output" ]
	line "$2"
	[ "$(aksum)" = "$SUM" ]
	tpm_clean
}

# --------------------------------------------------------------- registration

@test "first registration: the agent member, active at the registrar with exactly that AK" {
	run -0 --separate-stderr kl_run kl-register \
		<<<'{"schema":1,"x":{"keep":[1]},"session":{"token":"a.b"},"retry":{"after":1}}'
	notice_ok "$ID"
	jq -e --arg id "$ID" --arg url "$KL_REGISTRAR_URL" --arg path "$AKF" '
		.schema == 1 and .x == {"keep": [1]} and (has("session") | not) and (has("retry") | not)
		and (.agent | keys == ["ak", "ek", "id", "registered_at", "registrar"])
		and .agent.id == $id and .agent.registrar == {"url": $url, "api_version": "2.6"}
		and (.agent.ak | keys == ["data_path", "hash_alg", "key_algorithm", "key_size", "name",
			"public", "signing_alg"])
		and .agent.ak.data_path == $path and .agent.ak.key_algorithm == "rsa"
		and .agent.ak.key_size == 2048 and .agent.ak.hash_alg == "sha256"
		and .agent.ak.signing_alg == "rsassa"
		and (.agent.ak.public | startswith("ARgAAQALAAUAcgAAABAAFAALCAAAAAAAAQ"))
		and (.agent.ek.public | startswith("AToAAQALAAMAsgAgg3GXZ0SE"))
		and .agent.ek.algorithm == "rsa" and .agent.ek.handle == "transient"
		and .agent.ek.certificate == true
		and (.agent.registered_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))' <<<"$output"
	# The registrar verified the activation, and holds the AK of the output.
	record "$ID" | jq -e --argjson a "$(jq .agent <<<"$output")" '
		.active == true and .regcount == 1 and .aik_tpm == $a.ak.public
		and .ek_tpm == $a.ek.public and .api_version == "2.6" and .scheme == "http"'
	# The AK file: 0600, its public blob is agent.ak.public (what kl_identity checks).
	[ "$(stat -c %a "$AKF")" = 600 ]
	[ "$(jq -r .ak.public "$AKF")" = "$(jq -r .agent.ak.public <<<"$output")" ]
	[ "$(jq -r .ak.private "$AKF" | base64 -d | wc -c)" -gt 100 ]
	# name = 000b || SHA-256(TPMT_PUBLIC) (docs/protocol.md §8.3)
	[ "$(jq -r .agent.ak.name <<<"$output")" = \
		"000b$(jq -r .agent.ak.public <<<"$output" | base64 -d | tail -c +3 | sha256sum | cut -c1-64)" ]
	tpm_clean
}

@test "the requests: GET /version, POST with EK/AK/base64 DER ekcert only, PUT with auth_tag" {
	local body der
	reg 0
	[ "$(requests | jq -r '[.[] | .method + " " + .path] | join(",")')" = \
		"GET /version,POST /v2.6/agents/$ID,PUT /v2.6/agents/$ID" ]
	# Content-Type only with a body: upstream answers 400 to GET /version with one.
	requests | jq -e '(.[0].headers | has("content-type") | not)
		and all(.[1:][]; .headers["content-type"] == "application/json")'
	body=$(requests '?method=POST' | jq -r '.[0].body')
	jq -e 'keys == ["aik_tpm", "ek_tpm", "ekcert"]' <<<"$body"
	tpm2_nvread -C 0x01c00002 0x01c00002 -o "$BATS_TEST_TMPDIR/nv.der" 2>/dev/null
	der=$(openssl x509 -inform DER -in "$BATS_TEST_TMPDIR/nv.der" -outform DER | base64 -w0)
	[ "$(jq -r .ekcert <<<"$body")" = "$der" ]
	requests '?method=PUT' | jq -e '.[0].body | fromjson | keys == ["auth_tag"]
		and (.auth_tag | test("^[0-9a-f]{96}$"))'
}

@test "auth_tag: the test vector of docs/protocol.md §2.5 (fixed registrar challenge)" {
	export KEYLIME_AGENT_UUID=c0ffee00-1234-4abc-9def-0123456789ab
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/agents/$KEYLIME_AGENT_UUID" >/dev/null || true
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"challenge": "k3J9vQx2Lm8Np4Rt7Yw1Zc6Hb5Gd0Fs2"}'
	reg 0
	requests '?method=PUT' | jq -e '(.[0].body | fromjson | .auth_tag) ==
		"8c5f516f7976d62116237f61c831d247a12fdd64a6a60ff625ebff2430e97b1787f0504d15c91595cee8fd0156b6894f"'
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/agents/$KEYLIME_AGENT_UUID" >/dev/null
}

@test "a second run reuses the AK: same AK, AK file untouched, regcount 2" {
	local first
	reg 0
	first=$(jq -r .agent.ak.public <<<"$output")
	SUM=$(aksum)
	reg 0
	notice_ok "$ID"
	[ "$(jq -r .agent.ak.public <<<"$output")" = "$first" ]
	[ "$(aksum)" = "$SUM" ]
	record "$ID" | jq -e '.active == true and .regcount == 2'
	tpm_clean
}

@test "AK file deleted: the registrar refuses the new AK; exit 100 and what to do" {
	registered
	rm "$AKF"
	reg 100
	[ -z "$output" ]
	line "kl-register: error: POST $KL_REGISTRAR_URL/v2.6/agents/$ID: HTTP 403: the registrar already holds agent $ID with another EK/AK; delete it at the registrar (keylime_tenant -c regdelete -u $ID) or restore the AK file $AKF"
	# The new AK was persisted before the POST: after regdelete it registers as it is.
	[ -s "$AKF" ]
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/agents/$ID" >/dev/null
	reg 0
	record "$ID" | jq -e --arg ak "$(jq -r .ak.public "$AKF")" '.active and .aik_tpm == $ak'
	tpm_clean
}

@test "works from the configuration alone: agent.conf, no environment for the registrar" {
	unset KEYLIME_AGENT_REGISTRAR_PORT KEYLIME_AGENT_UUID
	printf '[agent]\nuuid = "%s"\nregistrar_ip = "127.0.0.1"\nregistrar_port = %s\ntcti = "%s"\n' \
		"$ID" "$REG_HTTP_PORT" "$TCTI" >"$KL_SYSCONFDIR/agent.conf"
	unset TCTI
	reg 0
	notice_ok "$ID"
}

# ------------------------------------------------------------------ agent id

@test "uuid: an explicit UUID in capitals is used in lowercase" {
	export KEYLIME_AGENT_UUID=${ID^^}
	reg 0
	[ "$(jq -r .agent.id <<<"$output")" = "$ID" ]
	record "$ID" | jq -e .active
}

@test "uuid = generate: made once, kept in the AK file, the same on the next run" {
	local gen
	export KEYLIME_AGENT_UUID=generate
	reg 0
	gen=$(jq -r .agent.id <<<"$output")
	[[ $gen =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
	notice_ok "$gen"
	[ "$(jq -r .agent_id "$AKF")" = "$gen" ]
	record "$gen" | jq -e .active
	reg 0 --agent-identifier generate
	[ "$(jq -r .agent.id <<<"$output")" = "$gen" ]
	record "$gen" | jq -e '.regcount == 2'
}

@test "uuid = generate with an AK file made before: the id is added, the AK kept" {
	local ak gen
	reg 0
	ak=$(jq -r .ak.public "$AKF")
	jq -e 'has("agent_id") | not' "$AKF"
	export KEYLIME_AGENT_UUID=generate
	reg 0
	gen=$(jq -r .agent.id <<<"$output")
	[ "$(jq -r .agent_id "$AKF")" = "$gen" ]
	[ "$(jq -r .ak.public "$AKF")" = "$ak" ]
}

@test "uuid = hash_ek: SHA-256 of the EK in PEM, as tpm2_readpublic -f pem writes it" {
	local want
	export KEYLIME_AGENT_UUID=hash_ek
	tpm2_createek -c "$BATS_TEST_TMPDIR/ek.ctx" -G rsa -u "$BATS_TEST_TMPDIR/ek.pub" >/dev/null
	tpm2_readpublic -c "$BATS_TEST_TMPDIR/ek.ctx" -f pem -o "$BATS_TEST_TMPDIR/ek.pem" >/dev/null
	tpm2_flushcontext -t
	want=$(sha256sum "$BATS_TEST_TMPDIR/ek.pem" | cut -c1-64)
	reg 0
	[ "$(jq -r .agent.id <<<"$output")" = "$want" ]
	notice_ok "$want"
	record "$want" | jq -e .active
}

@test "uuid: a malformed UUID is permanent, before any TPM or registrar access" {
	export KEYLIME_AGENT_UUID=d432fbb3-d2f1-4a97-9ef7-75bd81c0000
	TCTI=swtpm:host=127.0.0.1,port=1 reg 100
	[ -z "$output" ]
	line 'kl-register: error: uuid "d432fbb3-d2f1-4a97-9ef7-75bd81c0000": not a UUID, "generate" or "hash_ek"'
	[ ! -e "$KEYLIME_DIR" ]
	[ "$(requests | jq length)" = 0 ]
	reg 100 --agent-identifier 'no
such'
	line 'kl-register: error: uuid "no?such": not a UUID, "generate" or "hash_ek"'
}

# ------------------------------------------------------------------ TPMs

@test "ECC: P-256 EK from template L-2 with its certificate, ECDSA AK, hash_ek" {
	local want
	kl_stop_swtpm
	kl_start_swtpm --ecc 3>&-
	export KEYLIME_AGENT_TPM_ENCRYPTION_ALG=ecc KEYLIME_AGENT_TPM_SIGNING_ALG=ecdsa
	reg 0
	jq -e '.agent.ek.algorithm == "ecc" and .agent.ek.certificate == true
		and .agent.ak.key_algorithm == "ecc" and .agent.ak.key_size == 256
		and .agent.ak.signing_alg == "ecdsa" and .agent.ak.hash_alg == "sha256"' <<<"$output"
	record "$ID" | jq -e --arg ak "$(jq -r .agent.ak.public <<<"$output")" \
		'.active and .aik_tpm == $ak and .ekcert_der != null'
	tpm_clean
	export KEYLIME_AGENT_UUID=hash_ek
	tpm2_createek -c "$BATS_TEST_TMPDIR/ek.ctx" -G ecc -u "$BATS_TEST_TMPDIR/ek.pub" >/dev/null
	tpm2_readpublic -c "$BATS_TEST_TMPDIR/ek.ctx" -f pem -o "$BATS_TEST_TMPDIR/ek.pem" >/dev/null
	tpm2_flushcontext -t
	want=$(sha256sum "$BATS_TEST_TMPDIR/ek.pem" | cut -c1-64)
	reg 0
	[ "$(jq -r .agent.id <<<"$output")" = "$want" ]
}

@test "a TPM with only the sha256 bank: RSA-PSS and SHA-384 AKs register" {
	tpm2_getcap pcrs | grep -q sha256
	! tpm2_getcap pcrs | grep -Eq 'sha1|sha384|sha512'
	KEYLIME_AGENT_TPM_SIGNING_ALG=rsapss reg 0
	jq -e '.agent.ak.signing_alg == "rsapss"' <<<"$output"
	rm "$AKF"
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/agents/$ID" >/dev/null
	KEYLIME_AGENT_TPM_HASH_ALG=sha384 reg 0
	jq -e '.agent.ak.hash_alg == "sha384" and (.agent.ak.name | startswith("000c"))' <<<"$output"
	record "$ID" | jq -e .active
}

@test "ek_handle: the persistent EK, and tpm_ownerpassword for the endorsement hierarchy" {
	local transient
	reg 0
	transient=$(jq -r .agent.ek.public <<<"$output")
	export KEYLIME_AGENT_EK_HANDLE=0x81010001
	reg 0
	jq -e --arg ek "$transient" '.agent.ek.handle == "0x81010001" and .agent.ek.public == $ek' <<<"$output"
	tpm_clean
	# An endorsement password: the policy sessions need it.
	unset KEYLIME_AGENT_EK_HANDLE
	tpm2_changeauth -c e hex:c0ffee
	reg 100
	[[ $stderr == "kl-register: error: Esys_CreatePrimary: "*"authorization failure"* ]]
	KEYLIME_AGENT_TPM_OWNERPASSWORD=hex:c0ffee reg 0
	notice_ok "$ID"
	[[ $stderr != *c0ffee* ]]
	tpm_clean
}

@test "EK certificate: NV padding is trimmed; a missing one is one warning, not a failure" {
	local der size
	tpm2_nvread -C 0x01c00002 0x01c00002 -o "$BATS_TEST_TMPDIR/cert.der" 2>/dev/null
	size=$(stat -c %s "$BATS_TEST_TMPDIR/cert.der")
	head -c 50 /dev/zero | cat "$BATS_TEST_TMPDIR/cert.der" - >"$BATS_TEST_TMPDIR/padded"
	tpm2_nvundefine -C p 0x01c00002
	tpm2_nvdefine -C p -s $((size + 50)) \
		-a "ppwrite|writedefine|ppread|ownerread|authread|no_da|platformcreate" 0x01c00002 >/dev/null
	tpm2_nvwrite -C p -i "$BATS_TEST_TMPDIR/padded" 0x01c00002
	reg 0
	der=$(requests '?method=POST' | jq -r '.[0].body | fromjson | .ekcert')
	[ "$der" = "$(base64 -w0 "$BATS_TEST_TMPDIR/cert.der")" ]

	tpm2_nvundefine -C p 0x01c00002
	export KEYLIME_AGENT_UUID=$(cat /proc/sys/kernel/random/uuid)
	kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/requests" >/dev/null
	reg 0
	[ "${#stderr_lines[@]}" = 2 ]
	[ "${stderr_lines[0]}" = "kl-register: warning: no rsa EK certificate in NV 0x01c00002: registering without ekcert" ]
	jq -e '.agent.ek.certificate == false' <<<"$output"
	requests '?method=POST' | jq -e '.[0].body | fromjson | has("ekcert") | not'
	record "$KEYLIME_AGENT_UUID" | jq -e .active
}

# ------------------------------------------------------------------ AK file

@test "AK file of other algorithms or another EK: never replaced, exit 100" {
	registered
	KEYLIME_AGENT_TPM_SIGNING_ALG=rsapss fails_intact 100 \
		"kl-register: error: $AKF: its AK was made with sha256/rsassa, the configuration asks for sha256/rsapss; kl-register never replaces an AK: restore tpm_hash_alg/tpm_signing_alg, or move the file away to make a new AK (the registrar then refuses a known agent id until it is deleted there)"
	kl_stop_swtpm
	kl_start_swtpm --ecc 3>&-
	KEYLIME_AGENT_TPM_ENCRYPTION_ALG=ecc KEYLIME_AGENT_TPM_SIGNING_ALG=ecdsa fails_intact 100 \
		"kl-register: error: $AKF: its AK belongs to another EK than this TPM's ecc EK; kl-register never replaces an AK: restore tpm_encryption_alg/ek_handle, or move the file away to make a new AK (the registrar then refuses a known agent id until it is deleted there)"
	[ "$(requests | jq length)" = 0 ]
}

@test "a damaged AK file is permanent and left as it is" {
	mkdir -p "$KEYLIME_DIR"
	printf '{"version":1}\n' >"$AKF"
	SUM=$(aksum)
	fails_intact 100 "kl-register: error: $AKF: ek: missing or not an object"
	[ "$(requests | jq length)" = 0 ]
}

# ------------------------------------------------------------------ registrar

@test "registrar down: temporary, one line, AK file intact" {
	local port
	registered
	port=$(kl_free_port)
	KEYLIME_AGENT_REGISTRAR_PORT=$port reg 111
	[ -z "$output" ]
	[ "${#stderr_lines[@]}" = 1 ]
	[[ $stderr == "kl-register: error: GET http://127.0.0.1:$port/version: Failed to connect to 127.0.0.1 port $port after "*" ms: Couldn't connect to server" ]]
	[ "$(aksum)" = "$SUM" ]
	tpm_clean
}

@test "malformed POST replies: one line, documented code, AK file intact" {
	local url=$KL_REGISTRAR_URL/v2.6/agents/$ID short magic trail
	registered
	fault '{"method": "POST", "status": 200, "body": "not json", "content_type": "application/json"}'
	fails_intact 100 "kl-register: error: POST $url: reply:1:3: '[' or '{' expected"
	fault '{"method": "POST", "status": 200, "body": {"code": 200, "status": "Success", "results": {}}}'
	fails_intact 100 "kl-register: error: POST $url: reply lacks results.blob"
	fault '{"method": "POST", "status": 200, "body": {"code": 200, "results": {"blob": "utzA3g=="}}}'
	fails_intact 100 "kl-register: error: credential blob: 4 bytes, too short"
	short=$(printf '\xba\xdc\xc0\xde\x00\x00\x00\x01\x00\x44\x00\x20abc' | base64 -w0)
	fault "{\"method\": \"POST\", \"status\": 200, \"body\": {\"results\": {\"blob\": \"$short\"}}}"
	fails_intact 100 "kl-register: error: credential blob: credential at offset 8 truncated or too large"
	magic=$( (printf '\xde\xad\xbe\xef\x00\x00\x00\x01\x00\x02ab\x00\x02cd') | base64 -w0)
	fault "{\"method\": \"POST\", \"status\": 200, \"body\": {\"results\": {\"blob\": \"$magic\"}}}"
	fails_intact 100 "kl-register: error: credential blob: bad magic 0xdeadbeef (want 0xbadcc0de)"
	trail=$( (printf '\xba\xdc\xc0\xde\x00\x00\x00\x01\x00\x02ab\x00\x02cdX') | base64 -w0)
	fault "{\"method\": \"POST\", \"status\": 200, \"body\": {\"results\": {\"blob\": \"$trail\"}}}"
	fails_intact 100 "kl-register: error: credential blob: trailing data at offset 16"
	fault '{"method": "POST", "status": 200, "body": {"results": {"blob": "not base64!"}}}'
	fails_intact 100 "kl-register: error: POST $url: results.blob is not base64"
	fault '{"method": "POST", "status": 500, "body": "<html><body>\n<h1>500</h1></body></html>", "content_type": "text/html"}'
	fails_intact 111 "kl-register: error: POST $url: HTTP 500 <html><body>?<h1>500</h1></body></html>"
	fault '{"method": "POST", "status": 400, "body": {"code": 400, "status": "Could not register agent with invalid data", "results": {}}}'
	fails_intact 100 "kl-register: error: POST $url: HTTP 400 Could not register agent with invalid data"
	fault '{"method": "POST", "status": 409, "body": ""}'
	fails_intact 1 "kl-register: error: POST $url: HTTP 409 (empty body)"
	# Nothing reached the PUT; the next run registers as usual.
	[ "$(requests '?method=PUT' | jq length)" = 0 ]
	reg 0
}

@test "a blob the TPM cannot activate: the TPM's error, permanent, objects flushed" {
	local blob
	registered
	blob=$( (printf '\xba\xdc\xc0\xde\x00\x00\x00\x01\x00\x44\x00\x20'; head -c 32 /dev/zero
		head -c 34 /dev/zero; printf '\x01\x00'; head -c 256 /dev/zero) | base64 -w0)
	fault "{\"method\": \"POST\", \"status\": 200, \"body\": {\"results\": {\"blob\": \"$blob\"}}}"
	reg 100
	[ -z "$output" ]
	[[ $stderr == "kl-register: error: Esys_ActivateCredential: "* ]]
	[ "${#stderr_lines[@]}" = 1 ]
	[ "$(aksum)" = "$SUM" ]
	tpm_clean
}

@test "PUT refused: 400 and 404 (the agent is gone) are temporary; a 503 with Retry-After leaves a retry member" {
	local url=$KL_REGISTRAR_URL/v2.6/agents/$ID
	registered
	# The registrar's text quotes the tag sent: it is not shown.
	fault '{"method": "PUT", "status": 400, "body": {"code": 400, "status": "Auth tag '"'"'0123'"'"' does not match", "results": {}}}'
	fails_intact 111 "kl-register: error: PUT $url: HTTP 400: the registrar rejected the auth_tag and deleted agent $ID: the next kl-register registers it again"
	fault '{"method": "PUT", "status": 404, "body": {"code": 404, "status": "Agent not found", "results": {}}}'
	fails_intact 111 "kl-register: error: PUT $url: HTTP 404 Agent not found: the registrar no longer knows agent $ID: the next kl-register registers it again"
	fault '{"method": "POST", "status": 503, "headers": {"Retry-After": "7"}, "body": ""}'
	run -111 --separate-stderr kl_run kl-register <<<'{"schema":1,"keep":true}'
	line "kl-register: error: POST $url: HTTP 503 (empty body)"
	jq -e '. == {"schema": 1, "keep": true, "retry": {"step": "kl-register", "status": 503, "after": 7}}' <<<"$output"
	[ "$(aksum)" = "$SUM" ]
}

@test "/version: non-JSON is permanent, 503 temporary" {
	registered
	fault '{"method": "GET", "path": "^/version$", "status": 200, "body": "<html>", "content_type": "text/html"}'
	fails_intact 100 "kl-register: error: GET $KL_REGISTRAR_URL/version: reply:1:1: '[' or '{' expected"
	fault '{"method": "GET", "path": "^/version$", "status": 200, "body": {"results": {"current_version": "2.6"}}}'
	fails_intact 100 "kl-register: error: GET $KL_REGISTRAR_URL/version: reply lacks results.supported_versions"
	fault '{"method": "GET", "path": "^/version$", "status": 503, "body": ""}'
	fails_intact 111 "kl-register: error: GET $KL_REGISTRAR_URL/version: HTTP 503 (empty body)"
}

# ------------------------------------------------------------------ versions

@test "versions: current_version when enabled, else the newest common one" {
	reg 0
	jq -e '.agent.registrar.api_version == "2.6"' <<<"$output"
	KEYLIME_AGENT_REGISTRAR_API_VERSIONS='2.4, 2.5' reg 0
	jq -e '.agent.registrar.api_version == "2.5"' <<<"$output"
	requests '?method=PUT' | jq -e --arg p "/v2.5/agents/$ID" '.[-1].path == $p'
	KEYLIME_AGENT_REGISTRAR_API_VERSIONS=latest reg 0
	jq -e '.agent.registrar.api_version == "2.6"' <<<"$output"
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"current_version": "3.0",
		"supported_versions": ["1.0", "2.2", "3.0"]}' >/dev/null
	reg 0
	jq -e '.agent.registrar.api_version == "2.2"' <<<"$output"
}

@test "versions: no common version is permanent; a 3.x in the configuration is refused" {
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"current_version": "3.0", "supported_versions": ["1.0", "3.0"]}' >/dev/null
	reg 100
	line "kl-register: error: GET $KL_REGISTRAR_URL/version: the registrar supports API 1.0, 3.0; registrar_api_versions enables 2.6, 2.5, 2.4, 2.3, 2.2, 2.1: none in common"
	KEYLIME_AGENT_REGISTRAR_API_VERSIONS='2.6, 3.0' TCTI=swtpm:host=127.0.0.1,port=1 reg 100
	line 'kl-register: error: registrar_api_versions: "3.0" is not a 2.x API version (kl registers with 2.x only)'
}

@test "versions: without /version, the enabled versions are tried newest first" {
	kl_peer_ctl POST "$KL_REGISTRAR_CTL/config" '{"version_status": 404,
		"supported_versions": ["2.3"]}' >/dev/null
	reg 0
	jq -e '.agent.registrar.api_version == "2.3"' <<<"$output"
	[ "$(requests | jq -r '[.[] | "\(.method) \(.path) \(.status)"] | join(",")')" = \
		"GET /version 404,POST /v2.6/agents/$ID 404,POST /v2.5/agents/$ID 404,POST /v2.4/agents/$ID 404,POST /v2.3/agents/$ID 200,PUT /v2.3/agents/$ID 200" ]
	notice_ok "$ID" "$KL_REGISTRAR_URL" 2.3
}

# ------------------------------------------------------------------ TLS

@test "registrar TLS: HTTPS to registrar_tls_port with the CA, every request over TLS" {
	export KEYLIME_AGENT_REGISTRAR_TLS_ENABLED=true KEYLIME_AGENT_REGISTRAR_TLS_PORT=$REG_TLS_PORT
	export KEYLIME_AGENT_REGISTRAR_TLS_CA_CERT=$KL_TEST_CA
	reg 0
	notice_ok "$ID" "$KL_REGISTRAR_TLS_URL"
	[ "$(requests | jq -r '[.[].scheme] | unique | join(",")')" = https ]
	[ "$(requests | jq length)" = 3 ]
	record "$ID" | jq -e '.active and .scheme == "https"'
}

@test "registrar TLS with the wrong CA: refused, and no request ever goes over plain HTTP" {
	local ca=$BATS_TEST_TMPDIR/other-ca.crt i
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-keyout "$BATS_TEST_TMPDIR/other-ca.key" -out "$ca" -subj "/CN=other CA" 2>/dev/null
	export KEYLIME_AGENT_REGISTRAR_TLS_ENABLED=true KEYLIME_AGENT_REGISTRAR_TLS_PORT=$REG_TLS_PORT
	export KEYLIME_AGENT_REGISTRAR_TLS_CA_CERT=$ca
	for i in 1 2 3; do
		reg 100
		[ -z "$output" ]
		[[ $stderr == "kl-register: error: GET $KL_REGISTRAR_TLS_URL/version: "* ]]
		[ "${#stderr_lines[@]}" = 1 ]
	done
	# registrar down on the TLS port: temporary, and still nothing over HTTP
	KEYLIME_AGENT_REGISTRAR_TLS_PORT=$(kl_free_port) reg 111
	[ "$(requests | jq length)" = 0 ]
	# a plain-HTTP URL is refused before anything is sent
	reg 100 --registrar-url "$KL_REGISTRAR_URL"
	line "kl-register: error: --registrar-url $KL_REGISTRAR_URL: registrar_tls_enabled is set, so plain HTTP is refused: give an https:// URL"
	KEYLIME_AGENT_REGISTRAR_TLS_CA_CERT=$BATS_TEST_TMPDIR/none.crt reg 100
	line "kl-register: error: registrar_tls_ca_cert $BATS_TEST_TMPDIR/none.crt: No such file or directory"
	[ "$(requests | jq length)" = 0 ]
	tpm_clean
}

# ------------------------------------------------------------------ --check

# check_record: the registrar's own record of $ID, as upstream's GET shows it.
check_record() {
	record "$ID" | jq -c '{code: 200, status: "Success", results: {agent_id, ek_tpm, aik_tpm,
		ekcert: .ekcert_der, mtls_cert: null, ip, port, regcount}}'
}

@test "--check: nothing posted; a matching record, an unknown agent, a coming 403" {
	local url=$KL_REGISTRAR_URL/v2.6/agents/$ID
	fault '{"method": "GET", "path": "/agents/", "status": 404, "body": {"code": 404, "status": "Agent not found", "results": {}}}'
	reg 0 --check
	[ -z "$output" ]
	line "kl-register: notice: check: agent $ID: HTTP 404 Agent not found: not registered (or not active): kl-register would register it with a new AK ($AKF does not exist)"
	[ ! -e "$AKF" ]
	[ "$(requests | jq -r '[.[].method] | unique | join(",")')" = GET ]
	tpm_clean

	registered
	fault "{\"method\": \"GET\", \"path\": \"/agents/\", \"status\": 200, \"body\": $(check_record)}"
	reg 0 --check
	line "kl-register: notice: check: agent $ID: the registrar's record matches this TPM's EK and the AK in $AKF: registering again is allowed"

	mv "$AKF" "$AKF.saved"
	fault "{\"method\": \"GET\", \"path\": \"/agents/\", \"status\": 200, \"body\": $(check_record)}"
	reg 100 --check
	line "kl-register: error: check: agent $ID: the registrar holds another AK than this TPM and a new AK ($AKF does not exist): registering would be refused (403); delete it at the registrar (keylime_tenant -c regdelete -u $ID) or restore the AK file $AKF"
	[ ! -e "$AKF" ]
	mv "$AKF.saved" "$AKF"

	fault '{"method": "GET", "path": "/agents/", "status": 403, "body": {"errors": [{"status": "403", "title": "Forbidden", "detail": "admin only"}]}}'
	reg 0 --check
	line "kl-register: warning: check: agent $ID: checked what an agent can see (this TPM's EK, the AK in $AKF, the registrar's API 2.6); not its record: GET $url: HTTP 403 Forbidden: admin only: the registrar shows records only to its administrator: compare there with keylime_tenant -c regstatus -u $ID"
	[ "$(requests '?method=POST' | jq length)" = 0 ]
	[ "$(aksum)" = "$SUM" ]
	tpm_clean
}

@test "--check: another EK certificate and EK at the registrar are explained" {
	registered
	fault "{\"method\": \"GET\", \"path\": \"/agents/\", \"status\": 200,
		\"body\": $(check_record | jq -c '.results.ekcert = "MAMCAQA=" | .results.ek_tpm = "AAA="')}"
	reg 100 --check
	line "kl-register: error: check: agent $ID: the registrar holds another EK and EK certificate than this TPM and the AK in $AKF: registering would be refused (403); delete it at the registrar (keylime_tenant -c regdelete -u $ID) or restore the AK file $AKF"
}

# ------------------------------------------------------------------ input

@test "bad stdin and bad options are permanent, before the TPM" {
	run -100 --separate-stderr kl_run kl-register <<<'{"schema":2}'
	[ -z "$output" ]
	[[ $stderr == "kl-register: error: stdin:"* ]]
	KEYLIME_AGENT_TPM_SIGNING_ALG=ecdsa TCTI=swtpm:host=127.0.0.1,port=1 reg 100
	line 'kl-register: error: tpm_signing_alg "ecdsa": an RSA AK signs with rsassa or rsapss (ecdsa needs tpm_encryption_alg = "ecc")'
	reg 100 --avoid-tpm
	line "kl-register: error: --avoid-tpm: kl-register needs a TPM (for tests: swtpm and --tcti)"
	[ "$(requests | jq length)" = 0 ]
}

@test "TPM unreachable: temporary, nothing sent" {
	local port
	port=$(kl_free_port)
	reg 111 --tcti "swtpm:host=127.0.0.1,port=$port"
	[ "${#stderr_lines[@]}" = 1 ]
	[[ $stderr == "kl-register: error: "* ]]
	[ "$(requests | jq length)" = 0 ]
}
