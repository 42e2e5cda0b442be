#!/usr/bin/env bats
# lib/kl_ima: counting and reading the IMA ASCII log from a line offset, with
# a checkpoint that makes the cost independent of the log's length.
# Driver: tests/unit/test_ima.c (count LOG CKPT BOOT | read LOG CKPT BOOT OFFSET MAX OUT).
load helpers

SAMPLE=$BATS_TEST_DIRNAME/fixtures/ima/ascii_runtime_measurements.sample
GEN=$KL_TOP/scripts/gen-ima-log

setup() {
	T=$BATS_TEST_TMPDIR
	log=$T/ascii_runtime_measurements
	ck=$T/ima_checkpoint.json
	out=$T/entries
}

# field NAME: the integer member NAME of the driver's JSON line in $output.
field() {
	[[ $output =~ \"$1\":([0-9]+) ]] || return 1
	echo "${BASH_REMATCH[1]}"
}

# lines_from FILE K [N]: lines K.. (0-based) of FILE, at most N, byte-exact, into $T/want.
lines_from() {
	if [ -n "${3:-}" ]; then
		tail -n +$(($2 + 1)) "$1" | head -n "$3" >"$T/want"
	else
		tail -n +$(($2 + 1)) "$1" >"$T/want"
	fi
}

@test "ima: count of the captured sample is its 13 lines" {
	run -0 --separate-stderr kl_unit ima count "$SAMPLE" "$ck" 100
	[ "$(field entries)" = 13 ]
	[ -z "$stderr" ]
}

@test "ima: read from 0 returns the whole log byte-exact" {
	run -0 --separate-stderr kl_unit ima read "$SAMPLE" "$ck" 100 0 0 "$out"
	[ "$(field count)" = 13 ]
	[ "$(field len)" = "$(stat -c %s "$SAMPLE")" ]
	cmp "$out" "$SAMPLE"
	[ -z "$stderr" ]
}

@test "ima: read from a middle offset returns the lines after it" {
	run -0 --separate-stderr kl_unit ima read "$SAMPLE" "$ck" 100 4 0 "$out"
	[ "$(field count)" = 9 ]
	lines_from "$SAMPLE" 4
	cmp "$out" "$T/want"
	[ "$(head -c 40 "$out")" = "10 55ee9ea2811c8b93ed6b10c824e0af189cb63" ]
}

@test "ima: read from the end is empty, count 0" {
	run -0 --separate-stderr kl_unit ima read "$SAMPLE" "$ck" 100 13 0 "$out"
	[ "$(field count)" = 0 ]
	[ "$(field len)" = 0 ]
	[ ! -s "$out" ]
	[ -z "$stderr" ]
}

@test "ima: an offset beyond the end is permanent (100) and says why" {
	run -100 --separate-stderr kl_unit ima read "$SAMPLE" "$ck" 100 14 0 "$out"
	[ -z "$output" ]
	[ "$stderr" = "test_ima: error: IMA log $SAMPLE: starting_offset 14 is beyond its 13 entries (an offset from another boot or another log)" ]
}

@test "ima: max_entries caps the lines returned" {
	run -0 --separate-stderr kl_unit ima read "$SAMPLE" "$ck" 100 2 3 "$out"
	[ "$(field count)" = 3 ]
	lines_from "$SAMPLE" 2 3
	cmp "$out" "$T/want"
	# A cap larger than what is left returns what is left.
	run -0 --separate-stderr kl_unit ima read "$SAMPLE" "$ck" 100 10 50 "$out"
	[ "$(field count)" = 3 ]
}

@test "ima: without a checkpoint (-) results are the same" {
	run -0 --separate-stderr kl_unit ima read "$SAMPLE" - 100 7 0 "$out"
	[ "$(field count)" = 6 ]
	lines_from "$SAMPLE" 7
	cmp "$out" "$T/want"
}

@test "ima: a missing log is permanent (100) with the path" {
	run -100 --separate-stderr kl_unit ima count "$T/nope" "$ck" 100
	[ -z "$output" ]
	[ "$stderr" = "test_ima: error: IMA log $T/nope: No such file or directory" ]
	[ ! -e "$ck" ]
}

@test "ima: the checkpoint file is mode 0600 and names the boot and the log" {
	umask 022
	run -0 kl_unit ima count "$SAMPLE" "$ck" 1700000000
	[ "$(stat -c %a "$ck")" = 600 ]
	grep -q '"boot_time":1700000000' "$ck"
	grep -qF "\"log\":\"$SAMPLE\"" "$ck"
	grep -q '"end":\[13,2320\]' "$ck"
}

@test "ima: incremental over 3 appends reads only the new bytes" {
	"$GEN" -n 1000 >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 1000 ]
	[ "$(field bytes_read)" -ge "$(stat -c %s "$log")" ]
	total=1000
	for n in 7 1 250; do
		"$GEN" -s $total -n $n >"$T/new"
		cat "$T/new" >>"$log"
		run -0 --separate-stderr kl_unit ima count "$log" "$ck" 100
		[ "$(field entries)" = $((total + n)) ]
		# the new lines, the '\n' before them, and the 64-byte tails
		# checked before and taken after
		[ "$(field bytes_read)" = $(($(stat -c %s "$T/new") + 129)) ]
		run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 $total 0 "$out"
		[ "$(field count)" = $n ]
		cmp "$out" "$T/new"
		[ -z "$stderr" ]
		total=$((total + n))
	done
	# Unchanged log: counting reads only the tail check.
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 1258 ]
	[ "$(field bytes_read)" = 65 ]
}

