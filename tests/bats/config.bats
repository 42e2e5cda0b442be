#!/usr/bin/env bats
# tests/bats/config.bats - lib/kl_config through build/tests/test_config, which
# prints the resolved configuration as JSON (tpm_ownerpassword only as "<set>").
load helpers

FIX="$BATS_TEST_DIRNAME/fixtures/config"
USAGE="usage: test_config [--flag] [--extra X] [options]"

setup() {
	ETC="$BATS_TEST_TMPDIR/etc"
	mkdir -p "$ETC"
	export KL_SYSCONFDIR="$ETC"
	# Nothing from the caller's environment may leak in.
	unset KEYLIME_AGENT_CONFIG KEYLIME_DIR TCTI
	local v
	for v in $(compgen -e); do
		[[ $v == KEYLIME_AGENT_* ]] && unset "$v"
	done
	return 0
}

# cfg ARGS...: load the configuration, expect exit 0 and no stderr.
cfg() {
	run -0 --separate-stderr kl_unit config "$@"
	if [ -n "$stderr" ]; then
		printf 'unexpected stderr: %s\n' "$stderr"
		return 1
	fi
}

# val FILTER: a jq filter over the last output, compact.
val() {
	jq -c "$1" <<<"$output"
}

# cfg_fails "LINE" ARGS...: exit 100, empty stdout, stderr exactly LINE.
cfg_fails() {
	local want=$1
	shift
	run -100 --separate-stderr kl_unit config "$@"
	[ -z "$output" ]
	if [ "$stderr" != "$want" ]; then
		printf 'got:  %s\nwant: %s\n' "$stderr" "$want"
		return 1
	fi
}

@test "config: defaults, with no agent.conf at all" {
	cfg
	diff <(jq -S . <<<"$output") "$FIX/defaults.json"
	[ "$(val .resolved.registrar_url)" = '"http://127.0.0.1:8890"' ]
	[ "$(val .resolved.verifier_ca)" = '"/var/lib/keylime/cv_ca/cacert.crt"' ]
	[ "$(val .resolved.tcti)" = '"device:/dev/tpmrm0"' ]
}

# --- precedence: one test per layer -----------------------------------------

@test "config: agent.conf overrides a default" {
	printf '[agent]\nregistrar_port = 1111\nuuid = "file"\n' >"$ETC/agent.conf"
	cfg
	[ "$(val .registrar_port)" = 1111 ]
	[ "$(val .uuid)" = '"file"' ]
}

@test "config: a symlinked agent.conf (Kubernetes ConfigMap layout) is followed" {
	mkdir -p "$ETC/..2026_11_30" "$ETC/agent.conf.d"
	printf '[agent]\nregistrar_port = 1111\n' >"$ETC/..2026_11_30/agent.conf"
	printf '[agent]\nuuid = "dropin"\n' >"$ETC/..2026_11_30/10.conf"
	ln -s ..2026_11_30 "$ETC/..data"
	ln -s ..data/agent.conf "$ETC/agent.conf"
	ln -s ../..data/10.conf "$ETC/agent.conf.d/10.conf"
	cfg
	[ "$(val .registrar_port)" = 1111 ]
	[ "$(val .uuid)" = '"dropin"' ]
}

@test "config: a symlink loop is named as one; a FIFO is refused at once, not waited on" {
	ln -s agent.conf "$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf: a symbolic link loop"
	rm "$ETC/agent.conf"
	mkfifo "$ETC/agent.conf"
	run -100 --separate-stderr timeout 5 "$KL_UNIT/test_config"
	[ "$stderr" = "test_config: error: $ETC/agent.conf: not a regular file" ]
}

@test "config: a drop-in overrides agent.conf, key by key" {
	printf '[agent]\nregistrar_port = 1111\nuuid = "file"\n' >"$ETC/agent.conf"
	mkdir "$ETC/agent.conf.d"
	printf '[agent]\nregistrar_port = 2222\n' >"$ETC/agent.conf.d/10-port.conf"
	cfg
	[ "$(val .registrar_port)" = 2222 ]
	[ "$(val .uuid)" = '"file"' ]
}

@test "config: KEYLIME_AGENT_<KEY> overrides the drop-ins" {
	printf '[agent]\nregistrar_port = 1111\n' >"$ETC/agent.conf"
	mkdir "$ETC/agent.conf.d"
	printf '[agent]\nregistrar_port = 2222\ncontact_port = 2223\n' >"$ETC/agent.conf.d/10-port.conf"
	KEYLIME_AGENT_REGISTRAR_PORT=3333 cfg
	[ "$(val .registrar_port)" = 3333 ]
	[ "$(val .contact_port)" = 2223 ]
}

