#!/usr/bin/env bats
# tests/bats/kl-agent.bats - kl-agent --once, its configuration and privileges
# against fake steps (fixtures/agent/common.bash), plus the backoff unit
# (build/tests/test_backoff) and the systemd units in dist/systemd. The daemon
# is in kl-agent-daemon.bats.
load helpers
load fixtures/agent/common

# --- backoff and schedule (lib/kl_backoff.c) ---

@test "backoff: the cap doubles from the initial delay up to the maximum" {
	run -0 kl_unit backoff cap 10000 300000 1
	[ "$output" = 10000 ]
	run -0 kl_unit backoff cap 10000 300000 2
	[ "$output" = 20000 ]
	run -0 kl_unit backoff cap 10000 300000 5
	[ "$output" = 160000 ]
	run -0 kl_unit backoff cap 10000 300000 6
	[ "$output" = 300000 ]
	run -0 kl_unit backoff cap 10000 300000 4000000000
	[ "$output" = 300000 ]
	run -0 kl_unit backoff cap 1 9223372036854775807 200
	[ "$output" = 9223372036854775807 ]
	run -0 kl_unit backoff cap 500 300 1
	[ "$output" = 300 ]
	run -0 kl_unit backoff cap 10000 300000 0
	[ "$output" = 0 ]
}

@test "backoff: full jitter maps the random value onto [0, cap]" {
	run -0 kl_unit backoff delay 100 800 3 0
	[ "$output" = 0 ]
	run -0 kl_unit backoff delay 100 800 3 400
	[ "$output" = 400 ]
	run -0 kl_unit backoff delay 100 800 3 401
	[ "$output" = 0 ]
	run -0 kl_unit backoff delay 100 800 3 18446744073709551615
	[ "$output" -ge 0 ] && [ "$output" -le 400 ]
}

@test "backoff: random delays stay in bounds, spread out, and differ between processes" {
	run -0 kl_unit backoff sample 1000 300000 4 400
	local a=$output
	[ "$(wc -l <<<"$a")" -eq 400 ]
	[ "$(awk '$1 < 0 || $1 > 8000' <<<"$a" | wc -l)" -eq 0 ]
	# Full jitter: both halves of [0, 8000] are used.
	[ "$(awk '$1 < 4000' <<<"$a" | wc -l)" -gt 100 ]
	[ "$(awk '$1 >= 4000' <<<"$a" | wc -l)" -gt 100 ]
	run -0 kl_unit backoff sample 1000 300000 4 400
	[ "$output" != "$a" ]
}

