'use strict';
// The Node.js side of `make bench-seed` (bench/seed/seed.py drives it): the
// measurements the revision notes (shared/SEED-worker-threads-vs-clustering.md)
// make claims about, with Node's own worker_threads and cluster. No Redis:
// these are the runtime's own costs. Each command prints one JSON line.
//
//   node node_seed.js thread-start N       new Worker() -> first message, ms
//   node node_seed.js fork-start N         cluster.fork() -> 'online' and -> first message, ms
//   node node_seed.js mem K                RSS/PSS with 0..K Workers, and of K forked processes
//   node node_seed.js cpu P T JOBS ROUNDS  sha256 jobs over P processes x T threads (T 0: inline)
//   node node_seed.js io W C JOBS MS       cluster of W workers, each C timers of MS in flight
//   node node_seed.js msg SIZE             postMessage copy / transfer, cluster IPC round trips
//   node node_seed.js ctx K JOBS ROUNDS    K worker_threads hashing: jobs/s, context switches
//   node node_seed.js starve STATS LOAD    fs.stat chains beside LOAD pbkdf2 loops
const cluster = require('cluster');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Worker, isMainThread } = require('worker_threads');

const SHA = path.join(__dirname, '..', 'compare', 'sha.js');

function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function out(x) {
  process.stdout.write(JSON.stringify(x) + '\n');
}

function kib(pid, field) {
  // A kB field of /proc/PID/status or smaps_rollup, in bytes.
  const file = field === 'Pss' ? `/proc/${pid}/smaps_rollup` : `/proc/${pid}/status`;
  const m = fs.readFileSync(file, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'));
  return m ? Number(m[1]) * 1024 : 0;
}

// --- code that runs inside a worker thread (eval'd, so no file per role)
const THREAD_CODE = `
const { parentPort, workerData } = require('worker_threads');
const { sha256Rounds } = require(workerData.sha);
parentPort.on('message', (m) => {
  if (m.type === 'sha') parentPort.postMessage({ hex: sha256Rounds(m.data, m.rounds) });
  else if (m.type === 'echo') {
    if (m.transfer) parentPort.postMessage(m.buf, [m.buf]);
    else parentPort.postMessage(m.buf);
  }
});
parentPort.postMessage('up');
`;

function spawnThread() {
  return new Worker(THREAD_CODE, { eval: true, workerData: { sha: SHA } });
}

function once(emitter, ev) {
  return new Promise((resolve) => emitter.once(ev, resolve));
}

// Runs jobs over a set of threads, one job per thread at a time.
async function runOnThreads(threads, jobs, rounds) {
  const data = '\u0001'.repeat(1024);
  let next = 0;
  await Promise.all(threads.map(async (w) => {
    while (next < jobs) {
      next++;
      w.postMessage({ type: 'sha', data, rounds });
      await once(w, 'message');
    }
  }));
}

async function threadStart(n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const w = spawnThread();
    await once(w, 'message');
    ms.push(now() - t0);
    await w.terminate();
  }
  out({ ms });
}

// --- cluster workers: one generic worker that answers the primary's messages
function clusterWorker() {
  const { sha256Rounds } = require(SHA);
  let threads = null;
  process.on('message', async (m) => {
    if (m.type === 'threads') {
      threads = [];
      for (let i = 0; i < m.n; i++) threads.push(spawnThread());
      await Promise.all(threads.map((w) => once(w, 'message')));
      process.send({ type: 'ok' });
    } else if (m.type === 'sha') {
      // a share of the jobs: inline on this loop, or over this process's threads
      if (threads && threads.length) await runOnThreads(threads, m.jobs, m.rounds);
      else for (let i = 0; i < m.jobs; i++) sha256Rounds(m.data, m.rounds);
      process.send({ type: 'ok' });
    } else if (m.type === 'sleep') {
      setTimeout(() => process.send({ type: 'slept', id: m.id }), m.ms);
    } else if (m.type === 'echo') {
      process.send({ type: 'echo', buf: m.buf });
    } else if (m.type === 'mem') {
      process.send({ type: 'ok' });
    } else if (m.type === 'exit') {
      process.exit(0);
    }
  });
  process.send({ type: 'up' });
}

