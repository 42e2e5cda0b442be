#!/usr/bin/env bats
# tests/bats/kl-agent-daemon.bats - kl-agent as a daemon against fake steps
# (fixtures/agent/common.bash): the schedule, signals, HUP, backoff and recovery.
# Apart from kl-agent.bats, so that the two run in parallel (their waits are long).
load helpers
load fixtures/agent/common

# --- the daemon ---

@test "daemon: keeps attesting at the verifier's seconds_to_next_attestation" {
	# An interval far from the hint: a loaded machine delays a cycle, but
	# not by 4 s.
	setconf attestation_interval_seconds 5
	start_agent
	wait_for 15 calls_at_least kl-submit 4
	stop_agent TERM
	[ "$(calls kl-register)" = 1 ]
	[ "$(calls kl-session)" = 1 ]
	# A cycle starts 1 s after the last one's kl-submit (the fake verifier's
	# hint), not 5 s (attestation_interval_seconds).
	paste <(times kl-submit) <(times kl-negotiate | tail -n +2) | awk 'NF == 2 {
		d = $2 - $1; if (d < 1.0 || d > 3.0) { print "gap " d; bad = 1 } } END { exit bad }'
	grep -q "Attesting -> Negotiating: next cycle in 1.000 s (seconds_to_next_attestation)" "$T/agent.err"
	# Every transition is logged once, with the agent id.
	[ "$(grep -c "$ID: Unregistered -> Registered$" "$T/agent.err")" = 1 ]
	[ "$(grep -c "$ID: Registered -> Negotiating$" "$T/agent.err")" = 1 ]
	[ "$(grep -c "$ID: Negotiating -> Attesting$" "$T/agent.err")" = "$(calls kl-quote)" ]
}

@test "daemon: uses the last seconds_to_next_attestation when a reply lacks it" {
	plan kl-submit "1 ok 1" "* ok null"
	start_agent --attestation-interval-seconds 30
	# Three cycles with the 30 s interval would take a minute; 25 s leaves
	# room for a loaded machine (10 s did not, at load 12).
	wait_for 25 calls_at_least kl-submit 3
	stop_agent TERM
	grep -q "next cycle in 1.000 s (last seconds_to_next_attestation)" "$T/agent.err"
}

@test "daemon: verifier down, then back: jittered backoff within bounds, then recovery" {
	plan kl-negotiate "7 exit 111" "* ok"
	start_agent
	wait_for 20 calls_at_least kl-submit 2
	stop_agent TERM
	local n
	n=$(check_delays "$T/agent.err")
	[ "$n" -ge 7 ]
	# 3 tries per cycle (max_retries 2): two failed cycles, then a good one.
	[ "$(grep -c "Negotiating -> AttestationFailed: kl-negotiate: temporary (111): " "$T/agent.err")" = 2 ]
	[ "$(grep -c "AttestationFailed -> Negotiating$" "$T/agent.err")" = 2 ]
	# Jitter: the delays are not simply the caps 100, 200, 400, 800 ms.
	grep -oE "$DELAY_RE" "$T/agent.err" | grep -vqE "in 0\.(100|200|400|800) s"
	# Each retry came no sooner than its delay.
	paste <(times kl-negotiate | head -n 8) \
		<(grep -oE "$DELAY_RE" "$T/agent.err" | sed -E 's/next attempt in ([0-9.]+) s.*/\1/' | head -n 7) |
		awk 'NR > 1 && $1 - p < d - 0.01 { print "too early: " $1 - p " < " d; bad = 1 } { p = $1; d = $2 } END { exit bad }'
	[ "$(status '{consecutive_failures,last_exit_class}')" = '{"consecutive_failures":0,"last_exit_class":0}' ]
	status .last_success | grep -qv null
	# startup_splay_seconds = 0 (the fixture's) turns the phase spread off too.
	refute grep -q "phase spread" "$T/agent.err"
}

