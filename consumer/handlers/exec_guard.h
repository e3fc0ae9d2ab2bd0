#ifndef JQ_EXEC_GUARD_H
#define JQ_EXEC_GUARD_H

/* The guard: a small process between a worker and each command it runs for
 * an exec job (exec.c). uv_spawn cannot run code in the child before exec,
 * so the worker spawns a guard, as
 *
 *     jobq-exec-guard --exec-guard WORKER_PID PROGRAM ARGV0 ARGS...
 *
 * (the small binary of exec_guard_main.c, found next to jobq-consumer; or,
 * without it, jobq-consumer itself, whose main() hands the same argv here),
 * and the guard makes the promises a bare child could not keep:
 *  - the command and everything it forks live in one process group of
 *    their own, and none of them outlives the command: when the command
 *    exits, the guard kills what is left of its group;
 *  - on SIGTERM (the worker cancelling the job: its timeout) the guard
 *    kills the whole group;
 *  - if the worker dies, even by SIGKILL, the kernel sends the guard a
 *    SIGTERM (PR_SET_PDEATHSIG) and it kills the group the same way;
 *  - the command inherits no descriptor but stdin, stdout and stderr.
 * The guard exits as the command did: the same status, or the same
 * signal. */

#define JQ_EXEC_GUARD_ARG "--exec-guard"

/* Runs the guard (argv as above, argv[1] == JQ_EXEC_GUARD_ARG). Returns an
 * exit status only when it cannot start the command (127 then, as a shell
 * does, with a line on stderr); otherwise it never returns. */
int jq_exec_guard_main(int argc, char **argv);

#endif
