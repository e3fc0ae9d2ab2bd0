#ifndef JQ_PROCPROC_H
#define JQ_PROCPROC_H

/* The inside of the handler process pools (procpool.h): a pool, its jobs
 * (tickets) and one process's life. procpool.c owns the pools and the
 * waiting jobs; procproc.c one process: spawned under the exec guard, its
 * stdin written and its stdout read as frames (procwire.h), killed, and
 * freed when its last handle is closed. Both run on the worker's loop
 * only. */

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include <uv.h>
#include <jobq/handler.h>

#include "exec_cmd.h"
#include "procpool.h"

/* The largest max_inflight a hello may ask; more is taken as this. */
#define JQ_PROCPROC_INFLIGHT_MAX 1024

typedef struct jq_procproc jq_procproc_t;

/* One job of a pool: waiting (p NULL), or sent to p as seq. A cancelled
 * job (t NULL) that was sent keeps its place until its process answers or
 * dies: the process still works on it. */
typedef struct jq_procpool_ticket {
    jq_task_t *t;
    jq_procproc_t *p;
    uint64_t seq;
    struct jq_procpool_ticket *next; /* the waiting list */
} jq_procpool_ticket_t;

/* One --proc entry. */
typedef struct jq_procpool {
    jq_exec_cmd_t cmd; /* its name is TYPES */
    jq_handler_t h[JQ_PROCPOOL_TYPES_MAX];
    char types[JQ_PROCPOOL_TYPES_MAX][JQ_NAME_MAX + 1];
    int ntypes;
    jq_procproc_t *cur[JQ_PROCPOOL_COUNT_MAX];  /* the slot's process, or NULL */
    uint64_t restart_at[JQ_PROCPOOL_COUNT_MAX]; /* loop ms; 0: none due */
    int failures[JQ_PROCPOOL_COUNT_MAX];        /* in a row, for the backoff */
    jq_procpool_ticket_t *wait_head, *wait_tail;
} jq_procpool_t;

typedef enum {
    JQ_PROCPROC_STARTING, /* spawned, no hello yet */
    JQ_PROCPROC_READY,
    JQ_PROCPROC_RETIRING, /* recycled: no new jobs, ends when it holds none */
    JQ_PROCPROC_DYING,    /* killed or exited: its handles are closing */
} jq_procproc_state_t;

struct jq_procproc {
    jq_procpool_t *pool;
    int slot; /* in pool->cur; -1 once it left it (retiring, dying) */
    jq_procproc_state_t state;
    uv_process_t ph;
    uv_pipe_t in, out;
    int open_handles; /* freed when it drops to 0 */
    int exited, out_eof;
    int64_t status;
    int term_signal;
    int child_pid;        /* the command (the guard's child), for its RSS */
    uint64_t spawned_at;  /* loop ms */
    uint64_t kill_at;     /* loop ms; 0: none */
    const char *kill_why; /* why kill_at is set */
    long long jobs;       /* answered */
    int max_inflight, inflight, cancelled;
    jq_procpool_ticket_t **slots; /* max_inflight of them, by seq's low bits */
    int next_slot;
    uint64_t gen;
    char *rbuf; /* bytes read, not yet a whole frame */
    size_t rlen, rcap;
    msgpack_sbuffer wq;   /* frames waiting for the write in flight */
    msgpack_sbuffer wfly; /* the write in flight */
    uv_write_t wr;
    int writing;
    jq_procproc_t *next, *prev; /* every process not yet freed */
};

/* Every pool of this process, and their settings. */
typedef struct jq_procpool_state {
    jq_procpool_t pools[JQ_PROCPOOL_MAX];
    int npools;
    int count;          /* --proc-count */
    long long max_jobs; /* --proc-max-jobs; 0: never */
    long long max_rss;  /* bytes; 0: never */
    size_t max_frame;   /* the largest frame a process may send */
    jq_exec_conf_t conf;
    uv_loop_t *loop;
    uv_timer_t timer;
    int started, stopping;
    unsigned ticks;
    jq_procproc_t *live;
} jq_procpool_state_t;

extern jq_procpool_state_t jq_pp;

/* procpool.c */
int jq_procpool_job_start(jq_task_t *t);
void jq_procpool_job_cancel(jq_task_t *t);
/* Sends waiting jobs to the ready processes with room. */
void jq_procpool_dispatch(jq_procpool_t *pool);
/* Fails every waiting job (retried) with why. */
void jq_procpool_fail_waiting(jq_procpool_t *pool, const char *why);
/* Slot of pool lost its process: start another now (failed 0) or after
 * the backoff (failed 1). */
void jq_procpool_vacate(jq_procpool_t *pool, int slot, int failed);
/* Whether pool has a process ready for jobs. */
int jq_procpool_up(const jq_procpool_t *pool);

/* procproc.c */
/* Starts a process into slot of pool; on failure (logged) the slot is
 * vacated with a backoff. */
void jq_procproc_spawn(jq_procpool_t *pool, int slot);
/* Sends tk's job to p, which is ready and has room. */
void jq_procproc_send(jq_procproc_t *p, jq_procpool_ticket_t *tk);
/* tk (sent to p) was cancelled: tell p, and kill it if it does not answer
 * within the grace. */
void jq_procproc_cancel(jq_procproc_t *p, jq_procpool_ticket_t *tk);
/* Kills p (why, logged as a warning; NULL: quietly, the worker stops): the
 * jobs it holds fail, its slot is started again after a backoff. */
void jq_procproc_kill(jq_procproc_t *p, const char *why);
/* The supervision tick: the hello's and a cancel's grace, retiring's end,
 * and the RSS (when rss). */
void jq_procproc_tick(jq_procproc_t *p, uint64_t now, int rss);

#endif
