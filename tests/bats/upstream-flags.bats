#!/usr/bin/env bats
# tests/bats/upstream-flags.bats - upstream keylime_push_model_agent's command
# line as upstream (clap) means it, in every kl program (lib/kl_cli): -v is
# --verifier-url, --insecure/--avoid-tpm take an optional true/false, -V and
# --version, -j, RUST_LOG as the log level; kl's verbosity is --verbose and
# --log-level; unknown options get a suggestion. No TPM, no network: every
# run stops at a usage error, at -V, or at its empty input.
load helpers

PROGS="kl-register kl-session kl-negotiate kl-quote kl-submit kl-agent"

setup() {
	export KL_SYSCONFDIR=$BATS_TEST_TMPDIR/etc KEYLIME_DIR=$BATS_TEST_TMPDIR/lib
	export KL_STEP_DIR=$BATS_TEST_TMPDIR/no-steps
	mkdir -p "$KL_SYSCONFDIR" "$KEYLIME_DIR"
	# an empty agent.conf: "info: config: reading ..." is the info line
	touch "$KL_SYSCONFDIR/agent.conf"
	kl_no_caller_config
}

# cfg ARGS...: the configuration test_config resolves from ARGS (exit 0).
cfg() {
	run -0 --separate-stderr kl_unit config "$@"
}
val() { jq -c "$1" <<<"$output"; }

@test "upstream flags: -v URL is --verifier-url in every program (-vURL, -v=URL too)" {
	local p
	for p in $PROGS; do
		run --separate-stderr kl_run "$p" --log-level debug -v https://short.invalid:1 \
			--tcti swtpm:port=1 </dev/null
		[ "$status" -ne 0 ]
		grep -qxF "$p: debug: config: verifier_url = \"https://short.invalid:1\" (--verifier-url)" \
			<<<"$stderr"
	done
	cfg -vhttps://attached.invalid:2
	[ "$(val .verifier_url)" = '"https://attached.invalid:2"' ]
	cfg -v=https://equals.invalid:3
	[ "$(val .verifier_url)" = '"https://equals.invalid:3"' ]
	cfg --verifier-url https://long.invalid:4 --registrar-url http://r.invalid:5
	[ "$(val '[.verifier_url, .resolved.registrar_url]')" = '["https://long.invalid:4","http://r.invalid:5"]' ]
}

@test "upstream flags: kl's old -v, -vv or -v before a flag is a usage error naming --verbose" {
	local p a want="error: -v is --verifier-url (as in keylime_push_model_agent) and needs a URL; for more messages use --verbose (twice: debug) or --log-level LEVEL"
	for p in $PROGS; do
		for a in "-v" "-vv" "-v --insecure" "-vvv --tcti x"; do
			# shellcheck disable=SC2086 # the words of $a, on purpose
			run -100 --separate-stderr kl_run "$p" $a </dev/null
			[ -z "$output" ]
			[ "${stderr_lines[0]}" = "$p: $want" ] || { echo "$p $a: $stderr"; return 1; }
			[[ ${stderr_lines[1]} == "usage: $p "* ]]
		done
	done
	# Any value option followed by an option is missing its value, as in clap.
	run -100 --separate-stderr kl_run kl-quote --verifier-url --insecure </dev/null
	[ "${stderr_lines[0]}" = 'kl-quote: error: option "--verifier-url" needs a value' ]
}

@test "upstream flags: --insecure [BOOL]: alone true, true, false, =false; other words refused" {
	cfg
	[ "$(val .insecure)" = false ]
	cfg --insecure
	[ "$(val .insecure)" = true ]
	cfg --insecure true
	[ "$(val .insecure)" = true ]
	cfg --insecure false
	[ "$(val .insecure)" = false ]
	cfg --insecure=false --flag
	[ "$(val '[.insecure, .flag]')" = '[false,true]' ]
	cfg --insecure --flag
	[ "$(val '[.insecure, .flag]')" = '[true,true]' ]
	# the last one wins, as in clap
	cfg --insecure --insecure false
	[ "$(val .insecure)" = false ]
	run -100 --separate-stderr kl_unit config --insecure=yes
	[ "${stderr_lines[0]}" = 'test_config: error: --insecure: expected true or false, not "yes"' ]
}

