#!/usr/bin/env bats
# The man pages (man/, written in mdoc by hand): lint-clean, one per program
# with the sections operators look for, and listing exactly the options the
# program accepts today (`--help`), so a new or dropped flag fails here until
# its page follows.
load helpers

# One page per program of cmd/: section 8 for the daemon, 1 for the others.
PAGES=$(for d in "$KL_TOP"/cmd/*/; do p=${d%/}; p=${p##*/}; [ "$p" = kl-agent ] && echo "$p.8" || echo "$p.1"; done | xargs)

@test "man: mandoc -T lint finds nothing in any page (style included)" {
	command -v mandoc >/dev/null || fail "mandoc is not installed: run scripts/deps"
	cd "$KL_TOP/man"
	# All pages at once, so the cross references between them resolve.
	run --separate-stderr mandoc -T lint $PAGES
	# mandoc also says when the system's manual database (makewhatis) is older
	# than an installed page it looks up (journalctl(1)): that is the machine's
	# state, not a defect of these pages.
	stderr=$(grep -v '^mandoc: outdated mandoc.db lacks ' <<<"$stderr" || true)
	echo "$output$stderr"
	[ "$status" -eq 0 ]
	[ -z "$output$stderr" ]
	# The same pages, each with one defect, are caught: the check can fail.
	sed 's/^\.Sh EXIT STATUS$/.Sh EXITSTATUS/; s/^\.Sh NAME$/.Sh NAME\n.Pp/' kl-quote.1 \
		>"$BATS_TEST_TMPDIR/kl-quote.1"
	run mandoc -T lint "$BATS_TEST_TMPDIR/kl-quote.1"
	[ "$status" -ne 0 ]
}

@test "man: one page per program, with every section" {
	cd "$KL_TOP/man"
	[ "$(ls)" = "$(tr ' ' '\n' <<<"$PAGES" | sort)" ]
	for page in $PAGES; do
		p=${page%.*} s=${page##*.}
		grep -qx ".Dt ${p^^} $s" "$page"
		grep -qx ".Nm $p" "$page"
		# kl-doctor(1) adds CHECKS and TROUBLESHOOTING (upstream's cases, mapped).
		[ "$(grep '^\.Sh ' "$page" | grep -vx -e '.Sh CHECKS' -e '.Sh TROUBLESHOOTING')" = "$(printf '.Sh %s\n' NAME SYNOPSIS DESCRIPTION OPTIONS \
			ENVIRONMENT FILES 'EXIT STATUS' EXAMPLES 'SEE ALSO')" ]
		# Every exit code of lib/kl_rc.h the page names is one kl uses.
		for c in $(sed -n '/^\.Sh EXIT STATUS/,/^\.Sh /s/^\.It \([0-9][0-9, ]*\)$/\1/p' "$page" | tr -d ,); do
			[[ " 0 1 2 3 100 111 " == *" $c "* ]]
		done
	done
}

# The long options of a page's OPTIONS section (FILE), and those of --help.
page_opts() {
	sed -n '/^\.Sh OPTIONS/,/^\.Sh /p' "$1" |
		sed -n 's/^\.It Fl \(-[a-z-]*\).*/-\1/p; s/^\.It Fl [a-zA-Z] , Fl \(-[a-z-]*\).*/-\1/p' | sort -u
}
help_opts() { kl_run "$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u; }

@test "man: each page lists exactly the options the program accepts (--help)" {
	for page in $PAGES; do
		p=${page%.*}
		diff <(page_opts "$KL_TOP/man/$page") <(help_opts "$p")
	done
	# ... and the comparison sees a missing option.
	sed '/^\.It Fl -tcti/d' "$KL_TOP/man/kl-quote.1" >"$BATS_TEST_TMPDIR/kl-quote.1"
	run -1 diff <(page_opts "$BATS_TEST_TMPDIR/kl-quote.1") <(help_opts kl-quote)
}
