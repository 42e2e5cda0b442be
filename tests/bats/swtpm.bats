#!/usr/bin/env bats
# The test TPM harness itself: scripts/swtpm and tests/bats/lib/swtpm.bash.
load helpers

teardown() { kl_stop_swtpm; }

# running PID: a live (non-zombie) process.
running() {
	local st
	st=$(ps -o stat= -p "$1") || return 1
	[[ $st != Z* ]]
}

# The DER SubjectPublicKeyInfo of a PEM public key or certificate.
spki_of_cert() { openssl x509 -in "$1" -inform der -pubkey -noout | openssl pkey -pubin -outform der | xxd -p | tr -d '\n'; }
spki_of_pem() { openssl pkey -pubin -in "$1" -outform der | xxd -p | tr -d '\n'; }

@test "swtpm: start prints the TCTI, the TPM answers, a pid file names the process" {
	local dir=$BATS_TEST_TMPDIR/t
	run -0 --separate-stderr "$KL_TOP/scripts/swtpm" start "$dir" 3>&-
	export KL_SWTPM_DIRS=$dir
	[[ $output =~ ^swtpm:host=127\.0\.0\.1,port=([0-9]+)$ ]]
	local port=${BASH_REMATCH[1]}
	[ -z "$stderr" ]
	run -0 tpm2_getrandom -T "$output" --hex 8
	[[ $output =~ ^[0-9a-f]{16}$ ]]
	running "$(cat "$dir/swtpm.pid")"
	# The control port is port+1 (the tss2 swtpm TCTI assumes it).
	ss -ltn "sport = :$((port + 1))" | grep -q LISTEN
}

@test "swtpm: RSA EK certificate in NV 0x01c00002, issued by the local CA, for the L-1 EK" {
	kl_start_swtpm
	run -0 tpm2_nvreadpublic 0x01c00002
	[[ $output == *"authread"* ]]
	tpm2_nvread -C 0x01c00002 -o "$BATS_TEST_TMPDIR/ek.der" 0x01c00002 2>/dev/null
	openssl x509 -in "$BATS_TEST_TMPDIR/ek.der" -inform der -out "$BATS_TEST_TMPDIR/ek.pem"
	run -0 openssl verify -CAfile "$KL_SWTPM_DIR/ca/root.pem" \
		-untrusted "$KL_SWTPM_DIR/ca/issuer.pem" "$BATS_TEST_TMPDIR/ek.pem"
	tpm2_createek -G rsa -c "$BATS_TEST_TMPDIR/ek.ctx" -u "$BATS_TEST_TMPDIR/ekpub.pem" -f pem
	[ "$(spki_of_cert "$BATS_TEST_TMPDIR/ek.der")" = "$(spki_of_pem "$BATS_TEST_TMPDIR/ekpub.pem")" ]
	# Without --ecc there is no P-256 EK certificate.
	run -0 tpm2_getcap handles-nv-index
	[[ $output == *"0x1C00002"* ]]
	[[ $output != *"0x1C0000A"* ]]
}

@test "swtpm: --ecc adds the P-256 EK certificate in NV 0x01c0000a for the L-2 EK" {
	kl_start_swtpm --ecc
	tpm2_nvread -C 0x01c0000a -o "$BATS_TEST_TMPDIR/ek.der" 0x01c0000a 2>/dev/null
	run -0 openssl x509 -in "$BATS_TEST_TMPDIR/ek.der" -inform der -noout -text
	[[ $output == *"NIST CURVE: P-256"* ]]
	tpm2_createek -G ecc -c "$BATS_TEST_TMPDIR/ek.ctx" -u "$BATS_TEST_TMPDIR/ekpub.pem" -f pem
	[ "$(spki_of_cert "$BATS_TEST_TMPDIR/ek.der")" = "$(spki_of_pem "$BATS_TEST_TMPDIR/ekpub.pem")" ]
	# The RSA one is still there.
	run -0 tpm2_nvreadpublic 0x01c00002
}

@test "swtpm: only the sha256 PCR bank is allocated by default" {
	kl_start_swtpm
	run -0 tpm2_getcap pcrs
	[[ $output == *"sha256: [ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23 ]"* ]]
	[[ $output == *"sha1: [ ]"* ]]
	[[ $output == *"sha384: [ ]"* ]]
}

