#!/usr/bin/env bats
# The whole push attestation, step by step and as one pipeline, against a
# manufactured swtpm and the strict test registrar and verifier.
load helpers

KLFIX="/usr/bin/python3 $KL_TOP/tests/bats/fixtures/peers/klfix.py"

setup_file() {
	kl_start_swtpm
	kl_start_registrar
	kl_start_verifier --quote-interval 1
}

teardown_file() {
	kl_stop_peers
	kl_stop_swtpm
}

# A fresh agent per test: its own id, keylime_dir, config and IMA log.
setup() {
	export AGENT_ID=$(kl_unit core uuidgen)
	export KDIR=$BATS_TEST_TMPDIR/keylime
	mkdir -p "$KDIR"
	export IMA_LOG=$BATS_TEST_TMPDIR/ima.log
	: >"$IMA_LOG"
	cat >"$BATS_TEST_TMPDIR/agent.conf" <<-CONF
	[agent]
	uuid = "$AGENT_ID"
	verifier_url = "$KL_VERIFIER_URL"
	verifier_tls_ca_cert = "$KL_TEST_CA"
	registrar_ip = "127.0.0.1"
	registrar_port = ${KL_REGISTRAR_URL##*:}
	keylime_dir = "$KDIR"
	ima_ml_path = "$IMA_LOG"
	measuredboot_ml_path = "$BATS_TEST_TMPDIR/no-uefi-log"
	tcti = "$TCTI"
	CONF
	export KEYLIME_AGENT_CONFIG=$BATS_TEST_TMPDIR/agent.conf
}

# ima_measure PATH: a new measurement in the IMA log, extended into PCR 10.
ima_measure() {
	local v
	v=$($KLFIX ima-append "$IMA_LOG" "$1") && tpm2_pcrextend "10:sha256=$v" >/dev/null
}

register_and_enroll() {
	kl_run kl-register </dev/null >"$BATS_TEST_TMPDIR/reg.json"
	kl_enroll "$AGENT_ID" "$@"
}

@test "e2e: the pipeline ends with the verifier's verdict pass" {
	kl_run kl-register </dev/null >"$BATS_TEST_TMPDIR/reg.json"
	kl_enroll "$AGENT_ID"
	run -0 --separate-stderr bash -c 'kl-session <"$1" | kl-negotiate | kl-quote | kl-submit' _ "$BATS_TEST_TMPDIR/reg.json"
	[ "$(jq -r .submission.status <<<"$output")" = 202 ]
	[ "$(jq -r '.submission.seconds_to_next_attestation | type' <<<"$output")" = number ]
	run -0 kl_verdicts "$AGENT_ID" --wait 1
	[ "$(jq -r '.attestations[-1].evaluation' <<<"$output")" = pass ]
	[ "$(jq -r .status <<<"$output")" = PASS ]
}

@test "e2e: all five steps started at once in one shell pipeline pass" {
	# Register once and enroll (the operator's part), then run the whole
	# pipeline: kl-register re-registers the same AK, every step starts at once.
	register_and_enroll
	run -0 --separate-stderr bash -c 'kl-register </dev/null | kl-session | kl-negotiate | kl-quote | kl-submit'
	[ "$(jq -r .submission.status <<<"$output")" = 202 ]
	[ "$(jq -r .agent.id <<<"$output")" = "$AGENT_ID" ]
	run -0 kl_verdicts "$AGENT_ID" --wait 1
	[ "$(jq -r '.attestations[-1].evaluation' <<<"$output")" = pass ]
}
