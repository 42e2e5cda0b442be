/*
 * kl_toml.h - a strict parser for the TOML subset that Keylime's agent.conf uses.
 *
 * Accepted: comments, blank lines, [table] headers (dotted: [a.b], quoted
 * parts), key = value with bare (A-Za-z0-9_-) or quoted keys, the four string
 * kinds ("basic" with escapes, 'literal', """multi-line""", '''multi-line'''),
 * integers (decimal with sign, 0x/0o/0b, '_' between digits; 64-bit), true and
 * false, arrays (nested, multi-line, comments inside, trailing comma).
 * Refused with a "not supported" error: floats, dates and times, inline
 * tables, arrays of tables ([[x]]), dotted keys on the left of '=', and the
 * escape \u0000. Input must be valid UTF-8.
 *
 * Every error is one kl_err line "<name>:<line>:<column>: <message>" (line
 * and column 1-based, the column counts characters) and KL_PERM.
 *
 * The result is a jansson tree: a table is a JSON object (in file order), an
 * array a JSON array, a string a JSON string, an integer a JSON integer, a
 * boolean true/false. No other JSON type appears.
 *
 * Positions come in a second tree, pos, with the same shape: for each table
 * an object with the same keys; for each non-table value the JSON array
 * [line, key_column, value_column] (kl_toml_pos reads it).
 *
 * Ownership: *out and *pos are new references (json_decref). On failure they
 * are left NULL.
 */
#ifndef KL_TOML_H
#define KL_TOML_H

#include <stddef.h>
#include <jansson.h>

#define KL_TOML_MAX (1u << 20)	/* kl_toml_parse_file refuses larger files */

/*
 * Parse len bytes of buf (need not be NUL-terminated); name is the source in
 * error lines. pos may be NULL. Returns KL_OK, KL_PERM (bad input) or
 * KL_TEMP (out of memory).
 */
int kl_toml_parse(const char *buf, size_t len, const char *name, json_t **out, json_t **pos);

/*
 * Read path (a regular file, at most KL_TOML_MAX bytes) and parse it, with
 * the path as name. If missing_ok and the file does not exist, returns KL_OK
 * with *out (and *pos) NULL. The file's bytes are wiped after parsing (they
 * may hold a password). Returns KL_OK, KL_PERM or KL_TEMP.
 */
int kl_toml_parse_file(const char *path, int missing_ok, json_t **out, json_t **pos);

/*
 * Parse buf as one TOML value alone, surrounded by optional blanks, e.g. an
 * environment variable holding "[\"2.5\", \"2.6\"]". Errors say
 * "<name>:1:<column>: ...". Returns KL_OK, KL_PERM or KL_TEMP.
 */
int kl_toml_parse_value(const char *buf, size_t len, const char *name, json_t **out);

/*
 * Where the value of key was, from the pos object of its table. Any of the
 * out pointers may be NULL. Returns 0, or -1 (all set to 0) if key has no
 * position (absent, or a table).
 */
int kl_toml_pos(const json_t *pos_table, const char *key, int *line, int *key_col, int *val_col);

#endif
