/*
 * kl_uefi.h - the UEFI measured-boot event log (TCG PC Client Platform
 * Firmware Profile, "crypto agile" format, or the older SHA-1 format).
 *
 * The verifier wants the whole binary log, base64, each time (docs/protocol.md
 * §6.4), and kl-negotiate announces its number of events (§5.1.2). kl reads
 * the file whole and checks its structure before sending it: every length
 * in it is bounds-checked, and a malformed log is refused with the offset of
 * the first bad field.
 *
 * Formats, little-endian:
 *   TCG_PCR_EVENT  (SHA-1 log; also the first event of a crypto-agile log)
 *	pcrIndex u32, eventType u32, digest[20], eventSize u32, event[eventSize]
 *   TCG_PCR_EVENT2 (every event after the first of a crypto-agile log)
 *	pcrIndex u32, eventType u32, count u32,
 *	count x (algId u16, digest[size of algId]), eventSize u32, event[eventSize]
 * A log is crypto agile when its first event is EV_NO_ACTION for PCR 0 and
 * its data starts with "Spec ID Event03": a TCG_EfiSpecIDEvent that gives the
 * digest size of each algorithm used in the TCG_PCR_EVENT2 events.
 */
#ifndef KL_UEFI_H
#define KL_UEFI_H

#include <stddef.h>
#include <stdint.h>

#define KL_UEFI_LOG_PATH "/sys/kernel/security/tpm0/binary_bios_measurements"
#define KL_UEFI_LOG_MAX (16u << 20)	/* default cap on the log's size: 16 MiB */

/*
 * Count the events of the log in buf (len bytes): in a crypto-agile log,
 * the TCG_PCR_EVENT2 events after the Spec ID event (as the Rust agent
 * counts); in a SHA-1 log, every event. path only names the log in the
 * error line. Returns KL_OK, or KL_PERM with one line
 * "UEFI log <path>: offset <n>: <what is wrong>".
 */
int kl_uefi_parse(const unsigned char *buf, size_t len, const char *path, uint64_t *event_count);

/*
 * Read the log at path whole (at most max_bytes; 0 means KL_UEFI_LOG_MAX)
 * into *buf (new, free()), *len bytes, and count its events (kl_uefi_parse).
 * The file is read to EOF, not by its size: securityfs reports size 0.
 * Returns KL_OK; KL_PERM when it is missing ("UEFI log <path>: No such file
 * or directory"), larger than max_bytes or malformed; KL_TEMP on an I/O
 * error or out of memory. *buf is NULL on failure.
 */
int kl_uefi_read(const char *path, size_t max_bytes, unsigned char **buf, size_t *len,
    uint64_t *event_count);

#endif
