#ifndef JQ_CRON_H
#define JQ_CRON_H

/* When a schedule fires next: a cron expression in a time zone, or a fixed
 * interval (`--every`). Shared by `jobq schedule` (the first tick, `list`)
 * and the worker stage that fires schedules (consumer/worker/ticks.c).
 *
 * Cron: five fields, MIN HOUR DOM MON DOW, each `*`, a number, a range
 * `a-b`, a step `*` or `a-b` or `a` followed by `/n`, or a comma list of
 * those; months jan..dec and weekdays sun..sat by name too, weekday 7 is
 * Sunday; `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`,
 * `@yearly` (`@annually`). As in Vixie cron, when both DOM and DOW are
 * restricted (neither starts with `*`) a day matches if either does.
 *
 * Daylight saving time, as Vixie cron does it: a job whose minute and hour
 * fields are both fixed (neither starts with `*`) fires once per local
 * day: a local time that does not exist (the hour skipped in spring) fires
 * at the moment the clock jumps (02:30 in New York on 2026-03-08 fires at
 * 03:00 EDT), and a local time that happens twice (the hour repeated in
 * autumn) fires at its first occurrence only. Any other job (a minute or hour field
 * that starts with `*`) follows the clock: its minutes in the skipped
 * hour do not happen, and those of the repeated hour happen twice (an
 * hourly job fires at 01:00 EDT and at 01:00 EST, an hour apart). */

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

typedef struct jq_cron {
    uint64_t min; /* bit n: minute n matches (0..59) */
    uint32_t hour, dom;
    uint16_t mon; /* bits 1..12 */
    uint8_t dow;  /* bits 0..6, Sunday 0 */
    int dom_star, dow_star, fixed;
} jq_cron_t;

/* Parses expr into c. Returns 0, or -1 with err naming the field ("cron
 * hour field: 25 is out of range 0-23"). */
int jq_cron_parse(jq_cron_t *c, const char *expr, char *err, size_t errlen);

/* The first instant strictly after after_ms (ms since the epoch) at which
 * c fires in zone tz (NULL: UTC), in ms (a whole minute of local time), or
 * -1 when there is none within ten years (`0 0 30 2 *`). */
int64_t jq_cron_next(const jq_cron_t *c, const jq_tz_t *tz, int64_t after_ms);

/* Parses a duration "500ms", "10s", "5m", "1h", "1d" (a whole number and
 * its unit) into ms. Returns 0, or -1 with err. */
int jq_duration_parse(const char *s, int64_t *ms, char *err, size_t errlen);

/* The next tick of an `--every` schedule after after_ms: ticks fall on
 * whole multiples of every_ms since the epoch. */
int64_t jq_every_next(int64_t every_ms, int64_t after_ms);

#endif
