#!/usr/bin/env bats
# `make install` / `make uninstall` honour PREFIX and DESTDIR; the installed
# units are hardened (systemd-analyze security), the example agent.conf names
# every key kl reads.
load helpers

# inst DIR ARGS...: make install (or ARGS) into DESTDIR=DIR, from the tested build.
# -o all: install what was built, never rebuild it (other test files run
# those programs at the same time; a changed tree would relink them under them).
inst() {
	local d=$1
	shift
	make -s -o all -C "$KL_TOP" BUILD="$KL_BUILD" DESTDIR="$d" "$@"
}

listing() { (cd "$1" && find . -mindepth 1 \( -type f -o -type d \) -printf '%M %p\n' | sort -k2); }

@test "install: PREFIX=/usr puts every file in its place, with its mode" {
	local d=$BATS_TEST_TMPDIR/root
	inst "$d" install PREFIX=/usr
	listing "$d" >"$BATS_TEST_TMPDIR/got"
	{
		# Every program of cmd/ and every page of man/.
		for p in "$KL_TOP"/cmd/*/; do
			p=${p%/}; echo "-rwxr-xr-x ./usr/bin/${p##*/}"
		done
		for m in "$KL_TOP"/man/*.[18]; do
			m=${m##*/}; echo "-rw-r--r-- ./usr/share/man/man${m##*.}/$m"
		done
		for u in kl-agent-once.service kl-agent-once.timer kl-agent.service; do
			echo "-rw-r--r-- ./usr/lib/systemd/system/$u"
		done
		echo "-rw-r--r-- ./usr/lib/sysusers.d/kl.conf"
		echo "-rw-r--r-- ./etc/keylime/agent.conf"
		echo "-rw-r--r-- ./usr/share/doc/kl/examples/agent.conf"
		echo "-rw-r--r-- ./usr/share/doc/kl/examples/agent.conf.d/50-verifier.conf.example"
		echo "-rw-r--r-- ./usr/share/doc/kl/README.md"
		for f in "$KL_TOP"/docs/*.md; do echo "-rw-r--r-- ./usr/share/doc/kl/${f##*/}"; done
	} >"$BATS_TEST_TMPDIR/files"
	# Every file above, and no other file anywhere (directories: those above).
	diff <(grep -v '^d' "$BATS_TEST_TMPDIR/got") <(sort -k2 "$BATS_TEST_TMPDIR/files")
	grep -qx 'drwxr-xr-x ./etc/keylime/agent.conf.d' "$BATS_TEST_TMPDIR/got"
	# Nothing under /etc/systemd or /usr/local, and the units start /usr/bin/kl-agent.
	run -1 grep -E '\./(etc/systemd|usr/local)' "$BATS_TEST_TMPDIR/got"
	grep -qx 'ExecStart=/usr/bin/kl-agent' "$d/usr/lib/systemd/system/kl-agent.service"
	grep -qx 'ExecStart=/usr/bin/kl-agent --once --verdict' "$d/usr/lib/systemd/system/kl-agent-once.service"
	run -1 grep -rn '/usr/local' "$d/usr/lib/systemd/system"
	cmp "$KL_TOP/dist/agent.conf" "$d/etc/keylime/agent.conf"
	cmp "$KL_BUILD/bin/kl-agent" "$d/usr/bin/kl-agent"
}

@test "install: the default PREFIX is /usr/local, for the units too" {
	local d=$BATS_TEST_TMPDIR/root
	inst "$d" install
	grep -qx 'ExecStart=/usr/local/bin/kl-agent' "$d/usr/local/lib/systemd/system/kl-agent.service"
	[ -x "$d/usr/local/bin/kl-submit" ]
	[ -f "$d/usr/local/share/man/man8/kl-agent.8" ]
	[ -f "$d/etc/keylime/agent.conf" ]
	inst "$d" uninstall
	[ -z "$(find "$d" -not -type d)" ]
}