@test "daemon: a full keylime_dir at start is a warning; attesting goes on" {
	[ "$(id -u)" -eq 0 ] || skip "needs root for a tmpfs"
	mount -t tmpfs -o size=8k tmpfs "$T/lib" || skip "cannot mount tmpfs here"
	FULL_MNT=$T/lib
	head -c 1M /dev/zero >"$T/lib/filler" 2>/dev/null || true
	start_agent
	wait_for 15 calls_at_least kl-submit 2
	grep -q "kl-status.json.*No space left on device" "$T/agent.err"
	grep -q "the status file cannot be written for now: attesting anyway" "$T/agent.err"
	stop_agent TERM
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(jq -r .result <<<"$output")" = ok ]
	[[ $stderr == *"No space left on device"* ]]
}

@test "daemon: Retry-After is obeyed" {
	plan kl-negotiate "1 ok" "1 retry 2" "* ok"
	start_agent
	wait_for 15 calls_at_least kl-submit 2
	stop_agent TERM
	grep -q "Negotiating: kl-negotiate: temporary (111): next attempt in 2.000 s (retry-after, attempt 1)" "$T/agent.err"
	awk -v a="$(times kl-negotiate | sed -n 2p)" -v b="$(times kl-negotiate | sed -n 3p)" \
		'BEGIN { exit !(b - a >= 2.0 && b - a < 4.0) }'
}

@test "daemon: a 401 in the middle re-authenticates exactly once" {
	plan kl-submit "2 ok" "1 exit 2" "* ok"
	start_agent
	wait_for 15 calls_at_least kl-submit 5
	stop_agent TERM
	[ "$(calls kl-session)" = 2 ]
	[ "$(grep -c "re-authenticating" "$T/agent.err")" = 1 ]
	grep -q "$ID: Attesting: kl-submit: not authenticated (2): re-authenticating" "$T/agent.err"
	[[ "$(order)" == *"kl-submit kl-session kl-submit kl-negotiate"* ]]
	# The old token was dropped; every later step got the new one.
	refute jq -e .session "$T/kl-session.2.in" >/dev/null
	local new
	new=$(jq -r .session.token "$T/kl-submit.4.in")
	[ "$new" != "$(jq -r .session.token "$T/kl-submit.3.in")" ]
	[ "$new" = "$(jq -r .session.token "$T/kl-negotiate.4.in")" ]
	refute grep -q "AttestationFailed" "$T/agent.err"
}

@test "daemon: no secret in any step's argv or environment" {
	plan kl-submit "1 ok" "1 exit 2" "* ok"
	start_agent --timeout 3000
	wait_for 15 calls_at_least kl-submit 4
	stop_agent TERM
	# The token flowed through the pipes ...
	grep -q kl-fake-token "$T/kl-negotiate.1.in"
	# ... and never into argv or the environment.
	refute grep -q kl-fake-token "$T/calls.log"
	# Our own flags are passed on, without kl-agent's own.
	grep -q "^call kl-quote 1 .* | argv: --verbose --timeout 3000$" "$T/calls.log"
	run -0 --separate-stderr kl_run kl-agent --once --timeout 3000
	[ "$(grep '^call' "$T/calls.log" | tail -n 1 | sed 's/.*| argv: //')" = "--timeout 3000" ]
}

@test "daemon: TERM in the middle of a step stops it and exits 0 with a valid status" {
	plan kl-quote "1 sleep 30" "* ok"
	start_agent
	wait_for 10 grep -qx "sleeping kl-quote 1" "$T/calls.log"
	local t0=$SECONDS
	stop_agent TERM
	[ $((SECONDS - t0)) -le 3 ]
	grep -q "^term kl-quote 1$" "$T/calls.log"
	grep -q "kl-agent: info: kl-quote: stopping it" "$T/agent.err"
	[ "$(status '{state,next_due}')" = '{"state":"Attesting","next_due":null}' ]
	# No temporary file was left behind.
	[ -z "$(find "$T/lib" -name '*.tmp.*')" ]
	[ "$(calls kl-submit)" = 0 ]
}

