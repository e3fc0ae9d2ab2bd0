/* `jobq top`: a live full-screen view of the queues and workers on
 * ncurses, refreshed every second from libjobq's watch snapshot (the same
 * reads as `jobq stats`). Rates are taken over the last few snapshots, not
 * the per-minute hashes, so they follow the load within seconds.
 *
 * Drawing goes through ncurses' own diffing (erase + refresh, never
 * clear), so a refresh rewrites only the cells that changed: no flicker.
 * The terminal is restored on q, on SIGINT/SIGTERM/SIGHUP, and on any
 * error path, through one end_screen(). A failed read keeps the last
 * figures on screen under a line that says Redis is unreachable; the next
 * read reconnects. */

#include <curses.h>
#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "jobq/watch.h"
#include "url.h"

#define HIST 64     /* snapshots kept per queue (one a second) */
#define RATE_SPAN 5 /* rates over the last 5 snapshots */
#define SPARK 8     /* sparkline cells */
#define MAX_QUEUES 256
#define READ_TIMEOUT_MS 2000

static const char top_help[] =
    "usage: jobq top [-q QUEUE]\n"
    "\n"
    "A live view of every queue (or QUEUE) and worker, refreshed every\n"
    "second: the rows of `jobq stats`, with jobs/s over the last 5 seconds\n"
    "and a throughput sparkline per queue. Keys: q quits; up/down (or k/j)\n"
    "select a queue; p pauses or resumes the selected queue; s changes the\n"
    "sort (name, ready, jobs/s, dead).\n";

typedef struct jq_qhist {
    char name[JQ_CLIENT_ID_LEN];
    int64_t at[HIST];
    long long processed[HIST], failed[HIST];
    int n, head; /* ring: head is the next slot */
    double rate, fail_rate;
    int seen; /* present in the latest snapshot */
} jq_qhist_t;

typedef enum { SORT_NAME, SORT_READY, SORT_RATE, SORT_DEAD, SORT_N } jq_sort_t;
static const char *const sort_names[SORT_N] = {"name", "ready", "jobs/s", "dead"};

typedef struct jq_top {
    jq_cli_t *cli;
    const char *queue;
    char where[600]; /* redis URL without the password */
    jq_watch_t snap; /* the last good snapshot */
    int have_snap;
    char err[JQ_ERR_LEN];        /* the last read's failure, "" when it worked */
    char note[JQ_ERR_LEN + 160]; /* the answer to the last key */
    jq_qhist_t hist[MAX_QUEUES];
    int nhist;
    int order[MAX_QUEUES]; /* snapshot queue indexes, in sort order */
    int selected;          /* index into order */
    char selected_name[JQ_CLIENT_ID_LEN];
    jq_sort_t sort;
    int utf8;
} jq_top_t;

static volatile sig_atomic_t stop_signal;
static int screen_up;

static void on_stop_signal(int sig) { stop_signal = sig; }

static void end_screen(void) {
    if (!screen_up) return;
    screen_up = 0;
    endwin();
}

/* ---- history and rates ---- */

static jq_qhist_t *hist_of(jq_top_t *t, const char *name) {
    for (int i = 0; i < t->nhist; i++)
        if (strcmp(t->hist[i].name, name) == 0) return &t->hist[i];
    if (t->nhist == MAX_QUEUES) return NULL;
    jq_qhist_t *h = &t->hist[t->nhist++];
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    return h;
}

/* The k-th sample back (0 = latest). */
static int back(const jq_qhist_t *h, int k) { return (h->head - 1 - k + 2 * HIST) % HIST; }

static void hist_add(jq_qhist_t *h, int64_t at, long long processed, long long failed) {
    h->at[h->head] = at;
    h->processed[h->head] = processed;
    h->failed[h->head] = failed;
    h->head = (h->head + 1) % HIST;
    if (h->n < HIST) h->n++;
    int k = h->n - 1 < RATE_SPAN ? h->n - 1 : RATE_SPAN;
    h->rate = h->fail_rate = 0;
    if (k > 0) {
        int a = back(h, k), b = back(h, 0);
        double dt = (double)(h->at[b] - h->at[a]) / 1000.0;
        /* A counter that went down was reset (a FLUSHALL): no rate. */
        if (dt > 0 && h->processed[b] >= h->processed[a])
            h->rate = (h->processed[b] - h->processed[a]) / dt;
        if (dt > 0 && h->failed[b] >= h->failed[a])
            h->fail_rate = (h->failed[b] - h->failed[a]) / dt;
    }
}

