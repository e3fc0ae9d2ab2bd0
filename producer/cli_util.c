/* Helpers of the `jobq` command: the global option table, the argument
 * scanner the subcommands share, and the JSON printers. */

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "codec.h"
#include "job.h"
#include "log.h"
#include "url.h"

const jq_opt_t jq_cli_opts[] = {
    {"redis", "JOBQ_REDIS_URL", JQ_OPT_STR, JQ_URL_DEFAULT, 0, 0, offsetof(jq_cli_t, redis),
     sizeof(((jq_cli_t *)0)->redis),
     "Redis URL: redis://[[user]:password@]host[:port][/db] or "
     "rediss://... (TLS) or unix:///path[?db=N]"},
    JQ_TLS_OPT_ROWS(jq_cli_t, tls_opts),
    {"prefix", "JOBQ_PREFIX", JQ_OPT_STR, JQ_PREFIX_DEFAULT, 0, 0, offsetof(jq_cli_t, prefix),
     sizeof(((jq_cli_t *)0)->prefix), "key prefix"},
    {"log-level", "JOBQ_LOG_LEVEL", JQ_OPT_STR, "warn", 0, 0, offsetof(jq_cli_t, log_level),
     sizeof(((jq_cli_t *)0)->log_level), "debug, info, warn or error"},
    {NULL, NULL, 0, NULL, 0, 0, 0, 0, NULL},
};

const char *jq_cli_queue(const jq_cli_t *cli) { return cli->queue ? cli->queue : JQ_QUEUE_DEFAULT; }

int jq_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "jobq%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try 'jobq %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return JQ_EXIT_USAGE;
}

/* Matches argv[i] against "-s" or "--name"; *inline_val gets the text after
 * "--name=" when present. */
static int match(const jq_argp_t *p, const char *s, const char *name, const char **inline_val) {
    if (p->no_more_opts || p->i >= p->argc) return 0;
    const char *a = p->argv[p->i];
    *inline_val = NULL;
    if (s && !strcmp(a, s)) return 1;
    if (strncmp(a, "--", 2) != 0) return 0;
    size_t n = strlen(name);
    if (strncmp(a + 2, name, n) != 0) return 0;
    if (a[2 + n] == '\0') return 1;
    if (a[2 + n] == '=') {
        *inline_val = a + 3 + n;
        return 1;
    }
    return 0;
}

int jq_argp_opt(jq_argp_t *p, const char *s, const char *name, const char **val) {
    const char *iv;
    if (!match(p, s, name, &iv)) return 0;
    p->i++;
    if (iv) {
        *val = iv;
    } else if (p->i < p->argc) {
        *val = p->argv[p->i++];
    } else {
        jq_cli_usage_error(p->cmd, "--%s needs a value", name);
        p->bad = 1;
        *val = "";
    }
    return 1;
}

int jq_argp_flag(jq_argp_t *p, const char *s, const char *name) {
    const char *iv;
    if (!match(p, s, name, &iv)) return 0;
    p->i++;
    if (iv) {
        jq_cli_usage_error(p->cmd, "--%s takes no value", name);
        p->bad = 1;
    }
    return 1;
}

int jq_argp_set(jq_argp_t *p, const char *s, const char *name, int *flag) {
    if (!jq_argp_flag(p, s, name)) return 0;
    *flag = 1;
    return 1;
}

int jq_argp_ll(jq_argp_t *p, const char *s, const char *name, long long min, long long max,
               long long *out) {
    const char *v;
    if (!jq_argp_opt(p, s, name, &v)) return 0;
    if (p->bad) return 1;
    long long n;
    if (jq_parse_ll(v, strlen(v), min, max, &n) < 0) {
        if (max >= (1LL << 40))
            jq_cli_usage_error(p->cmd, "--%s: '%s' is not an integer >= %lld", name, v, min);
        else
            jq_cli_usage_error(p->cmd, "--%s: '%s' is not an integer from %lld to %lld", name, v,
                               min, max);
        p->bad = 1;
    } else {
        *out = n;
    }
    return 1;
}

int jq_argp_global(jq_argp_t *p) {
    for (const jq_opt_t *o = jq_cli_opts; o->name; o++) {
        const char *v = "1";
        if (o->type == JQ_OPT_BOOL ? !jq_argp_flag(p, NULL, o->name)
                                   : !jq_argp_opt(p, NULL, o->name, &v))
            continue;
        char err[JQ_ERR_LEN];
        if (!p->bad && jq_opts_set(o, p->cli, v, err, sizeof(err)) < 0) {
            jq_cli_usage_error(p->cmd, "%s", err);
            p->bad = 1;
        }
        return 1;
    }
    return 0;
}

int jq_argp_help(jq_argp_t *p) {
    const char *iv;
    if (match(p, "-h", "help", &iv) && !iv) {
        p->i++;
        return 1;
    }
    return 0;
}

int jq_argp_unknown(jq_argp_t *p) {
    const char *a = p->argv[p->i];
    if (p->no_more_opts) return 0;
    if (!strcmp(a, "--")) {
        p->no_more_opts = 1;
        p->i++;
        return 1;
    }
    /* "-" alone is a value (stdin by convention), not an option. */
    if (a[0] != '-' || a[1] == '\0') return 0;
    jq_cli_usage_error(p->cmd, "unknown option %s", a);
    p->bad = 1;
    return 1;
}

