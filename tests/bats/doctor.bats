#!/usr/bin/env bats
# doctor.bats - kl-doctor against the test peers and a swtpm: every check's ok
# path, and its fail path (TPM gone, wrong CA, name mismatch, verifier down,
# registrar down, skewed clock via the verifier's Date, unreadable logs, bad
# configuration, the pull agent alongside), --json, the exit codes, and the
# support bundle free of planted secrets.
load helpers
load fixtures/e2e/steps

setup_file() {
	file_start
	file_session
	# Two measurement logs that exist and are readable.
	printf 'fake uefi log\n' >"$D/uefi.log"
	sed -i "s|^measuredboot_ml_path = .*|measuredboot_ml_path = \"$D/uefi.log\"|" "$D/agent.conf"
}

teardown_file() { file_stop; }

setup() {
	file_use
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"date_skew": 0}' >/dev/null
	C=$BATS_TEST_TMPDIR/agent.conf
	cp "$D/agent.conf" "$C"
	export KEYLIME_AGENT_CONFIG=$C
}

# conf KEY VALUE: set KEY in this test's agent.conf.
conf() {
	if grep -q "^$1 = " "$C"; then
		sed -i "s|^$1 = .*|$1 = $2|" "$C"
	else
		echo "$1 = $2" >>"$C"
	fi
}

# check NAME: "result found" of check NAME in the JSON report $output.
check() { jq -r --arg n "$1" '.checks[] | select(.check == $n) | "\(.result) \(.found)"' <<<"$output"; }
result() { jq -r --arg n "$1" '.checks[] | select(.check == $n) | .result' <<<"$output"; }

@test "kl-doctor: a healthy agent: every check ok (the registrar record not shown), exit 0, text and JSON agree" {
	run -0 --separate-stderr kl_run kl-doctor --json --token-file "$D/ses.json"
	[ -z "$stderr" ]
	# The test registrar, like Keylime's plain-HTTP port, shows records only to its
	# administrator: the registration check is skipped, all others pass.
	[ "$(jq -r '[.checks[] | select(.result != "ok") | "\(.check) \(.result)"] | join(",")' <<<"$output")" = "registration skip" ]
	[ "$(jq -r '[.checks[].check] | join(" ")' <<<"$output")" = \
		"config tpm tpm-algorithms ek-certificate ak-file agent-id ima-log uefi-log pull-agent ca verifier-tls verifier clock registrar registration liveness" ]
	[ "$(check agent-id)" = "ok uuid = $AGENT_ID" ]
	[ "$(check config)" = "ok read $C" ]
	[[ $(check verifier) == "ok GET /version: 410"* ]]
	[[ $(check liveness) == "ok attestation_status "* ]]
	[ "$(jq -c .summary <<<"$output")" = '{"ok":15,"warn":0,"fail":0,"skip":1}' ]
	run -0 --separate-stderr kl_run kl-doctor --token-file "$D/ses.json"
	[ "${#lines[@]}" = 17 ]
	[[ ${lines[0]} == "ok    config           read $C" ]]
	[ "${lines[16]}" = "kl-doctor: 15 ok, 0 warn, 0 fail, 1 skipped" ]
	# --log-level debug changes nothing: lib/'s info and debug lines do not become findings.
	run -0 --separate-stderr kl_run kl-doctor --log-level debug --token-file "$D/ses.json"
	[ "${lines[16]}" = "kl-doctor: 15 ok, 0 warn, 0 fail, 1 skipped" ]
	[[ ${lines[0]} == "ok    config           read $C" ]]
}

@test "kl-doctor: the TPM gone fails the TPM check, exit 1; the rest still runs" {
	conf tcti "\"swtpm:host=127.0.0.1,port=$(kl_free_port 2)\""
	run -1 --separate-stderr kl_run kl-doctor --json
	[ -z "$stderr" ]
	[[ $(check tpm) == "fail TPM swtpm:host=127.0.0.1,port="* ]]
	[ "$(jq -r '.checks[] | select(.check == "tpm") | .hint' <<<"$output")" != null ]
	[ "$(result verifier)" = ok ] && [ "$(result registrar)" = ok ] && [ "$(result agent-id)" = ok ]
	[ "$(jq .exit <<<"$output")" = 1 ]
	run -1 --separate-stderr kl_run kl-doctor
	[[ $output == *"fail  tpm "*" -- hint: "* ]]
	[[ ${lines[-1]} == "kl-doctor: "*" 1 fail, "* ]]
}