@test "config: a flag overrides the environment" {
	printf '[agent]\nattestation_interval_seconds = 3\nverifier_url = "https://file"\n' >"$ETC/agent.conf"
	KEYLIME_AGENT_ATTESTATION_INTERVAL_SECONDS=5 KEYLIME_AGENT_VERIFIER_URL=https://env \
		cfg --attestation-interval-seconds 7 --verifier-url https://flag:8881
	[ "$(val .attestation_interval_seconds)" = 7 ]
	[ "$(val .verifier_url)" = '"https://flag:8881"' ]
}

@test "config: drop-ins are read in strcmp order, only *.conf" {
	mkdir "$ETC/agent.conf.d"
	d=$ETC/agent.conf.d
	for f in 09-c 10-a 2-b Z a; do
		printf '[agent]\nuuid = "%s"\n' "$f" >"$d/$f.conf"
	done
	# 10-a sorts before 2-b with strcmp (not with a version sort)
	printf 'registrar_ip = "10-a"\n' >>"$d/10-a.conf"
	printf '[agent]\nregistrar_ip = "2-b"\n' >"$d/2-b.conf"
	# not *.conf, or hidden: never read (they would not even parse)
	echo 'not toml' >"$d/zz.conf.bak"
	echo 'not toml' >"$d/zz.txt"
	echo 'not toml' >"$d/.zz.conf"
	cfg
	[ "$(val .uuid)" = '"a"' ]
	[ "$(val .registrar_ip)" = '"2-b"' ]
}

@test "config: KEYLIME_AGENT_CONFIG replaces agent.conf and the drop-ins" {
	printf '[agent]\nuuid = "file"\nregistrar_port = 1111\n' >"$ETC/agent.conf"
	mkdir "$ETC/agent.conf.d"
	printf '[agent]\ncontact_port = 2222\n' >"$ETC/agent.conf.d/a.conf"
	printf '[agent]\nregistrar_ip = "10.0.0.1"\n' >"$BATS_TEST_TMPDIR/one.conf"
	KEYLIME_AGENT_CONFIG=$BATS_TEST_TMPDIR/one.conf cfg
	[ "$(val .registrar_ip)" = '"10.0.0.1"' ]
	[ "$(val .uuid)" = '"d432fbb3-d2f1-4a97-9ef7-75bd81c00000"' ]
	[ "$(val .registrar_port)" = 8890 ]
	[ "$(val .contact_port)" = 9002 ]
}

@test "config: KEYLIME_AGENT_CONFIG naming a missing file is an error" {
	KEYLIME_AGENT_CONFIG=$BATS_TEST_TMPDIR/none.conf cfg_fails \
		"test_config: error: $BATS_TEST_TMPDIR/none.conf: open: No such file or directory"
}

@test "config: KEYLIME_DIR beats keylime_dir from the file and KEYLIME_AGENT_KEYLIME_DIR" {
	printf '[agent]\nkeylime_dir = "/from/file"\nagent_data_path = "data/ad.json"\n' >"$ETC/agent.conf"
	KEYLIME_AGENT_KEYLIME_DIR=/from/env KEYLIME_DIR=/kl cfg
	[ "$(val .keylime_dir)" = '"/kl"' ]
	[ "$(val .resolved.agent_data)" = '"/kl/data/ad.json"' ]
	[ "$(val .resolved.verifier_ca)" = '"/kl/cv_ca/cacert.crt"' ]
	[ "$(val .resolved.status_path)" = '"/kl/kl-status.json"' ]
	# an empty KEYLIME_DIR does not count
	KEYLIME_AGENT_KEYLIME_DIR=/from/env KEYLIME_DIR= cfg
	[ "$(val .keylime_dir)" = '"/from/env"' ]
}

@test "config: paths: default, empty, relative to keylime_dir, absolute" {
	cat >"$ETC/agent.conf" <<-'EOF'
	[agent]
	keylime_dir = "/k/"
	verifier_tls_ca_cert = "/etc/ca.pem"
	registrar_tls_ca_cert = ""
	agent_data_path = "sub/ad.json"
	status_path = "default"
	ima_ml_path = "tmp/ima"
	measuredboot_ml_path = "default"
	EOF
	cfg
	[ "$(val .resolved.verifier_ca)" = '"/etc/ca.pem"' ]
	[ "$(val .resolved.registrar_ca)" = '"/k/cv_ca/cacert.crt"' ]
	[ "$(val .resolved.agent_data)" = '"/k/sub/ad.json"' ]
	[ "$(val .resolved.status_path)" = '"/k/kl-status.json"' ]
	# log paths as upstream: relative to "/", "default" is the kernel's
	[ "$(val .ima_ml_path)" = '"/tmp/ima"' ]
	[ "$(val .measuredboot_ml_path)" = '"/sys/kernel/security/tpm0/binary_bios_measurements"' ]
}

