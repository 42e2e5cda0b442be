#!/usr/bin/env bats
# Core lib modules: the stdin document reader and its limits, atomic files,
# encodings and times.
load helpers

# The full-disk test mounts a tmpfs: unmount it here, so a failed run leaves none.
teardown() {
	if [ -n "${full_mnt:-}" ] && mountpoint -q "$full_mnt"; then
		umount "$full_mnt"
	fi
}

@test "json: empty stdin is a new document with schema 1" {
	run -0 --separate-stderr kl_unit core json-read </dev/null
	[ "$output" = '{"schema":1}' ]
	[ -z "$stderr" ]
}

@test "json: a document passes through compact, members kept in order" {
	run -0 --separate-stderr kl_unit core json-read <<<'{ "schema": 1, "b": [1, 2], "a": {"x": "y"} }'
	[ "$output" = '{"schema":1,"b":[1,2],"a":{"x":"y"}}' ]
}

@test "json: a document without schema gets schema 1" {
	run -0 kl_unit core json-read <<<'{"a":1}'
	[ "$output" = '{"a":1,"schema":1}' ]
}

@test "json: malformed input gives line and column, exit 100, empty stdout" {
	run -100 --separate-stderr kl_unit core json-read <<<$'{"schema":1,\n  "a": tru }'
	[ -z "$output" ]
	[[ $stderr == "test_core: error: stdin:2:"*": invalid token"* ]]
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
}

@test "json: duplicate keys are refused" {
	run -100 --separate-stderr kl_unit core json-read <<<'{"schema":1,"a":1,"a":2}'
	[ -z "$output" ]
	[[ $stderr == *"stdin:1:"*"duplicate object key"* ]]
}

@test "json: an error gives line and column, never the text near it (a token)" {
	run -100 --separate-stderr kl_unit core json-read <<<'{"schema":1,
"session":{"token":"TOPSECRET\q"}}'
	[ "$stderr" = "test_core: error: stdin:2:31: invalid escape" ]
}

@test "json: a non-object is refused" {
	run -100 --separate-stderr kl_unit core json-read <<<'[1,2]'
	[[ $stderr == "test_core: error: stdin:1:1: expected a JSON object" ]]
}

@test "json: truncated input is refused" {
	run -100 --separate-stderr kl_unit core json-read <<<'{"schema":1,"agent":{"id":"x"'
	[ -z "$output" ]
	[[ $stderr == *"stdin:"* ]]
}

@test "json: another schema version is refused" {
	run -100 --separate-stderr kl_unit core json-read <<<'{"schema":2}'
	[[ $stderr == *'"schema" must be 1'* ]]
}

@test "json: input over the size cap is refused without reading it all" {
	head -c 300000 /dev/zero | tr '\0' ' ' >"$BATS_TEST_TMPDIR/big"
	run -100 --separate-stderr kl_unit core json-read 100000 <"$BATS_TEST_TMPDIR/big"
	[ -z "$output" ]
	[[ $stderr == "test_core: error: stdin: document larger than 100000 bytes" ]]
}

@test "json: trailing garbage after the object is refused" {
	run -100 --separate-stderr kl_unit core json-read <<<'{"schema":1} x'
	[[ $stderr == *"stdin:1:"* ]]
}

@test "json: the wiping allocator works with json_dumps" {
	run -0 kl_unit core wipe-json
	[ "$output" = '{"token":"secret","a":[1,2]}' ]
}

@test "file: atomic write creates a 0600 file with the content" {
	f=$BATS_TEST_TMPDIR/state.json
	run -0 kl_unit core atomic "$f" hello
	[ "$(cat "$f")" = hello ]
	[ "$(stat -c %a "$f")" = 600 ]
	run -0 kl_unit core atomic "$f" again
	[ "$(cat "$f")" = again ]
	[ -z "$(ls "$BATS_TEST_TMPDIR" | grep tmp)" ]
}

@test "file: atomic write refuses to replace a symlink" {
	echo keep >"$BATS_TEST_TMPDIR/target"
	ln -s "$BATS_TEST_TMPDIR/target" "$BATS_TEST_TMPDIR/link"
	run -100 --separate-stderr kl_unit core atomic "$BATS_TEST_TMPDIR/link" evil
	[[ $stderr == *"link: exists and is not a regular file" ]]
	[ "$(cat "$BATS_TEST_TMPDIR/target")" = keep ]
}

@test "file: replace (kl-agent's reports) is atomic like the atomic write, but not fsynced" {
	f=$BATS_TEST_TMPDIR/status.json
	run -0 kl_unit core replace "$f" hello
	[ "$(cat "$f")" = hello ]
	[ "$(stat -c %a "$f")" = 644 ]
	ln -s "$f" "$BATS_TEST_TMPDIR/link"
	run -100 --separate-stderr kl_unit core replace "$BATS_TEST_TMPDIR/link" evil
	[[ $stderr == *"link: exists and is not a regular file" ]]
	[ "$(cat "$f")" = hello ]
	[ -z "$(ls "$BATS_TEST_TMPDIR" | grep tmp)" ]
	command -v strace >/dev/null || skip "no strace: the fsyncs are not counted"
	# -y names each descriptor's file: the state file and its directory, or nothing.
	# (LeakSanitizer cannot run under ptrace: off for these two runs under ASan.)
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
	strace -f -y -e trace=fsync -o "$BATS_TEST_TMPDIR/atomic.trace" \
	    "$KL_UNIT/test_core" atomic "$BATS_TEST_TMPDIR/state.json" x
	grep -q "fsync(.*state.json.tmp" "$BATS_TEST_TMPDIR/atomic.trace"
	[ "$(grep -c 'fsync(' "$BATS_TEST_TMPDIR/atomic.trace")" -eq 2 ]
	strace -f -y -e trace=fsync -o "$BATS_TEST_TMPDIR/replace.trace" \
	    "$KL_UNIT/test_core" replace "$f" again
	[ "$(cat "$f")" = again ]
	! grep -q 'fsync(' "$BATS_TEST_TMPDIR/replace.trace"
}

