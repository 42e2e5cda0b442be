#!/usr/bin/env bats
# tests/bats/faults-http.bats - the fault matrix (issue 9), bad answers from the
# verifier: 5xx, 429 with each form of Retry-After, 401 mid-cycle, 403, a
# challenge that expires before the submission, truncated JSON, a 10 MiB
# reply. kl-agent runs as a daemon throughout; after each fault clears, a pass
# within two intervals, every state file valid at every look
# (tests/faults/faults.bash).
load helpers
load ../faults/faults

NEG='"method": "POST", "path": "/attestations$"'
SUB='"method": "PATCH", "path": "/attestations/"'

# err STATUS CODE: a Keylime JSON:API error body.
err() { jq -cn --arg s "$1" --arg c "$2" '{errors: [{status: $s, code: $c, detail: $c}]}'; }

# wait_hit: until every fault rule at the verifier has been hit.
wait_hit() {
	local i
	for ((i = 0; i < 200; i++)); do
		kl_peer_ctl GET "$KL_VERIFIER_CTL/faults" | jq -e 'all(.[]; (.hits // 0) >= 1)' >/dev/null &&
			return 0
		sleep 0.05
	done
	echo "a fault rule was never hit" >&2
	return 1
}

# started: enrolled, kl-agent running, one pass behind it.
started() {
	enroll
	start_agent
	wait_pass
}

# server_error STATUS: every negotiation and submission answers STATUS for a
# while; kl-agent keeps retrying (temporary), then passes.
server_error() {
	started
	vfault "[{$NEG, \"status\": $1, \"body\": $(err "$1" x), \"count\": -1},
		{$SUB, \"status\": $1, \"body\": $(err "$1" x), \"count\": -1}]"
	fails_during 2
	pass_after_clear
	stop_agent
	grep -q "temporary (111)" "$T/agent.err"
}

@test "faults: 500 from the verifier: retried, then PASS" { server_error 500; }
@test "faults: 502 from the verifier: retried, then PASS" { server_error 502; }
@test "faults: 503 from the verifier: retried, then PASS" { server_error 503; }
@test "faults: 504 from the verifier: retried, then PASS" { server_error 504; }

@test "faults: 429 with Retry-After in seconds: obeyed, then PASS" {
	started
	vfault "{$NEG, \"status\": 429, \"headers\": {\"Retry-After\": \"2\"}, \"body\": $(err 429 rate)}"
	wait_hit
	pass_after_clear
	stop_agent
	grep -q "next attempt in 2.000 s (retry-after, attempt 1)" "$T/agent.err"
}

@test "faults: 429 with Retry-After as an HTTP date: obeyed, then PASS" {
	started
	when=$(date -u -d "@$(($(date +%s) + 3))" '+%a, %d %b %Y %H:%M:%S GMT')
	vfault "{$NEG, \"status\": 429, \"headers\": {\"Retry-After\": \"$when\"}, \"body\": $(err 429 rate)}"
	wait_hit
	pass_after_clear
	stop_agent
	# 3 s from when the rule was made, less the time to the answer: 1-3 s.
	grep -qE "next attempt in [1-3]\.[0-9]{3} s \(retry-after, attempt 1\)" "$T/agent.err"
}

@test "faults: 401 mid-cycle (submission refused): one re-authentication, PASS" {
	started
	vfault "{$SUB, \"status\": 401, \"body\": $(err 401 unauthorized)}"
	wait_hit
	pass_after_clear
	stop_agent
	[ "$(grep -c "re-authenticating" "$T/agent.err")" = 1 ]
}

@test "faults: 403 from the verifier: refused while it lasts, then PASS" {
	started
	vfault "{$NEG, \"status\": 403, \"body\": $(err 403 forbidden), \"count\": -1}"
	fails_during 2
	pass_after_clear
	stop_agent
	grep -q "kl-negotiate: .*403" "$T/agent.err"
}

@test "faults: the challenge expires before the submission: negotiates again at once, PASS" {
	started
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/requests" >/dev/null
	# The submission is held 1.5 s; meanwhile the challenge expires.
	vfault "{$SUB, \"delay\": 1.5}"
	wait_request '^PATCH .*/attestations/'
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-challenge/$AGENT_ID" >/dev/null
	pass_after_clear
	stop_agent
	grep -q "kl-submit: .*(3)" "$T/agent.err"
}

@test "faults: truncated JSON (a complete reply, and one cut short): retried, then PASS" {
	started
	vfault "[{$NEG, \"status\": 201, \"content_type\": \"application/json\",
		\"body\": \"{\\\"data\\\": {\\\"type\\\": \\\"attestation\\\", \\\"attrib\", \"count\": 2},
		{$NEG, \"status\": 201, \"truncate\": true, \"count\": -1}]"
	fails_during 2
	wait_hit
	pass_after_clear
	stop_agent
}

@test "faults: a 10 MiB reply: refused (one line), then PASS" {
	started
	vfault "{$NEG, \"status\": 201, \"content_type\": \"application/json\", \"huge\": 10485760, \"count\": -1}"
	fails_during 2
	pass_after_clear
	stop_agent
	grep -q "kl-negotiate: error: POST .*: 201 reply is not a JSON:API attestation" "$T/agent.err"
}
