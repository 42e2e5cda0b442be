#!/usr/bin/env bats
# lib/kl_tpm.c and lib/kl_akfile.c against a real swtpm, through the test_tpm and
# test_akfile drivers. Signatures and PCR blobs are checked with tpm2-tools and
# openssl, never with kl itself.
load helpers

NONCE=00112233445566778899aabbccddeeff

setup_file() {
	kl_start_swtpm --ecc
	# One RSA AK (rsassa/sha256) for the tests that only use it.
	kl_unit tpm ak-create rsa sha256 rsassa --out "$BATS_FILE_TMPDIR/ak.json" >/dev/null
}

teardown_file() { kl_stop_swtpm; }

# Every command flushes what it made: nothing transient is left in the TPM.
teardown() {
	local left
	left=$(tpm2_getcap handles-transient; tpm2_getcap handles-loaded-session)
	kl_stop_swtpm
	if [ -n "$left" ]; then
		echo "left in the TPM: $left" >&2
		return 1
	fi
}

T() { echo "$BATS_TEST_TMPDIR/$1"; }

# field NAME FILE: base64-decode member NAME of the JSON in $output into FILE.
field() { jq -r ".$1" <<<"$output" | base64 -d >"$2"; }

# The DER SubjectPublicKeyInfo, as hex, of a TPM2B_PUBLIC file / a DER certificate.
spki_of_pub() { tpm2_print -t TPM2B_PUBLIC -f pem "$1" | openssl pkey -pubin -outform der | xxd -p | tr -d '\n'; }
spki_of_cert() { openssl x509 -inform der -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | xxd -p | tr -d '\n'; }

# ak_pub AKFILE OUT: the AK's TPM2B_PUBLIC from agent data.
ak_pub() { jq -r .ak.public "$1" | base64 -d >"$2"; }

hexof() { xxd -p "$1" | tr -d '\n'; }

# ---------------------------------------------------------------- EK

@test "tpm: RSA EK is the L-1 template key, its NV certificate is for that key and trimmed" {
	local start end
	start=$(date +%s%N)
	run -0 --separate-stderr kl_unit tpm ek rsa
	end=$(date +%s%N)
	echo "# RSA EK CreatePrimary + certificate: $(((end - start) / 1000000)) ms" >&3
	[ -z "$stderr" ]
	[[ $(jq -r .public <<<"$output") == AToAAQALAAMAsgAgg3GXZ0SE* ]]
	field public "$(T ek.pub)"
	field certificate "$(T ek.der)"
	[ "$(stat -c %s "$(T ek.pub)")" -eq 316 ]
	# The key in the manufacturer's certificate is the key kl created.
	[ "$(spki_of_pub "$(T ek.pub)")" = "$(spki_of_cert "$(T ek.der)")" ]
	# Exactly one DER certificate: re-encoding changes nothing, no byte after it.
	openssl x509 -inform der -in "$(T ek.der)" -outform der -out "$(T re.der)"
	cmp "$(T ek.der)" "$(T re.der)"
	# The name is nameAlg || SHA-256(TPMT_PUBLIC).
	[ "$(jq -r .name <<<"$output")" = "000b$(tail -c +3 "$(T ek.pub)" | sha256sum | cut -c1-64)" ]
}

@test "tpm: the persistent EK 0x81010001 is the same key; a wrong or malformed handle is refused" {
	run -0 kl_unit tpm ek rsa
	local created=$output
	run -0 kl_unit tpm ek rsa 0x81010001
	[ "$(jq -r .public <<<"$output")" = "$(jq -r .public <<<"$created")" ]
	# swtpm_setup's ECC EK (P-384) lives at 0x81010016.
	run -100 --separate-stderr kl_unit tpm ek rsa 0x81010016
	[ "$stderr" = "test_tpm: error: ek_handle: 0x81010016 is not an RSA key" ]
	[ -z "$output" ]
	run -100 --separate-stderr kl_unit tpm ek rsa 0x1234
	[ "$stderr" = 'test_tpm: error: ek_handle: "0x1234" is not a persistent handle (0x81000000-0x81ffffff)' ]
	run -100 --separate-stderr kl_unit tpm ek rsa 0x81000999
	[[ $stderr == "test_tpm: error: Esys_TR_FromTPMPublic: tpm:handle(1):the handle is not correct for the use (0x18b)" ]]
	run -100 --separate-stderr kl_unit tpm ek dsa
	[ "$stderr" = 'test_tpm: error: tpm_encryption_alg: "dsa" is not rsa or ecc' ]
}

