#!/usr/bin/env bats
# `make demo` is the README's first command: keep it working.
load helpers

@test "demo: scripts/demo ends with the verifier's PASS" {
	run -0 --separate-stderr "$KL_TOP/scripts/demo" "$KL_BUILD"
	[ "${lines[-1]}" = PASS ]
	[[ $output == *'"evaluation":"pass"'* ]]
	[[ $output != *'"evaluation":"fail"'* ]]
}