@test "kl-doctor: a PCR bank the TPM lacks fails tpm-algorithms" {
	conf tpm_hash_alg '"sha384"'
	run -1 --separate-stderr kl_run kl-doctor --json
	[ "$(check tpm-algorithms)" = "fail tpm_hash_alg sha384: no such PCR bank (banks: sha256)" ]
}

@test "kl-doctor: a wrong CA fails verifier-tls (chain); a CA file that is not PEM fails ca" {
	local o=$BATS_TEST_TMPDIR/other
	mkdir -p "$o"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$o/ca.key" \
		-out "$o/ca.crt" -days 1 -subj "/CN=another CA" 2>/dev/null
	conf verifier_tls_ca_cert "\"$o/ca.crt\""
	run -1 --separate-stderr kl_run kl-doctor --json
	[ "$(result ca)" = ok ]
	[[ $(check verifier-tls) == "fail "*"certificate verify failed"* ]]
	[[ $(jq -r '.checks[] | select(.check == "verifier-tls") | .hint' <<<"$output") == *"does not chain to the CA"* ]]
	echo "not a certificate" >"$o/ca.crt"
	run -1 --separate-stderr kl_run kl-doctor --json
	[ "$(check ca)" = "fail $o/ca.crt: no PEM certificate in it" ]
	[ "$(result verifier-tls)" = "" ]
}

@test "kl-doctor: a verifier certificate for another name fails verifier-tls (name)" {
	local t=$BATS_TEST_TMPDIR/tls
	mkdir -p "$t"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/s.key" \
		-out "$t/s.csr" -subj "/CN=elsewhere.example" 2>/dev/null
	printf 'subjectAltName=DNS:elsewhere.example\n' >"$t/ext"
	openssl x509 -req -in "$t/s.csr" -CA "$KL_TEST_TLS_DIR/ca.crt" -CAkey "$KL_TEST_TLS_DIR/ca.key" \
		-CAcreateserial -out "$t/s.crt" -days 1 -extfile "$t/ext" 2>/dev/null
	_kl_peer_start verifier "$BATS_TEST_TMPDIR/v2" --tls-cert "$t/s.crt" --tls-key "$t/s.key"
	conf verifier_url "\"https://127.0.0.1:$(jq -r .https "$BATS_TEST_TMPDIR/v2/ports.json")\""
	run -1 --separate-stderr kl_run kl-doctor --json
	kill "$(cat "$BATS_TEST_TMPDIR/v2/verifier.started")"
	[[ $(check verifier-tls) == "fail "*"127.0.0.1"* ]]
	[[ $(jq -r '.checks[] | select(.check == "verifier-tls") | .hint' <<<"$output") == *"does not name the host"* ]]
}

@test "kl-doctor: verifier down and registrar down fail their checks" {
	local p
	p=$(kl_free_port 2)
	conf verifier_url "\"https://127.0.0.1:$p\""
	conf registrar_port $((p + 1))
	run -1 --separate-stderr kl_run kl-doctor --json
	[[ $(check verifier) == "fail https://127.0.0.1:$p/version: "* ]]
	[[ $(check registrar) == "fail http://127.0.0.1:$((p + 1))/version: "* ]]
	[ "$(result clock)" = "" ]
	[ "$(result tpm)" = ok ]
}

@test "kl-doctor: the verifier's Date an hour off fails clock; 30 s off warns (exit 0)" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"date_skew": 3600}' >/dev/null
	run -1 --separate-stderr kl_run kl-doctor --json
	# The skew is measured outside the request's time (slower under valgrind).
	[[ $(check clock) =~ ^fail\ \+([0-9]+)\ s\ from\ the\ verifier\'s\ Date$ ]]
	[ "${BASH_REMATCH[1]}" -ge 3590 ] && [ "${BASH_REMATCH[1]}" -le 3600 ]
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"date_skew": -30}' >/dev/null
	run -0 --separate-stderr kl_run kl-doctor --json
	[[ $(check clock) =~ ^warn\ -([0-9]+)\ s ]]
	[ "${BASH_REMATCH[1]}" -ge 20 ] && [ "${BASH_REMATCH[1]}" -le 31 ]
	[ "$(jq .summary.fail <<<"$output")" = 0 ]
}