@test "config: an empty keylime_dir means the default" {
	printf '[agent]\nkeylime_dir = ""\n' >"$ETC/agent.conf"
	cfg
	[ "$(val .keylime_dir)" = '"/var/lib/keylime"' ]
}

@test "config: upstream's agent.conf with all its pull-only keys loads silently" {
	cp "$FIX/upstream-agent.conf" "$ETC/agent.conf"
	cfg
	[ "$(val .run_as)" = '"keylime:tss"' ]
	[ "$(val .ek_handle)" = '""' ]		# "generate" -> create one
	[ "$(val .ima_ml_path)" = '"/sys/kernel/security/ima/ascii_runtime_measurements"' ]
	[ "$(val .registrar_api_versions)" = '"default"' ]
	[ "$(val .attestation_interval_seconds)" = 60 ]
}

@test "config: unknown keys are warned about with file:line:column, other tables ignored" {
	cat >"$ETC/agent.conf" <<-'EOF'
	uuid = "outside"
	[agent]
	registrar_port = 1234
	  colour = "blue"
	[agent.sub]
	x = 1
	[other]
	whatever = 1
	EOF
	run -0 --separate-stderr kl_unit config
	[ "$(val .registrar_port)" = 1234 ]
	[ "$(val .uuid)" = '"d432fbb3-d2f1-4a97-9ef7-75bd81c00000"' ]
	[ "${stderr_lines[0]}" = "test_config: warning: $ETC/agent.conf:1:1: key \"uuid\" is outside the [agent] table: ignored" ]
	[ "${stderr_lines[1]}" = "test_config: warning: $ETC/agent.conf:4:3: unknown key \"colour\" in [agent]: ignored" ]
	[ "${stderr_lines[2]}" = "test_config: warning: $ETC/agent.conf: unknown table [agent.sub]: ignored" ]
	[ "${#stderr_lines[@]}" -eq 3 ]
}

@test "config: a TOML error in a drop-in stops with file:line:column" {
	mkdir "$ETC/agent.conf.d"
	printf '[agent]\n\nuuid = "x\n' >"$ETC/agent.conf.d/50-bad.conf"
	cfg_fails "test_config: error: $ETC/agent.conf.d/50-bad.conf:3:10: newline in a single-line string"
}

# --- types --------------------------------------------------------------------

@test "config: bad types in a file: file:line:column of the value" {
	printf '[agent]\nregistrar_port = "8890"\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:18: registrar_port: expected an integer, not a string"
	printf '[agent]\nuuid = 12\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:8: uuid: expected a string, not an integer"
	printf '[agent]\nregistrar_tls_enabled = "true"\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:25: registrar_tls_enabled: expected true or false, not a string"
	printf '[agent]\nregistrar_api_versions = ["2.5", 3]\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:26: registrar_api_versions: expected a string or a non-empty array of strings"
	printf '[agent]\nverifier_url = ["a"]\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:16: verifier_url: expected a string, not an array"
}

@test "config: out-of-range numbers in a file" {
	printf '[agent]\nregistrar_port = -1\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:18: registrar_port: must be between 1 and 65535, not -1"
	printf '[agent]\ncontact_port = 65536\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:16: contact_port: must be between 1 and 65535, not 65536"
	printf '[agent]\nattestation_interval_seconds = 0\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:32: attestation_interval_seconds: must be between 1 and 2147483647, not 0"
	printf '[agent]\nexponential_backoff_max_retries = -3\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:35: exponential_backoff_max_retries: must be between 0 and 2147483647, not -3"
}

@test "config: environment values are typed like file values" {
	KEYLIME_AGENT_REGISTRAR_TLS_ENABLED=true KEYLIME_AGENT_TLS_ACCEPT_INVALID_CERTS=false \
	KEYLIME_AGENT_REGISTRAR_TLS_PORT=+443 KEYLIME_AGENT_RUN_AS=" keylime " \
	KEYLIME_AGENT_REGISTRAR_IP=::1 cfg
	[ "$(val .registrar_tls_enabled)" = true ]
	[ "$(val .registrar_tls_port)" = 443 ]
	[ "$(val .run_as)" = '" keylime "' ]
	[ "$(val .resolved.registrar_url)" = '"https://[::1]:443"' ]
}

