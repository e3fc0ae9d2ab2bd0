/* Admission by kind and per-queue limits. See admit.h. */

#include <string.h>

#include "admit.h"

#define HISTORY 64

void jq_admit_init(jq_admit_t *a, long long io_slots, long long cpu_slots, int nqueues,
                   const long long *limits) {
    memset(a, 0, sizeof(*a));
    a->cap[JQ_KIND_IO] = io_slots;
    a->cap[JQ_KIND_CPU] = cpu_slots;
    a->nqueues = nqueues;
    for (int i = 0; i < nqueues; i++) a->q[i].limit = limits ? limits[i] : 0;
    for (int i = 0; i < JQ_QSLOTS; i++) a->q[i].base = i, a->q[i].weight = 1;
}

void jq_admit_set_weights(jq_admit_t *a, const long long *weights, int n) {
    for (int i = 0; i < n; i++) a->q[i].weight = weights[i] > 0 ? weights[i] : 1;
}

void jq_admit_group(jq_admit_t *a, int q, int base) {
    a->q[q].base = base;
    if (a->nqueues < q + 1) a->nqueues = q + 1;
}

/* The queue entry q counts for. */
static int base_of(const jq_admit_t *a, int q) { return a->q[q].base; }

void jq_admit_learn(jq_admit_t *a, int q, jq_kind_t k) {
    jq_admit_queue_t *aq = &a->q[base_of(a, q)];
    aq->history = (aq->history << 1) | (k == JQ_KIND_CPU ? 1u : 0u);
    if (aq->seen < HISTORY) aq->seen++;
}

jq_qkind_t jq_admit_qkind(const jq_admit_t *a, int q) {
    const jq_admit_queue_t *aq = &a->q[base_of(a, q)];
    if (aq->seen == 0) return JQ_QKIND_UNKNOWN;
    uint64_t mask = aq->seen >= HISTORY ? ~(uint64_t)0 : (((uint64_t)1 << aq->seen) - 1);
    uint64_t cpu = aq->history & mask;
    if (cpu == 0) return JQ_QKIND_IO;
    if (cpu == mask) return JQ_QKIND_CPU;
    return JQ_QKIND_MIXED;
}

const char *jq_admit_qkind_name(jq_qkind_t k) {
    static const char *const names[] = {"unknown", "io", "cpu", "mixed"};
    return names[k];
}

void jq_admit_hold(jq_admit_t *a, int q, jq_kind_t k, int delta) {
    a->held[k] += delta;
    a->q[base_of(a, q)].held += delta;
}

void jq_admit_sent(jq_admit_t *a, int q, jq_kind_t k, int delta) {
    a->sent[k] += delta;
    a->q[base_of(a, q)].sent += delta;
}

/* Which kinds of slot a read of queue q takes: bit 1 io, bit 2 cpu. */
static int uses(const jq_admit_t *a, int q) {
    switch (jq_admit_qkind(a, q)) {
        case JQ_QKIND_IO: return 1;
        case JQ_QKIND_CPU: return 2;
        default: return 3;
    }
}

void jq_admit_finished(jq_admit_t *a, jq_kind_t k, int delta) { a->finished[k] += delta; }

void jq_admit_set_read_ahead(jq_admit_t *a, long long n) { a->read_ahead = n; }

void jq_admit_set_read_max(jq_admit_t *a, long long n) { a->read_max = n > 0 ? n : 0; }

/* The read's share of read_max for each of its nq queues (at least 1). */
static long long read_share(const jq_admit_t *a, int nq) {
    if (!a->read_max || !nq) return 0;
    return a->read_max / nq > 0 ? a->read_max / nq : 1;
}

static void reserve(jq_admit_t *a, int q, int u, long long n) {
    a->q[q].reserved += n;
    if (u & 1) a->reserved[JQ_KIND_IO] += n;
    if (u & 2) a->reserved[JQ_KIND_CPU] += n;
}

static long long free_of(const jq_admit_t *a, int k, int ahead) {
    long long early = a->finished[k] < a->read_ahead ? a->finished[k] : a->read_ahead;
    if (ahead && a->sent[k] > early) early = a->sent[k];
    return a->cap[k] - a->held[k] - a->reserved[k] + early;
}

static long long room_of(const jq_admit_queue_t *aq, int ahead) {
    if (!aq->limit) return -1;
    long long room = aq->limit - aq->held - aq->reserved + (ahead ? aq->sent : 0);
    return room > 0 ? room : 0;
}

/* The weights of the nopen queues in open[]. */
static long long weights(const jq_admit_t *a, const int *open, int nopen) {
    long long w = 0;
    for (int i = 0; i < nopen; i++) w += a->q[open[i]].weight;
    return w;
}

/* Splits n free slots over the m queues in list[], by weight (all 1
 * unless --queues says name/W): a queue whose limit leaves it less room
 * than its share gets its room, the others share the rest, the odd slots
 * going round from a->turn so that no queue starves when there are fewer
 * slots than queues. */
