#!/usr/bin/env node
// A jobq producer in Node.js with the usual Redis client (ioredis) and
// msgpackr, written from docs/PROTOCOL.md alone: enqueue one job, wait for
// it, print its result as JSON.
//
//     npm ci
//     JOBQ_REDIS_URL=redis://127.0.0.1:6379 node enqueue.js sha256 '{"data":"hello","rounds":3}'
//
// Exit status: 0 done, 1 dead (the error on stderr), 2 bad payload or no
// result within 30 s, 3 Redis trouble. Environment: JOBQ_REDIS_URL,
// JOBQ_PREFIX, JOBQ_QUEUE.
'use strict';

const Redis = require('ioredis');
const { Packr, Unpackr } = require('msgpackr');

const WAIT_SECONDS = 30;
// Plain msgpack: no msgpackr records or extensions, which other clients
// (and jobq) would not read.
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false });

// Every key of a queue carries the hash tag {queue} (PROTOCOL, notation).
const key = (prefix, queue, what) => `${prefix}:{${queue}}:${what}`;

async function enqueue(redis, prefix, queue, type, payload) {
  // XADD (§1): the entry id is the job id. No payload field means nil.
  // `notify 1`: this producer waits, so the consumer pushes the notify
  // list (§3; since 1.2 only for jobs that ask).
  const fields = ['type', type, 'notify', '1'];
  if (payload !== undefined) fields.push('payload', packr.pack(payload));
  await redis.sadd(`${prefix}:queues`, queue); // so `jobq stats` lists it (§7)
  return redis.xadd(key(prefix, queue, 'stream'), '*', ...fields);
}

// BLPOP the notify list (§3): it gets `done` or `dead` once; then the result
// hash has the outcome. Returns the hash (Buffer values), or null on timeout.
async function wait(redis, prefix, queue, id) {
  const got = await redis.blpop(key(prefix, queue, `notify:${id}`), WAIT_SECONDS);
  if (got === null) return null;
  return redis.hgetallBuffer(key(prefix, queue, `result:${id}`));
}

// The result's msgpack bytes: inline, or in a chunk list when large; null
// for nil.
async function resultBytes(redis, prefix, queue, id, h) {
  if (h.chunks) {
    const parts = await redis.lrangeBuffer(key(prefix, queue, `result:${id}:chunks`), 0, -1);
    if (parts.length !== Number(h.chunks.toString())) throw new Error('result chunks missing');
    return Buffer.concat(parts);
  }
  return h.result || null;
}

async function main() {
  const [type, payloadJson] = process.argv.slice(2);
  if (!type) {
    console.error('usage: enqueue.js TYPE [PAYLOAD_JSON]');
    return 2;
  }
  let payload;
  try {
    if (payloadJson !== undefined) payload = JSON.parse(payloadJson);
  } catch (e) {
    console.error(`enqueue.js: payload is not JSON: ${e.message}`);
    return 2;
  }
  const prefix = process.env.JOBQ_PREFIX || 'jobq';
  const queue = process.env.JOBQ_QUEUE || 'default';
  const redis = new Redis(process.env.JOBQ_REDIS_URL || 'redis://127.0.0.1:6379',
                          { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  redis.on('error', () => {}); // reported by the failing command below
  try {
    await redis.connect();
    const id = await enqueue(redis, prefix, queue, type, payload);
    const h = await wait(redis, prefix, queue, id);
    if (h === null) {
      console.error(`enqueue.js: job ${id} did not finish in ${WAIT_SECONDS} s`);
      return 2;
    }
    const state = (h.state || '').toString();
    if (state !== 'done') {
      console.error(`enqueue.js: job ${id} is ${state}: ${(h.error || '').toString()}`);
      return 1;
    }
    const raw = await resultBytes(redis, prefix, queue, id, h);
    const value = raw === null ? null : unpackr.unpack(raw);
    // bin results (Buffers) are shown as text.
    console.log(JSON.stringify(value, (k, v) =>
      v && v.type === 'Buffer' && Array.isArray(v.data) ? Buffer.from(v.data).toString() : v));
    return 0;
  } catch (e) {
    console.error(`enqueue.js: redis: ${e.message}`);
    return 3;
  } finally {
    redis.disconnect();
  }
}

main().then((status) => { process.exitCode = status; });
