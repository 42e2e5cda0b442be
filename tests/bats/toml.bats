#!/usr/bin/env bats
# tests/bats/toml.bats - lib/kl_toml through build/tests/test_toml.
load helpers

FIX="$BATS_TEST_DIRNAME/fixtures/config"

# parse_ok TEXT JSON: TEXT (given to stdin as is) parses to exactly JSON.
parse_ok() {
	printf '%s' "$1" >"$BATS_TEST_TMPDIR/in.toml"
	run -0 --separate-stderr kl_unit toml parse t.toml <"$BATS_TEST_TMPDIR/in.toml"
	if [ "$output" != "$2" ]; then
		printf 'got:  %s\nwant: %s\n' "$output" "$2"
		return 1
	fi
	[ -z "$stderr" ]
}

# parse_bad TEXT "LINE:COL: MESSAGE": exit 100, empty stdout, exactly one line.
parse_bad() {
	printf '%s' "$1" >"$BATS_TEST_TMPDIR/in.toml"
	run -100 --separate-stderr kl_unit toml parse t.toml <"$BATS_TEST_TMPDIR/in.toml"
	[ -z "$output" ]
	if [ "$stderr" != "test_toml: error: t.toml:$2" ]; then
		printf 'got:  %s\nwant: %s\n' "$stderr" "test_toml: error: t.toml:$2"
		return 1
	fi
}

# --- accepted input ---------------------------------------------------------

@test "toml: every supported type, from a file" {
	run -0 --separate-stderr kl_unit toml file "$FIX/all-types.toml"
	[ "$output" = "$(cat "$FIX/all-types.json")" ]
	[ -z "$stderr" ]
}

@test "toml: empty input, blank lines and comments give an empty table" {
	parse_ok '' '{}'
	parse_ok $'\n\n  # only a comment\n\t\n# another\n' '{}'
}

@test "toml: comments after values and headers, CRLF line ends" {
	parse_ok $'# top\r\na = 1 # one\r\n[t] # table\r\nb = "x" #\r\n' '{"a":1,"t":{"b":"x"}}'
}

@test "toml: basic string escapes" {
	parse_ok 'a = "q\" bs\\ b\b t\t n\n f\f r\r u\u00e9 U\U0001F600 \u20AC"' \
		'{"a":"q\" bs\\ b\b t\t n\n f\f r\r ué U😀 €"}'
}

@test "toml: literal strings keep backslashes; tabs are allowed in strings" {
	parse_ok $'a = \'\\n\\t\\\\\'\nb = "x\ty"' '{"a":"\\n\\t\\\\","b":"x\ty"}'
}

@test "toml: multi-line basic strings: first newline trimmed, line-ending backslash" {
	parse_ok $'a = """\nl1\nl2 \\\n\n     l3"""\nb = """x""""\n' '{"a":"l1\nl2 l3","b":"x\""}'
}

@test "toml: multi-line literal strings keep everything verbatim" {
	parse_ok $'a = \'\'\'\n\\no "escapes" \\\n here\'\'\'' '{"a":"\\no \"escapes\" \\\n here"}'
}

@test "toml: CRLF inside a multi-line string becomes LF" {
	parse_ok $'a = """\r\nx\r\ny"""\r\n' '{"a":"x\ny"}'
}

@test "toml: integers in every base, signs, underscores, 64-bit limits" {
	parse_ok 'a = [0, +0, -0, 42, -17, 1_000, 0xff, 0xFF_ff, 0o17, 0b1010_1010]' \
		'{"a":[0,0,0,42,-17,1000,255,65535,15,170]}'
	parse_ok $'max = 9223372036854775807\nmin = -9223372036854775808\nhex = 0x7fffffffffffffff' \
		'{"max":9223372036854775807,"min":-9223372036854775808,"hex":9223372036854775807}'
}

@test "toml: multi-line nested arrays with comments and a trailing comma" {
	parse_ok $'a = [\n  [1, 2],  # pair\n\n  # comment line\n  ["x",\n   \'y\',],\n  [],\n]\n' \
		'{"a":[[1,2],["x","y"],[]]}'
}

@test "toml: dotted and quoted table names; a parent may be defined after its child" {
	parse_ok $'[a.b]\nx = 1\n[ a . "c d" ]\ny = 2\n[a]\nz = 3\n["" ]\ne = 0\n' \
		'{"a":{"b":{"x":1},"c d":{"y":2},"z":3},"":{"e":0}}'
}

@test "toml: keys keep file order; quoted keys may hold any character" {
	parse_ok $'z = 1\n"a.b" = 2\n\'=\' = 3\n"" = 4\n1 = 5' '{"z":1,"a.b":2,"=":3,"":4,"1":5}'
}

@test "toml: positions are [line, key column, value column], in characters" {
	printf '%s' $'a = 1\n\n[t]\n  "é" =  [1,\n 2]\nb="x"' >"$BATS_TEST_TMPDIR/in.toml"
	run -0 --separate-stderr kl_unit toml pos t.toml <"$BATS_TEST_TMPDIR/in.toml"
	[ "$output" = '{"a":[1,1,5],"t":{"é":[4,3,10],"b":[6,1,3]}}' ]
}