@test "swtpm: --banks sha256,sha384 allocates both banks" {
	kl_start_swtpm --banks sha256,sha384
	run -0 tpm2_getcap pcrs
	[[ $output == *"sha256: [ 0, 1, 2,"* ]]
	[[ $output == *"sha384: [ 0, 1, 2,"* ]]
	[[ $output == *"sha1: [ ]"* ]]
	run -0 tpm2_pcrread sha384:0
	[[ $output == *"0 : 0x000000000000"* ]]
}

@test "swtpm: two instances run at once on different ports" {
	kl_start_swtpm
	local t1=$TCTI d1=$KL_SWTPM_DIR
	kl_start_swtpm
	local t2=$TCTI
	[ "$t1" != "$t2" ]
	[ "$d1" != "$KL_SWTPM_DIR" ]
	tpm2_pcrextend -T "$t1" 16:sha256=0000000000000000000000000000000000000000000000000000000000000001
	run -0 tpm2_pcrread -T "$t1" sha256:16
	local v1=$output
	run -0 tpm2_pcrread -T "$t2" sha256:16
	[ "$v1" != "$output" ]
	[[ $output == *"0x0000000000000000000000000000000000000000000000000000000000000000"* ]]
}

@test "swtpm: stop leaves no process and frees the port; stopping again is harmless" {
	kl_start_swtpm
	local pid
	pid=$(cat "$KL_SWTPM_DIR/swtpm.pid")
	running "$pid"
	run -0 --separate-stderr "$KL_TOP/scripts/swtpm" stop "$KL_SWTPM_DIR"
	[ -z "$output" ] && [ -z "$stderr" ]
	run ! running "$pid"
	[ -z "$(ss -ltnH "sport = :$KL_SWTPM_PORT")" ]
	run -0 --separate-stderr "$KL_TOP/scripts/swtpm" stop "$KL_SWTPM_DIR"
	[ -z "$stderr" ]
}

@test "swtpm: stop shuts the TPM down orderly; a kill does not, and the next start says so" {
	local ctx=$BATS_TEST_TMPDIR
	kl_start_swtpm
	# Use a key without noDA (an AK, as kl does), so that an unorderly stop counts.
	tpm2_createek -G rsa -c "$ctx/ek.ctx" >/dev/null
	tpm2_createak -C "$ctx/ek.ctx" -c "$ctx/ak.ctx" -G rsa -g sha256 -s rsassa >/dev/null
	tpm2_flushcontext -t
	tpm2_quote -c "$ctx/ak.ctx" -l sha256:0 -q 0011 -m "$ctx/m" -s "$ctx/s" >/dev/null
	tpm2_flushcontext -t
	kl_stop_swtpm "$KL_SWTPM_DIR"
	run -0 --separate-stderr "$KL_TOP/scripts/swtpm" start "$KL_SWTPM_DIR" 3>&-
	[ -z "$stderr" ]
	export TPM2TOOLS_TCTI=$output
	run -0 tpm2_getcap properties-variable
	[[ $output == *"TPM2_PT_LOCKOUT_COUNTER: 0x0"* ]]

	tpm2_quote -c "$ctx/ak.ctx" -l sha256:0 -q 0011 -m "$ctx/m" -s "$ctx/s" >/dev/null
	tpm2_flushcontext -t
	kill -9 "$(cat "$KL_SWTPM_DIR/swtpm.pid")"
	run -0 --separate-stderr "$KL_TOP/scripts/swtpm" start "$KL_SWTPM_DIR" 3>&-
	[ "$stderr" = "swtpm: warning: dictionary-attack lockout counter was 1 (stopped without TPM2_Shutdown?); cleared" ]
	run -0 tpm2_getcap -T "$output" properties-variable
	[[ $output == *"TPM2_PT_LOCKOUT_COUNTER: 0x0"* ]]
}

@test "swtpm: a running directory, a bad bank or a bad option is refused with one line" {
	kl_start_swtpm
	run -1 --separate-stderr "$KL_TOP/scripts/swtpm" start "$KL_SWTPM_DIR"
	[[ $stderr == "swtpm: error: $KL_SWTPM_DIR: swtpm already running (pid "*")" ]]
	run -1 --separate-stderr "$KL_TOP/scripts/swtpm" start "$BATS_TEST_TMPDIR/x" --banks md5
	[ "$stderr" = "swtpm: error: bad PCR bank 'md5'" ]
	run -1 --separate-stderr "$KL_TOP/scripts/swtpm" start "$BATS_TEST_TMPDIR/x" --bogus
	[[ $stderr == "swtpm: error: usage: "* ]]
	[ -z "$output" ]
}
