/* Reaping orphans (see reap.h). */

#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "reap.h"

static int kept(int pid, const int *keep, int nkeep) {
    for (int i = 0; i < nkeep; i++)
        if (keep[i] == pid) return 1;
    return 0;
}

typedef struct reaping {
    const int *keep;
    int nkeep, reaped;
} reaping_t;

static void reap_one(int pid, char state, void *arg) {
    reaping_t *r = arg;
    int status;
    if (state != 'Z' || kept(pid, r->keep, r->nkeep) || waitpid(pid, &status, WNOHANG) != pid)
        return;
    r->reaped++;
    if (WIFSIGNALED(status))
        jq_info("reaped orphan process %d (killed by signal %d)", pid, WTERMSIG(status));
    else
        jq_info("reaped orphan process %d (exit status %d)", pid, WEXITSTATUS(status));
}

int jq_reap_orphans(const int *keep, int nkeep) {
    reaping_t r = {keep, nkeep, 0};
    int rc = jq_proc_each_child((int)getpid(), reap_one, &r);
    return rc < 0 ? rc : r.reaped;
}
