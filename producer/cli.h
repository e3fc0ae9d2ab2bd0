#ifndef JQ_CLI_H
#define JQ_CLI_H

/* Shared parts of the `jobq` command (cli.c, cli_admin.c, cli_util.c): the
 * global options, a small argument scanner for the subcommands, and the
 * JSON and table printers. Nothing here is part of libjobq. */

#include <stddef.h>
#include <stdio.h>

#include "codec.h"
#include "config.h"
#include "jobq/jobq.h"
#include "keys.h"
#include "tls.h"

/* Exit statuses, documented in docs/CLI.md. */
#define JQ_EXIT_OK 0
#define JQ_EXIT_FAIL                                                                               \
    1                   /* the job is dead; or the dead job asked for
                             does not exist */
#define JQ_EXIT_USAGE 2 /* a bad argument; also a wait that timed out */
#define JQ_EXIT_TIMEOUT 2
#define JQ_EXIT_REDIS                                                                              \
    3 /* Redis unreachable, refused a command, or
                             returned something unusable */

typedef struct jq_cli {
    char redis[1024];
    jq_tls_opts_t tls_opts; /* --redis-tls-* */
    char prefix[JQ_CLIENT_ID_LEN];
    char log_level[16];
    jq_client_t *client; /* connected by jq_cli_connect, freed by main */
    const char *queue;   /* `jobq -q QUEUE COMMAND`: the subcommand's queue
                             unless it names its own; NULL when not given */
} jq_cli_t;

/* The global options (--redis, --redis-tls-*, --prefix, --log-level) as a
 * config table. */
extern const jq_opt_t jq_cli_opts[];

/* Walks the arguments of one subcommand. Each matcher looks at argv[i];
 * on a match it consumes the argument (and its value) and returns 1. A
 * missing or bad value sets `bad` (the message is already printed). */
typedef struct jq_argp {
    int argc;
    char **argv;
    int i;
    const char *cmd; /* "enqueue", "dead retry": names it in messages */
    jq_cli_t *cli;
    int bad;
    int no_more_opts; /* after "--": everything is positional */
} jq_argp_t;

/* The queue a subcommand works on when it names none: `jobq -q QUEUE`'s,
 * else "default". */
const char *jq_cli_queue(const jq_cli_t *cli);

/* Prints "jobq CMD: message" and a hint to stderr; returns JQ_EXIT_USAGE. */
int jq_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Matches "--name VALUE", "--name=VALUE" or "-s VALUE" (s may be NULL). */
int jq_argp_opt(jq_argp_t *p, const char *s, const char *name, const char **val);
/* Matches a flag without a value. */
int jq_argp_flag(jq_argp_t *p, const char *s, const char *name);
/* Matches a flag without a value and sets *flag to 1. */
int jq_argp_set(jq_argp_t *p, const char *s, const char *name, int *flag);
/* Matches an integer option in [min, max]. */
int jq_argp_ll(jq_argp_t *p, const char *s, const char *name, long long min, long long max,
               long long *out);
/* Matches --redis, --prefix, --log-level after the subcommand. */
int jq_argp_global(jq_argp_t *p);
/* Matches -h / --help. */
int jq_argp_help(jq_argp_t *p);
/* True when argv[i] looks like an option: reports it as unknown and sets
 * bad. Call after every matcher failed. */
int jq_argp_unknown(jq_argp_t *p);
/* Returns argv[i] as a positional argument and moves on. */
const char *jq_argp_take(jq_argp_t *p);

/* Parses seconds ("30", "0.5") into ms. Returns 0 or -1. */
int jq_cli_seconds(const char *s, long long *ms);

/* Parses a duration: a number with a unit ms, s, m, h or d ("90s",
 * "1.5h", "500ms"; none means seconds) into ms. Returns 0 or -1. */
int jq_cli_duration(const char *s, long long *ms);

/* Applies --log-level and connects cli->client. Returns 0, or prints why
 * and returns the exit status (JQ_EXIT_USAGE or JQ_EXIT_REDIS). */
int jq_cli_connect(jq_cli_t *cli);

/* Checks a queue name or job id; prints and returns -1 when bad. */
int jq_cli_check_name(const char *cmd, const char *what, const char *s);

/* Writes s[0..len) as a JSON string: control chars and quotes escaped,
 * invalid UTF-8 as \u00XX per byte. */
void jq_json_str(FILE *out, const char *s, size_t len);
/* Writes a JSON string, or null when s is NULL. */
void jq_json_cstr(FILE *out, const char *s);
/* Writes msgpack bytes as JSON (a JSON string of the raw bytes if they are
 * not msgpack), or null when buf is NULL. Returns 0 or -1 (out of memory). */
