#!/usr/bin/env bats
# e2e.bats - the whole push attestation, as one pipeline and step by step,
# against a manufactured swtpm (one per test) and the strict test registrar and
# verifier: verdicts, incremental IMA, expiry and recovery, secrets, a
# 1,000,000-line IMA log, and the algorithms kl supports.
load helpers
load fixtures/e2e/steps

setup_file() {
	kl_start_registrar 3>&-
	kl_start_verifier --quote-interval 0 3>&-
}

teardown_file() {
	kl_stop_peers
}

setup() {
	faults_clear
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 0}' >/dev/null
}

teardown() {
	kl_stop_swtpm
}

# fresh [SWTPM OPTION...] [-- CONF LINE...]: a new TPM and a new agent
# (agent_new) for this test; the IMA log starts with boot_aggregate, extended
# into PCR 10.
fresh() {
	local -a opts=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	kl_start_swtpm "${opts[@]}" 3>&-
	agent_new "$BATS_TEST_TMPDIR" "$@"
	DOCS=$BATS_TEST_TMPDIR/docs
	mkdir -p "$DOCS"
	ima_measure boot_aggregate
}

last_verdict() { kl_verdicts "$AGENT_ID" --wait "${1:-1}" | jq -c '.attestations[-1]'; }

@test "e2e: kl-register </dev/null | kl-session | kl-negotiate | kl-quote | kl-submit passes" {
	fresh
	ima_measure /usr/bin/bash
	# The operator's part: register once, enroll with PCRs 0-7 and an IMA policy.
	register
	kl_enroll "$AGENT_ID" --ima-permissive
	# Then every step started at once; kl-register registers the same AK again.
	run -0 --separate-stderr pipeline <(kl_run kl-register </dev/null 2>/dev/null)
	[ -z "$stderr" ]
	jq -e --arg id "$AGENT_ID" '.agent.id == $id and .submission.status == 202
		and (.submission.seconds_to_next_attestation | type == "number")
		and .challenge.requested == ["tpm_quote", "ima_log"]
		and (keys == ["agent", "challenge", "evidence", "schema", "session", "submission"])' <<<"$output"
	last_verdict | jq -e '.evaluation == "pass" and .ima_entries == 2 and .starting_offset == 0'
	run -0 bash -c 'set -o pipefail; kl-register </dev/null 2>/dev/null | kl-session | kl-negotiate | kl-quote | kl-submit'
	last_verdict 2 | jq -e '.evaluation == "pass" and .index == 1'
}

@test "e2e: each step replayed alone on its saved input gives the same kind of output" {
	local step
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --ima-permissive
	cycle "$DOCS/reg.json" "$DOCS/a"
	last_verdict | jq -e '.evaluation == "pass"'
	# kl-session on its saved input: the kept token (kl_token.h); without it, a
	# new token; on its own output: the same, no request.
	run -0 kl_run kl-session <"$DOCS/reg.json"
	[ "$output" = "$(jq -c . "$DOCS/a.session.json")" ]
	rm "$KDIR/kl-session.json"
	run -0 kl_run kl-session <"$DOCS/reg.json"
	[ "$(shape /dev/stdin <<<"$output")" = "$(shape "$DOCS/a.session.json")" ]
	[ "$(jq -r .session.token <<<"$output")" != "$(jq -r .session.token "$DOCS/a.session.json")" ]
	printf '%s\n' "$output" >"$DOCS/b.session.json"
	faults_clear
	run -0 kl_run kl-session <"$DOCS/b.session.json"
	[ "$output" = "$(jq -c . "$DOCS/b.session.json")" ]
	[ "$(requests | jq length)" = 0 ]
	# kl-negotiate, kl-quote and kl-submit, each on a saved input, one after the other.
	ima_measure /usr/bin/replayed
	kl_run kl-negotiate <"$DOCS/b.session.json" >"$DOCS/b.negotiate.json"
	kl_run kl-quote <"$DOCS/b.negotiate.json" >"$DOCS/b.quote.json"
	kl_run kl-submit <"$DOCS/b.quote.json" >"$DOCS/b.submit.json"
	for step in negotiate quote submit; do
		[ "$(shape "$DOCS/b.$step.json")" = "$(shape "$DOCS/a.$step.json")" ]
	done
	[ "$(jq -r .challenge.tpm_quote.challenge "$DOCS/b.negotiate.json")" != \
		"$(jq -r .challenge.tpm_quote.challenge "$DOCS/a.negotiate.json")" ]
	last_verdict 2 | jq -e '.evaluation == "pass" and .ima_entries == 1'
	# kl-quote again on the first saved challenge: evidence of the same kind.
	run -0 kl_run kl-quote <"$DOCS/a.negotiate.json"
	[ "$(shape /dev/stdin <<<"$output")" = "$(shape "$DOCS/a.quote.json")" ]
	# kl-submit again on evidence already answered: refused, nothing counted twice.
	run -3 --separate-stderr kl_run kl-submit <"$DOCS/b.quote.json"
	[[ $stderr == *": HTTP 403 evidence_immutable: "* ]]
	[ "$(kl_verdicts "$AGENT_ID" | jq .attestation_count)" = 2 ]
}

