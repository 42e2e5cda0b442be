#!/usr/bin/env bats
# tests/bats/faults-tls.bats - the fault matrix (issue 9), fail closed: a
# verifier behind a certificate of the wrong CA, for the wrong name, expired;
# a server that speaks only TLS 1.1.
# kl-agent runs as a daemon: while the fault lasts no request reaches the
# server (no token, no evidence) and nothing passes; every state file stays
# valid; once agent.conf is put right and HUP sent, a pass within two
# intervals (tests/faults/faults.bash).
load helpers
load ../faults/faults

# Beside the file's verifier, three that a client must refuse (their own
# directories, ports and control APIs; their pids go to teardown_file).
setup_file() {
	faults_setup_file
	local main=("$KL_VERIFIER_DIR" "$KL_VERIFIER_URL" "$KL_VERIFIER_CTL") v
	d=$BATS_FILE_TMPDIR/bad
	mkdir -p "$d"
	/usr/bin/python3 "$KL_TOP/tests/faults/certs.py" "$KL_TEST_CA" \
		"$KL_TEST_TLS_DIR/ca.key" "$d"
	(cd "$d" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout other-ca.key -out other-ca.crt -days 2 -subj "/CN=another CA") 2>/dev/null
	for v in wrongname expired; do
		kl_start_verifier "$d/$v" --tls-cert "$d/$v.crt" --tls-key "$d/$v.key" 3>&-
		echo "$KL_VERIFIER_URL $KL_VERIFIER_CTL" >"$d/$v.urls"
	done
	kl_start_verifier "$d/tls11" --tls-max-version 1.1 3>&-
	echo "$KL_VERIFIER_URL $KL_VERIFIER_CTL" >"$d/tls11.urls"
	export KL_VERIFIER_DIR=${main[0]} KL_VERIFIER_URL=${main[1]} KL_VERIFIER_CTL=${main[2]}
}

# bad_server NAME: BAD_URL, BAD_CTL of one of the verifiers above.
bad_server() { read -r BAD_URL BAD_CTL <"$BATS_FILE_TMPDIR/bad/$1.urls"; }

# nreq_at CTL: how many verifier API requests (/v3...) that peer has recorded.
nreq_at() { kl_peer_ctl GET "$1/requests?path=^/v3" | jq length; }

# refused KEY VALUE [CTL]: with agent.conf so, kl-agent gets
# nowhere for 3 s (no request at the peer behind CTL, default the file's
# verifier), then agent.conf is put right, HUP, and a pass within two
# intervals.
refused() {
	local ctl=${3:-$KL_VERIFIER_CTL} good_url=$KL_VERIFIER_URL
	enroll
	kl_peer_ctl DELETE "$ctl/requests" >/dev/null
	set_conf "$1" "$2"
	start_agent
	sleep 0.5
	fails_during 3
	[ "$(nreq_at "$ctl")" = 0 ]
	jq -e '.consecutive_failures >= 1 and .last_success == null' "$KDIR/kl-status.json" >/dev/null
	set_conf verifier_url "\"$good_url\""
	set_conf verifier_tls_ca_cert "\"$KL_TEST_CA\""
	kill -HUP "$AGENT_PID"
	pass_after_clear
	stop_agent
}

@test "faults (fail closed): a verifier certificate of another CA" {
	refused verifier_tls_ca_cert "\"$BATS_FILE_TMPDIR/bad/other-ca.crt\""
	grep -qi "certificate" "$T/agent.err"
}

@test "faults (fail closed): a verifier certificate for another name" {
	bad_server wrongname
	# The server works: only the name is wrong.
	curl -sS -o /dev/null --cacert "$KL_TEST_CA" --resolve "wrong.example:${BAD_URL##*:}:127.0.0.1" \
		"https://wrong.example:${BAD_URL##*:}/"
	refused verifier_url "\"$BAD_URL\"" "$BAD_CTL"
	grep -qi "certificate\|name" "$T/agent.err"
}

@test "faults (fail closed): an expired verifier certificate" {
	bad_server expired
	run ! curl -sS -o /dev/null --cacert "$KL_TEST_CA" "$BAD_URL/"
	[[ $output == *expired* ]]
	refused verifier_url "\"$BAD_URL\"" "$BAD_CTL"
	grep -qi "expired" "$T/agent.err"
}

@test "faults (fail closed): a verifier that speaks only TLS 1.1" {
	bad_server tls11
	# It does speak TLS 1.1 to a client that allows it.
	echo | openssl s_client -connect "127.0.0.1:${BAD_URL##*:}" -tls1_1 \
		-cipher 'DEFAULT:@SECLEVEL=0' 2>&1 | grep -q "Protocol *: TLSv1.1"
	refused verifier_url "\"$BAD_URL\"" "$BAD_CTL"
	grep -qi "version\|protocol" "$T/agent.err"
}
