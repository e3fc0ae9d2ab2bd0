/* view.c: how jobs are shown as JSON. The output of each writer is parsed
 * back with json-c, so a test fails on invalid JSON as well as on a wrong
 * value. */

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <string.h>

#include "view.h"

static msgpack_sbuffer sb;

static void setup(void) { msgpack_sbuffer_init(&sb); }
static void teardown(void) { msgpack_sbuffer_destroy(&sb); }

TestSuite(view, .init = setup, .fini = teardown);

/* Parses the buffer as JSON; the caller puts it. */
static json_object *parsed(void) {
    msgpack_sbuffer_write(&sb, "", 1); /* NUL */
    json_object *o = json_tokener_parse(sb.data);
    cr_assert(o, "not JSON: %s", sb.data);
    return o;
}

static const char *str_of(json_object *o, const char *k) {
    json_object *v;
    cr_assert(json_object_object_get_ex(o, k, &v), "no member %s", k);
    return json_object_get_string(v);
}

static json_object *preview(const char *p, size_t len, size_t total, int json_enc, size_t max) {
    cr_assert_eq(jq_view_payload_preview(&sb, p, len, total, json_enc, max), 0);
    return parsed();
}

Test(view, fields_numbers_strings_and_skips) {
    jq_field_t f[] = {
        {"type", "fail", 4},    {"attempt", "3", 1},
        {"payload", "\xc0", 1}, {"error", "bad \"x\"\n\xff", 9},
        {"id", "x", 1},         {"size", "big", 3},
    };
    jq_dead_job_t job = {.fields = f, .nfields = 6};
    static const char *const skip[] = {"id", NULL};
    msgpack_sbuffer_write(&sb, "{\"k\":0", 6);
    cr_assert_eq(jq_view_fields(&sb, &job, skip), 0);
    msgpack_sbuffer_write(&sb, "}", 1);
    json_object *o = parsed();
    cr_assert_str_eq(str_of(o, "type"), "fail");
    json_object *v;
    cr_assert(json_object_object_get_ex(o, "attempt", &v) && json_object_is_type(v, json_type_int));
    cr_assert_eq(json_object_get_int(v), 3);
    cr_assert(json_object_object_get_ex(o, "size", &v) && json_object_is_type(v, json_type_string),
              "a counter that is not a number stays a string");
    /* Invalid UTF-8 comes back as \u00ff, i.e. U+00FF. */
    cr_assert_str_eq(str_of(o, "error"), "bad \"x\"\n\xc3\xbf");
    cr_assert(!json_object_object_get_ex(o, "payload", &v));
    cr_assert(!json_object_object_get_ex(o, "id", &v));
    json_object_put(o);
}

/* A finished job's result hash: its counters and times are numbers, as
 * `jobq enqueue --wait` prints them, not the strings Redis holds. */
Test(view, result_hash_counters_are_numbers) {
    jq_field_t f[] = {{"state", "done", 4},
                      {"attempts", "2", 1},
                      {"finished_at", "1796459734687", 13},
                      {"started_at", "1796459734001", 13},
                      {"worker", "vm:1", 4}};
    jq_dead_job_t job = {.fields = f, .nfields = 5};
    msgpack_sbuffer_write(&sb, "{\"k\":0", 6);
    cr_assert_eq(jq_view_fields(&sb, &job, NULL), 0);
    msgpack_sbuffer_write(&sb, "}", 1);
    json_object *o = parsed();
    json_object *v;
    cr_assert(json_object_object_get_ex(o, "attempts", &v) &&
              json_object_is_type(v, json_type_int));
    cr_assert_eq(json_object_get_int(v), 2);
    cr_assert(json_object_object_get_ex(o, "finished_at", &v) &&
              json_object_is_type(v, json_type_int));
    cr_assert_eq(json_object_get_int64(v), 1796459734687LL);
    cr_assert(json_object_object_get_ex(o, "started_at", &v) &&
              json_object_is_type(v, json_type_int));
    cr_assert_str_eq(str_of(o, "worker"), "vm:1");
    json_object_put(o);
}

Test(view, preview_json_whole_and_cut) {
    const char mp[] = "\x81\xa4name\xa8<script>"; /* {"name":"<script>"} */
    json_object *o = preview(mp, sizeof(mp) - 1, sizeof(mp) - 1, 0, 1000);
    cr_assert_str_eq(str_of(o, "kind"), "json");
    cr_assert_str_eq(str_of(o, "text"), "{\"name\":\"<script>\"}");
    cr_assert_str_eq(str_of(o, "truncated"), "false");
    json_object_put(o);
    sb.size = 0;
    o = preview(mp, sizeof(mp) - 1, sizeof(mp) - 1, 0, 5);
    cr_assert_str_eq(str_of(o, "text"), "{\"nam");
    cr_assert_str_eq(str_of(o, "truncated"), "true");
    json_object_put(o);
    /* A cut never splits a character: "é" is two bytes. */
    sb.size = 0;
    o = preview("\xa2\xc3\xa9", 3, 3, 0, 2);
    cr_assert_str_eq(str_of(o, "text"), "\"");
    json_object_put(o);
    sb.size = 0;
    o = preview("{\"a\": [1, 2]}", 13, 13, 1, 100);
    cr_assert_str_eq(str_of(o, "kind"), "json");
    cr_assert_str_eq(str_of(o, "text"), "{\"a\":[1,2]}");
    json_object_put(o);
}

Test(view, preview_binary_raw_and_none) {
    char bin[600 + 3];
    bin[0] = '\xc5'; /* bin 16 */
    bin[1] = 600 >> 8;
    bin[2] = 600 & 0xff;
    for (int i = 0; i < 600; i++) bin[3 + i] = (char)i;
    json_object *o = preview(bin, sizeof(bin), sizeof(bin), 0, 1000);
    cr_assert_str_eq(str_of(o, "kind"), "binary");
    cr_assert_str_eq(str_of(o, "truncated"), "true");
    cr_assert(json_object_get_int(json_object_object_get(o, "size")) == 600);
    const char *t = str_of(o, "text");
    cr_assert(!strncmp(t, "00000000  00 01 02 03", 21), "%s", t);
    cr_assert_eq(strlen(t), 32 * 78, "512 bytes: 32 lines");
    json_object_put(o);

    sb.size = 0; /* not msgpack at all */
    o = preview("\xc1<b>", 4, 4, 0, 1000);
    cr_assert_str_eq(str_of(o, "kind"), "raw");
    cr_assert(strstr(str_of(o, "text"), "c1 3c 62 3e"), "%s", str_of(o, "text"));
    cr_assert(strstr(str_of(o, "text"), "|.<b>|"), "%s", str_of(o, "text"));
    json_object_put(o);

    sb.size = 0; /* only a head at hand */
    o = preview("\xa5he", 3, 6, 0, 1000);
    cr_assert_str_eq(str_of(o, "kind"), "raw");
    cr_assert_str_eq(str_of(o, "truncated"), "true");
    json_object_put(o);

    sb.size = 0;
    o = preview(NULL, 0, 0, 0, 1000);
    cr_assert_str_eq(str_of(o, "kind"), "none");
    json_object_put(o);
}

Test(view, payload_json_bad_input_stays_valid_json) {
    cr_assert_eq(jq_view_payload_json(&sb, "{\"a\":", 5, 1), 0);
    json_object *o = parsed();
    cr_assert_str_eq(json_object_get_string(o), "{\"a\":");
    json_object_put(o);
    sb.size = 0;
    cr_assert_eq(jq_view_payload_json(&sb, NULL, 0, 0), 0);
    cr_assert_eq(sb.size, 4);
}
