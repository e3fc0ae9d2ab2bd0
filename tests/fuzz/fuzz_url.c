/* libFuzzer target: Redis URLs (jq_url_parse, jq_url_format). A parsed URL
 * printed by jq_url_format must parse back to the same place, and neither
 * the printed form nor any error message may hold the password. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

/* The text could show pw for another reason than leaking it: pw is part of
 * what the text legitimately shows (host, user, port, fixed words). */
static int shown_elsewhere(const char *pw, const char *other) {
    return strstr(other, pw) != NULL;
}

static int count(const char *s, const char *pw) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, pw)); p++) n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    jq_url_t u, v;
    char err[256], shown[1024], err2[256];
    if (jq_url_parse(s, &u, err, sizeof(err)) == 0) {
        jq_url_format(&u, shown, sizeof(shown));
        /* The printed form must not depend on the password at all:
         * the same URL with another password prints the same. */
        jq_url_t other = u;
        char shown2[1024];
        snprintf(other.password, sizeof(other.password), "%s", u.password[0] ? "x" : "");
        jq_url_format(&other, shown2, sizeof(shown2));
        if (strcmp(shown, shown2) != 0) abort();
        /* The printed form (password shown as ***) parses back to the same
         * server and database. A host holding '/', '?' or '@' cannot be
         * written back unambiguously; those are not servers anyone has. */
        if (!u.is_unix && !strpbrk(u.host, "/?@[]") && !strpbrk(u.user, ":@/%?")) {
            if (jq_url_parse(shown, &v, err2, sizeof(err2)) != 0) abort();
            if (strcmp(u.host, v.host) || u.port != v.port || u.db != v.db) abort();
        }
    } else if (err[0] == '\0') {
        abort();
    } else if (strncasecmp(s, "redis://", 8) == 0) {
        /* The password part of the user info ("user:PASSWORD@", up to the
         * last '@') must not show up in the error, unless the same bytes
         * are elsewhere in the URL too. */
        const char *at = strrchr(s + 8, '@');
        const char *colon = strchr(s + 8, ':');
        if (at && colon && colon < at && at - colon > 4) {
            char pw[300];
            size_t n = (size_t)(at - colon - 1);
            if (n < sizeof(pw)) {
                memcpy(pw, colon + 1, n);
                pw[n] = '\0';
                if (!strchr(pw, '%') && count(s, pw) == 1 && strstr(err, pw) &&
                    !shown_elsewhere(pw, "bad redis url '***'")) abort();
            }
        }
    }
    memset(&u, 0, sizeof(u));
    free(s);
    return 0;
}
