/* `jobq limit set|rm|list`: a queue's rate and concurrency limit, the hash
 * <p>:{q}:limit (docs/PROTOCOL.md, "Limits"). Consumers read it about once
 * a second; any client may write it the same way. */

#include <errno.h>
#include <hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "client_int.h"

static const char limit_help[] =
    "usage: jobq limit set QUEUE [--rate N/PERIOD] [--concurrency N]\n"
    "       jobq limit rm QUEUE\n"
    "       jobq limit list [--json]\n"
    "\n"
    "set: QUEUE's jobs start at most N per PERIOD (100/s, 20/1m, 5/10s,\n"
    "1/500ms; smoothed: one every PERIOD/N), and at most N run at once,\n"
    "across every consumer. It replaces the queue's limit: an option not\n"
    "given is no limit. Consumers apply it within a second.\n"
    "rm: the queue runs without limit again. list: every queue's limit and\n"
    "the concurrency leases held now.\n";

/* "N/PERIOD": N >= 1, PERIOD [COUNT]UNIT with UNIT ms, s, m or h.
 * Returns 0, or -1. */
int jq_cli_parse_rate(const char *s, long long *n, long long *period_ms) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '/' || errno || v < 1 || v > 1000000000LL) return -1;
    const char *p = end + 1;
    long long count = 1;
    if (*p >= '0' && *p <= '9') {
        count = strtoll(p, &end, 10);
        if (errno || count < 1 || count > 1000000000LL) return -1;
        p = end;
    }
    long long unit;
    if (!strcmp(p, "ms"))
        unit = 1;
    else if (!strcmp(p, "s"))
        unit = 1000;
    else if (!strcmp(p, "m"))
        unit = 60000;
    else if (!strcmp(p, "h"))
        unit = 3600000;
    else
        return -1;
    if (count > (1LL << 40) / unit) return -1;
    *n = v;
    *period_ms = count * unit;
    return 0;
}

/* Runs one command built in a through libjobq (routed by its key in
 * Redis Cluster, over TLS alike). NULL, printed, on an error. */
static redisReply *run(jq_cli_t *cli, const char *cmd, jq_args_t *a) {
    char err[JQ_KEY_MAX];
    redisReply *r = jq_client_run(cli->client, a, err, sizeof(err));
    jq_args_reset(a);
    if (!r) fprintf(stderr, "jobq: limit %s: %s\n", cmd, err);
    return r;
}

static void qkey(jq_cli_t *cli, const char *queue, const char *what, char *buf) {
    jq_key(buf, JQ_KEY_MAX, jq_client_prefix(cli->client), queue, what);
}

static int limit_set(jq_cli_t *cli, const char *queue, long long rate, long long period,
                     long long conc) {
    char key[JQ_KEY_MAX], qs[JQ_KEY_MAX], err[JQ_KEY_MAX] = "";
    qkey(cli, queue, "limit", key);
    jq_key_global(qs, sizeof(qs), jq_client_prefix(cli->client), "queues");
    /* The queue's registration goes first, on its own, as an enqueue's
     * does (PROTOCOL §1): <p>:queues is in a slot of its own in Redis
     * Cluster, so it cannot share the queue's MULTI. */
    jq_pipe_t p;
    jq_pipe_init(&p, cli->client);
    jq_args_str(&p.a, "SADD");
    jq_args_str(&p.a, qs); /* `limit list` and `stats` find the queue */
    jq_args_str(&p.a, queue);
    jq_pipe_send(&p, err, sizeof(err));
    jq_args_str(&p.a, "MULTI");
    jq_pipe_send(&p, err, sizeof(err));
    jq_args_str(&p.a, "DEL");
    jq_args_str(&p.a, key);
    jq_pipe_send(&p, err, sizeof(err));
    jq_args_str(&p.a, "HSET");
    jq_args_str(&p.a, key);
    if (rate) {
        jq_args_str(&p.a, "rate");
        jq_args_ll(&p.a, rate);
        jq_args_str(&p.a, "period_ms");
        jq_args_ll(&p.a, period);
    }
    if (conc) {
        jq_args_str(&p.a, "concurrency");
        jq_args_ll(&p.a, conc);
    }
    jq_pipe_send(&p, err, sizeof(err));
    jq_args_str(&p.a, "EXEC");
    jq_pipe_send(&p, err, sizeof(err));
    int status = JQ_EXIT_OK;
    redisReply *r;
    while (p.read < p.sent && (r = jq_pipe_reply(&p, err, sizeof(err)))) {
        if (status == JQ_EXIT_OK &&
            (jq_reply_ok(r, err, sizeof(err)) < 0 ||
             (r->type == REDIS_REPLY_ARRAY && jq_reply_each_ok(r, err, sizeof(err)) < 0)))
            status = JQ_EXIT_REDIS;
        freeReplyObject(r);
    }
    if (jq_pipe_end(&p) < 0) status = JQ_EXIT_REDIS;
    if (status) {
        fprintf(stderr, "jobq: limit set: %s\n", err[0] ? err : "no reply from redis");
        return status;
    }
    printf("limit of %s:", queue);
    if (rate) printf(" rate %lld per %lld ms", rate, period);
    if (conc) printf("%s concurrency %lld", rate ? "," : "", conc);
    printf("\n");
    return JQ_EXIT_OK;
}