static void record(jq_top_t *t) {
    for (int i = 0; i < t->nhist; i++) t->hist[i].seen = 0;
    for (size_t i = 0; i < t->snap.nqueues; i++) {
        const jq_queue_watch_t *q = &t->snap.queues[i];
        jq_qhist_t *h = hist_of(t, q->s.queue);
        if (!h) continue;
        hist_add(h, t->snap.at_ms, q->s.processed, q->s.failed);
        h->seen = 1;
    }
}

/* Throughput of each second over the last SPARK seconds, as block
 * characters scaled to the window's busiest second (ASCII outside UTF-8). */
static void sparkline(const jq_top_t *t, const jq_qhist_t *h, char *out, size_t cap) {
    static const char *const blocks[] = {" ",      "\u2581", "\u2582", "\u2583", "\u2584",
                                         "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char ascii[] = " .:-=+*#%@";
    double v[SPARK] = {0}, max = 0;
    for (int k = 0; k < SPARK && k + 1 < h->n; k++) {
        int a = back(h, k + 1), b = back(h, k);
        double dt = (double)(h->at[b] - h->at[a]) / 1000.0;
        double d = (double)(h->processed[b] - h->processed[a]);
        v[SPARK - 1 - k] = dt > 0 && d > 0 ? d / dt : 0;
        if (v[SPARK - 1 - k] > max) max = v[SPARK - 1 - k];
    }
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < SPARK; i++) {
        int level = max > 0 ? (int)(v[i] / max * 8 + 0.999) : 0;
        if (level > 8) level = 8;
        const char *cell;
        char one[2] = {ascii[level > 0 ? level + 1 : 0], '\0'};
        cell = t->utf8 ? blocks[level] : one;
        len += (size_t)snprintf(out + len, cap - len, "%s", cell);
        if (len >= cap) break;
    }
}

/* ---- sorting and selection ---- */

static const jq_top_t *sort_top;

static int cmp_queue(const void *x, const void *y) {
    const jq_queue_watch_t *a = &sort_top->snap.queues[*(const int *)x];
    const jq_queue_watch_t *b = &sort_top->snap.queues[*(const int *)y];
    double ka = 0, kb = 0;
    switch (sort_top->sort) {
        case SORT_READY: ka = (double)a->s.ready, kb = (double)b->s.ready; break;
        case SORT_DEAD: ka = (double)a->s.dead, kb = (double)b->s.dead; break;
        case SORT_RATE: {
            jq_qhist_t *ha = hist_of((jq_top_t *)sort_top, a->s.queue),
                       *hb = hist_of((jq_top_t *)sort_top, b->s.queue);
            ka = ha ? ha->rate : 0, kb = hb ? hb->rate : 0;
            break;
        }
        default: break;
    }
    if (ka != kb) return ka < kb ? 1 : -1; /* biggest first */
    return strcmp(a->s.queue, b->s.queue);
}

/* Sorts, and keeps the selection on the same queue across refreshes. */
static void order_queues(jq_top_t *t) {
    int n = (int)t->snap.nqueues;
    for (int i = 0; i < n; i++) t->order[i] = i;
    sort_top = t;
    qsort(t->order, (size_t)n, sizeof(int), cmp_queue);
    t->selected = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(t->snap.queues[t->order[i]].s.queue, t->selected_name) == 0) t->selected = i;
    if (n)
        snprintf(t->selected_name, sizeof(t->selected_name), "%s",
                 t->snap.queues[t->order[t->selected]].s.queue);
}

/* ---- reading ---- */