@test "tpm: ECC EK is the L-2 template key and matches its NV 0x01c0000a certificate" {
	run -0 --separate-stderr kl_unit tpm ek ecc
	[[ $(jq -r .public <<<"$output") == AHoAIwALAAMAsgAgg3GXZ0SE* ]]
	field public "$(T ek.pub)"
	field certificate "$(T ek.der)"
	[ "$(spki_of_pub "$(T ek.pub)")" = "$(spki_of_cert "$(T ek.der)")" ]
}

@test "tpm: NV certificates: padding trimmed over several NV_Read chunks, garbage refused, absent is null" {
	# 2000 bytes > TPM_PT_NV_BUFFER_MAX (1024): the read takes two chunks.
	tpm2_nvread -C 0x01c00002 -o "$(T ek.der)" 0x01c00002 2>/dev/null
	local n
	n=$(stat -c %s "$(T ek.der)")
	{ cat "$(T ek.der)"; head -c $((2000 - n)) /dev/zero | tr '\0' '\377'; } >"$(T padded)"
	tpm2_nvdefine -C o -s 2000 -a "ownerwrite|ownerread|authread|authwrite" 0x01500100 >/dev/null
	tpm2_nvwrite -C o -i "$(T padded)" 0x01500100
	run -0 --separate-stderr kl_unit tpm nv-cert 0x01500100
	field certificate "$(T got.der)"
	cmp "$(T got.der)" "$(T ek.der)"

	# A SEQUENCE header whose length runs past the index, and plain garbage.
	head -c 64 /dev/urandom >"$(T junk)"
	printf '\x30\x82\x07\xd0' | cat - "$(T junk)" >"$(T long)"
	tpm2_nvdefine -C o -s 68 -a "ownerwrite|ownerread|authread|authwrite" 0x01500101 >/dev/null
	tpm2_nvwrite -C o -i "$(T long)" 0x01500101
	run -100 --separate-stderr kl_unit tpm nv-cert 0x01500101
	[ "$stderr" = "test_tpm: error: NV 0x01500101: not a DER certificate" ]
	[ -z "$output" ]
	printf '\x30\x40' | cat - "$(T junk)" | head -c 66 >"$(T short)"
	tpm2_nvdefine -C o -s 66 -a "ownerwrite|ownerread|authread|authwrite" 0x01500102 >/dev/null
	tpm2_nvwrite -C o -i "$(T short)" 0x01500102
	run -100 --separate-stderr kl_unit tpm nv-cert 0x01500102
	[ "$stderr" = "test_tpm: error: NV 0x01500102: not a DER certificate" ]
	tpm2_nvundefine -C o 0x01500100
	tpm2_nvundefine -C o 0x01500101
	tpm2_nvundefine -C o 0x01500102

	run -0 --separate-stderr kl_unit tpm nv-cert 0x01c0000b
	[ "$output" = '{"certificate":null}' ]
	[ -z "$stderr" ]
}

# ---------------------------------------------------------------- AK

@test "tpm: RSA AK public is the §8.2 template; a second process loads it with the same name" {
	run -0 --separate-stderr kl_unit tpm ak-create rsa sha256 rsassa --out "$(T ak.json)"
	[ -z "$stderr" ]
	[[ $(jq -r .public <<<"$output") == ARgAAQALAAUAcgAAABAAFAALCAAAAAAAAQ* ]]
	[ "$(jq -c .key <<<"$output")" = '{"key_algorithm":"rsa","key_size":2048,"hash_alg":"sha256","signing_alg":"rsassa","name_alg":"sha256"}' ]
	local name
	name=$(jq -r .name <<<"$output")
	field public "$(T ak.pub)"
	[ "$(stat -c %s "$(T ak.pub)")" -eq 282 ]
	[ "$name" = "000b$(tail -c +3 "$(T ak.pub)" | sha256sum | cut -c1-64)" ]
	# The agent data file holds exactly that public area, mode 0600.
	[ "$(jq -r .ak.public "$(T ak.json)")" = "$(jq -r .public <<<"$output")" ]
	[ "$(stat -c %a "$(T ak.json)")" = 600 ]
	run -0 --separate-stderr kl_unit tpm ak-load "$(T ak.json)"
	[ "$output" = "{\"name\":\"$name\"}" ]
}