function fork(serialization) {
  cluster.setupPrimary({ serialization: serialization || 'json' });
  const w = cluster.fork();
  return w;
}

function ask(w, msg) {
  return new Promise((resolve) => {
    w.once('message', resolve);
    w.send(msg);
  });
}

async function forkStart(n) {
  const online = [], first = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    const w = fork();
    await once(w, 'online');
    online.push(now() - t0);
    await once(w, 'message');
    first.push(now() - t0);
    w.send({ type: 'exit' });
    await once(w, 'exit');
  }
  out({ online, first });
}

async function mem(k) {
  const data = '\u0001'.repeat(1024);
  const threads = [];
  const base = { rss: kib(process.pid, 'VmRSS'), pss: kib(process.pid, 'Pss') };
  const perThreads = [];
  for (let i = 1; i <= k; i++) {
    const w = spawnThread();
    await once(w, 'message');
    w.postMessage({ type: 'sha', data, rounds: 1000 });
    await once(w, 'message');
    threads.push(w);
    perThreads.push({ n: i, rss: kib(process.pid, 'VmRSS'), pss: kib(process.pid, 'Pss') });
  }
  await Promise.all(threads.map((w) => w.terminate()));
  const procs = [];
  for (let i = 0; i < k; i++) {
    const w = fork();
    await once(w, 'message');
    await ask(w, { type: 'sha', jobs: 1, data, rounds: 1000 });
    procs.push(w);
  }
  const children = procs.map((w) => ({ rss: kib(w.process.pid, 'VmRSS'), pss: kib(w.process.pid, 'Pss') }));
  for (const w of procs) w.send({ type: 'exit' });
  out({ base, threads: perThreads, children });
}

async function startProcs(p, t) {
  const procs = [];
  for (let i = 0; i < p; i++) {
    const w = fork();
    await once(w, 'message');
    if (t > 0) await ask(w, { type: 'threads', n: t });
    procs.push(w);
  }
  return procs;
}

async function cpu(p, t, jobs, rounds) {
  const data = '\u0001'.repeat(1024);
  const procs = await startProcs(p, t);
  const t0 = now();
  // equal shares, as the cluster's round-robin would give
  await Promise.all(procs.map((w, i) => ask(w, {
    type: 'sha', data, rounds, jobs: Math.floor(jobs / p) + (i < jobs % p ? 1 : 0),
  })));
  const s = (now() - t0) / 1000;
  for (const w of procs) w.send({ type: 'exit' });
  out({ jps: jobs / s, s });
}

async function io(nw, conc, jobs, ms) {
  const procs = await startProcs(nw, 0);
  const t0 = now();
  let sent = 0, done = 0;
  await new Promise((resolve) => {
    for (const w of procs) {
      w.on('message', (m) => {
        if (m.type !== 'slept') return;
        done++;
        if (sent < jobs) w.send({ type: 'sleep', id: sent++, ms });
        else if (done === jobs) resolve();
      });
      for (let i = 0; i < conc && sent < jobs; i++) w.send({ type: 'sleep', id: sent++, ms });
    }
  });
  const s = (now() - t0) / 1000;
  for (const w of procs) w.send({ type: 'exit' });
  out({ jps: jobs / s, s });
}