static void split(const jq_admit_t *a, long long n, const int *list, int m, int ahead,
                  long long *share) {
    int open[JQ_QSLOTS], nopen = 0;
    for (int i = 0; i < m; i++) share[list[i]] = 0;
    if (n <= 0) return;
    for (int i = 0; i < m; i++) open[nopen++] = list[i];
    for (int changed = 1; changed && nopen > 0;) {
        changed = 0;
        long long w = weights(a, open, nopen), pass = n;
        for (int i = 0; i < nopen; i++) {
            long long room = room_of(&a->q[open[i]], ahead);
            if (room < 0 || room > pass * a->q[open[i]].weight / w) continue;
            share[open[i]] = room;
            n -= room;
            open[i--] = open[--nopen];
            changed = 1;
        }
    }
    if (nopen == 0) return;
    long long w = weights(a, open, nopen), rest = n;
    for (int i = 0; i < nopen; i++) {
        share[open[i]] = n * a->q[open[i]].weight / w;
        rest -= share[open[i]];
    }
    for (int i = 0; i < nopen && rest > 0; i++, rest--)
        share[open[(a->turn + (unsigned)i) % (unsigned)nopen]]++;
}

long long jq_admit_plan(jq_admit_t *a, const int *skip, int ahead, int same_count,
                        jq_admit_read_t *out) {
    memset(out, 0, sizeof(*out));
    int lists[2][JQ_QSLOTS], n[2] = {0, 0};
    long long share[2][JQ_QSLOTS];
    for (int q = 0; q < a->nqueues; q++) {
        if (base_of(a, q) != q || (skip && skip[q]) || room_of(&a->q[q], ahead) == 0) continue;
        int u = uses(a, q);
        if (u & 1) lists[JQ_KIND_IO][n[JQ_KIND_IO]++] = q;
        if (u & 2) lists[JQ_KIND_CPU][n[JQ_KIND_CPU]++] = q;
    }
    for (int k = 0; k < 2; k++) split(a, free_of(a, k, ahead), lists[k], n[k], ahead, share[k]);
    a->turn++;
    long long min = 0;
    for (int q = 0; q < a->nqueues; q++) {
        if (base_of(a, q) != q || (skip && skip[q]) || room_of(&a->q[q], ahead) == 0) continue;
        int u = uses(a, q);
        long long c;
        if (u == 1)
            c = share[JQ_KIND_IO][q];
        else if (u == 2)
            c = share[JQ_KIND_CPU][q];
        else {
            long long cpu = share[JQ_KIND_CPU][q];
            /* An unknown queue is read one entry at a time even with the
             * pool full: else it could never be learned, and an io queue
             * would wait behind the cpu queue until the pool drains. */
            if (jq_admit_qkind(a, q) == JQ_QKIND_UNKNOWN && cpu < 1) cpu = 1;
            c = share[JQ_KIND_IO][q] < cpu ? share[JQ_KIND_IO][q] : cpu;
        }
        long long room = room_of(&a->q[q], ahead);
        if (room > 0 && c > room) c = room;
        out->count[q] = c > 0 ? c : 0;
    }
    int nq = 0;
    for (int q = 0; q < a->nqueues; q++) nq += out->count[q] > 0;
    /* Only the blocking read is held to read_max: while its reply is
     * being skipped (an oversized payload), the slots it leaves let a read
     * behind the acks go aside for other jobs. That read, the usual one
     * under load, takes the free slots: halving it cost noop jobs 16% more
     * commands and 1.4x the worker's CPU per job. */
    long long most = ahead ? 0 : read_share(a, nq);
    for (int q = 0; q < a->nqueues; q++) {
        if (most && out->count[q] > most) out->count[q] = most;
        if (out->count[q] && (!min || out->count[q] < min)) min = out->count[q];
    }
    long long total = 0;
    for (int q = 0; q < a->nqueues; q++) {
        if (!out->count[q]) continue;
        if (same_count) out->count[q] = min;
        out->uses[q] = (unsigned char)uses(a, q);
        reserve(a, q, out->uses[q], out->count[q]);
        total += out->count[q];
    }
    return total;
}

void jq_admit_unreserve(jq_admit_t *a, const jq_admit_read_t *rd) {
    for (int q = 0; q < a->nqueues; q++)
        if (rd->count[q]) reserve(a, q, rd->uses[q], -rd->count[q]);
}

long long jq_admit_capacity(const jq_admit_t *a, int q) {
    q = base_of(a, q);
    long long n = a->cap[JQ_KIND_IO] + a->cap[JQ_KIND_CPU];
    return a->q[q].limit && n > a->q[q].limit ? a->q[q].limit : n;
}

long long jq_admit_free(const jq_admit_t *a, int q) {
    q = base_of(a, q);
    int u = uses(a, q);
    long long f = -1;
    for (int k = 0; k < 2; k++) {
        if (!(u & (1 << k))) continue;
        long long x = a->cap[k] - a->held[k];
        if (f < 0 || x < f) f = x;
    }
    long long room = a->q[q].limit ? a->q[q].limit - a->q[q].held : -1;
    if (room >= 0 && room < f) f = room;
    return f > 0 ? f : 0;
}
