/*
 * kl_banned.h - functions kl code must not call (STYLE.md §12), made compile
 * errors. Include it last in every .c file, after all system headers.
 *   strcpy, strcat, sprintf, vsprintf: no bound; use snprintf / memcpy with a size.
 *   strtok: hidden state; use strtok_r or strsep.
 *   gets: no bound at all.   atoi, atol: no error reporting; use strtol.
 *   system: a shell; kl-agent execs its steps directly.
 */
#ifndef KL_BANNED_H
#define KL_BANNED_H

#pragma GCC poison strcpy strcat sprintf vsprintf strtok gets atoi atol system

#endif
