#!/usr/bin/env bats
# tpmfault.bats - a TPM or a log that misbehaves (issue 9): leftover objects
# and sessions of killed steps on a TPM without a resource manager, a TPM that
# never answers (SIGSTOPped swtpm, or fixtures/tpm/mute-tpm.py), TERM/INT while
# waiting for it, the tpm_timeout_seconds key, no TPM at all, and an IMA line
# that is not UTF-8 (through the test verifier). kl-quote is the step under
# test: the TPM handling is the same in every step (lib/kl_tpm.c).
load helpers
load fixtures/e2e/steps

setup_file() {
	file_start
	export REG=$D/reg.json SWTPM_PID
	SWTPM_PID=$(cat "$KL_SWTPM_DIR/swtpm.pid")
}

teardown_file() { file_stop; }

setup() {
	file_use
	challenge_doc >"$BATS_TEST_TMPDIR/chal.json"
	CHAL=$BATS_TEST_TMPDIR/chal.json
}

# A stopped swtpm is let go on, whatever the test did; a mute TPM is stopped.
teardown() {
	kill -CONT "$SWTPM_PID" 2>/dev/null || true
	[ -z "${MUTE_PID:-}" ] || kill "$MUTE_PID" 2>/dev/null || true
}

# challenge_doc: $REG plus a challenge for PCRs 0-7 and 10, valid 10 minutes.
challenge_doc() {
	jq -c --arg nonce "$(head -c 16 /dev/urandom | base64)" --arg exp "$(iso_in 600)" \
		--arg boot "$(date -u -d "@$(btime)" +%Y-%m-%dT%H:%M:%SZ)" '. + {challenge: {
		attestation_url: "https://127.0.0.1:1/v3.0/agents/x/attestations/0",
		expires_at: $exp, boot_time: $boot, requested: ["tpm_quote"],
		tpm_quote: {challenge: $nonce, hash_algorithm: "sha256", signature_scheme: "rsassa",
			pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10]}}}' "$REG"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# bg_quote [ARGS...]: kl-quote <$CHAL in the background (not through kl_run:
# the signal must reach kl-quote itself); QPID, its stdout/stderr in $Q.out/.err.
bg_quote() {
	Q=$BATS_TEST_TMPDIR/q
	"$KL_BIN/kl-quote" "$@" <"$CHAL" >"$Q.out" 2>"$Q.err" &
	QPID=$!
}

# term_after SECONDS: TERM to QPID after SECONDS; QRC its code, QMS how long it took after TERM.
term_after() {
	local t0
	sleep "$1"
	t0=$(now_ms)
	kill -TERM "$QPID"
	QRC=0
	wait "$QPID" || QRC=$?
	QMS=$(($(now_ms) - t0))
}

# ------------------------------------------------------------ leftovers

