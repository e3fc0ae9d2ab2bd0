/* Unit tests of common/cpus.c: the CPU count from affinity and cgroup
 * quotas, on fake cgroup trees made in a temp directory. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char root[64];

static void make_root(void) {
    snprintf(root, sizeof(root), "/tmp/jq_cpus_XXXXXX");
    cr_assert_not_null(mkdtemp(root));
}

static void remove_root(void) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(cpus, .init = make_root, .fini = remove_root);

/* Writes root/rel (creating its directory) with the given text. */
static void put(const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

Test(cpus, no_limit_is_the_affinity) {
    cr_expect_eq(jq_cpu_count(root, 4), 4);
    cr_expect_eq(jq_cpu_count(root, 1), 1);
}

Test(cpus, at_least_one) {
    cr_expect_eq(jq_cpu_count(root, 0), 1);
    put("cpu.max", "1000 100000\n");
    cr_expect_eq(jq_cpu_count(root, 4), 1);
}

Test(cpus, v2_max_is_no_limit) {
    put("cpu.max", "max 100000\n");
    cr_expect_eq(jq_cpu_count(root, 4), 4);
}

Test(cpus, v2_quota_rounds_up) {
    put("cpu.max", "150000 100000\n");
    cr_expect_eq(jq_cpu_count(root, 4), 2);
}

Test(cpus, v2_half_cpu_is_one) {
    put("cpu.max", "50000 100000\n");
    cr_expect_eq(jq_cpu_count(root, 4), 1);
}

Test(cpus, v2_quota_above_affinity_keeps_affinity) {
    put("cpu.max", "800000 100000\n");
    cr_expect_eq(jq_cpu_count(root, 4), 4);
    cr_expect_eq(jq_cpu_count(root, 16), 8);
}

Test(cpus, v1_quota_and_period) {
    put("cpu/cpu.cfs_quota_us", "300000\n");
    put("cpu/cpu.cfs_period_us", "100000\n");
    cr_expect_eq(jq_cpu_count(root, 8), 3);
}

Test(cpus, v1_combined_controller_directory) {
    put("cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    put("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    cr_expect_eq(jq_cpu_count(root, 8), 3);
}

Test(cpus, v1_minus_one_is_no_limit) {
    put("cpu/cpu.cfs_quota_us", "-1\n");
    put("cpu/cpu.cfs_period_us", "100000\n");
    cr_expect_eq(jq_cpu_count(root, 4), 4);
}

Test(cpus, garbage_files_are_no_limit) {
    put("cpu.max", "nonsense\n");
    put("cpu/cpu.cfs_quota_us", "x\n");
    put("cpu/cpu.cfs_period_us", "0\n");
    cr_expect_eq(jq_cpu_count(root, 4), 4);
}

Test(cpus, missing_root_is_the_affinity) {
    cr_expect_eq(jq_cpu_count("/nonexistent/cgroup", 3), 3);
}

Test(cpus, kernel_affinity_matches_sched_getaffinity) {
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
    cr_expect_eq(jq_cpu_count(root, -1), CPU_COUNT(&set));
    /* The real tree of this machine gives some positive count. */
    int n = jq_cpu_count("/sys/fs/cgroup", -1);
    cr_expect(n >= 1 && n <= CPU_COUNT(&set), "%d", n);
}
