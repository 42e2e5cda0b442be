#!/usr/bin/env bats
# lib/kl_uefi: reading the UEFI measured-boot log whole and counting its
# events, refusing a malformed log with the offset of the bad field.
# Driver: tests/unit/test_uefi.c. Logs: fixtures/uefi/gen-uefi-logs.
load helpers

setup_file() {
	export U=$BATS_FILE_TMPDIR/uefi
	"$BATS_TEST_DIRNAME/fixtures/uefi/gen-uefi-logs" "$U"
}

@test "uefi: crypto-agile log (SHA-1 + SHA-256): 12 events after the Spec ID event" {
	run -0 --separate-stderr kl_unit uefi read "$U/agile.bin" 0 "$BATS_TEST_TMPDIR/out"
	[ "$output" = '{"events":12,"len":1112}' ]
	[ -z "$stderr" ]
	cmp "$BATS_TEST_TMPDIR/out" "$U/agile.bin"
}

@test "uefi: crypto-agile log with three banks and vendor info" {
	run -0 --separate-stderr kl_unit uefi read "$U/agile-3banks.bin" 0
	[ "$output" = '{"events":5,"len":792}' ]
}

@test "uefi: SHA-1 log without a Spec ID event counts every event" {
	run -0 --separate-stderr kl_unit uefi read "$U/legacy.bin" 0
	[ "$output" = '{"events":6,"len":285}' ]
}

@test "uefi: a log of only the Spec ID event has 0 events" {
	head -c 69 "$U/agile.bin" >"$BATS_TEST_TMPDIR/spec"
	run -0 --separate-stderr kl_unit uefi read "$BATS_TEST_TMPDIR/spec" 0
	[ "$output" = '{"events":0,"len":69}' ]
}

# bad NAME 'WHAT': the log is refused with exit 100, stdout empty, one line.
bad() {
	run -100 --separate-stderr kl_unit uefi read "$U/$1" 0
	[ -z "$output" ]
	[ "$stderr" = "test_uefi: error: UEFI log $U/$1: $2" ]
}

@test "uefi: malformed logs are permanent (100) with the offset of the bad field" {
	bad empty.bin "offset 0: empty log"
	bad truncated-header.bin "offset 158: truncated event header (6 bytes left, 12 needed)"
	bad truncated-data.bin "offset 1055: event data of 53 bytes runs past the end (48 bytes left)"
	bad truncated-digest.bin "offset 105: truncated digest (10 bytes left, 32 needed)"
	bad huge-event.bin "offset 137: event data of 4294967295 bytes runs past the end (971 bytes left)"
	bad unknown-alg.bin "offset 103: digest algorithm 0x000c is not in the Spec ID event"
	bad too-many-digests.bin "offset 77: 3 digests, but the Spec ID event declares 2 algorithms"
	bad legacy-truncated.bin "offset 277: event data of 4 bytes runs past the end (3 bytes left)"
}

@test "uefi: a malformed Spec ID event is refused with its offset" {
	bad spec-no-algs.bin "offset 56: Spec ID event: 0 digest algorithms (1 to 16 expected)"
	bad spec-dup-alg.bin "offset 64: Spec ID event: algorithm 0x0004 listed twice"
	bad spec-digest-size.bin "offset 64: Spec ID event: digest size 0 for algorithm 0x000b"
	bad spec-short.bin "offset 60: truncated Spec ID event digest sizes (9 bytes left, 12 needed)"
}

@test "uefi: only the prefixes that end on an event boundary are accepted" {
	# 1112 bytes: the Spec ID event and 12 events end at 13 of the 1113 lengths.
	run -0 --separate-stderr kl_unit uefi prefixes "$U/agile.bin"
	[ "$output" = '{"accepted":13,"rejected":1100}' ]
	[ "${#stderr_lines[@]}" = 1100 ]
	[[ ${stderr_lines[0]} == "test_uefi: error: UEFI log $U/agile.bin: offset 0: empty log" ]]
	run -0 --separate-stderr kl_unit uefi prefixes "$U/legacy.bin"
	[ "$output" = '{"accepted":6,"rejected":280}' ]
}

@test "uefi: no single corrupted byte makes the parser fail other than cleanly" {
	# Under ASan or valgrind this also shows every read stays in bounds.
	for f in agile.bin agile-3banks.bin legacy.bin; do
		run -0 --separate-stderr kl_unit uefi flips "$U/$f"
		[[ $output =~ ^\{\"accepted\":[0-9]+,\"rejected\":[0-9]+\}$ ]]
	done
}

@test "uefi: a missing log is permanent (100) with the path" {
	run -100 --separate-stderr kl_unit uefi read "$U/nope.bin" 0
	[ -z "$output" ]
	[ "$stderr" = "test_uefi: error: UEFI log $U/nope.bin: No such file or directory" ]
}

@test "uefi: a log larger than the cap is refused" {
	run -100 --separate-stderr kl_unit uefi read "$U/agile.bin" 1000
	[ -z "$output" ]
	[ "$stderr" = "test_uefi: error: UEFI log $U/agile.bin: larger than 1000 bytes" ]
	run -0 kl_unit uefi read "$U/agile.bin" 1112
	[ "$output" = '{"events":12,"len":1112}' ]
}

@test "uefi: a directory is refused" {
	run -100 --separate-stderr kl_unit uefi read "$U" 0
	[ "$stderr" = "test_uefi: error: UEFI log $U: read: Is a directory" ]
}

@test "uefi: a file with no size (like securityfs) is read to its end" {
	# A pipe reports no size, as /sys/kernel/security files report 0.
	run -0 --separate-stderr kl_unit uefi read <(cat "$U/agile.bin") 0
	[ "$output" = '{"events":12,"len":1112}' ]
}