@test "kl-doctor: an unreadable IMA log fails; a missing UEFI log warns; run_as is checked" {
	local log=$BATS_TEST_TMPDIR/ima.log
	if [ "$(id -u)" = 0 ]; then
		# root reads any file: a socket is a log path nobody can open.
		/usr/bin/python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$log"
	else
		: >"$log"
		chmod 000 "$log"
	fi
	conf ima_ml_path "\"$log\""
	conf measuredboot_ml_path "\"$BATS_TEST_TMPDIR/none\""
	run -1 --separate-stderr kl_run kl-doctor --json
	[[ $(check ima-log) == "fail $log: not readable as uid $(id -u): "* ]]
	[ "$(check uefi-log)" = "warn $BATS_TEST_TMPDIR/none: No such file or directory" ]
	if [ "$(id -u)" = 0 ]; then
		printf 'x\n' >"$BATS_TEST_TMPDIR/root-only.log"
		chmod 600 "$BATS_TEST_TMPDIR/root-only.log"
		conf ima_ml_path "\"$BATS_TEST_TMPDIR/root-only.log\""
		conf run_as '"nobody"'
		run -0 --separate-stderr kl_run kl-doctor --json
		[ "$(check ima-log)" = "warn $BATS_TEST_TMPDIR/root-only.log: readable, but not by run_as nobody" ]
	fi
}

@test "kl-doctor: configuration: unknown keys warn with file:line; a bad value is exit 100; a bad algorithm fails" {
	echo 'verifer_url = "https://typo"' >>"$C"
	run -0 --separate-stderr kl_run kl-doctor --json
	[[ $(check config) == "warn read $C; $C:"*': unknown key "verifer_url" in [agent]: ignored' ]]
	sed -i '/^verifer_url/d' "$C"
	conf attestation_interval_seconds 0
	run -100 --separate-stderr kl_run kl-doctor --json
	[ "$(jq -c '[.checks[].check]' <<<"$output")" = '["config"]' ]
	[[ $(check config) == "fail $C:"*"attestation_interval_seconds"*"between 1 and"* ]]
	[ "$(jq .exit <<<"$output")" = 100 ]
	conf attestation_interval_seconds 60
	conf tpm_signing_alg '"ecdsa"'
	run -1 --separate-stderr kl_run kl-doctor --json
	[[ $(check config) == "fail read $C; tpm_signing_alg \"ecdsa\": an RSA AK signs with rsassa or rsapss (ecdsa needs tpm_encryption_alg = \"ecc\")" ]]
	run -100 --separate-stderr kl_run kl-doctor --no-such-option
	[ -z "$output" ]
}

@test "kl-doctor: a keylime_agent process alongside warns" {
	cp /bin/sleep "$BATS_TEST_TMPDIR/keylime_agent"
	"$BATS_TEST_TMPDIR/keylime_agent" 30 3>&- &
	local pid=$!
	run -0 --separate-stderr kl_run kl-doctor --json
	kill "$pid"
	[[ $(check pull-agent) == "warn keylime_agent runs (pid "* ]]
	run -0 --separate-stderr kl_run kl-doctor --json
	[ "$(check pull-agent)" = "ok no keylime_agent (pull mode) process" ]
}

