# tests/bats/lib/swtpm.bash - a manufactured swtpm per test file or test
# (scripts/swtpm does the work). Sourced by helpers.bash.
#
#   setup_file()    { kl_start_swtpm; }        # or in setup(), or in a test
#   teardown_file() { kl_stop_swtpm; }
#
# kl_start_swtpm [--ecc] [--banks sha256,sha384] [--port P]
#   starts a TPM in a new directory under $BATS_TEST_TMPDIR (in a test or
#   setup) or $BATS_FILE_TMPDIR (in setup_file) and exports
#     TCTI, TPM2TOOLS_TCTI   "swtpm:host=127.0.0.1,port=P"
#     KL_SWTPM_DIR           its directory (ca/root.pem, ca/issuer.pem, swtpm.log)
#     KL_SWTPM_PORT          P
#     KL_SWTPM_DIRS          every directory started so far, for kl_stop_swtpm
#   Several may run at once; the exports describe the last one started.
# kl_stop_swtpm [DIR]
#   stops DIR, or every TPM started in this scope: in teardown (or a test) the
#   test's own, in teardown_file those of setup_file.

kl_start_swtpm() {
	local base=${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}} dir tcti
	dir=$(mktemp -d "$base/swtpm.XXXXXX") || return 1
	# 3>&-: swtpm daemonizes and must not inherit bats' fd 3.
	tcti=$("$KL_TOP/scripts/swtpm" start "$dir" "$@" 3>&-) || return 1
	export TCTI=$tcti TPM2TOOLS_TCTI=$tcti
	export KL_SWTPM_DIR=$dir KL_SWTPM_PORT=${tcti##*port=}
	export KL_SWTPM_DIRS="${KL_SWTPM_DIRS:+$KL_SWTPM_DIRS }$dir"
}

kl_stop_swtpm() {
	local dir scope keep=""
	if [ $# -gt 0 ]; then
		"$KL_TOP/scripts/swtpm" stop "$1" 3>&-
		return
	fi
	scope=${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-${TMPDIR:-/tmp}}}
	for dir in ${KL_SWTPM_DIRS:-}; do
		if [[ $dir == "$scope"/* ]]; then
			"$KL_TOP/scripts/swtpm" stop "$dir" 3>&-
		else
			keep="${keep:+$keep }$dir"
		fi
	done
	export KL_SWTPM_DIRS=$keep
}
