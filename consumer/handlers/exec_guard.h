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
 *  - nothing the command starts outlives it: the command runs in a process
 *    group of its own, and the guard is the subreaper of its whole tree
 *    (PR_SET_CHILD_SUBREAPER), so that a descendant that leaves the group
 *    (setsid, setpgid) is handed to the guard when its parent dies; when
 *    the command exits, the guard kills what is left of its group, then
 *    every descendant still alive, and reaps them all before it exits;
 *  - on SIGTERM (the worker cancelling the job: its timeout) the guard
 *    kills the command's group and then the rest of its tree the same way;
 *  - if the worker dies, even by SIGKILL, the kernel sends the guard a
 *    SIGTERM (PR_SET_PDEATHSIG) and it kills the tree the same way;
 *  - the command inherits no descriptor but stdin, stdout, stderr and
 *    fd 3, the pipe its progress lines go to (JOBQ_PROGRESS_FD).
 * So the job's pipes reach their end when the command does: no escaped
 * process holds stdout open. The guard exits as the command did: the same
 * status, or the same signal (128 + SIGTERM when it was told to stop). */

#define JQ_EXEC_GUARD_ARG "--exec-guard"

/* Runs the guard (argv as above, argv[1] == JQ_EXEC_GUARD_ARG). Returns an
 * exit status only when it cannot start the command (127 then, as a shell
 * does, with a line on stderr); otherwise it never returns. */
int jq_exec_guard_main(int argc, char **argv);

#endif
