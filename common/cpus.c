/* How many CPUs this process may really use (jq_cpu_count in config.h).
 *
 * sysconf(_SC_NPROCESSORS_ONLN) counts the host's CPUs; in a container
 * limited with `cpus: 1.5` that is far too many threads. The real figure is
 * the affinity mask lowered by the cgroup CPU quota, rounded up (1.5 CPUs
 * -> 2 threads keep the quota busy). Every cgroup above ours can cap us too,
 * so on a real system we take the smallest quota from our cgroup up to the
 * root. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "config.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CGROUP_ROOT "/sys/fs/cgroup"

/* CPUs in the affinity mask; grows the mask for hosts with more than
 * CPU_SETSIZE CPUs. */
static int affinity_count(void) {
    for (int n = CPU_SETSIZE; n <= 1 << 16; n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        size_t size = CPU_ALLOC_SIZE(n);
        if (!set) break;
        if (sched_getaffinity(0, size, set) == 0) {
            int count = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return count;
        }
        CPU_FREE(set);
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Reads the first line of a small file; 0, or -1 if it cannot be read. */
static int read_line(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(buf, (int)cap, f);
    fclose(f);
    return ok ? 0 : -1;
}

/* CPUs allowed by a quota, rounded up; 0 for a bad or empty quota. */
static long quota_cpus(long long quota, long long period) {
    if (quota <= 0 || period <= 0) return 0;
    long long n = (quota + period - 1) / period;
    return n > INT_MAX ? INT_MAX : (long)n;
}

/* cgroup v2: dir/cpu.max is "max 100000" (no limit) or "150000 100000".
 * Returns the CPU count, or 0 if there is no limit or no file. */
static long v2_limit(const char *dir) {
    char path[PATH_MAX], line[128], quota[64];
    long long period;

    if (snprintf(path, sizeof(path), "%s/cpu.max", dir) >= (int)sizeof(path) ||
        read_line(path, line, sizeof(line)) < 0)
        return 0;
    if (sscanf(line, "%63s %lld", quota, &period) != 2 || strcmp(quota, "max") == 0) return 0;
    return quota_cpus(strtoll(quota, NULL, 10), period);
}

/* cgroup v1: dir/cpu.cfs_quota_us (-1: no limit) and cpu.cfs_period_us. */
static long v1_limit(const char *dir) {
    char path[PATH_MAX], line[64];
    long long quota, period;

    if (snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir) >= (int)sizeof(path) ||
        read_line(path, line, sizeof(line)) < 0)
        return 0;
    quota = strtoll(line, NULL, 10);
    if (snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir) >= (int)sizeof(path) ||
        read_line(path, line, sizeof(line)) < 0)
        return 0;
    period = strtoll(line, NULL, 10);
    return quota_cpus(quota, period);
}

/* Keeps the smaller of two limits, where 0 means none. */
static long tighter(long a, long b) {
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

/* The tightest limit of base/rel and every directory above it up to base.
 * `rel` is a cgroup path like "/system.slice/x.service" (or "/"). */
static long walk_up(const char *base, const char *rel, long (*limit)(const char *)) {
    char dir[PATH_MAX];
    long best = 0;

    if (snprintf(dir, sizeof(dir), "%s%s", base, rel) >= (int)sizeof(dir)) return limit(base);
    for (;;) {
        size_t n = strlen(dir);
        while (n > strlen(base) && dir[n - 1] == '/') dir[--n] = '\0';
        best = tighter(best, limit(dir));
        if (n <= strlen(base)) break;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < strlen(base)) break;
        *slash = '\0';
    }
    return best;
}

/* Our cgroup paths from /proc/self/cgroup: v2's "0::/path" and the v1 line
 * whose controllers include "cpu". Missing ones stay "/". */
static void own_cgroups(char *v2, char *v1, size_t cap) {
    char line[PATH_MAX + 64];
    FILE *f = fopen("/proc/self/cgroup", "r");

    snprintf(v2, cap, "/");
    snprintf(v1, cap, "/");
    if (!f) return;
    while (fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        line[strcspn(line, "\n")] = '\0';
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (strncmp(line, "0:", 2) == 0 && *ctrls == '\0') {
            snprintf(v2, cap, "%s", path);
            continue;
        }
        /* Look for "cpu" as a whole item of "cpu,cpuacct". */
        char list[256];
        snprintf(list, sizeof(list), ",%s,", ctrls);
        if (strstr(list, ",cpu,")) snprintf(v1, cap, "%s", path);
    }
    fclose(f);
}

int jq_cpu_count(const char *cgroup_root, int affinity) {
    const char *root = cgroup_root ? cgroup_root : CGROUP_ROOT;
    char v1dir[PATH_MAX], v1alt[PATH_MAX];
    char v2rel[PATH_MAX], v1rel[PATH_MAX];
    long limit;
    int n = affinity >= 0 ? affinity : affinity_count();

    snprintf(v1dir, sizeof(v1dir), "%s/cpu", root);
    snprintf(v1alt, sizeof(v1alt), "%s/cpu,cpuacct", root);
    if (strcmp(root, CGROUP_ROOT) == 0) {
        own_cgroups(v2rel, v1rel, sizeof(v2rel));
    } else {
        /* A fake tree from a test: only its top level counts. */
        snprintf(v2rel, sizeof(v2rel), "/");
        snprintf(v1rel, sizeof(v1rel), "/");
    }
    limit = walk_up(root, v2rel, v2_limit);
    limit = tighter(limit, walk_up(v1dir, v1rel, v1_limit));
    limit = tighter(limit, walk_up(v1alt, v1rel, v1_limit));

    if (limit > 0 && limit < n) n = (int)limit;
    return n >= 1 ? n : 1;
}
