#!/usr/bin/env bats
# The libFuzzer targets of tests/fuzz/ (one per parser: the stdin document of
# each step, the verifier's and the registrar's replies, TOML and the
# configuration file, the IMA log and its checkpoint, the UEFI log,
# Retry-After, the field decoders, the state files). Each runs its seed corpus
# (tests/fuzz/corpus/<name>/) and then mutates, KL_FUZZ_RUNS (30000) inputs or
# about KL_FUZZ_SECONDS (1; libFuzzer stops within the next second) whichever
# comes first, under ASan+UBSan: any crash, leak, sanitizer report or hang
# (-timeout) fails the test. The 16 targets take about 25 s in all.
# `make fuzz` builds them; skipped only when clang's fuzzer runtime is
# missing (scripts/deps installs it: libclang-rt-14-dev).
load helpers

setup_file() {
	export FUZZ=$KL_BUILD/fuzz
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
		>"$BATS_FILE_TMPDIR/probe.c"
	if ! clang -fsanitize=fuzzer -o "$BATS_FILE_TMPDIR/probe" "$BATS_FILE_TMPDIR/probe.c" 2>/dev/null; then
		export FUZZ_SKIP="no clang fuzzer runtime (install libclang-rt-14-dev: scripts/deps)"
		return 0
	fi
	make -s -j2 -C "$KL_TOP" BUILD="$KL_BUILD" fuzz >"$BATS_FILE_TMPDIR/make.log" 2>&1 ||
		{ cat "$BATS_FILE_TMPDIR/make.log" >&2; return 1; }
}

# fuzz_ok NAME: the corpus, then the mutations; new inputs go to a scratch
# directory, never into the seed corpus, and a crashing input to the test's
# own directory (libFuzzer's default is the working directory: the checkout).
fuzz_ok() {
	[ -z "${FUZZ_SKIP:-}" ] || skip "$FUZZ_SKIP"
	local seeds=$KL_TOP/tests/fuzz/corpus/$1 work=$BATS_TEST_TMPDIR/new
	[ -n "$(ls -A "$seeds")" ]
	mkdir -p "$work"
	run --separate-stderr "$FUZZ/$1" -runs="${KL_FUZZ_RUNS:-30000}" \
		-max_total_time="${KL_FUZZ_SECONDS:-1}" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$BATS_TEST_TMPDIR/" "$work" "$seeds"
	if [ "$status" -ne 0 ]; then
		tail -40 <<<"$stderr" >&2
		return 1
	fi
	# It ran: the seeds were read, and mutations after them.
	grep -qE '^#[0-9]+[[:space:]]+INITED .*corp: [1-9]' <<<"$stderr"
	grep -qE '^#[0-9]+[[:space:]]+DONE[[:space:]]' <<<"$stderr"
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' <<<"$stderr")
	[ "$runs" -gt "$(ls "$seeds" | wc -l)" ]
}

@test "fuzz: doc (stdin document: reader, schema, required members)" { fuzz_ok doc; }
@test "fuzz: doc_session (kl-session's input and token reuse)" { fuzz_ok doc_session; }
@test "fuzz: doc_quote (kl-quote's challenge checks before the TPM)" { fuzz_ok doc_quote; }
@test "fuzz: doc_submit (kl-submit's evidence-vs-challenge checks)" { fuzz_ok doc_submit; }
@test "fuzz: reply_session (POST /sessions challenge, PATCH token expiry)" { fuzz_ok reply_session; }
@test "fuzz: reply_negotiate (the 201: Location, evidence_requested)" { fuzz_ok reply_negotiate; }
@test "fuzz: reply_api (status classes, errors[], Location resolution)" { fuzz_ok reply_api; }
@test "fuzz: reply_registrar (version, blob, error replies)" { fuzz_ok reply_registrar; }
@test "fuzz: toml (kl_toml_parse, positions, one value)" { fuzz_ok toml; }
@test "fuzz: config (kl_config_load on a KEYLIME_AGENT_CONFIG file)" { fuzz_ok config; }
@test "fuzz: ima (IMA log lines, count and read over a checkpoint)" { fuzz_ok ima; }
@test "fuzz: ima_ckpt (a corrupt or lying IMA checkpoint)" { fuzz_ok ima_ckpt; }
@test "fuzz: uefi (UEFI event log structure)" { fuzz_ok uefi; }
@test "fuzz: http (Retry-After: delta-seconds and HTTP dates)" { fuzz_ok http; }
@test "fuzz: util (base64, hex, RFC 3339 times, UUIDs)" { fuzz_ok util; }
@test "fuzz: state (the AK file and the status file, cut short or corrupt)" { fuzz_ok state; }

@test "fuzz: every target in tests/fuzz/ has a seed corpus and a test here" {
	[ -z "${FUZZ_SKIP:-}" ] || skip "$FUZZ_SKIP"
	for f in "$KL_TOP"/tests/fuzz/*.c; do
		n=$(basename "$f" .c)
		[ -d "$KL_TOP/tests/fuzz/corpus/$n" ]
		grep -q "fuzz_ok $n;" "$BATS_TEST_FILENAME"
		[ -x "$FUZZ/$n" ]
	done
}
