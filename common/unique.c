/* The unique-job scripts (unique.h; docs/PROTOCOL.md §10 prints them).
 * Both carry a shebang without flags: Redis refuses them before they run
 * when it would refuse a write (out of memory, a read-only replica), so a
 * refused enqueue leaves nothing half done. */

#include "unique.h"

/* Takes the key and adds the job, or answers with the holder. The key's
 * value is the job id: a release compares it, so a job that ends after
 * its key was taken over (a dead job run again) never frees another's.
 * The fields are bounded (PROTOCOL §1, Limits: 1,000 besides id and
 * attempt), so unpack() stays far below Lua's limit. */
const char jq_unique_enqueue_lua[] =
    "#!lua\n"
    "local held = redis.call('GET', KEYS[1])\n"
    "if held then return {0, held} end\n"
    "local key, hold, due = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "if #key > 128 or not string.match(key, '^[%w_.:-]+$') then\n"
    "  return redis.error_reply('ERR bad unique key (want 1 to 128 bytes of [A-Za-z0-9_.:-])')\n"
    "end\n"
    "if not hold or hold < 0 or not due or due < 0 then\n"
    "  return redis.error_reply('ERR bad hold or due time (want ms >= 0)')\n"
    "end\n"
    "local f, id = {}, nil\n"
    "for i = 4, #ARGV, 2 do\n"
    "  local k = ARGV[i]\n"
    "  if k == 'unique' or k == 'unique_until' then\n"
    "    return redis.error_reply('ERR field ' .. k .. ' is the script\\'s own')\n"
    "  end\n"
    "  if k == 'id' then id = ARGV[i + 1] end\n"
    "  f[#f + 1] = k\n"
    "  f[#f + 1] = ARGV[i + 1]\n"
    "end\n"
    "if #f % 2 == 1 or #f == 0 then return redis.error_reply('ERR want field value pairs') end\n"
    "if #f > 2004 then return redis.error_reply('ERR too many fields (at most 1000)') end\n"
    "f[#f + 1] = 'unique'\n"
    "f[#f + 1] = key\n"
    "if hold > 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  f[#f + 1] = 'unique_until'\n"
    "  f[#f + 1] = string.format('%.0f', now + hold)\n"
    "end\n"
    "if due > 0 then\n"
    "  if not id or #KEYS < 4 then\n"
    "    return redis.error_reply('ERR a delayed job needs an id field and 4 keys')\n"
    "  end\n"
    "  redis.call('DEL', KEYS[3])\n"
    "  redis.call('HSET', KEYS[3], unpack(f))\n"
    "  redis.call('ZADD', KEYS[4], due, id)\n"
    "else\n"
    "  local eid = redis.call('XADD', KEYS[2], '*', unpack(f))\n"
    "  id = id or eid\n"
    "end\n"
    "redis.call('SET', KEYS[1], id)\n"
    "return {1, id}\n";

/* Compare-and-delete: only the job that holds the key frees it. pcall:
 * a key of another type under the name fails this release alone, not the
 * MULTI's other writes. */
const char jq_unique_release_lua[] = "#!lua\n"
                                     "local v = redis.pcall('GET', KEYS[1])\n"
                                     "if v ~= ARGV[1] then return 0 end\n"
                                     "if ARGV[2] ~= '' then\n"
                                     "  redis.call('PEXPIREAT', KEYS[1], ARGV[2])\n"
                                     "else\n"
                                     "  redis.call('DEL', KEYS[1])\n"
                                     "end\n"
                                     "return 1\n";