@test "upstream flags: --avoid-tpm [BOOL]: alone false (upstream's default_missing_value); true is refused" {
	cfg --avoid-tpm
	[ "$(val .avoid_tpm)" = false ]
	cfg --avoid-tpm false
	[ "$(val .avoid_tpm)" = false ]
	cfg --avoid-tpm true
	[ "$(val .avoid_tpm)" = true ]
	run -100 --separate-stderr kl_run kl-agent --once --avoid-tpm=true
	[[ ${stderr_lines[0]} == "kl-agent: error: --avoid-tpm: kl always attests with a TPM"* ]]
	# alone it does not refuse: kl-agent gets as far as its (missing) steps
	run -100 --separate-stderr kl_run kl-agent --once --avoid-tpm
	[[ $stderr != *"avoid-tpm"* ]]
	[[ $stderr == *"not executable"* ]]
}

@test "upstream flags: -V and --version in every program: kl's version, then each linked library" {
	local p libs
	for p in $PROGS; do
		for a in -V --version; do
			run -0 --separate-stderr kl_run "$p" "$a" --no-such-option-after-version
			[ -z "$stderr" ]
			[[ ${lines[0]} =~ ^$p\ [0-9]+\.[0-9]+\.[0-9]+(\+git\.[0-9a-f]{7,}(-dirty)?)?$ ]] ||
				{ echo "$p: ${lines[0]}"; return 1; }
			[[ ${lines[1]} =~ ^jansson\ [0-9]+\.[0-9]+ ]]
			libs=$(sed -n '2,$p' <<<"$output" | cut -d' ' -f1 | tr '\n' ' ')
			case $p in
			kl-agent) [ "$libs" = "jansson steps: " ] ;;
			kl-quote) [ "$libs" = "jansson OpenSSL tss2-esys " ] ;;
			kl-submit) [ "$libs" = "jansson libcurl " ] ;;
			*) [ "$libs" = "jansson OpenSSL libcurl tss2-esys " ] ;;
			esac || { echo "$p: $libs"; return 1; }
		done
	done
	run -0 kl_run kl-register --version
	grep -qx "libcurl $(curl-config --version 2>/dev/null | cut -d' ' -f2 || echo '[0-9.]*') (OpenSSL/[0-9.]*)" <<<"$output" ||
		grep -qx 'libcurl [0-9.]* (OpenSSL/[0-9.]*)' <<<"$output"
	grep -qx "tss2-esys $(pkg-config --modversion tss2-esys) (build time)" <<<"$output"
	grep -qx "OpenSSL $(openssl version | cut -d' ' -f2) .*" <<<"$output"
	grep -qx "jansson $(pkg-config --modversion jansson)" <<<"$output"
	run -0 kl_run kl-agent -V
	[ "${lines[2]}" = "steps: run kl-register --version (or any other step) for the TPM, HTTP and TLS libraries" ]
}

@test "upstream flags: make version: the git description, or the package version without git" {
	local v
	v=$(make -s -C "$KL_TOP" version)
	[[ $v == "$(head -n 1 "$KL_TOP/debian/changelog" | sed 's/.*(\([^)-]*\).*/\1/')+git."* ]]
	# an unpacked tarball: no .git
	mkdir -p "$BATS_TEST_TMPDIR/src/debian"
	cp "$KL_TOP/Makefile" "$BATS_TEST_TMPDIR/src/"
	printf 'kl (4.5.6-2) unstable; urgency=medium\n' >"$BATS_TEST_TMPDIR/src/debian/changelog"
	run -0 make -s -C "$BATS_TEST_TMPDIR/src" version
	[ "$output" = 4.5.6 ]
	run -0 make -s -C "$BATS_TEST_TMPDIR/src" version KL_VERSION=9.9
	[ "$output" = 9.9 ]
}

@test "upstream flags: -j FILE and the other test leftovers are accepted with a warning" {
	run -100 --separate-stderr kl_run kl-quote -j doc.json --method PATCH --session-index 2 </dev/null
	[ "${stderr_lines[0]}" = "kl-quote: warning: --json-file: ignored (kept for compatibility with keylime_push_model_agent)" ]
	[ "${stderr_lines[1]}" = "kl-quote: warning: --method: ignored (kept for compatibility with keylime_push_model_agent)" ]
	[ "${stderr_lines[2]}" = "kl-quote: warning: --session-index: ignored (kept for compatibility with keylime_push_model_agent)" ]
	[[ $stderr != *usage* ]]
}

