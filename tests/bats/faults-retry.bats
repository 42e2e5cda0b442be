#!/usr/bin/env bats
# tests/bats/faults-retry.bats - the fault matrix (issue 9), answers that ask
# for another try: 429 with Retry-After in seconds, as an HTTP date and 0; a
# 401 mid-cycle; a challenge that expires before the submission. kl-agent
# runs as a daemon throughout; after each fault clears, a pass within two
# intervals, every state file valid at every look (tests/faults/faults.bash).
load helpers
load ../faults/faults

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

@test "faults: 429 with Retry-After: 0 (a limiter still blocking): at least 1 s apart, then PASS" {
	started
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/requests" >/dev/null
	vfault "{$NEG, \"status\": 429, \"headers\": {\"Retry-After\": \"0\"}, \"body\": $(err 429 rate), \"count\": -1}"
	t0=$(date +%s.%N)
	fails_during 3
	n=$(kl_peer_ctl GET "$KL_VERIFIER_CTL/requests?method=POST&path=/attestations%24" | jq length)
	# Not a burst (the retries once went 4 in 100 ms): >= 1 s apart.
	awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$n" 'BEGIN { exit !(n >= 2 && n <= int(b - a) + 1) }'
	pass_after_clear
	stop_agent
	grep -q "next attempt in [1-9][0-9.]* s (retry-after-zero, attempt 1)" "$T/agent.err"
}

@test "faults: 401 mid-cycle (submission refused): one re-authentication, PASS" {
	started
	vfault "{$SUB, \"status\": 401, \"body\": $(err 401 unauthorized)}"
	wait_hit
	pass_after_clear
	stop_agent
	[ "$(grep -c "re-authenticating" "$T/agent.err")" = 1 ]
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
