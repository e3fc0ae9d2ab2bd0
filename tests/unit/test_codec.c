/* Unit tests of common/codec.c: msgpack checking, JSON <-> msgpack. */

#include <criterion/criterion.h>
#include <string.h>

#include "codec.h"

/* JSON -> msgpack -> JSON; returns the final text (malloc'd). */
static char *round_trip(const char *json) {
    msgpack_sbuffer mp, out;
    char err[JQ_ERR_LEN] = "";
    char *text;

    msgpack_sbuffer_init(&mp);
    msgpack_sbuffer_init(&out);
    cr_assert_eq(jq_codec_json_to_msgpack(json, strlen(json), &mp, err, sizeof(err)), 0, "%s: %s",
                 json, err);
    cr_assert_eq(jq_codec_check_msgpack(mp.data, mp.size, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(jq_codec_bytes_to_json(mp.data, mp.size, &out, err, sizeof(err)), 0, "%s", err);
    text = strndup(out.data ? out.data : "", out.size);
    msgpack_sbuffer_destroy(&mp);
    msgpack_sbuffer_destroy(&out);
    return text;
}

static void expect_round_trip(const char *in, const char *want) {
    char *got = round_trip(in);
    cr_expect_str_eq(got, want, "round trip of %s", in);
    free(got);
}

Test(codec, round_trip_scalars) {
    expect_round_trip("null", "null");
    expect_round_trip("true", "true");
    expect_round_trip("false", "false");
    expect_round_trip("0", "0");
    expect_round_trip("42", "42");
    expect_round_trip("-7", "-7");
    expect_round_trip("\"\"", "\"\"");
    expect_round_trip("\"hello\"", "\"hello\"");
}

Test(codec, round_trip_numbers) {
    expect_round_trip("9223372036854775807", "9223372036854775807");
    expect_round_trip("-9223372036854775808", "-9223372036854775808");
    expect_round_trip("18446744073709551615", "18446744073709551615");
    expect_round_trip("1.5", "1.5");
    expect_round_trip("0.1", "0.1");
    expect_round_trip("1.0", "1.0"); /* stays a float */
    expect_round_trip("-2.5e-300", "-2.5e-300");
    expect_round_trip("1e20", "1e+20");
}

Test(codec, round_trip_nested) {
    expect_round_trip(" { \"a\" : [1, {\"b\": null}, []], \"c\": {} } ",
                      "{\"a\":[1,{\"b\":null},[]],\"c\":{}}");
    expect_round_trip("[[[[[\"deep\"]]]]]", "[[[[[\"deep\"]]]]]");
    expect_round_trip("{}", "{}");
    expect_round_trip("[]", "[]");
}

Test(codec, round_trip_unicode_and_escapes) {
    expect_round_trip("\"h\\u00e9llo \\u4e16\\u754c \\ud83d\\ude00\"",
                      "\"h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80\"");
    expect_round_trip("\"q\\\" b\\\\ n\\n t\\t c\\u0001 z\\u0000\"",
                      "\"q\\\" b\\\\ n\\n t\\t c\\u0001 z\\u0000\"");
    expect_round_trip("{\"\xc3\xa9t\xc3\xa9\":1}", "{\"\xc3\xa9t\xc3\xa9\":1}");
}

Test(codec, json_types_become_msgpack_types) {
    msgpack_sbuffer mp;
    msgpack_unpacked u;
    char err[JQ_ERR_LEN];
    const char *json = "{\"s\":\"x\",\"u\":5,\"i\":-5,\"f\":2.5,\"n\":null,"
                       "\"a\":[true]}";

    msgpack_sbuffer_init(&mp);
    cr_assert_eq(jq_codec_json_to_msgpack(json, strlen(json), &mp, err, sizeof(err)), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(msgpack_unpack_next(&u, mp.data, mp.size, NULL), MSGPACK_UNPACK_SUCCESS);
    cr_expect_eq(jq_codec_map_get(&u.data, "s")->type, MSGPACK_OBJECT_STR);
    cr_expect_eq(jq_codec_map_get(&u.data, "u")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    cr_expect_eq(jq_codec_map_get(&u.data, "u")->via.u64, 5);
    cr_expect_eq(jq_codec_map_get(&u.data, "i")->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    cr_expect_eq(jq_codec_map_get(&u.data, "f")->type, MSGPACK_OBJECT_FLOAT64);
    cr_expect_eq(jq_codec_map_get(&u.data, "n")->type, MSGPACK_OBJECT_NIL);
    cr_expect_eq(jq_codec_map_get(&u.data, "a")->type, MSGPACK_OBJECT_ARRAY);
    cr_expect_null(jq_codec_map_get(&u.data, "missing"));
    cr_expect_null(jq_codec_map_get(&jq_codec_map_get(&u.data, "a")->via.array.ptr[0], "s"));
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&mp);
}

static void expect_json_error(const char *json, size_t len, const char *want) {
    msgpack_sbuffer mp;
    char err[JQ_ERR_LEN] = "";

    msgpack_sbuffer_init(&mp);
    cr_expect_eq(jq_codec_json_to_msgpack(json, len, &mp, err, sizeof(err)), -1, "accepted %.*s",
                 (int)len, json);
    cr_expect(strstr(err, want) != NULL, "error for %.*s: '%s', want '%s'", (int)len, json, err,
              want);
    msgpack_sbuffer_destroy(&mp);
}

Test(codec, broken_json_is_an_error) {
    expect_json_error("{\"a\":", 5, "not valid JSON");
    expect_json_error("{\"a\":1}x", 8, "not valid JSON: trailing data at byte 7");
    expect_json_error("[1,]", 4, "not valid JSON");
    expect_json_error("'a'", 3, "not valid JSON");
    expect_json_error("", 0, "not valid JSON: empty");
    expect_json_error("   ", 3, "not valid JSON: empty");
    expect_json_error("nul", 3, "not valid JSON");
    expect_json_error("1\0x", 3, "not valid JSON");
    expect_json_error("\"\xff\"", 3, "not valid JSON");
    expect_json_error("NaN", 3, "not valid JSON");
    expect_json_error("[1e400]", 7, "not valid JSON");
}

Test(codec, json_uses_the_given_length) {
    msgpack_sbuffer mp;
    char err[JQ_ERR_LEN];

    /* Only "[1]" counts: the bytes after len are not read. */
    msgpack_sbuffer_init(&mp);
    cr_assert_eq(jq_codec_json_to_msgpack("[1]garbage", 3, &mp, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(mp.size, 2);
    msgpack_sbuffer_destroy(&mp);
}

Test(codec, json_integers_beyond_64_bits_are_an_error) {
    expect_json_error("99999999999999999999", 20, "does not fit in 64 bits");
    expect_json_error("[1, -9223372036854775809]", 25, "does not fit in 64 bits");
    expect_json_error("{\"big\": 18446744073709551616}", 29, "does not fit in 64 bits");
}

Test(codec, check_accepts_one_whole_object) {
    char err[JQ_ERR_LEN];
    /* {"a": [1, -1, "xy", nil, 1.5(f64)]} */
    static const char ok[] = "\x81\xa1"
                             "a"
                             "\x95\x01\xff\xa2xy\xc0"
                             "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00";

    cr_expect_eq(jq_codec_check_msgpack(ok, sizeof(ok) - 1, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(jq_codec_check_msgpack("\xc0", 1, err, sizeof(err)), 0);
    cr_expect_eq(jq_codec_check_msgpack("\x90", 1, err, sizeof(err)), 0);
    cr_expect_eq(jq_codec_check_msgpack("\xd4\x01\x02", 3, err, sizeof(err)), 0);
    cr_expect_eq(jq_codec_check_msgpack("\xc7\x02\x05\xaa\xbb", 5, err, sizeof(err)), 0);
}

Test(codec, check_rejects_truncated) {
    char err[JQ_ERR_LEN] = "";
    static const char ok[] = "\x81\xa1"
                             "a"
                             "\x93\x01\x02\xa2xy";
    size_t n = sizeof(ok) - 1;

    cr_expect_eq(jq_codec_check_msgpack(ok, n, err, sizeof(err)), 0, "%s", err);
    for (size_t cut = 0; cut < n; cut++) {
        err[0] = '\0';
        cr_expect_eq(jq_codec_check_msgpack(ok, cut, err, sizeof(err)), -1,
                     "accepted %zu of %zu bytes", cut, n);
        cr_expect(strstr(err, "payload is not valid msgpack: truncated") != NULL, "%s", err);
    }
    /* The array at byte 3 announces 3 elements; 1 byte is left. */
    jq_codec_check_msgpack("\x81\xa1"
                           "a"
                           "\x93\x01",
                           5, err, sizeof(err));
    cr_expect_str_eq(err, "payload is not valid msgpack: truncated at byte 3 of 5");
    /* A str32 header that announces 4 GiB. */
    cr_expect_eq(jq_codec_check_msgpack("\xdb\xff\xff\xff\xff"
                                        "ab",
                                        7, err, sizeof(err)),
                 -1);
    /* An array32 that announces more elements than bytes left. */
    cr_expect_eq(jq_codec_check_msgpack("\xdd\x7f\xff\xff\xff\xc0", 6, err, sizeof(err)), -1);
}

Test(codec, check_rejects_trailing_bytes) {
    char err[JQ_ERR_LEN] = "";

    cr_expect_eq(jq_codec_check_msgpack("\x01\x02", 2, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "payload is not valid msgpack: 1 trailing bytes after byte 1");
    cr_expect_eq(jq_codec_check_msgpack("\x91\x01\xc0", 3, err, sizeof(err)), -1);
    cr_expect(strstr(err, "trailing") != NULL, "%s", err);
}

Test(codec, check_rejects_bad_byte_and_deep_nesting) {
    char err[JQ_ERR_LEN] = "";
    char deep[40];

    cr_expect_eq(jq_codec_check_msgpack("\x91\xc1", 2, err, sizeof(err)), -1);
    cr_expect(strstr(err, "0xc1") != NULL, "%s", err);

    /* msgpack-c unpacks at most 32 nested containers: the check agrees. */
    memset(deep, 0x91, sizeof(deep));
    deep[32] = '\xc0';
    cr_expect_eq(jq_codec_check_msgpack(deep, 33, err, sizeof(err)), 0, "%s", err);
    deep[32] = '\x91';
    deep[33] = '\xc0';
    cr_expect_eq(jq_codec_check_msgpack(deep, 34, err, sizeof(err)), -1);
    cr_expect(strstr(err, "nested deeper") != NULL, "%s", err);
}

Test(codec, check_agrees_with_msgpack_c) {
    char err[JQ_ERR_LEN];
    char deep[40];
    msgpack_unpacked u;

    memset(deep, 0x91, sizeof(deep));
    for (size_t d = 30; d <= 34; d++) {
        size_t off = 0;
        deep[d] = '\x90'; /* an empty array at the bottom */
        int mine = jq_codec_check_msgpack(deep, d + 1, err, sizeof(err));
        msgpack_unpacked_init(&u);
        int theirs = msgpack_unpack_next(&u, deep, d + 1, &off);
        msgpack_unpacked_destroy(&u);
        cr_expect_eq(mine == 0, theirs == MSGPACK_UNPACK_SUCCESS,
                     "depth %zu: check %d, msgpack-c %d", d, mine, theirs);
        deep[d] = '\x91';
    }
}

Test(codec, bin_ext_and_odd_keys_to_json) {
    msgpack_sbuffer out;
    char err[JQ_ERR_LEN];
    /* {1: bin "a\xff", [2]: ext(5, 2 bytes), "f": float32 0.5} */
    static const char mp[] = "\x83\x01\xc4\x02"
                             "a\xff"
                             "\x91\x02\xd5\x05\x00\x00"
                             "\xa1"
                             "f\xca\x3f\x00\x00\x00";

    msgpack_sbuffer_init(&out);
    cr_assert_eq(jq_codec_bytes_to_json(mp, sizeof(mp) - 1, &out, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(out.size, strlen("{\"1\":\"a\\u00ff\",\"[2]\":\"<ext type 5, 2 "
                                  "bytes>\",\"f\":0.5}"));
    cr_expect(memcmp(out.data,
                     "{\"1\":\"a\\u00ff\",\"[2]\":\"<ext type 5, 2 bytes>\","
                     "\"f\":0.5}",
                     out.size) == 0,
              "%.*s", (int)out.size, out.data);
    msgpack_sbuffer_destroy(&out);

    msgpack_sbuffer_init(&out);
    cr_expect_eq(jq_codec_bytes_to_json("\x92\x01", 2, &out, err, sizeof(err)), -1);
    cr_expect(strstr(err, "not valid msgpack") != NULL, "%s", err);
    msgpack_sbuffer_destroy(&out);
}

Test(codec, map_get_ignores_non_maps) {
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    cr_expect_null(jq_codec_map_get(&nil, "a"));
    cr_expect_null(jq_codec_map_get(NULL, "a"));
}

Test(codec, json_nesting_stays_within_what_msgpack_c_unpacks) {
    char json[80];
    msgpack_sbuffer mp;
    char err[JQ_ERR_LEN] = "";

    /* The deepest JSON we accept must still pass the msgpack check. */
    for (int depth = 30; depth <= 34; depth++) {
        memset(json, '[', (size_t)depth);
        json[depth] = '1';
        memset(json + depth + 1, ']', (size_t)depth);
        msgpack_sbuffer_init(&mp);
        int rc = jq_codec_json_to_msgpack(json, 2 * (size_t)depth + 1, &mp, err, sizeof(err));
        if (rc == 0)
            cr_expect_eq(jq_codec_check_msgpack(mp.data, mp.size, err, sizeof(err)), 0,
                         "depth %d: %s", depth, err);
        else
            cr_expect(strstr(err, "not valid JSON") != NULL, "%s", err);
        if (depth <= 31) cr_expect_eq(rc, 0, "depth %d: %s", depth, err);
        msgpack_sbuffer_destroy(&mp);
    }
}

/* Mutates valid msgpack at random (fixed seed) and asks msgpack-c: what the
 * check accepts must unpack to exactly its length, and what it rejects for a
 * bad byte, trailing bytes or depth must fail there too. (Truncations are
 * not put to msgpack-c: a cut header can announce 4 billion elements, and
 * msgpack-c would try to allocate room for them.) */
Test(codec, check_agrees_with_msgpack_c_on_mutations) {
    static const char *const seeds[] = {
        "{\"a\":[1,2,{\"b\":\"xyz\",\"c\":null}],\"d\":1.5,\"e\":-300,\"f\":\"\\u00e9\"}",
        "[[[[]]],{},\"s\",true,false,18446744073709551615,-1e300]",
    };
    char err[JQ_ERR_LEN];
    unsigned int seed = 12345;
    int accepted = 0;

    for (int it = 0; it < 20000; it++) {
        msgpack_sbuffer mp;
        unsigned char buf[256];
        const char *s = seeds[it % 2];
        size_t n;

        msgpack_sbuffer_init(&mp);
        cr_assert_eq(jq_codec_json_to_msgpack(s, strlen(s), &mp, err, sizeof(err)), 0);
        n = mp.size;
        memcpy(buf, mp.data, n);
        msgpack_sbuffer_destroy(&mp);
        for (int m = rand_r(&seed) % 4; m > 0; m--) {
            int kind = rand_r(&seed) % 3;
            if (kind == 0 && n > 0)
                buf[rand_r(&seed) % n] = (unsigned char)rand_r(&seed);
            else if (kind == 1 && n > 1)
                n = (size_t)rand_r(&seed) % n;
            else if (n < sizeof(buf))
                buf[n++] = (unsigned char)rand_r(&seed);
        }

        int mine = jq_codec_check_msgpack((const char *)buf, n, err, sizeof(err));
        if (mine < 0 && strstr(err, "truncated")) continue;
        msgpack_unpacked u;
        size_t off = 0;
        msgpack_unpacked_init(&u);
        int r = msgpack_unpack_next(&u, (const char *)buf, n, &off);
        msgpack_unpacked_destroy(&u);
        int theirs = r == MSGPACK_UNPACK_SUCCESS && off == n;
        cr_assert_eq(mine == 0, theirs, "iteration %d: check %d (%s), msgpack-c %d", it, mine,
                     mine ? err : "", r);
        accepted += mine == 0;
    }
    cr_expect_gt(accepted, 1000);
}

/* Found by tests/fuzz/fuzz_json: a JSON key that json-c cuts to "" (it
 * began with \u0000) reaches the writer as a str of length 0 with no bytes
 * (NULL), and NULL + 0 is undefined behaviour (UBSan under `make check`). */
Test(codec, empty_str_without_bytes_to_json) {
    msgpack_sbuffer out;
    msgpack_object o;
    msgpack_sbuffer_init(&out);
    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = NULL;
    o.via.str.size = 0;
    cr_assert_eq(jq_codec_msgpack_to_json(&o, &out), 0);
    cr_expect(out.size == 2 && memcmp(out.data, "\"\"", 2) == 0, "%.*s", (int)out.size, out.data);
    msgpack_sbuffer_destroy(&out);

    char err[JQ_ERR_LEN];
    static const char json[] = "{\"\\u0000k\":1,\"k\":2}";
    msgpack_sbuffer_init(&out);
    cr_assert_eq(jq_codec_json_to_msgpack(json, sizeof(json) - 1, &out, err, sizeof(err)), 0, "%s",
                 err);
    msgpack_sbuffer js;
    msgpack_sbuffer_init(&js);
    cr_expect_eq(jq_codec_bytes_to_json(out.data, out.size, &js, err, sizeof(err)), 0, "%s", err);
    msgpack_sbuffer_destroy(&js);
    msgpack_sbuffer_destroy(&out);
}

Test(codec, pack_text_str_or_bin) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    const char *cases[] = {"",         "hello",        "h\xc3\xa9llo", "bad\xff",
                           "\xc0\xaf", "\xed\xa0\x80", "cut\xe2\x82"};
    const int is_str[] = {1, 1, 1, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        cr_assert_eq(jq_codec_pack_text(&pk, cases[i], strlen(cases[i])), 0);
        msgpack_unpacked_init(&u);
        cr_assert_eq(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
        cr_expect_eq(u.data.type, is_str[i] ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN, "case %zu",
                     i);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* Found by tests/fuzz/fuzz_msgpack: a map key that is a map whose key is a
 * map... was written as its escaped JSON text, and each level doubles the
 * backslashes: 32 levels asked for 2^32 bytes. A key's text is now capped,
 * so the output stays about as large as the input. */
Test(codec, nested_map_keys_stay_small) {
    char mp[200];
    size_t n = 0;
    for (int i = 0; i < 31; i++) mp[n++] = '\x81'; /* {key: ...} 31 deep */
    mp[n++] = '\xa1';
    mp[n++] = '"';                                 /* innermost key "\"" */
    mp[n++] = '\x01';                              /* its value */
    for (int i = 0; i < 30; i++) mp[n++] = '\x02'; /* each level's value */
    msgpack_sbuffer out;
    char err[JQ_ERR_LEN];
    msgpack_sbuffer_init(&out);
    cr_assert_eq(jq_codec_bytes_to_json(mp, n, &out, err, sizeof(err)), 0, "%s", err);
    cr_expect_lt(out.size, 64 * 1024, "%zu bytes of JSON from %zu of msgpack", out.size, n);
    msgpack_sbuffer_write(&out, "", 1);
    cr_expect(strstr(out.data, "<key of ") != NULL, "%s", out.data);
    msgpack_sbuffer_destroy(&out);
}