static int limit_rm(jq_cli_t *cli, const char *queue) {
    char k[3][JQ_KEY_MAX];
    qkey(cli, queue, "limit", k[0]);
    qkey(cli, queue, "bucket", k[1]);
    qkey(cli, queue, "leases", k[2]);
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "DEL");
    for (int i = 0; i < 3; i++) jq_args_str(&a, k[i]);
    redisReply *r = run(cli, "rm", &a);
    jq_args_destroy(&a);
    if (!r) return JQ_EXIT_REDIS;
    printf("%s: %s\n", queue, r->integer > 0 ? "limit removed" : "had no limit");
    freeReplyObject(r);
    return JQ_EXIT_OK;
}

typedef struct limit_row {
    const char *queue;
    long long rate, period_ms, conc, leases;
} limit_row_t;

/* A field of an HGETALL reply as an integer, or 0. */
static long long field(const redisReply *h, const char *name) {
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && !strcmp(h->element[i]->str, name) &&
            h->element[i + 1]->type == REDIS_REPLY_STRING)
            return strtoll(h->element[i + 1]->str, NULL, 10);
    return 0;
}

/* Reads queue's limit into row; returns 1 if it has one, 0 if not, -1 on
 * an error (printed). */
static int read_limit(jq_cli_t *cli, const char *queue, limit_row_t *row) {
    char key[JQ_KEY_MAX];
    jq_args_t a;
    jq_args_init(&a);
    qkey(cli, queue, "limit", key);
    jq_args_str(&a, "HGETALL");
    jq_args_str(&a, key);
    redisReply *h = run(cli, "list", &a);
    qkey(cli, queue, "leases", key);
    jq_args_str(&a, "ZCARD");
    jq_args_str(&a, key);
    redisReply *z = h ? run(cli, "list", &a) : NULL;
    jq_args_destroy(&a);
    if (!h || !z) {
        if (h) freeReplyObject(h);
        return -1;
    }
    memset(row, 0, sizeof(*row));
    row->queue = queue;
    row->rate = field(h, "rate");
    row->period_ms = field(h, "period_ms");
    row->conc = field(h, "concurrency");
    row->leases = z->type == REDIS_REPLY_INTEGER ? z->integer : 0;
    int has = h->type == REDIS_REPLY_ARRAY && h->elements > 0;
    freeReplyObject(h);
    freeReplyObject(z);
    return has;
}

static void print_row(const limit_row_t *r, int json, int first) {
    if (json) {
        fputs(first ? "\n{\"queue\":" : ",\n{\"queue\":", stdout);
        jq_json_cstr(stdout, r->queue);
        if (r->rate > 0 && r->period_ms > 0)
            printf(",\"rate\":%lld,\"period_ms\":%lld", r->rate, r->period_ms);
        else
            fputs(",\"rate\":null,\"period_ms\":null", stdout);
        if (r->conc > 0)
            printf(",\"concurrency\":%lld", r->conc);
        else
            fputs(",\"concurrency\":null", stdout);
        printf(",\"leases\":%lld}", r->leases);
        return;
    }
    char rate[64], conc[24] = "-";
    jq_cli_fmt_limit_rate(r->rate, r->period_ms, rate, sizeof(rate));
    if (r->conc > 0) snprintf(conc, sizeof(conc), "%lld", r->conc);
    printf("%-24s  %-14s  %11s  %6lld\n", r->queue, rate, conc, r->leases);
}

