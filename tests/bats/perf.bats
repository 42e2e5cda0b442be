#!/usr/bin/env bats
# perf.bats - what makes a steady cycle cheap on a real TPM (issue 10): the AK
# comes from its saved context (no EK CreatePrimary, no policy session, no
# Load), the session token from the kept file (no PoP), and no look for
# leftover objects at open unless a step died holding the TPM (kl-tpm.open).
# Counted from the TSS trace (TSS2_LOG=tcti+debug names the command code of
# every command sent; esys+trace the capability each GetCapability asks for)
# on the test's swtpm, a TPM without a resource manager. Timing figures are
# make bench's, not asserted here.
load helpers
load fixtures/e2e/steps

last_verdict() { kl_verdicts "$AGENT_ID" --wait 1 | jq -c '.attestations[-1]'; }

setup_file() { file_start; }

teardown_file() { file_stop; }

setup() { file_use; }

# tpm_cc STEP IN OUT [ARG...]: run STEP with the TSS trace (kept in
# $BATS_TEST_TMPDIR/trace); prints the command codes sent, one a line.
tpm_cc() {
	local step=$1 in=$2 out=$3
	shift 3
	TSS2_LOG=tcti+debug,esys+trace kl_run "$step" "$@" <"$in" 2>"$BATS_TEST_TMPDIR/trace" >"$out" || {
		grep -v '^\(debug\|trace\|info\)' "$BATS_TEST_TMPDIR/trace" >&2
		return 1
	}
	sed -n 's/.*Sending command with TPM_CC \(0x[0-9a-f]*\) .*/\1/p' "$BATS_TEST_TMPDIR/trace"
}

# steady_cycle PREFIX: session, negotiate, quote, submit on the file's agent;
# the TPM commands of each step appended to PREFIX.cc, its trace to PREFIX.trace.
steady_cycle() {
	local in=$D/reg.json step
	for step in session negotiate quote submit; do
		tpm_cc "kl-$step" "$in" "$1.$step.json" >>"$1.cc" || return
		cat "$BATS_TEST_TMPDIR/trace" >>"$1.trace"
		in=$1.$step.json
	done
}

# handle_looks TRACE: how many TPM2_GetCapability(TPM_CAP_HANDLES) in TRACE
# (the look for leftover objects and sessions, kl_tpm_open).
handle_looks() { grep -c 'Esys_GetCapability_Async() .*capability=1,' "$1" || true; }

CREATE_PRIMARY=0x131
LOAD=0x157
CONTEXT_LOAD=0x161

@test "perf: a steady cycle makes no key and no PoP: the AK from its saved context, the kept token" {
	local t=$BATS_TEST_TMPDIR
	ima_measure /usr/bin/perf-a
	[[ $TCTI == swtpm:* ]]		# no resource manager: where kl would look for leftovers
	steady_cycle "$t/warm"		# may make the context and the token
	[ "$(stat -c %a "$KDIR/kl-ak.ctx")" = 600 ]
	faults_clear
	steady_cycle "$t/steady"
	[ "$(nreq '^/v3.0/sessions')" = 0 ]
	! grep -qx "$CREATE_PRIMARY\|$LOAD" "$t/steady.cc" || false
	[ "$(grep -cx "$CONTEXT_LOAD" "$t/steady.cc")" = 1 ]	# kl-quote only
	echo "# steady cycle: $(wc -l <"$t/steady.cc") TPM commands" >&3
	[ "$(wc -l <"$t/steady.cc")" -le 12 ]
	[ "$(handle_looks "$t/steady.trace")" = 0 ]
	[ ! -e "$KDIR/kl-tpm.open" ]
	last_verdict | jq -e '.evaluation == "pass"'
}

@test "perf: a step killed holding the TPM leaves kl-tpm.open: the next open looks for leftovers, flushes them, then no more looks" {
	local t=$BATS_TEST_TMPDIR i
	[[ $TCTI == swtpm:* ]]
	steady_cycle "$t/warm"
	kl_run kl-negotiate <"$t/warm.session.json" >"$t/neg.json"
	# Killed while open: the marker stays (0600), and so may its objects.
	for i in 1 2 3; do
		"$KL_BIN/kl-quote" <"$t/neg.json" >/dev/null 2>&1 &
		sleep 0.0$((3 + i))
		kill -9 $! 2>/dev/null || true
		wait $! || true
		[ ! -e "$KDIR/kl-tpm.open" ] || [ "$(stat -c %a "$KDIR/kl-tpm.open")" = 600 ]
	done
	# A step that died holding the TPM, made certain: its marker, and an object
	# it left loaded (a quote is over in ~15 ms, too fast to kill for sure
	# while open; the loop above kills at random points).
	: >"$KDIR/kl-tpm.open"
	tpm2_createprimary -C o -c "$t/left.ctx" >/dev/null
	[ "$(tpm2_getcap handles-transient | wc -l)" -ge 1 ]
	[ -e "$KDIR/kl-tpm.open" ]
	run -0 tpm_cc kl-quote "$t/neg.json" "$t/q1.json"
	[ "$(handle_looks "$t/trace")" = 3 ]
	[ ! -e "$KDIR/kl-tpm.open" ]
	run -0 tpm_cc kl-quote "$t/neg.json" "$t/q2.json"
	[ "$(handle_looks "$t/trace")" = 0 ]
	[ -z "$(tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session)" ]
	kl_run kl-submit <"$t/q2.json" >/dev/null
	last_verdict | jq -e '.evaluation == "pass"'
}

