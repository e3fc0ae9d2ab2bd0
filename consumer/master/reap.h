#ifndef JQ_REAP_H
#define JQ_REAP_H

/* Reaping orphans. In a container the master runs as PID 1, and the kernel
 * hands it every orphan of its PID namespace: children of a worker that
 * died before them (an exec handler's commands), or what a `docker exec`
 * left behind. libuv reaps only the processes it spawned (it waits for
 * each pid it knows, never for -1), so without this the orphans would stay
 * zombies, each holding a pid, until the container stops. */

/* Reaps every child of this process that has exited and whose pid is not
 * in keep[0..nkeep) (the workers: libuv reaps those itself and must see
 * their status). Found through /proc/<pid>/stat; never blocks. Logs one
 * line per orphan reaped. Returns how many were reaped, or -errno if /proc
 * cannot be read. */
int jq_reap_orphans(const int *keep, int nkeep);

#endif
