/* The exec handlers (see exec.h): the settings every command shares, read
 * once at start, and one handler per --exec entry. What a command is lives
 * in exec_cmd.c, how one job runs it in exec_run.c. */

#include "exec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "exec_cmd.h"
#include "exec_run.h"
#include "options.h"

/* Every command, and the settings they share, fixed at start. */
static jq_exec_cmd_t cmds[JQ_EXEC_MAX];
static int ncmds;
static jq_exec_conf_t conf;

static int parse_stdin_mode(const char *s, char *err, size_t errlen) {
    if (strcmp(s, "auto") == 0) {
        conf.stdin_mode = JQ_EXEC_STDIN_AUTO;
    } else if (strcmp(s, "msgpack") == 0) {
        conf.stdin_mode = JQ_EXEC_STDIN_MSGPACK;
    } else if (strcmp(s, "json") == 0) {
        conf.stdin_mode = JQ_EXEC_STDIN_JSON;
    } else {
        snprintf(err, errlen, "--exec-stdin: '%s' is not one of auto, msgpack, json", s);
        return -1;
    }
    return 0;
}

static int valid_env_name(const char *s, size_t n) {
    if (n == 0 || isdigit((unsigned char)s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return 0;
    return 1;
}

/* Copies the --exec-env variables' values now: the environment of every
 * command is fixed at start. An unset variable is left out. */
static int collect_env(const char *list, char *err, size_t errlen) {
    const char *pos = list, *e;
    size_t n, used = 0;
    conf.nenv = 0;
    while ((e = jq_opts_list_next(&pos, &n)) != NULL) {
        char name[256];
        if (!valid_env_name(e, n) || n >= sizeof(name)) {
            snprintf(err, errlen, "--exec-env '%.*s': not a variable name", (int)n, e);
            return -1;
        }
        memcpy(name, e, n);
        name[n] = '\0';
        const char *v = getenv(name);
        if (v == NULL) continue;
        size_t need = n + 1 + strlen(v) + 1;
        if (conf.nenv == JQ_EXEC_ENV_MAX || used + need > sizeof(conf.env_store)) {
            snprintf(err, errlen, "--exec-env: too many or too long variables");
            return -1;
        }
        char *dst = conf.env_store + used;
        snprintf(dst, need, "%s=%s", name, v);
        conf.env[conf.nenv++] = dst;
        used += need;
    }
    return 0;
}

/* Adds one --exec entry as a handler of r. */
static int add_command(jq_registry_t *r, const char *entry, size_t len, char *err, size_t errlen) {
    if (ncmds == JQ_EXEC_MAX) {
        snprintf(err, errlen, "--exec: at most %d commands", JQ_EXEC_MAX);
        return -1;
    }
    jq_exec_cmd_t *c = &cmds[ncmds];
    memset(c, 0, sizeof(*c));
    c->conf = &conf;
    if (jq_exec_cmd_parse(c, entry, len, err, errlen) != 0) return -1;
    c->h.name = c->name;
    c->h.kind = JQ_KIND_IO;
    c->h.start = jq_exec_run_start;
    c->h.cancel = jq_exec_run_cancel;
    c->h.data = c;
    ncmds++;
    r->adding = "--exec";
    return jq_registry_add(r, &c->h, err, errlen);
}

int jq_exec_register(jq_registry_t *r, const jq_options_t *o, char *err, size_t errlen) {
    ncmds = 0;
    conf.max_output = (size_t)o->exec_max_output;
    if (parse_stdin_mode(o->exec_stdin, err, errlen) != 0) return -1;
    snprintf(conf.worker_pid, sizeof(conf.worker_pid), "%ld", (long)getpid());
    jq_exec_find_guard(conf.guard, sizeof(conf.guard));
    if (collect_env(o->exec_env, err, errlen) != 0) return -1;
    const char *pos = o->exec, *e;
    size_t n;
    while ((e = jq_opts_list_next(&pos, &n)) != NULL)
        if (add_command(r, e, n, err, errlen) != 0) return -1;
    return 0;
}