@test "upstream flags: RUST_LOG sets the level: bare, target=level (upstream's targets), the most verbose" {
	local rl
	# debug lines: the configuration's values
	for rl in debug trace DEBUG keylime_push_model_agent=trace,foo=error \
		"keylime_push_model_agent=info,keylime=debug" "error,keylime=debug" keylime \
		"keylime_push_model_agent::attestation=debug/quote" "info, keylime = debug"; do
		RUST_LOG=$rl run -100 --separate-stderr kl_run kl-quote </dev/null
		grep -q '^kl-quote: debug: config: ' <<<"$stderr" || { echo "RUST_LOG=$rl: $stderr"; return 1; }
	done
	# info, no debug: upstream's unit sets this one
	RUST_LOG=keylime_push_model_agent=info,keylime=info run -100 --separate-stderr kl_run kl-quote </dev/null
	grep -q '^kl-quote: info: ' <<<"$stderr"
	! grep -q ': debug: ' <<<"$stderr"
	# other crates' levels do not apply to kl: the bare level, else kl's default
	for rl in reqwest=debug "warn,hyper=trace" "debug,keylime=warn"; do
		RUST_LOG=$rl run -100 --separate-stderr kl_run kl-quote </dev/null
		! grep -q ': debug: \|: info: ' <<<"$stderr" || { echo "RUST_LOG=$rl: $stderr"; return 1; }
	done
	# error: the parser's warnings are gone, the error line stays
	RUST_LOG=error run -100 --separate-stderr kl_run kl-quote -j x </dev/null
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ ${stderr_lines[0]} == "kl-quote: error: "* ]]
	RUST_LOG=warn run -100 --separate-stderr kl_run kl-quote -j x </dev/null
	[[ ${stderr_lines[0]} == "kl-quote: warning: --json-file: ignored"* ]]
	# a bad level is said and skipped
	RUST_LOG=keylime=loud,debug run -100 --separate-stderr kl_run kl-quote </dev/null
	[ "${stderr_lines[0]}" = 'kl-quote: warning: RUST_LOG: "keylime=loud": not a level (error, warn, info, debug, trace): skipped' ]
	grep -q '^kl-quote: debug: ' <<<"$stderr"
}

@test "upstream flags: --log-level replaces RUST_LOG, --verbose raises the level" {
	RUST_LOG=debug run -100 --separate-stderr kl_run kl-quote --log-level error </dev/null
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ ${stderr_lines[0]} == "kl-quote: error: "* ]]
	RUST_LOG=error run -100 --separate-stderr kl_run kl-quote --verbose </dev/null
	grep -q '^kl-quote: info: ' <<<"$stderr"
	! grep -q ': debug: ' <<<"$stderr"
	RUST_LOG=error run -100 --separate-stderr kl_run kl-quote --verbose --verbose </dev/null
	grep -q '^kl-quote: debug: ' <<<"$stderr"
	cfg --log-level warn --verbose
	[ "$(val '[.verbose, .kl_verbose]')" = '[1,1]' ]
	cfg --log-level error
	[ "$(val .verbose)" = -2 ]
	run -100 --separate-stderr kl_unit config --log-level loud
	[ "${stderr_lines[0]}" = 'test_config: error: --log-level: expected error, warn, notice, info, debug or trace, not "loud"' ]
}

@test "upstream flags: an unknown option is an error that names the nearest known one" {
	local p
	for p in $PROGS; do
		run -100 --separate-stderr kl_run "$p" --verifier_url https://x </dev/null
		[ "${stderr_lines[0]}" = "$p: error: unknown option \"--verifier_url\"; did you mean --verifier-url?" ]
		[ "${#stderr_lines[@]}" -eq 2 ]
	done
	run -100 --separate-stderr kl_run kl-agent --registar-url=http://r
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "--registar-url=http://r"; did you mean --registrar-url?' ]
	run -100 --separate-stderr kl_run kl-agent --attestation-interval 5
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "--attestation-interval"; did you mean --attestation-interval-seconds?' ]
	run -100 --separate-stderr kl_run kl-agent --json_file x
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "--json_file"; did you mean --json-file?' ]
	run -100 --separate-stderr kl_run kl-agent --verbos
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "--verbos"; did you mean --verbose?' ]
	# nothing near: no suggestion
	run -100 --separate-stderr kl_run kl-agent --frobnicate
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "--frobnicate"' ]
	run -100 --separate-stderr kl_run kl-agent -x
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "-x"' ]
}

@test "upstream flags: kl-agent takes upstream's unit as it is (ExecStart without flags, RUST_LOG)" {
	RUST_LOG=keylime_push_model_agent=info,keylime=info run -100 --separate-stderr kl_run kl-agent
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "${stderr_lines[0]}" = "kl-agent: info: config: reading $KL_SYSCONFDIR/agent.conf" ]
	[[ ${stderr_lines[1]} == "kl-agent: error: "*"/kl-register: not executable"* ]]
	RUST_LOG=keylime_push_model_agent=info,keylime=info cfg
	[ "$(val '[.verbose, .kl_verbose]')" = '[1,1]' ]
}