@test "config: bad environment values name the variable" {
	KEYLIME_AGENT_REGISTRAR_PORT=80x cfg_fails \
		'test_config: error: KEYLIME_AGENT_REGISTRAR_PORT: expected an integer, not "80x"'
	KEYLIME_AGENT_REGISTRAR_PORT=" 80" cfg_fails \
		'test_config: error: KEYLIME_AGENT_REGISTRAR_PORT: expected an integer, not " 80"'
	KEYLIME_AGENT_CONTACT_PORT=0 cfg_fails \
		'test_config: error: KEYLIME_AGENT_CONTACT_PORT: must be between 1 and 65535, not 0'
	KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_DELAY=99999999999999999999 cfg_fails \
		'test_config: error: KEYLIME_AGENT_EXPONENTIAL_BACKOFF_MAX_DELAY: expected an integer, not "99999999999999999999"'
	KEYLIME_AGENT_REGISTRAR_TLS_ENABLED=yes cfg_fails \
		'test_config: error: KEYLIME_AGENT_REGISTRAR_TLS_ENABLED: expected true or false, not "yes"'
	KEYLIME_AGENT_REGISTRAR_API_VERSIONS='["2.5" 2.6]' cfg_fails \
		"test_config: error: KEYLIME_AGENT_REGISTRAR_API_VERSIONS:1:8: expected ',' or ']' in the array"
}

@test "config: registrar_api_versions from a file array, an env list or an env array" {
	printf '[agent]\nregistrar_api_versions = [\n  "2.5",\n  "2.6",\n]\n' >"$ETC/agent.conf"
	cfg
	[ "$(val .registrar_api_versions)" = '"2.5,2.6"' ]
	KEYLIME_AGENT_REGISTRAR_API_VERSIONS="2.1, 2.2" cfg
	[ "$(val .registrar_api_versions)" = '"2.1, 2.2"' ]
	KEYLIME_AGENT_REGISTRAR_API_VERSIONS=' ["2.3", '"'2.4'"']' cfg
	[ "$(val .registrar_api_versions)" = '"2.3,2.4"' ]
}

# --- flags --------------------------------------------------------------------

@test "config: every upstream flag and kl's own, and the program's own" {
	cd "$BATS_TEST_TMPDIR"
	# (-v twice: debug lines on stderr)
	run -0 --separate-stderr kl_unit config \
		--verifier-url https://v:1 --registrar-url http://r:2 --agent-identifier id-1 \
		--attestation-interval-seconds 9 --ca-certificate ca/v.pem --api-version 3.0 \
		--timeout 1500 --insecure --avoid-tpm --tcti swtpm:port=1 --flag \
		-v --verbose --extra x
	[ "$(val '[.verifier_url, .registrar_url, .uuid, .attestation_interval_seconds]')" = \
		'["https://v:1","http://r:2","id-1",9]' ]
	[ "$(val .verifier_tls_ca_cert)" = "\"$BATS_TEST_TMPDIR/ca/v.pem\"" ]
	[ "$(val '[.api_version, .resolved.api_prefix, .timeout_ms]')" = '["3.0","/v3.0",1500]' ]
	[ "$(val '[.insecure, .avoid_tpm, .flag]')" = '[true,true,true]' ]
	[ "$(val '[.tcti, .resolved.tcti, .verbose, .kl_verbose, .extra]')" = \
		'["swtpm:port=1","swtpm:port=1",2,2,"x"]' ]
	[ "$(val .resolved.registrar_url)" = '"http://r:2"' ]
}

@test "config: --api-version keeps what the user asked for" {
	cfg --api-version v3
	[ "$(val .resolved.api_prefix)" = '"/v3"' ]
	cfg --api-version v3.0
	[ "$(val .resolved.api_prefix)" = '"/v3.0"' ]
	cfg --api-version /v3.1
	[ "$(val .resolved.api_prefix)" = '"/v3.1"' ]
}

@test "config: an unknown flag is a usage error" {
	cfg_fails "test_config: error: unknown option \"--bogus\"
$USAGE" --bogus
	cfg_fails "test_config: error: unknown option \"-x\"
$USAGE" -x
}

