/* libFuzzer target: Redis URLs (jq_url_parse, jq_url_format). A parsed URL
 * printed by jq_url_format must parse back to the same place, and neither
 * the printed form nor any error message may hold the password. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

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
        int plain = !u.is_unix && !strpbrk(u.host, "/?@[]") && !strpbrk(u.user, ":@/%?") &&
                    !strpbrk(u.master_name, "/?@%");
        for (int i = 0; i < u.nsentinels; i++)
            if (strpbrk(u.sentinels[i].host, "/?@[],")) plain = 0;
        if (plain) {
            if (jq_url_parse(shown, &v, err2, sizeof(err2)) != 0) abort();
            if (strcmp(u.host, v.host) || u.port != v.port || u.db != v.db) abort();
            if (strcmp(u.master_name, v.master_name) || u.nsentinels != v.nsentinels) abort();
            for (int i = 0; i < u.nsentinels; i++)
                if (strcmp(u.sentinels[i].host, v.sentinels[i].host) ||
                    u.sentinels[i].port != v.sentinels[i].port)
                    abort();
        }
        /* Nor on the sentinels' password. */
        snprintf(other.sentinel_password, sizeof(other.sentinel_password), "%s",
                 u.sentinel_password[0] ? "y" : "");
        jq_url_format(&other, shown2, sizeof(shown2));
        if (strcmp(shown, shown2) != 0) abort();
    } else if (err[0] == '\0') {
        abort();
    } else if (strncasecmp(s, "redis://", 8) == 0) {
        /* An error must not depend on the password (the user info's part
         * after its first ':', up to the last '@'): the same URL with
         * other bytes there gives the same message, so none of them can
         * be in it. (A '%' would change how the part decodes.) */
        char *at = strrchr(s + 8, '@');
        char *colon = strchr(s + 8, ':');
        if (at && colon && colon < at && !memchr(colon, '%', (size_t)(at - colon))) {
            char *t = strdup(s);
            for (char *c = t + (colon - s) + 1; c < t + (at - s); c++) *c = 'Z';
            jq_url_t w;
            char err3[256];
            if (jq_url_parse(t, &w, err3, sizeof(err3)) == 0 || strcmp(err, err3) != 0) abort();
            free(t);
        }
    }
    memset(&u, 0, sizeof(u));
    free(s);
    return 0;
}
