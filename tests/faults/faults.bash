# tests/faults/faults.bash - the fault matrix's shared part (issue 9), loaded by
# tests/bats/faults-*.bats (`load ../faults/faults`). Each test runs kl-agent as
# a daemon (short intervals) with swtpm and the test peers, injects one fault,
# clears it, and wants a pass within two intervals, every state file valid at
# every observation.
#
#   faults_setup_file / faults_teardown_file   swtpm, registrar, verifier
#   faults_setup / faults_teardown             a fresh agent (agent_new) per test
#   (setup_file, teardown_file, setup and teardown call them; a file may
#   define its own after the load)
#   start_agent [OPT...] / stop_agent          kl-agent --verbose in the background (after
#                                              the command in AGENT_START, if any)
#   enroll                                     register (kl-register) and enroll
#   vfault JSON / rfault JSON                  a fault rule at the verifier / registrar
#   clear_faults                               no rule left at either peer
#   passes                                     the verifier's count of passes
#   wait_pass [S]                              until one more pass than now (default 30 s)
#   pass_after_clear                           clear_faults, then a pass within
#                                              WINDOW s (two intervals)
#   states_valid                               every state file parses (jq)
#   started                                    enroll, start_agent, wait_pass
#   NEG, SUB, err STATUS CODE, wait_hit        fault rule pieces (negotiation,
#                                              submission, an error body), and
#                                              until every rule has been hit
#   set_conf KEY VALUE                         replace one key of agent.conf
#   wait_request REGEX [S]                     until the verifier got "METHOD path"
#   peer_restart verifier|registrar [--down]   SIGKILL the peer; start it again on
#                                              the same ports (unless --down)

load ../bats/fixtures/e2e/steps

# The verifier's quote_interval: the agent's interval after a pass.
INTERVAL=2
# "A pass within two intervals" after the fault clears.
WINDOW=$((2 * INTERVAL))

faults_setup_file() {
	kl_start_swtpm 3>&-
	kl_start_registrar 3>&-
	kl_start_verifier --quote-interval "$INTERVAL" 3>&-
	# One IMA log per file, consistent with PCR 10 since the swtpm started.
	: >"$BATS_FILE_TMPDIR/ima.log"
	tpm2_pcrextend "10:sha256=$($KLFIX ima-append "$BATS_FILE_TMPDIR/ima.log" boot_aggregate)" >/dev/null
}

faults_teardown_file() {
	kl_stop_peers
	kl_stop_swtpm
}

# Short HTTP timeout (a hung verifier costs 1.5 s per try), short backoff. No
# start-up splay: with it, a slow first pass is followed by the phase spread
# (up to one more interval, docs/fleet.md), and a fault that fails no cycle (a full
# disk) would wait for that next pass, not for the recovery this matrix times.
faults_setup() {
	T=$BATS_TEST_TMPDIR
	unset KL_STEP_DIR KL_SYSCONFDIR
	agent_new "$T" "attestation_interval_seconds = $INTERVAL" "startup_splay_seconds = 0" \
		"exponential_backoff_initial_delay = 100" \
		"exponential_backoff_max_delay = 800" \
		"exponential_backoff_max_retries = 2" "$@"
	ln -sf "$BATS_FILE_TMPDIR/ima.log" "$IMA_LOG"
	AGENT_PID=
	AGENT_START=()
}

faults_teardown() {
	if [ -n "${AGENT_PID:-}" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -TERM "$AGENT_PID"
		wait "$AGENT_PID" 2>/dev/null || true
	fi
	clear_faults || true
}

start_agent() {
	local cmd=("$KL_BIN/kl-agent")
	[ "${KL_WRAP:-}" = valgrind ] && cmd=(valgrind -q --error-exitcode=97 --leak-check=full \
		--errors-for-leak-kinds=definite "${cmd[@]}")
	# AGENT_START: a prefix that execs its arguments (kl-agent stays $!).
	"${AGENT_START[@]}" "${cmd[@]}" --verbose --timeout 1500 "$@" 2>>"$T/agent.err" 3>&- &
	AGENT_PID=$!
}

# stop_agent: TERM; kl-agent exits 0 and leaves valid state.
stop_agent() {
	local rc=0
	kill -TERM "$AGENT_PID"
	wait "$AGENT_PID" || rc=$?
	AGENT_PID=
	[ "$rc" = 0 ] || { echo "kl-agent exited $rc" >&2; cat "$T/agent.err" >&2; return 1; }
	states_valid
}

enroll() {
	register "$T/reg.json" && kl_enroll "$AGENT_ID" --ima-permissive
}

vfault() { kl_peer_ctl POST "$KL_VERIFIER_CTL/faults" "$1" >/dev/null; }
rfault() { kl_peer_ctl POST "$KL_REGISTRAR_CTL/faults" "$1" >/dev/null; }
clear_faults() {
	kl_peer_ctl DELETE "$KL_VERIFIER_CTL/faults" >/dev/null &&
		kl_peer_ctl DELETE "$KL_REGISTRAR_CTL/faults" >/dev/null
}

passes() { kl_passes "$AGENT_ID"; }

# states_valid: the files kl-agent and its steps keep in keylime_dir parse as
# JSON whenever they exist (the status file always once kl-agent has started),
# the status file names its state and agent, agent_data.json holds the AK.
# The tests look ten times a second and a jq costs ~20 ms of CPU (the suite's
# largest CPU cost when every look ran one per file), so one jq checks them
# all, and only when one of them changed since the last check: a marker is
# touched before each check, and the files are replaced by rename, so a file
# older than the marker is one already checked.
states_valid() {
	local f files=("$KDIR/kl-status.json") changed= mark=$T/states_valid.mark
	for f in agent_data.json ima_checkpoint.json kl-agent-registration.json; do
		[ -e "$KDIR/$f" ] && files+=("$KDIR/$f")
	done
	# (a file as old as the marker is checked again: timestamps are coarse)
	for f in "${files[@]}"; do
		[ -e "$f" ] && [ "$mark" -nt "$f" ] || changed=1
	done
	[ -n "$changed" ] || return 0
	touch "$mark"
	jq -n -e 'all(inputs; (input_filename | sub(".*/"; "")) as $f
		| if $f == "kl-status.json" then .state and .agent_id
		  elif $f == "agent_data.json" then .ak
		  else true end)' "${files[@]}" >/dev/null 2>"$T/states_valid.err" && return 0
	rm -f "$mark"
	# Which one, and why (the slow way, only on failure).
	for f in "${files[@]}"; do
		jq -e . "$f" >/dev/null || { echo "$f invalid:" >&2; cat "$f" >&2; }
	done
	cat "$T/states_valid.err" >&2
	jq -c '{state, agent_id}' "$KDIR/kl-status.json" >&2
	return 1
}

