/*
 * kl_metrics.h - kl-agent's Prometheus textfile-collector file (text format
 * 0.0.4), written from the status (kl_status.h) at metrics_textfile after
 * every attempt, atomically and mode 0644 (node-exporter reads it; it holds
 * no secret):
 *
 *   kl_last_success_timestamp_seconds       gauge, 0 before the first success
 *   kl_last_attempt_timestamp_seconds       gauge
 *   kl_consecutive_failures                 gauge
 *   kl_cycles_total{result="ok"|"refused"|"reauth"|"renegotiate"|"permanent"|"temporary"}
 *                                           counter, by the cycle's exit class
 *   kl_cycle_duration_seconds               gauge, the last cycle
 *   kl_ima_entries_sent_total               counter
 *   kl_next_attestation_timestamp_seconds   gauge, 0 when nothing is scheduled
 *   kl_verdict{status="PASS"|"FAIL"|...}    gauge, 1; only once kl-verdict has run
 *   kl_last_pass_timestamp_seconds          gauge, the verifier's last pass; with kl_verdict
 *   kl_info{version="...",agent_id="..."}   gauge, always 1
 */
#ifndef KL_METRICS_H
#define KL_METRICS_H

#include <stddef.h>

#include "kl_status.h"

/*
 * The file's text for st into a new string (free()), or NULL when out of
 * memory.
 */
char *kl_metrics_text(const struct kl_status *st, const char *version);

/* Write it to path (atomically, not fsynced: kl_file_replace_mode; 0644). KL_OK, or KL_PERM/KL_TEMP after one line. */
int kl_metrics_write(const char *path, const struct kl_status *st, const char *version);

#endif
