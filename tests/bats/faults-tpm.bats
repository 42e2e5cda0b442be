#!/usr/bin/env bats
# tests/bats/faults-tpm.bats - the fault matrix (issue 9), the machine: swtpm
# stopped and restarted (a new boot: IMA from 0), leftover TPM objects,
# kl-agent SIGKILLed while it writes its state, a full disk. kl-agent runs as a
# daemon; after each fault clears, a pass within two intervals, every state
# file valid at every look (tests/faults/faults.bash).
load helpers
load ../faults/faults

@test "faults: swtpm stopped and restarted (a new boot: IMA from 0): PASS" {
	# kl takes the boot time from /proc/stat: kl-agent and its steps see a
	# copy (bound over it in their own mount namespace) that the test moves
	# on at the "reboot".
	grep -v '^btime ' /proc/stat >"$T/stat"
	echo "btime $(btime)" >>"$T/stat"
	enroll
	AGENT_START=(unshare -m sh -c 'mount --bind "$0" /proc/stat && exec "$@"' "$T/stat")
	start_agent
	wait_pass
	# The verifier is held off while the machine "reboots", so that no quote
	# of the half-rebooted machine reaches it.
	vfault '{"method": "POST", "path": "/attestations$", "close": true, "count": -1}'
	# Once a negotiation has been turned away, no challenge is left in
	# flight: no quote can reach the new boot before its PCR 10 is extended
	# (a cycle negotiated just before the fault once quoted in between: FAIL).
	wait_hit
	# TPM2_Shutdown, then the process killed: a TPM killed without it comes
	# back with an unsafe clock, and the test verifier fails that quote
	# (broken_evidence_chain), as it should.
	"$KL_TOP/scripts/swtpm" stop "$KL_SWTPM_DIR" 3>&- 2>"$T/swtpm.err"
	fails_during 1
	# The new boot (written in place: the bind mount holds the inode), while
	# the TPM is away and no step gets far.
	b=$(($(btime) + 60))
	{ grep -v '^btime ' /proc/stat; echo "btime $b"; } >"$T/stat.new"
	cat "$T/stat.new" >"$T/stat"
	: >"$BATS_FILE_TMPDIR/ima.log"
	"$KL_TOP/scripts/swtpm" start "$KL_SWTPM_DIR" --port "$KL_SWTPM_PORT" 3>&- >/dev/null 2>"$T/swtpm.err"
	tpm2_pcrextend "10:sha256=$($KLFIX ima-append "$BATS_FILE_TMPDIR/ima.log" boot_aggregate)" >/dev/null
	pass_after_clear
	stop_agent
	# The verifier saw the new boot and asked for the IMA log from line 0.
	run -0 kl_verdicts "$AGENT_ID"
	jq -e '[.attestations[] | select(.index > 0 and .starting_offset == 0 and .evaluation == "pass")]
		| length == 1' <<<"$output"
	jq -e 'all(.attestations[]; .evaluation != "fail")' <<<"$output"
	[ "$(jq -r .boot_time "$KDIR/ima_checkpoint.json")" = "$b" ]
}

@test "faults: leftover TPM objects (slots full; steps SIGKILLed mid-run): flushed, PASS" {
	enroll
	# Objects nobody flushes: swtpm has no resource manager.
	for i in 1 2 3; do
		tpm2_createprimary -C o -c "$T/p$i.ctx" >/dev/null
	done
	[ -n "$(tpm2_getcap handles-transient)" ]
	start_agent
	wait_pass $WINDOW
	grep -q "flushed [0-9]* leftover objects/sessions" "$T/agent.err"
	# For five intervals: kl-quote killed when caught (a quote lasts ~15 ms, so
	# how many are caught depends on the machine's load: tpmfault.bats and
	# perf.bats kill at chosen points); whatever they left must be flushed.
	# Every 2 ms without a fork: the children are read from /proc, and the
	# pause is a read timing out on a FIFO nobody writes (a pgrep and a sleep
	# per look cost more CPU than the rest of the test, and looked less often).
	local c comm kids nap end=$((SECONDS + 5 * INTERVAL))
	mkfifo "$T/nap"
	exec {nap}<>"$T/nap"
	while [ $SECONDS -lt $end ]; do
		# (no newline at the end of that file: read reports EOF, having read it)
		read -r -a kids <"/proc/$AGENT_PID/task/$AGENT_PID/children" || true
		for c in "${kids[@]}"; do
			# (gone already: no comm, or kill finds no process)
			read -r comm 2>/dev/null <"/proc/$c/comm" || continue
			if [ "$comm" = kl-quote ]; then kill -KILL "$c" 2>/dev/null || true; fi
		done
		read -r -t 0.002 -u "$nap" || true
	done
	exec {nap}>&-
	pass_after_clear
	stop_agent
	[ -z "$(tpm2_getcap handles-transient)" ]
}

@test "faults: kl-agent SIGKILLed while it writes a state file, ten times: every file valid, PASS" {
	enroll
	for i in $(seq 10); do
		start_agent
		# The moment a temporary file appears in keylime_dir: a write is under way.
		for ((j = 0; j < 1000; j++)); do
			compgen -G "$KDIR/*.tmp*" >/dev/null && break
			sleep 0.002
		done
		kill -KILL "$AGENT_PID"
		wait "$AGENT_PID" 2>/dev/null || true
		AGENT_PID=
		# The steps it left running finish on their own.
		sleep 0.2
		[ ! -e "$KDIR/kl-status.json" ] || states_valid
	done
	start_agent
	pass_after_clear
	stop_agent
}

# The full-disk test mounts a tmpfs: unmounted here, after kl-agent stops.
teardown() {
	faults_teardown
	if [ -n "${full_mnt:-}" ] && mountpoint -q "$full_mnt"; then
		umount "$full_mnt"
	fi
}

@test "faults: full disk (keylime_dir) at start: kl-agent warns and attests; space back: PASS" {
	[ "$(id -u)" -eq 0 ] || skip "needs root for a tmpfs"
	mount -t tmpfs -o size=64k,mode=0700 tmpfs "$KDIR" || skip "cannot mount tmpfs here"
	full_mnt=$KDIR
	enroll
	head -c 1M /dev/zero >"$KDIR/fill" 2>/dev/null || true
	[ "$(df --output=avail "$KDIR" | tail -1)" -eq 0 ]
	start_agent
	wait_pass
	kill -0 "$AGENT_PID"
	grep -q "No space left on device" "$T/agent.err"
	rm "$KDIR/fill"
	pass_after_clear
	stop_agent
}
