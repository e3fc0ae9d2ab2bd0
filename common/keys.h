#ifndef JQ_KEYS_H
#define JQ_KEYS_H

/* Redis key names of PROTOCOL.md. Every key of a queue carries the hash tag
 * {<queue>} so that one queue lives in one cluster slot. */

#include <stddef.h>

#define JQ_NAME_MAX 128 /* queue names and job ids: 1..128 bytes */
#define JQ_KEY_MAX 512  /* big enough for any key we build */
#define JQ_PREFIX_DEFAULT "jobq"
#define JQ_GROUP "workers"

/* True if s[0..len) is 1..128 bytes of [A-Za-z0-9_.:-]: the rule for queue
 * names and job ids. */
int jq_name_valid(const char *s, size_t len);

/* Writes "<prefix>:{<queue>}:<suffix>" into buf. Returns the length, or -1
 * if it does not fit in cap bytes. */
int jq_key(char *buf, size_t cap, const char *prefix, const char *queue, const char *suffix);

/* Writes "<prefix>:{<queue>}:<what>:<id>" (e.g. what = "result").
 * Returns the length, or -1 if it does not fit. */
int jq_key_id(char *buf, size_t cap, const char *prefix, const char *queue, const char *what,
              const char *id);

/* Schedules (PROTOCOL §13): a name is 1..64 bytes of [A-Za-z0-9_.-], no
 * ':', so that one schedule's job key is never another's hash key. */
#define JQ_SCHEDULE_NAME_MAX 64
int jq_schedule_name_valid(const char *s);

/* Writes "<prefix>:{<queue>}:schedule:<name>", with ":job" after it when
 * job is 1 (the schedule's job template). Returns the length, or -1. */
int jq_key_schedule(char *buf, size_t cap, const char *prefix, const char *queue, const char *name,
                    int job);

/* Writes "<prefix>:<suffix>" for the global keys (queues, workers,
 * worker:<id>). Returns the length, or -1 if it does not fit. */
int jq_key_global(char *buf, size_t cap, const char *prefix, const char *suffix);

/* Priority levels (PROTOCOL.md, "Priorities"): each level is a stream of
 * its own in the queue; normal is the stream of §1, so a producer that
 * knows nothing of levels enqueues at normal. Ordered: a lower value runs
 * first. */
typedef enum { JQ_PRIO_HIGH = 0, JQ_PRIO_NORMAL = 1, JQ_PRIO_LOW = 2, JQ_PRIO_N = 3 } jq_prio_t;

/* Parses "high", "normal" or "low" (len bytes of s). Returns 0, or -1. */
int jq_prio_parse(const char *s, size_t len, jq_prio_t *out);
/* "high", "normal", "low". */
const char *jq_prio_name(jq_prio_t p);
/* The level's stream as a key suffix for jq_key: "stream:high", "stream",
 * "stream:low". */
const char *jq_prio_stream(jq_prio_t p);

#endif
