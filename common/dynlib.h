#ifndef JQ_DYNLIB_H
#define JQ_DYNLIB_H

/* A shared library loaded with dlopen on first use instead of linked: a
 * library linked into jobq-consumer is mapped, relocated and partly touched
 * in every worker at start, used or not (libcrypto alone was 3.4 MiB of an
 * idle worker's 7.2 MiB RSS). The wrappers (curlsym.h for libcurl,
 * cryptosym.h for libcrypto) keep a table of function pointers that
 * jq_dynlib_load() fills, and macros that send the library's own names
 * through it, so the code that calls it reads as if linked. Give the
 * soname as a string literal in the caller's .c: scripts/runtime-packages.sh
 * (the container image, the systemd test) finds the libraries an image
 * must ship by those "lib*.so.N" literals. */

#include <stddef.h>

/* One function to look up: its name in the library, where to store it. */
typedef struct jq_dynlib_sym {
    const char *name;
    void **slot;
} jq_dynlib_sym_t;

/* For a wrapper's X-macro list: X(n) -> {"<prefix>n", &table.n}. */
#define JQ_DYNLIB_SYM(table, prefix, n) {prefix #n, (void **)&(table).n},

/* Loads soname (RTLD_NOW | RTLD_LOCAL) and every symbol of syms[0..n).
 * Returns 0, or -1 with err ("<what>: cannot load <soname>: <why>" or
 * "<what>: <soname> has no <symbol>"; nothing stays loaded then). On
 * success *handle is set and later calls with the same handle return 0 at
 * once; the library stays loaded for the life of the process. Not
 * thread-safe: the caller loads from one thread or under pthread_once. */
int jq_dynlib_load(void **handle, const char *soname, const char *what, const jq_dynlib_sym_t *syms,
                   size_t n, char *err, size_t errlen);

#endif
