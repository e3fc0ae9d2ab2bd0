#ifndef JQ_CONFIG_H
#define JQ_CONFIG_H

/* One table of options per program (Redis's static_configs[] habit): each
 * row names a flag, its environment variable, a default, bounds, the field it
 * fills and a line of help. Defaults are applied first, then the
 * environment, then the command line, all validated by the same code. */

#include <stddef.h>
#include <stdio.h>

typedef enum {
    JQ_OPT_STR,   /* char[size] buffer; value must fit */
    JQ_OPT_INT,   /* long long in [min, max] */
    JQ_OPT_AUTO,  /* long long in [min, max], or "auto" stored as 0 */
    JQ_OPT_BYTES, /* long long, with optional suffix k/K, m/M, g/G (1024) */
    JQ_OPT_BOOL,  /* int 0/1; the flag takes no value; env: 1/0/true/false */
    JQ_OPT_LIST,  /* char[size]: a repeatable flag. Its entries are kept
                        one per line (an entry with a newline is refused);
                        the environment variable holds entries one per
                        line; flags on the command line replace them */
} jq_opt_type_t;

typedef struct jq_opt {
    const char *name; /* the flag without "--", e.g. "workers" */
    const char *env;  /* e.g. "JOBQ_WORKERS", or NULL */
    jq_opt_type_t type;
    const char *def;    /* default as text, parsed like a flag value */
    long long min, max; /* bounds for INT, AUTO and BYTES */
    size_t offset;      /* offsetof(target struct, field) */
    size_t size;        /* for STR: sizeof(field) */
    const char *help;
} jq_opt_t;

#define JQ_OPTS_HELP 1 /* jq_opts_parse saw --help or -h */

/* Fills *target from the table: defaults, then getenv() of each env
 * variable, then argv[*argi..argc). Flags are "--name value" or
 * "--name=value" (BOOL: "--name" alone). Parsing stops at the first argument
 * that does not start with "--" (or after "--"); *argi is left there, so
 * callers with subcommands or positional arguments read on from it.
 * Returns 0, JQ_OPTS_HELP, or -1 with err like
 * "--workers: 'x' is not a number" or "unknown option --foo". The table ends
 * with a row whose name is NULL. */
int jq_opts_parse(const jq_opt_t *table, void *target, int argc, char **argv, int *argi, char *err,
                  size_t errlen);

/* Parses one value for one row into target (used by jq_opts_parse; public
 * for tests). Returns 0 or -1 with err. */
int jq_opts_set(const jq_opt_t *opt, void *target, const char *value, char *err, size_t errlen);

/* Parses a byte count: a decimal number with an optional suffix k/K, m/M
 * or g/G (powers of 1024), as JQ_OPT_BYTES rows and `jobq enqueue
 * --chunk-size` take it. Returns 0, or -1 on bad text or overflow. */
int jq_parse_bytes(const char *s, long long *out);

/* Iterates over the entries of a JQ_OPT_LIST field: start with *pos = list;
 * each call returns the next entry and its length in *len (not
 * NUL-terminated), or NULL after the last. */
const char *jq_opts_list_next(const char **pos, size_t *len);

/* Prints "  --name VALUE   help (env NAME, default D)" per row. */
void jq_opts_usage(const jq_opt_t *table, FILE *out);

/* Logs every option's effective value at INFO, one line, e.g.
 * "config: workers=2 threads=auto ...". Options whose name contains
 * "password" or "token", or whose value is a URL with a password, are
 * masked. */
void jq_opts_log(const jq_opt_t *table, const void *target);

/* The number of CPUs this process may really use: the affinity mask
 * (sched_getaffinity), lowered by the cgroup CPU quota (v2 cpu.max, v1
 * cpu.cfs_quota_us / cpu.cfs_period_us), rounded up, at least 1.
 * `cgroup_root` is normally "/sys/fs/cgroup"; tests pass a fake tree.
 * `affinity` < 0 means: ask the kernel; tests pass a count. */
int jq_cpu_count(const char *cgroup_root, int affinity);

#endif