int jq_json_msgpack(FILE *out, const char *buf, size_t len);

/* cli.c: a job's payload as msgpack bytes, data[0..size). They live in
 * sb, or, for a large regular @FILE sent as a bin, in a mapping (map,
 * maplen): the file's pages themselves, mapped right behind a private page
 * that holds the bin header, so the bytes are neither read into memory of
 * ours nor copied (docs/BENCHMARKS.md, large payloads). Owns both;
 * jq_cli_payload_free releases them. */
typedef struct jq_cli_payload {
    const char *data;
    size_t size;
    msgpack_sbuffer sb;
    void *map;
    size_t maplen;
} jq_cli_payload_t;

/* cli.c: turns a PAYLOAD argument (JSON text, @FILE's bytes as a msgpack
 * bin, or with json_file @FILE's JSON) into msgpack bytes in p (which it
 * initialises: free it with jq_cli_payload_free even on failure); prints
 * why and returns JQ_EXIT_USAGE when it cannot. */
int jq_cli_payload(const char *cmd, const char *arg, int json_file, jq_cli_payload_t *p);
void jq_cli_payload_free(jq_cli_payload_t *p);

/* cli.c: matches the options of a job's own fields that `enqueue` and
 * `schedule add` share: --max-attempts, --timeout-ms, --result-ttl (into
 * *ttl, -1 when absent). */
int jq_argp_job(jq_argp_t *p, jq_enqueue_opts_t *o, long long *ttl);

/* Formats ms since the epoch as "2026-11-26T19:40:01.123Z" (or "-" for
 * ms <= 0) into buf (cap >= 32). */
void jq_cli_time(long long ms, char *buf, size_t cap);

/* Prints a job's result as one JSON object line; see docs/CLI.md. */
int jq_cli_print_result(FILE *out, const char *queue, const char *id, const jq_result_t *r);

/* cli_fmt.c: short human forms for table cells, written into buf and
 * returned: durations ("4.2ms", "1.5s", "-" for ms < 0), sizes ("6.1M"),
 * counts ("123.4k" past 99999) and rates ("0.25", "4100"). */
const char *jq_fmt_ms(double ms, char *buf, size_t cap);
const char *jq_fmt_bytes(long long n, char *buf, size_t cap);
const char *jq_fmt_count(long long n, char *buf, size_t cap);
const char *jq_fmt_rate(double r, char *buf, size_t cap);

/* The subcommands of cli_admin.c; argv[start] is the first argument after
 * the subcommand's name. Return an exit status. */
int jq_cli_dead(jq_cli_t *cli, int argc, char **argv, int start);
/* `jobq jobs list|show|keep-done` (cli_jobs.c). */
int jq_cli_jobs(jq_cli_t *cli, int argc, char **argv, int start);
int jq_cli_cancel(jq_cli_t *cli, int argc, char **argv, int start);

/* cli_progress.c: jq_client_wait_flags in slices, drawing the job's
 * progress on stderr meanwhile (a bar on a terminal, else lines). */
int jq_cli_wait_progress(jq_cli_t *cli, const char *queue, const char *id, long long timeout_ms,
                         unsigned flags, jq_result_t *r, char *err, size_t errlen);
int jq_cli_pause(jq_cli_t *cli, int argc, char **argv, int start, int pause);
int jq_cli_stats(jq_cli_t *cli, int argc, char **argv, int start);
int jq_cli_top(jq_cli_t *cli, int argc, char **argv, int start);
/* cli_limit.c: `jobq limit set|rm|list`, and its "N/PERIOD" parser
 * (0, or -1 when s is not one). */
int jq_cli_limit(jq_cli_t *cli, int argc, char **argv, int start);
/* cli_batch.c: `jobq batch create|seal|show`. */
int jq_cli_batch(jq_cli_t *cli, int argc, char **argv, int start);
int jq_cli_parse_rate(const char *s, long long *n, long long *period_ms);
/* A rate as `jobq limit set` takes it ("20/1s", "5/250ms"), or "-" when
 * there is none; returns buf. */
const char *jq_cli_fmt_limit_rate(long long rate, long long period_ms, char *buf, size_t cap);
/* A queue's limit blockers (jq_queue_watch_t's `blocked`) as
 * "concurrency,rate", or "-"; returns buf. */
const char *jq_cli_fmt_blocked(int blocked, char *buf, size_t cap);
int jq_cli_schedule(jq_cli_t *cli, int argc, char **argv, int start); /* cli_schedule.c */

#endif