@test "daemon: TERM or INT while waiting exits 0 at once" {
	plan kl-submit "* ok 60"
	start_agent
	wait_for 10 calls_at_least kl-submit 1
	# Waiting: the 60 s wait is announced and the status says so.
	wait_for 10 grep -q "next cycle in 60.000 s" "$T/agent.err"
	wait_for 10 eval "status .state | grep -qx '\"Negotiating\"'"
	local t0=$SECONDS
	stop_agent INT
	[ $((SECONDS - t0)) -le 2 ]
	status .state | grep -qx '"Negotiating"'
	grep -q "stopping on SIGINT" "$T/agent.err"
}

@test "daemon: a permanent failure waits; HUP re-reads the configuration and retries at once" {
	setconf exponential_backoff_max_delay 60000
	plan kl-negotiate "1 exit 100" "* ok"
	start_agent --insecure	# the http:// verifier below needs it
	wait_for 10 grep -q "next attempt in 60.000 s (permanent, attempt 1)" "$T/agent.err"
	sed -i 's/^exponential_backoff_max_delay = 60000$/verifier_url = "http:\/\/127.0.0.1:9"/' "$T/etc/agent.conf"
	kill -HUP "$AGENT_PID"
	wait_for 5 calls_at_least kl-submit 1
	stop_agent TERM
	grep -q "kl-agent: warning: verifier_url http://127.0.0.1:9: plain HTTP" "$T/agent.err"
	grep -q "SIGHUP: configuration reloaded" "$T/agent.err"
	[ "$(calls kl-register)" = 1 ]
}

@test "daemon: HUP with a new identity registers again; a bad configuration is kept out" {
	plan kl-submit "* ok 1"
	start_agent
	wait_for 10 calls_at_least kl-submit 1
	echo 'uuid = "11111111-2222-4333-8444-555555555555"' >>"$T/etc/agent.conf"
	kill -HUP "$AGENT_PID"
	wait_for 10 calls_at_least kl-register 2
	setconf attestation_interval_seconds '"soon"'
	kill -HUP "$AGENT_PID"
	wait_for 5 grep -q "configuration not reloaded: the steps read the same files, so no cycle runs until it is fixed" "$T/agent.err"
	# No step runs with the broken files; each attempt says why.
	local n
	n=$(wc -l <"$T/calls.log")
	wait_for 10 grep -q ": configuration: permanent (100): next attempt in 0.800 s (permanent, attempt 2)" "$T/agent.err"
	[ "$(grep -c "attestation_interval_seconds" "$T/agent.err")" -ge 2 ]
	[ "$(wc -l <"$T/calls.log")" = "$n" ]
	# Fixed: the next attempt runs a cycle again.
	setconf attestation_interval_seconds 1
	n=$(calls kl-submit)
	wait_for 10 calls_at_least kl-submit $((n + 1))
	stop_agent TERM
	grep -q "SIGHUP: the identity configuration changed: registering again" "$T/agent.err"
	[ "$(calls kl-register)" = 2 ]
}

# --- start-up splay (cmd/kl-agent/schedule.c) ---

# splay_of FILE: the drawn splay in ms and its bound in s ("1234 2"), once logged.
# "first cycle in 12.345 s (start-up splay, below 60 s)"
SPLAY_RE='first cycle in ([0-9]+)\.([0-9]{3}) s \(start-up splay, below ([0-9]+) s\)'

splay_of() {
	local line
	line=$(grep -E "$SPLAY_RE" "$1") || return 1
	[[ $line =~ $SPLAY_RE ]] && echo "$((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]})) ${BASH_REMATCH[3]}"
}

@test "splay: the daemon's first cycle waits a random delay below the interval" {
	setconf startup_splay_seconds 60
	setconf attestation_interval_seconds 3
	local t0 ms bound
	t0=$(date +%s.%N)
	start_agent
	wait_for 5 splay_of "$T/agent.err"
	read -r ms bound < <(splay_of "$T/agent.err")
	# Bounded by attestation_interval_seconds (3), not startup_splay_seconds (60).
	[ "$bound" = 3 ]
	[ "$ms" -lt 3000 ]
	[ "$(status .next_due)" != null ] || [ "$ms" -lt 1000 ]
	wait_for 6 calls_at_least kl-register 1
	stop_agent TERM
	# The first step ran no sooner than the drawn delay, and not much later.
	awk -v t0="$t0" -v t1="$(times kl-register | head -n 1)" -v ms="$ms" \
		'BEGIN { d = (t1 - t0) * 1000; if (d < ms || d > ms + 1500) { print "first step after " d " ms, splay " ms; exit 1 } }'
}


