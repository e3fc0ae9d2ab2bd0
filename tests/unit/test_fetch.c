/* Tests of consumer/worker/fetch.c against a fake connection (fake_rconn.c): the
 * XREADGROUP it sends, and what it makes of the replies. Linked with the
 * real admit.c, qhealth.c and common/; the worker's other stages are the
 * recording stubs of fake_stages.c. */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fake_rconn.h"
#include "fake_stages.h"
#include "worker.h"

/* ---- a worker with two queues, a and b, both connections up ---- */

static jq_worker_t *w;
static jq_options_t opt;

static void setup(void) { w = fake_worker_new(&opt); }
static void teardown(void) { fake_worker_free(w); }

TestSuite(fetch, .init = setup, .fini = teardown);

/* The blocking read sent by a kick, or -1. */
static int kick_read(void) {
    int before = fake_rconn_count(&w->rfetch, "XREADGROUP");
    jq_fetch_kick(&w->fetch);
    if (fake_rconn_count(&w->rfetch, "XREADGROUP") == before) return -1;
    return fake_rconn_find(&w->rfetch, "XREADGROUP");
}

static redisReply *entry(const char *id, const char *type) {
    return fake_arr(2, fake_str(id), fake_arr(2, fake_str("type"), fake_str(type)));
}

/* ---- the read ---- */

Test(fetch, the_read_asks_for_the_free_slots_of_the_queues_kind) {
    w->nqueues = 1;
    jq_admit_init(&w->admit, 8, 4, 1, NULL);
    jq_admit_learn(&w->admit, 0, JQ_KIND_IO);
    int i = kick_read();
    cr_assert_geq(i, 0);
    cr_assert_str_eq(fake_cmds[i].line, "XREADGROUP GROUP " JQ_GROUP
                                        " host:1 COUNT 8 BLOCK 500 STREAMS jq:{a}:stream >");
    cr_assert(w->fetch.reading);
    cr_assert_eq(kick_read(), -1, "one blocking read at a time");
    /* Its reply (nothing came) frees the reservation; with 3 io slots
     * held, the next read asks for the 5 left. */
    jq_admit_hold(&w->admit, 0, JQ_KIND_IO, 3);
    fake_rconn_answer(i, fake_nil());
    i = fake_rconn_find(&w->rfetch, "XREADGROUP");
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 2, "the reply kicks the next read");
    cr_assert_str_eq(fake_cmds[i].argv[5], "5");
}

Test(fetch, a_cpu_queue_is_not_read_while_its_slots_are_taken) {
    jq_admit_learn(&w->admit, 0, JQ_KIND_IO);
    jq_admit_learn(&w->admit, 1, JQ_KIND_CPU);
    jq_admit_hold(&w->admit, 1, JQ_KIND_CPU, 4);
    int i = kick_read();
    cr_assert_geq(i, 0);
    cr_assert_str_eq(fake_cmds[i].line, "XREADGROUP GROUP " JQ_GROUP
                                        " host:1 COUNT 8 BLOCK 500 STREAMS jq:{a}:stream >");
}

Test(fetch, a_paused_queue_is_not_read) {
    w->queues[1].paused = 1;
    int i = kick_read();
    cr_assert_geq(i, 0);
    cr_assert(strstr(fake_cmds[i].line, "jq:{a}:stream"));
    cr_assert_null(strstr(fake_cmds[i].line, "jq:{b}:stream"));
}

Test(fetch, a_queue_whose_pause_state_is_unknown_is_not_read) {
    w->queues[0].paused = -1;
    int i = kick_read();
    cr_assert_geq(i, 0);
    cr_assert_null(strstr(fake_cmds[i].line, "jq:{a}:stream"));
    cr_assert(strstr(fake_cmds[i].line, "STREAMS jq:{b}:stream >"));
    w->queues[1].paused = -1;
    fake_rconn_answer(i, fake_nil());
    cr_assert_eq(fake_rconn_count(NULL, "XREADGROUP"), 1, "no queue known: no read");
}

