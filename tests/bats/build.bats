#!/usr/bin/env bats
# What the build promises: each program links only what it uses, hardening is
# on, and the exit-code table is the same in lib/kl_rc.h, docs/contract.md and
# the README.
load helpers

needed() { readelf -d "$KL_BIN/$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

@test "build: kl-quote has no libcurl; kl-submit, kl-verdict and kl-agent no tss2" {
	! needed kl-quote | grep -q libcurl
	needed kl-quote | grep -q libtss2-esys
	! needed kl-submit | grep -q libtss2
	needed kl-submit | grep -q libcurl
	! needed kl-verdict | grep -q libtss2
	needed kl-verdict | grep -q libcurl
	! needed kl-agent | grep -qE 'libtss2|libcurl'
}

@test "build: every program is PIE with full RELRO and a stack protector" {
	for p in kl-register kl-session kl-negotiate kl-quote kl-submit kl-verdict kl-agent; do
		readelf -h "$KL_BIN/$p" | grep -q 'DYN (Position-Independent'
		readelf -d "$KL_BIN/$p" | grep -q 'BIND_NOW'
		readelf -lW "$KL_BIN/$p" | grep -q GNU_RELRO
		[ -n "${KL_ASAN:-}" ] || nm -D "$KL_BIN/$p" | grep -q __stack_chk_fail
	done
}

# "NAME=N" for each row of the enum in kl_rc.h and of the two tables.
rc_header() { sed -n 's/^\s*KL_\([A-Z]*\) = \([0-9]*\),.*/\1=\2/p' "$KL_TOP/lib/kl_rc.h" | tr A-Z a-z | sort; }
rc_table() {
	sed -n 's/^| \([0-9]\{1,3\}\) | \([a-z]*\) |.*/\2=\1/p' "$1" | sort
}

@test "docs: the exit codes in README.md and docs/contract.md are those of lib/kl_rc.h" {
	h=$(rc_header | sed 's/^ok=/ok=/; s/^refused=/refused=/')
	h=$(sed 's/^perm=/permanent=/; s/^temp=/temporary=/' <<<"$h" | sort)
	[ "$(wc -l <<<"$h")" -eq 6 ]
	[ "$(rc_table "$KL_TOP/README.md")" = "$h" ]
	[ "$(rc_table "$KL_TOP/docs/contract.md")" = "$h" ]
}

@test "docs: every program has a reference page and is in the README" {
	for p in kl-register kl-session kl-negotiate kl-quote kl-submit kl-verdict kl-agent; do
		[ -s "$KL_TOP/docs/$p.md" ]
		grep -q "\`$p\`" "$KL_TOP/README.md"
	done
}

@test "build: clang builds everything with -Werror too" {
	command -v clang >/dev/null || skip "clang is not installed"
	[ -z "${KL_ASAN:-}" ] || skip "once is enough (plain run)"
	run -0 make -s -C "$KL_TOP" CC=clang BUILD="$BATS_FILE_TMPDIR/build-clang" -j2 all units
	[ -x "$BATS_FILE_TMPDIR/build-clang/bin/kl-agent" ]
}
