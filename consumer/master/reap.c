/* Reaping orphans (see reap.h). */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "reap.h"

/* State and parent of a process from /proc/<pid>/stat, whose second field
 * (the command) may hold spaces and parentheses: the fields after it start
 * after the last ')'. Returns 0, or -1 if the process is gone. */
static int proc_stat(const char *pid, char *state, int *ppid) {
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end = strrchr(buf, ')');
    if (!end || sscanf(end + 1, " %c %d", state, ppid) != 2) return -1;
    return 0;
}

static int kept(int pid, const int *keep, int nkeep) {
    for (int i = 0; i < nkeep; i++)
        if (keep[i] == pid) return 1;
    return 0;
}

int jq_reap_orphans(const int *keep, int nkeep) {
    DIR *d = opendir("/proc");
    if (!d) return -errno;
    int self = (int)getpid(), reaped = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char state;
        int ppid, status;
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (proc_stat(e->d_name, &state, &ppid) != 0 || ppid != self || state != 'Z') continue;
        int pid = atoi(e->d_name);
        if (kept(pid, keep, nkeep) || waitpid(pid, &status, WNOHANG) != pid) continue;
        reaped++;
        if (WIFSIGNALED(status))
            jq_info("reaped orphan process %d (killed by signal %d)", pid, WTERMSIG(status));
        else
            jq_info("reaped orphan process %d (exit status %d)", pid, WEXITSTATUS(status));
    }
    closedir(d);
    return reaped;
}