static void refresh_data(jq_top_t *t) {
    jq_watch_t w;
    if (jq_watch_read(t->cli->client, t->queue, &w, t->err, sizeof(t->err)) < 0) {
        jq_watch_destroy(&w);
        return; /* the last figures stay; the error is shown */
    }
    t->err[0] = '\0';
    jq_watch_destroy(&t->snap);
    t->snap = w;
    if (t->snap.nqueues > MAX_QUEUES) t->snap.nqueues = MAX_QUEUES;
    t->have_snap = 1;
    record(t);
    order_queues(t);
}

/* ---- drawing ---- */

/* One line at y, cut at the screen's width (never wrapped onto the next). */
static void line(int y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(int y, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (y < LINES) mvaddnstr(y, 0, buf, COLS);
}

static void draw_header(jq_top_t *t) {
    char clock[32];
    time_t now = time(NULL);
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&now));
    attron(A_BOLD);
    line(0, "jobq top  %.40s  %s", t->where, clock);
    attroff(A_BOLD);
    line(1, "q quit  up/down select  p pause/resume  s sort: %s   (P: paused)",
         sort_names[t->sort]);
    if (t->err[0]) {
        attron(A_REVERSE | A_BOLD);
        line(2, "redis unreachable, retrying: %s", t->err);
        attroff(A_REVERSE | A_BOLD);
    } else if (t->note[0]) {
        line(2, "%s", t->note);
    }
}

/* The queue name takes what the figures leave: 10 columns at 80. */
static int queue_width(void) {
    int qw = COLS - 70;
    return qw < 8 ? 8 : qw > 32 ? 32 : qw;
}

static void draw_queue(jq_top_t *t, int y, int i, int qw) {
    const jq_queue_watch_t *q = &t->snap.queues[t->order[i]];
    jq_qhist_t *h = hist_of(t, q->s.queue);
    char b[10][24], spark[64];
    if (i == t->selected) attron(A_REVERSE);
    line(y, "%c%c %-*.*s %6s %4s %5s %5s %6s %5s %6s %6s %6s ", i == t->selected ? '>' : ' ',
         q->s.paused ? 'P' : ' ', qw, qw, q->s.queue, jq_fmt_count(q->s.ready, b[0], 24),
         jq_fmt_count(q->s.running, b[1], 24), jq_fmt_count(q->s.scheduled, b[2], 24),
         jq_fmt_count(q->s.dead, b[3], 24), jq_fmt_count(q->s.processed, b[4], 24),
         jq_fmt_count(q->s.failed, b[5], 24), jq_fmt_rate(h ? h->rate : 0, b[6], 24),
         jq_fmt_ms(jq_latency_quantile(&q->wait, 0.99), b[7], 24),
         jq_fmt_ms(jq_latency_quantile(&q->run, 0.99), b[8], 24));
    if (i == t->selected) attroff(A_REVERSE);
    if (!h) return;
    /* The sparkline cell by cell: its UTF-8 bytes outnumber its columns. */
    sparkline(t, h, spark, sizeof(spark));
    for (const char *c = spark; *c && getcurx(stdscr) < COLS;) {
        size_t n = t->utf8 && (unsigned char)*c >= 0x80 ? 3 : 1;
        addnstr(c, (int)n);
        c += n;
    }
}

static int draw_queues(jq_top_t *t, int y) {
    int qw = queue_width();
    attron(A_BOLD);
    line(y++, "   %-*s %6s %4s %5s %5s %6s %5s %6s %6s %6s %-*s", qw, "QUEUE", "READY", "RUN",
         "SCHED", "DEAD", "DONE", "FAIL", "JOBS/S", "WAIT99", "RUN99", SPARK, "TREND");
    attroff(A_BOLD);
    for (int i = 0; i < (int)t->snap.nqueues && y < LINES - 3; i++) draw_queue(t, y++, i, qw);
    if (t->snap.nqueues == 0) line(y++, "   (no queues)");
    return y;
}

/* One line, when any queue has schedules: how many, the next to fire,
 * and the latest tick not fired yet (no consumer serves its queue). */
