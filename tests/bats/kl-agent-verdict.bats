#!/usr/bin/env bats
# kl-agent with kl-verdict (--verdict, verdict_every_cycles), the real steps, a
# manufactured swtpm and the strict test peers: --once --verdict exits with the
# verdict (pass 0, fail 1, no verdict in time 111, a rejected token
# re-authenticated once, a malformed record 100) and prints it; the daemon
# checks every N cycles, logs a change of standing once and keeps attesting;
# the status file holds the verdict.
load helpers
load fixtures/e2e/steps

setup_file() { agent_file_start; }
teardown_file() { file_stop; }

setup() {
	T=$BATS_TEST_TMPDIR
	unset KL_STEP_DIR KL_SYSCONFDIR KEYLIME_AGENT_VERDICT_TIMEOUT_SECONDS
	agent_new "$T" "attestation_interval_seconds = 1" \
		"exponential_backoff_initial_delay = 200" \
		"exponential_backoff_max_delay = 1600" \
		"exponential_backoff_max_retries = 3" "$@"
	ln -sf "$BATS_FILE_TMPDIR/ima.log" "$IMA_LOG"
	STATUS=$KDIR/kl-status.json
	AGENT_PID=
	faults_clear
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 1, "verify_delay": 0}' >/dev/null
	kl_run kl-register </dev/null >/dev/null
	# The PCRs as they are now: an earlier test's extend of PCR 7 is policy here.
	kl_enroll "$AGENT_ID" --ima-permissive
}

teardown() {
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID"
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	faults_clear || true
}

# The verdict fields of the status file: outcome status exit_class, "at" and "last_pass" set.
status_verdict() { jq -r '.verdict | "\(.outcome) \(.status) \(.exit_class) \(.at != null) \(.last_pass != null)"' "$STATUS"; }

# Lines of kl-agent's stderr ($stderr) that contain $1.
lines_with() { grep -cF -- "$1" <<<"$stderr" || true; }

gets() { nreq "^/v2/agents/$AGENT_ID\$"; }

@test "agent verdict: --once --verdict on evidence that passes: exit 0, the verdict in the line and the status file" {
	# Without --verdict: no kl-verdict, no verdict anywhere.
	run -0 --separate-stderr kl_run kl-agent --once
	jq -e 'has("verdict") | not' <<<"$output"
	[ "$(jq -c .verdict "$STATUS")" = null ]
	[ "$(gets)" = 0 ]
	sleep 1	# quote_interval: this evidence in a later second than the last verdict
	run -0 --separate-stderr kl_run kl-agent --once --verdict
	jq -e '.result == "ok" and .exit == 0 and .seconds_to_next_attestation == 1
		and .verdict.outcome == "pass" and .verdict.status == "PASS"
		and .verdict.attestation_count == 2 and .verdict.polls >= 1' <<<"$output"
	[ "$(status_verdict)" = "pass PASS 0 true true" ]
	jq -e '.last_exit_class == 0 and .verdict.attestation_count == 2' "$STATUS"
	[ "$(gets)" = 1 ]
	# The first reading of the standing is logged; the same again is not.
	[ "$(lines_with "kl-agent: notice: $AGENT_ID: verifier standing: PASS (attestation_count 2)")" = 1 ]
	sleep 1	# quote_interval: this evidence in a later second than the last verdict
	run -0 --separate-stderr kl_run kl-agent --once --verdict
	[ "$(lines_with "verifier standing")" = 0 ]
	jq -e '.verdict.outcome == "pass" and .verdict.attestation_count == 3' <<<"$output"
}

