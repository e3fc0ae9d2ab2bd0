/* One --exec command (exec_cmd.h): its words and program, checked at
 * start, and what each run of it is given. */

#include "exec_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "exec_guard.h"

/* ---- splitting COMMAND into words ---- */

int jq_exec_split(const char *cmd, char *buf, size_t bufsize, char **argv, int maxargs, char *err,
                  size_t errlen) {
    size_t o = 0;
    int n = 0;
    const char *p = cmd;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') break;
        if (n == maxargs) {
            snprintf(err, errlen, "more than %d words", maxargs);
            return -1;
        }
        argv[n++] = buf + o;
        char quote = 0;
        for (; *p && (quote || (*p != ' ' && *p != '\t')); p++) {
            char c = *p;
            if (quote == '\'' && c != '\'') {
                /* literal */
            } else if (c == quote) {
                quote = 0;
                continue;
            } else if (!quote && (c == '\'' || c == '"')) {
                quote = c;
                continue;
            } else if (c == '\\' && (!quote || p[1] == '"' || p[1] == '\\')) {
                if (*++p == '\0') {
                    snprintf(err, errlen, "ends with a backslash");
                    return -1;
                }
                c = *p;
            }
            if (o + 2 > bufsize) {
                snprintf(err, errlen, "too long");
                return -1;
            }
            buf[o++] = c;
        }
        if (quote) {
            snprintf(err, errlen, "unbalanced %c quote", quote);
            return -1;
        }
        buf[o++] = '\0';
    }
    if (n == 0) {
        snprintf(err, errlen, "no program named");
        return -1;
    }
    argv[n] = NULL;
    return n;
}

/* ---- the program ---- */

/* The option the command came from, for messages. */
static const char *flag_of(const jq_exec_cmd_t *c) { return c->flag ? c->flag : "--exec"; }

/* Why path cannot be run, in a few words, or NULL when it can: execv
 * takes only a regular file we may execute (access(X_OK) alone says yes
 * to a directory, and to root for any file with one x bit). */
static const char *why_not_runnable(const char *path, char *why, size_t whylen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return why;
    }
    if (S_ISDIR(st.st_mode)) return "it is a directory";
    if (!S_ISREG(st.st_mode)) return "it is not a regular file";
    if (access(path, X_OK) != 0) {
        snprintf(why, whylen, "no permission to execute it (mode %04o: %s)",
                 (unsigned)(st.st_mode & 07777), strerror(errno));
        return why;
    }
    return NULL;
}

/* Finds the program as execvp would, once, now: at run time nothing is
 * looked up, and a program that cannot run is a start-up error. */
static int resolve_program(jq_exec_cmd_t *c, char *err, size_t errlen) {
    const char *prog = c->argv[0];
    char why[160];
    if (strchr(prog, '/')) {
        const char *no = why_not_runnable(prog, why, sizeof(why));
        if (no != NULL) {
            snprintf(err, errlen, "%s %s: %s is not an executable file: %s", flag_of(c), c->name,
                     prog, no);
            return -1;
        }
        snprintf(c->program, sizeof(c->program), "%s", prog);
        return 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *e = strchr(path, ':');
        size_t n = e ? (size_t)(e - path) : strlen(path);
        if (n > 0 && n + strlen(prog) + 2 <= sizeof(c->program)) {
            snprintf(c->program, sizeof(c->program), "%.*s/%s", (int)n, path, prog);
            if (why_not_runnable(c->program, why, sizeof(why)) == NULL) return 0;
        }
        path += n + (e != NULL);
    }
    snprintf(err, errlen, "%s %s: program '%s' not found in PATH", flag_of(c), c->name, prog);
    return -1;
}

