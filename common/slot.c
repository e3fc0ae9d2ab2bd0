/* Redis Cluster slots (slot.h). The CRC is computed bit by bit rather than
 * from a 512-byte table: a slot is computed once per command at most, over
 * a key of a few dozen bytes. */

#include "slot.h"

#include <string.h>
#include <strings.h>

uint16_t jq_slot_crc16(const char *buf, size_t len) {
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++) crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

int jq_slot_of(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t at = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - at);
        /* "{}" or no '}' after the '{': the whole key is hashed. */
        if (close && close > open + 1)
            return jq_slot_crc16(open + 1, (size_t)(close - open - 1)) & (JQ_SLOTS - 1);
    }
    return jq_slot_crc16(key, len) & (JQ_SLOTS - 1);
}

static int is(const char *s, size_t len, const char *name) {
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* Commands of libjobq that take no key: each is routed to the node the
 * last command went to (UNWATCH after WATCH), or any node. */
static const char *const keyless[] = {
    "MULTI",  "EXEC", "DISCARD", "UNWATCH", "TIME",   "ROLE",  "PING",     "INFO",     "CLUSTER",
    "ASKING", "AUTH", "SELECT",  "SCRIPT",  "CLIENT", "HELLO", "READONLY", "FUNCTION", NULL};

int jq_slot_cmd_key(int argc, const char *const *argv, const size_t *lens) {
    if (argc < 2) return -1;
    for (int i = 0; keyless[i]; i++)
        if (is(argv[0], lens[0], keyless[i])) return -1;
    if (is(argv[0], lens[0], "EVAL") || is(argv[0], lens[0], "EVALSHA") ||
        is(argv[0], lens[0], "EVAL_RO") || is(argv[0], lens[0], "EVALSHA_RO") ||
        is(argv[0], lens[0], "FCALL")) {
        /* numkeys is argv[2]: "0" names no key. */
        if (argc < 4 || (lens[2] == 1 && argv[2][0] == '0')) return -1;
        return 3;
    }
    if (is(argv[0], lens[0], "XINFO") || is(argv[0], lens[0], "XGROUP")) return argc > 2 ? 2 : -1;
    if (is(argv[0], lens[0], "XREAD") || is(argv[0], lens[0], "XREADGROUP")) {
        for (int i = 1; i + 1 < argc; i++)
            if (is(argv[i], lens[i], "STREAMS")) return i + 1;
        return -1;
    }
    return 1;
}
