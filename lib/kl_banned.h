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

/* A name the C library already defines as a macro (fortified) cannot be poisoned. */
#ifndef strcpy
#pragma GCC poison strcpy
#endif
#ifndef strcat
#pragma GCC poison strcat
#endif
#ifndef sprintf
#pragma GCC poison sprintf
#endif
#ifndef vsprintf
#pragma GCC poison vsprintf
#endif
#ifndef strtok
#pragma GCC poison strtok
#endif
#ifndef gets
#pragma GCC poison gets
#endif
#ifndef atoi
#pragma GCC poison atoi
#endif
#ifndef atol
#pragma GCC poison atol
#endif
#ifndef system
#pragma GCC poison system
#endif

#endif
