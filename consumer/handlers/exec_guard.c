/* The exec guard (see exec_guard.h). It runs as a fresh process image, so
 * it uses plain POSIX calls and no libuv: everything here happens between
 * fork and exec or in a wait loop. */

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

/* The command's process group (= its pid), once it exists. */
static volatile sig_atomic_t group;

static void on_term(int sig) {
    (void)sig;
    if (group > 0)
        kill(-(pid_t)group, SIGKILL);
    _exit(128 + SIGTERM);
}

/* Closes every descriptor above stderr: the worker's Redis sockets and
 * its pipe to the master are no business of the command's. */
static void close_extra_fds(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3, ~0U, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
        close((int)fd);
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

/* Ends the guard the way the command ended. */
static void exit_like(int status) {
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    raise(sig);
    _exit(128 + sig);
}

int jq_exec_guard_main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "%s: usage: WORKER_PID PROGRAM ARGV0 [ARGS...]\n",
                JQ_EXEC_GUARD_ARG);
        return 127;
    }
    pid_t worker = (pid_t)atol(argv[2]);
    const char *program = argv[3];

    /* Block SIGTERM until the group is known, so that the handler never
     * sees a half-made child. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    /* The worker may have died before prctl: then nobody would tell us. */
    if (getppid() != worker)
        return 127;
    close_extra_fds();

    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return 127;
    }
    if (pid == 0)
        run_command(program, argv + 4, &old);
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
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    exit_like(status);
    return 127;
}