Test(fetch, a_broken_queue_is_not_read) {
    w->queues[1].health.state = JQ_QUEUE_BROKEN;
    int i = kick_read();
    cr_assert_geq(i, 0);
    cr_assert_null(strstr(fake_cmds[i].line, "jq:{b}:stream"));
}

Test(fetch, no_read_while_draining_held_or_down) {
    w->draining = 1;
    cr_assert_eq(kick_read(), -1);
    w->draining = 0;
    w->finish.held = 1;
    cr_assert_eq(kick_read(), -1);
    w->finish.held = 0;
    w->rfetch.up = 0;
    cr_assert_eq(kick_read(), -1);
    cr_assert_eq(fake_ncmds, 0);
}

/* ---- its reply ---- */

Test(fetch, a_reply_with_two_entries_starts_two_runs) {
    int i = kick_read();
    cr_assert_geq(i, 0);
    fake_rconn_answer(i,
                      fake_arr(1, fake_arr(2, fake_str("jq:{b}:stream"),
                                           fake_arr(2, entry("1-1", "io"), entry("1-2", "cpu")))));
    cr_assert_eq(nstarted, 2);
    cr_assert_eq(ndead, 0);
    cr_assert_str_eq(started[0]->job.entry_id, "1-1");
    cr_assert_str_eq(started[1]->job.entry_id, "1-2");
    cr_assert_eq(started[0]->q, 1);
    cr_assert_eq(started[0]->kind, JQ_KIND_IO);
    cr_assert_eq(started[1]->kind, JQ_KIND_CPU);
    cr_assert_eq(started[1]->h->kind, JQ_KIND_CPU);
    cr_assert_not_null(started[0]->fields, "the run owns the entry's fields");
    cr_assert_eq(w->admit.held[JQ_KIND_IO], 1);
    cr_assert_eq(w->admit.held[JQ_KIND_CPU], 1);
    cr_assert_eq(jq_admit_qkind(&w->admit, 1), JQ_QKIND_MIXED);
}

Test(fetch, a_malformed_reply_is_not_read) {
    int i = kick_read();
    /* A stream name that is no string, an entry list that is a string, an
     * entry id that is an integer, an entry of three elements, a stream
     * we do not read. */
    redisReply *bad_id = fake_arr(2, fake_int(7), fake_arr(2, fake_str("type"), fake_str("io")));
    redisReply *three = fake_arr(3, fake_str("1-3"), fake_arr(0), fake_nil());
    fake_rconn_answer(
        i, fake_arr(4, fake_arr(2, fake_int(1), fake_arr(1, entry("1-1", "io"))),
                    fake_arr(2, fake_str("jq:{a}:stream"), fake_str("1-2")),
                    fake_arr(2, fake_str("jq:{a}:stream"), fake_arr(2, bad_id, three)),
                    fake_arr(2, fake_str("jq:{c}:stream"), fake_arr(1, entry("1-4", "io")))));
    cr_assert_eq(nstarted, 0);
    cr_assert_eq(ndead, 0);
    cr_assert_eq(w->admit.held[JQ_KIND_IO] + w->admit.held[JQ_KIND_CPU], 0);
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 2, "and the next read goes");
    /* A reply that is no array at all. */
    i = fake_rconn_find(&w->rfetch, "XREADGROUP");
    fake_rconn_answer(i, fake_int(3));
    cr_assert_eq(nstarted + ndead, 0);
}

Test(fetch, a_deleted_entry_is_dead_lettered_not_run) {
    int i = kick_read();
    fake_rconn_answer(i,
                      fake_arr(1, fake_arr(2, fake_str("jq:{a}:stream"),
                                           fake_arr(1, fake_arr(2, fake_str("1-1"), fake_nil())))));
    cr_assert_eq(nstarted, 0);
    cr_assert_eq(ndead, 1, "its outcome acks it");
    cr_assert_str_eq(dead[0]->job.entry_id, "1-1");
    cr_assert_eq(dead[0]->outcome, JQ_OUT_DEAD);
    cr_assert_str_eq(dead[0]->error, "missing field: type");
    cr_assert_null(dead[0]->fields);
}