@test "tpmfault: leftover objects and sessions fill swtpm (0x902, temporary) until kl flushes them at open, once" {
	local i lib
	for i in 1 2 3; do
		tpm2_createprimary -C o -c "$BATS_TEST_TMPDIR/p$i.ctx" >/dev/null
	done
	tpm2_startauthsession -S "$BATS_TEST_TMPDIR/s.ctx"
	[ "$(tpm2_getcap handles-transient | wc -l)" -eq 3 ]
	[ "$(tpm2_getcap handles-saved-session | wc -l)" -eq 1 ]
	# A TCTI named by library path is not recognised as a raw TPM, so kl
	# flushes nothing: the EK finds no free slot, and that is temporary.
	lib=$(ls /usr/lib/*/libtss2-tcti-swtpm.so.0 | head -1)
	run -111 --separate-stderr kl_run kl-quote --tcti "$lib:host=127.0.0.1,port=$KL_SWTPM_PORT" <"$CHAL"
	[ -z "$output" ]
	one_error quote
	[[ $stderr == *"out of memory for object contexts (0x902)" ]]
	[ "$(stat -c %a "$KDIR/kl-tpm.open")" = 600 ]	# the next open of swtpm looks
	# swtpm: kl is the only user while connected; it flushes all four, says so once.
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	[ "$stderr" = "kl-quote: notice: flushed 4 leftover objects/sessions (no resource manager)" ]
	jq -e '.evidence.evidence_collected[0].evidence_type == "tpm_quote"' <<<"$output"
	[ -z "$(tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session; tpm2_getcap handles-saved-session)" ]
	# Nothing left over: nothing said.
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	[ -z "$stderr" ]
	[ ! -e "$KDIR/kl-tpm.open" ]
}

# leftovers N: N primaries of tpm2-tools left in swtpm.
leftovers() {
	local i
	for ((i = 1; i <= $1; i++)); do
		tpm2_createprimary -C o -c "$BATS_TEST_TMPDIR/p$i.ctx" >/dev/null
	done
}

@test "tpmfault: leftovers of another program on swtpm: the step that finds the slots full fails (111) and marks them, the next flushes" {
	[[ $TCTI == swtpm:* ]]
	[ ! -e "$KDIR/kl-tpm.open" ]
	leftovers 3
	# No step died holding the TPM: no look at open, the EK finds no slot.
	run -111 --separate-stderr kl_run kl-quote <"$CHAL"
	one_error quote
	[[ $stderr == *"out of memory for object contexts (0x902)" ]]
	[ -e "$KDIR/kl-tpm.open" ]
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	[ "$stderr" = "kl-quote: notice: flushed 3 leftover objects/sessions (no resource manager)" ]
	[ ! -e "$KDIR/kl-tpm.open" ]
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	[ -z "$stderr" ]
}

@test "tpmfault: where the marker cannot be made, kl looks for leftovers at every open of swtpm" {
	# keylime_dir a file: no kl-tpm.open in it (the AK's files named apart).
	: >"$BATS_TEST_TMPDIR/notadir"
	export KEYLIME_DIR=$BATS_TEST_TMPDIR/notadir KEYLIME_AGENT_AGENT_DATA_PATH=$KDIR/agent_data.json
	leftovers 3
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	[ "$(grep -v kl-ak.ctx <<<"$stderr")" = "kl-quote: notice: flushed 3 leftover objects/sessions (no resource manager)" ]
	leftovers 1
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	# Nothing said of the marker (the AK context's own lines aside).
	[ "$(grep -v kl-ak.ctx <<<"$stderr")" = "kl-quote: notice: flushed 1 leftover objects/sessions (no resource manager)" ]
	[ ! -e "$KDIR/kl-tpm.open" ]
}

@test "tpmfault: kl-quote SIGKILLed mid-quote three times; the next one passes" {
	local i
	for i in 1 2 3; do
		"$KL_BIN/kl-quote" <"$CHAL" >/dev/null 2>&1 &
		sleep 0.0$((2 + i))
		kill -9 $! 2>/dev/null || true
		wait $! || true
	done
	run -0 --separate-stderr kl_run kl-quote <"$CHAL"
	[[ -z $stderr || $stderr =~ ^"kl-quote: notice: flushed "[0-9]+" leftover objects/sessions (no resource manager)"$ ]]
	[ -z "$(tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session)" ]
}

# ------------------------------------------------------------ a TPM that hangs

@test "tpmfault: swtpm stopped: TERM ends kl-quote within a second (111, one line); tpm_timeout_seconds ends it alone" {
	kill -STOP "$SWTPM_PID"
	bg_quote
	term_after 0.5
	[ "$QRC" -eq 111 ]
	[ "$QMS" -lt 1000 ]
	[ ! -s "$Q.out" ]
	[ "$(cat "$Q.err")" = "kl-quote: error: stopped by SIGTERM" ]
	# INT the same.
	bg_quote
	sleep 0.3
	kill -INT "$QPID"
	QRC=0
	wait "$QPID" || QRC=$?
	[ "$QRC" -eq 111 ]
	[ "$(cat "$Q.err")" = "kl-quote: error: stopped by SIGINT" ]
	# No signal: the timeout. The swtpm TCTI talks to swtpm already when it opens.
	local t0 ms
	t0=$(now_ms)
	run -111 --separate-stderr env KEYLIME_AGENT_TPM_TIMEOUT_SECONDS=2 "$KL_BIN/kl-quote" <"$CHAL"
	ms=$(($(now_ms) - t0))
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: cannot open TPM: $TCTI: no answer within 2 s (tpm_timeout_seconds)" ]
	[ "$ms" -ge 2000 ] && [ "$ms" -lt 3500 ]
	kill -CONT "$SWTPM_PID"
	run -0 kl_run kl-quote <"$CHAL"
}

@test "tpmfault: a TPM that takes commands and never answers: TERM ends the command in flight, the timeout too" {
	local port t0 ms
	port=$(kl_free_port 2)
	coproc MUTE { exec "$KL_PYTHON" "$KL_TOP/tests/bats/fixtures/tpm/mute-tpm.py" "$port" "$KL_SWTPM_PORT"; }
	MUTE_PID=$MUTE_PID
	read -r -t 10 line <&"${MUTE[0]}"
	[ "$line" = ready ]
	bg_quote --tcti "swtpm:host=127.0.0.1,port=$port"
	term_after 0.5
	[ "$QRC" -eq 111 ]
	[ "$QMS" -lt 1000 ]
	[ ! -s "$Q.out" ]
	[ "$(cat "$Q.err")" = "kl-quote: error: Esys_Startup: stopped by SIGTERM" ]
	t0=$(now_ms)
	run -111 --separate-stderr env KEYLIME_AGENT_TPM_TIMEOUT_SECONDS=2 \
		"$KL_BIN/kl-quote" --tcti "swtpm:host=127.0.0.1,port=$port" <"$CHAL"
	ms=$(($(now_ms) - t0))
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: Esys_Startup: the TPM did not answer within 2 s (tpm_timeout_seconds)" ]
	[ "$ms" -ge 2000 ] && [ "$ms" -lt 3500 ]
}

@test "tpmfault: TERM outside the TPM ends a step at once; tpm_timeout_seconds is checked like every key" {
	# kl-quote waiting for its stdin: nothing is open yet.
	mkfifo "$BATS_TEST_TMPDIR/in"
	"$KL_BIN/kl-quote" <>"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	QPID=$!
	term_after 0.3
	[ "$QRC" -eq 111 ]
	[ "$QMS" -lt 500 ]
	[ "$(cat "$BATS_TEST_TMPDIR/err")" = "kl-quote: error: stopped by SIGTERM" ]
	run -100 --separate-stderr env KEYLIME_AGENT_TPM_TIMEOUT_SECONDS=0 "$KL_BIN/kl-quote" <"$CHAL"
	one_error quote
	[ "$stderr" = "kl-quote: error: KEYLIME_AGENT_TPM_TIMEOUT_SECONDS: must be between 1 and 86400, not 0" ]
}

# ------------------------------------------------------------ no TPM

@test "tpmfault: no TPM device is temporary, with a hint where to look" {
	run -111 --separate-stderr kl_run kl-quote --tcti device:/nonexistent <"$CHAL"
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: cannot open TPM: device:/nonexistent: tcti:IO failure (0xa000a): is there a TPM? (enabled in the firmware setup? driver loaded? see ls /dev/tpm*)" ]
}

# ------------------------------------------------------------ IMA line not UTF-8

# latin1_measure: what the kernel does for a file named "/tmp/caf\xe9" (Latin-1):
# the raw bytes in the log line and in the template hash, extended into PCR 10.
latin1_measure() {
	local v
	v=$("$KL_PYTHON" - "$IMA_LOG" <<-'PY'
		import hashlib, struct, sys
		fdig = hashlib.sha256(b"latin-1").digest()
		d = b"sha256:\0" + fdig
		p = b"/tmp/caf\xe9\0"
		t = struct.pack("<I", len(d)) + d + struct.pack("<I", len(p)) + p
		with open(sys.argv[1], "ab") as f:
		    f.write(b"10 %s ima-ng sha256:%s /tmp/caf\xe9\n"
		            % (hashlib.sha1(t).hexdigest().encode(), fdig.hex().encode()))
		print(hashlib.sha256(t).hexdigest())
	PY
	) && tpm2_pcrextend "10:sha256=$v" >/dev/null
}

@test "tpmfault: an IMA line that is not UTF-8 reaches the verifier, which judges it; kl warns once" {
	local n
	ima_measure /usr/bin/before
	latin1_measure
	ima_measure /usr/bin/after
	n=$(($(wc -l <"$IMA_LOG") - 2))	# the Latin-1 line's index
	kl_enroll "$AGENT_ID" --ima-permissive
	kl_run kl-session <"$D/reg.json" >"$SES"
	kl_run kl-negotiate <"$SES" >"$BATS_TEST_TMPDIR/chal.json"
	run -0 --separate-stderr kl_run kl-quote <"$BATS_TEST_TMPDIR/chal.json"
	[ "$stderr" = "kl-quote: warning: IMA log $IMA_LOG: entry $n (line $((n + 1))) is not UTF-8 (a file name in another encoding?): sent with U+FFFD for the invalid bytes; the verifier cannot match its template hash" ]
	jq -e '.evidence.evidence_collected[1].data.entries | test("/tmp/caf\ufffd\n")' <<<"$output"
	echo "$output" >"$BATS_TEST_TMPDIR/ev.json"
	run -0 kl_run kl-submit <"$BATS_TEST_TMPDIR/ev.json"
	kl_verdicts "$AGENT_ID" --wait 1 | jq -e --arg w "IMA entry $n (line $n of the log): template hash does not match its data" \
		'.attestations[-1] | .evaluation == "fail" and (.failures | index($w) != null)'
	# The next cycle sends it again, without a second warning.
	kl_run kl-negotiate <"$SES" >"$BATS_TEST_TMPDIR/chal.json"
	run -0 --separate-stderr kl_run kl-quote <"$BATS_TEST_TMPDIR/chal.json"
	[ -z "$stderr" ]
	jq -e '.evidence.evidence_collected[1].data.entries | test("/tmp/caf\ufffd\n")' <<<"$output"
}