@test "e2e: IMA over 3 cycles: each passes, and the verifier receives only the new lines" {
	local round n off
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --ima-permissive
	for round in 1 2 3; do
		n=$(wc -l <"$IMA_LOG")
		ima_measure "/usr/bin/cycle-$round-a"
		ima_measure "/usr/bin/cycle-$round-b"
		if [ "$round" = 2 ]; then
			ima_measure "/usr/bin/cycle-2-c"
		fi
		# The first attestation gets the whole log, later ones what is new.
		off=$n
		[ "$round" -gt 1 ] || off=0
		run -0 pipeline "$DOCS/reg.json"
		last_verdict "$round" | jq -e --arg new "$(tail -n +$((off + 1)) "$IMA_LOG")"$'\n' \
			--argjson off "$off" --argjson round "$round" '.evaluation == "pass"
			and .index == $round - 1 and .starting_offset == $off
			and .received.ima_entries_text == $new and .certified_entry_count == .ima_entries'
	done
	# All lines were certified, each exactly once.
	kl_verdicts "$AGENT_ID" | jq -e --argjson all "$(wc -l <"$IMA_LOG")" \
		'[.attestations[].ima_entries] | add == $all'
}

@test "e2e: a PCR changed after enrollment makes the verifier's verdict fail" {
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID"
	run -0 pipeline "$DOCS/reg.json"
	last_verdict | jq -e '.evaluation == "pass"'
	tpm2_pcrextend "7:sha256=$(printf '%064d' 1)" >/dev/null
	run -0 pipeline "$DOCS/reg.json"
	last_verdict 2 | jq -e '.evaluation == "fail" and .failure_reason == "policy_violation"
		and (.failures | length == 1) and (.failures[0] | startswith("PCR #7: "))'
	[ "$(kl_verdicts "$AGENT_ID" | jq -r .status)" = FAIL ]
}

@test "e2e: an expired challenge: kl-quote gives the re-negotiate code and nothing is submitted" {
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID"
	kl_run kl-session <"$DOCS/reg.json" | kl_run kl-negotiate >"$DOCS/neg.json"
	jq -c '.challenge.expires_at = "2000-01-01T00:00:00+00:00"' "$DOCS/neg.json" >"$DOCS/old.json"
	faults_clear
	run --separate-stderr bash -c 'kl-quote <"$1" | kl-submit; echo "${PIPESTATUS[*]}"' _ "$DOCS/old.json"
	[ "${lines[-1]}" = "3 100" ]
	[ "${stderr_lines[0]}" = "kl-quote: error: challenge expired at 2000-01-01T00:00:00+00:00: run kl-negotiate again" ]
	[ "$(requests | jq length)" = 0 ]
	# Expired at the verifier instead: kl-submit is told so, with the same code.
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-challenge/$AGENT_ID" >/dev/null
	run --separate-stderr bash -c 'kl-quote <"$1" | kl-submit; echo "${PIPESTATUS[*]}"' _ "$DOCS/neg.json"
	[ "${lines[-1]}" = "0 3" ]
	[[ $stderr == "kl-submit: error: PATCH "*": HTTP 403 challenges_expired: "* ]]
	# kl-negotiate again, and the cycle passes.
	run -0 pipeline "$DOCS/reg.json"
	last_verdict | jq -e '.evaluation == "pass"'
}