@test "ima: a starting_offset that goes back (failed attestation) still gets the right lines" {
	"$GEN" -n 30000 >"$log"
	run -0 kl_unit ima read "$log" "$ck" 100 29990 0 "$out"
	[ "$(field count)" = 10 ]
	for off in 12345 2 29000 0 15000; do
		run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 $off 0 "$out"
		[ "$(field count)" = $((30000 - off)) ]
		lines_from "$log" $off
		cmp "$out" "$T/want"
		[ -z "$stderr" ]
	done
	# Going back seeks to a mark: far less than the log is read for a short read.
	run -0 kl_unit ima read "$log" "$ck" 100 20000 5 "$out"
	[ "$(field count)" = 5 ]
	lines_from "$log" 20000 5
	cmp "$out" "$T/want"
	[ "$(field bytes_read)" -lt $((600 * 1024)) ]
}

@test "ima: a new boot_time resets the checkpoint" {
	"$GEN" -n 5000 >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field bytes_read)" = 65 ]
	# A reboot gives a new log: here a shorter, different one.
	"$GEN" -n 40 --tag boot2 >"$log"
	run -0 --separate-stderr kl_unit ima count "$log" "$ck" 200
	[ "$(field entries)" = 40 ]
	[ -z "$stderr" ]
	grep -q '"boot_time":200' "$ck"
	grep -q '"end":\[40,' "$ck"
	# The same log with another boot_time is read again from the start.
	run -0 kl_unit ima count "$log" "$ck" 300
	[ "$(field bytes_read)" = $(($(stat -c %s "$log") + 64)) ]
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 300 38 0 "$out"
	lines_from "$log" 38
	cmp "$out" "$T/want"
}

@test "ima: a truncated log resets the checkpoint with a warning" {
	"$GEN" -n 1000 >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	head -n 500 "$log" >"$T/short" && cat "$T/short" >"$log"
	run -0 --separate-stderr kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 500 ]
	[ "$stderr" = "test_ima: warning: IMA log $log: does not match checkpoint $ck (replaced or truncated); reading it from the start" ]
	run -0 --separate-stderr kl_unit ima count "$log" "$ck" 100
	[ -z "$stderr" ]
	[ "$(field bytes_read)" = 65 ]
}

@test "ima: a replaced log of the same boot (longer, other content) is read again" {
	"$GEN" -n 1000 >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	"$GEN" -n 1200 --tag other >"$T/other" && cat "$T/other" >"$log"
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 999 0 "$out"
	[ "$(field count)" = 201 ]
	lines_from "$log" 999
	cmp "$out" "$T/want"
	[[ $stderr == "test_ima: warning: IMA log $log: does not match checkpoint"* ]]
}

@test "ima: a checkpoint mark that is not at a line start is detected" {
	"$GEN" -n 20000 >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	# Shift the second mark by one byte: still well-formed, but wrong.
	/usr/bin/python3 - "$ck" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["marks"][1][1] += 1
json.dump(c, open(sys.argv[1], "w"))
PY
	# Marks are 256 KiB apart, about 1670 lines here: offset 2000 seeks to mark 1.
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 2000 0 "$out"
	[ "$(field count)" = 18000 ]
	lines_from "$log" 2000
	cmp "$out" "$T/want"
	[ "$stderr" = "test_ima: warning: IMA log $log: no line starts where checkpoint $ck says; reading it from the start" ]
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 2000 0 "$out"
	[ -z "$stderr" ]
}