/* The types published on queue a, as the heartbeat reads them back: each
 * name seen at `seen` ms (types.h). */
static void types_read(const char *name, const char *seen) {
    opt.heartbeat_ms = 1000;
    jq_types_publish(&w->types, jq_now_ms());
    int i = fake_rconn_find(&w->rwrite, "ZRANGEBYSCORE jq:{a}:types");
    cr_assert_geq(i, 0);
    fake_rconn_answer(i, name ? fake_arr(2, fake_str(name), fake_str(seen)) : fake_arr(0));
}

static void read_one(const char *id, const char *type) {
    int i = kick_read();
    if (i < 0) i = fake_rconn_find(&w->rfetch, "XREADGROUP"); /* the next read went at once */
    fake_rconn_answer(
        i, fake_arr(1, fake_arr(2, fake_str("jq:{a}:stream"), fake_arr(1, entry(id, type)))));
}

Test(fetch, an_unknown_type_no_live_worker_handles_is_dead_lettered_with_its_name) {
    types_read("other", "1"); /* a type whose worker is long gone */
    read_one("1-1", "nope");  /* enqueued long ago */
    cr_assert_eq(ndead, 1);
    cr_assert_str_eq(dead[0]->error, "unknown job type: nope");
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XCLAIM"), 0);
}

Test(fetch, an_unknown_type_another_live_worker_handles_is_handed_back) {
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)jq_now_ms());
    types_read("nope", now);
    read_one("1-1", "nope");
    cr_assert_eq(ndead, 0);
    cr_assert_eq(nstarted, 0);
    int i = fake_rconn_find(&w->rwrite, "XCLAIM");
    cr_assert_geq(i, 0);
    /* Still pending, held by the consumer named for its type (no
     * worker), stamped idle as a dead worker's entries, its delivery
     * uncounted. */
    cr_assert_str_eq(fake_cmds[i].line,
                     "XCLAIM jq:{a}:stream " JQ_GROUP " type=nope 0 1-1 IDLE 6600000 "
                     "RETRYCOUNT 0 JUSTID");
    cr_assert_eq(nfreed, 1, "its run freed, and its slot with it");
}

Test(fetch, an_unknown_type_waits_for_the_grace_before_the_types_are_read_or_while_young) {
    read_one("1-1", "nope"); /* the types not read yet */
    cr_assert_eq(ndead, 0);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XCLAIM"), 1);
    types_read(NULL, NULL); /* nobody handles it */
    char id[32];
    snprintf(id, sizeof(id), "%lld-0", (long long)jq_now_ms() - 100);
    read_one(id, "nope"); /* but it is 100 ms old */
    cr_assert_eq(ndead, 0);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XCLAIM"), 2);
    read_one("2-1", "nope"); /* and this one is old */
    cr_assert_eq(ndead, 1);
}

Test(fetch, a_failed_read_probes_the_queues_and_waits) {
    int i = kick_read();
    fake_rconn_answer(
        i, fake_err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    cr_assert(w->fetch.backoff);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XGROUP CREATE"), 2, "each queue probed");
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 1, "no read until the probes answer");
    /* Queue b answers healthy, a broken: the read goes on without a. */
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "XGROUP CREATE jq:{b}"), fake_err("BUSYGROUP x"));
    fake_rconn_answer(
        fake_rconn_find(&w->rwrite, "XGROUP CREATE jq:{a}"),
        fake_err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    cr_assert_not(w->fetch.backoff);
    i = fake_rconn_find(&w->rfetch, "XREADGROUP");
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 2);
    cr_assert(strstr(fake_cmds[i].line, "STREAMS jq:{b}:stream >"));
}

/* ---- pause ---- */