@test "e2e: an expired token gives the re-authenticate code; a new session recovers" {
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID"
	cycle "$DOCS/reg.json" "$DOCS/a"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/expire-token/$AGENT_ID" >/dev/null
	run -2 --separate-stderr kl_run kl-negotiate <"$DOCS/a.submit.json"
	[[ $stderr == *": HTTP 401 Unauthorized: Authentication token expired" ]]
	# What kl-agent does: drop the session, run kl-session, go on.
	run -0 pipeline <(jq -c 'del(.session)' "$DOCS/a.submit.json")
	last_verdict 2 | jq -e '.evaluation == "pass"'
}

@test "e2e: too early (429) is temporary, with the verifier's delay in the document" {
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID"
	kl_peer_ctl POST "$KL_VERIFIER_CTL/config" '{"quote_interval": 20}' >/dev/null
	cycle "$DOCS/reg.json" "$DOCS/a"
	jq -e '.submission.seconds_to_next_attestation | . == 20 or . == 19' "$DOCS/a.submit.json"
	run -111 --separate-stderr kl_run kl-negotiate <"$DOCS/a.submit.json"
	one_error negotiate
	jq -e --slurpfile in "$DOCS/a.submit.json" 'del(.retry) == $in[0]
		and .retry.step == "kl-negotiate" and .retry.status == 429
		and (.retry.after | . >= 18 and . <= 20)' <<<"$output"
}

@test "e2e: the token is in no log line at debug level, and every file kl writes is 0600" {
	local secret f
	fresh
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --ima-permissive
	run -0 bash -c 'set -o pipefail; kl-session --log-level debug <"$1" | kl-negotiate --log-level debug | kl-quote --log-level debug |
		kl-submit --log-level debug 2>&1 >"$2" | cat' _ "$DOCS/reg.json" "$DOCS/out.json"
	secret=$(jq -r '.session.token | split(".")[1]' "$DOCS/out.json")
	[ "${#secret}" -ge 40 ]
	# Every step logged at debug level (the Authorization header among them) ...
	for f in session negotiate quote submit; do
		[[ $output == *"kl-$f: debug: "* ]]
	done
	[[ $output == *"kl-negotiate: debug: > Authorization: <redacted>"* ]]
	# ... and the token is in none of it, nor in any file under keylime_dir
	# but the kept session (0600, checked below with every file).
	[[ $output != *"$secret"* ]]
	[ "$(grep -rlF -- "$secret" "$KDIR")" = "$KDIR/kl-session.json" ]
	[ -n "$(find "$KDIR" -type f)" ]
	[ -z "$(find "$KDIR" -type f ! -perm 0600)" ]
	last_verdict | jq -e '.evaluation == "pass"'
}

