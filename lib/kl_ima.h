/*
 * kl_ima.h - the IMA ASCII measurement list, read incrementally.
 *
 * The verifier asks for the lines of the log from a 0-based line index
 * (starting_offset, docs/protocol.md §6.5-§6.6) to the end. A long-running host's
 * log holds millions of lines, so kl keeps a checkpoint between runs: a
 * sparse index of (line index, byte offset) pairs plus the end of the last
 * scan. With it, counting the lines reads only what was appended since the
 * last run, and reading from an offset seeks to the nearest indexed line at
 * or before it. The cost of a call is the new bytes plus at most
 * KL_IMA_MARK_BYTES (and the checkpoint file, about 20 bytes per mark),
 * whatever the length of the log.
 *
 * The checkpoint (JSON, 0600, written atomically) looks like
 *	{"version":1,"boot_time":1700000000,"log":"/sys/.../ascii_runtime_measurements",
 *	 "marks":[[0,0],[1745,262201],...],"end":[2048,307321],"tail":"<hex>"}
 * where "end" is [lines, bytes] of the last scan and "tail" the last bytes
 * before it. It is ignored and rebuilt, never a cause of failure, when it is
 * missing or corrupt (one warning), when boot_time or the log path differ (a
 * reboot), or when the log no longer matches it (shorter than "end", a
 * different tail, no line break before a mark: the log was replaced).
 *
 * A line is counted and returned only once its '\n' is there: a last line
 * still being written is left for the next call. Lines are returned
 * byte-exact. Memory: a 64 KiB read buffer, the index, and the returned lines.
 * (On securityfs the kernel still walks its list to serve a seek: that is
 * kernel time, but nothing of the skipped part is copied to kl or parsed.)
 *
 * ckpt may be NULL: no checkpoint, every call reads the log from the start.
 */
#ifndef KL_IMA_H
#define KL_IMA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The default log, and the checkpoint's name in the agent's state directory. */
#define KL_IMA_LOG_PATH "/sys/kernel/security/ima/ascii_runtime_measurements"
#define KL_IMA_CHECKPOINT_NAME "ima_checkpoint.json"

#define KL_IMA_MARK_BYTES (256u << 10)	/* an index mark every 256 KiB of log */
#define KL_IMA_READ_MAX (128u << 20)	/* at most 128 MiB of lines per kl_ima_read */
#define KL_IMA_CKPT_MAX (16u << 20)	/* a larger checkpoint is ignored */

/*
 * Bytes of the log this process has read so far (checkpoint file excluded).
 * For tests and benchmarks, which check that the cost does not grow with
 * the log's length.
 */
uint64_t kl_ima_bytes_read(void);

/*
 * *entries = the number of complete lines in log now (the ima_log
 * capability's entry_count, §5.1.3). Updates the checkpoint.
 * Returns KL_OK, KL_PERM (log missing or unreadable: "IMA log <path>: ...")
 * or KL_TEMP (I/O error).
 */
int kl_ima_count(const char *log, const char *ckpt, time_t boot_time, uint64_t *entries);

/*
 * The lines of log from line index starting_offset to the end, at most
 * max_entries of them (0: no cap), into *entries: a new NUL-terminated
 * buffer (free()) of *len bytes holding *count lines, each ending in '\n'.
 * Nothing new gives *len == 0, *count == 0 and an empty string.
 * Updates the checkpoint.
 * Returns KL_OK; KL_PERM when the log is missing or unreadable, when
 * starting_offset is beyond its last line (the verifier's offset belongs to
 * another boot or another log) or when the lines exceed KL_IMA_READ_MAX;
 * KL_TEMP on an I/O error or out of memory. *entries is NULL on failure.
 */
int kl_ima_read(const char *log, const char *ckpt, time_t boot_time,
    uint64_t starting_offset, uint64_t max_entries,
    char **entries, size_t *len, uint64_t *count);

#endif
