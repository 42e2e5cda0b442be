# tests/bats/helpers.bash - loaded by every .bats file: `load helpers`.
# Runs kl programs from $KL_BIN (scripts/run-tests sets it), optionally under
# valgrind (KL_WRAP=valgrind), and pulls in the swtpm and peer helpers.
bats_require_minimum_version 1.5.0

KL_TOP=${KL_TOP:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
KL_BUILD=${KL_BUILD:-$KL_TOP/build}
KL_BIN=${KL_BIN:-$KL_BUILD/bin}
KL_UNIT=${KL_UNIT:-$KL_BUILD/tests}
export KL_TOP KL_BUILD KL_BIN KL_UNIT
export PATH="$KL_BIN:$PATH"
# RUST_LOG sets kl's log level (upstream's knob): the caller's must not change what tests see.
unset RUST_LOG

# kl_no_caller_config: forget the caller's KEYLIME_AGENT_*, KEYLIME_AGENT_CONFIG
# and TCTI, so that only the test's configuration counts.
kl_no_caller_config() {
	local v
	unset KEYLIME_AGENT_CONFIG TCTI
	for v in $(compgen -e); do
		[[ $v == KEYLIME_AGENT_* ]] && unset "$v"
	done
	return 0
}

# kl_run PROG ARGS...: run a kl program (or a unit-test driver, by path).
kl_run() {
	local prog=$1
	shift
	[[ $prog == */* ]] || prog=$KL_BIN/$prog
	if [ "${KL_WRAP:-}" = valgrind ]; then
		valgrind -q --error-exitcode=97 --leak-check=full \
			--errors-for-leak-kinds=definite --show-leak-kinds=definite \
			"$prog" "$@"
	else
		"$prog" "$@"
	fi
}

# kl_unit NAME ARGS...: run the unit-test driver build/tests/test_NAME.
kl_unit() {
	local name=$1
	shift
	kl_run "$KL_UNIT/test_$name" "$@"
}

# kl_free_port [N]: a free loopback TCP port p such that p..p+N-1 are all free.
kl_free_port() {
	/usr/bin/python3 - "${1:-1}" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    p = random.randint(20000, 60000 - n)
    socks = []
    try:
        for i in range(n):
            s = socket.socket(); s.bind(("127.0.0.1", p + i)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    if len(socks) == n:
        print(p); sys.exit(0)
sys.exit(1)
PY
}

for _kl_lib in "$BATS_TEST_DIRNAME"/lib/*.bash; do
	[ -e "$_kl_lib" ] && . "$_kl_lib"
done
unset _kl_lib