@test "splay: bounded by the verifier's last seconds_to_next_attestation from the status file" {
	# A first run leaves the fake verifier's hint (1 s) in the status file.
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(status .last_seconds_to_next_attestation)" = 1 ]
	setconf startup_splay_seconds 60
	setconf attestation_interval_seconds 60
	start_agent
	wait_for 5 calls_at_least kl-negotiate 2
	stop_agent TERM
	local ms bound
	read -r ms bound < <(splay_of "$T/agent.err")
	[ "$bound" = 1 ]
	[ "$ms" -lt 1000 ]
}


@test "splay: a restart during the splay keeps the verifier's hint, and so the bound" {
	echo '{"state": "Negotiating", "last_seconds_to_next_attestation": 3600}' >"$T/lib/kl-status.json"
	setconf startup_splay_seconds 7200
	setconf attestation_interval_seconds 7200
	local i ms bound
	for i in 1 2; do
		start_agent
		wait_for 5 splay_of "$T/agent.err"
		read -r ms bound < <(splay_of "$T/agent.err")
		[ "$bound" = 3600 ]
		[ "$(status .last_seconds_to_next_attestation)" = 3600 ]
		stop_agent TERM
		: >"$T/agent.err"
	done
	[ ! -e "$T/calls.log" ]
}


# "next cycle in 3.456 s (seconds_to_next_attestation + 1.456 s phase spread)"
SPREAD_RE='next cycle in ([0-9]+)\.([0-9]{3}) s \(seconds_to_next_attestation \+ ([0-9]+)\.([0-9]{3}) s phase spread\)'

