'use strict';
/* jobq handler processes in Node.js: one file, no dependency but Node.
 *
 *     const { handler, run, PermanentError } = require('./jobq_handler');
 *
 *     handler('resize', async (payload, job) => {
 *       if (!payload.w) throw new PermanentError('payload needs w'); // dead at once
 *       return { w: payload.w / 2 };                                // the result
 *     });
 *     run();
 *
 * and `jobq-consumer --proc 'resize=node /path/to/this_script.js'`. Each
 * worker keeps the script running and sends it the jobs of the types it
 * names; a handler gets the payload (msgpack or JSON, decoded) and the job
 * (id, type, queue, attempt, deadlineMs, signal: an AbortSignal that fires
 * when jobq gives up on the job, progress(fraction, message)), and returns the result
 * or a promise of it. A throw fails the attempt (retried while the job has
 * attempts left), PermanentError fails the job for good, RetryAfter(ms)
 * retries it after ms without using an attempt. Up to maxInflight
 * jobs (run({ maxInflight }), 64 by default) run at once.
 *
 * stdin and stdout carry the frames of docs/HANDLERS.md: console.log and
 * process.stdout.write go to stderr once run() is called, so that a stray
 * print reaches jobq's log instead of breaking the protocol. */

const PROTOCOL = 1;

class PermanentError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PermanentError';
  }
}

/** Thrown by a handler: try the job again after ms, without using an
 * attempt (rate limited, say); jobq reads the queue no more for that long. */
class RetryAfter extends Error {
  constructor(ms, message = 'retry later') {
    super(message);
    this.name = 'RetryAfter';
    this.ms = Math.max(1, Math.round(ms));
  }
}

/* ---- msgpack, the subset jobq uses ---- */

class Writer {
  constructor() {
    this.buf = Buffer.allocUnsafe(256);
    this.n = 0;
  }
  room(k) {
    if (this.n + k <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + k));
    this.buf.copy(b, 0, 0, this.n);
    this.buf = b;
  }
  byte(c) {
    this.room(1);
    this.buf[this.n++] = c;
  }
  head(len, fix, fixmax, c8, c16, c32) {
    this.room(5);
    const b = this.buf;
    if (len < fixmax) b[this.n++] = fix | len;
    else if (c8 && len < 0x100) { b[this.n++] = c8; b[this.n++] = len; }
    else if (len < 0x10000) { b[this.n++] = c16; b.writeUInt16BE(len, this.n); this.n += 2; }
    else { b[this.n++] = c32; b.writeUInt32BE(len, this.n); this.n += 4; }
  }
  bytes(src) {
    this.room(src.length);
    this.n += (Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.length))
      .copy(this.buf, this.n);
  }
  value(v) {
    if (v === null || v === undefined) return this.byte(0xc0);
    switch (typeof v) {
      case 'boolean':
        return this.byte(v ? 0xc3 : 0xc2);
      case 'number':
        if (Number.isSafeInteger(v)) return this.int(BigInt(v), v);
        this.room(9);
        this.buf[this.n++] = 0xcb;
        this.buf.writeDoubleBE(v, this.n);
        this.n += 8;
        return;
      case 'bigint':
        return this.int(v, Number(v));
      case 'string': {
        const len = Buffer.byteLength(v);
        this.head(len, 0xa0, 32, 0xd9, 0xda, 0xdb);
        this.room(len);
        this.n += this.buf.write(v, this.n);
        return;
      }
      default:
        break;
    }
    if (v instanceof Uint8Array) {
      this.head(v.length, 0, 0, 0xc4, 0xc5, 0xc6);
      return this.bytes(v);
    }
    if (Array.isArray(v)) {
      this.head(v.length, 0x90, 16, 0, 0xdc, 0xdd);
      for (const x of v) this.value(x);
      return;
    }
    if (typeof v.toJSON === 'function') return this.value(v.toJSON());
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    this.head(entries.length, 0x80, 16, 0, 0xde, 0xdf);
    for (const [k, x] of entries) {
      this.value(k);
      this.value(x);
    }
  }
  int(big, num) {
    this.room(9);
    const b = this.buf;
    if (num >= 0 && num < 0x80) b[this.n++] = num;
    else if (num < 0 && num >= -32) b[this.n++] = num & 0xff;
    else if (big >= 0n) { b[this.n++] = 0xcf; b.writeBigUInt64BE(big, this.n); this.n += 8; }
    else { b[this.n++] = 0xd3; b.writeBigInt64BE(big, this.n); this.n += 8; }
  }
}

/** v as msgpack (a Buffer). */
function encode(v) {
  const w = new Writer();
  w.value(v);
  return w.buf.subarray(0, w.n);
}

