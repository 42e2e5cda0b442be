# tests/bats/lib/peers.bash - start, stop and drive the test registrar and verifier
# (tests/peers/*.py). Sourced by helpers.bash.
#
#   kl_start_registrar [DIR]        plain HTTP + HTTPS registrar; exports
#                                   KL_REGISTRAR_URL, KL_REGISTRAR_TLS_URL, KL_REGISTRAR_CTL
#   kl_start_verifier [DIR] [OPT..] HTTPS verifier (OPTs: --quote-interval 1, ...);
#                                   exports KL_VERIFIER_URL, KL_VERIFIER_CTL
#   kl_stop_peers                   stop every peer started by the functions above
#   kl_peer_ctl METHOD URL [JSON]   call a control URL; body on stdout, 1 unless 2xx
#   kl_enroll AGENT_ID [OPT..]      enroll at the verifier (see the function)
#   kl_verdicts AGENT_ID [--wait N] the verifier's view: status, attestations
#
# Both peers share one CA, made fresh per test file (KL_TEST_CA, with the server
# certificate for 127.0.0.1 and localhost). State, ports.json and logs are in
# DIR (default $BATS_FILE_TMPDIR/registrar or .../verifier). The processes close
# fd 3 and their pids are kept in KL_PEER_PIDFILES, so a setup_file start is
# stopped by kl_stop_peers in teardown_file.

KL_PEERS_DIR=${KL_PEERS_DIR:-$KL_TOP/tests/peers}
KL_PYTHON=${KL_PYTHON:-/usr/bin/python3}

_kl_peers_tmp() {
	local d=${BATS_FILE_TMPDIR:-${BATS_TMPDIR:-/tmp}}
	printf '%s\n' "$d"
}

# kl_peers_tls [DIR]: a CA and a server certificate (127.0.0.1, localhost) in
# DIR (default <tmp>/peers-tls), made once; exports KL_TEST_CA.
kl_peers_tls() {
	local dir=${1:-$(_kl_peers_tmp)/peers-tls}
	if [ ! -s "$dir/server.crt" ]; then
		mkdir -p "$dir" || return 1
		(
			cd "$dir" || exit 1
			umask 077
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout ca.key -out ca.crt -days 2 -subj "/CN=kl test CA" \
				-addext "basicConstraints=critical,CA:TRUE" \
				-addext "keyUsage=critical,keyCertSign,cRLSign" &&
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-keyout server.key -out server.csr -subj "/CN=127.0.0.1" &&
			printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
				"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
				"extendedKeyUsage=serverAuth" >server.ext &&
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
				-out server.crt -days 2 -extfile server.ext
		) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
		chmod 644 "$dir/ca.crt"
	fi
	export KL_TEST_CA=$dir/ca.crt KL_TEST_TLS_DIR=$dir
}

