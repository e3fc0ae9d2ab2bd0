#ifndef JQ_CANCEL_LUA_H
#define JQ_CANCEL_LUA_H

/* Cancelling a job (docs/PROTOCOL.md §11): the one script that both
 * `jobq cancel` (libjobq) and the workers' sweep run, so that a job is
 * cancelled the same way whoever asks.
 *
 * A cancel request is the id in the sorted set <p>:{q}:cancel (score: ms
 * it was asked), kept until the job ends. Any client may add one with a
 * plain ZADD; the workers act on it (a ready job never starts, a running
 * one stops). A scheduled job (delayed, or waiting for its retry) is
 * removed by this script at once: its result says `cancelled`.
 *
 * KEYS: [1] <p>:{q}:cancel, [2] <p>:{q}:scheduled, [3] <p>:{q}:dead,
 * [4] <p>:{q}:stream. Other keys of the job are built from ARGV[1], the
 * queue's "<p>:{q}:" (same hash tag, same slot), as promotion does.
 * ARGV: [1] "<p>:{q}:", [2] mode, [3] the result's `worker` field (who
 * cancelled), [4] sweep: requests older than this many ms without a job
 * found are dropped, [5..] the ids (request, force).
 *
 * Modes and answers:
 *   request  per id one string: `cancelled` (it was scheduled: removed
 *            now), `ended:<state>` (done, dead or cancelled already),
 *            `requested` (ready or running: the request is in the set, a
 *            worker stops it), `pending` (already requested), `unknown`
 *            (not found by id: no such job, or a ready job with an id of
 *            its own, which only a scan of the stream finds);
 *   force    as request, but an id not found is requested anyway;
 *   sweep    over the requests in the set (the first 500): a scheduled job
 *            removed, an ended job's request dropped, one older than
 *            ARGV[4] with no job found dropped; returns {cancelled, ended,
 *            expired, requests left}. */
extern const char jq_cancel_lua[];

/* The result hash's state and error of a cancelled job. */
#define JQ_CANCELLED "cancelled"

#endif
