/* `jobq`: the command line over libjobq. main reads top to bottom: global
 * options, the subcommand, its own arguments, one library call, output.
 * Exit statuses are in cli.h and docs/CLI.md. This file holds main,
 * `enqueue` and `wait`; the admin subcommands are in cli_admin.c. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bigbuf.h"
#include "cli.h"
#include "codec.h"
#include "job.h"
#include "log.h"
#include "unique.h"

#define WAIT_DEFAULT_MS 30000
#define SERVED_STALE_MS 15000

static void usage(FILE *out) {
    fputs("usage: jobq [GLOBAL OPTIONS] COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  enqueue [-q QUEUE] TYPE [PAYLOAD_JSON | @FILE] [options]\n"
          "                             add a job; prints its id\n"
          "  wait [-q QUEUE] ID [--timeout S] [--raw] [-o FILE]\n"
          "                             wait for a job; prints its result as JSON\n"
          "  batch create|seal|show ...  a group of jobs with callbacks\n"
          "  dead list|show|retry|delete [-q QUEUE] ...\n"
          "                             dead jobs\n"
          "  jobs list|show|keep-done [-q QUEUE] ...\n"
          "                             browse jobs: ready, running, scheduled, done, dead\n"
          "  cancel [-q QUEUE] ID       cancel a job: it never runs, or stops\n"
          "  pause [-q] QUEUE           consumers stop taking jobs from QUEUE\n"
          "  resume [-q] QUEUE          undo pause\n"
          "  stats [-q QUEUE] [--json]  queue figures\n"
          "  top [-q QUEUE]             live view of queues and workers\n"
          "  limit set QUEUE [--rate N/PERIOD] [--concurrency N] | rm QUEUE | list [--json]\n"
          "                             rate and concurrency limits, across consumers\n"
          "  schedule add|list|rm|pause|resume ...\n"
          "                             jobs enqueued every DURATION or on a cron\n"
          "                             expression, once per tick\n"
          "\n"
          "global options (also accepted after the command):\n"
          "  -q, --queue QUEUE   the queue of the command (before the command;\n"
          "                      after it, the command's own -q)\n",
          out);
    jq_opts_usage(jq_cli_opts, out);
    fputs("\n'jobq COMMAND --help' describes a command. Exit status: 0 ok, 1 job\n"
          "dead or dead job not found, 2 bad arguments or wait timed out, 3 Redis\n"
          "error.\n",
          out);
}

static void enqueue_usage(FILE *out) {
    fputs("usage: jobq enqueue [-q QUEUE] TYPE [PAYLOAD_JSON | @FILE | @-] [options]\n"
          "\n"
          "PAYLOAD_JSON is turned into msgpack. @FILE sends the file's bytes as a\n"
          "msgpack bin (with --json: the file holds JSON text); @- reads stdin.\n"
          "No payload means nil. Prints the job id.\n"
          "\n"
          "  -q, --queue QUEUE     queue (default \"default\")\n"
          "  --json                @FILE holds JSON text; without --wait, print\n"
          "                        {\"id\",\"queue\",\"duplicate\"} instead of the id\n"
          "  --unique KEY          add nothing while a job holding KEY is queued,\n"
          "                        delayed, retrying or running: print its id\n"
          "  --unique-for DURATION hold KEY at least this long (90s, 10m, 1h, 2d)\n"
          "                        from now, even once the job ended\n"
          "  --batch ID            count the job in batch ID (`jobq batch create`)\n"
          "  --id ID               choose the job id\n"
          "  --priority LEVEL      high, normal (default) or low: within the queue a\n"
          "                        ready high job starts before any normal one,\n"
          "                        normal before low\n"
          "  --delay MS            run no earlier than MS from now\n"
          "  --at EPOCH_MS         run no earlier than this time\n"
          "  --max-attempts N      attempts before the job is dead (default 3)\n"
          "  --timeout-ms N        time limit of one attempt\n"
          "  --result-ttl S        seconds to keep the result (0: none, and no --wait)\n"
          "  --chunk-size BYTES    split larger payloads (default 256k; k/m suffix)\n"
          "  --wait [SECONDS]      wait for the result (default 30 s) and print it\n"
          "                        as JSON like `jobq wait`; use --wait=S or put\n"
          "                        the payload first to avoid ambiguity. The job\n"
          "                        carries `notify 1`, so the wait blocks on its\n"
          "                        notify list\n"
          "  -t, --timeout S       with --wait: how long to wait (as --wait=S)\n"
          "  --raw                 with --wait: write the result's msgpack bytes\n"
          "                        unchanged instead of JSON\n"
          "  -o, --output FILE     with --wait: write those bytes into FILE\n",
          out);
}

static void wait_usage(FILE *out) {
    fputs("usage: jobq wait [-q QUEUE] ID [--timeout SECONDS] [--raw] [-o FILE]\n"
          "\n"
          "Waits for the job to be done, dead or cancelled (polling its result hash) and\n"
          "prints one JSON object:\n"
          "{\"id\",\"queue\",\"state\",\"result\",\"error\",\"attempts\",\"finished_at\","
          "\"worker\"}.\n"
          "Exit 0 done, 1 dead or cancelled, 2 timed out (default 30 s), 3 Redis error.\n"
          "  --raw               write the result's msgpack bytes unchanged instead\n"
          "  -o, --output FILE   write those bytes into FILE instead of stdout\n",
          out);
}

/* Reads a whole file ("-" is stdin) into a malloc'd buffer, leaving
 * `head` bytes free in front of it (room for a msgpack bin header, so the
 * bytes are never copied again). A regular file is read into a buffer of
 * its size at once: growing by doubling faulted in and copied each byte of
 * a 60 MiB payload twice more (docs/BENCHMARKS.md, large payloads). */