@test "toml: one value alone (for environment variables)" {
	run -0 --separate-stderr kl_unit toml value V <<<' ["2.5", "2.6",] # c'
	[ "$output" = '["2.5","2.6"]' ]
	run -100 --separate-stderr kl_unit toml value V <<<'["2.5" "2.6"]'
	[ "$stderr" = "test_toml: error: V:1:8: expected ',' or ']' in the array" ]
	run -100 --separate-stderr kl_unit toml value V <<<'"a" x'
	[ "$stderr" = "test_toml: error: V:1:5: unexpected text after the value" ]
}

@test "toml: a missing file is an error, or nothing when allowed" {
	run -100 --separate-stderr kl_unit toml file "$BATS_TEST_TMPDIR/none.toml"
	[ -z "$output" ]
	[ "$stderr" = "test_toml: error: $BATS_TEST_TMPDIR/none.toml: open: No such file or directory" ]
	run -0 --separate-stderr kl_unit toml file-opt "$BATS_TEST_TMPDIR/none.toml"
	[ "$output" = null ]
}

@test "toml: a file over 1 MiB is refused" {
	head -c 1048577 /dev/zero | tr '\0' '#' >"$BATS_TEST_TMPDIR/big.toml"
	run -100 --separate-stderr kl_unit toml file "$BATS_TEST_TMPDIR/big.toml"
	[ "$stderr" = "test_toml: error: $BATS_TEST_TMPDIR/big.toml: larger than 1048576 bytes" ]
}

@test "toml: errors in a file name the file" {
	printf 'ok = 1\nbad = "x\n' >"$BATS_TEST_TMPDIR/f.toml"
	run -100 --separate-stderr kl_unit toml file "$BATS_TEST_TMPDIR/f.toml"
	[ -z "$output" ]
	[ "$stderr" = "test_toml: error: $BATS_TEST_TMPDIR/f.toml:2:9: newline in a single-line string" ]
}

# --- refused input: exact position and message, exit 100 --------------------

@test "toml bad: unterminated strings point at the opening quote" {
	parse_bad 'a = "abc' '1:5: unterminated string'
	parse_bad $'a = 1\nb = """\nabc\n' '2:5: unterminated string'
	parse_bad "a = 'abc" '1:5: unterminated string'
	parse_bad 'a = "ab\' '1:5: unterminated string'
}

@test "toml bad: a bare newline in a single-line string" {
	parse_bad $'a = "abc\nb = 1' '1:9: newline in a single-line string'
	parse_bad $'a = \'abc\r\n\'' '1:9: newline in a single-line string'
}

@test "toml bad: invalid escapes" {
	parse_bad 'a = "x\q"' '1:7: invalid escape sequence "\q"'
	parse_bad 'a = "\u12G4"' '1:6: \u escape needs 4 hex digits'
	parse_bad 'a = "\U0001F60"' '1:6: \U escape needs 8 hex digits'
	parse_bad 'a = "\uD800"' '1:6: escape "\uD800" is not a Unicode scalar value'
	parse_bad 'a = "\U00110000"' '1:6: escape "\U00110000" is not a Unicode scalar value'
	parse_bad 'a = "\u0000"' '1:6: escape "\u0000" (NUL) is not supported'
	parse_bad 'a = "\ x"' '1:6: invalid escape sequence'
	parse_bad $'a = """\\ x"""' '1:8: a backslash followed by blanks must end the line'
}

@test "toml bad: raw control characters in strings and comments" {
	parse_bad $'a = "x\x01y"' '1:7: control character U+0001 in a string'
	parse_bad $'a = \'\x7f\'' '1:6: control character U+007F in a string'
	parse_bad $'a = 1 # \x1b[0m' '1:9: control character U+001B in a comment'
	parse_bad $'a = """x\ry"""' '1:9: control character U+000D in a string'
}

@test "toml bad: invalid UTF-8" {
	parse_bad $'a = "\xc3("' '1:6: invalid UTF-8'
	parse_bad $'\n\n# \xed\xa0\x80' '3:3: invalid UTF-8'
}

@test "toml bad: duplicate key" {
	parse_bad $'a = 1\nb = 2\n  a = 3' '3:3: duplicate key "a"'
	parse_bad $'[t]\n"k" = 1\n\'k\' = 2' '3:1: duplicate key "k"'
	parse_bad $'[a.b]\n[a]\nb = 1' '3:1: duplicate key "b"'
}

@test "toml bad: duplicate table" {
	parse_bad $'[a]\nx = 1\n[b]\n[ a ]' '4:1: duplicate table [a]'
	parse_bad $'[a.b]\n[a."b"]' '2:1: duplicate table [a.b]'
}