@test "tpm: the AK name matches tpm2-tools' for its own AK" {
	tpm2_createek -G rsa -c "$(T ek.ctx)" >/dev/null
	tpm2_createak -C "$(T ek.ctx)" -c "$(T ak.ctx)" -G rsa -g sha256 -s rsassa \
		-u "$(T ak.pub)" -n "$(T ak.name)" >/dev/null
	tpm2_flushcontext -t
	run -0 kl_unit tpm name "$(T ak.pub)"
	[ "$output" = "{\"name\":\"$(hexof "$(T ak.name)")\"}" ]
	run -0 kl_unit tpm key-info "$(T ak.pub)"
	[ "$output" = '{"key_algorithm":"rsa","key_size":2048,"hash_alg":"sha256","signing_alg":"rsassa","name_alg":"sha256"}' ]
	head -c 100 "$(T ak.pub)" >"$(T cut.pub)"
	run -100 --separate-stderr kl_unit tpm name "$(T cut.pub)"
	[ "$stderr" = "test_tpm: error: public key: not a TPM2B_PUBLIC" ]
}

@test "tpm: ECC AK (P-256, ecdsa) under the ECC EK" {
	run -0 --separate-stderr kl_unit tpm ak-create ecc sha256 ecdsa --out "$(T akc.json)"
	[[ $(jq -r .public <<<"$output") == AFgAIwALAAUAcgAAABAAGAALAAMAEAAg* ]]
	[ "$(jq -c .key <<<"$output")" = '{"key_algorithm":"ecc","key_size":256,"hash_alg":"sha256","signing_alg":"ecdsa","name_alg":"sha256"}' ]
	[ "$(jq -r .ek.algorithm "$(T akc.json)")" = ecc ]
}

@test "tpm: an AK with an unusable hash or scheme is refused before the TPM is asked" {
	run -100 --separate-stderr kl_unit tpm ak-create rsa md5 rsassa --out "$(T x.json)"
	[ "$stderr" = 'test_tpm: error: tpm_hash_alg: unsupported "md5"' ]
	run -100 --separate-stderr kl_unit tpm ak-create rsa sha256 ecdsa --out "$(T x.json)"
	[ "$stderr" = 'test_tpm: error: tpm_signing_alg: "ecdsa" is not usable with an RSA AK (rsassa, rsapss)' ]
	run -100 --separate-stderr kl_unit tpm ak-create ecc sha256 rsassa --out "$(T x.json)"
	[ "$stderr" = 'test_tpm: error: tpm_signing_alg: "rsassa" is not usable with an ECC AK (ecdsa)' ]
	[ ! -e "$(T x.json)" ]
}

# ---------------------------------------------------------------- activation

# makecred AKFILE EKALG SECRET OUT: what the registrar does (§2.4), in software.
makecred() {
	local name
	run -0 kl_unit tpm ek "$2"
	field public "$(T "ek-$2.pub")"
	name=$(kl_unit tpm ak-load "$1" | jq -r .name)
	printf '%s' "$3" >"$(T secret)"
	tpm2_makecredential -T none -e "$(T "ek-$2.pub")" -s "$(T secret)" -n "$name" -o "$4" 2>/dev/null
}

@test "tpm: ActivateCredential recovers the registrar's secret (RSA EK and ECC EK)" {
	makecred "$BATS_FILE_TMPDIR/ak.json" rsa k3J9vQx2Lm8Np4Rt7Yw1Zc6Hb5Gd0Fs2 "$(T blob)"
	[ "$(stat -c %s "$(T blob)")" -eq 336 ]
	[ "$(head -c 12 "$(T blob)" | xxd -p)" = badcc0de0000000100440020 ]
	run -0 --separate-stderr kl_unit tpm activate "$BATS_FILE_TMPDIR/ak.json" "$(T blob)"
	[ "$output" = '{"secret":"k3J9vQx2Lm8Np4Rt7Yw1Zc6Hb5Gd0Fs2"}' ]
	[ -z "$stderr" ]

	kl_unit tpm ak-create ecc sha256 ecdsa --out "$(T akc.json)" >/dev/null
	makecred "$(T akc.json)" ecc MG4mXQwixurNTQWpHIlATD0cpHJn4uHc "$(T blobc)"
	run -0 kl_unit tpm activate "$(T akc.json)" "$(T blobc)"
	[ "$output" = '{"secret":"MG4mXQwixurNTQWpHIlATD0cpHJn4uHc"}' ]
}

