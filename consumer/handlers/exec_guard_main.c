/* jobq-exec-guard: the exec guard (exec_guard.h) as a binary of its own.
 * It links nothing but libc, so that it starts in a fraction of the time
 * jobq-consumer (curl, OpenSSL, hiredis...) takes to load: it runs once per
 * exec job. A worker that does not find it next to its own binary runs
 * `jobq-consumer --exec-guard` instead, which does the same. */

#include "exec_guard.h"

int main(int argc, char **argv) { return jq_exec_guard_main(argc, argv); }
