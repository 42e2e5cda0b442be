#!/usr/bin/env bats
# kl-quote.bats - the evidence for a challenge (docs/protocol.md §6.3-§6.6, §8),
# with no network: challenges are made here, and the quote is checked by
# fixtures/e2e/check-quote.py with the test peers' TPM code. IMA from the
# verifier's offset through the checkpoint, UEFI as base64, expiry, and the
# rule that kl-quote writes complete evidence or nothing.
load helpers
load fixtures/e2e/steps

setup_file() {
	kl_start_swtpm 3>&-
	kl_start_registrar 3>&-
	export KL_VERIFIER_URL=https://127.0.0.1:1	# no verifier: kl-quote never calls one
	agent_new "$BATS_FILE_TMPDIR/agent"
	register
	export REG=$D/reg.json
}

teardown_file() { file_stop; }

# Each test: its own keylime_dir (checkpoint), IMA log and UEFI log path; the
# AK is the file's, found through agent.ak.data_path in $REG.
setup() {
	agent_new "$BATS_TEST_TMPDIR"
	UEFI_LOG=$D/no-uefi-log
}

BOOT=$(date -u -d "@$(awk '$1 == "btime" { print $2 }' /proc/stat)" +%Y-%m-%dT%H:%M:%SZ)

# challenge_doc [FILTER]: $REG plus a challenge for PCRs 0-7 and 10 of sha256
# valid for 10 minutes, edited by the jq FILTER.
challenge_doc() {
	jq -c --arg nonce "$(head -c 16 /dev/urandom | base64)" --arg exp "$(iso_in 600)" \
		--arg boot "$BOOT" '. + {challenge: {
		attestation_url: "https://127.0.0.1:1/v3.0/agents/x/attestations/0",
		expires_at: $exp, boot_time: $boot, requested: ["tpm_quote"],
		tpm_quote: {challenge: $nonce, hash_algorithm: "sha256", signature_scheme: "rsassa",
			pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10]}}} | '"${1:-.}" "$REG"
}

# quote_ok DOC: the evidence in $output verifies against DOC's challenge and the TPM.
quote_ok() {
	local pcrs
	pcrs=$(jq -r '.challenge.tpm_quote | .hash_algorithm + ":" + (.pcrs | sort | map(tostring) | join(","))' <<<"$output")
	tpm2_pcrread "$pcrs" -o "$BATS_TEST_TMPDIR/pcrs.bin" >/dev/null
	"$KL_PYTHON" "$E2E_FIX/check-quote.py" "$BATS_TEST_TMPDIR/pcrs.bin" <<<"$output"
}

# ----------------------------------------------------------------- the quote

@test "kl-quote: message, signature and subject_data verify with the AK and match the TPM's PCRs" {
	local in
	in=$(challenge_doc '. + {session: {token: "t.x"}, submission: {status: 202}, retry: {after: 1}}')
	run -0 --separate-stderr kl_run kl-quote <<<"$in"
	[ -z "$stderr" ]
	quote_ok
	# The input without submission and retry, plus the evidence; nothing else.
	jq -e --argjson in "$in" '(del(.evidence) == ($in | del(.submission, .retry)))
		and (.evidence | keys == ["challenge", "evidence_collected", "quoted_at"])
		and .evidence.challenge == $in.challenge.tpm_quote.challenge
		and (.evidence.quoted_at | test("^[0-9-]{10}T[0-9:]{8}Z$"))
		and (.evidence.evidence_collected | length == 1)
		and (.evidence.evidence_collected[0].data.subject_data | @base64d | length == 1200)' <<<"$output"
}

@test "kl-quote: one PCR, sixteen PCRs in any order, and PCRs that moved since the last quote" {
	run -0 kl_run kl-quote < <(challenge_doc '.challenge.tpm_quote.pcrs = [23]')
	quote_ok
	jq -e '.evidence.evidence_collected[0].data.subject_data | @base64d | length == 668' <<<"$output"
	tpm2_pcrextend "16:sha256=$(printf '%064d' 7)" >/dev/null
	run -0 kl_run kl-quote < <(challenge_doc '.challenge.tpm_quote.pcrs = [16, 0, 15, 1, 14, 2, 13, 3, 12, 4, 11, 5, 10, 6, 9, 7]')
	quote_ok
	jq -e '.evidence.evidence_collected[0].data.subject_data | @base64d | length == 1200' <<<"$output"
}