@test "ima: a corrupt checkpoint gives one warning and the right result" {
	cp "$SAMPLE" "$log"
	for bad in 'not json' '{"version":2}' '[]' \
		'{"version":1,"boot_time":100,"log":"LOG","marks":[[0,0],[5,3]],"end":[13,2320],"tail":""}' \
		'{"version":1,"boot_time":100,"log":"LOG","marks":[[1,0]],"end":[13,2320],"tail":""}' \
		'{"version":1,"boot_time":100,"log":"LOG","marks":[],"end":[13,2320],"tail":""}' \
		'{"version":1,"boot_time":100,"log":"LOG","marks":[[0,0]],"end":[13,5],"tail":""}' \
		'{"version":1,"boot_time":100,"log":"LOG","marks":[[0,0]],"end":[13,2320],"tail":"zz"}' \
		'{"version":1,"boot_time":100,"log":"LOG","marks":[[0,0]],"end":[13,2320],"tail":"0a","x":1}'; do
		printf '%s' "${bad//LOG/$log}" >"$ck"
		run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 10 0 "$out"
		[ "$(field count)" = 3 ]
		lines_from "$log" 10
		cmp "$out" "$T/want"
		[ "${#stderr_lines[@]}" = 1 ]
		[[ $stderr == "test_ima: warning: IMA checkpoint $ck: "*"; rebuilding it" ]]
	done
	# Rebuilt: the next run is quiet and reads only the tail check.
	run -0 --separate-stderr kl_unit ima count "$log" "$ck" 100
	[ -z "$stderr" ]
	[ "$(field entries)" = 13 ]
	[ "$(field bytes_read)" = 65 ]
}

@test "ima: a last line still being written is neither counted nor returned" {
	head -n 3 "$SAMPLE" >"$log"
	printf '10 f5ad66748b4c79f6fa17052bf785578be669051b ima-ng sha256:a4' >>"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 3 ]
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 0 0 "$out"
	[ "$(field count)" = 3 ]
	head -n 3 "$SAMPLE" | cmp "$out" -
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 3 0 "$out"
	[ "$(field count)" = 0 ]
	[ ! -s "$out" ]
	# The writer finishes the line: now it is there.
	printf '63 /usr/bin/x\n' >>"$log"
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 3 0 "$out"
	[ "$(field count)" = 1 ]
	[ "$(cat "$out")" = "10 f5ad66748b4c79f6fa17052bf785578be669051b ima-ng sha256:a463 /usr/bin/x" ]
	[ -z "$stderr" ]
}

@test "ima: empty log and a log with only a partial line count 0" {
	: >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 0 ]
	run -0 kl_unit ima read "$log" "$ck" 100 0 0 "$out"
	[ "$(field count)" = 0 ]
	run -100 kl_unit ima read "$log" "$ck" 100 1 0 "$out"
	printf 'no newline yet' >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 0 ]
}

@test "ima: lines longer than the read chunk are returned byte-exact" {
	long=$(head -c 150000 /dev/zero | tr '\0' 'a')
	{ head -n 2 "$SAMPLE"; printf '10 %s ima-ng sha256:00 /%s\n' "$(printf '%040d' 0)" "$long"; tail -n 2 "$SAMPLE"; } >"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 5 ]
	run -0 kl_unit ima read "$log" "$ck" 100 1 0 "$out"
	[ "$(field count)" = 4 ]
	lines_from "$log" 1
	cmp "$out" "$T/want"
	run -0 kl_unit ima read "$log" "$ck" 100 3 0 "$out"
	[ "$(field count)" = 2 ]
	tail -n 2 "$SAMPLE" | cmp "$out" -
}

@test "ima: control bytes are forwarded untouched" {
	printf '10 aa ima-ng sha256:00 /bin/\x01\tx\r\n10 bb ima-ng sha256:11 /bin/y z\n' >"$log"
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 0 0 "$out"
	[ "$(field count)" = 2 ]
	cmp "$out" "$log"
	[ -z "$stderr" ]
}