@test "agent verdict: --once --verdict after PCR 7 was extended: exit 1, outcome fail, the standing change logged once" {
	run -0 --separate-stderr kl_run kl-agent --once --verdict
	tpm2_pcrextend "7:sha256=$(printf '%064d' 7)" >/dev/null
	sleep 1	# quote_interval: this evidence in a later second than the last verdict
	run -1 --separate-stderr kl_run kl-agent --once --verdict
	# The submission was accepted (its schedule holds); the verdict is the exit code.
	jq -e '.result == "refused" and .exit == 1 and .seconds_to_next_attestation == 1
		and .verdict.outcome == "fail" and .verdict.status == "FAIL"' <<<"$output"
	[ "$(lines_with "kl-verdict: error: the verifier failed this evidence")" = 1 ]
	[ "$(lines_with "kl-agent: notice: $AGENT_ID: verifier standing: PASS -> FAIL (attestation_count 1): the verifier keeps FAIL, even after passing attestations, until an administrator re-adds the agent")" = 1 ]
	[ "$(status_verdict)" = "fail FAIL 1 true true" ]
	[ "$(jq .last_exit_class "$STATUS")" = 0 ]
	[ "$(kl_verdicts "$AGENT_ID" | jq -r '.attestations[-1].failure_reason')" = policy_violation ]
	# Still FAIL: exit 1 again, the change not logged again.
	sleep 1	# quote_interval: this evidence in a later second than the last verdict
	run -1 --separate-stderr kl_run kl-agent --once --verdict
	[ "$(lines_with "verifier standing")" = 0 ]
	[ "$(status_verdict)" = "fail FAIL 1 true true" ]
}

@test "agent verdict: --once --verdict with a verifier slower than verdict_timeout_seconds: exit 111 once, outcome unknown" {
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"verify_delay": 4}' >/dev/null
	KEYLIME_AGENT_VERDICT_TIMEOUT_SECONDS=1 run -111 --separate-stderr kl_run kl-agent --once --verdict
	jq -e '.result == "temporary" and .exit == 111 and .seconds_to_next_attestation == 1
		and .verdict.outcome == "unknown" and .verdict.status == "PENDING"
		and .verdict.waited_ms >= 1000' <<<"$output"
	# No retry of a wait that already took verdict_timeout_seconds.
	[ "$(lines_with "kl-verdict: error: GET")" = 1 ]
	[ "$(lines_with "within 1 s (verdict_timeout_seconds)")" = 1 ]
	[ "$(status_verdict)" = "unknown PENDING 111 true false" ]
}

@test "agent verdict: --once --verdict with a rejected token re-authenticates once and reads again" {
	local before
	before=$(nreq '/sessions$')
	fault '{"method": "GET", "path": "/v2/agents/", "status": 401, "count": 1, "body": {"errors": [{"status": "401", "detail": "Authentication token expired"}]}}'
	run -0 --separate-stderr kl_run kl-agent --verbose --once --verdict
	jq -e '.exit == 0 and .verdict.outcome == "pass"' <<<"$output"
	[ "$(lines_with "kl-agent: info: $AGENT_ID: Attesting: kl-verdict: not authenticated (2): re-authenticating")" = 1 ]
	[ "$(gets)" = 2 ]
	[ "$(nreq '/sessions$')" -ge $((before + 1)) ]
	# Rejected again after the new session: exit 2, no third read.
	faults_clear
	sleep 1	# quote_interval: this evidence in a later second than the last verdict
	fault '{"method": "GET", "path": "/v2/agents/", "status": 401, "count": -1}'
	run -2 --separate-stderr kl_run kl-agent --once --verdict
	jq -e '.result == "reauth" and .exit == 2 and .verdict == null and .seconds_to_next_attestation == 1' <<<"$output"
	[ "$(gets)" = 2 ]
	[ "$(jq -r '.verdict | "\(.outcome) \(.status) \(.exit_class)"' "$STATUS")" = "null PASS 2" ]
}

@test "agent verdict: --once --verdict on a malformed record: exit 100, one line from kl-verdict" {
	fault '{"method": "GET", "path": "/v2/agents/", "status": 200, "count": -1, "body": {"code": 200, "status": "Success", "results": {"attestation_status": "PASS"}}}'
	run -100 --separate-stderr kl_run kl-agent --once --verdict
	jq -e '.result == "permanent" and .exit == 100 and .verdict == null' <<<"$output"
	[ "$(lines_with "kl-verdict: error: GET $KL_VERIFIER_URL/v2/agents/$AGENT_ID: results.attestation_count is missing, not an integer >= 0")" = 1 ]
	[ "$(gets)" = 1 ]
	[ "$(jq -r '.verdict | "\(.outcome) \(.status) \(.exit_class)"' "$STATUS")" = "null null 100" ]
}