@test "schedule: the hint, then the last hint, else attestation_interval_seconds" {
	run -0 --separate-stderr kl_unit backoff sched 7 null 3 null null 4
	[ "$output" = "7 attestation_interval_seconds
3 seconds_to_next_attestation
3 last seconds_to_next_attestation
3 last seconds_to_next_attestation
4 seconds_to_next_attestation" ]
	[ -z "$stderr" ]
}

@test "schedule: absurd hints are clamped with a warning" {
	run -0 --separate-stderr kl_unit backoff sched 7 100000 -5
	[ "$output" = "86400 seconds_to_next_attestation
0 seconds_to_next_attestation" ]
	[ "$stderr" = "test_backoff: warning: seconds_to_next_attestation 100000 is absurd: using 86400
test_backoff: warning: seconds_to_next_attestation -5 is negative: using 0" ]
}

@test "schedule: an interval beyond the liveness window (5 x the hint) is warned about once" {
	run -0 --separate-stderr kl_unit backoff sched 60 2 2 null 20
	[ "$output" = "2 seconds_to_next_attestation
2 seconds_to_next_attestation
2 last seconds_to_next_attestation
20 seconds_to_next_attestation" ]
	[ "$stderr" = "test_backoff: warning: attestation_interval_seconds 60 exceeds the verifier's liveness window (5 x seconds_to_next_attestation 2 = 10 s)" ]
}

# --- --once ---

@test "--once: registers, runs every step once in order, prints the next due time" {
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(order)" = "kl-register kl-session kl-negotiate kl-quote kl-submit" ]
	[ "$(jq -c 'del(.next_due)' <<<"$output")" = \
		'{"result":"ok","exit":0,"agent_id":"'$ID'","next_in":1,"reason":"seconds_to_next_attestation","seconds_to_next_attestation":1}' ]
	local due now
	due=$(date -d "$(jq -r .next_due <<<"$output")" +%s)
	now=$(date +%s)
	[ $((due - now)) -ge 0 ] && [ $((due - now)) -le 2 ]
	[ "$(status '{state,agent_id,consecutive_failures,last_exit_class,last_seconds_to_next_attestation}')" = \
		'{"state":"Negotiating","agent_id":"'$ID'","consecutive_failures":0,"last_exit_class":0,"last_seconds_to_next_attestation":1}' ]
	status '.last_success, .next_due, .updated_at' | grep -qvx null
	# No secret in it, and monitors running as other users read it.
	[ "$(stat -c %a "$T/lib/kl-status.json")" = 644 ]
	# Each step got the document of the one before it.
	jq -e '.agent.id and .session.token and .challenge and .evidence' "$T/kl-submit.1.in" >/dev/null
	[ -z "$stderr" ]
}

@test "--once: the next run reuses the registration, but not the token" {
	run -0 --separate-stderr kl_run kl-agent --once
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(calls kl-register)" = 1 ]
	[ "$(calls kl-session)" = 2 ]
	[ "$(calls kl-submit)" = 2 ]
	refute grep -q token "$T/lib/kl-agent-registration.json"
	jq -e '.agent.id' "$T/kl-session.2.in" >/dev/null
	refute jq -e '.session' "$T/kl-session.2.in" >/dev/null
}

@test "--once: a changed identity registers again" {
	run -0 --separate-stderr kl_run kl-agent --once
	KEYLIME_AGENT_UUID=11111111-2222-4333-8444-555555555555 \
		run -0 --separate-stderr kl_run kl-agent --once
	[ "$(calls kl-register)" = 2 ]
	run -0 --separate-stderr kl_run kl-agent --once --tcti swtpm:port=1
	[ "$(calls kl-register)" = 3 ]
}

@test "--once: exit 1 when the peer says no; the status counts the failure" {
	plan kl-negotiate "* exit 1"
	run -1 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{result,exit,reason}' <<<"$output")" = '{"result":"refused","exit":1,"reason":"backoff"}' ]
	[ "$(jq .next_in <<<"$output")" -le 1 ]
	[ "$(calls kl-negotiate)" = 1 ]
	[ "$(calls kl-quote)" = 0 ]
	[[ $stderr =~ "kl-agent: warning: $ID: Negotiating -> AttestationFailed: kl-negotiate: refused (1): "$DELAY_RE ]]
	[ "$(status '{state,consecutive_failures,last_exit_class}')" = \
		'{"state":"AttestationFailed","consecutive_failures":1,"last_exit_class":1}' ]
	run -1 --separate-stderr kl_run kl-agent --once
	[ "$(status .consecutive_failures)" = 2 ]
	plan kl-negotiate "* ok"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(status '{state,consecutive_failures}')" = '{"state":"Negotiating","consecutive_failures":0}' ]
}

@test "--once: exit 1 from kl-register is RegistrationFailed" {
	plan kl-register "* exit 1"
	run -1 --separate-stderr kl_run kl-agent --once
	[ "$(order)" = kl-register ]
	[[ $stderr == *"kl-agent: warning: $ID: Unregistered -> RegistrationFailed: kl-register: refused (1): next attempt in "* ]]
	[ "$(status .state)" = '"RegistrationFailed"' ]
	[ ! -e "$T/lib/kl-agent-registration.json" ]
}

@test "--once: exit 2 re-authenticates once and redoes the step; a second 2 ends the cycle with 2" {
	plan kl-submit "1 exit 2" "* ok"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(order)" = "kl-register kl-session kl-negotiate kl-quote kl-submit kl-session kl-submit" ]
	# kl-session was given the document without the old session.
	refute jq -e '.session' "$T/kl-session.2.in" >/dev/null
	[ "$(jq -r .session.token "$T/kl-submit.1.in")" != "$(jq -r .session.token "$T/kl-submit.2.in")" ]
	[ -z "$stderr" ]

	rm -f "$T"/*.count "$T/calls.log"
	plan kl-submit "* exit 2"
	run -2 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{result,exit}' <<<"$output")" = '{"result":"reauth","exit":2}' ]
	[ "$(order)" = "kl-session kl-negotiate kl-quote kl-submit kl-session kl-submit" ]
}

@test "--once: exit 3 negotiates again at once, at most 3 times, then exits 3" {
	plan kl-quote "1 exit 3" "* ok"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(order)" = "kl-register kl-session kl-negotiate kl-quote kl-negotiate kl-quote kl-submit" ]

	rm -f "$T"/*.count "$T/calls.log"
	plan kl-quote "* ok"
	plan kl-submit "* exit 3"
	run -3 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{result,exit}' <<<"$output")" = '{"result":"renegotiate","exit":3}' ]
	[ "$(calls kl-negotiate)" = 4 ]
	[ "$(calls kl-submit)" = 4 ]
}

@test "--once: exit 100 is not retried; the next attempt waits the maximum delay" {
	plan kl-quote "* exit 100"
	run -100 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{result,exit,next_in,reason}' <<<"$output")" = \
		'{"result":"permanent","exit":100,"next_in":1,"reason":"permanent"}' ]
	[ "$(calls kl-quote)" = 1 ]
	[[ $stderr == *"Attesting -> AttestationFailed: kl-quote: permanent (100): next attempt in 0.800 s (permanent, attempt 1)" ]]
}

@test "--once: exit 111 is retried exponential_backoff_max_retries times, then exits 111" {
	plan kl-negotiate "* exit 111"
	run -111 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{result,exit,reason}' <<<"$output")" = '{"result":"temporary","exit":111,"reason":"backoff"}' ]
	[ "$(calls kl-negotiate)" = 3 ]
	[ "$(grep -cE "$DELAY_RE" <<<"$stderr")" = 3 ]
	[ "$(check_delays <(echo "$stderr"))" = 3 ]
	# Each failed run counts as it happens: 2 retries and the last failure.
	[ "$(status '{consecutive_failures,last_exit_class}')" = '{"consecutive_failures":3,"last_exit_class":111}' ]

	rm -f "$T"/*.count "$T/calls.log"
	KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_RETRIES=0 run -111 --separate-stderr kl_run kl-agent --once
	[ "$(calls kl-negotiate)" = 1 ]
}

@test "--once: a temporary failure then success recovers within the cycle" {
	plan kl-negotiate "2 exit 111" "* ok"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(calls kl-negotiate)" = 3 ]
	[ "$(check_delays <(echo "$stderr"))" = 2 ]
	[ "$(status .consecutive_failures)" = 0 ]
}

@test "--once: retry.after (Retry-After) wins over backoff" {
	setconf exponential_backoff_initial_delay 5000
	setconf exponential_backoff_max_delay 5000
	plan kl-negotiate "1 retry 1" "* ok"
	run -0 --separate-stderr kl_run kl-agent --once
	[[ $stderr == *"kl-agent: warning: $ID: Negotiating: kl-negotiate: temporary (111): next attempt in 1.000 s (retry-after, attempt 1)"* ]]
	local t1 t2
	t1=$(times kl-negotiate | sed -n 1p)
	t2=$(times kl-negotiate | sed -n 2p)
	awk -v a="$t1" -v b="$t2" 'BEGIN { exit !(b - a >= 1.0 && b - a < 3.0) }'
}

@test "--once: retry.after 0 (Keylime's rate limiter rounding down) backs off at least 1 s" {
	plan kl-negotiate "2 retry 0" "* ok"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(calls kl-negotiate)" = 3 ]
	[[ $stderr == *"kl-negotiate: temporary (111): next attempt in 1.000 s (retry-after-zero, attempt 1)"* ]]
	[[ $stderr == *"kl-negotiate: temporary (111): next attempt in 1.000 s (retry-after-zero, attempt 2)"* ]]
	local t1 t3
	t1=$(times kl-negotiate | sed -n 1p)
	t3=$(times kl-negotiate | sed -n 3p)
	awk -v a="$t1" -v b="$t3" 'BEGIN { exit !(b - a >= 2.0) }'
}

@test "--once: backoff starts at the last seconds_to_next_attestation, inside the liveness window" {
	setconf exponential_backoff_initial_delay 60000
	setconf exponential_backoff_max_delay 60000
	setconf exponential_backoff_max_retries 1
	plan kl-submit "* ok 1"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(status .last_seconds_to_next_attestation)" = 1 ]
	plan kl-negotiate "1 exit 111" "* ok"
	rm -f "$T/kl-negotiate.count"
	run -0 --separate-stderr kl_run kl-agent --once
	[[ $stderr =~ $DELAY_RE ]]
	[ "${BASH_REMATCH[3]}" = backoff ]
	[ "${BASH_REMATCH[1]}" -eq 0 ] || [ "${BASH_REMATCH[1]}${BASH_REMATCH[2]}" = 1000 ]
}

@test "--once: an absurd consecutive_failures in the status file is clamped, the backoff does not wrap to 0" {
	local n
	for n in 9223372036854775807 4294967295 -5; do
		jq -n --argjson n "$n" '{state:"AttestationFailed",agent_id:null,last_success:null,
			consecutive_failures:$n,next_due:null,last_exit_class:111,
			last_seconds_to_next_attestation:null}' >"$T/lib/kl-status.json"
		plan kl-negotiate "* exit 111"
		KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_RETRIES=0 run -111 --separate-stderr kl_run kl-agent --once
		[[ $stderr =~ $DELAY_RE ]]
		[ "${BASH_REMATCH[4]}" -ge 1 ]
		[ "$(status .consecutive_failures)" -ge 1 ]
		[ "$(status .consecutive_failures)" -le 1000001 ]
	done
}

@test "--once: the status file counts a failure during the in-cycle retry that follows it" {
	plan kl-negotiate "* retry 2"
	start_agent --once
	# During the 2 s wait after the first failure, before the second run.
	wait_for 5 eval '[ "$(status .consecutive_failures 2>/dev/null)" = 1 ]'
	[ "$(calls kl-negotiate)" = 1 ]
	[ "$(status .last_exit_class)" = 111 ]
	local rc=0
	wait "$AGENT_PID" || rc=$?
	AGENT_PID=
	[ "$rc" = 111 ]
	[ "$(status .consecutive_failures)" = 3 ]
}

@test "--once: descriptors kl-agent inherited do not reach the steps" {
	: >"$T/inherited"
	kl_run kl-agent --once 9>"$T/inherited" 7<"$T/etc/agent.conf" >/dev/null 2>&1
	grep -q "^fd kl-submit 1: 1 -> " "$T/calls.log"
	refute grep -E "^fd .*-> ($T/inherited|$T/etc/agent.conf)\$" "$T/calls.log"
}

@test "--once: a step killed by a signal counts as temporary" {
	plan kl-quote "* kill KILL"
	KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_RETRIES=0 run -111 --separate-stderr kl_run kl-agent --once
	[[ $stderr == *"kl-agent: warning: kl-quote: killed by signal 9: temporary"* ]]
}

@test "--once: a step that breaks the contract is a permanent failure" {
	plan kl-negotiate "* garbage"
	run -100 --separate-stderr kl_run kl-agent --once
	[[ $stderr == *"kl-agent: error: kl-negotiate stdout:1:"* ]]
	plan kl-negotiate "* nomember"
	run -100 --separate-stderr kl_run kl-agent --once
	[[ $stderr == *"kl-agent: error: kl-negotiate: exit 0 but no challenge in its document"* ]]
	plan kl-negotiate "* exit 42"
	run -100 --separate-stderr kl_run kl-agent --once
	[[ $stderr == *"kl-agent: error: kl-negotiate: exit code 42 is not in docs/contract.md: permanent"* ]]
	plan kl-negotiate "* exit 0"
	run -100 --separate-stderr kl_run kl-agent --once
	[[ $stderr == *"kl-agent: error: kl-negotiate: exit 0 without a document on stdout"* ]]
}

@test "--once: documents larger than a pipe buffer pass through" {
	plan kl-register "* big 2048"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(jq -r '.pad | length' "$T/kl-submit.1.in")" = 2097152 ]
}

@test "--once: a missing seconds_to_next_attestation falls back to the last one, then the interval" {
	plan kl-submit "* ok null"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{next_in,reason,seconds_to_next_attestation}' <<<"$output")" = \
		'{"next_in":2,"reason":"attestation_interval_seconds","seconds_to_next_attestation":null}' ]
	plan kl-submit "1 ok 1" "* ok null"
	rm -f "$T/kl-submit.count"
	run -0 --separate-stderr kl_run kl-agent --once
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(jq -c '{next_in,reason}' <<<"$output")" = '{"next_in":1,"reason":"last seconds_to_next_attestation"}' ]
}

@test "--once: an absurd seconds_to_next_attestation is clamped with a warning" {
	plan kl-submit "* ok 1000000"
	run -0 --separate-stderr kl_run kl-agent --once
	[ "$(jq .next_in <<<"$output")" = 86400 ]
	[ "$stderr" = "kl-agent: warning: seconds_to_next_attestation 1000000 is absurd: using 86400" ]
}

@test "--once: an interval beyond the verifier's liveness window is warned about" {
	plan kl-submit "* ok 3"
	run -0 --separate-stderr kl_run kl-agent --once --attestation-interval-seconds 16
	[ "$stderr" = "kl-agent: warning: attestation_interval_seconds 16 exceeds the verifier's liveness window (5 x seconds_to_next_attestation 3 = 15 s)" ]
	run -0 --separate-stderr kl_run kl-agent --once --attestation-interval-seconds 15
	[ -z "$stderr" ]
}

@test "--once: a corrupt status file is replaced, with a warning" {
	echo '{"state":' >"$T/lib/kl-status.json"
	run -0 --separate-stderr kl_run kl-agent --once
	[[ $stderr == "kl-agent: warning: $T/lib/kl-status.json:"*": not a status file, starting afresh" ]]
	[ "$(status .state)" = '"Negotiating"' ]
}

@test "--once: agents started together draw different backoff delays" {
	mkdir -p "$T/b/lib"
	plan kl-negotiate "* exit 111"
	setconf exponential_backoff_max_retries 4
	setconf exponential_backoff_max_delay 100000
	setconf exponential_backoff_initial_delay 1000
	# Both agents share the fake steps' plan; each gets its own status file.
	agent_cmd
	"${CMD[@]}" --once 2>"$T/a.err" >/dev/null 3>&- &
	local pa=$!
	KEYLIME_DIR=$T/b/lib "${CMD[@]}" --once 2>"$T/b.err" >/dev/null 3>&- &
	local pb=$!
	# Stop them after the delays are drawn; only the first three are compared.
	wait_for 20 eval '[ "$(grep -cE "$DELAY_RE" "$T/a.err")" -ge 3 ] && [ "$(grep -cE "$DELAY_RE" "$T/b.err")" -ge 3 ]'
	kill -TERM $pa $pb
	wait $pa $pb || true
	local da db
	da=$(grep -oE "$DELAY_RE" "$T/a.err" | head -n 3)
	db=$(grep -oE "$DELAY_RE" "$T/b.err" | head -n 3)
	[ "$da" != "$db" ]
}

# --- configuration ---

# url_warned: run --once (--insecure: an http:// verifier is refused without
# it) and print the verifier_url it warned about.
url_warned() {
	run -0 --separate-stderr kl_run kl-agent --once --insecure "$@"
	sed -n 's/^kl-agent: warning: verifier_url \(.*\): plain HTTP.*/\1/p' <<<"$stderr"
}

@test "config: agent.conf is read" {
	echo 'verifier_url = "http://file.invalid:1"' >>"$T/etc/agent.conf"
	[ "$(url_warned)" = "http://file.invalid:1" ]
}

@test "config: a drop-in overrides agent.conf" {
	echo 'verifier_url = "http://file.invalid:1"' >>"$T/etc/agent.conf"
	mkdir "$T/etc/agent.conf.d"
	printf '[agent]\nverifier_url = "http://dropin.invalid:2"\n' >"$T/etc/agent.conf.d/50-kl.conf"
	[ "$(url_warned)" = "http://dropin.invalid:2" ]
}

@test "config: KEYLIME_AGENT_* overrides the files" {
	echo 'verifier_url = "http://file.invalid:1"' >>"$T/etc/agent.conf"
	mkdir "$T/etc/agent.conf.d"
	printf '[agent]\nverifier_url = "http://dropin.invalid:2"\n' >"$T/etc/agent.conf.d/50-kl.conf"
	export KEYLIME_AGENT_VERIFIER_URL=http://env.invalid:3
	[ "$(url_warned)" = "http://env.invalid:3" ]
}

@test "config: a flag overrides everything" {
	echo 'verifier_url = "http://file.invalid:1"' >>"$T/etc/agent.conf"
	mkdir "$T/etc/agent.conf.d"
	printf '[agent]\nverifier_url = "http://dropin.invalid:2"\n' >"$T/etc/agent.conf.d/50-kl.conf"
	export KEYLIME_AGENT_VERIFIER_URL=http://env.invalid:3
	[ "$(url_warned --verifier-url http://flag.invalid:4)" = "http://flag.invalid:4" ]
}

@test "config: KEYLIME_AGENT_CONFIG names the one file; KEYLIME_DIR places the state" {
	printf '[agent]\nverifier_url = "http://alone.invalid:5"\n' >"$T/alone.conf"
	mkdir "$T/elsewhere"
	KEYLIME_AGENT_CONFIG=$T/alone.conf KEYLIME_DIR=$T/elsewhere url_warned >"$T/url"
	[ "$(cat "$T/url")" = "http://alone.invalid:5" ]
	[ -f "$T/elsewhere/kl-status.json" ]
}

@test "config: an upstream agent.conf with pull-only keys is accepted" {
	cat >"$T/etc/agent.conf" <<-'EOF'
	[agent]
	version = "2.5"
	api_versions = "default"
	uuid = "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"
	ip = "127.0.0.1"
	port = 9002
	contact_ip = "127.0.0.1"
	contact_port = 9002
	registrar_ip = "127.0.0.1"
	registrar_port = 8890
	enable_agent_mtls = true
	server_key = "default"
	server_key_password = ""
	server_cert = "default"
	trusted_client_ca = "default"
	enc_keyname = "derived_tci_key"
	dec_payload_file = "decrypted_payload"
	secure_size = "1m"
	tpm_ownerpassword = ""
	extract_payload_zip = true
	enable_revocation_notifications = false
	revocation_actions_dir = "/usr/libexec/keylime"
	revocation_notification_ip = "127.0.0.1"
	revocation_notification_port = 8992
	revocation_cert = "default"
	revocation_actions = ""
	payload_script = "autorun.sh"
	enable_insecure_payload = false
	allow_payload_revocation_actions = true
	tpm_hash_alg = "sha256"
	tpm_encryption_alg = "rsa"
	tpm_signing_alg = "rsassa"
	ek_handle = "generate"
	enable_iak_idevid = false
	run_as = ""
	agent_data_path = "default"
	ima_ml_path = "default"
	measuredboot_ml_path = "default"
	attestation_interval_seconds = 2
	exponential_backoff_initial_delay = 100
	exponential_backoff_max_retries = 2
	exponential_backoff_max_delay = 800
	EOF
	run -0 --separate-stderr kl_run kl-agent --once
	[ -z "$stderr" ]
}

@test "config: unknown flags and bad values are usage errors with exit 100" {
	run -100 --separate-stderr kl_run kl-agent --bogus
	[ -z "$output" ]
	[ "${stderr%%$'\n'*}" = 'kl-agent: error: unknown option "--bogus"' ]
	[[ $stderr == *"usage: kl-agent "* ]]
	run -100 --separate-stderr kl_run kl-agent --once --timeout soon
	[ "${stderr%%$'\n'*}" = 'kl-agent: error: --timeout: expected a positive integer, not "soon"' ]
	run -100 --separate-stderr kl_run kl-agent --once stray
	[ "${stderr%%$'\n'*}" = 'kl-agent: error: unexpected argument "stray"' ]
	KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_DELAY=soon run -100 --separate-stderr kl_run kl-agent --once
	[[ $stderr == "kl-agent: error: "*"KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_DELAY"* ]]
	[ ! -e "$T/calls.log" ]
}

@test "config: -h prints the usage and exits 0" {
	run -0 --separate-stderr kl_run kl-agent -h
	[[ $output == "usage: kl-agent [--once]"* ]]
	[[ $output == *"--verifier-url"* ]]
	[ -z "$stderr" ]
}

@test "config: --avoid-tpm and --check are refused clearly" {
	run -100 --separate-stderr kl_run kl-agent --once --avoid-tpm true
	[ "$stderr" = "kl-agent: error: --avoid-tpm: kl always attests with a TPM; for tests, run a software TPM (swtpm) and point tcti at it (docs/kl-agent.md)" ]
	run -100 --separate-stderr kl_run kl-agent --check
	[ "$stderr" = 'kl-agent: error: unknown option "--check"
usage: kl-agent [--once] [--verdict] [options]' ]
	[ ! -e "$T/calls.log" ]
}

@test "config: an http:// verifier without --insecure is refused: exit 100, one line, no step runs" {
	run -100 --separate-stderr kl_run kl-agent --once --verifier-url http://user:pw@127.0.0.1:9
	[ "$stderr" = "kl-agent: error: verifier_url http://127.0.0.1:9 is plain HTTP: refused, the bearer token and the evidence would travel unencrypted (use https://, or --insecure for a test verifier without TLS)" ]
	[ ! -e "$T/calls.log" ]
}

@test "config: --insecure and an http:// verifier are warned about on every start" {
	run -0 --separate-stderr kl_run kl-agent --once --insecure --verifier-url http://user:pw@127.0.0.1:9
	[ "$stderr" = "kl-agent: warning: --insecure: the verifier's and registrar's certificates are not verified
kl-agent: warning: verifier_url http://127.0.0.1:9: plain HTTP, the token travels unencrypted" ]
	rm "$T/calls.log"
	start_agent --insecure
	wait_for 10 calls_at_least kl-submit 1
	stop_agent TERM
	grep -q "^kl-agent: warning: --insecure: " "$T/agent.err"
}

@test "config: missing step programs are a permanent error" {
	rm "$T/steps/kl-quote"
	run -100 --separate-stderr kl_run kl-agent --once
	[ "$stderr" = "kl-agent: error: $T/steps/kl-quote: not executable: No such file or directory (install the steps next to kl-agent, or set KL_STEP_DIR)" ]
}

@test "config: the steps are found next to kl-agent when KL_STEP_DIR is unset" {
	mkdir "$T/bin"
	cp "$KL_BIN/kl-agent" "$T/bin/"
	for s in $STEPS; do
		ln -s "$FAKE" "$T/bin/$s"
	done
	unset KL_STEP_DIR
	run -0 --separate-stderr kl_run "$T/bin/kl-agent" --once
	[ "$(calls kl-submit)" = 1 ]
}

# --- privileges ---

@test "run_as: steps run as the unprivileged user, which cannot become root again" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	getent passwd nobody >/dev/null || skip "no user nobody"
	local grp
	grp=$(id -gn nobody)
	# A directory the dropped user can reach (the bats temp dir is private).
	D=$(mktemp -d /tmp/kl-agent-runas.XXXXXX)
	chmod 0755 "$D"
	mkdir -m 0777 "$D/fake" "$D/lib"
	export KL_FAKE_DIR=$D/fake KEYLIME_DIR=$D/lib
	cp "$T/etc/agent.conf" "$D/agent.conf"
	chmod 0644 "$D/agent.conf"
	echo "run_as = \"nobody:$grp\"" >>"$D/agent.conf"
	cp -L "$FAKE" "$D/fake-step"
	chmod 0755 "$D/fake-step"
	mkdir "$D/steps"
	for s in $STEPS; do
		ln -s "$D/fake-step" "$D/steps/$s"
	done
	KEYLIME_AGENT_CONFIG=$D/agent.conf KL_STEP_DIR=$D/steps \
		run -0 --separate-stderr kl_run kl-agent --once --tcti swtpm:port=1
	local uids
	uids=$(grep '^call ' "$D/fake/calls.log" | awk '{print $5}' | sort -u)
	[ "$uids" = "uid=$(id -u nobody)" ]
	[ "$(stat -c %U "$D/lib/kl-status.json")" = nobody ]
}

@test "run_as: an unknown user is a permanent error" {
	echo 'run_as = "no-such-user-kl:nogroup"' >>"$T/etc/agent.conf"
	run -100 --separate-stderr kl_run kl-agent --once
	[ "$stderr" = 'kl-agent: error: run_as "no-such-user-kl:nogroup": no such user "no-such-user-kl"' ]
	[ ! -e "$T/calls.log" ]
}

# --- systemd units ---

@test "dist/systemd: the units pass systemd-analyze verify" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	local d=$T/units
	mkdir "$d"
	# verify checks that ExecStart exists: point it at the built binary.
	for u in kl-agent.service kl-agent-once.service kl-agent-once.timer; do
		sed "s|/usr/local/bin/kl-agent|$KL_BIN/kl-agent|" "$KL_TOP/dist/systemd/$u" >"$d/$u"
	done
	run -0 systemd-analyze verify --man=no "$d/kl-agent.service" "$d/kl-agent-once.service" "$d/kl-agent-once.timer"
	# Only complaints about units outside ours (none is installed here) are tolerated.
	if grep -v -e "keylime_agent.service" -e "keylime_push_model_agent.service" <<<"$output" | grep -q .; then
		echo "$output"
		return 1
	fi
	grep -qx "Conflicts=keylime_agent.service keylime_push_model_agent.service" "$KL_TOP/dist/systemd/kl-agent.service"
	grep -qx "RestartSec=120s" "$KL_TOP/dist/systemd/kl-agent.service"
	grep -qx "ExecStart=/usr/local/bin/kl-agent --once --verdict" "$KL_TOP/dist/systemd/kl-agent-once.service"
}

# --- metrics_textfile (lib/kl_metrics.c), read with the Prometheus parser ---

# metric NAME [LABELS]: the value of one sample of $T/lib/metrics.prom.
metric() {
	"$BATS_TEST_DIRNAME/fixtures/metrics/parse.py" "$T/lib/metrics.prom" |
		awk -v k="$1{${2:-}}" '$1 == k {print $2}'
}

@test "metrics: off by default; after an ok cycle every metric is there, 0644, parsed by prometheus_client" {
	run -0 --separate-stderr kl_run kl-agent --once
	[ ! -e "$T/lib/metrics.prom" ]
	setconf metrics_textfile '"metrics.prom"'
	local t0
	t0=$(date +%s)
	KL_FAKE_IMA_ENTRIES=7 run -0 --separate-stderr kl_run kl-agent --once
	[ "$(stat -c %a "$T/lib/metrics.prom")" = 644 ]
	run -0 "$BATS_TEST_DIRNAME/fixtures/metrics/parse.py" "$T/lib/metrics.prom"
	# Every metric of the brief, with its type.
	[ "$(awk '{sub(/\{.*/, "", $1); print $1, $3}' <<<"$output" | sort -u | tr '\n' ';')" = \
		"kl_consecutive_failures gauge;kl_cycle_duration_seconds gauge;kl_cycles_total counter;kl_ima_entries_sent_total counter;kl_info gauge;kl_last_attempt_timestamp_seconds gauge;kl_last_success_timestamp_seconds gauge;kl_next_attestation_timestamp_seconds gauge;" ]
	[ "$(metric kl_cycles_total result=ok)" = 2 ]	# the run before counted too
	[ "$(metric kl_cycles_total result=temporary)" = 0 ]
	[ "$(metric kl_consecutive_failures)" = 0 ]
	[ "$(metric kl_ima_entries_sent_total)" = 7 ]
	[ "$(metric kl_info "agent_id=$ID,version=$(kl_run kl-agent --version | sed -n '1s/^kl-agent //p')")" = 1 ]
	local s a n
	s=$(metric kl_last_success_timestamp_seconds)
	a=$(metric kl_last_attempt_timestamp_seconds)
	n=$(metric kl_next_attestation_timestamp_seconds)
	[ "$s" -ge "$t0" ] && [ "$s" -le "$(date +%s)" ] && [ "$a" -ge "$t0" ]
	[ "$n" -ge "$a" ] && [ "$n" -le $((a + 2)) ]
	metric kl_cycle_duration_seconds | grep -Eq '^[0-9]'
}

@test "metrics: failed cycles count by class; the last success stays; IMA entries only from accepted evidence" {
	setconf metrics_textfile "\"$T/lib/metrics.prom\""
	KL_FAKE_IMA_ENTRIES=3 run -0 --separate-stderr kl_run kl-agent --once
	local s
	s=$(metric kl_last_success_timestamp_seconds)
	plan kl-submit "* exit 1"
	KL_FAKE_IMA_ENTRIES=5 run -1 --separate-stderr kl_run kl-agent --once
	plan kl-submit "* exit 100"
	run -100 --separate-stderr kl_run kl-agent --once
	[ "$(metric kl_cycles_total result=ok)" = 1 ]
	[ "$(metric kl_cycles_total result=refused)" = 1 ]
	[ "$(metric kl_cycles_total result=permanent)" = 1 ]
	[ "$(metric kl_consecutive_failures)" = 2 ]
	[ "$(metric kl_last_success_timestamp_seconds)" = "$s" ]
	[ "$(metric kl_ima_entries_sent_total)" = 3 ]
	[ "$(status '.cycles_total')" = '{"ok":1,"refused":1,"reauth":0,"renegotiate":0,"permanent":1,"temporary":0}' ]
}

@test "metrics and status: rewritten on in-cycle retries of the daemon" {
	setconf metrics_textfile '"metrics.prom"'
	setconf exponential_backoff_initial_delay 1500
	setconf exponential_backoff_max_delay 1500
	plan kl-negotiate "1 retry 3" "* ok"
	local t0
	t0=$(date +%s)
	start_agent
	# During the retry's wait: the status says when, and the metrics show the attempt.
	wait_for 5 test -e "$T/kl-negotiate.1.in"
	wait_for 5 eval '[ "$(status .last_attempt)" != null ] 2>/dev/null'
	[ "$(status .state)" = '"Negotiating"' ]
	[ "$(metric kl_cycles_total result=ok)" = 0 ]
	[ "$(metric kl_last_attempt_timestamp_seconds)" -gt 0 ]
	# The retry is due 3 s after an attempt made after t0 (not "now": a loaded
	# machine may read the file after that moment).
	[ "$(metric kl_next_attestation_timestamp_seconds)" -ge $((t0 + 2)) ]
	# A bound, not a timing: under ASan on a loaded machine the cycle after
	# the 3-s retry took over 10 s once.
	wait_for 30 eval '[ "$(metric kl_cycles_total result=ok)" = 1 ]'
	stop_agent TERM
}
