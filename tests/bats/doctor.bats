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
	kl_run kl-session <"$D/reg.json" >"$D/ses.json"
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

@test "kl-doctor: a healthy agent: every check ok, exit 0, text and JSON agree" {
	run -0 --separate-stderr kl_run kl-doctor --json --token-file "$D/ses.json"
	echo "$output" >&3
	[ -z "$stderr" ]
	[ "$(jq -r '[.checks[].result] | unique | join(",")' <<<"$output")" = ok ]
	[ "$(jq -r '[.checks[].check] | join(" ")' <<<"$output")" = \
		"config tpm tpm-algorithms ek-certificate ak-file agent-id ima-log uefi-log pull-agent ca verifier-tls verifier clock registrar liveness" ]
	[ "$(check agent-id)" = "ok uuid = $AGENT_ID" ]
	[ "$(check config)" = "ok read $C" ]
	[[ $(check verifier) == "ok GET /version: 410"* ]]
	[[ $(check liveness) == "ok attestation_status "* ]]
	[ "$(jq -c .summary <<<"$output")" = '{"ok":15,"warn":0,"fail":0,"skip":0}' ]
	run -0 --separate-stderr kl_run kl-doctor --token-file "$D/ses.json"
	[ "${#lines[@]}" = 16 ]
	[[ ${lines[0]} == "ok    config           read $C" ]]
	[ "${lines[15]}" = "kl-doctor: 15 ok, 0 warn, 0 fail, 0 skipped" ]
}
