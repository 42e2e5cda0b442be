#!/usr/bin/env bats
# lib/kl_crypto through tests/unit/test_crypto.c: known answers for digests and
# HMAC, random bytes, public keys as PEM and X.509 DER, checked against
# published vectors and the openssl command line.
load helpers

hex() { printf '%s' "$1" | xxd -p | tr -d '\n'; }

# crypto CMD ARGS... EXPECTED: the driver's one line of output must be EXPECTED.
crypto() {
	local want=${*: -1}
	run -0 --separate-stderr kl_unit crypto "${@:1:$#-1}"
	[ "$output" = "$want" ] || { echo "crypto $1: got '$output', want '$want'"; return 1; }
	[ -z "$stderr" ]
}

@test "crypto: SHA-256 hex known answers (FIPS 180-2)" {
	crypto sha256-hex - e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
	crypto sha256-hex "$(hex abc)" ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	crypto sha256-hex "$(hex abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq)" \
		248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1
}

@test "crypto: digests by Keylime name; an unknown name is refused" {
	crypto digest sha1 "$(hex abc)" a9993e364706816aba3e25717850c26c9cd0d89d
	crypto digest sha256 "$(hex abc)" ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	crypto digest sha384 "$(hex abc)" \
		cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7
	crypto digest sha512 "$(hex abc)" \
		ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f
	run -1 kl_unit crypto digest md5 "$(hex abc)"
	run -1 kl_unit crypto digest SHA256 "$(hex abc)"
}

@test "crypto: HMAC-SHA384 known answers (RFC 4231 cases 1, 2 and 6)" {
	crypto hmac-sha384 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b "$(hex 'Hi There')" \
		afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6
	crypto hmac-sha384 "$(hex Jefe)" "$(hex 'what do ya want for nothing?')" \
		af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649
	# A 131-byte key, longer than the block: hashed first.
	crypto hmac-sha384 "$(printf 'aa%.0s' {1..131})" \
		"$(hex 'Test Using Larger Than Block-Size Key - Hash Key First')" \
		4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952
}

@test "crypto: random bytes differ from draw to draw; UUIDs are version 4" {
	run -0 kl_unit crypto random 32
	a=$output
	run -0 kl_unit crypto random 32
	[[ $a =~ ^[0-9a-f]{64}$ ]]
	[ "$output" != "$a" ]
	[ "$a" != "$(printf '0%.0s' {1..64})" ]
	run -0 kl_unit crypto u64
	a=$output
	run -0 kl_unit crypto u64
	[[ $a =~ ^[0-9]+$ ]]
	[ "$output" != "$a" ]
	run -0 kl_unit crypto uuid
	[[ $output =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
	a=$output
	run -0 kl_unit crypto uuid
	[ "$output" != "$a" ]
}

# A fixed P-256 key whose x coordinate starts with a zero byte.
P256_X=00b92447ba5fb8d40d080293614d2753d38bc3283d6a99c58c606e49b5a4b470
P256_Y=42af8ecc3a006e66c735034bad906d11ada45943bfc841d5f17ffc30d68a2cb1
P256_PEM='-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEALkkR7pfuNQNCAKTYU0nU9OLwyg9
apnFjGBuSbWktHBCr47MOgBuZsc1A0utkG0RraRZQ7/IQdXxf/ww1oossQ==
-----END PUBLIC KEY-----'

@test "crypto: PEM of a known P-256 key; short coordinates are left-padded" {
	run -0 --separate-stderr kl_unit crypto ec-pem 256 "$P256_X" "$P256_Y"
	[ "$output" = "$P256_PEM" ]
	run -0 --separate-stderr kl_unit crypto ec-pem 256 "${P256_X#00}" "$P256_Y"
	[ "$output" = "$P256_PEM" ]
	# The PEM ends with a newline: hash_ek hashes it too.
	kl_unit crypto ec-pem 256 "$P256_X" "$P256_Y" | tail -c 1 | grep -q '^$'
}

@test "crypto: a key that is not one is refused" {
	run -1 kl_unit crypto ec-pem 256 "00$P256_X" "$P256_Y"	# 33 bytes for a 32-byte field
	run -1 kl_unit crypto ec-pem 255 "$P256_X" "$P256_Y"	# no such curve
	run -1 kl_unit crypto ec-pem 256 - "$P256_Y"
	run -1 kl_unit crypto ec-pem 256 "$P256_Y" "$P256_X"	# not on the curve
	run -1 kl_unit crypto rsa-pem - 65537
}

# The point of an EC public key in PEM, as X and Y hex (field size $2 bytes).
ec_xy() { openssl pkey -pubin -in "$1" -outform der | tail -c $((2 * $2)) | xxd -p | tr -d '\n'; }

@test "crypto: PEM of RSA-2048, P-384 and P-521 keys is what openssl writes" {
	cd "$BATS_TEST_TMPDIR"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
	openssl pkey -in rsa.key -pubout -out rsa.pem
	n=$(openssl rsa -pubin -in rsa.pem -noout -modulus | sed 's/^Modulus=//')
	run -0 --separate-stderr kl_unit crypto rsa-pem "$n" 65537
	[ "$output" = "$(cat rsa.pem)" ]
	run -0 --separate-stderr kl_unit crypto rsa-pem "$n" 3
	[ "$output" != "$(cat rsa.pem)" ]
	for c in secp384r1:384:48 secp521r1:521:66; do
		IFS=: read -r name bits size <<<"$c"
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:"$name" -out ec.key 2>/dev/null
		openssl pkey -in ec.key -pubout -out ec.pem
		xy=$(ec_xy ec.pem "$size")
		run -0 --separate-stderr kl_unit crypto ec-pem "$bits" "${xy:0:$((2 * size))}" "${xy:$((2 * size))}"
		[ "$output" = "$(cat ec.pem)" ] || { echo "$name differs"; return 1; }
	done
}

@test "crypto: X.509 DER length ignores padding; PEM to DER matches openssl" {
	cd "$BATS_TEST_TMPDIR"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=kl-test -keyout c.key -out c.pem 2>/dev/null
	openssl x509 -in c.pem -outform der -out c.der
	size=$(stat -c %s c.der)
	crypto der-len c.der "$size"
	{ cat c.der; head -c 300 /dev/zero | tr '\0' '\377'; } >padded.der
	crypto der-len padded.der "$size"
	head -c $((size - 1)) c.der >short.der
	crypto der-len short.der 0
	printf 'not a certificate' >junk
	crypto der-len junk 0
	run -0 kl_unit crypto pem-to-der c.pem
	kl_unit crypto pem-to-der c.pem >got.der
	cmp got.der c.der
	run -1 kl_unit crypto pem-to-der junk
}
