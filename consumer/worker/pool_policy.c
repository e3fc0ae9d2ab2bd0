/* The CPU pool's process-wide policy (pool.h, pool_policy.h): the mode
 * that runs items, how a pool thread is scheduled against the loop thread
 * (--cpu-sched), and how often a handler's yield point gives the core away
 * (--cpu-yield-us). Set once from the options, before any pool starts. */

#define _GNU_SOURCE
#include "pool_policy.h"

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How much lower than the loop thread the pool threads run (nice). */
#define JQ_POOL_NICE 5
/* --cpu-sched slice: the scheduler slice of a pool thread, ns (the
 * kernel's least; it clamps to 0.1 to 100 ms). */
#define JQ_POOL_SLICE_NS 100000ULL

/* jq_pool_yield_point()'s period in ns (0: never), and each thread's
 * calls since it last read the clock and when it last yielded. */
static int64_t pool_yield_ns = 250000;
static __thread unsigned yield_calls;
static __thread int64_t yield_last_ns;

void jq_pool_set_yield_us(long long us) { pool_yield_ns = us * 1000; }

void jq_pool_yield_point(void) {
    /* A clock read costs about as much as a short handler round: only
     * every 16th call looks. */
    if (pool_yield_ns <= 0 || (++yield_calls & 15) != 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (now - yield_last_ns < pool_yield_ns) return;
    sched_yield();
    yield_last_ns = now;
}

/* Set once from the options, before any pool starts (see pool.h). */
static jq_pool_mode_t pool_mode = JQ_POOL_THREADS;
static jq_pool_sched_t pool_sched = JQ_SCHED_NICE;

/* An option's accepted names and the enum value each stands for, in the
 * order the error message lists them. */
typedef struct pool_name {
    const char *name;
    int value;
} pool_name_t;

static const pool_name_t pool_mode_names[] = {
    {"pool", JQ_POOL_THREADS}, {"inline", JQ_POOL_INLINE}, {"uv", JQ_POOL_UV}};
static const pool_name_t pool_sched_names[] = {{"idle", JQ_SCHED_IDLE},
                                               {"slice", JQ_SCHED_SLICE},
                                               {"nice", JQ_SCHED_NICE},
                                               {"normal", JQ_SCHED_NORMAL}};

#define POOL_NAMES(t) (t), sizeof(t) / sizeof((t)[0])

/* The value of name in names[0..n), or -1 with err "<option>: '<name>' is
 * not one of <the names>". */
static int pool_name_value(const pool_name_t *names, size_t n, const char *option, const char *name,
                           char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, names[i].name) == 0) return names[i].value;
    int len = snprintf(err, errlen, "%s: '%s' is not one of ", option, name);
    for (size_t i = 0; i < n && len >= 0 && (size_t)len < errlen; i++)
        len += snprintf(err + len, errlen - (size_t)len, "%s%s", i ? ", " : "", names[i].name);
    return -1;
}

int jq_pool_set_sched(const char *name, char *err, size_t errlen) {
    int v = pool_name_value(POOL_NAMES(pool_sched_names), "--cpu-sched", name, err, errlen);
    if (v < 0) return -1;
    pool_sched = (jq_pool_sched_t)v;
    return 0;
}

/* struct sched_attr of sched_setattr(2) (glibc 2.36 has no wrapper). */
typedef struct pool_sched_attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
} pool_sched_attr_t;

/* Puts the calling pool thread below the loop thread, as --cpu-sched
 * says (pool.h). Failure only costs that edge: the thread runs anyway. */
void jq_pool_policy_thread(void) {
    pid_t tid = (pid_t)syscall(SYS_gettid);
    if (pool_sched == JQ_SCHED_IDLE) {
        struct sched_param sp = {0};
        sched_setscheduler(tid, SCHED_IDLE, &sp);
    } else if (pool_sched == JQ_SCHED_SLICE) {
        pool_sched_attr_t a = {.size = sizeof(a),
                               .policy = SCHED_OTHER,
                               .nice = JQ_POOL_NICE,
                               .runtime = JQ_POOL_SLICE_NS};
        if (syscall(SYS_sched_setattr, tid, &a, 0) != 0)
            setpriority(PRIO_PROCESS, (id_t)tid, JQ_POOL_NICE);
    } else if (pool_sched == JQ_SCHED_NICE) {
        setpriority(PRIO_PROCESS, (id_t)tid, JQ_POOL_NICE);
    }
}

int jq_pool_set_mode(const char *name, char *err, size_t errlen) {
    int v = pool_name_value(POOL_NAMES(pool_mode_names), "--cpu-mode", name, err, errlen);
    if (v < 0) return -1;
    pool_mode = (jq_pool_mode_t)v;
    return 0;
}

jq_pool_mode_t jq_pool_policy_mode(void) { return pool_mode; }
