#ifndef JQ_POOL_POLICY_H
#define JQ_POOL_POLICY_H

/* The pool's process-wide settings, as pool.c reads them. They are set
 * through pool.h's jq_pool_set_mode, jq_pool_set_sched and
 * jq_pool_set_yield_us (main does, before any pool starts); jq_pool_yield_point
 * is pool.h's too. */

#include "pool.h"

/* The mode a pool started now runs in. */
jq_pool_mode_t jq_pool_policy_mode(void);

/* Puts the calling pool thread below the loop thread, as --cpu-sched says.
 * Failure only costs that edge: the thread runs anyway. */
void jq_pool_policy_thread(void);

#endif