static int draw_schedules(jq_top_t *t, int y) {
    long long n = 0, next = 0, lag = 0;
    const char *next_name = "", *late_name = "", *late_q = "";
    for (size_t i = 0; i < t->snap.nqueues; i++) {
        const jq_queue_watch_t *q = &t->snap.queues[i];
        n += q->schedules;
        for (int k = 0; k < q->nsched; k++) {
            long long at = q->sched[k].next_ms, late = t->snap.at_ms - at;
            if (at > 0 && late > lag) {
                lag = late;
                late_name = q->sched[k].name;
                late_q = q->s.queue;
            } else if (at >= t->snap.at_ms && (!next || at < next)) {
                next = at;
                next_name = q->sched[k].name;
            }
        }
    }
    if (n == 0 || y >= LINES - 2) return y;
    char in[24], by[24], late[96] = "";
    if (lag > 0)
        snprintf(late, sizeof(late), ", late: %.24s (%.16s) by %s", late_name, late_q,
                 jq_fmt_ms((double)lag, by, 24));
    line(y++, "  schedules %lld, next: %.24s in %s%s", n, next ? next_name : "-",
         next ? jq_fmt_ms((double)(next - t->snap.at_ms), in, 24) : "-", late);
    return y;
}

/* One line, when any queue has a limit: how many, the jobs they hold
 * back now, and the queue holding back the most with its leases and
 * what blocks it (PROTOCOL §9). */
static int draw_limits(jq_top_t *t, int y) {
    long long n = 0, held = 0;
    const jq_queue_watch_t *most = NULL;
    for (size_t i = 0; i < t->snap.nqueues; i++) {
        const jq_queue_watch_t *q = &t->snap.queues[i];
        if (!q->limit_rate && !q->limit_concurrency && !q->backoff_ms) continue;
        n++;
        held += q->held_back;
        if (!most || q->held_back > most->held_back) most = q;
    }
    if (!most || y >= LINES - 2) return y;
    char rate[80] = "", r[64], conc[48] = "", by[64];
    if (most->limit_concurrency)
        snprintf(conc, sizeof(conc), ", %lld/%lld leased", most->leases, most->limit_concurrency);
    if (most->limit_rate)
        snprintf(rate, sizeof(rate), ", rate %s",
                 jq_cli_fmt_limit_rate(most->limit_rate, most->limit_period_ms, r, sizeof(r)));
    line(y++, "  limits %lld, held back %lld; most %.16s: %lld by %s%s%s", n, held, most->s.queue,
         most->held_back, jq_cli_fmt_blocked(most->blocked, by, sizeof(by)), conc, rate);
    return y;
}

static void draw_workers(jq_top_t *t, int y) {
    if (y >= LINES - 1) return;
    attron(A_BOLD);
    line(y++, "  %-20s %-10s %4s %5s %5s %7s %7s %7s %5s", "WORKER", "QUEUES", "IO", "CPU", "BKLG",
         "RSS", "CPU_T", "LAG", "SEEN");
    attroff(A_BOLD);
    for (size_t i = 0; i < t->snap.nworkers && y < LINES; i++) {
        const jq_worker_watch_t *k = &t->snap.workers[i];
        char cpu[24], rss[24], ct[24], lag[24], seen[24];
        snprintf(cpu, sizeof(cpu), "%lld/%lld", k->busy_cpu, k->threads);
        line(y++, "  %-20.20s %-10.10s %4lld %5s %5lld %7s %7s %7s %5s%s", k->id, k->queues,
             k->busy_io, cpu, k->cpu_backlog, jq_fmt_bytes(k->rss_bytes, rss, 24),
             jq_fmt_ms((double)k->cpu_ms, ct, 24), jq_fmt_ms(k->loop_lag_us / 1000.0, lag, 24),
             jq_fmt_ms((double)(t->snap.at_ms - k->last_seen_ms), seen, 24),
             k->draining ? " D" : "");
    }
    if (t->snap.nworkers == 0) line(y, "  (no live workers)");
}

static void draw(jq_top_t *t) {
    erase();
    draw_header(t);
    int y = draw_queues(t, 4);
    y = draw_schedules(t, y);
    y = draw_limits(t, y);
    draw_workers(t, y + 1);
    refresh();
}

/* ---- keys ---- */