const char *jq_argp_take(jq_argp_t *p) { return p->argv[p->i++]; }

int jq_cli_seconds(const char *s, long long *ms) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0) || v > 1e9) return -1;
    *ms = (long long)(v * 1000.0 + 0.5);
    return 0;
}

int jq_cli_duration(const char *s, long long *ms) {
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0)) return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (!strcmp(end, units[i].unit)) {
            double r = v * units[i].ms + 0.5;
            if (r > 1e15) return -1;
            *ms = (long long)r;
            return 0;
        }
    return -1;
}

int jq_cli_connect(jq_cli_t *cli) {
    char err[JQ_ERR_LEN];
    jq_log_level_t level;
    if (jq_log_parse_level(cli->log_level, &level) < 0)
        return jq_cli_usage_error(NULL,
                                  "--log-level: '%s' is not debug, "
                                  "info, warn or error",
                                  cli->log_level);
    jq_log_set_level(level);
    if (!jq_name_valid(cli->prefix, strlen(cli->prefix)))
        return jq_cli_usage_error(NULL,
                                  "--prefix: bad prefix '%s': want 1 "
                                  "to 128 bytes of [A-Za-z0-9_.:-]",
                                  cli->prefix);
    jq_url_t url;
    if (jq_url_parse(cli->redis, &url, err, sizeof(err)) < 0)
        return jq_cli_usage_error(NULL, "--redis: %s", err);
    jq_client_tls_t tls;
    int rc = jq_tls_opts_settings(&cli->tls_opts, &url, &tls, err, sizeof(err));
    jq_tls_t *check = NULL;
    /* A TLS file missing or unreadable is a bad argument (2), told apart
     * here from a server that cannot be reached or refuses us (3). */
    if (rc == 0 && url.tls && !(check = jq_tls_new(&tls, err, sizeof(err)))) rc = -1;
    jq_tls_free(check);
    memset(&url, 0, sizeof(url));
    if (rc < 0) return jq_cli_usage_error(NULL, "%s", err);
    if (tls.insecure) jq_warn("%s", JQ_TLS_INSECURE_WARNING);
    cli->client = jq_client_new_tls(cli->redis, cli->prefix, &tls, err, sizeof(err));
    if (!cli->client) {
        fprintf(stderr, "jobq: %s\n", err);
        return JQ_EXIT_REDIS;
    }
    jq_debug("connected to redis, prefix %s", cli->prefix);
    return JQ_EXIT_OK;
}

int jq_cli_check_name(const char *cmd, const char *what, const char *s) {
    if (jq_name_valid(s, strlen(s))) return 0;
    jq_cli_usage_error(cmd,
                       "bad %s '%s': want 1 to 128 bytes of "
                       "[A-Za-z0-9_.:-]",
                       what, s);
    return -1;
}

void jq_json_str(FILE *out, const char *s, size_t len) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (jq_codec_json_string(&sb, s, len) == 0)
        fwrite(sb.data, 1, sb.size, out);
    else
        fputs("null", out); /* out of memory */
    msgpack_sbuffer_destroy(&sb);
}

void jq_json_cstr(FILE *out, const char *s) {
    if (s)
        jq_json_str(out, s, strlen(s));
    else
        fputs("null", out);
}

int jq_json_msgpack(FILE *out, const char *buf, size_t len) {
    if (!buf) {
        fputs("null", out);
        return 0;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[JQ_ERR_LEN];
    if (jq_codec_bytes_to_json(buf, len, &sb, err, sizeof(err)) == 0)
        fwrite(sb.data, 1, sb.size, out);
    else
        jq_json_str(out, buf, len); /* not msgpack: show the bytes */
    msgpack_sbuffer_destroy(&sb);
    return 0;
}

void jq_cli_time(long long ms, char *buf, size_t cap) {
    if (ms <= 0) {
        snprintf(buf, cap, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03lldZ", day, ms % 1000);
}

static void json_ll(FILE *out, long long v) {
    if (v < 0)
        fputs("null", out);
    else
        fprintf(out, "%lld", v);
}

int jq_cli_print_result(FILE *out, const char *queue, const char *id, const jq_result_t *r) {
    fputs("{\"id\":", out);
    jq_json_cstr(out, id);
    fputs(",\"queue\":", out);
    jq_json_cstr(out, queue);
    fputs(",\"state\":", out);
    jq_json_cstr(out, r->state[0] ? r->state : "pending");
    fputs(",\"result\":", out);
    jq_json_msgpack(out, r->result, r->result_len);
    fputs(",\"error\":", out);
    jq_json_cstr(out, r->error);
    fputs(",\"attempts\":", out);
    json_ll(out, r->attempts);
    fputs(",\"finished_at\":", out);
    json_ll(out, r->finished_at);
    fputs(",\"worker\":", out);
    jq_json_cstr(out, r->worker);
    fputs("}\n", out);
    return ferror(out) ? -1 : 0;
}