static char *read_file(const char *path, size_t head, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    struct stat st;
    size_t cap = 65536, n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1; /* + 1: the read that sees the end */
    /* Huge-page advice (bigbuf.h): faulting in 60 MiB 4 KiB at a time
     * was most of `jobq enqueue`'s own time (sys, not user). */
    char *buf = jq_bigbuf_alloc(head + cap);
    while (buf) {
        n += fread(buf + head + n, 1, cap - n, f);
        if (n < cap) break;
        char *bigger = realloc(buf, head + cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* A msgpack bin header for len bytes into out (5 bytes at most); returns
 * its length. */
#define BIN_HEAD_MAX 5

static size_t bin_head(char *out, size_t len) {
    if (len < 256) {
        out[0] = (char)0xc4;
        out[1] = (char)len;
        return 2;
    }
    if (len < 65536) {
        out[0] = (char)0xc5;
        out[1] = (char)(len >> 8);
        out[2] = (char)len;
        return 3;
    }
    out[0] = (char)0xc6;
    for (int i = 0; i < 4; i++) out[1 + i] = (char)(len >> (24 - 8 * i));
    return 5;
}

/* From this size on, a regular @FILE is mapped rather than read: below
 * it a read costs less than setting up the mapping. */
#define MAP_MIN (1u << 20)

/* Maps the regular file fd of len bytes behind a private page that ends
 * with its bin header: one run of memory, [header][file], built without
 * touching the file's bytes. MAP_POPULATE maps the page cache's pages at
 * once, where faulting them in one by one cost as much as the read.
 * Returns 0, or -1 (the caller reads the file instead). */
static int map_file(int fd, size_t len, jq_cli_payload_t *p) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return -1;
    size_t maplen = (size_t)page + len;
    char *base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return -1;
    if (mmap(base + page, len, PROT_READ, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd, 0) ==
        MAP_FAILED) {
        munmap(base, maplen);
        return -1;
    }
    char h[BIN_HEAD_MAX];
    size_t hl = bin_head(h, len);
    memcpy(base + page - hl, h, hl);
    p->map = base;
    p->maplen = maplen;
    p->data = base + page - hl;
    p->size = hl + len;
    return 0;
}

/* A large regular file sent as a bin: mapped (map_file). Returns 1 when
 * mapped, 0 to read it instead. The file must not change while the job is
 * sent: like cp, we send what it holds as we read it. */
static int try_map(const char *path, jq_cli_payload_t *p) {
    if (!strcmp(path, "-")) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* read_file says why */
    struct stat st;
    int mapped = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)MAP_MIN &&
                 (unsigned long long)st.st_size <= 0xffffffffull &&
                 map_file(fd, (size_t)st.st_size, p) == 0;
    close(fd);
    return mapped;
}

void jq_cli_payload_free(jq_cli_payload_t *p) {
    msgpack_sbuffer_destroy(&p->sb);
    if (p->map) munmap(p->map, p->maplen);
    p->map = NULL;
    p->data = NULL;
    p->size = 0;
}

int jq_cli_payload(const char *cmd, const char *arg, int json_file, jq_cli_payload_t *p) {
    char err[JQ_ERR_LEN];
    memset(p, 0, sizeof(*p));
    msgpack_sbuffer_init(&p->sb);
    msgpack_sbuffer *sb = &p->sb;
    if (arg[0] != '@') {
        if (jq_codec_json_to_msgpack(arg, strlen(arg), sb, err, sizeof(err)) < 0)
            return jq_cli_usage_error(cmd, "%s", err);
        p->data = sb->data;
        p->size = sb->size;
        return 0;
    }
    if (!json_file && try_map(arg + 1, p)) return 0;
    size_t len = 0;
    char *data = read_file(arg + 1, BIN_HEAD_MAX, &len);
    if (!data) return jq_cli_usage_error(cmd, "cannot read %s: %s", arg + 1, strerror(errno));
    int rc = 0;
    if (json_file) {
        if (jq_codec_json_to_msgpack(data + BIN_HEAD_MAX, len, sb, err, sizeof(err)) < 0)
            rc = jq_cli_usage_error(cmd, "%s: %s", arg + 1, err);
    } else if (len > 0xffffffffu) {
        rc = jq_cli_usage_error(cmd, "%s: over 4 GiB, more than a msgpack bin holds", arg + 1);
    } else {
        /* The bin header goes right before the bytes, which stay where
         * fread put them: sb takes the buffer over (sb is empty here). */
        char h[BIN_HEAD_MAX];
        size_t hl = bin_head(h, len);
        if (hl < BIN_HEAD_MAX) memmove(data + hl, data + BIN_HEAD_MAX, len);
        memcpy(data, h, hl);
        msgpack_sbuffer_destroy(sb);
        sb->data = data;
        sb->size = hl + len;
        sb->alloc = BIN_HEAD_MAX + len;
        p->data = sb->data;
        p->size = sb->size;
        return 0;
    }
    free(data);
    if (rc == 0) {
        p->data = sb->data;
        p->size = sb->size;
    }
    return rc;
}

/* Where `wait` and `enqueue --wait` write: the JSON line on stdout, or
 * with --raw the result's msgpack bytes, on stdout or (-o) into a file. */
typedef struct output {
    int raw;
    const char *path; /* -o: implies raw */
    FILE *f;          /* where the bytes go: stdout, or path opened */
} output_t;

/* Opens -o's file before anything is sent, so that a path that cannot be
 * written costs no job. Returns JQ_EXIT_OK or JQ_EXIT_USAGE. */
static int output_open(const char *cmd, output_t *o) {
    o->f = stdout;
    if (!o->path) return JQ_EXIT_OK;
    o->raw = 1;
    if (!(o->f = fopen(o->path, "wb"))) {
        o->f = stdout;
        return jq_cli_usage_error(cmd, "cannot write %s: %s", o->path, strerror(errno));
    }
    return JQ_EXIT_OK;
}

/* Flushes (and closes -o's file); a write that failed turns a success
 * into exit 3, as a failed stdout always did. */
static int output_close(output_t *o, int status) {
    int bad = fflush(o->f) != 0 || ferror(o->f);
    if (o->f != stdout) {
        bad |= fclose(o->f) != 0;
        if (bad) fprintf(stderr, "jobq: writing %s: %s\n", o->path, strerror(errno));
    }
    return bad && status == JQ_EXIT_OK ? JQ_EXIT_REDIS : status;
}

/* Before a wait: a job that is nowhere is an error at once, not a wait
 * of the whole timeout (only looked for when `find`: a job enqueued just
 * now is there); a queue that no live worker serves gets a warning. Returns
 * 0 or the exit status. */
static int check_before_wait(jq_cli_t *cli, const char *queue, const char *id, int find) {
    char err[JQ_ERR_LEN];
    jq_job_place_t at;
    if (find && jq_client_locate(cli->client, queue, id, &at, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: wait for job %s: %s\n", id, err);
        return JQ_EXIT_REDIS;
    }
    if (find && at.where == JQ_WHERE_UNKNOWN) {
        fprintf(stderr,
                "jobq: no job %s in queue %s (not ready, running, scheduled, dead, nor "
                "finished with a kept result)\n",
                id, queue);
        return JQ_EXIT_USAGE;
    }
    if (find && at.where == JQ_WHERE_FINISHED) return 0;
    long long ago;
    if (jq_client_served(cli->client, queue, &ago, err, sizeof(err)) < 0) {
        fprintf(stderr, "jobq: wait for job %s: %s\n", id, err);
        return JQ_EXIT_REDIS;
    }
    /* Workers drop a type three heartbeats after its last worker went; a
     * queue whose workers all went keeps its last stamp. 15 s: three of the
     * longest heartbeat a deployment is likely to set. */
    if (ago < 0 || ago > SERVED_STALE_MS) {
        char seen[48] = "";
        if (ago > 0) snprintf(seen, sizeof(seen), " (last seen %lld s ago)", ago / 1000);
        fprintf(stderr,
                "jobq: warning: no live consumer serves queue %s%s: the job waits until one "
                "starts\n",
                queue, seen);
    }
    return 0;
}

/* The place of a job that did not finish in time, for the message. */
static const char *place_of(jq_cli_t *cli, const char *queue, const char *id,
                            const jq_result_t *r) {
    jq_job_place_t at;
    char err[JQ_ERR_LEN];
    if (jq_client_locate(cli->client, queue, id, &at, err, sizeof(err)) == 0 &&
        at.where != JQ_WHERE_UNKNOWN && at.where != JQ_WHERE_FINISHED)
        return jq_where_name(at.where);
    return r->state[0] ? r->state : "pending";
}

/* Waits and prints as `jobq wait` does; returns the exit status. flags:
 * JQ_NOTIFY when the job was enqueued with it (blocks on its notify list
 * instead of polling). find: look for the job first (check_before_wait). */
static int wait_and_print(jq_cli_t *cli, const char *queue, const char *id, long long timeout_ms,
                          unsigned flags, int find, output_t *out) {
    jq_result_t r;
    char err[JQ_ERR_LEN];
    int raw = out->raw;
    int status = check_before_wait(cli, queue, id, find);
    if (status) return output_close(out, status);
    memset(&r, 0, sizeof(r));
    int rc = jq_cli_wait_progress(cli, queue, id, timeout_ms, flags, &r, err, sizeof(err));
    if (rc == 0 || rc == JQ_CLIENT_ETIMEOUT) {
        /* dead or cancelled */
        int dead = rc == 0 && strcmp(r.state, "done") != 0;
        status = rc ? JQ_EXIT_TIMEOUT : dead ? JQ_EXIT_FAIL : JQ_EXIT_OK;
        if (rc)
            fprintf(stderr, "jobq: job %s not finished after %.3f s (state: %s)\n", id,
                    timeout_ms / 1000.0, place_of(cli, queue, id, &r));
        if (!raw)
            jq_cli_print_result(stdout, queue, id, &r);
        else if (dead)
            fprintf(stderr, "jobq: job %s is %s: %s\n", id, r.state, r.error ? r.error : "");
        else if (rc == 0 && r.result)
            fwrite(r.result, 1, r.result_len, out->f);
        else if (rc == 0)
            fputc(0xc0, out->f); /* msgpack nil: the output always holds one object */
    } else {
        fprintf(stderr, "jobq: wait for job %s: %s\n", id, err);
        status = JQ_EXIT_REDIS;
    }
    jq_result_destroy(&r);
    return output_close(out, status);
}

/* "--wait", "--wait=S" or "--wait S" when S reads as seconds. */
static int match_wait(jq_argp_t *p, long long *wait_ms) {
    const char *a = p->argv[p->i];
    if (p->no_more_opts) return 0;
    if (!strncmp(a, "--wait=", 7)) {
        if (jq_cli_seconds(a + 7, wait_ms) < 0) {
            jq_cli_usage_error(p->cmd, "--wait: '%s' is not a number of seconds", a + 7);
            p->bad = 1;
        }
        p->i++;
        return 1;
    }
    if (strcmp(a, "--wait")) return 0;
    p->i++;
    *wait_ms = WAIT_DEFAULT_MS;
    if (p->i < p->argc && jq_cli_seconds(p->argv[p->i], wait_ms) == 0) p->i++;
    return 1;
}

/* Parses a byte count with an optional k/m/g suffix (powers of 1024). */
static int match_bytes(jq_argp_t *p, const char *name, long long *out) {
    const char *v;
    if (!jq_argp_opt(p, NULL, name, &v)) return 0;
    if (p->bad) return 1;
    long long n;
    if (jq_parse_bytes(v, &n) < 0 || n < 1 || n > (1LL << 32)) {
        jq_cli_usage_error(p->cmd, "--%s: '%s' is not a size from 1 to 4g", name, v);
        p->bad = 1;
    } else {
        *out = n;
    }
    return 1;
}

int jq_argp_job(jq_argp_t *p, jq_enqueue_opts_t *o, long long *ttl) {
    return jq_argp_ll(p, NULL, "max-attempts", 1, 1000000, &o->max_attempts) ||
           jq_argp_ll(p, NULL, "timeout-ms", 1, 1LL << 40, &o->timeout_ms) ||
           jq_argp_ll(p, NULL, "result-ttl", 0, 1LL << 40, ttl);
}

/* Enqueues, then prints the id (as JSON with json), or (wait_ms >= 0)
 * waits and prints as `jobq wait` does; returns the exit status. A
 * duplicate of a unique job prints (or waits for) the job holding the
 * key, and exits 0 all the same. */
static int enqueue_and_print(jq_cli_t *cli, const char *type, const jq_cli_payload_t *payload,
                             const jq_enqueue_opts_t *o, jq_enqueue_ctl_t *ctl, int json,
                             unsigned flags, long long wait_ms, output_t *out) {
    /* A job waited for carries `notify 1` (PROTOCOL 1.2 §3): the wait
     * blocks on its notify list, woken the moment it ends. */
    if (wait_ms >= 0) flags |= JQ_NOTIFY;
    char id[JQ_CLIENT_ID_LEN], err[JQ_ERR_LEN];
    if (jq_client_enqueue_ctl(cli->client, type, payload ? payload->data : NULL,
                              payload ? payload->size : 0, o, flags, ctl, id, sizeof(id), err,
                              sizeof(err)) < 0) {
        fprintf(stderr, "jobq: enqueue: %s\n", err);
        return output_close(out, JQ_EXIT_REDIS);
    }
    /* The holder may not carry `notify 1`: poll its result instead. */
    if (ctl->duplicate) flags = 0;
    if (wait_ms >= 0) return wait_and_print(cli, o->queue, id, wait_ms, flags, 0, out);
    if (json) /* ids and queue names are [A-Za-z0-9_.:-]: nothing to escape */
        printf("{\"id\":\"%s\",\"queue\":\"%s\",\"duplicate\":%s}\n", id, o->queue,
               ctl->duplicate ? "true" : "false");
    else
        printf("%s\n", id);
    return JQ_EXIT_OK;
}

/* --unique-for DURATION. */
static int match_duration(jq_argp_t *p, const char *name, long long *ms) {
    const char *v;
    if (!jq_argp_opt(p, NULL, name, &v)) return 0;
    if (p->bad) return 1;
    if (jq_cli_duration(v, ms) < 0 || *ms < 1 || *ms > JQ_UNIQUE_FOR_MAX) {
        jq_cli_usage_error(p->cmd, "--%s: '%s' is not a duration from 1ms to 366d (90s, 10m, 1h)",
                           name, v);
        p->bad = 1;
    }
    return 1;
}

static int cmd_enqueue(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "enqueue", cli, 0, 0};
    jq_enqueue_opts_t o;
    jq_enqueue_opts_init(&o);
    jq_enqueue_ctl_t ctl = {NULL, 0, NULL, 0};
    const char *pos[2] = {NULL, NULL}, *queue = jq_cli_queue(cli), *prio = NULL;
    int npos = 0, json_file = 0;
    long long wait_ms = -1, chunk = 0, ttl = -1;
    output_t out = {0, NULL, stdout};
    const char *timeout = NULL;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            enqueue_usage(stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            jq_argp_set(&p, NULL, "json", &json_file) || jq_argp_opt(&p, NULL, "id", &o.id) ||
            jq_argp_opt(&p, NULL, "priority", &prio) ||
            jq_argp_ll(&p, NULL, "delay", 0, 1LL << 50, &o.delay_ms) ||
            jq_argp_ll(&p, NULL, "at", 0, 1LL << 50, &o.at_ms) || jq_argp_job(&p, &o, &ttl) ||
            match_bytes(&p, "chunk-size", &chunk) || match_wait(&p, &wait_ms) ||
            jq_argp_set(&p, NULL, "raw", &out.raw) || jq_argp_opt(&p, "-o", "output", &out.path) ||
            jq_argp_opt(&p, "-t", "timeout", &timeout) ||
            jq_argp_opt(&p, NULL, "unique", &ctl.unique) ||
            match_duration(&p, "unique-for", &ctl.unique_for_ms) ||
            jq_argp_opt(&p, NULL, "batch", &ctl.batch) || jq_argp_unknown(&p))
            continue;
        if (npos == 2) return jq_cli_usage_error("enqueue", "unexpected argument '%s'", argv[p.i]);
        pos[npos++] = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (!pos[0]) return jq_cli_usage_error("enqueue", "missing TYPE");
    if (o.delay_ms > 0 && o.at_ms > 0)
        return jq_cli_usage_error("enqueue", "--delay and --at exclude each other");
    jq_prio_t level = JQ_PRIO_NORMAL;
    if (prio && jq_prio_parse(prio, strlen(prio), &level) < 0)
        return jq_cli_usage_error("enqueue", "--priority: '%s' is not high, normal or low", prio);
    unsigned flags = level == JQ_PRIO_HIGH ? JQ_HIGH : level == JQ_PRIO_LOW ? JQ_LOW : 0;
    /* PROTOCOL 1.1 §3: a job with result_ttl 0 leaves no result and no
     * notify list behind, so there would be nothing to wait for. */
    if (wait_ms >= 0 && ttl == 0)
        return jq_cli_usage_error(
            "enqueue", "--wait with --result-ttl 0: such a job keeps no result to wait for");
    /* --timeout is the wait's, as in `jobq wait --timeout S`; the time
     * limit of an attempt is --timeout-ms. */
    if (timeout && wait_ms < 0)
        return jq_cli_usage_error("enqueue", "--timeout is how long --wait waits: add --wait "
                                             "(an attempt's time limit is --timeout-ms)");
    if (timeout && jq_cli_seconds(timeout, &wait_ms) < 0)
        return jq_cli_usage_error("enqueue", "--timeout: '%s' is not a number of seconds", timeout);
    if (wait_ms < 0 && (out.raw || out.path))
        return jq_cli_usage_error("enqueue", "--raw and -o write the result: they need --wait");
    size_t bql;
    if (ctl.batch && jq_batch_id_split(ctl.batch, strlen(ctl.batch), &bql) < 0)
        return jq_cli_usage_error("enqueue", "--batch: bad batch id '%s' (as batch create prints)",
                                  ctl.batch);
    if (ctl.unique_for_ms && !ctl.unique)
        return jq_cli_usage_error("enqueue", "--unique-for needs --unique KEY");
    if (jq_cli_check_name("enqueue", "queue name", queue) < 0 ||
        (o.id && jq_cli_check_name("enqueue", "job id", o.id) < 0) ||
        (ctl.unique && jq_cli_check_name("enqueue", "unique key", ctl.unique) < 0))
        return JQ_EXIT_USAGE;
    o.queue = queue;
    o.result_ttl = ttl;
    o.chunk_size = (size_t)chunk;

    jq_cli_payload_t pl = {0};
    msgpack_sbuffer_init(&pl.sb);
    int status = pos[1] ? jq_cli_payload("enqueue", pos[1], json_file, &pl) : JQ_EXIT_OK;
    if (status == JQ_EXIT_OK) status = jq_cli_connect(cli);
    if (status == JQ_EXIT_OK) status = output_open("enqueue", &out);
    if (status == JQ_EXIT_OK)
        status = enqueue_and_print(cli, pos[0], pos[1] ? &pl : NULL, &o, &ctl, json_file, flags,
                                   wait_ms, &out);
    jq_cli_payload_free(&pl);
    return status;
}

static int cmd_wait(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "wait", cli, 0, 0};
    const char *queue = jq_cli_queue(cli), *id = NULL, *timeout = NULL;
    output_t out = {0, NULL, stdout};
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            wait_usage(stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) ||
            jq_argp_opt(&p, "-t", "timeout", &timeout) || jq_argp_set(&p, NULL, "raw", &out.raw) ||
            jq_argp_opt(&p, "-o", "output", &out.path) || jq_argp_unknown(&p))
            continue;
        if (id) return jq_cli_usage_error("wait", "unexpected argument '%s'", argv[p.i]);
        id = jq_argp_take(&p);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (!id) return jq_cli_usage_error("wait", "missing job ID");
    long long ms = WAIT_DEFAULT_MS;
    if (timeout && jq_cli_seconds(timeout, &ms) < 0)
        return jq_cli_usage_error("wait", "--timeout: '%s' is not a number of seconds", timeout);
    if (jq_cli_check_name("wait", "queue name", queue) < 0 ||
        jq_cli_check_name("wait", "job id", id) < 0)
        return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status == JQ_EXIT_OK) status = output_open("wait", &out);
    /* Whoever enqueued it may not have set `notify 1`: poll its hash. */
    return status ? status : wait_and_print(cli, queue, id, ms, 0, 1, &out);
}