Test(fetch, a_pause_cuts_the_blocking_read_short) {
    jq_fetch_connected(&w->fetch);
    fake_rconn_answer(fake_rconn_find(&w->rfetch, "CLIENT ID"), fake_int(42));
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XGROUP CREATE"), 2);
    int i = kick_read();
    cr_assert_geq(i, 0);
    /* Per queue: whether it is paused or has cancels, and whether it uses
     * priority levels. */
    jq_fetch_check_paused(&w->fetch, 1000, 100);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "EXISTS"), 4);
    jq_fetch_check_paused(&w->fetch, 1050, 100);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "EXISTS"), 4, "not again within 100 ms");
    /* One EXISTS per queue asks for pause and cancel requests at once:
     * 0 is neither, 1 either (asked apart), 2 both. */
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "EXISTS jq:{a}:paused jq:{a}:cancel"),
                      fake_int(0));
    cr_assert_eq(w->queues[0].paused, 0);
    cr_assert_eq(w->queues[0].cancels, 0);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "CLIENT UNBLOCK"), 0);
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "EXISTS jq:{b}:paused jq:{b}:cancel"),
                      fake_int(1));
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "EXISTS jq:{b}:cancel"), fake_int(0));
    cr_assert_eq(w->queues[1].cancels, 0);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "CLIENT UNBLOCK"), 0);
    fake_rconn_answer(fake_rconn_find(&w->rwrite, "EXISTS jq:{b}:paused"), fake_int(1));
    cr_assert_eq(w->queues[1].paused, 1);
    int u = fake_rconn_find(&w->rwrite, "CLIENT UNBLOCK");
    cr_assert_geq(u, 0);
    cr_assert_str_eq(fake_cmds[u].line, "CLIENT UNBLOCK 42");
    fake_rconn_answer(i, fake_nil());
    i = fake_rconn_find(&w->rfetch, "XREADGROUP");
    cr_assert(strstr(fake_cmds[i].line, "STREAMS jq:{a}:stream >"));
}

/* ---- reads behind the acks ---- */

Test(fetch, a_read_goes_behind_the_acks_for_the_slots_they_free) {
    w->nqueues = 1;
    jq_admit_init(&w->admit, 8, 4, 1, NULL);
    jq_admit_learn(&w->admit, 0, JQ_KIND_IO);
    jq_admit_hold(&w->admit, 0, JQ_KIND_IO, 8);
    jq_run_t batched = {.q = 0};
    w->finish.batch_head = &batched;
    jq_admit_sent(&w->admit, 0, JQ_KIND_IO, 3);
    jq_fetch_kick(&w->fetch);
    cr_assert_eq(fake_ncmds, 0, "not before the batch's acks are sent");
    w->finish.batch_head = NULL;
    jq_fetch_kick(&w->fetch);
    cr_assert_eq(fake_rconn_count(&w->rfetch, "XREADGROUP"), 0, "no slot free for a blocking read");
    int i = fake_rconn_find(&w->rwrite, "XREADGROUP");
    cr_assert_geq(i, 0);
    cr_assert_str_eq(fake_cmds[i].line,
                     "XREADGROUP GROUP " JQ_GROUP " host:1 COUNT 3 STREAMS jq:{a}:stream >",
                     "on the write connection, after the acks, without BLOCK");
    cr_assert_eq(w->fetch.pipe_reads, 1, "a drain waits for it");
    jq_fetch_kick(&w->fetch);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XREADGROUP"), 1, "one round at a time");
    jq_admit_sent(&w->admit, 0, JQ_KIND_IO, -3);
    jq_admit_hold(&w->admit, 0, JQ_KIND_IO, -3);
    fake_rconn_answer(
        i, fake_arr(1, fake_arr(2, fake_str("jq:{a}:stream"), fake_arr(1, entry("2-1", "io")))));
    cr_assert_eq(w->fetch.pipe_reads, 0);
    cr_assert_eq(nstarted, 1);
    cr_assert_str_eq(started[0]->job.entry_id, "2-1");
}

