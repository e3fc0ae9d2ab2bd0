/* The exec guard (see exec_guard.h). It runs as a fresh process image, so
 * it uses plain POSIX calls and no libuv: everything here happens between
 * fork and exec, in a wait loop, or in the sweep at the end. */

#define _GNU_SOURCE
#include "exec_guard.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

/* How long the sweep may wait for killed descendants to die: only a
 * process stuck in the kernel (uninterruptible sleep) outlasts a SIGKILL. */
#define SWEEP_MAX_S 5

/* The command's pid (= its process group), while it may be signalled: set
 * to 0 before it is reaped, so that a late SIGTERM cannot reach a reused
 * pid. */
static volatile sig_atomic_t group;
static volatile sig_atomic_t stopping; /* SIGTERM came: exit 128 + SIGTERM */
static int final_status;               /* the command's, for on_alarm */

static void exit_like(int status);

/* The worker cancels (or died: PR_SET_PDEATHSIG): kill the command and its
 * group now; the main line then sweeps what left the group, and exits. */
static void on_term(int sig) {
    (void)sig;
    stopping = 1;
    /* Told to stop, the guard is gone within SWEEP_MAX_S whatever happens
     * (a command stuck in the kernel does not die of SIGKILL). */
    alarm(SWEEP_MAX_S);
    if (group > 0) {
        kill(-(pid_t)group, SIGKILL);
        kill((pid_t)group, SIGKILL);
    }
}

static void on_alarm(int sig) {
    (void)sig;
    if (stopping) _exit(128 + SIGTERM);
    exit_like(final_status);
}

/* Closes every descriptor above the progress pipe (fd 3, which the
 * worker made for the command: JOBQ_PROGRESS_FD): the worker's Redis
 * sockets and its pipe to the master are no business of the command's. */
static void close_extra_fds(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 4, ~0U, 0) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = 4; fd < (max > 0 ? max : 1024); fd++) close((int)fd);
}

static void run_command(const char *program, char **argv, const sigset_t *old) {
    setpgid(0, 0);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    execv(program, argv);
    fprintf(stderr, "exec %s: %s\n", program, strerror(errno));
    _exit(127);
}

/* Ends the guard the way the command ended. Only async-signal-safe calls:
 * on_alarm uses it too. */
static void exit_like(int status) {
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* Everything before the fork: SIGTERM handled, but blocked (the mask
 * before in *old) until the group is known, so that the handler never sees
 * a half-made child; the worker's death turned into a SIGTERM; the guard
 * made the subreaper of all the command starts, so that what leaves the
 * group (setsid, setpgid) is still handed to us, to find and kill. Returns
 * 0, or -1 when the guard must not go on. */
static int guard_setup(pid_t worker, sigset_t *old) {
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, old);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term; /* no SA_RESTART: a wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        fprintf(stderr, "%s: prctl: %s\n", JQ_EXEC_GUARD_ARG, strerror(errno));
        return -1;
    }
    /* The worker may have died before prctl: then nobody would tell us. */
    if (getppid() != worker) return -1;
    close_extra_fds();
    return 0;
}

static void kill_child(int pid, char state, void *arg) {
    (void)state;
    (void)arg;
    kill((pid_t)pid, SIGKILL);
}

/* Kills every descendant still alive and reaps them all, until waitpid
 * says no child is left. Each round kills every child we have, so each
 * blocking wait returns: an orphan is handed to us before its parent's
 * death can be reaped, and the next round finds it. A process that ignores
 * SIGKILL (stuck in the kernel) is given SWEEP_MAX_S, then left. */
static void sweep(void) {
    pid_t self = getpid();
    int armed = 0;
    for (;;) {
        pid_t r = waitpid(-1, NULL, WNOHANG);
        if (r > 0 || (r < 0 && errno == EINTR)) continue;
        if (r < 0) return; /* ECHILD: nothing of the command's is left */
        if (!armed && !stopping) alarm(SWEEP_MAX_S);
        armed = 1;
        /* What the kernel handed us, as their subreaper, when their
         * parents died. */
        jq_proc_each_child((int)self, kill_child, NULL);
        if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD) return;
    }
}

int jq_exec_guard_main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "%s: usage: WORKER_PID PROGRAM ARGV0 [ARGS...]\n", JQ_EXEC_GUARD_ARG);
        return 127;
    }
    sigset_t old;
    if (guard_setup((pid_t)atol(argv[2]), &old) != 0) return 127;
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0) run_command(argv[3], argv + 4, &old);
    /* Both sides set the group, so it exists whichever runs first. */
    setpgid(pid, pid);
    group = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* Wait for the command without reaping it: while it is a zombie its
     * pid, and so its group id, cannot be reused, so the kill below can
     * only reach what the command left behind. */
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0 && errno == EINTR)
        ;
    kill(-pid, SIGKILL);
    group = 0;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    final_status = status;
    sweep();
    if (stopping) _exit(128 + SIGTERM);
    exit_like(status);
    return 127;
}
