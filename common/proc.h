#ifndef JQ_PROC_H
#define JQ_PROC_H

/* The children of a process, as /proc tells them: the master reaps the
 * orphans handed to it (consumer/master/reap.c) and the exec guard kills
 * what its command left (consumer/handlers/exec_guard.c). Plain libc, no
 * logging: the guard's small binary links it alone. */

typedef void jq_proc_child_fn(int pid, char state, void *arg);

/* Calls fn(pid, state, arg) for every process whose parent is parent, with
 * state the one letter of /proc/<pid>/stat ('Z' for a zombie). A process
 * that ends during the walk may be missed. Returns 0, or -errno when /proc
 * cannot be read. */
int jq_proc_each_child(int parent, jq_proc_child_fn *fn, void *arg);

#endif
