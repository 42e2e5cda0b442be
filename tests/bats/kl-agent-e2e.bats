#!/usr/bin/env bats
# kl-agent with the real steps, a manufactured swtpm and the strict test
# peers: the daemon keeps the verifier at PASS, recovers from an outage and
# re-authenticates once after a 401; --once for cron and timers.
load helpers
load fixtures/e2e/steps

DELAY_RE='next attempt in ([0-9]+)\.([0-9]{3}) s \(([a-z-]+), attempt ([0-9]+)\)'

setup_file() { agent_file_start; }
teardown_file() { file_stop; }

setup() {
	T=$BATS_TEST_TMPDIR
	unset KL_STEP_DIR KL_SYSCONFDIR
	agent_new "$T" "attestation_interval_seconds = 1" \
		"exponential_backoff_initial_delay = 200" \
		"exponential_backoff_max_delay = 1600" \
		"exponential_backoff_max_retries = 3"
	# The file's IMA log, which matches PCR 10 (see agent_file_start).
	ln -sf "$BATS_FILE_TMPDIR/ima.log" "$IMA_LOG"
	AGENT_PID=
}

teardown() {
	if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID"
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/faults" >/dev/null || true
}

register_and_enroll() {
	kl_run kl-register </dev/null >/dev/null
	kl_enroll "$AGENT_ID" --ima-permissive
}

# wait_passes N [S]: until the verifier counts N passed attestations.
wait_passes() {
	local n=$1 s=${2:-30} i
	for ((i = 0; i < s * 10; i++)); do
		[ "$(kl_passes "$AGENT_ID")" -ge "$n" ] && return 0
		sleep 0.1
	done
	kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$AGENT_ID" | jq -c '{status, attestation_count}' >&2
	cat "$T/agent.err" >&2
	return 1
}

sessions() {
	kl_peer_ctl GET "$KL_VERIFIER_CTL/requests?method=POST&path=/sessions%24" |
		jq --arg id "$AGENT_ID" '[.[] | select(.body | contains($id))] | length'
}

@test "agent e2e: --once registers, attests, prints the next due time; the verifier says PASS" {
	kl_run kl-register </dev/null >/dev/null
	kl_enroll "$AGENT_ID" --ima-permissive
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(jq -r .result <<<"$output")" = ok ]
	[ "$(jq -r .seconds_to_next_attestation <<<"$output")" = 1 ]
	[ -n "$(jq -r .next_due <<<"$output")" ]
	run -0 kl_verdicts "$AGENT_ID" --wait 1
	[ "$(jq -r .status <<<"$output")" = PASS ]
	[ "$(jq -r .state "$T/keylime/kl-status.json")" != "" ]
	[ "$(stat -c %a "$T/keylime/kl-status.json")" = 644 ]	# no secret in it: monitors read it
}

@test "agent e2e: --once before enrollment exits 1 (the verifier does not know the agent)" {
	run -1 --separate-stderr kl_run kl-agent --once
	[ "$(jq -r .exit <<<"$output")" = 1 ]
}

@test "agent e2e: the daemon keeps the verifier at PASS over many cycles, at the verifier's pace" {
	register_and_enroll
	start_agent
	wait_passes 6 30
	stop_agent
	run -0 kl_verdicts "$AGENT_ID"
	[ "$(jq -r .status <<<"$output")" = PASS ]
	[ "$(jq '[.attestations[] | select(.evaluation == "fail")] | length' <<<"$output")" = 0 ]
	# quote_interval 1: no negotiation was early (a 429 would show as a retry).
	! grep -q 'retry-after' "$T/agent.err"
	[ "$(sessions)" -le 2 ]
}

@test "agent e2e: a 401 in the middle re-authenticates exactly once" {
	register_and_enroll
	start_agent
	wait_passes 2
	before=$(sessions)
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	n=$(kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$AGENT_ID" | jq .attestation_count)
	wait_passes $((n + 3))
	stop_agent
	[ "$(sessions)" -eq $((before + 1)) ]
}

@test "agent e2e: verifier down, then back: jittered backoff within bounds, then PASS again" {
	register_and_enroll
	start_agent
	wait_passes 1
	# Every verifier request is dropped without an answer for a while.
	kl_peer_ctl POST "$KL_VERIFIER_CTL/faults" '{"path": "/v3", "close": true, "count": -1}' >/dev/null
	sleep 4
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/faults" >/dev/null
	n=$(kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$AGENT_ID" | jq .attestation_count)
	wait_passes $((n + 2))
	stop_agent
	# Backoff delays: each within [0, min(1.6, 0.2 * 2^(attempt-1))] s, not all equal.
	grep -E "$DELAY_RE" "$T/agent.err" | grep backoff >"$T/delays"
	[ "$(wc -l <"$T/delays")" -ge 2 ]
	while read -r line; do
		[[ $line =~ $DELAY_RE ]]
		ms=$((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]}))
		a=${BASH_REMATCH[4]}
		cap=$((200 * (1 << (a - 1))))
		[ "$cap" -le 1600 ] || cap=1600
		[ "$ms" -le "$cap" ]
	done <"$T/delays"
	[ "$(sed -E 's/.*next attempt in ([0-9.]+) s.*/\1/' "$T/delays" | sort -u | wc -l)" -ge 2 ]
	run -0 kl_verdicts "$AGENT_ID"
	[ "$(jq -r .status <<<"$output")" = PASS ]
}

@test "agent e2e: Retry-After from the verifier is obeyed" {
	register_and_enroll
	start_agent
	wait_passes 1
	kl_peer_ctl POST "$KL_VERIFIER_CTL/faults" \
		'{"method": "POST", "path": "/attestations$", "status": 503, "headers": {"Retry-After": "2"}, "body": {"errors": [{"status": "503", "code": "verification_in_progress", "detail": "busy"}]}}' >/dev/null
	n=$(kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$AGENT_ID" | jq .attestation_count)
	wait_passes $((n + 1))
	stop_agent
	grep -q 'next attempt in 2.000 s (retry-after' "$T/agent.err"
}

@test "agent e2e: TERM in the middle of a cycle exits 0 and leaves valid state" {
	register_and_enroll
	start_agent
	wait_passes 1
	kl_peer_ctl POST "$KL_VERIFIER_CTL/faults" '{"method": "PATCH", "path": "/attestations/", "delay": 4}' >/dev/null
	sleep 1.5
	stop_agent
	jq -e '.state and .agent_id' "$T/keylime/kl-status.json" >/dev/null
	jq -e .ak "$T/keylime/agent_data.json" >/dev/null
	[ -z "$(ls "$T/keylime" | grep '\.tmp\.')" ]
	# No transient object was left in the TPM.
	[ -z "$(tpm2_getcap handles-transient)" ]
}