@test "kl-quote: a challenge that has expired is the re-negotiate code, without the TPM" {
	local port
	port=$(kl_free_port 2)
	run -3 --separate-stderr kl_run kl-quote --tcti "swtpm:host=127.0.0.1,port=$port" \
		< <(challenge_doc '.challenge.expires_at = "2020-01-01T00:00:00.5+00:00"')
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: challenge expired at 2020-01-01T00:00:00.5+00:00: run kl-negotiate again" ]
	# The same document with a live TPM but made in another boot.
	run -3 --separate-stderr kl_run kl-quote --tcti "swtpm:host=127.0.0.1,port=$port" \
		< <(challenge_doc '.challenge.boot_time = "2020-01-01T00:00:00Z"')
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: challenge was made for the boot at 2020-01-01T00:00:00Z, this boot began at another time: run kl-negotiate again" ]
}

@test "kl-quote: an unreachable TPM is temporary, a foreign AK file permanent; stdout stays empty" {
	local port
	port=$(kl_free_port 2)
	run -111 --separate-stderr kl_run kl-quote --tcti "swtpm:host=127.0.0.1,port=$port" < <(challenge_doc)
	[ -z "$output" ]
	one_error quote
	run -100 --separate-stderr kl_run kl-quote < <(challenge_doc '.agent.ak.public = "AAAA"')
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: $(jq -r .agent.ak.data_path "$REG"): holds another AK than the document's agent.ak.public: run kl-register again" ]
}

@test "kl-quote: stdin that is not a usable challenge is permanent, with what is wrong" {
	local f
	while IFS='#' read -r f want; do
		run -100 --separate-stderr kl_run kl-quote < <(challenge_doc "$f")
		[ -z "$output" ]
		if [ "$stderr" != "kl-quote: error: $want" ]; then
			printf 'filter: %s\nstderr: %s\nwant:   %s\n' "$f" "$stderr" "kl-quote: error: $want"
			return 1
		fi
	done <<-'CASES'
	del(.challenge)#stdin: "challenge" is missing
	del(.agent)#stdin: "agent" is missing
	.challenge.requested = []#stdin: challenge.requested is missing or empty
	.challenge.requested = ["tpm_quote", "tpm_event_log"]#stdin: challenge.requested[1] is not an evidence type kl produces
	.challenge.requested += ["ima_log"]#stdin: challenge.requested names ima_log but challenge.ima_log is missing
	del(.challenge.expires_at)#stdin: challenge.expires_at is missing or not a time
	.challenge.boot_time = 5#stdin: challenge.boot_time is missing or not a time
	.challenge.tpm_quote.challenge = "%%%"#stdin: challenge.tpm_quote.challenge is not base64 of 1..64 bytes
	del(.challenge.tpm_quote.hash_algorithm)#stdin: challenge.tpm_quote: "hash_algorithm" is missing
	.challenge.tpm_quote.pcrs = []#stdin: challenge.tpm_quote.pcrs must list 1..24 PCRs
	.challenge.tpm_quote.pcrs = [1, 24]#stdin: challenge.tpm_quote.pcrs[1] is not a PCR number
	CASES
}

@test "kl-quote: a scheme or bank the AK cannot sign with is permanent" {
	run -100 --separate-stderr kl_run kl-quote < <(challenge_doc '.challenge.tpm_quote.hash_algorithm = "sha384"')
	[ -z "$output" ]
	one_error quote
	run -100 --separate-stderr kl_run kl-quote < <(challenge_doc '.challenge.tpm_quote.signature_scheme = "rsapss"')
	[ -z "$output" ]
	one_error quote
	run -100 --separate-stderr kl_run kl-quote < <(challenge_doc '.challenge.tpm_quote.pcrs = [3, 3]')
	[ -z "$output" ]
	one_error quote
}

# ---------------------------------------------------------------------- logs

# ima_doc OFFSET [CAP]: a challenge for the quote and the IMA log from OFFSET.
ima_doc() {
	challenge_doc ".challenge.requested += [\"ima_log\"]
		| .challenge.ima_log = {starting_offset: $1, entry_count: ${2:-null}}"
}