@test "kl-doctor: liveness: the kept token, else skipped; a rejected token warns; liveness window" {
	local kept
	kept=$(kl_run kl-doctor --json | jq -r '.checks[] | select(.check == "liveness") | .result')
	# kl-session keeps its token in keylime_dir: kl-doctor reads it (and leaves it).
	[ -f "$KDIR/kl-session.json" ]
	[ "$kept" != skip ]
	[ -f "$KDIR/kl-session.json" ]
	rm "$KDIR/kl-session.json"
	run -0 --separate-stderr kl_run kl-doctor --json
	[[ $(check liveness) == "skip no token"* ]]
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 2}' >/dev/null
	run -0 --separate-stderr kl_run kl-doctor --json --token-file "$D/ses.json"
	[[ $(check liveness) == "warn attestation_interval_seconds 60 exceeds the verifier's liveness window (maximum_attestation_interval 10 s)"* ]]
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 0}' >/dev/null
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	touch "$D/stale"
	run -0 --separate-stderr kl_run kl-doctor --json --token-file "$D/ses.json"
	[[ $(check liveness) == "warn GET "*"/v2.6/agents/$AGENT_ID: HTTP 401" ]]
	run -100 --separate-stderr kl_run kl-doctor --token-file "$BATS_TEST_TMPDIR/none"
	[ -z "$output" ]
}

@test "kl-doctor --bundle: a 0600 tar.gz with report, versions, config, state, metrics; no planted secret" {
	local kd=$BATS_TEST_TMPDIR/kd b=$BATS_TEST_TMPDIR/bundle.tgz x=$BATS_TEST_TMPDIR/x
	local pw=ownerPW-planted-5f2c tok priv s keyline
	cp -r "$KDIR" "$kd"
	conf keylime_dir "\"$kd\""
	conf agent_data_path "\"$kd/agent_data.json\""
	conf metrics_textfile '"metrics.prom"'
	conf tpm_ownerpassword "\"$pw\""
	tpm2_changeauth -c e "$pw"
	tok=$(jq -r .session.token "$D/ses.json")
	priv=$(jq -r .ak.private "$kd/agent_data.json")
	cp "$D/ses.json" "$kd/saved-session.json"	# a step document kept by hand
	printf '{"state":"Negotiating","consecutive_failures":0}\n' >"$kd/kl-status.json"
	printf '# TYPE kl_consecutive_failures gauge\nkl_consecutive_failures 0\n' >"$kd/metrics.prom"
	# A private key made now (no key is committed); its first base64 line is planted too.
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$kd/server-key.pem" 2>/dev/null
	keyline=$(sed -n 2p "$kd/server-key.pem")
	[ -n "$keyline" ]
	KEYLIME_AGENT_TPM_OWNERPASSWORD=$pw run -0 --separate-stderr kl_run kl-doctor --bundle "$b" --token-file "$D/ses.json"
	tpm2_changeauth -c e -p "$pw"
	[ -z "$stderr" ]
	[ "$(stat -c %a "$b")" = 600 ]
	# The EK was made with the owner password: the TPM checks passed.
	[[ $output == *"ok    ak-file "* ]]
	mkdir "$x"
	tar -xzf "$b" -C "$x"
	for s in doctor.txt doctor.json versions.txt environment.txt config/00-agent.conf \
		state/kl-status.json state/agent_data.json state/saved-session.json metrics.prom; do
		[ -s "$x/$s" ] || { echo "missing $s" >&2; return 1; }
	done
	[ "$(cat "$x/doctor.txt")" = "$output" ]
	jq -e '.summary.fail == 0' "$x/doctor.json" >/dev/null
	grep -q '^tpm_ownerpassword = "<redacted>"' "$x/config/00-agent.conf"
	grep -q '^KEYLIME_AGENT_TPM_OWNERPASSWORD=<redacted>' "$x/environment.txt"
	[ "$(jq -r .session.token "$x/state/saved-session.json")" = "<redacted>" ]
	[ "$(jq -r .ak.private "$x/state/agent_data.json")" = "<redacted>" ]
	jq -e '.ak.public' "$x/state/agent_data.json" >/dev/null
	# No planted secret anywhere in the bundle.
	for s in "$pw" "$tok" "${tok#*.}" "$priv" "PRIVATE KEY" "$keyline"; do
		if zcat "$b" | grep -aqF -- "$s"; then
			echo "secret in the bundle: ${s:0:12}..." >&2
			return 1
		fi
	done
	# The test can fail: the secrets were there to be found.
	grep -qF -- "$priv" "$kd/agent_data.json" && grep -qF -- "$tok" "$kd/saved-session.json"
}