/* ---- intake ---- */

/* Intake borrows the reply, as from a callback: it is freed right after,
 * so a run that kept a pointer into it fails under ASan. */
static void intake(int q, const char *id, redisReply *f, long long deliveries) {
    jq_fetch_intake(&w->fetch, q, id, f, deliveries);
    freeReplyObject(f);
}

Test(fetch, intake_decodes_the_payload_msgpack_or_json) {
    intake(0, "3-1",
           fake_fields(4, "type", "io", "payload",
                       "\x81\xa1"
                       "a\x01"),
           1);
    intake(0, "3-2", fake_fields(6, "type", "cpu", "enc", "json", "payload", "{\"a\":[1,2]}"), 1);
    cr_assert_eq(nstarted, 2);
    cr_assert_eq(started[0]->payload.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(started[1]->payload.type, MSGPACK_OBJECT_MAP);
    cr_assert_eq(started[1]->payload.via.map.ptr[0].val.type, MSGPACK_OBJECT_ARRAY);
    /* 0xc1 is never used in msgpack: dead, not run. */
    intake(0, "3-3", fake_fields(4, "type", "io", "payload", "\xc1"), 1);
    cr_assert_eq(nstarted, 2);
    cr_assert_eq(ndead, 1);
    cr_assert_str_eq(dead[0]->job.entry_id, "3-3");
}

Test(fetch, intake_moves_a_big_payload_out_of_the_reply_and_copies_the_rest) {
    size_t big = JQ_REPLY_OWN_MIN + 10;
    char *payload = malloc(big + 1);
    payload[0] = (char)0xc5; /* bin 16 of big - 3 bytes */
    payload[1] = (char)((big - 3) >> 8);
    payload[2] = (char)((big - 3) & 0xff);
    memset(payload + 3, 'x', big - 3);
    payload[big] = '\0';
    redisReply *f = fake_fields(4, "type", "io", "payload", "");
    free(f->element[3]->str);
    f->element[3]->str = payload;
    f->element[3]->len = big;
    const char *type = f->element[1]->str;
    jq_fetch_intake(&w->fetch, 0, "3-4", f, 1);
    cr_assert_eq(nstarted, 1);
    jq_run_t *r = started[0];
    cr_assert_null(f->element[3]->str, "the big payload left the reply");
    cr_assert_eq(r->job.payload.p, payload, "moved, not copied");
    cr_assert_neq(r->job.type.p, type, "a small field is copied");
    freeReplyObject(f);
    cr_assert_eq(r->payload.type, MSGPACK_OBJECT_BIN);
    cr_assert_eq(r->payload.via.bin.size, big - 3);
    cr_assert_eq(memcmp(r->job.type.p, "io", 3), 0, "copied with its NUL");
}

/* Ends the run fetch gave as started[i] (run.c's jq_run_free). */
static void give_back(int i) {
    jq_run_t *r = started[i];
    cr_assert_eq(r->zone, &r->zone_mem);
    jq_run_free(r);
    cr_assert_null(started[i], "forgotten: the reset does not free it too");
}

Test(fetch, a_run_given_back_is_reused_zeroed_with_its_zone) {
    intake(0, "6-1",
           fake_fields(6, "type", "io", "id", "first", "payload",
                       "\x81\xa1"
                       "a\x01"),
           1);
    jq_run_t *r = started[0];
    const void *chunk = r->zone_first;
    cr_assert_not_null(chunk);
    r->state = JQ_RUN_RUNNING; /* what the worker would have set */
    give_back(0);
    cr_assert_eq(w->runs.nspare, 1);
    intake(0, "6-2", fake_fields(4, "type", "cpu", "payload", "\x92\x01\x02"), 1);
    cr_assert_eq(started[1], r, "the run given back is reused");
    cr_assert_eq(w->runs.nspare, 0);
    cr_assert_eq(r->state, JQ_RUN_WAITING, "zeroed");
    cr_assert_str_eq(r->job.entry_id, "6-2");
    cr_assert_str_eq(r->job.id, "6-2", "nothing of the last job's id");
    cr_assert_eq(r->zone_first, chunk, "its zone's chunk is kept");
    cr_assert_eq(r->payload.type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(r->payload.via.array.size, 2);
}

Test(fetch, a_run_with_large_fields_is_not_kept_for_reuse) {
    char big[700];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    intake(0, "6-3", fake_fields(6, "type", "io", "mine", big, "payload", "\xc0"), 1);
    jq_run_t *r = started[0];
    cr_assert_str_eq(r->fields->f[3].p, big);
    give_back(0);
    cr_assert_eq(w->runs.nspare, 0, "freed, not kept");
}

Test(fetch, intake_stops_a_poison_job_and_a_spent_attempt) {
    /* Delivered a third time, two attempts allowed: its workers kept dying. */
    intake(0, "4-1", fake_fields(4, "type", "io", "max_attempts", "2"), 3);
    intake(0, "4-2", fake_fields(4, "type", "io", "max_attempts", "2"), 2);
    intake(0, "4-3", fake_fields(6, "type", "io", "max_attempts", "2", "attempt", "2"), 1);
    cr_assert_eq(nstarted, 1);
    cr_assert_str_eq(started[0]->job.entry_id, "4-2");
    cr_assert_eq(ndead, 2);
    cr_assert_str_eq(dead[0]->error, "worker lost");
    cr_assert_str_eq(dead[1]->error, "bad field attempt: 2 (want less than max_attempts 2)");
    cr_assert_eq(w->admit.held[JQ_KIND_IO], 3, "each holds its slot until freed");
}

Test(fetch, a_chunked_entry_goes_to_the_chunk_loader) {
    intake(1, "5-1", fake_fields(8, "type", "cpu", "id", "big", "chunks", "2", "size", "10"), 1);
    cr_assert_eq(nchunked, 1);
    cr_assert_eq(nstarted + ndead, 0);
    cr_assert_eq(w->admit.held[JQ_KIND_CPU], 1, "it holds a cpu slot while it loads");
}

/* ---- the fetch connection comes up ---- */

Test(fetch, on_connect_it_asks_its_client_id_and_makes_each_group) {
    jq_fetch_connected(&w->fetch);
    cr_assert_str_eq(fake_cmds[0].line, "CLIENT ID");
    cr_assert_eq(fake_cmds[0].c, &w->rfetch);
    char want[128];
    snprintf(want, sizeof(want), "XGROUP CREATE jq:{b}:stream %s 0 MKSTREAM", JQ_GROUP);
    cr_assert_str_eq(fake_cmds[2].line, want);
    /* Until CLIENT ID answers, a blocking read cannot be cut short. */
    int r = kick_read();
    jq_fetch_unblock(&w->fetch);
    cr_assert_eq(fake_rconn_count(NULL, "CLIENT UNBLOCK"), 0);
    fake_rconn_answer(0, fake_int(7));
    jq_fetch_unblock(&w->fetch);
    cr_assert_eq(fake_rconn_count(&w->rwrite, "CLIENT UNBLOCK 7"), 1);
    fake_rconn_answer(r, fake_nil());
    /* The group exists already: fine. Queue b's key holds another type:
     * a suspect, probed, and left out of the reads meanwhile. */
    fake_rconn_answer(fake_rconn_find(&w->rfetch, "XGROUP CREATE jq:{a}"),
                      fake_err("BUSYGROUP Consumer Group name already exists"));
    cr_assert(jq_queue_ok(&w->queues[0]));
    fake_rconn_answer(
        fake_rconn_find(&w->rfetch, "XGROUP CREATE jq:{b}"),
        fake_err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    cr_assert_not(jq_queue_ok(&w->queues[1]));
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XGROUP CREATE jq:{b}"), 1, "probed");
    cr_assert_eq(fake_rconn_count(&w->rwrite, "XGROUP CREATE jq:{a}"), 0);
}