@test "kl-quote: IMA lines from starting_offset to the end, byte-exact; the verifier's cap is kept" {
	"$KL_TOP/scripts/gen-ima-log" -n 10 >"$IMA_LOG"
	run -0 --separate-stderr kl_run kl-quote < <(ima_doc 4)
	[ -z "$stderr" ]
	quote_ok
	jq -e --arg want "$(tail -n +5 "$IMA_LOG")"$'\n' '.evidence.evidence_collected[1] == {
		"evidence_class": "log", "evidence_type": "ima_log",
		"data": {"entry_count": 6, "entries": $want}}' <<<"$output"
	run -0 kl_run kl-quote < <(ima_doc 4 2)
	jq -e --arg want "$(sed -n 5,6p "$IMA_LOG")"$'\n' \
		'.evidence.evidence_collected[1].data == {"entry_count": 2, "entries": $want}' <<<"$output"
	# Nothing new: an empty string and 0 (docs/protocol.md §6.5).
	run -0 kl_run kl-quote < <(ima_doc 10)
	jq -e '.evidence.evidence_collected[1].data == {"entry_count": 0, "entries": ""}' <<<"$output"
	# A last line still being written is not sent.
	printf '10 %040d ima-ng sha256:%064d /half' 0 0 >>"$IMA_LOG"
	run -0 kl_run kl-quote < <(ima_doc 9)
	jq -e --arg want "$(sed -n 10p "$IMA_LOG")"$'\n' \
		'.evidence.evidence_collected[1].data == {"entry_count": 1, "entries": $want}' <<<"$output"
}

@test "kl-quote: the IMA checkpoint: later runs read only the end of the log; a new boot starts over" {
	local size bytes
	"$KL_TOP/scripts/gen-ima-log" -n 20000 >"$IMA_LOG"
	size=$(stat -c %s "$IMA_LOG")
	read_bytes() { sed -n 's/^kl-quote: debug: IMA log .*: read \([0-9]*\) bytes of it for .*/\1/p' <<<"$stderr"; }
	# No checkpoint yet: the whole log is read once.
	run -0 --separate-stderr kl_run kl-quote --log-level debug < <(ima_doc 19990)
	bytes=$(read_bytes)
	[ "$bytes" -ge "$size" ]
	[ "$(stat -c %a "$KDIR/ima_checkpoint.json")" = 600 ]
	# Then: from the nearest mark (every 256 KiB) to the end, new lines included.
	"$KL_TOP/scripts/gen-ima-log" -s 20000 -n 5 >>"$IMA_LOG"
	run -0 --separate-stderr kl_run kl-quote --log-level debug < <(ima_doc 19990)
	bytes=$(read_bytes)
	[ "$bytes" -gt 0 ] && [ "$bytes" -lt $((300 * 1024)) ]
	jq -e --arg want "$(tail -n 15 "$IMA_LOG")"$'\n' \
		'.evidence.evidence_collected[1].data == {"entry_count": 15, "entries": $want}' <<<"$output"
	# A checkpoint of another boot is thrown away.
	jq -c '.boot_time -= 60' "$KDIR/ima_checkpoint.json" >"$BATS_TEST_TMPDIR/ck" &&
		cp "$BATS_TEST_TMPDIR/ck" "$KDIR/ima_checkpoint.json"
	run -0 --separate-stderr kl_run kl-quote --log-level debug < <(ima_doc 19990)
	[ "$(read_bytes)" -ge "$size" ]
	[[ $stderr == *"kl-quote: info: IMA checkpoint $KDIR/ima_checkpoint.json: new boot; reading $IMA_LOG from the start"* ]]
}

