/* Tests of consumer/handlers/procwire.c: the frames between a worker and
 * its --proc handler processes (docs/HANDLERS.md). */

#include <criterion/criterion.h>
#include <string.h>

#include "procwire.h"

typedef void pack_fn(msgpack_packer *pk);

static void pstr(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* The bytes fn packs (into sb, which m and u borrow from: kept by the
 * caller), decoded into m. */
static int parse(pack_fn *fn, msgpack_sbuffer *sb, jq_proc_msg_t *m, msgpack_unpacked *u, char *err,
                 size_t errlen) {
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    fn(&pk);
    return jq_procwire_parse(sb->data, sb->size, u, m, err, errlen);
}

static void hello(msgpack_packer *pk) {
    msgpack_pack_map(pk, 4);
    pstr(pk, "op"), pstr(pk, "hello");
    pstr(pk, "protocol"), msgpack_pack_uint8(pk, 1);
    pstr(pk, "types"), msgpack_pack_array(pk, 2), pstr(pk, "a"), pstr(pk, "b");
    pstr(pk, "max_inflight"), msgpack_pack_uint16(pk, 300);
}

static void result(msgpack_packer *pk) {
    msgpack_pack_map(pk, 4);
    pstr(pk, "op"), pstr(pk, "result");
    pstr(pk, "seq"), msgpack_pack_uint64(pk, 65537);
    pstr(pk, "result"), msgpack_pack_array(pk, 1), msgpack_pack_int(pk, -3);
    pstr(pk, "extra"), msgpack_pack_nil(pk); /* unknown keys are ignored */
}

static void perm_error(msgpack_packer *pk) {
    msgpack_pack_map(pk, 4);
    pstr(pk, "op"), pstr(pk, "error");
    pstr(pk, "seq"), msgpack_pack_uint64(pk, 7);
    pstr(pk, "error"), pstr(pk, "bad input");
    pstr(pk, "permanent"), msgpack_pack_true(pk);
}

static void no_op(msgpack_packer *pk) {
    msgpack_pack_map(pk, 1);
    pstr(pk, "seq"), msgpack_pack_uint64(pk, 7);
}

static void odd_op(msgpack_packer *pk) {
    msgpack_pack_map(pk, 1);
    pstr(pk, "op"), pstr(pk, "shout");
}

static void negative_seq(msgpack_packer *pk) {
    msgpack_pack_map(pk, 2);
    pstr(pk, "op"), pstr(pk, "result");
    pstr(pk, "seq"), msgpack_pack_int(pk, -1);
}

static void old_protocol(msgpack_packer *pk) {
    msgpack_pack_map(pk, 3);
    pstr(pk, "op"), pstr(pk, "hello");
    pstr(pk, "protocol"), msgpack_pack_uint8(pk, 2);
    pstr(pk, "types"), msgpack_pack_array(pk, 0);
}

static void not_a_map(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }

Test(procwire, hello_result_and_error) {
    msgpack_unpacked u;
    jq_proc_msg_t m;
    char err[160] = "";
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_unpacked_init(&u);
    cr_assert_eq(parse(hello, &sb, &m, &u, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.op, JQ_PROC_HELLO);
    cr_assert_eq(m.types->via.array.size, 2);
    cr_assert_eq(m.max_inflight, 300);
    cr_assert_eq(parse(result, &sb, &m, &u, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.op, JQ_PROC_RESULT);
    cr_assert_eq(m.seq, 65537);
    cr_assert_eq(m.value->type, MSGPACK_OBJECT_ARRAY);
    cr_assert_eq(parse(perm_error, &sb, &m, &u, err, sizeof err), 0, "%s", err);
    cr_assert_eq(m.op, JQ_PROC_ERROR);
    cr_assert_eq(m.permanent, 1);
    cr_assert_eq(m.error_len, 9);
    cr_assert(memcmp(m.error, "bad input", 9) == 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(procwire, malformed_frames_say_why) {
    struct {
        pack_fn *fn;
        const char *why;
    } cases[] = {
        {no_op, "a frame without a string op"},
        {odd_op, "unknown op 'shout'"},
        {negative_seq, "result: seq must be a non-negative integer"},
        {old_protocol, "hello: want protocol 1"},
        {not_a_map, "a frame that is not a msgpack map"},
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_unpacked u;
        jq_proc_msg_t m;
        char err[160] = "";
        msgpack_unpacked_init(&u);
        cr_assert_eq(parse(cases[i].fn, &sb, &m, &u, err, sizeof err), -1, "case %zu", i);
        cr_assert_str_eq(err, cases[i].why);
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked u;
    jq_proc_msg_t m;
    char err[160] = "";
    msgpack_unpacked_init(&u);
    cr_assert_eq(jq_procwire_parse("\xc1\xc1\xc1", 3, &u, &m, err, sizeof err), -1);
    cr_assert_str_eq(err, "a frame of 3 bytes that is not msgpack");
    cr_assert_eq(jq_procwire_parse("\x80\x80", 2, &u, &m, err, sizeof err), -1);
    cr_assert_str_eq(err, "1 bytes after the msgpack value of a frame");
    msgpack_unpacked_destroy(&u);
}

Test(procwire, job_frame_has_its_length_and_fields) {
    msgpack_object payload = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = 42};
    jq_handler_t h = {.name = "resize", .kind = JQ_KIND_IO};
    jq_task_t t = {.payload = &payload,
                   .handler = &h,
                   .job_id = "1-0",
                   .queue = "q",
                   .attempt = 2,
                   .deadline_ms = 1234};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(jq_procwire_job(&sb, 99, &t), 0);
    cr_assert_eq(jq_procwire_cancel(&sb, 99), 0);
    uint32_t len = jq_procwire_len((unsigned char *)sb.data);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, sb.data + 4, len, &off), MSGPACK_UNPACK_SUCCESS);
    cr_assert_eq(off, len);
    msgpack_object_map *map = &u.data.via.map;
    cr_assert_eq(map->size, 8);
    const char *keys[] = {"op", "seq", "id", "type", "queue", "attempt", "deadline_ms", "payload"};
    for (uint32_t i = 0; i < map->size; i++) {
        cr_assert_eq(map->ptr[i].key.via.str.size, strlen(keys[i]));
        cr_assert(memcmp(map->ptr[i].key.via.str.ptr, keys[i], strlen(keys[i])) == 0);
    }
    cr_assert_eq(map->ptr[1].val.via.u64, 99);
    cr_assert_eq(map->ptr[6].val.via.u64, 1234);
    cr_assert_eq(map->ptr[7].val.via.u64, 42);
    /* The cancel frame follows: {op: cancel, seq: 99}. */
    uint32_t len2 = jq_procwire_len((unsigned char *)sb.data + 4 + len);
    cr_assert_eq(4 + len + 4 + len2, sb.size);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}