# wait_pass [S]: until the verifier counts one more pass than now, checking
# the state files at every look.
wait_pass() {
	local s=${1:-30} n i
	n=$(passes)
	for ((i = 0; i < s * 10; i++)); do
		[ -e "$KDIR/kl-status.json" ] && { states_valid || return 1; }
		[ "$(passes)" -gt "$n" ] && return 0
		sleep 0.1
	done
	echo "no pass within $s s (count $n)" >&2
	kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$AGENT_ID" | jq -c '{status, attestation_count}' >&2
	tail -n 20 "$T/agent.err" >&2
	return 1
}

# pass_after_clear: the fault clears; a pass follows within WINDOW seconds
# (the time is printed on failure).
pass_after_clear() {
	local t0 t1
	clear_faults
	t0=$(date +%s.%N)
	wait_pass $((WINDOW + 1)) || return 1
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" -v w="$WINDOW" 'BEGIN { d = b - a
		if (d > w) { printf "pass %.2f s after the fault cleared (> %d s)\n", d, w; exit 1 } }' >&2
}

# agent_alive: kl-agent still runs; else say so, with its stderr.
agent_alive() {
	kill -0 "$AGENT_PID" && return 0
	echo "kl-agent died" >&2
	cat "$T/agent.err" >&2
	return 1
}

# fails_during S: for S seconds with the fault on, no pass, state files valid
# at every look, kl-agent still running.
fails_during() {
	local s=$1 n i
	# The daemon writes its status file before its first cycle; under
	# valgrind, on a busy machine, that came more than 0.5 s after its start.
	for ((i = 0; i < 300; i++)); do
		[ -e "$KDIR/kl-status.json" ] && break
		agent_alive || return 1
		sleep 0.1
	done
	n=$(passes)
	for ((i = 0; i < s * 10; i++)); do
		states_valid || return 1
		agent_alive || return 1
		sleep 0.1
	done
	[ "$(passes)" = "$n" ] || { echo "a pass while the fault was on" >&2; return 1; }
}

# peer_restart NAME [--down]: SIGKILL the peer (its state is lost, like a
# restarted verifier's sessions), then start it on the same ports; --down
# leaves it stopped (peer_up NAME brings it back).
peer_restart() {
	local name=$1 dir pid
	dir=$(_kl_peers_tmp)/$name
	pid=$(cat "$dir/$name.started")
	kill -KILL "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
	cp "$dir/ports.json" "$dir/ports.last"
	[ "${2:-}" = --down ] || peer_up "$name"
}

peer_up() {
	local name=$1 dir
	dir=$(_kl_peers_tmp)/$name
	# The same NAME.started file gets the new pid: teardown_file stops it.
	if [ "$name" = verifier ]; then
		kl_start_verifier "$dir" --quote-interval "$INTERVAL" --ports "$dir/ports.last" 3>&-
	else
		kl_start_registrar "$dir" --ports "$dir/ports.last" 3>&-
	fi
}

# set_conf KEY VALUE: replace one key of the agent's agent.conf.
set_conf() {
	sed -i "/^$1 = /d" "$KEYLIME_AGENT_CONFIG"
	sed -i "/^\[agent\]/a $1 = $2" "$KEYLIME_AGENT_CONFIG"
}

# wait_request REGEX [S]: until the verifier has received a request whose
# "METHOD path" matches.
wait_request() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		kl_peer_ctl GET "$KL_VERIFIER_CTL/requests" |
			jq -e --arg rx "$1" 'any(.[]; "\(.method) \(.path)" | test($rx))' >/dev/null && return 0
		sleep 0.05
	done
	echo "no request $1 at the verifier" >&2
	return 1
}

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

setup_file() { faults_setup_file; }
teardown_file() { faults_teardown_file; }
setup() { faults_setup; }
teardown() { faults_teardown; }
