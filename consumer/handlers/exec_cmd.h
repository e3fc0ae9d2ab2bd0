#ifndef JQ_EXEC_CMD_H
#define JQ_EXEC_CMD_H

/* One --exec command, and what each of its runs is given: the words of
 * COMMAND and its program, found once at start; then, per run, the guard's
 * argv, the environment and the stdin bytes (exec.h says what they hold).
 * No I/O but the checks of the program at start: exec_run.c runs them. */

#include <stddef.h>
#include <uv.h>
#include <jobq/handler.h>

#include "keys.h"

#define JQ_EXEC_ARGS_MAX 64 /* words of one command */
#define JQ_EXEC_ENV_MAX 64  /* --exec-env variables */

typedef enum { JQ_EXEC_STDIN_AUTO, JQ_EXEC_STDIN_MSGPACK, JQ_EXEC_STDIN_JSON } jq_exec_stdin_t;

/* Settings shared by every command, fixed at start (exec.c fills them). */
typedef struct jq_exec_conf {
    jq_exec_stdin_t stdin_mode;
    size_t max_output;                /* --exec-max-output */
    char env_store[8192];             /* "VAR=value" strings, back to back */
    const char *env[JQ_EXEC_ENV_MAX]; /* into env_store */
    int nenv;
    char worker_pid[24];
    char guard[4096]; /* jobq-exec-guard, or /proc/self/exe */
} jq_exec_conf_t;

/* One command; its handler's data points back at it. Lives as long as the
 * process (exec.c keeps them in static storage). */
typedef struct jq_exec_cmd {
    jq_handler_t h;
    const jq_exec_conf_t *conf; /* borrowed, lives as long */
    const char *flag;           /* the option it came from, for messages;
                                   NULL: "--exec" */
    char name[JQ_NAME_MAX + 1];
    char program[4096]; /* absolute or relative path, resolved */
    char words[4096];
    char *argv[JQ_EXEC_ARGS_MAX + 1]; /* into words */
    int argc;
} jq_exec_cmd_t;

/* Splits cmd into words (quotes and backslashes as in a shell, nothing
 * expanded) into buf (bufsize bytes; the words are NUL-terminated there)
 * and argv (at most maxargs words, then a NULL). Returns the number of words
 * (>= 1), or -1 with err: unbalanced quote, trailing backslash, no word,
 * too many or too long. */
int jq_exec_split(const char *cmd, char *buf, size_t bufsize, char **argv, int maxargs, char *err,
                  size_t errlen);

/* Fills c from one --exec entry entry[0..len) ("NAME=COMMAND"): the name,
 * the words, and the program, looked up in PATH now when it has no slash.
 * The program must be a regular file we may execute: a directory, a file
 * without the x bit or a missing one is refused here, at start. Returns 0,
 * or -1 with err naming the entry, the path and the reason. */
int jq_exec_cmd_parse(jq_exec_cmd_t *c, const char *entry, size_t len, char *err, size_t errlen);

/* Writes into guard (len bytes) the program that guards a command (see
 * exec_guard.h): the small jobq-exec-guard next to our binary, which starts
 * ten times faster than jobq-consumer itself (measured: 4 ms against 47 ms
 * on a busy machine); without it, our own binary, whatever became of its
 * path since it started. */
void jq_exec_find_guard(char *guard, size_t len);

/* Room for the guard's argv: the guard, its flag, the worker's pid, the
 * program, the command's words and a NULL. */
#define JQ_EXEC_RUN_ARGS (JQ_EXEC_ARGS_MAX + 5)

/* Fills args with the guard's argv for a run of c (pointers into c and its
 * conf, valid as long as they are). */
void jq_exec_cmd_args(const jq_exec_cmd_t *c, char *args[JQ_EXEC_RUN_ARGS]);

/* A run's environment: JOBQ_JOB_ID, JOBQ_QUEUE, JOBQ_ATTEMPT,
 * JOBQ_PROGRESS_FD, then the
 * --exec-env variables; env points into the struct and into c's conf. */
typedef struct jq_exec_env {
    char id[JQ_NAME_MAX + 16], queue[JQ_NAME_MAX + 16], attempt[40];
    char *env[JQ_EXEC_ENV_MAX + 5];
} jq_exec_env_t;

void jq_exec_cmd_env(const jq_exec_cmd_t *c, const jq_task_t *t, jq_exec_env_t *e);

/* The bytes the command reads on stdin for payload p, per --exec-stdin: a
 * str or bin payload's own bytes (borrowed from p), or p encoded into
 * scratch (b then points into scratch). Returns 0, or -1 when p cannot be
 * encoded. */
int jq_exec_cmd_stdin(const jq_exec_cmd_t *c, const msgpack_object *p, msgpack_sbuffer *scratch,
                      uv_buf_t *b);

#endif