@test "perf: after a TPM reset the saved AK context is stale: re-created once, the cycle passes" {
	local t=$BATS_TEST_TMPDIR old
	steady_cycle "$t/warm"
	old=$(md5sum <"$KDIR/kl-ak.ctx")
	# TPM Reset: Shutdown(CLEAR), a power cycle, Startup(CLEAR); then PCR 10
	# again from the IMA log, as the kernel's measurements would be.
	tpm2_shutdown -c
	swtpm_ioctl --tcp "127.0.0.1:$((KL_SWTPM_PORT + 1))" -i
	tpm2_startup -c
	"$KL_PYTHON" -c 'import sys; sys.path.insert(0, sys.argv[1]); import kltpm
for l in open(sys.argv[2]): print(kltpm.ImaEntry(l.rstrip("\n")).extend_value("sha256").hex())' \
		"$KL_TOP/tests/peers" "$IMA_LOG" | while read -r v; do tpm2_pcrextend "10:sha256=$v"; done
	ima_measure /usr/bin/perf-b
	rm -f "$KDIR/kl-session.json"	# a PoP too: kl-session's TPM use after the reset
	run -0 --separate-stderr kl_run kl-session --verbose <"$D/reg.json"
	[[ $stderr == *"info: saved AK context not taken by the TPM ("*"integrity"*"): re-creating it"* ]]
	[ "$(md5sum <"$KDIR/kl-ak.ctx")" != "$old" ]
	: >"$t/after.cc"
	steady_cycle "$t/after"
	! grep -qx "$CREATE_PRIMARY" "$t/after.cc" || false
	last_verdict | jq -e '.evaluation == "pass"'
}

@test "perf: a saved context that is garbage, or of another key, is dropped; the AK loaded under the EK" {
	local t=$BATS_TEST_TMPDIR junk
	steady_cycle "$t/warm"
	# Another agent's AK on the same TPM: a context the TPM takes, of another key.
	(
		agent_new "$t/other"
		register
		jq -c --slurpfile w "$t/warm.negotiate.json" '. + {challenge: $w[0].challenge}' \
			"$D/reg.json" | kl_run kl-quote >/dev/null
	)
	[ -s "$t/other/keylime/kl-ak.ctx" ]
	for junk in garbage other; do
		case $junk in
		garbage) head -c 600 /dev/urandom >"$KDIR/kl-ak.ctx" ;;
		other) cp "$t/other/keylime/kl-ak.ctx" "$KDIR/kl-ak.ctx" ;;
		esac
		kl_run kl-negotiate <"$t/warm.session.json" >"$t/$junk.neg.json"
		tpm_cc kl-quote "$t/$junk.neg.json" "$t/$junk.quote.json" --verbose >"$t/$junk.cc"
		[ "$(grep -cx "$CREATE_PRIMARY" "$t/$junk.cc")" = 1 ]
		[ $junk = garbage ] || grep -q "info: saved AK context holds another key: re-creating it" "$t/trace"
		kl_run kl-submit <"$t/$junk.quote.json" >/dev/null
		last_verdict | jq -e '.evaluation == "pass"'
	done
	# Kept again: the next quote loads the context.
	kl_run kl-negotiate <"$t/warm.session.json" >"$t/neg.json"
	[ "$(tpm_cc kl-quote "$t/neg.json" "$t/quote.json" | grep -cx "$CREATE_PRIMARY")" = 0 ]
}

# RSS (issue 10, docs/performance.md): Debian's libcurl loads GnuTLS, which
# initialises itself in its constructor unless GNUTLS_NO_IMPLICIT_INIT=1; kl's
# TLS is OpenSSL, so kl-agent gives its steps that switch (0.6-0.8 MiB each).
@test "perf: kl-agent runs its steps without GnuTLS's implicit initialisation; an operator's value is kept" {
	local t=$BATS_TEST_TMPDIR s
	# The steps themselves, with the switch, attest as usual.
	ima_measure /usr/bin/perf-gnutls
	GNUTLS_NO_IMPLICIT_INIT=1 steady_cycle "$t/gnutls"
	last_verdict | jq -e '.evaluation == "pass"'
	# kl-agent sets it for its steps (fake ones here, which log their environment).
	export KL_SYSCONFDIR=$t/etc KEYLIME_DIR=$t/lib KL_STEP_DIR=$t/steps KL_FAKE_DIR=$t
	mkdir -p "$KL_SYSCONFDIR" "$KEYLIME_DIR" "$KL_STEP_DIR"
	kl_no_caller_config
	for s in kl-register kl-session kl-negotiate kl-quote kl-submit; do
		ln -s "$BATS_TEST_DIRNAME/fixtures/agent/fake-step" "$KL_STEP_DIR/$s"
	done
	unset GNUTLS_NO_IMPLICIT_INIT
	run -0 kl_run kl-agent --once -v https://v.invalid --tcti swtpm:port=1
	grep -qx "env kl-session 1: GNUTLS_NO_IMPLICIT_INIT=1" "$t/calls.log"
	grep -qx "env kl-submit 1: GNUTLS_NO_IMPLICIT_INIT=1" "$t/calls.log"
	GNUTLS_NO_IMPLICIT_INIT=0 run -0 kl_run kl-agent --once -v https://v.invalid --tcti swtpm:port=1
	grep -qx "env kl-submit 2: GNUTLS_NO_IMPLICIT_INIT=0" "$t/calls.log"
}