class Reader {
  constructor(buf) {
    this.b = buf;
    this.i = 0;
  }
  take(n) {
    if (this.i + n > this.b.length) throw new Error('msgpack: truncated');
    const at = this.i;
    this.i += n;
    return at;
  }
  str(n) {
    const at = this.take(n);
    return this.b.toString('utf8', at, at + n);
  }
  bin(n) {
    const at = this.take(n);
    return Buffer.from(this.b.subarray(at, at + n));
  }
  array(n) {
    const a = new Array(n);
    for (let k = 0; k < n; k++) a[k] = this.value();
    return a;
  }
  map(n) {
    const m = {};
    for (let k = 0; k < n; k++) {
      const key = this.value();
      m[key] = this.value();
    }
    return m;
  }
  big(v) {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  value() {
    const b = this.b;
    const c = b[this.take(1)];
    if (c < 0x80) return c;
    if (c >= 0xe0) return c - 0x100;
    if (c >= 0xa0 && c <= 0xbf) return this.str(c & 0x1f);
    if (c >= 0x90 && c <= 0x9f) return this.array(c & 0x0f);
    if (c >= 0x80 && c <= 0x8f) return this.map(c & 0x0f);
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(b[this.take(1)]);
      case 0xc5: return this.bin(b.readUInt16BE(this.take(2)));
      case 0xc6: return this.bin(b.readUInt32BE(this.take(4)));
      case 0xca: return b.readFloatBE(this.take(4));
      case 0xcb: return b.readDoubleBE(this.take(8));
      case 0xcc: return b[this.take(1)];
      case 0xcd: return b.readUInt16BE(this.take(2));
      case 0xce: return b.readUInt32BE(this.take(4));
      case 0xcf: return this.big(b.readBigUInt64BE(this.take(8)));
      case 0xd0: return b.readInt8(this.take(1));
      case 0xd1: return b.readInt16BE(this.take(2));
      case 0xd2: return b.readInt32BE(this.take(4));
      case 0xd3: return this.big(b.readBigInt64BE(this.take(8)));
      case 0xd9: return this.str(b[this.take(1)]);
      case 0xda: return this.str(b.readUInt16BE(this.take(2)));
      case 0xdb: return this.str(b.readUInt32BE(this.take(4)));
      case 0xdc: return this.array(b.readUInt16BE(this.take(2)));
      case 0xdd: return this.array(b.readUInt32BE(this.take(4)));
      case 0xde: return this.map(b.readUInt16BE(this.take(2)));
      case 0xdf: return this.map(b.readUInt32BE(this.take(4)));
      default: throw new Error('msgpack type 0x' + c.toString(16) + ' is not supported');
    }
  }
}

/** The value the msgpack Buffer buf holds (all of it). */
function decode(buf) {
  const r = new Reader(buf);
  const v = r.value();
  if (r.i !== buf.length) throw new Error(`${buf.length - r.i} bytes after the msgpack value`);
  return v;
}

/* ---- the process ---- */

const handlers = new Map();
const inflight = new Map(); // seq -> AbortController
let writeOut = null;

/** Registers fn(payload, job) as the handler of jobs of type `type`. */
function handler(type, fn) {
  handlers.set(type, fn);
}

// Frames go out together once per turn of the event loop: one write for
// all the jobs that ended in it.
const pending = [];
function flushOut() {
  const out = pending.length === 1 ? pending[0] : Buffer.concat(pending);
  pending.length = 0;
  writeOut(out);
}

function send(frame) {
  const w = new Writer();
  w.n = 4;
  w.value(frame);
  w.buf.writeUInt32BE(w.n - 4, 0);
  if (pending.push(w.buf.subarray(0, w.n)) === 1) setImmediate(flushOut);
}

async function runJob(f) {
  const ctrl = new AbortController();
  inflight.set(f.seq, ctrl);
  const job = {
    id: f.id, type: f.type, queue: f.queue, attempt: f.attempt, deadlineMs: f.deadline_ms,
    signal: ctrl.signal,
    progress: (fraction, message = null) => {
      if (inflight.has(f.seq)) send({ op: 'progress', seq: f.seq, fraction: Number(fraction) + 0.0, message });
    },
  };
  let reply;
  try {
    const fn = handlers.get(f.type);
    if (!fn) throw new PermanentError(`this process has no handler for type ${f.type}`);
    const result = await fn(f.payload, job);
    reply = { op: 'result', seq: f.seq, result: result === undefined ? null : result };
    encode(reply); // a result that cannot be sent fails here, as the handler's error
  } catch (e) {
    const permanent = e instanceof PermanentError, later = e instanceof RetryAfter;
    if (!permanent && !later) console.error(e && e.stack ? e.stack : e);
    const msg = e instanceof Error ? (permanent || later ? e.message : `${e.name}: ${e.message}`) : String(e);
    reply = { op: 'error', seq: f.seq, error: msg, permanent };
    if (later) reply.retry_after_ms = e.ms;
  }
  inflight.delete(f.seq);
  send(reply);
  maybeExit();
}

let ended = false;
function maybeExit() {
  if (ended && inflight.size === 0) setImmediate(() => process.exit(0)); // after the last flush
}

function onFrame(f) {
  if (f.op === 'job') runJob(f);
  else if (f.op === 'cancel' && inflight.has(f.seq)) inflight.get(f.seq).abort();
}

/** Says hello with the registered types, then runs jobs until stdin ends
 * (jobq closes it to recycle the process). */
function run({ maxInflight = 64 } = {}) {
  if (handlers.size === 0) throw new Error('no handler registered');
  const out = process.stdout;
  const realWrite = out.write.bind(out);
  writeOut = realWrite;
  out.write = process.stderr.write.bind(process.stderr);
  console.log = console.info = console.debug = console.error;
  send({ op: 'hello', protocol: PROTOCOL, types: [...handlers.keys()].sort(), max_inflight: maxInflight });
  let buf = Buffer.alloc(0);
  process.stdin.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= 4) {
      const n = buf.readUInt32BE(off);
      if (buf.length - off < 4 + n) break;
      onFrame(decode(buf.subarray(off + 4, off + 4 + n)));
      off += 4 + n;
    }
    buf = buf.subarray(off);
  });
  process.stdin.on('end', () => {
    ended = true;
    maybeExit();
  });
}

module.exports = { handler, run, PermanentError, RetryAfter, encode, decode };
