#!/usr/bin/env bats
# Log lines carry their syslog priority ("<3>" ... "<7>") when, and only when,
# stderr is the journal: JOURNAL_STREAM names stderr's device and inode.
load helpers

setup() {
	: >"$BATS_TEST_TMPDIR/agent.conf"
	export KEYLIME_DIR=$BATS_TEST_TMPDIR KEYLIME_AGENT_CONFIG=$BATS_TEST_TMPDIR/agent.conf
	export KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_RETRIES=0
	log=$BATS_TEST_TMPDIR/stderr
	: >"$log"
}

# One failing cycle that logs at every level but notice: debug (--verbose twice), info,
# warnings (--insecure, plain HTTP, the backoff) and errors (no TPM there).
cycle() {
	kl_run kl-agent --once --verbose --verbose --insecure --verifier-url http://127.0.0.1:1 \
		--registrar-url http://127.0.0.1:1 --tcti "swtpm:host=127.0.0.1,port=1" \
		>/dev/null 2>>"$log" || true
}

devino() { stat -c '%d:%i' "$1"; }

@test "journald: with JOURNAL_STREAM naming stderr, every line starts with its priority" {
	JOURNAL_STREAM=$(devino "$log") cycle
	grep -q '^<3>kl-register: error: ' "$log"
	grep -q '^<4>kl-agent: warning: ' "$log"
	grep -q '^<6>kl-agent: info: ' "$log"
	grep -q '^<7>kl-agent: debug: ' "$log"
	# Every line, of kl-agent and of its steps, and the right number per level.
	run -1 grep -vE '^<[3-7]>kl-[a-z]+: (error|warning|notice|info|debug): ' "$log"
	for p in 3:error 4:warning 5:notice 6:info 7:debug; do
		[ "$(grep -c "^<${p%%:*}>kl-[a-z]*: ${p#*:}: " "$log")" = \
		  "$(grep -c ": ${p#*:}: " "$log")" ]
	done
}

@test "journald: without the match, no prefix" {
	other=$BATS_TEST_TMPDIR/other
	: >"$other"
	JOURNAL_STREAM=$(devino "$other") cycle
	grep -q '^kl-register: error: ' "$log"
	run -1 grep -E '^<' "$log"
	: >"$log"
	JOURNAL_STREAM=garbage cycle
	grep -q '^kl-agent: warning: ' "$log"
	run -1 grep -E '^<' "$log"
	: >"$log"
	JOURNAL_STREAM="$(devino "$log")x" cycle
	run -1 grep -E '^<' "$log"
}