/* Takes `-q QUEUE`, `--queue QUEUE` or `--queue=QUEUE` out of the global
 * options (those before the command), so that `jobq -q Q stats` means
 * `jobq stats -q Q`. It is not a row of jq_cli_opts: after the command,
 * -q belongs to the subcommand. */
static int take_global_queue(int *argc, char **argv, const char **queue) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !strcmp(a, "--")) {
            while (i < *argc) argv[out++] = argv[i++];
            break;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--queue")) {
            if (i + 1 >= *argc) return jq_cli_usage_error(NULL, "%s: missing QUEUE", a);
            *queue = argv[++i];
            continue;
        }
        if (!strncmp(a, "--queue=", 8)) {
            *queue = a + 8;
            continue;
        }
        argv[out++] = argv[i];
        /* A global option's value ("--redis URL") is not the command. */
        for (const jq_opt_t *o = jq_cli_opts; o->name; o++)
            if (!strncmp(a, "--", 2) && !strcmp(a + 2, o->name) && i + 1 < *argc) {
                argv[out++] = argv[++i];
                break;
            }
    }
    *argc = out;
    argv[out] = NULL;
    if (*queue && jq_cli_check_name(NULL, "queue name", *queue) < 0) return JQ_EXIT_USAGE;
    return 0;
}

