#!/usr/bin/env bats
# tests/bats/cli.bats - the command line of every program (lib/kl_cli): each
# takes its own options and the shared ones, refuses the others' with a usage
# error, and lists exactly those in --help. No TPM, no network: every run
# stops at the usage error, at -h, or at its empty input.
load helpers

PROGS="kl-register kl-session kl-negotiate kl-quote kl-submit kl-agent"
SHARED="--verifier-url --registrar-url --agent-identifier --attestation-interval-seconds
--ca-certificate --api-version --timeout --insecure --avoid-tpm --tcti --verbose --log-level
--version --help"

setup() {
	# Nothing from the caller's configuration; kl-agent finds no steps.
	export KL_SYSCONFDIR=$BATS_TEST_TMPDIR/etc KEYLIME_DIR=$BATS_TEST_TMPDIR/lib
	export KL_STEP_DIR=$BATS_TEST_TMPDIR/no-steps
	mkdir -p "$KL_SYSCONFDIR" "$KEYLIME_DIR"
	kl_no_caller_config
}

# own PROG: the options of PROG alone.
own() {
	case $1 in
	kl-agent) echo --once --verdict ;;
	kl-register) echo --check --dry-run ;;
	kl-session | kl-negotiate | kl-submit) echo --dry-run ;;
	kl-doctor) echo --json --bundle --token-file ;;
	esac
}

# refused PROG OPTION: exit 100, empty stdout, one error line and the usage line.
refused() {
	run -100 --separate-stderr kl_run "$1" "$2" </dev/null
	[ -z "$output" ]
	if [ "${#stderr_lines[@]}" -ne 2 ] ||
		[ "${stderr_lines[0]}" != "$1: error: unknown option \"$2\"" ] ||
		[[ ${stderr_lines[1]} != "usage: $1 "*"[options]"* ]]; then
		printf '%s %s: got stderr:\n%s\n' "$1" "$2" "$stderr"
		return 1
	fi
}

@test "cli: every program refuses the other programs' options: exit 100, one usage line" {
	refused kl-quote --once
	refused kl-negotiate --check
	refused kl-submit --once
	refused kl-session --check
	refused kl-register --once
	refused kl-agent --check
	refused kl-quote --check
	refused kl-negotiate --once
	refused kl-quote --dry-run
	refused kl-agent --dry-run
	refused kl-doctor --once
	refused kl-doctor --dry-run
}

@test "cli: a refused option is refused wherever it stands, and nothing runs" {
	run -100 --separate-stderr kl_run kl-quote --verbose --tcti swtpm:port=1 --once --insecure </dev/null
	[ "${stderr_lines[0]}" = 'kl-quote: error: unknown option "--once"' ]
	[ "${stderr_lines[1]}" = 'usage: kl-quote [options] <document >document' ]
	[ "${#stderr_lines[@]}" -eq 2 ]
}

@test "cli: long options are not abbreviated (--onc is not --once), but suggested" {
	run -100 --separate-stderr kl_run kl-agent --onc
	[ "${stderr_lines[0]}" = 'kl-agent: error: unknown option "--onc"; did you mean --once?' ]
	run -100 --separate-stderr kl_run kl-quote --verifier https://x </dev/null
	[ "${stderr_lines[0]}" = 'kl-quote: error: unknown option "--verifier"; did you mean --verifier-url?' ]
}

@test "cli: --help lists the program's own options and the shared ones, not the others'" {
	local p o
	for p in $PROGS; do
		run -0 --separate-stderr kl_run "$p" --help
		[ -z "$stderr" ]
		[[ ${lines[0]} == "usage: $p "* ]]
		for o in $SHARED $(own "$p"); do
			grep -qE -- "^  (-., )?$o( |$)" <<<"$output" || { echo "$p --help lacks $o"; return 1; }
		done
		for o in --once --verdict --check --dry-run; do
			[[ " $(own "$p") " == *" $o "* ]] && continue
			if grep -qe "$o" <<<"$output"; then
				echo "$p --help shows $o"
				return 1
			fi
		done
	done
}

@test "cli: the usage line names the program's own options" {
	run -0 kl_run kl-agent -h
	[ "${lines[0]}" = "usage: kl-agent [--once] [--verdict] [options]" ]
	run -0 kl_run kl-register -h
	[ "${lines[0]}" = "usage: kl-register [--check] [--dry-run] [options] <document >document" ]
	run -0 kl_run kl-submit -h
	[ "${lines[0]}" = "usage: kl-submit [--dry-run] [options] <document >document" ]
	run -0 kl_run kl-quote -h
	[ "${lines[0]}" = "usage: kl-quote [options] <document >document" ]
	run -0 kl_run kl-doctor -h
	[ "${lines[0]}" = "usage: kl-doctor [--json] [--bundle FILE] [--token-file FILE] [options]" ]
}

@test "cli: the shared flags reach the configuration of every program" {
	local p
	for p in $PROGS; do
		# Debug lines show each value set, with where it came from; the run
		# then stops on its empty input (kl-agent: on its missing steps).
		run --separate-stderr kl_run "$p" --log-level debug --verifier-url https://flag.invalid:1 \
			--tcti swtpm:port=1 --agent-identifier flag-id --registrar-url http://r.invalid:2 \
			--ca-certificate ca.pem --timeout 1234 --api-version v3.0 --insecure \
			--attestation-interval-seconds 7 --json-file j </dev/null
		[ "$status" -eq 100 ]
		[ -z "$output" ]
		grep -qxF "$p: debug: config: verifier_url = \"https://flag.invalid:1\" (--verifier-url)" <<<"$stderr"
		grep -qxF "$p: debug: config: tcti = \"swtpm:port=1\" (--tcti)" <<<"$stderr"
		grep -qxF "$p: debug: config: uuid = \"flag-id\" (--agent-identifier)" <<<"$stderr"
		grep -qxF "$p: debug: config: verifier_tls_ca_cert = \"$PWD/ca.pem\" (--ca-certificate)" <<<"$stderr"
		grep -qxF "$p: warning: --json-file: ignored (kept for compatibility with keylime_push_model_agent)" <<<"$stderr"
		[[ $stderr != *"usage:"* ]]
	done
}

@test "cli: bad values of shared flags are usage errors in every program" {
	local p
	for p in $PROGS; do
		run -100 --separate-stderr kl_run "$p" --timeout 5s </dev/null
		[ "${stderr_lines[0]}" = "$p: error: --timeout: expected a positive integer, not \"5s\"" ]
		[ "${#stderr_lines[@]}" -eq 2 ]
		run -100 --separate-stderr kl_run "$p" --api-version latest </dev/null
		[ "${stderr_lines[0]}" = "$p: error: --api-version: expected a version like v3.0, not \"latest\"" ]
	done
}

@test "cli: kl-agent passes the shared flags on to the steps as given, without its own" {
	local fake=$BATS_TEST_DIRNAME/fixtures/agent/fake-step s
	mkdir -p "$KL_STEP_DIR"
	for s in kl-register kl-session kl-negotiate kl-quote kl-submit; do
		ln -s "$fake" "$KL_STEP_DIR/$s"
	done
	export KL_FAKE_DIR=$BATS_TEST_TMPDIR
	run -0 --separate-stderr kl_run kl-agent --verbose --verbose --once --timeout=3000 --json-file j \
		--tcti swtpm:port=1 -v https://v.invalid --insecure false
	grep -q "^call kl-quote 1 .* | argv: --verbose --verbose --timeout=3000 --json-file j --tcti swtpm:port=1 -v https://v.invalid --insecure false$" \
		"$KL_FAKE_DIR/calls.log"
}
