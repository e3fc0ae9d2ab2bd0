#ifndef JQ_SCRIPT_H
#define JQ_SCRIPT_H

/* A Lua script run with EVALSHA: its text, and its SHA1 as SCRIPT LOAD
 * answers it. Redis hashes the text, so a worker needs no SHA1 of its own
 * (linking libcrypto for it cost each worker 3.4 MiB of RSS). The stages
 * that run scripts (sched.c, ticks.c) keep one jq_script_t per script, for
 * the life of the process. */

#include "rconn.h"

typedef struct jq_script {
    const char *lua; /* borrowed: a string literal */
    char sha[41];    /* "" until Redis answered */
    int loading;     /* a SCRIPT LOAD is out */
} jq_script_t;

/* Sends SCRIPT LOAD of s->lua on c unless one is out already; sets s->sha
 * when the answer comes (a failure is logged; the next load asks again).
 * s must outlive the answer. */
void jq_script_load(jq_rconn_t *c, jq_script_t *s);

/* Whether s->sha may be used (a reload in flight does not change it: the
 * text is the same). */
static inline int jq_script_ready(const jq_script_t *s) { return s->sha[0] != '\0'; }

#endif