@test "toml bad: a key redefined as a table" {
	parse_bad $'a = 1\n[a]' '2:1: table [a]: key "a" is already defined as a value'
	parse_bad $'[x]\ny = [1]\n[x.y.z]' '3:1: table [x.y.z]: key "y" is already defined as a value'
}

@test "toml bad: invalid integers" {
	parse_bad 'a = 012' '1:5: invalid integer "012"'
	parse_bad 'a = 1__0' '1:5: invalid integer "1__0"'
	parse_bad 'a = 1_' '1:5: invalid integer "1_"'
	parse_bad 'a = 0x' '1:5: invalid integer "0x"'
	parse_bad 'a = 0x_1' '1:5: invalid integer "0x_1"'
	parse_bad 'a = -0x1' '1:5: invalid integer "-0x1"'
	parse_bad 'a = 0b102' '1:5: invalid integer "0b102"'
	parse_bad 'a = 0o8' '1:5: invalid integer "0o8"'
	parse_bad 'a = 0X1' '1:5: invalid integer "0X1"'
	parse_bad 'a = 80abc' '1:5: invalid integer "80abc"'
	parse_bad 'a = +' '1:5: invalid integer "+"'
}

@test "toml bad: integer overflow" {
	parse_bad 'a = 9223372036854775808' '1:5: integer out of range: 9223372036854775808'
	parse_bad 'a = -9223372036854775809' '1:5: integer out of range: -9223372036854775809'
	parse_bad 'a = [1, 0x1_0000_0000_0000_0000]' '1:9: integer out of range: 0x1_0000_0000_0000_0000'
}

@test "toml bad: missing value" {
	parse_bad 'a =' '1:4: missing value'
	parse_bad $'a = \nb = 1' '1:5: missing value'
	parse_bad 'a = # nothing' '1:5: missing value'
}

@test "toml bad: garbage after a value or a header" {
	parse_bad 'a = 1 2' '1:7: unexpected text after the value'
	parse_bad 'a = "x"y' '1:8: unexpected text after the value'
	parse_bad 'a = [1] ]' '1:9: unexpected text after the value'
	parse_bad '[t] x = 1' '1:5: unexpected text after the table header'
}

@test "toml bad: unclosed or malformed arrays" {
	parse_bad $'a = [1, 2,\n  3' '1:5: unterminated array'
	parse_bad 'a = [[1]' '1:5: unterminated array'
	parse_bad 'a = [1 2]' '1:8: expected '"','"' or '"']'"' in the array'
	parse_bad 'a = [1,,2]' '1:8: expected a value'
	parse_bad 'a = [,]' '1:6: expected a value'
}

@test "toml bad: a key without '='" {
	parse_bad 'key' '1:4: expected '"'='"' after the key'
	parse_bad 'key value' '1:5: expected '"'='"' after the key'
	parse_bad 'a b = 1' '1:3: expected '"'='"' after the key'
}

@test "toml bad: invalid table headers" {
	parse_bad '[]' '1:2: expected a key'
	parse_bad '[a.]' '1:4: expected a key'
	parse_bad '[a b]' '1:4: expected '"'.'"' or '"']'"' in the table header'
	parse_bad '[agent' '1:7: expected '"'.'"' or '"']'"' in the table header'
	parse_bad '[a=1]' '1:3: expected '"'.'"' or '"']'"' in the table header'
}

@test "toml bad: a line that starts with neither a key nor a header" {
	parse_bad '= 1' '1:1: expected a key'
	parse_bad $'a = 1\n  @b = 2' '2:3: expected a key'
}

@test "toml bad: values that are not TOML (or not in kl's subset)" {
	parse_bad 'a = maybe' '1:5: invalid value "maybe" (strings need quotes)'
	parse_bad 'a = True' '1:5: invalid value "True" (strings need quotes)'
	parse_bad 'a = @' '1:5: expected a value'
	parse_bad 'a = 1.5' '1:5: floats are not supported'
	parse_bad 'a = 1e6' '1:5: floats are not supported'
	parse_bad 'a = -inf' '1:5: floats are not supported'
	parse_bad 'a = 1979-05-27' '1:5: dates and times are not supported'
	parse_bad 'a = 07:32:00' '1:5: dates and times are not supported'
	parse_bad 'a = { x = 1 }' '1:5: inline tables are not supported'
	parse_bad '[[a]]' '1:1: arrays of tables ([[...]]) are not supported'
	parse_bad 'a.b = 1' '1:1: dotted keys are not supported'
	parse_bad '"""k""" = 1' '1:1: a key cannot be a multi-line string'
	parse_bad "a = '''x''''''" '1:9: too many quotes in a row in a multi-line string'
}

@test "toml bad: arrays nested too deeply" {
	deep=$(printf '[%.0s' {1..40})
	parse_bad "a = $deep" '1:37: arrays nested deeper than 32 levels'
}

@test "toml bad: column counts characters, not bytes" {
	parse_bad '"é" = "ü" x' '1:11: unexpected text after the value'
}
