#!/usr/bin/env bats
# tests/bats/faults-network.bats - the fault matrix (issue 9), the network: the
# verifier or registrar down, killed mid-request, restarted (sessions lost), a
# refused connection (faults-slow.bats: a name that does not resolve, a
# server that never answers or trickles). kl-agent runs as a daemon throughout; after each fault
# clears, a pass within two intervals, every state file valid at every look
# (tests/faults/faults.bash).
load helpers
load ../faults/faults

@test "faults: verifier down at start (connection refused), then up: PASS" {
	enroll
	peer_restart verifier --down
	start_agent
	sleep 0.5
	fails_during 3
	peer_up verifier
	kl_enroll "$AGENT_ID" --ima-permissive
	pass_after_clear
	stop_agent
}

@test "faults: verifier killed during negotiation, back without its sessions: re-authenticates, PASS" {
	enroll
	start_agent
	wait_pass
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/requests" >/dev/null
	vfault '{"method": "POST", "path": "/attestations$", "delay": 5}'
	wait_request '^POST .*/attestations$'
	peer_restart verifier
	kl_enroll "$AGENT_ID" --ima-permissive
	pass_after_clear
	stop_agent
	grep -q "re-authenticating" "$T/agent.err"
}

@test "faults: verifier killed during submission, back without its sessions: re-authenticates, PASS" {
	enroll
	start_agent
	wait_pass
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/requests" >/dev/null
	vfault '{"method": "PATCH", "path": "/attestations/", "delay": 5}'
	wait_request '^PATCH .*/attestations/'
	peer_restart verifier
	kl_enroll "$AGENT_ID" --ima-permissive
	pass_after_clear
	stop_agent
	grep -q "re-authenticating" "$T/agent.err"
}

@test "faults: verifier restarted between cycles, sessions lost: one 401, one re-authentication, PASS" {
	enroll
	start_agent
	wait_pass
	peer_restart verifier
	kl_enroll "$AGENT_ID" --ima-permissive
	pass_after_clear
	stop_agent
	[ "$(grep -c "re-authenticating" "$T/agent.err")" = 1 ]
}

@test "faults: verifier down mid-run (connection refused), then up: PASS" {
	enroll
	start_agent
	wait_pass
	peer_restart verifier --down
	fails_during 3
	peer_up verifier
	kl_enroll "$AGENT_ID" --ima-permissive
	pass_after_clear
	stop_agent
}

@test "faults: registrar down at start: registration retried, then PASS" {
	peer_restart registrar --down
	start_agent
	sleep 0.5
	fails_during 3
	peer_up registrar
	for ((i = 0; i < 100; i++)); do
		kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$AGENT_ID" >/dev/null 2>&1 && break
		sleep 0.1
	done
	kl_enroll "$AGENT_ID" --ima-permissive
	pass_after_clear
	stop_agent
	grep -q "RegistrationFailed" "$T/agent.err"
}