@test "tpm: malformed credential blobs are refused with one line, exit 100" {
	local ak=$BATS_FILE_TMPDIR/ak.json hex
	makecred "$ak" rsa k3J9vQx2Lm8Np4Rt7Yw1Zc6Hb5Gd0Fs2 "$(T blob)"
	hex=$(hexof "$(T blob)")
	# bad blob: hex bytes -> expected message
	check() {
		printf '%s' "$1" | xxd -r -p >"$(T bad)"
		run -100 --separate-stderr kl_unit tpm activate "$ak" "$(T bad)"
		[ -z "$output" ]
		[ "$stderr" = "test_tpm: error: credential blob: $2" ]
	}
	check "00${hex:2}" "bad magic 0x00dcc0de (want 0xbadcc0de)"
	check "${hex:0:8}00000002${hex:16}" "unsupported version 2"
	check "${hex:0:12}" "6 bytes, too short"
	check "${hex:0:16}ffff${hex:20}" "credential at offset 8 truncated or too large"
	check "${hex:0:600}" "secret at offset 78 truncated or too large"
	check "${hex}00" "trailing data at offset 336"
	check "${hex:0:16}0000${hex:20}" "empty credential"
	check "${hex:0:16}0000" "secret at offset 10 truncated or too large"
	check "${hex:0:16}00010000000000" "empty secret"

	# Well formed, but for another AK name: the TPM refuses it.
	tpm2_makecredential -T none -e "$(T ek-rsa.pub)" -s "$(T secret)" \
		-n 000b0000000000000000000000000000000000000000000000000000000000000000 -o "$(T other)" 2>/dev/null
	run -100 --separate-stderr kl_unit tpm activate "$ak" "$(T other)"
	[[ $stderr == "test_tpm: error: Esys_ActivateCredential: tpm:parameter(1):"*" (0x"*")" ]]
	[ -z "$output" ]
}

# ---------------------------------------------------------------- certify (PoP)

@test "tpm: Certify of the AK by itself carries the nonce and the AK name, RSASSA/SHA-256" {
	local ak=$BATS_FILE_TMPDIR/ak.json name
	name=$(kl_unit tpm ak-load "$ak" | jq -r .name)
	run -0 --separate-stderr kl_unit tpm certify "$ak" "$NONCE"
	field message "$(T msg)"
	field signature "$(T sig)"
	local m
	m=$(hexof "$(T msg)")
	[ "$(stat -c %s "$(T msg)")" -eq 157 ]
	[ "${m:0:12}" = ff5443478017 ]
	[ "${m:84:36}" = "0010$NONCE" ]
	[ "${m:170:72}" = "0022$name" ]
	[ "$(stat -c %s "$(T sig)")" -eq 262 ]
	[ "$(head -c 6 "$(T sig)" | xxd -p)" = 0014000b0100 ]
	ak_pub "$ak" "$(T ak.pub)"
	tpm2_print -t TPM2B_PUBLIC -f pem "$(T ak.pub)" >"$(T ak.pem)"
	tail -c 256 "$(T sig)" >"$(T sig.raw)"
	openssl dgst -sha256 -verify "$(T ak.pem)" -signature "$(T sig.raw)" "$(T msg)"
	# The signature is over these bytes, not others.
	printf 'x' >>"$(T msg)"
	run -1 openssl dgst -sha256 -verify "$(T ak.pem)" -signature "$(T sig.raw)" "$(T msg)"
}

# ---------------------------------------------------------------- quote

@test "tpm: sha256 quote of PCRs 0,1,2,10 verifies with tpm2_checkquote; blob is 136+532 bytes" {
	local ak=$BATS_FILE_TMPDIR/ak.json
	tpm2_pcrextend "10:sha256=$(printf ima | sha256sum | cut -c1-64)"
	run -0 --separate-stderr kl_unit tpm quote "$ak" "$NONCE" sha256 10,0,1,2 rsassa
	[ -z "$stderr" ]
	field message "$(T msg)"
	field signature "$(T sig)"
	field subject_data "$(T pcrs)"
	[ "$(stat -c %s "$(T msg)")" -eq 129 ]
	[ "$(stat -c %s "$(T pcrs)")" -eq $((136 + 532)) ]
	[ "$(head -c 12 "$(T pcrs)" | xxd -p)" = 010000000b00030704000000 ]
	ak_pub "$ak" "$(T ak.pub)"
	run -0 tpm2_checkquote -u "$(T ak.pub)" -m "$(T msg)" -s "$(T sig)" -f "$(T pcrs)" -g sha256 -q "$NONCE"
	tpm2_pcrread sha256:10 -o "$(T pcr10)" >/dev/null
	[[ $output == *"10: 0x$(hexof "$(T pcr10)" | tr a-f A-F)"* ]]
	# Another nonce does not verify.
	run -1 tpm2_checkquote -u "$(T ak.pub)" -m "$(T msg)" -s "$(T sig)" -f "$(T pcrs)" -g sha256 -q 00
}

