#!/usr/bin/env bats
# tests/bats/faults-http.bats - the fault matrix (issue 9), bad answers from the
# verifier: 500, 502, 503, 504, 403, truncated JSON, a 10 MiB reply
# (faults-retry.bats: 429, 401, an expired challenge). kl-agent runs as a
# daemon throughout; after each fault clears, a pass within two intervals,
# every state file valid at every look (tests/faults/faults.bash).
load helpers
load ../faults/faults

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

@test "faults: 403 from the verifier: refused while it lasts, then PASS" {
	started
	vfault "{$NEG, \"status\": 403, \"body\": $(err 403 forbidden), \"count\": -1}"
	fails_during 2
	pass_after_clear
	stop_agent
	grep -q "kl-negotiate: .*403" "$T/agent.err"
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
