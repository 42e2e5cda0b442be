#!/usr/bin/env bats
# Proxies from the environment are used as curl uses them (HTTPS_PROXY through
# CONNECT, NO_PROXY), unless agent.conf says proxy_from_env = false. The proxy
# (fixtures/proxy/connect.py) logs every tunnel it opens.
load helpers
load fixtures/e2e/steps

setup_file() {
	file_start
	PROXY_DIR=$BATS_FILE_TMPDIR/proxy
	mkdir -p "$PROXY_DIR"
	"$KL_PYTHON" "$KL_TOP/tests/bats/fixtures/proxy/connect.py" "$PROXY_DIR" \
		</dev/null >"$PROXY_DIR/out" 2>&1 3>&- &
	echo $! >"$PROXY_DIR/pid"
	for ((i = 0; i < 100; i++)); do
		[ -s "$PROXY_DIR/port" ] && break
		sleep 0.05
	done
	export PROXY_DIR PROXY_URL=http://127.0.0.1:$(cat "$PROXY_DIR/port")
}

teardown_file() {
	[ -s "$PROXY_DIR/pid" ] && kill "$(cat "$PROXY_DIR/pid")" 2>/dev/null
	file_stop
}

setup() {
	file_use
	unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy NO_PROXY no_proxy
	VERIFIER=${KL_VERIFIER_URL#https://}
	: >"$PROXY_DIR/log"
}

# session: kl-session on the file's registered agent; a fresh token each time
# (the token kl-session keeps in keylime_dir is dropped, so it must connect).
session() {
	rm -f "$KDIR/kl-session.json"
	kl_run kl-session <"$D/reg.json" >"$BATS_TEST_TMPDIR/ses.json"
}

@test "proxy: HTTPS_PROXY: kl-session reaches the verifier through a CONNECT tunnel" {
	HTTPS_PROXY=$PROXY_URL session
	jq -e '.session.token | length > 0' "$BATS_TEST_TMPDIR/ses.json"
	# POST and PATCH of the session: at least one tunnel, each to the verifier.
	grep -qx "CONNECT $VERIFIER" "$PROXY_DIR/log"
	run -1 grep -vx "CONNECT $VERIFIER" "$PROXY_DIR/log"
	# The lower-case name works as well (curl takes both).
	: >"$PROXY_DIR/log"
	https_proxy=$PROXY_URL session
	grep -qx "CONNECT $VERIFIER" "$PROXY_DIR/log"
}

@test "proxy: proxy_from_env = false connects directly" {
	cp "$D/agent.conf" "$BATS_TEST_TMPDIR/agent.conf"
	echo "proxy_from_env = false" >>"$BATS_TEST_TMPDIR/agent.conf"
	HTTPS_PROXY=$PROXY_URL KEYLIME_AGENT_CONFIG=$BATS_TEST_TMPDIR/agent.conf session
	jq -e '.session.token | length > 0' "$BATS_TEST_TMPDIR/ses.json"
	[ ! -s "$PROXY_DIR/log" ]
	HTTPS_PROXY=$PROXY_URL KEYLIME_AGENT_PROXY_FROM_ENV=false session
	[ ! -s "$PROXY_DIR/log" ]
	# The key is what turned the proxy off: true goes through it again.
	HTTPS_PROXY=$PROXY_URL KEYLIME_AGENT_PROXY_FROM_ENV=true session
	grep -qx "CONNECT $VERIFIER" "$PROXY_DIR/log"
}

@test "proxy: NO_PROXY naming the verifier's host connects directly" {
	HTTPS_PROXY=$PROXY_URL NO_PROXY=127.0.0.1 session
	jq -e '.session.token | length > 0' "$BATS_TEST_TMPDIR/ses.json"
	[ ! -s "$PROXY_DIR/log" ]
}

@test "proxy: a proxy that refuses the tunnel is a temporary failure, not a silent direct connection" {
	# Port 1 on loopback: nothing listens, so the proxy cannot be reached.
	rm -f "$KDIR/kl-session.json"
	HTTPS_PROXY=http://127.0.0.1:1 run -111 --separate-stderr kl_run kl-session <"$D/reg.json"
	[ -z "$output" ]
	[[ $stderr == "kl-session: error: POST $KL_VERIFIER_URL/v3.0/sessions: "* ]]
}
