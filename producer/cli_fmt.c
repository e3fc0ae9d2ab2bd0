/* Short human forms of figures for the tables of `jobq stats` and `jobq
 * top`: each fits a narrow column, so that a screen of 80 columns holds a
 * whole row. */

#include <stdio.h>

#include "cli.h"

const char *jq_fmt_ms(double ms, char *buf, size_t cap) {
    if (ms < 0)
        snprintf(buf, cap, "-");
    else if (ms < 10)
        snprintf(buf, cap, "%.1fms", ms);
    else if (ms < 1000)
        snprintf(buf, cap, "%.0fms", ms);
    else if (ms < 60000)
        snprintf(buf, cap, "%.1fs", ms / 1000);
    else if (ms < 3600000)
        snprintf(buf, cap, "%.1fm", ms / 60000);
    else
        snprintf(buf, cap, "%.1fh", ms / 3600000);
    return buf;
}

const char *jq_fmt_bytes(long long n, char *buf, size_t cap) {
    if (n < 1024)
        snprintf(buf, cap, "%lldB", n);
    else if (n < 1024 * 1024)
        snprintf(buf, cap, "%.1fK", n / 1024.0);
    else if (n < 1024LL * 1024 * 1024)
        snprintf(buf, cap, "%.1fM", n / (1024.0 * 1024));
    else
        snprintf(buf, cap, "%.1fG", n / (1024.0 * 1024 * 1024));
    return buf;
}

const char *jq_fmt_count(long long n, char *buf, size_t cap) {
    if (n < 100000)
        snprintf(buf, cap, "%lld", n);
    else if (n < 100000000)
        snprintf(buf, cap, "%.1fk", n / 1000.0);
    else
        snprintf(buf, cap, "%.1fM", n / 1000000.0);
    return buf;
}

const char *jq_fmt_rate(double r, char *buf, size_t cap) {
    if (r < 10)
        snprintf(buf, cap, "%.2f", r);
    else if (r < 100000)
        snprintf(buf, cap, "%.0f", r);
    else
        snprintf(buf, cap, "%.0fk", r / 1000);
    return buf;
}