@test "e2e: a 1,000,000-line IMA log: the cycle passes and the log is not read from the start" {
	local log_size pcr10 read_q read_n
	fresh
	"$KL_TOP/scripts/gen-ima-log" -n 1000000 >"$BATS_FILE_TMPDIR/ima-1m.log"
	cat "$IMA_LOG" >>"$BATS_FILE_TMPDIR/ima-1m.log"
	sed -i "s|^ima_ml_path = .*|ima_ml_path = \"$BATS_FILE_TMPDIR/ima-1m.log\"|" "$KEYLIME_AGENT_CONFIG"
	IMA_LOG=$BATS_FILE_TMPDIR/ima-1m.log
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --ima-permissive
	# The verifier has certified the log up to here, at the TPM's PCR 10 now
	# (the generated lines were never extended: only what follows is).
	tpm2_pcrread sha256:10 -o "$DOCS/pcr10" >/dev/null
	pcr10=$(xxd -p -c 64 "$DOCS/pcr10")
	kl_peer_ctl POST "$KL_VERIFIER_CTL/seed-ima/$AGENT_ID" "{\"starting_offset\": 1000001,
		\"pcr10\": \"$pcr10\", \"bank\": \"sha256\", \"boot_time\": $(btime)}" >/dev/null
	for round in 1 2; do
		ima_measure "/usr/bin/after-1m-$round-a"
		ima_measure "/usr/bin/after-1m-$round-b"
		log_size=$(stat -c %s "$IMA_LOG")
		kl_run kl-session <"$DOCS/reg.json" >"$DOCS/s.json"
		kl_run kl-negotiate --log-level debug <"$DOCS/s.json" 2>"$DOCS/n.err" >"$DOCS/n.json"
		kl_run kl-quote --log-level debug <"$DOCS/n.json" 2>"$DOCS/q.err" >"$DOCS/q.json"
		kl_run kl-submit <"$DOCS/q.json" >/dev/null
		read_n=$(sed -n 's/^kl-negotiate: debug: IMA log .*: 100000[0-9] entries; read \([0-9]*\) bytes of it$/\1/p' "$DOCS/n.err")
		read_q=$(sed -n 's/^kl-quote: debug: IMA log .*: read \([0-9]*\) bytes of it for .*/\1/p' "$DOCS/q.err")
		echo "# round $round: log $log_size bytes, kl-negotiate read $read_n, kl-quote read $read_q" >&3
		# kl-quote starts at the index mark before the offset: at most 256 KiB
		# plus the new lines, of a log of about 150 MB.
		[ "$log_size" -gt 100000000 ] && [ -n "$read_q" ] && [ "$read_q" -lt 400000 ]
		# kl-negotiate counts the whole log once, then only what was appended.
		if [ "$round" = 1 ]; then
			[ "$read_n" -ge "$log_size" ]
		else
			[ "$read_n" -lt 400000 ]
		fi
		last_verdict "$round" | jq -e --argjson off $((999999 + 2 * round)) '.evaluation == "pass"
			and .starting_offset == $off and .ima_entries == 2'
	done
}

# --------------------------------------------------------------- algorithms

@test "e2e: sha256 AK on a TPM with sha256 and sha384 banks: both offered, sha256 quoted" {
	fresh --banks sha256,sha384
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --ima-permissive
	cycle "$DOCS/reg.json" "$DOCS/a"
	requests '?method=POST&path=/attestations$' | jq -e '.[-1].body | fromjson
		| .data.attributes.evidence_supported[0].capabilities
		| .hash_algorithms == ["sha256", "sha384"] and (.available_subjects | keys == ["sha256", "sha384"])
		and .signature_schemes == ["rsassa"]'
	last_verdict | jq -e '.evaluation == "pass" and .received.hash_algorithm == "sha256"'
}

# refused_pop: kl-session's one line when the verifier takes only RSASSA/SHA-256 proofs.
refused_pop() {
	run -1 --separate-stderr kl_run kl-session <"$DOCS/reg.json"
	[ -z "$output" ]
	[[ $stderr == "kl-session: error: PATCH $KL_VERIFIER_URL/v3.0/sessions/"*": HTTP 401 (JSON reply of "*" bytes); the verifier rejected the TPM proof: the $1 AK signs with $2, and Keylime accepts only rsassa/sha256 proofs (docs/protocol.md 4.2)" ]]
}

