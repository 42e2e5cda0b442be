#!/usr/bin/env bats
# tests/bats/faults-slow.bats - the fault matrix (issue 9), slow networks: a
# verifier name that does not resolve, a verifier that accepts and never
# answers, one that trickles a byte a second. kl-agent runs as a daemon with a
# 1.5 s HTTP timeout; after each fault clears, a pass within two intervals,
# every state file valid at every look (tests/faults/faults.bash).
load helpers
load ../faults/faults

@test "faults: a verifier name that does not resolve, fixed by HUP: PASS" {
	enroll
	good=$KL_VERIFIER_URL
	set_conf verifier_url "\"https://kl-no-such-host.invalid:${good##*:}\""
	start_agent
	sleep 0.5
	fails_during 3
	set_conf verifier_url "\"$good\""
	kill -HUP "$AGENT_PID"
	pass_after_clear
	stop_agent
	grep -q "kl-no-such-host.invalid" "$T/agent.err"
}

@test "faults: a verifier that accepts and never answers: the timeout, then PASS" {
	enroll
	start_agent
	wait_pass
	vfault '{"path": "/v3", "delay": 60, "close": true, "count": -1}'
	fails_during 4
	pass_after_clear
	stop_agent
	grep -qE "timed out after [0-9]+ milliseconds with 0 " "$T/agent.err"
}

@test "faults: a verifier that trickles a byte a second: the timeout, then PASS" {
	enroll
	start_agent
	wait_pass
	body=$(printf '{"data": {"type": "attestation", "attributes": {"pad": "%0100d"}}}' 0)
	vfault "$(jq -cn --arg b "$body" '{path: "/v3", status: 200, content_type: "application/json",
		body: $b, trickle: 1, count: -1}')"
	fails_during 4
	pass_after_clear
	stop_agent
	# Some bytes came, too slowly.
	grep -qE "timed out after [0-9]+ milliseconds with [1-9][0-9]* out of [0-9]+ bytes" "$T/agent.err"
}
