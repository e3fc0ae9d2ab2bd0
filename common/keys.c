/* Key names of PROTOCOL.md. Built into caller buffers with snprintf: keys
 * are short and built once per job at most, so no allocation is worth it. */

#include <stdio.h>

#include "keys.h"

int jq_name_valid(const char *s, size_t len) {
    if (len < 1 || len > JQ_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
            c == '-')
            continue;
        return 0;
    }
    return 1;
}

static int fit(int n, size_t cap) {
    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

int jq_key(char *buf, size_t cap, const char *prefix, const char *queue,
           const char *suffix) {
    return fit(snprintf(buf, cap, "%s:{%s}:%s", prefix, queue, suffix), cap);
}

int jq_key_id(char *buf, size_t cap, const char *prefix, const char *queue,
              const char *what, const char *id) {
    return fit(snprintf(buf, cap, "%s:{%s}:%s:%s", prefix, queue, what, id),
               cap);
}

int jq_key_global(char *buf, size_t cap, const char *prefix,
                  const char *suffix) {
    return fit(snprintf(buf, cap, "%s:%s", prefix, suffix), cap);
}
