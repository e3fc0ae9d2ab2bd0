#ifndef JQ_SLOT_H
#define JQ_SLOT_H

/* Redis Cluster's key space: 16384 slots, a key's slot the CRC16 (XMODEM)
 * of its hash tag (the text between the first '{' and the next '}', when
 * that is not empty) or else of the whole key, modulo 16384 (Redis's
 * cluster spec, keyHashSlot). Every per-queue key of jobq carries the tag
 * {<queue>} (keys.h), so one queue is one slot.
 *
 * Pure functions, shared by libjobq (producer/cluster.c) and, later, the
 * consumer's connection layer. */

#include <stddef.h>
#include <stdint.h>

#define JQ_SLOTS 16384

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis's crc16.c. */
uint16_t jq_slot_crc16(const char *buf, size_t len);

/* The slot of key[0..len): 0..16383. */
int jq_slot_of(const char *key, size_t len);

/* The index in argv of the key a command is routed by, or -1 for a
 * command that names none (MULTI, EXEC, TIME, ROLE, an EVAL with no
 * keys...): EVAL/EVALSHA/FCALL's first key, XINFO's and XGROUP's key
 * after the subcommand, XREAD/XREADGROUP's first stream, else argv[1]. Commands of
 * jobq that name several keys name them in one slot. */
int jq_slot_cmd_key(int argc, const char *const *argv, const size_t *lens);

#endif
