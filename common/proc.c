/* The children of a process, from /proc (see proc.h). */

#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* State and parent of a process from /proc/<pid>/stat, whose second field
 * (the command) may hold spaces and parentheses: the fields after it start
 * after the last ')'. Returns 0, or -1 if the process is gone. */
static int proc_stat(const char *pid, char *state, int *ppid) {
    char path[300], buf[512];
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

int jq_proc_each_child(int parent, jq_proc_child_fn *fn, void *arg) {
    DIR *d = opendir("/proc");
    if (!d) return -errno;
    struct dirent *e;
    while ((e = readdir(d))) {
        char state;
        int ppid;
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        if (proc_stat(e->d_name, &state, &ppid) != 0 || ppid != parent) continue;
        fn(atoi(e->d_name), state, arg);
    }
    closedir(d);
    return 0;
}
