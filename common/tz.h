#ifndef JQ_TZ_H
#define JQ_TZ_H

/* Time zones for schedules (cron.h): a zone's UTC offset at any instant,
 * read from the system's TZif files (/usr/share/zoneinfo, or $TZDIR;
 * Debian's tzdata package), with the footer's POSIX rule for the years
 * after the file's last transition.
 *
 * Why not localtime_r with TZ set: TZ is process-wide state, and setting
 * it while another thread reads the environment or converts a time (a
 * worker's CPU threads run plugins) is undefined. A jq_tz_t is plain data:
 * any thread may read one. */

#include <stddef.h>
#include <stdint.h>

typedef struct jq_tz jq_tz_t;

/* Loads zone `name` ("Europe/Berlin"). NULL, "" and "UTC" give UTC without
 * reading a file. Returns a zone to free with jq_tz_free, or NULL with
 * err ("unknown time zone 'Mars/Olympus'"). */
jq_tz_t *jq_tz_load(const char *name, char *err, size_t errlen);

void jq_tz_free(jq_tz_t *tz);

/* The UTC offset (seconds east of UTC) at instant t (seconds since the
 * epoch). tz NULL is UTC. */
int32_t jq_tz_offset(const jq_tz_t *tz, int64_t t);

/* The first instant after t at which the offset may change, or INT64_MAX
 * when it never does. */
int64_t jq_tz_next_change(const jq_tz_t *tz, int64_t t);

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12), and
 * back. */
int64_t jq_days_from_civil(int64_t y, int m, int d);
void jq_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

#endif
