/* Huge-page advice for large buffers. See bigbuf.h. */

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bigbuf.h"

#define HUGE_PAGE ((uintptr_t)2 << 20)

void jq_bigbuf_advise(void *p, size_t len) {
#ifdef MADV_HUGEPAGE
    if (!p || len < JQ_BIGBUF_MIN) return;
    uintptr_t from = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t to = ((uintptr_t)p + len) & ~(HUGE_PAGE - 1);
    if (to > from) (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

void *jq_bigbuf_alloc(size_t len) {
    void *p = malloc(len ? len : 1);
    jq_bigbuf_advise(p, len);
    return p;
}