int main(int argc, char **argv) {
    jq_cli_t cli;
    memset(&cli, 0, sizeof(cli));
    jq_log_set_role("jobq");
    if (take_global_queue(&argc, argv, &cli.queue) != 0) return JQ_EXIT_USAGE;
    int i = 1;
    char err[JQ_ERR_LEN];
    int rc = jq_opts_parse(jq_cli_opts, &cli, argc, argv, &i, err, sizeof(err));
    if (rc < 0) return jq_cli_usage_error(NULL, "%s", err);
    if (rc == JQ_OPTS_HELP || (i < argc && !strcmp(argv[i], "help"))) {
        usage(stdout);
        return JQ_EXIT_OK;
    }
    if (i >= argc) {
        usage(stderr);
        return JQ_EXIT_USAGE;
    }
    const char *cmd = argv[i++];
    int status;
    if (!strcmp(cmd, "enqueue"))
        status = cmd_enqueue(&cli, argc, argv, i);
    else if (!strcmp(cmd, "wait"))
        status = cmd_wait(&cli, argc, argv, i);
    else if (!strcmp(cmd, "batch"))
        status = jq_cli_batch(&cli, argc, argv, i);
    else if (!strcmp(cmd, "dead"))
        status = jq_cli_dead(&cli, argc, argv, i);
    else if (!strcmp(cmd, "cancel"))
        status = jq_cli_cancel(&cli, argc, argv, i);
    else if (!strcmp(cmd, "pause"))
        status = jq_cli_pause(&cli, argc, argv, i, 1);
    else if (!strcmp(cmd, "resume"))
        status = jq_cli_pause(&cli, argc, argv, i, 0);
    else if (!strcmp(cmd, "stats"))
        status = jq_cli_stats(&cli, argc, argv, i);
    else if (!strcmp(cmd, "jobs"))
        status = jq_cli_jobs(&cli, argc, argv, i);
    else if (!strcmp(cmd, "top"))
        status = jq_cli_top(&cli, argc, argv, i);
    else if (!strcmp(cmd, "limit"))
        status = jq_cli_limit(&cli, argc, argv, i);
    else if (!strcmp(cmd, "schedule"))
        status = jq_cli_schedule(&cli, argc, argv, i);
    else
        status = jq_cli_usage_error(NULL, "unknown command '%s'", cmd);
    jq_client_free(cli.client);
    return status;
}