static void toggle_pause(jq_top_t *t) {
    if (!t->snap.nqueues) return;
    const jq_queue_watch_t *q = &t->snap.queues[t->order[t->selected]];
    char err[JQ_ERR_LEN];
    int pause = !q->s.paused;
    int rc = pause ? jq_client_pause(t->cli->client, q->s.queue, err, sizeof(err))
                   : jq_client_resume(t->cli->client, q->s.queue, err, sizeof(err));
    if (rc < 0)
        snprintf(t->note, sizeof(t->note), "cannot %s %s: %s", pause ? "pause" : "resume",
                 q->s.queue, err);
    else
        snprintf(t->note, sizeof(t->note), "%s %s", pause ? "paused" : "resumed", q->s.queue);
}

/* Returns 1 to quit, 2 when the data should be read again now. */
static int on_key(jq_top_t *t, int ch) {
    int n = (int)t->snap.nqueues;
    switch (ch) {
        case 'q':
        case 'Q': return 1;
        case KEY_UP:
        case 'k':
            if (t->selected > 0) t->selected--;
            break;
        case KEY_DOWN:
        case 'j':
            if (t->selected + 1 < n) t->selected++;
            break;
        case 's':
        case 'S':
            t->sort = (t->sort + 1) % SORT_N;
            order_queues(t);
            return 0;
        case 'p':
        case 'P': toggle_pause(t); return 2;
        case KEY_RESIZE: return 0;
        default: return 0;
    }
    if (n)
        snprintf(t->selected_name, sizeof(t->selected_name), "%s",
                 t->snap.queues[t->order[t->selected]].s.queue);
    return 0;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run(jq_top_t *t) {
    int64_t next = 0;
    for (;;) {
        if (stop_signal) return;
        int64_t now = mono_ms();
        if (now >= next) {
            refresh_data(t);
            next = now + 1000;
        }
        draw(t);
        /* Wait for a key at most until the next refresh. */
        int wait = (int)(next - mono_ms());
        timeout(wait < 0 ? 0 : wait > 1000 ? 1000 : wait);
        int ch = getch();
        if (ch == ERR) continue;
        int r = on_key(t, ch);
        if (r == 1) return;
        if (r == 2) next = 0;
    }
}

int jq_cli_top(jq_cli_t *cli, int argc, char **argv, int start) {
    jq_argp_t p = {argc, argv, start, "top", cli, 0, 0};
    const char *queue = cli->queue;
    while (p.i < argc && !p.bad) {
        if (jq_argp_help(&p)) {
            fputs(top_help, stdout);
            return JQ_EXIT_OK;
        }
        if (jq_argp_global(&p) || jq_argp_opt(&p, "-q", "queue", &queue) || jq_argp_unknown(&p))
            continue;
        return jq_cli_usage_error("top", "unexpected argument '%s'", argv[p.i]);
    }
    if (p.bad) return JQ_EXIT_USAGE;
    if (queue && jq_cli_check_name("top", "queue name", queue) < 0) return JQ_EXIT_USAGE;
    int status = jq_cli_connect(cli);
    if (status) return status;

    jq_top_t *t = calloc(1, sizeof(*t));
    if (!t) {
        fprintf(stderr, "jobq: top: out of memory\n");
        return JQ_EXIT_FAIL;
    }
    t->cli = cli;
    t->queue = queue;
    /* A hung Redis (its socket open, no answer) must not freeze the screen
     * for libjobq's 30 s default: the outage line comes after 2 s. */
    jq_client_set_timeout(cli->client, READ_TIMEOUT_MS);
    jq_url_t url;
    if (jq_url_parse(cli->redis, &url, NULL, 0) == 0)
        jq_url_format(&url, t->where, sizeof(t->where));
    memset(&url, 0, sizeof(url));
    setlocale(LC_ALL, "");
    const char *cs = setlocale(LC_CTYPE, NULL);
    t->utf8 = cs && (strstr(cs, "UTF-8") || strstr(cs, "utf8") || strstr(cs, "UTF8"));

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (!initscr()) {
        fprintf(stderr, "jobq: top: cannot set up the terminal\n");
        free(t);
        return JQ_EXIT_FAIL;
    }
    screen_up = 1;
    atexit(end_screen);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    run(t);
    end_screen();
    jq_watch_destroy(&t->snap);
    free(t);
    return JQ_EXIT_OK;
}
