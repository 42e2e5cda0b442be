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

@test "build: libcrypto only where kl_crypto is linked (kl-agent and kl-submit have none)" {
	for p in kl-register kl-session kl-negotiate kl-quote; do
		needed "$p" | grep -q libcrypto
	done
	! needed kl-agent | grep -q libcrypto
	! needed kl-submit | grep -q libcrypto
}

# Files (tracked or new, not ignored) that include <$1/...>, one a line.
includers() { git -C "$KL_TOP" grep --untracked -l "#include <$1/" | sort; }

@test "build: one owner per outside library: OpenSSL kl_crypto, tss2 kl_tpm, libcurl kl_http" {
	git -C "$KL_TOP" rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout"
	run -0 includers openssl
	[ -n "$output" ]
	! grep -v '^lib/kl_crypto' <<<"$output" || { echo "OpenSSL outside lib/kl_crypto*"; return 1; }
	run -0 includers tss2
	[ -n "$output" ]
	! grep -v '^lib/kl_tpm' <<<"$output" || { echo "tss2 outside lib/kl_tpm*"; return 1; }
	run -0 includers curl
	[ -n "$output" ]
	! grep -v '^lib/kl_http' <<<"$output" || { echo "libcurl outside lib/kl_http*"; return 1; }
}

@test "build: every program is PIE with full RELRO and a stack protector" {
	for p in kl-register kl-session kl-negotiate kl-quote kl-submit kl-verdict kl-agent kl-doctor; do
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
	# The header abbreviates two names that the tables spell out.
	h=$(rc_header | sed 's/^perm=/permanent=/; s/^temp=/temporary=/' | sort)
	[ "$(wc -l <<<"$h")" -eq 6 ]
	[ "$(rc_table "$KL_TOP/README.md")" = "$h" ]
	[ "$(rc_table "$KL_TOP/docs/contract.md")" = "$h" ]
}

@test "docs: every program has a reference page and is in the README" {
	for p in kl-register kl-session kl-negotiate kl-quote kl-submit kl-verdict kl-agent kl-doctor; do
		[ -s "$KL_TOP/docs/$p.md" ]
		grep -q "\`$p\`" "$KL_TOP/README.md"
	done
}

@test "build: clang builds everything with -Werror too" {
	command -v clang >/dev/null || skip "clang is not installed"
	[ -z "${KL_ASAN:-}" ] || skip "once is enough (plain run)"
	run -0 make -s -C "$KL_TOP" CC=clang WERROR=-Werror BUILD="$BATS_FILE_TMPDIR/build-clang" -j2 all units
	[ -x "$BATS_FILE_TMPDIR/build-clang/bin/kl-agent" ]
}

# The project stands alone: no file points outside the repository, and every
# "docs/protocol.md §N" (also "protocol.md N", "sections N-M", wrapped lines)
# names a heading N of docs/protocol.md. The patterns are spelled so that
# this file does not match them.
protocol_cites() {
	git grep -z -l -I -E 'protocol[.]md' -- . ':!docs/protocol.md' | xargs -0 cat | tr '\n' ' ' |
	    grep -oE 'protocol[.]md[[:space:]*#/]*(sections? |§)?[0-9]+(\.[0-9]+)*([[:space:]]*(-|–|,|and)[[:space:]]*§?[0-9]+(\.[0-9]+)*)*' |
	    sed 's/^protocol[.]md//' | grep -oE '[0-9]+(\.[0-9]+)*'
	grep -oE '§[0-9]+(\.[0-9]+)*' docs/protocol.md | sed 's/^§//'
}

@test "docs: nothing refers outside the repository; each docs/protocol.md §N exists" {
	cd "$KL_TOP"
	git rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout"
	run git grep -n -I -E 'PROTOCOL[.]md|[.][.]/shared|/work/share[d]|keylime-re[f]'
	[ "$status" -eq 1 ] || { printf '%s\n' "$output"; false; }
	heads=$(sed -nE 's/^#{2,4} ([0-9]+(\.[0-9]+)*)\.? .*/\1/p' docs/protocol.md | sort -u)
	[ "$(wc -l <<<"$heads")" -ge 40 ]
	cites=$(protocol_cites | sort -u)
	[ "$(wc -l <<<"$cites")" -ge 20 ]
	missing=$(comm -23 <(printf '%s\n' "$cites") <(printf '%s\n' "$heads"))
	[ -z "$missing" ] || { echo "cited but no such heading in docs/protocol.md: $missing"; false; }
}