@test "phase spread: a slow first success, and the first after a failure, wait up to one interval more" {
	# The reply to those cycles sets the agent's phase (docs/fleet.md). The
	# first cycle takes 0.5 s, more than a tenth of the 2-s interval: it waited
	# (here in kl-register), and its reply may have come with a crowd.
	setconf startup_splay_seconds 60
	plan kl-register "1 sleep 0.5"
	plan kl-submit "* ok 2"
	plan kl-negotiate "1 ok" "1 exit 111" "* ok"
	start_agent
	wait_for 30 calls_at_least kl-submit 4
	stop_agent TERM
	local lines i total extra next=(2 4)	# the kl-negotiate calls that start cycles 2 and 3
	mapfile -t lines < <(grep "Attesting -> Negotiating: next cycle in" "$T/agent.err")
	# Cycle 1 (the first) and cycle 2 (a retried kl-negotiate, then a success):
	# the hint (2 s) plus a draw below min(startup_splay_seconds, the hint).
	for i in 0 1; do
		[[ ${lines[i]} =~ $SPREAD_RE ]] || { echo "no phase spread: ${lines[i]}" >&2; return 1; }
		total=$((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]}))
		extra=$((10#${BASH_REMATCH[3]} * 1000 + 10#${BASH_REMATCH[4]}))
		[ "$extra" -lt 2000 ]
		[ "$total" = $((2000 + extra)) ]
		# The next cycle came no sooner.
		awk -v a="$(times kl-submit | sed -n "$((i + 1))p")" -v b="$(times kl-negotiate | sed -n "${next[i]}p")" \
			-v d="$total" 'BEGIN { if ((b - a) * 1000 < d - 10) { print "after " (b - a) " s, not " d " ms"; exit 1 } }'
	done
	# Cycle 3 follows the hint exactly: its phase stays.
	[[ ${lines[2]} == *"next cycle in 2.000 s (seconds_to_next_attestation)" ]]
}

@test "phase spread: none after a prompt first success: the start-up splay drew its phase" {
	# A 30-s interval: the fake steps' first cycle takes far less than a tenth.
	setconf startup_splay_seconds 60
	plan kl-submit "* ok 30"
	start_agent
	wait_for 10 grep -q "next cycle in" "$T/agent.err"
	stop_agent TERM
	grep -q "first cycle in .* (start-up splay, below 2 s)" "$T/agent.err"
	run -0 grep "next cycle in" "$T/agent.err"
	[ "${#lines[@]}" = 1 ]
	[[ ${lines[0]} == *"Attesting -> Negotiating: next cycle in 30.000 s (seconds_to_next_attestation)" ]]
}

@test "splay: startup_splay_seconds = 0 disables it; --once is always immediate" {
	local t0
	t0=$(date +%s.%N)
	start_agent
	wait_for 5 calls_at_least kl-register 1
	stop_agent TERM
	refute grep -q "start-up splay" "$T/agent.err"
	awk -v t0="$t0" -v t1="$(times kl-register | head -n 1)" 'BEGIN { exit !(t1 - t0 < 1.0) }'
	# --once ignores it: the timer's RandomizedDelaySec spreads those runs.
	setconf startup_splay_seconds 3600
	setconf attestation_interval_seconds 3600
	rm -f "$T/calls.log" "$T/lib/kl-status.json"
	t0=$(date +%s.%N)
	run -0 --separate-stderr kl_run kl-agent --once
	[[ $stderr != *"start-up splay"* ]]
	awk -v t0="$t0" -v t1="$(times kl-register | head -n 1)" 'BEGIN { exit !(t1 - t0 < 1.0) }'
}


@test "splay: agents started together draw different delays; TERM during the splay exits 0 at once" {
	setconf startup_splay_seconds 3600
	setconf attestation_interval_seconds 3600
	local i pids=() t0 ms bound
	agent_cmd
	for i in 1 2 3; do
		mkdir -p "$T/a$i"
		KEYLIME_DIR=$T/a$i "${CMD[@]}" --verbose 2>"$T/a$i.err" 3>&- &
		pids+=($!)
	done
	for i in 1 2 3; do
		wait_for 5 splay_of "$T/a$i.err"
	done
	t0=$SECONDS
	kill -TERM "${pids[@]}"
	for i in 0 1 2; do
		wait "${pids[$i]}"	# exit 0
	done
	[ $((SECONDS - t0)) -le 2 ]
	# No step ran; every status file says nothing is due any more.
	[ ! -e "$T/calls.log" ]
	for i in 1 2 3; do
		read -r ms bound < <(splay_of "$T/a$i.err")
		[ "$bound" = 3600 ] && [ "$ms" -lt 3600000 ]
		echo "$ms" >>"$T/drawn"
		grep -q "stopping on SIGTERM" "$T/a$i.err"
		[ "$(jq -c .next_due "$T/a$i/kl-status.json")" = null ]
	done
	[ "$(sort -u "$T/drawn" | wc -l)" = 3 ]
}


@test "splay: HUP during the splay reloads the configuration but does not draw again" {
	setconf startup_splay_seconds 5
	setconf attestation_interval_seconds 5
	local try ms=0 bound t0
	# Draw until the splay leaves time for a HUP (P(< 1.5 s) = 0.3 each time).
	for try in 1 2 3 4 5 6 7 8; do
		t0=$(date +%s.%N)
		start_agent
		wait_for 5 splay_of "$T/agent.err"
		read -r ms bound < <(splay_of "$T/agent.err")
		[ "$ms" -ge 1500 ] && break
		stop_agent TERM
		rm -f "$T/calls.log"
	done
	[ "$ms" -ge 1500 ]
	kill -HUP "$AGENT_PID"
	wait_for 5 grep -q "SIGHUP: configuration reloaded" "$T/agent.err"
	[ ! -e "$T/calls.log" ] || [ "$(calls kl-register)" = 0 ]
	wait_for 8 calls_at_least kl-register 1
	stop_agent TERM
	[ "$(grep -c "start-up splay" "$T/agent.err")" = 1 ]
	awk -v t0="$t0" -v t1="$(times kl-register | head -n 1)" -v ms="$ms" \
		'BEGIN { d = (t1 - t0) * 1000; if (d < ms || d > ms + 1500) { print "first step after " d " ms, splay " ms; exit 1 } }'
}