@test "install: an existing agent.conf is kept, by install and by uninstall" {
	local d=$BATS_TEST_TMPDIR/root
	mkdir -p "$d/etc/keylime"
	printf '[agent]\nuuid = "generate"\n' >"$d/etc/keylime/agent.conf"
	inst "$d" install PREFIX=/usr
	grep -qx 'uuid = "generate"' "$d/etc/keylime/agent.conf"
	inst "$d" uninstall PREFIX=/usr
	[ "$(find "$d" -not -type d)" = "$d/etc/keylime/agent.conf" ]
}

@test "install: make uninstall leaves nothing of kl" {
	local d=$BATS_TEST_TMPDIR/root
	inst "$d" install PREFIX=/usr
	inst "$d" uninstall PREFIX=/usr
	[ -z "$(find "$d" -not -type d)" ]
	# ... nor kl's own directories.
	[ ! -e "$d/etc/keylime" ] && [ ! -e "$d/usr/share/doc/kl" ]
}

@test "install: each unit scores 2.5 or less in systemd-analyze security" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	local d=$BATS_TEST_TMPDIR/root u score
	inst "$d" install PREFIX=/usr
	for u in kl-agent.service kl-agent-once.service; do
		run -0 systemd-analyze security --offline=true --no-pager "$d/usr/lib/systemd/system/$u"
		score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<<"$output")
		echo "$u: $score"
		[ -n "$score" ]
		awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }'
	done
	# What the agent needs stays allowed: the TPM, dropping to run_as, the network.
	for u in kl-agent.service kl-agent-once.service; do
		grep -qx 'DeviceAllow=/dev/tpmrm0 rw' "$KL_TOP/dist/systemd/$u"
		grep -qx 'CapabilityBoundingSet=CAP_SETUID CAP_SETGID' "$KL_TOP/dist/systemd/$u"
		grep -qx 'SystemCallFilter=setuid setgid setgroups setresuid setresgid' "$KL_TOP/dist/systemd/$u"
		grep -qx 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' "$KL_TOP/dist/systemd/$u"
		grep -qx 'StateDirectory=keylime' "$KL_TOP/dist/systemd/$u"
		run -1 grep -E 'ReadWritePaths|\.\./|PROTOCOL\.md' "$KL_TOP/dist/systemd/$u"
	done
}

# The keys of lib/kl_config.c's table.
config_keys() {
	sed -n '/^static const struct key keys\[\] = {/,/^};/s/^\t[SLIB](\([a-z_]*\),.*/\1/p' \
		"$KL_TOP/lib/kl_config.c"
}

@test "install: the example agent.conf shows every key, commented, and parses uncommented" {
	local conf=$BATS_TEST_TMPDIR/agent.conf keys
	keys=$(config_keys)
	[ "$(wc -l <<<"$keys")" -ge 30 ]
	for k in $keys; do
		grep -q "^#$k = " "$KL_TOP/dist/agent.conf" || { echo "dist/agent.conf lacks $k" >&2; return 1; }
	done
	# Nothing is set in the installed file: every value line is a comment.
	run -1 grep -E '^[a-z_]+ *=' "$KL_TOP/dist/agent.conf"
	# Uncommented, it is a valid configuration: kl-quote gets past it to stdin.
	sed 's/^#\([a-z_]* = \)/\1/' "$KL_TOP/dist/agent.conf" >"$conf"
	KEYLIME_AGENT_CONFIG=$conf run -100 --separate-stderr kl_run kl-quote </dev/null
	[ "$stderr" = 'kl-quote: error: stdin: "agent" is missing' ]
	KEYLIME_AGENT_CONFIG=$KL_TOP/dist/agent.conf.d/50-verifier.conf.example \
		run -100 --separate-stderr kl_run kl-quote </dev/null
	[ "$stderr" = 'kl-quote: error: stdin: "agent" is missing' ]
}