@test "config: bad flag values are usage errors" {
	cfg_fails "test_config: error: --timeout: expected a positive integer, not \"5s\"
$USAGE" --timeout 5s
	cfg_fails "test_config: error: --timeout: expected a positive integer, not \"0\"
$USAGE" --timeout 0
	cfg_fails "test_config: error: --attestation-interval-seconds: expected a positive integer, not \"-1\"
$USAGE" --attestation-interval-seconds -1
	cfg_fails "test_config: error: --api-version: expected a version like v3.0, not \"latest\"
$USAGE" --api-version latest
	cfg_fails "test_config: error: option \"--timeout\" needs a value
$USAGE" --timeout
	cfg_fails "test_config: error: unexpected argument \"stray\"
$USAGE" --insecure stray
	cfg_fails "test_config: error: --extra: expected anything but \"bad\", not \"bad\"
$USAGE" --extra bad
}

@test "config: upstream's test-only flags are accepted and ignored with a warning" {
	run -0 --separate-stderr kl_unit config --json-file j --attestation-index 1 \
		--session-index 2 --message-type Attestation --method POST
	[ "$(val .verifier_url)" = '"https://localhost:8881"' ]
	for f in json-file attestation-index session-index message-type method; do
		grep -qxF "test_config: warning: --$f: ignored (kept for compatibility with keylime_push_model_agent)" <<<"$stderr"
	done
	[ "${#stderr_lines[@]}" -eq 5 ]
}

@test "config: -h prints usage and help on stdout, before reading any file" {
	echo 'broken = ' >"$ETC/agent.conf"
	run -0 --separate-stderr kl_unit config -h
	[ "${lines[0]}" = "$USAGE" ]
	grep -q -- '--verifier-url URL' <<<"$output"
	[ -z "$stderr" ]
}

@test "config: flags are checked before the files" {
	echo 'broken = ' >"$ETC/agent.conf"
	cfg_fails "test_config: error: unknown option \"--bogus\"
$USAGE" --bogus
}

# --- derived values -----------------------------------------------------------

@test "config: registrar URL from ip, port and TLS; --registrar-url wins" {
	printf '[agent]\nregistrar_ip = "fe80::1"\nregistrar_port = 8000\n' >"$ETC/agent.conf"
	cfg
	[ "$(val .resolved.registrar_url)" = '"http://[fe80::1]:8000"' ]
	printf '[agent]\nregistrar_ip = "reg.example"\nregistrar_tls_enabled = true\n' >"$ETC/agent.conf"
	cfg
	[ "$(val .resolved.registrar_url)" = '"https://reg.example:8891"' ]
	cfg --registrar-url http://other:1
	[ "$(val .resolved.registrar_url)" = '"http://other:1"' ]
}

@test "config: TCTI: --tcti, then KEYLIME_AGENT_TCTI, then TCTI, then the default" {
	TCTI=mssim:port=1 cfg
	[ "$(val '[.tcti, .resolved.tcti]')" = '["","mssim:port=1"]' ]
	TCTI=mssim:port=1 KEYLIME_AGENT_TCTI=swtpm:port=2 cfg
	[ "$(val .resolved.tcti)" = '"swtpm:port=2"' ]
	TCTI=mssim:port=1 KEYLIME_AGENT_TCTI=swtpm:port=2 cfg --tcti device:/dev/tpm0
	[ "$(val .resolved.tcti)" = '"device:/dev/tpm0"' ]
}

# --- secrets --------------------------------------------------------------------

@test "config: tpm_ownerpassword is never printed, even with -vv" {
	printf '[agent]\ntpm_ownerpassword = "hex:c0ffee5ec2e7"\n' >"$ETC/agent.conf"
	run -0 --separate-stderr kl_unit config -vv
	[ "$(val .tpm_ownerpassword)" = '"<set>"' ]
	grep -qF 'config: tpm_ownerpassword = <secret>' <<<"$stderr"
	[[ $output$stderr != *c0ffee* ]]
	KEYLIME_AGENT_TPM_OWNERPASSWORD=s3cr3t-env run -0 --separate-stderr kl_unit config -vv
	[ "$(val .tpm_ownerpassword)" = '"<set>"' ]
	[[ $output$stderr != *s3cr3t* ]]
}

@test "config: a wrongly typed tpm_ownerpassword error does not show a value" {
	printf '[agent]\ntpm_ownerpassword = 123456\n' >"$ETC/agent.conf"
	cfg_fails "test_config: error: $ETC/agent.conf:2:21: tpm_ownerpassword: expected a string, not an integer"
}