@test "agent verdict: --verdict needs kl-verdict next to kl-agent; without it kl-agent does not" {
	mkdir "$T/steps"
	for s in kl-register kl-session kl-negotiate kl-quote kl-submit; do
		ln -s "$KL_BIN/$s" "$T/steps/$s"
	done
	KL_STEP_DIR=$T/steps run -100 --separate-stderr kl_run kl-agent --once --verdict
	[ "$stderr" = "kl-agent: error: $T/steps/kl-verdict: not executable: No such file or directory (install the steps next to kl-agent, or set KL_STEP_DIR)" ]
	KL_STEP_DIR=$T/steps run -0 --separate-stderr kl_run kl-agent --once
}

@test "agent verdict: the daemon checks every verdict_every_cycles, logs PASS -> FAIL once and keeps attesting" {
	local n i
	printf 'verdict_every_cycles = 2\n' >>"$KEYLIME_AGENT_CONFIG"
	start_agent
	for ((i = 0; i < 300; i++)); do
		[ "$(jq -r '.verdict.status' "$STATUS" 2>/dev/null)" = PASS ] && break
		sleep 0.1
	done
	tpm2_pcrextend "7:sha256=$(printf '%064d' 7)" >/dev/null
	for ((i = 0; i < 300; i++)); do
		[ "$(jq -r '.verdict.status' "$STATUS")" = FAIL ] && break
		sleep 0.1
	done
	[ "$(jq -r '.verdict | "\(.outcome) \(.status) \(.exit_class)"' "$STATUS")" = "fail FAIL 1" ]
	# It keeps attesting at the verifier's pace (no backoff): two more verdict checks.
	n=$(gets)
	for ((i = 0; i < 300 && $(gets) < n + 2; i++)); do sleep 0.1; done
	stop_agent
	stderr=$(cat "$T/agent.err")
	[ "$(gets)" -ge $((n + 2)) ]
	[ "$(lines_with "verifier standing: PASS (attestation_count")" = 1 ]
	[ "$(lines_with "verifier standing: PASS -> FAIL (attestation_count")" = 1 ]
	[ "$(lines_with "verifier standing")" = 2 ]
	! grep -q 'AttestationFailed' "$T/agent.err"
	# Every second cycle: the record read about half as often as evidence sent.
	n=$(nreq "^/v3.0/agents/$AGENT_ID/attestations\$")
	(( $(gets) * 2 <= n + 2 && $(gets) * 2 >= n - 2 ))
	[ "$(jq -r '.verdict.exit_class' "$STATUS")" = 1 ]
}

@test "agent verdict: the daemon with --verdict checks after every cycle; verdict_every_cycles 0 never" {
	local n i
	start_agent --verdict
	for ((i = 0; i < 300 && $(gets) < 3; i++)); do sleep 0.1; done
	stop_agent
	n=$(nreq "^/v3.0/agents/$AGENT_ID/attestations\$")
	(( $(gets) >= 3 && ($(gets) == n || $(gets) == n - 1) ))
	[ "$(jq -r '.verdict | "\(.outcome) \(.status) \(.exit_class)"' "$STATUS")" = "pass PASS 0" ]
	grep -q 'verifier standing: PASS (attestation_count' "$T/agent.err"
	# Without --verdict and with the default verdict_every_cycles: never.
	faults_clear
	start_agent
	for ((i = 0; i < 300 && $(nreq "^/v3.0/agents/$AGENT_ID/attestations\$") < 3; i++)); do sleep 0.1; done
	stop_agent
	[ "$(gets)" = 0 ]
}

@test "agent verdict: the standing and the verifier's last pass in the metrics (prometheus_client)" {
	local m lp
	export KEYLIME_AGENT_METRICS_TEXTFILE=$T/m.prom
	run -0 --separate-stderr kl_run kl-agent --once
	# No verdict read yet: no kl_verdict sample.
	m=$("$BATS_TEST_DIRNAME/fixtures/metrics/parse.py" "$T/m.prom")
	run -1 grep -c '^kl_verdict' <<<"$m"
	sleep 1	# quote_interval: this evidence in a later second than the last verdict
	run -0 --separate-stderr kl_run kl-agent --once --verdict
	lp=$(jq -r .verdict.last_successful_attestation <<<"$output")
	[ "$lp" -gt 0 ]
	m=$("$BATS_TEST_DIRNAME/fixtures/metrics/parse.py" "$T/m.prom")
	grep -qx 'kl_verdict{status=PASS} 1 gauge' <<<"$m"
	grep -qx "kl_last_pass_timestamp_seconds{} $lp gauge" <<<"$m"
	unset KEYLIME_AGENT_METRICS_TEXTFILE
}