# _kl_peer_start NAME DIR ARGS...: run tests/peers/NAME.py, wait for ports.json.
_kl_peer_start() {
	local name=$1 dir=$2 pid i
	shift 2
	mkdir -p "$dir" || return 1
	rm -f "$dir/ports.json"
	"$KL_PYTHON" "$KL_PEERS_DIR/$name.py" --state "$dir" "$@" \
		</dev/null >"$dir/$name.out" 2>&1 3>&- &
	pid=$!
	echo "$pid" >"$dir/$name.started"
	KL_PEER_PIDFILES="${KL_PEER_PIDFILES:+$KL_PEER_PIDFILES }$dir/$name.started"
	export KL_PEER_PIDFILES
	for ((i = 0; i < 200; i++)); do
		[ -s "$dir/ports.json" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "kl_start_$name: $name.py exited:" >&2
			cat "$dir/$name.out" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "kl_start_$name: no $dir/ports.json after 10 s" >&2
	return 1
}

# _kl_ports DIR: the peer's ports.json as "http https control" (one jq).
_kl_ports() { jq -r '"\(.http) \(.https) \(.control)"' "$1/ports.json"; }

kl_start_registrar() {
	local dir=${1:-$(_kl_peers_tmp)/registrar}
	[ $# -gt 0 ] && shift
	kl_peers_tls "${KL_TEST_TLS_DIR:-}" || return 1
	_kl_peer_start registrar "$dir" --tls-cert "$KL_TEST_TLS_DIR/server.crt" \
		--tls-key "$KL_TEST_TLS_DIR/server.key" "$@" || return 1
	local http https control
	read -r http https control < <(_kl_ports "$dir") || return 1
	KL_REGISTRAR_DIR=$dir
	KL_REGISTRAR_URL=http://127.0.0.1:$http
	KL_REGISTRAR_TLS_URL=https://127.0.0.1:$https
	KL_REGISTRAR_CTL=http://127.0.0.1:$control
	export KL_REGISTRAR_DIR KL_REGISTRAR_URL KL_REGISTRAR_TLS_URL KL_REGISTRAR_CTL
}

kl_start_verifier() {
	local dir
	dir=$(_kl_peers_tmp)/verifier
	if [ $# -gt 0 ] && [[ $1 != -* ]]; then
		dir=$1
		shift
	fi
	kl_peers_tls "${KL_TEST_TLS_DIR:-}" || return 1
	_kl_peer_start verifier "$dir" --tls-cert "$KL_TEST_TLS_DIR/server.crt" \
		--tls-key "$KL_TEST_TLS_DIR/server.key" "$@" || return 1
	local http https control
	read -r http https control < <(_kl_ports "$dir") || return 1
	KL_VERIFIER_DIR=$dir
	KL_VERIFIER_URL=https://127.0.0.1:$https
	KL_VERIFIER_CTL=http://127.0.0.1:$control
	export KL_VERIFIER_DIR KL_VERIFIER_URL KL_VERIFIER_CTL
}

# kl_stop_peers: SIGTERM each started peer by its recorded pid, SIGKILL after 3 s.
kl_stop_peers() {
	local f pid i
	for f in ${KL_PEER_PIDFILES:-}; do
		[ -s "$f" ] || continue
		pid=$(cat "$f")
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
	KL_PEER_PIDFILES=
	export KL_PEER_PIDFILES
}

# kl_peer_ctl METHOD URL [JSON]: the body goes to stdout; status 1 unless 2xx.
# URL is a peer's control URL (http://127.0.0.1:PORT/PATH). The request is
# HTTP/1.0 over bash's /dev/tcp, not curl: the tests poll the control API
# ten times a second, and starting a curl cost ~5 ms of CPU a look.
kl_peer_ctl() {
	local LC_ALL=C	# ${#3}: the length in bytes
	local method=$1 hp=${2#http://} path fd status head
	path=/${hp#*/}
	[[ $hp == */* ]] || path=/
	hp=${hp%%/*}
	if ! { exec {fd}<>"/dev/tcp/${hp%:*}/${hp##*:}"; } 2>/dev/null; then
		echo "kl_peer_ctl: $method $2: cannot connect" >&2
		return 1
	fi
	head="$method $path HTTP/1.0"$'\r\n'"Host: $hp"$'\r\n'
	if [ $# -ge 3 ]; then
		head+="Content-Type: application/json"$'\r\n'"Content-Length: ${#3}"$'\r\n'
	fi
	printf '%s\r\n%s' "$head" "${3-}" >&"$fd"
	# The status line within 10 s, the headers, then the body to EOF: the
	# peer closes the connection after its reply (HTTP/1.0). The body goes
	# through cat: bash reads a socket a byte at a time (replies reach MBs).
	if ! IFS= read -r -t 10 status <&"$fd"; then
		exec {fd}>&-
		echo "kl_peer_ctl: $method $2: no reply within 10 s" >&2
		return 1
	fi
	while IFS= read -r -t 10 head <&"$fd" && [ "$head" != $'\r' ]; do :; done
	cat <&"$fd"
	exec {fd}>&-
	status=${status#HTTP/* }
	[[ ${status%% *} == 2?? ]]
}

# kl_passes AGENT_ID: the verifier's count of passes for AGENT_ID (0 when it
# has no record or does not answer). Tests poll it ten times a second, so it
# reads the number with a bash match instead of a jq (~20 ms of CPU each).
kl_passes() {
	local body
	body=$(kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$1" 2>/dev/null) || body=
	if [[ $body =~ \"attestation_count\":\ *([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo 0
	fi
}

# kl_enroll AGENT_ID [options]: enroll at the verifier like `tenant -c add --push-model`.
#   --aik B64              the AK (default: aik_tpm from the registrar's record)
#   --pcrs LIST            PCRs for the tpm_policy, read now from the TPM with
#                          tpm2_pcrread (TPM2TOOLS_TCTI); default 0,1,2,3,4,5,6,7;
#                          "" for no PCR values
#   --bank NAME            bank read for the policy (default sha256)
#   --tpm-policy JSON      the policy itself, instead of reading the TPM
#   --ima-permissive       runtime policy accepting any file (log still replayed)
#   --ima-allow JSON       {"/path": ["sha256hex", ...]}
#   --ima-policy JSON      the ima_policy object as the verifier takes it
#   --mb | --mb-replay     measured-boot policy (non-empty log | full replay)
#   --hash-algs a,b        accept_tpm_hash_algs     --sign-algs a,b  accept_tpm_signing_algs
#   --allow-ecc            accept ECC AKs with ecdsa (kl's ECC path)
#   --pop-own-scheme       accept a PoP proof signed with the AK's own scheme/hash
kl_enroll() {
	local id=$1 aik="" pcrs="0,1,2,3,4,5,6,7" bank=sha256 policy="" ima=null mb=null
	local hashes=null signs=null ecc=false own=false tmp vals
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--aik) aik=$2; shift ;;
		--pcrs) pcrs=$2; shift ;;
		--bank) bank=$2; shift ;;
		--tpm-policy) policy=$2; shift ;;
		--ima-permissive) ima='{"permissive": true}' ;;
		--ima-allow) ima="{\"allow\": $2}"; shift ;;
		--ima-policy) ima=$2; shift ;;
		--mb) mb=true ;;
		--mb-replay) mb='{"replay": true}' ;;
		--hash-algs) hashes=$(jq -cn --arg v "$2" '$v | split(",")'); shift ;;
		--sign-algs) signs=$(jq -cn --arg v "$2" '$v | split(",")'); shift ;;
		--allow-ecc) ecc=true ;;
		--pop-own-scheme) own=true ;;
		*) echo "kl_enroll: unknown option $1" >&2; return 2 ;;
		esac
		shift
	done
	# One jq builds the body (the AK from the registrar's record unless
	# given, the tpm_policy from the PCRs read now): tests enroll ~200 times.
	local reg='{}' body
	if [ -z "$aik" ]; then
		reg=$(kl_peer_ctl GET "$KL_REGISTRAR_CTL/agents/$id") || {
			echo "kl_enroll: agent $id is not registered" >&2
			return 1
		}
	fi
	vals=
	if [ -z "$policy" ] && [ -n "$pcrs" ]; then
		tmp=$(mktemp) || return 1
		tpm2_pcrread "$bank:$pcrs" -o "$tmp" >/dev/null || { rm -f "$tmp"; return 1; }
		vals=$(xxd -p "$tmp" | tr -d '\n')
		rm -f "$tmp"
	fi
	# tpm2_pcrread -o writes the values in ascending PCR order, back to back.
	body=$(jq -cn --arg id "$id" --arg aik "$aik" --argjson reg "$reg" \
		--arg policy "$policy" --arg pcrs "$pcrs" --arg vals "$vals" \
		--argjson ima "$ima" --argjson mb "$mb" \
		--argjson h "$hashes" --argjson s "$signs" --argjson ecc "$ecc" --argjson own "$own" '
		(if $aik != "" then $aik
		 else ($reg.aik_tpm // error("agent \($id) has no aik_tpm at the registrar")) end) as $k
		| (if $policy != "" then $policy | fromjson
		   else ($pcrs | split(",") | map(select(. != "") | tonumber) | sort | map(tostring)) as $p
		   | if ($p | length) == 0 then {} else
		     (($vals | length) / ($p | length)) as $n
		     | [range(0; $p | length) as $i
		        | {key: $p[$i], value: [$vals[$i * $n:($i + 1) * $n]]}] | from_entries end
		   end) as $tp
		| {agent_id: $id, aik_tpm: $k, tpm_policy: $tp, ima_policy: $ima, mb_policy: $mb,
		   allow_ecc: $ecc}
		  + (if $own then {pop_own_scheme: true} else {} end)
		  + (if $h then {accept_tpm_hash_algs: $h} else {} end)
		  + (if $s then {accept_tpm_signing_algs: $s} else {} end)') || {
		echo "kl_enroll: no enrollment body for $id" >&2
		return 1
	}
	kl_peer_ctl POST "$KL_VERIFIER_CTL/enroll" "$body" >/dev/null
}

# kl_verdicts AGENT_ID [--wait N] [--timeout S]: the verifier's control view of
# the agent (status, attestation_count, attestations[] with evaluation,
# failure_reason, failures, starting_offset, ima_entries, received). With
# --wait, first poll until N attestations have been verified.
kl_verdicts() {
	local id=$1 want=0 timeout=10 out i
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--wait) want=$2; shift ;;
		--timeout) timeout=$2; shift ;;
		*) echo "kl_verdicts: unknown option $1" >&2; return 2 ;;
		esac
		shift
	done
	for ((i = 0; i <= timeout * 20; i++)); do
		out=$(kl_peer_ctl GET "$KL_VERIFIER_CTL/agents/$id") || return 1
		if [ "$(jq '[.attestations[] | select(.stage == "verification_complete")] | length' \
			<<<"$out")" -ge "$want" ]; then
			printf '%s\n' "$out"
			return 0
		fi
		sleep 0.05
	done
	printf '%s\n' "$out"
	echo "kl_verdicts: fewer than $want verified attestations for $id after ${timeout}s" >&2
	return 1
}