# Before issue 9 the \xff of the test above was forwarded as is, and kl-quote
# then refused the log for ever (JSON carries only UTF-8).
@test "ima: a line that is not UTF-8 gets U+FFFD per maximal invalid subpart, with one warning, once" {
	local fffd
	fffd=$(printf '\xef\xbf\xbd')
	printf '10 aa ima-ng sha256:00 /bin/x\n10 bb ima-ng sha256:11 /bin/caf\xc3\xa9\n' >"$log"
	# Latin-1 e-acute, an overlong NUL (two bytes, each invalid), a cut 3-byte sequence.
	printf '10 cc ima-ng sha256:22 /tmp/caf\xe9 \xc0\x80 \xe2\x82x\n' >>"$log"
	printf '10 dd ima-ng sha256:33 /bin/y\n' >>"$log"
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 0 0 "$out"
	[ "$(field count)" = 4 ]
	[ "$stderr" = "test_ima: warning: IMA log $log: entry 2 (line 3) is not UTF-8 (a file name in another encoding?): sent with U+FFFD for the invalid bytes; the verifier cannot match its template hash" ]
	diff <(sed -n 1,2p "$out") <(sed -n 1,2p "$log")
	[ "$(sed -n 3p "$out")" = "10 cc ima-ng sha256:22 /tmp/caf$fffd $fffd$fffd ${fffd}x" ]
	[ "$(sed -n 4p "$out")" = "10 dd ima-ng sha256:33 /bin/y" ]
	# The same as Python's errors="replace" (the verifier's side of the rule).
	python3 -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1], "rb").read().decode("utf-8", "replace").encode())' "$log" | cmp - "$out"
	# Once: the checkpoint remembers; from an offset after it, nothing to say either.
	grep -q '"warned":3' "$ck"
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 1 0 "$out"
	[ -z "$stderr" ]
	[ "$(sed -n 2p "$out")" = "10 cc ima-ng sha256:22 /tmp/caf$fffd $fffd$fffd ${fffd}x" ]
	# Without a checkpoint, every run warns.
	run -0 --separate-stderr kl_unit ima read "$log" - 100 0 0 "$out"
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "ima: a checkpoint that cannot be written costs time, not the result" {
	cp "$SAMPLE" "$log"
	run -0 --separate-stderr kl_unit ima read "$log" "$T/no/such/dir/ck.json" 100 12 0 "$out"
	[ "$(field count)" = 1 ]
	tail -n 1 "$SAMPLE" | cmp "$out" -
	[[ $stderr == *"$T/no/such/dir/ck.json.tmp."*": create: No such file or directory" ]]
}

@test "ima: with a checkpoint, the cost does not grow with the log (1,000,000 entries)" {
	"$GEN" -n 1000000 >"$log"
	size=$(stat -c %s "$log")
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 1000000 ]
	[ "$(field bytes_read)" -ge "$size" ]
	# The agent's cycle: 10 new entries, count them, read them.
	"$GEN" -s 1000000 -n 10 >"$T/new"
	cat "$T/new" >>"$log"
	run -0 kl_unit ima count "$log" "$ck" 100
	[ "$(field entries)" = 1000010 ]
	[ "$(field bytes_read)" -lt 1048576 ]
	run -0 --separate-stderr kl_unit ima read "$log" "$ck" 100 1000000 0 "$out"
	[ "$(field count)" = 10 ]
	cmp "$out" "$T/new"
	[ "$(field bytes_read)" -lt 1048576 ]
	# Going back half the log for a few entries seeks; it does not rescan.
	run -0 kl_unit ima read "$log" "$ck" 100 500000 10 "$out"
	[ "$(field count)" = 10 ]
	lines_from "$log" 500000 10
	cmp "$out" "$T/want"
	[ "$(field bytes_read)" -lt 1048576 ]
	# And the checkpoint stays small.
	[ "$(stat -c %s "$ck")" -lt 65536 ]
}

@test "ima: an unreadable log is read through the descriptor kl-agent passes (run_as)" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to drop privileges"
	d=$(mktemp -d /tmp/kl-ima-fd.XXXXXX)
	chmod 755 "$d"
	printf '10 aa ima-ng sha256:00 boot_aggregate\n10 bb ima-ng sha256:11 /bin/x\n' >"$d/log"
	chmod 400 "$d/log"
	unit=$(mktemp /tmp/kl-test-ima.XXXXXX); cp "$KL_UNIT/test_ima" "$unit"; chmod 755 "$unit"
	# Without the descriptor: permission denied, permanent.
	run -100 --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups "$unit" count "$d/log" - 1
	[[ $stderr == *"Permission denied"* ]]
	# With it (opened as root), the count works; a descriptor of another file is not used.
	run -0 --separate-stderr env KL_IMA_ML_FD=5 setpriv --reuid=65534 --regid=65534 --clear-groups "$unit" count "$d/log" - 1 5<"$d/log"
	[[ $output == *2* ]]
	run -100 --separate-stderr env KL_IMA_ML_FD=5 setpriv --reuid=65534 --regid=65534 --clear-groups "$unit" count "$d/log" - 1 5</etc/hostname
	rm -rf "$d" "$unit"
}