async function msg(size) {
  const reps = size >= 16 << 20 ? 3 : 10;
  const res = {};
  const w = spawnThread();
  await once(w, 'message');
  for (const transfer of [false, true]) {
    const ms = [];
    for (let i = 0; i < reps; i++) {
      const buf = new ArrayBuffer(size);
      new Uint8Array(buf).fill(7);
      const t0 = now();
      if (transfer) w.postMessage({ type: 'echo', buf, transfer }, [buf]);
      else w.postMessage({ type: 'echo', buf, transfer });
      const back = await once(w, 'message');
      ms.push(now() - t0);
      if (back.byteLength !== size) throw new Error('echo came back short');
    }
    res[transfer ? 'transfer' : 'copy'] = median(ms);
  }
  await w.terminate();
  // cluster IPC: advanced serialization (structured clone) carries a Buffer
  const c = fork('advanced');
  await once(c, 'message');
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const buf = Buffer.alloc(size, 7);
    const t0 = now();
    const back = await ask(c, { type: 'echo', buf });
    ms.push(now() - t0);
    if (back.buf.length !== size) throw new Error('ipc echo came back short');
  }
  res.ipc = median(ms);
  res.peak_rss = kib(process.pid, 'VmHWM');
  c.send({ type: 'exit' });
  out(res);
}

function ctxSwitches() {
  let vol = 0, nonvol = 0;
  for (const t of fs.readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const s = fs.readFileSync(`/proc/${process.pid}/task/${t}/status`, 'utf8');
      vol += Number(s.match(/^voluntary_ctxt_switches:\s+(\d+)/m)[1]);
      nonvol += Number(s.match(/^nonvoluntary_ctxt_switches:\s+(\d+)/m)[1]);
    } catch (e) { /* a thread that ended */ }
  }
  return { vol, nonvol };
}

async function ctx(k, jobs, rounds) {
  const threads = [];
  for (let i = 0; i < k; i++) threads.push(spawnThread());
  await Promise.all(threads.map((w) => once(w, 'message')));
  const c0 = ctxSwitches();
  const t0 = now();
  await runOnThreads(threads, jobs, rounds);
  const s = (now() - t0) / 1000;
  const c1 = ctxSwitches();
  await Promise.all(threads.map((w) => w.terminate()));
  out({ jps: jobs / s, vol: c1.vol - c0.vol, nonvol: c1.nonvol - c0.nonvol });
}

// An "fs job": STATS fs.stat calls one after another, each a request on
// libuv's threadpool, timed from its start; LOAD pbkdf2 calls kept in flight
// on the same pool (UV_THREADPOOL_SIZE, set by the caller).
async function starve(stats, load, seconds) {
  let stop = false;
  const loops = [];
  for (let i = 0; i < load; i++) {
    loops.push((async () => {
      while (!stop)
        await new Promise((r) => crypto.pbkdf2('pw', 'salt', 10000, 32, 'sha256', r));
    })());
  }
  await new Promise((r) => setTimeout(r, 100));
  const ms = [];
  const end = now() + seconds * 1000;
  while (now() < end) {
    const t0 = now();
    for (let i = 0; i < stats; i++) await fs.promises.stat('/');
    ms.push(now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  stop = true;
  await Promise.all(loops);
  ms.sort((a, b) => a - b);
  out({ p50: ms[Math.floor(ms.length / 2)], p99: ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))], n: ms.length });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const [cmd, ...a] = process.argv.slice(2);
  const n = a.map(Number);
  if (cmd === 'thread-start') return threadStart(n[0]);
  if (cmd === 'fork-start') return forkStart(n[0]);
  if (cmd === 'mem') return mem(n[0]);
  if (cmd === 'cpu') return cpu(n[0], n[1], n[2], n[3]);
  if (cmd === 'io') return io(n[0], n[1], n[2], n[3]);
  if (cmd === 'msg') return msg(n[0]);
  if (cmd === 'ctx') return ctx(n[0], n[1], n[2]);
  if (cmd === 'starve') return starve(n[0], n[1], n[2]);
  throw new Error('unknown command ' + cmd);
}

if (cluster.isPrimary && isMainThread) {
  main().then(() => process.exit(0), (e) => {
    process.stderr.write('node_seed.js: ' + (e.stack || e) + '\n');
    process.exit(2);
  });
} else if (!cluster.isPrimary) {
  clusterWorker();
}