@test "e2e: sha384 AK: Keylime refuses its PoP; where the verifier takes it, the cycle quotes sha384" {
	fresh --banks sha256,sha384 -- 'tpm_hash_alg = "sha384"'
	register "$DOCS/reg.json"
	jq -e '.agent.ak.hash_alg == "sha384"' "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --bank sha384
	refused_pop rsa rsassa/sha384
	enroll_own_scheme "$AGENT_ID" --bank sha384
	run -0 pipeline "$DOCS/reg.json"
	last_verdict | jq -e '.evaluation == "pass" and .received.hash_algorithm == "sha384"
		and .received.signature_scheme == "rsassa" and (.received.pcrs["0"] | length == 96)'
}

@test "e2e: RSAPSS AK: refused with a clear line unless the verifier accepts rsapss, then it passes" {
	fresh -- 'tpm_signing_alg = "rsapss"'
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID"
	refused_pop rsa rsapss/sha256
	enroll_own_scheme "$AGENT_ID"
	kl_run kl-session <"$DOCS/reg.json" >"$DOCS/ses.json"
	run -1 --separate-stderr kl_run kl-negotiate <"$DOCS/ses.json"
	[ "$stderr" = "kl-negotiate: error: POST $KL_VERIFIER_URL/v3.0/agents/$AGENT_ID/attestations: HTTP 422 invalid_resource_data: Attribute 'evidence' must have 'tpm_quote' with capabilities which are valid and satisfy agent policy (check PCR banks in 'available_subjects').; the AK signs with a scheme other than rsassa: the verifier's accept_tpm_signing_algs for this agent must list it" ]
	enroll_own_scheme "$AGENT_ID" --sign-algs rsassa,rsapss
	run -0 pipeline "$DOCS/reg.json"
	last_verdict | jq -e '.evaluation == "pass" and .received.signature_scheme == "rsapss"'
}

@test "e2e: ECC AK: refused with a clear line as by Keylime; with allow_ecc ECDSA passes" {
	fresh --ecc -- 'tpm_encryption_alg = "ecc"' 'tpm_signing_alg = "ecdsa"'
	register "$DOCS/reg.json"
	jq -e '.agent.ak.key_algorithm == "ecc" and .agent.ak.signing_alg == "ecdsa"' "$DOCS/reg.json"
	kl_enroll "$AGENT_ID"
	refused_pop ecc ecdsa/sha256
	enroll_own_scheme "$AGENT_ID"
	kl_run kl-session <"$DOCS/reg.json" >"$DOCS/ses.json"
	run -1 --separate-stderr kl_run kl-negotiate <"$DOCS/ses.json"
	[ "$stderr" = "kl-negotiate: error: POST $KL_VERIFIER_URL/v3.0/agents/$AGENT_ID/attestations: HTTP 422 invalid_resource_data: Attribute 'evidence' must be compatible with a given signature schemes.; the AK is an ECC key, which Keylime's verifier does not accept (\"ecc\" prefixes no signature scheme, docs/protocol.md 11 U1)" ]
	kl_enroll "$AGENT_ID" --allow-ecc --ima-permissive
	run -0 pipeline "$DOCS/reg.json"
	last_verdict | jq -e '.evaluation == "pass" and .received.signature_scheme == "ecdsa"'
}

@test "e2e: a UEFI log with a measured-boot policy: sent whole, replayed, pass" {
	local line
	fresh
	sed -i "s|^measuredboot_ml_path = .*|measuredboot_ml_path = \"$D/uefi.bin\"|" "$KEYLIME_AGENT_CONFIG"
	$KLFIX uefi-log "$D/uefi.bin" >"$D/uefi.extend"
	while read -r line; do
		tpm2_pcrextend "${line%%:*}:sha256=${line#*:}" >/dev/null
	done <"$D/uefi.extend"
	register "$DOCS/reg.json"
	kl_enroll "$AGENT_ID" --mb-replay
	cycle "$DOCS/reg.json" "$DOCS/a"
	jq -e --arg log "$(base64 -w0 "$D/uefi.bin")" '.challenge.requested == ["tpm_quote", "uefi_log"]
		and .evidence.evidence_collected[1].data.entries == $log' "$DOCS/a.submit.json"
	last_verdict | jq -e '.evaluation == "pass"'
}