@test "kl-quote: evidence is complete or not written: a missing log or an offset beyond it" {
	"$KL_TOP/scripts/gen-ima-log" -n 3 >"$IMA_LOG"
	run -100 --separate-stderr kl_run kl-quote < <(ima_doc 4)
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: IMA log $IMA_LOG: starting_offset 4 is beyond its 3 entries (an offset from another boot or another log)" ]
	rm "$IMA_LOG"
	run -100 --separate-stderr kl_run kl-quote < <(ima_doc 0)
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: IMA log $IMA_LOG: No such file or directory" ]
	run -100 --separate-stderr kl_run kl-quote < <(challenge_doc '.challenge.requested += ["uefi_log"] | .challenge.uefi_log = {}')
	[ -z "$output" ]
	[ "$stderr" = "kl-quote: error: UEFI log $UEFI_LOG: No such file or directory" ]
	printf 'not a TCG log' >"$UEFI_LOG"
	run -100 --separate-stderr kl_run kl-quote < <(challenge_doc '.challenge.requested += ["uefi_log"] | .challenge.uefi_log = {}')
	[ -z "$output" ]
	one_error quote
	# Not asked for, the same log is not read at all.
	run -0 --separate-stderr kl_run kl-quote < <(challenge_doc)
	[ -z "$stderr" ]
	# An IMA line that is not UTF-8 (a new log: its checkpoint goes too) is
	# sent with U+FFFD, for the verifier to judge, with one warning (issue 9).
	rm -f "$KDIR/ima_checkpoint.json"
	printf '10 \377\376 ima-ng x\n' >"$IMA_LOG"
	run -0 --separate-stderr kl_run kl-quote < <(ima_doc 0)
	[ "$stderr" = "kl-quote: warning: IMA log $IMA_LOG: entry 0 (line 1) is not UTF-8 (a file name in another encoding?): sent with U+FFFD for the invalid bytes; the verifier cannot match its template hash" ]
	jq -e '.evidence.evidence_collected[1].data == {entry_count: 1, entries: "10 \ufffd\ufffd ima-ng x\n"}' <<<"$output"
}

@test "kl-quote: the UEFI log whole as base64, items in the verifier's order" {
	$KLFIX uefi-log "$UEFI_LOG" >/dev/null
	"$KL_TOP/scripts/gen-ima-log" -n 2 >"$IMA_LOG"
	run -0 --separate-stderr kl_run kl-quote < <(challenge_doc '.challenge.requested = ["tpm_quote", "uefi_log", "ima_log"]
		| .challenge.uefi_log = {} | .challenge.ima_log = {starting_offset: 0, entry_count: null}')
	[ -z "$stderr" ]
	quote_ok
	jq -e --arg uefi "$(base64 -w0 "$UEFI_LOG")" '.evidence.evidence_collected
		| map(.evidence_type) == ["tpm_quote", "uefi_log", "ima_log"]
		and .[1] == {"evidence_class": "log", "evidence_type": "uefi_log", "data": {"entries": $uefi}}
		and .[2].data.entry_count == 2' <<<"$output"
	# Another order (the verifier's is authoritative, docs/protocol.md §6.2).
	run -0 kl_run kl-quote < <(challenge_doc '.challenge.requested = ["ima_log", "tpm_quote"]
		| .challenge.ima_log = {starting_offset: 1, entry_count: null}')
	jq -e '.evidence.evidence_collected | map(.evidence_type) == ["ima_log", "tpm_quote"]' <<<"$output"
}

# ------------------------------------------------------------- the TPM only when needed

@test "kl-quote: the TPM is free while stdin is still open, and while stdout is being written" {
	local T=$BATS_TEST_TMPDIR n
	"$KL_TOP/scripts/gen-ima-log" -n 15000 >"$IMA_LOG"	# 2 MB of lines: more than a pipe holds
	ima_doc 0 >"$T/in.json"
	mkfifo "$T/eof" "$T/drain"
	(
		{ cat "$T/in.json"; read -r _ <"$T/eof"; } | kl_run kl-quote |
			{ head -c 100 >"$T/first"; read -r _ <"$T/drain"; cat >/dev/null; }
		echo "${PIPESTATUS[1]}" >"$T/rc"
	) 3>&- &
	# kl-quote has the whole document but not its end: it must not hold the TPM.
	sleep 0.3
	timeout 2 tpm2_pcrread sha256:0 >/dev/null
	echo >"$T/eof"
	# Its first bytes are out and the rest does not fit the pipe: the TPM must be closed.
	for ((n = 0; n < 200; n++)); do
		[ -s "$T/first" ] && break
		sleep 0.05
	done
	[ -s "$T/first" ]
	timeout 2 tpm2_pcrread sha256:0 >/dev/null
	echo >"$T/drain"
	wait
	[ "$(cat "$T/rc")" = 0 ]
}
