#ifndef JQ_BIGBUF_H
#define JQ_BIGBUF_H

#include <stddef.h>

/* Buffers that hold a whole large payload or result (tens of MiB). Their
 * first touch costs more than their copies: a fresh 60 MiB buffer is 15,360
 * page faults of 4 KiB, about half the worker's CPU for a 60 MiB echo on a
 * VM (docs/BENCHMARKS.md, large payloads). */

/* Not for hiredis' output buffer: advised as it grew (by realloc) past
 * 4 MiB, a 60 MiB result's took 3.8 s of worker CPU instead of 0.7, and
 * its peak RSS went from 2.1x to 3.0x the payload (the kernel compacting
 * memory for huge pages under the copies, and rounding up). */

/* At least this long, a buffer is worth the advice below. */
#define JQ_BIGBUF_MIN (4u << 20)

/* Asks the kernel for transparent huge pages over the 2 MiB-aligned inside
 * of [p, p + len) before it is first written: one fault per 2 MiB instead
 * of 512. Does nothing below JQ_BIGBUF_MIN or where THP is off; never
 * fails (the advice is only that). The caller still owns and frees p. */
void jq_bigbuf_advise(void *p, size_t len);

/* malloc(len), advised as above. NULL when out of memory. */
void *jq_bigbuf_alloc(size_t len);

#endif