const char *jq_cli_fmt_limit_rate(long long rate, long long period_ms, char *buf, size_t cap) {
    if (rate <= 0 || period_ms <= 0)
        snprintf(buf, cap, "-");
    else if (period_ms % 1000 == 0)
        snprintf(buf, cap, "%lld/%llds", rate, period_ms / 1000);
    else
        snprintf(buf, cap, "%lld/%lldms", rate, period_ms);
    return buf;
}

const char *jq_cli_fmt_blocked(int blocked, char *buf, size_t cap) {
    static const char *const names[] = {"concurrency", "rate", "backoff"};
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < 3; i++)
        if (blocked & (1 << i) && n < cap)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", names[i]);
    if (!n) snprintf(buf, cap, "-");
    return buf;
}

static int limit_list(jq_cli_t *cli, int json) {
    char **names = NULL, err[JQ_ERR_LEN];
    size_t n = 0;
    if (jq_client_queues(cli->client, &names, &n, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: limit list: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    int status = JQ_EXIT_OK, shown = 0;
    if (json)
        fputs("[", stdout);
    else
        printf("%-24s  %-14s  %11s  %6s\n", "QUEUE", "RATE", "CONCURRENCY", "LEASES");
    for (size_t i = 0; i < n && status == JQ_EXIT_OK; i++) {
        if (!jq_name_valid(names[i], strlen(names[i]))) continue;
        limit_row_t row;
        int has = read_limit(cli, names[i], &row);
        if (has < 0) status = JQ_EXIT_REDIS;
        if (has > 0) print_row(&row, json, !shown++);
    }
    if (json) fputs(shown ? "\n]\n" : "]\n", stdout);
    jq_client_queues_free(names, n);
    return status;
}

int jq_cli_limit(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "limit", cli, 0, 0};
    const char *pos[2] = {NULL, NULL}, *rate_s = NULL;
    int npos = 0, json = 0;
    long long conc = 0;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(limit_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, NULL, "rate", &rate_s) ||
            jq_argp_ll(&p, NULL, "concurrency", 1, 1000000000LL, &conc) ||
            jq_argp_set(&p, NULL, "json", &json) || jq_argp_unknown(&p))
            continue;
        if (npos == 2) return jq_cli_usage_error("limit", "unexpected argument '%s'", argv[p.i]);
        pos[npos++] = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    const char *sub = pos[0];
    if (!sub) return jq_cli_usage_error("limit", "missing set, rm or list");
    int set = !strcmp(sub, "set"), rm = !strcmp(sub, "rm"), list = !strcmp(sub, "list");
    if (!set && !rm && !list) return jq_cli_usage_error("limit", "unknown subcommand '%s'", sub);
    if (list && pos[1]) return jq_cli_usage_error("limit", "unexpected argument '%s'", pos[1]);
    if (!list && !pos[1]) return jq_cli_usage_error("limit", "missing QUEUE");
    if (!set && (rate_s || conc))
        return jq_cli_usage_error("limit", "--rate and --concurrency go with `limit set`");
    if (json && !list) return jq_cli_usage_error("limit", "--json goes with `limit list`");
    long long rate = 0, period = 0;
    if (rate_s && jq_cli_parse_rate(rate_s, &rate, &period) < 0)
        return jq_cli_usage_error("limit",
                                  "--rate: '%s' is not N/PERIOD (like 100/s, 20/1m, 5/10s, "
                                  "1/500ms: N from 1, PERIOD a count and ms, s, m or h)",
                                  rate_s);
    if (set && !rate && !conc)
        return jq_cli_usage_error("limit", "set: give --rate, --concurrency or both");
    if (pos[1] && jq_cli_check_name("limit", "queue name", pos[1]) < 0) return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;
    if (set) return limit_set(cli, pos[1], rate, period, conc);
    return rm ? limit_rm(cli, pos[1]) : limit_list(cli, json);
}