@test "tpm: the PCR blob is byte for byte tpm2_quote's serialized file (9 and 24 PCRs)" {
	tpm2_pcrextend "3:sha256=$(printf boot | sha256sum | cut -c1-64)"
	tpm2_createek -G rsa -c "$(T ek.ctx)" >/dev/null
	tpm2_createak -C "$(T ek.ctx)" -c "$(T ak.ctx)" -G rsa -g sha256 -s rsassa >/dev/null
	tpm2_flushcontext -t
	local sel
	for sel in 0,1,2,3,4,5,6,7,10 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23; do
		tpm2_quote -c "$(T ak.ctx)" -l "sha256:$sel" -q "$NONCE" -m "$(T m)" -s "$(T s)" -o "$(T theirs)" >/dev/null
		tpm2_flushcontext -t
		run -0 kl_unit tpm quote "$BATS_FILE_TMPDIR/ak.json" "$NONCE" sha256 "$sel" rsassa
		field subject_data "$(T ours)"
		cmp "$(T ours)" "$(T theirs)"
	done
	[ "$(stat -c %s "$(T ours)")" -eq $((136 + 532 * 3)) ]
}

@test "tpm: PCR blob layout of §6.3.3, without a TPM" {
	local v="" i
	for i in 1 2 3 4 5 6 7 8 9; do v+=$(printf "0$i%.0s" $(seq 32)); done
	run -0 kl_unit tpm pcr-blob sha256 0,1,2,3,4,5,6,7,10 "$v"
	field blob "$(T b)"
	local h
	h=$(hexof "$(T b)")
	[ ${#h} -eq 2400 ]
	[ "${h:0:24}" = 010000000b0003ff04000000 ]
	[ "${h:24:240}" = "$(printf '0%.0s' $(seq 240))" ]
	[ "${h:264:8}" = 02000000 ]
	[ "${h:272:8}" = 08000000 ]
	[ "${h:280:4}" = 2000 ]
	[ "${h:284:64}" = "$(printf '01%.0s' $(seq 32))" ]
	[ "${h:348:64}" = "$(printf '00%.0s' $(seq 32))" ]
	[ "${h:412:4}" = 2000 ]
	[ "${h:416:64}" = "$(printf '02%.0s' $(seq 32))" ]
	# block 2 at byte 668: count 1, then PCR 10's value, then 7 empty slots
	[ "${h:1336:12}" = 010000002000 ]
	[ "${h:1348:64}" = "$(printf '09%.0s' $(seq 32))" ]
	[ "${h:1412}" = "$(printf '0%.0s' $(seq $((2400 - 1412))))" ]
	run -100 --separate-stderr kl_unit tpm pcr-blob sha256 2,1 "${v:0:128}"
	[ "$stderr" = "test_tpm: error: PCR blob: PCRs not in ascending order" ]
}

@test "tpm: rsapss quote verifies (RSA-PSS, SHA-256)" {
	run -0 kl_unit tpm ak-create rsa sha256 rsapss --out "$(T akp.json)"
	run -0 --separate-stderr kl_unit tpm quote "$(T akp.json)" "$NONCE" sha256 0,1,2 rsapss
	field message "$(T msg)"
	field signature "$(T sig)"
	[ "$(head -c 6 "$(T sig)" | xxd -p)" = 0016000b0100 ]
	ak_pub "$(T akp.json)" "$(T ak.pub)"
	tpm2_print -t TPM2B_PUBLIC -f pem "$(T ak.pub)" >"$(T ak.pem)"
	tail -c 256 "$(T sig)" >"$(T sig.raw)"
	# tpm2_checkquote 5.4 cannot verify PSS; openssl can.
	openssl dgst -sha256 -verify "$(T ak.pem)" -sigopt rsa_padding_mode:pss \
		-sigopt rsa_pss_saltlen:auto -signature "$(T sig.raw)" "$(T msg)"
}

@test "tpm: ecdsa quote with the ECC AK verifies with tpm2_checkquote" {
	run -0 kl_unit tpm ak-create ecc sha256 ecdsa --out "$(T akc.json)"
	run -0 --separate-stderr kl_unit tpm quote "$(T akc.json)" "$NONCE" sha256 0,1,2,3,4,5,6,7,10 ecdsa
	field message "$(T msg)"
	field signature "$(T sig)"
	field subject_data "$(T pcrs)"
	[ "$(head -c 4 "$(T sig)" | xxd -p)" = 0018000b ]
	[ "$(stat -c %s "$(T pcrs)")" -eq 1200 ]
	ak_pub "$(T akc.json)" "$(T ak.pub)"
	tpm2_checkquote -u "$(T ak.pub)" -m "$(T msg)" -s "$(T sig)" -f "$(T pcrs)" -g sha256 -q "$NONCE"
}

@test "tpm: a quote the AK cannot sign, or a bad PCR list, is refused with exit 100" {
	local ak=$BATS_FILE_TMPDIR/ak.json
	run -100 --separate-stderr kl_unit tpm quote "$ak" "$NONCE" sha256 0 rsapss
	[ "$stderr" = "test_tpm: error: quote: the AK signs with rsassa/sha256, not rsapss/sha256" ]
	[ -z "$output" ]
	run -100 --separate-stderr kl_unit tpm quote "$ak" "$NONCE" sha384 0 rsassa
	[ "$stderr" = "test_tpm: error: quote: the AK signs with rsassa/sha256, not rsassa/sha384" ]
	run -100 --separate-stderr kl_unit tpm quote "$ak" "$NONCE" sha256 0,24 rsassa
	[ "$stderr" = "test_tpm: error: quote: PCR 24 out of range 0-23" ]
	run -100 --separate-stderr kl_unit tpm quote "$ak" "$NONCE" sha256 1,2,1 rsassa
	[ "$stderr" = "test_tpm: error: quote: PCR 1 selected twice" ]
	run -100 --separate-stderr kl_unit tpm quote "$ak" "$NONCE" md5 1 rsassa
	[ "$stderr" = 'test_tpm: error: quote: unsupported hash algorithm "md5"' ]
	run -100 --separate-stderr kl_unit tpm quote "$ak" "$(printf 'ab%.0s' $(seq 65))" sha256 1 rsassa
	[ "$stderr" = "test_tpm: error: quote: nonce of 65 bytes, more than 64" ]
}

@test "tpm: sha384 bank: quote, blob and capabilities on a sha256+sha384 TPM" {
	kl_start_swtpm --banks sha256,sha384
	run -0 kl_unit tpm ak-create rsa sha384 rsassa --out "$(T ak.json)"
	[[ $(jq -r .name <<<"$output") == 000c* ]]
	run -0 --separate-stderr kl_unit tpm quote "$(T ak.json)" "$NONCE" sha384 0,1,2,10 rsassa
	field message "$(T msg)"
	field signature "$(T sig)"
	field subject_data "$(T pcrs)"
	[ "$(head -c 12 "$(T pcrs)" | xxd -p)" = 010000000c00030704000000 ]
	[ "$(stat -c %s "$(T pcrs)")" -eq 668 ]
	[ "$(tail -c +141 "$(T pcrs)" | head -c 2 | xxd -p)" = 3000 ]
	ak_pub "$(T ak.json)" "$(T ak.pub)"
	tpm2_checkquote -u "$(T ak.pub)" -m "$(T msg)" -s "$(T sig)" -f "$(T pcrs)" -g sha384 -q "$NONCE"
	run -0 kl_unit tpm caps
	[ "$(jq -c .hash_algorithms <<<"$output")" = '["sha256","sha384"]' ]
	[ "$(jq -c '.available_subjects.sha384' <<<"$output")" = "[$(seq -s, 0 23)]" ]
}

@test "tpm: a sha384 quote on a TPM without that bank is refused" {
	run -0 kl_unit tpm ak-create rsa sha384 rsassa --out "$(T ak.json)"
	run -100 --separate-stderr kl_unit tpm quote "$(T ak.json)" "$NONCE" sha384 0 rsassa
	[ "$stderr" = "test_tpm: error: Esys_PCR_Read: bank sha384 lacks a selected PCR" ]
}

@test "tpm: capabilities of a sha256-only TPM" {
	run -0 --separate-stderr kl_unit tpm caps
	[ "$output" = "{\"hash_algorithms\":[\"sha256\"],\"signature_schemes\":[\"ecdaa\",\"ecdsa\",\"ecschnorr\",\"rsapss\",\"rsassa\"],\"available_subjects\":{\"sha256\":[$(seq -s, 0 23)]}}" ]
	[ -z "$stderr" ]
}

@test "tpm: PCR read returns values in ascending order" {
	tpm2_pcrextend "5:sha256=$(printf five | sha256sum | cut -c1-64)"
	tpm2_pcrread sha256:5 -o "$(T pcr5)" >/dev/null
	run -0 kl_unit tpm pcr-read sha256 5,0
	[ "$(jq -r '.values[0]' <<<"$output")" = "$(printf '0%.0s' $(seq 64))" ]
	[ "$(jq -r '.values[1]' <<<"$output")" = "$(hexof "$(T pcr5)")" ]
}

# ---------------------------------------------------------------- errors

@test "tpm: a TCTI pointing to a closed port is temporary (111), one line" {
	local port
	port=$(kl_free_port 2)
	TCTI=swtpm:host=127.0.0.1,port=$port run -111 --separate-stderr kl_unit tpm caps
	[ -z "$output" ]
	[ "$stderr" = "test_tpm: error: cannot open TPM: swtpm:host=127.0.0.1,port=$port: tcti:IO failure (0xa000a)" ]
	TCTI=nosuch:x run -100 --separate-stderr kl_unit tpm caps
	[ "$stderr" = "test_tpm: error: cannot open TPM: nosuch:x: tcti:Functionality not supported (0xa0015)" ]
}

@test "tpm: dictionary-attack lockout is temporary (111) and says so" {
	kl_start_swtpm
	kl_unit tpm ak-create rsa sha256 rsassa --out "$(T ak.json)" >/dev/null
	tpm2_dictionarylockout -s -n 1 -t 600 -l 600
	tpm2_nvdefine -C o -s 8 -a "authread|authwrite" -p right 0x01500020 >/dev/null
	tpm2_nvread -C 0x01500020 -P wrong 0x01500020 2>/dev/null || true
	run -0 tpm2_getcap properties-variable
	[[ $output == *"inLockout:                 1"* ]]
	run -111 --separate-stderr kl_unit tpm certify "$(T ak.json)" "$NONCE"
	[ "$stderr" = "test_tpm: error: Esys_Certify: TPM in dictionary-attack lockout (0x921)" ]
	[ -z "$output" ]
	tpm2_dictionarylockout -c
	run -0 kl_unit tpm certify "$(T ak.json)" "$NONCE"
}

@test "tpm: endorsement hierarchy auth (text and hex:) authorizes the EK, never shows in a log" {
	kl_start_swtpm
	tpm2_changeauth -c e s3cret
	run -100 --separate-stderr kl_unit tpm ek rsa
	[ "$stderr" = "test_tpm: error: Esys_CreatePrimary: tpm:session(1):authorization failure without DA implications (0x9a2)" ]
	KL_TEST_EK_AUTH=s3cret run -0 kl_unit tpm ek rsa
	KL_TEST_EK_AUTH=hex:$(printf s3cret | xxd -p) run -0 kl_unit tpm ak-create rsa sha256 rsassa --out "$(T ak.json)"
	# Loading the AK needs PolicySecret(endorsement) with the auth too.
	run -100 --separate-stderr kl_unit tpm certify "$(T ak.json)" "$NONCE"
	[[ $stderr == "test_tpm: error: Esys_CreatePrimary: "* ]]
	KL_TEST_EK_AUTH=s3cret KL_TEST_EK_HANDLE=0x81010001 run -0 kl_unit tpm certify "$(T ak.json)" "$NONCE"
	KL_TEST_EK_AUTH=wrong KL_TEST_EK_HANDLE=0x81010001 run -100 --separate-stderr kl_unit tpm certify "$(T ak.json)" "$NONCE"
	[[ $stderr == "test_tpm: error: Esys_PolicySecret: "* ]]
	[[ $stderr != *wrong* && $stderr != *s3cret* ]]
	KL_TEST_EK_AUTH=hex:zz run -100 --separate-stderr kl_unit tpm ek rsa
	[ "$stderr" = 'test_tpm: error: endorsement auth: bad hex after "hex:"' ]
	KL_TEST_EK_AUTH=$(printf 'x%.0s' $(seq 65)) run -100 --separate-stderr kl_unit tpm ek rsa
	[ "$stderr" = "test_tpm: error: endorsement auth: longer than 64 bytes" ]
}

# ---------------------------------------------------------------- agent data

@test "akfile: save and load round trip, mode 0600, missing directory made" {
	local f=$BATS_TEST_TMPDIR/new/dir/agent_data.json
	run -0 --separate-stderr kl_unit akfile write "$f" d432fbb3-d2f1-4a97-9ef7-75bd81c00000
	[ -z "$output" ] && [ -z "$stderr" ]
	[ "$(stat -c %a "$f")" = 600 ]
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/new/dir")" = 700 ]
	[ "$(jq -c 'keys_unsorted' "$f")" = '["version","agent_id","ek","ak"]' ]
	run -0 kl_unit akfile read "$f"
	[ "$output" = "{\"agent_id\":\"d432fbb3-d2f1-4a97-9ef7-75bd81c00000\",\"ek_algorithm\":\"rsa\",\"ek_public_sha256\":\"$(printf ek-public | sha256sum | cut -c1-64)\",\"ak_public\":\"$(printf ak-public | base64)\",\"ak_private\":\"$(printf ak-private | base64)\",\"hash_alg\":\"sha256\",\"signing_alg\":\"rsassa\",\"key_algorithm\":\"rsa\"}" ]
	# No agent_id unless given.
	kl_unit akfile write "$(T b.json)"
	[ "$(jq 'has("agent_id")' "$(T b.json)")" = false ]
	run -0 kl_unit akfile read-missing "$(T none.json)"
	[ "$output" = '{"present":false}' ]
	run -0 kl_unit akfile read-missing "$f"
	[ "$output" = '{"present":true}' ]
}

@test "akfile: reuse only under the same EK with the same algorithms" {
	kl_unit akfile write "$(T a.json)"
	run -0 kl_unit akfile matches "$(T a.json)" ek-public sha256 rsassa
	[ "$output" = '{"matches":true}' ]
	run -0 kl_unit akfile matches "$(T a.json)" ek-publiC sha256 rsassa
	[ "$output" = '{"matches":false}' ]
	run -0 kl_unit akfile matches "$(T a.json)" ek-public sha384 rsassa
	[ "$output" = '{"matches":false}' ]
	run -0 kl_unit akfile matches "$(T a.json)" ek-public sha256 rsapss
	[ "$output" = '{"matches":false}' ]
}

@test "akfile: a corrupted file is permanent (100), naming the file and the member" {
	local good=$BATS_TEST_TMPDIR/good.json f=$BATS_TEST_TMPDIR/bad.json
	kl_unit akfile write "$good"
	bad() {
		jq "$1" "$good" >"$f"
		run -100 --separate-stderr kl_unit akfile read "$f"
		[ -z "$output" ]
		[ "$stderr" = "test_akfile: error: $f: $2" ]
	}
	bad '.version = 2' "version: unsupported 2"
	bad '.version = "1"' "version: missing or not an integer"
	bad 'del(.version)' "version: missing or not an integer"
	bad '.ak.private = "a*b="' "ak.private: not base64"
	bad '.ak.public = "AAE"' "ak.public: not base64"
	bad 'del(.ak.hash_alg)' "ak.hash_alg: missing or not a string"
	bad '.ak.signing_alg = "rsa\u0007"' 'ak.signing_alg: unsupported "rsa?"'
	bad '.ek.public_sha256 = "ABC"' "ek.public_sha256: not 64 lowercase hex digits"
	bad '.ek.algorithm = 1' "ek.algorithm: missing or not a string"
	bad 'del(.ek)' "ek: missing or not an object"
	bad '.ak.extra = 1' "ak.extra: unknown member"
	bad '.agent_id = ""' "agent_id: not a non-empty string"
	head -c 50 "$good" >"$f"
	run -100 --separate-stderr kl_unit akfile read "$f"
	[[ $stderr == "test_akfile: error: $f:"[0-9]*:[0-9]*": "* ]]
	run -100 --separate-stderr kl_unit akfile read "$BATS_TEST_TMPDIR/absent.json"
	[ "$stderr" = "test_akfile: error: $BATS_TEST_TMPDIR/absent.json: open: No such file or directory" ]
}