@test "file: atomic write into a missing directory is permanent, old file intact" {
	run -100 --separate-stderr kl_unit core atomic "$BATS_TEST_TMPDIR/nodir/x" data
	[[ $stderr == *"nodir/x.tmp."*": create: No such file or directory" ]]
}

@test "file: a failed write leaves the old file intact" {
	[ "$(id -u)" -ne 0 ] || skip "root ignores directory permissions"
	d=$BATS_TEST_TMPDIR/ro
	mkdir "$d"; echo old >"$d/f"; chmod 500 "$d"
	run -100 kl_unit core atomic "$d/f" new
	chmod 700 "$d"
	[ "$(cat "$d/f")" = old ]
}

@test "file: atomic write on a full disk is temporary and keeps the old file" {
	[ -w /dev/full ] || skip "no /dev/full"
	# /dev/full cannot be renamed over; use a tiny tmpfs only when root.
	[ "$(id -u)" -eq 0 ] || skip "needs root for a tmpfs"
	d=$BATS_TEST_TMPDIR/full
	mkdir "$d"
	mount -t tmpfs -o size=8k tmpfs "$d" || skip "cannot mount tmpfs here"
	full_mnt=$d
	echo old >"$d/f"
	big=$(head -c 20000 /dev/zero | tr '\0' x)
	run -111 --separate-stderr kl_unit core atomic "$d/f" "$big"
	old=$(cat "$d/f"); left=$(ls "$d")
	[ "$old" = old ]
	[ "$left" = f ]
	[[ $stderr == *"No space left on device"* ]]
}

@test "file: read refuses a file over the cap and a directory" {
	printf 'abcdef' >"$BATS_TEST_TMPDIR/f"
	run -0 kl_unit core read "$BATS_TEST_TMPDIR/f" 6
	[ "$output" = abcdef ]
	run -100 --separate-stderr kl_unit core read "$BATS_TEST_TMPDIR/f" 5
	[[ $stderr == *"f: larger than 5 bytes" ]]
	run -100 --separate-stderr kl_unit core read "$BATS_TEST_TMPDIR" 5
	[[ $stderr == *": not a regular file" || $stderr == *"Is a directory"* ]]
}

@test "util: base64 round trips and strict decoding" {
	run -0 kl_unit core b64enc 0001feff
	[ "$output" = AAH+/w== ]
	run -0 kl_unit core b64dec AAH+/w==
	[ "$output" = 0001feff ]
	run -0 kl_unit core b64dec utzA3gAAAAEARAAg
	[ "$output" = badcc0de0000000100440020 ]
	run -100 kl_unit core b64dec 'AAH+/w='
	run -100 kl_unit core b64dec 'AAH+ /w=='
	run -100 kl_unit core b64dec 'AAH-_w=='
}

@test "util: RFC 3339 times as the verifier writes them" {
	run -0 kl_unit core time-parse 2025-06-01T08:00:03.512044+00:00
	[ "$output" = 1748764803 ]
	run -0 kl_unit core time-parse 2025-06-01T08:00:03Z
	[ "$output" = 1748764803 ]
	run -0 kl_unit core time-parse 2025-06-01T10:00:03+02:00
	[ "$output" = 1748764803 ]
	run -100 kl_unit core time-parse 2025-06-01
	run -100 kl_unit core time-parse '2025-06-01T08:00:03.+00:00'
	run -0 kl_unit core time-format 1748764803
	[ "$output" = 2025-06-01T08:00:03Z ]
}

@test "util: boot time comes from btime" {
	printf 'cpu  1 2 3\nbtime 1795407004\nprocesses 5\n' >"$BATS_TEST_TMPDIR/stat"
	run -0 kl_unit core btime "$BATS_TEST_TMPDIR/stat"
	[ "$output" = 1795407004 ]
	printf 'cpu 1\n' >"$BATS_TEST_TMPDIR/stat2"
	run -100 kl_unit core btime "$BATS_TEST_TMPDIR/stat2"
}

@test "util: UUID validation and generation" {
	run -0 kl_unit core uuid d432fbb3-d2f1-4a97-9ef7-75bd81c00000
	run -1 kl_unit core uuid d432fbb3-d2f1-4a97-9ef7-75bd81c0000
	run -1 kl_unit core uuid d432fbb3xd2f1-4a97-9ef7-75bd81c00000
	run -1 kl_unit core uuid g432fbb3-d2f1-4a97-9ef7-75bd81c00000
	run -0 kl_unit core uuidgen
	[[ $output =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]
}

@test "log: peer text is sanitized and cut" {
	run -0 kl_unit core sanitize $'bad\x01\nline' 64
	[ "$output" = 'bad??line' ]
	run -0 kl_unit core sanitize abcdefghijklmnop 10
	[ "$output" = 'abcdef...' ]
}
