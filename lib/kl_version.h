/*
 * kl_version.h - what --version prints (every program, through kl_cli).
 *
 *	kl-quote 0.1.0+git.c52cd46
 *	jansson 2.14
 *	OpenSSL 3.0.17 1 Jul 2025
 *	tss2-esys 4.0.1 (build time)
 *
 * The first line is the program and kl's version, like clap's
 * "keylime_push_model_agent 0.2.x"; then one line for each library the
 * program links, each from the module that owns that library (kl_json,
 * kl_crypto, kl_http, kl_tpm).
 */
#ifndef KL_VERSION_H
#define KL_VERSION_H

#include <stdio.h>

/*
 * kl's version, fixed at build time (Makefile): the package version
 * (debian/changelog), then "+git." and `git describe --always --dirty` when
 * built from a git checkout.
 */
const char *kl_version(void);

/* The lines above on out; note (or NULL) is one more line at the end. */
void kl_version_print(FILE *out, const char *note);

#endif