int jq_exec_cmd_parse(jq_exec_cmd_t *c, const char *entry, size_t len, char *err, size_t errlen) {
    const char *eq = memchr(entry, '=', len);
    if (eq == NULL) {
        snprintf(err, errlen, "%s '%.*s': want NAME=COMMAND", flag_of(c), (int)len, entry);
        return -1;
    }
    size_t nlen = (size_t)(eq - entry);
    if (nlen == 0 || nlen > JQ_NAME_MAX) {
        snprintf(err, errlen, "%s '%.*s': bad name", flag_of(c), (int)len, entry);
        return -1;
    }
    memcpy(c->name, entry, nlen);
    c->name[nlen] = '\0';
    char cmd[4096], why[128];
    snprintf(cmd, sizeof(cmd), "%.*s", (int)(len - nlen - 1), eq + 1);
    c->argc =
        jq_exec_split(cmd, c->words, sizeof(c->words), c->argv, JQ_EXEC_ARGS_MAX, why, sizeof(why));
    if (c->argc < 0) {
        snprintf(err, errlen, "%s %s: COMMAND %s", flag_of(c), c->name, why);
        return -1;
    }
    return resolve_program(c, err, errlen);
}

void jq_exec_find_guard(char *guard, size_t len) {
    char exe[4096];
    size_t n = sizeof(exe);
    snprintf(guard, len, "/proc/self/exe");
    if (uv_exepath(exe, &n) != 0) return;
    char *slash = strrchr(exe, '/');
    if (slash == NULL) return;
    *slash = '\0';
    char path[sizeof(exe) + 32];
    snprintf(path, sizeof(path), "%s/jobq-exec-guard", exe);
    size_t plen = strlen(path);
    if (access(path, X_OK) == 0 && plen < len) memcpy(guard, path, plen + 1);
}

/* ---- what one run is given ---- */

void jq_exec_cmd_args(const jq_exec_cmd_t *c, char *args[JQ_EXEC_RUN_ARGS]) {
    int k = 0;
    args[k++] = (char *)c->conf->guard;
    args[k++] = JQ_EXEC_GUARD_ARG;
    args[k++] = (char *)c->conf->worker_pid;
    args[k++] = (char *)c->program;
    for (int i = 0; i < c->argc; i++) args[k++] = c->argv[i];
    args[k] = NULL;
}

void jq_exec_cmd_env(const jq_exec_cmd_t *c, const jq_task_t *t, jq_exec_env_t *e) {
    snprintf(e->id, sizeof(e->id), "JOBQ_JOB_ID=%s", t->job_id ? t->job_id : "");
    snprintf(e->queue, sizeof(e->queue), "JOBQ_QUEUE=%s", t->queue ? t->queue : "");
    snprintf(e->attempt, sizeof(e->attempt), "JOBQ_ATTEMPT=%lld", t->attempt);
    int k = 0;
    e->env[k++] = e->id;
    e->env[k++] = e->queue;
    e->env[k++] = e->attempt;
    e->env[k++] = (char *)"JOBQ_PROGRESS_FD=3"; /* exec_run.c: the progress pipe */
    for (int i = 0; i < c->conf->nenv; i++) e->env[k++] = (char *)c->conf->env[i];
    e->env[k] = NULL;
}

int jq_exec_cmd_stdin(const jq_exec_cmd_t *c, const msgpack_object *p, msgpack_sbuffer *scratch,
                      uv_buf_t *b) {
    jq_exec_stdin_t mode = c->conf->stdin_mode;
    if (mode == JQ_EXEC_STDIN_AUTO && p->type == MSGPACK_OBJECT_STR) {
        *b = uv_buf_init((char *)p->via.str.ptr, p->via.str.size);
        return 0;
    }
    if (mode == JQ_EXEC_STDIN_AUTO && p->type == MSGPACK_OBJECT_BIN) {
        *b = uv_buf_init((char *)p->via.bin.ptr, p->via.bin.size);
        return 0;
    }
    if (mode == JQ_EXEC_STDIN_AUTO && p->type == MSGPACK_OBJECT_NIL) {
        *b = uv_buf_init(NULL, 0);
        return 0;
    }
    int rc;
    if (mode == JQ_EXEC_STDIN_JSON) {
        rc = jq_codec_msgpack_to_json(p, scratch);
    } else {
        msgpack_packer pk;
        msgpack_packer_init(&pk, scratch, msgpack_sbuffer_write);
        rc = msgpack_pack_object(&pk, *p);
    }
    *b = uv_buf_init(scratch->data, (unsigned)scratch->size);
    return rc;
}
