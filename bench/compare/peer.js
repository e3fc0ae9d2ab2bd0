'use strict';
// The Node.js side of `make bench-compare` (bench/compare/compare.py drives
// it). One process plays one role for one system:
//
//   node peer.js worker  SYS PORT SCEN CONF   a BullMQ or bee-queue worker process
//   node peer.js preload SYS PORT SCEN N CONF enqueue N jobs in bulk, then exit
//   node peer.js latency SYS PORT N           N noop jobs one at a time, enqueue -> done
//   node peer.js mixed   SYS PORT NCPU ROUNDS SECONDS
//                                             CPU backlog plus a tiny job every 20 ms
//
// SYS is bullmq or bee (and jobq for the two client roles, so that every
// side's latency is taken by the same Node process with the same clock;
// and floor for a worker: the least one can do on jobq's keys, the
// harness's own round trip).
// SCEN is noop, sha or mixed. CONF is JSON: {keep, concurrency, cpu, expect}.
//
// A worker prints "ready" when connected, starts taking jobs when it reads
// "go" on stdin (so module loading is not timed), prints "n COUNT BAD" at
// most every 5 ms while jobs complete (BAD: sha256 digests that differ from
// conf.expect), and closes on SIGTERM. Client roles print one JSON line.
const path = require('path');
const readline = require('readline');

const [, , role, sys, portArg, ...rest] = process.argv;
const port = Number(portArg);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const beeRedis = { host: '127.0.0.1', port };

// How long a client waits for one job before it counts it as timed out
// (null): on a loaded machine a starved side must not abort the whole run.
const WAIT_S = 120;

function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

function die(msg) {
  process.stderr.write('peer.js: ' + msg + '\n');
  process.exit(2);
}

// --- worker role

async function worker(scen, conf) {
  let count = 0, bad = 0, timer = null;
  const report = () => {
    timer = null;
    process.stdout.write(`n ${count} ${bad}\n`);
  };
  const completed = (result) => {
    count++;
    if (conf.expect && result !== conf.expect) bad++;
    if (timer === null) timer = setTimeout(report, 5);
  };
  const closers = [];
  const starters = [];

  if (sys === 'bullmq') {
    const { Worker } = require('bullmq');
    const make = (queue, proc, concurrency) => {
      const opts = { connection, concurrency, autorun: false };
      if (!conf.keep) opts.removeOnComplete = { count: 0 };
      const w = new Worker(queue, proc, opts);
      w.on('completed', (job, result) => completed(result));
      w.on('error', (e) => process.stderr.write(`worker error: ${e}\n`));
      starters.push(() => { w.run(); });
      closers.push(() => w.close());
      return w.waitUntilReady();
    };
    const sandboxed = path.join(__dirname, 'cpu_job.js');
    const waits = [];
    if (scen === 'noop') waits.push(make('noop', async () => null, conf.concurrency));
    else if (scen === 'sha') waits.push(make('sha', sandboxed, conf.cpu));
    else if (scen === 'mixed') {
      waits.push(make('tiny', async () => null, conf.concurrency));
      waits.push(make('cpu', sandboxed, conf.cpu));
    } else die('unknown scenario ' + scen);
    await Promise.all(waits);
  } else if (sys === 'bee') {
    const Queue = require('bee-queue');
    let pool = null;
    const cpuRun = (job) => {
      if (pool === null) {
        const ThreadPool = require('./threadpool');
        pool = new ThreadPool(conf.cpu);
        closers.push(() => pool.close());
      }
      return pool.run(job.data.data, job.data.rounds);
    };
    const make = (queue, fn, concurrency) => {
      const q = new Queue(queue, {
        redis: beeRedis, isWorker: true, getEvents: false, removeOnSuccess: !conf.keep,
      });
      q.on('succeeded', (job, result) => completed(result));
      q.on('error', (e) => process.stderr.write(`queue error: ${e}\n`));
      starters.push(() => q.process(concurrency, fn));
      closers.push(() => q.close());
      return q.ready();
    };
    const waits = [];
    if (scen === 'noop') waits.push(make('noop', async () => null, conf.concurrency));
    else if (scen === 'sha') waits.push(make('sha', cpuRun, conf.cpu));
    else if (scen === 'mixed') {
      waits.push(make('tiny', async () => null, conf.concurrency));
      waits.push(make('cpu', cpuRun, conf.cpu));
    } else die('unknown scenario ' + scen);
    await Promise.all(waits);
  } else if (sys === 'floor') {
    // The latency floor (compare.py (b0)): the least a worker can do on
    // jobq's keys, so that the jobq client of `latency` measures only the
    // path itself: a blocking XREADGROUP on its own connection, then the
    // notify LPUSH and the XACK in one round trip, nothing else.
    if (scen !== 'noop') die('floor: noop only');
    const Redis = require('ioredis');
    const stream = 'jobq:{noop}:stream';
    const c = new Redis(connection);
    await c.xgroup('CREATE', stream, 'workers', '$', 'MKSTREAM').catch(() => {});
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const r = await c.xreadgroup('GROUP', 'workers', 'floor', 'COUNT', 1, 'BLOCK', 200,
          'STREAMS', stream, '>');
        if (!r) continue;
        for (const [id] of r[0][1]) {
          await c.pipeline().lpush(`jobq:{noop}:notify:${id}`, 'done')
            .xack(stream, 'workers', id).exec();
          completed(null);
        }
      }
    };
    starters.push(() => { loop(); });
    closers.push(async () => { stop = true; await new Promise((r) => setTimeout(r, 300)); c.disconnect(); });
  } else die('unknown system ' + sys);

  let closing = false;
  process.on('SIGTERM', async () => {
    if (closing) process.exit(0);
    closing = true;
    await Promise.race([Promise.all(closers.map((c) => c())),
      new Promise((r) => setTimeout(r, 3000))]);
    process.exit(0);
  });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === 'go') starters.forEach((s) => s());
  });
  process.stdout.write('ready\n');
}

// --- preload role

function jobData(scen, conf) {
  if (scen === 'noop') return {};
  return { data: conf.data, rounds: conf.rounds };
}

async function preload(scen, n, conf) {
  const queue = scen;
  const data = jobData(scen, conf);
  const batch = 1000;
  if (sys === 'bullmq') {
    const { Queue } = require('bullmq');
    const q = new Queue(queue, { connection });
    for (let i = 0; i < n; i += batch) {
      const jobs = [];
      for (let j = i; j < Math.min(n, i + batch); j++) jobs.push({ name: scen, data });
      await q.addBulk(jobs);
    }
    await q.close();
  } else if (sys === 'bee') {
    const Queue = require('bee-queue');
    const q = new Queue(queue, { redis: beeRedis, isWorker: false, getEvents: false });
    await q.ready();
    for (let i = 0; i < n; i += batch) {
      const jobs = [];
      for (let j = i; j < Math.min(n, i + batch); j++) jobs.push(q.createJob(data));
      await q.saveAll(jobs);
    }
    await q.close();
  } else die('unknown system ' + sys);
  process.stdout.write(JSON.stringify({ n }) + '\n');
}

// --- client roles: one "enqueue, then learn it is done" per system, each
// the system's own way of waiting: jobq BLPOP on the notify list (PROTOCOL
// §3), BullMQ job.waitUntilFinished(QueueEvents), bee-queue's job event.

async function client(queues) {
  if (sys === 'jobq') {
    const Redis = require('ioredis');
    const main = new Redis(connection);
    const spare = [];
    const conn = () => spare.pop() || new Redis(connection);
    const tinyJob = async (queue) => {
      const c = conn();
      const t0 = now();
      const id = await c.xadd(`jobq:{${queue}}:stream`, '*', 'type', 'noop', 'notify', '1');
      const r = await c.blpop(`jobq:{${queue}}:notify:${id}`, WAIT_S);
      const t = now() - t0;
      spare.push(c);
      if (r === null) return null; // not done in WAIT_S: counted as a timeout
      if (r[1] !== 'done') throw new Error('jobq job ' + id + ': ' + r);
      return t;
    };
    const cpuJobs = async (n, data, rounds) => {
      const payload = JSON.stringify({ data, rounds });
      const p = main.pipeline();
      for (let i = 0; i < n; i++)
        p.xadd('jobq:{cpu}:stream', '*', 'type', 'sha256', 'enc', 'json', 'payload', payload);
      await p.exec();
    };
    const cpuLeft = async () => {
      const g = (await main.xinfo('GROUPS', 'jobq:{cpu}:stream'))[0];
      return Number(g[g.indexOf('lag') + 1]) + Number(g[g.indexOf('pending') + 1]);
    };
    const close = async () => {
      main.disconnect();
      spare.forEach((c) => c.disconnect());
    };
    return { tinyJob, cpuJobs, cpuLeft, close };
  }
  if (sys === 'bullmq') {
    const { Queue, QueueEvents } = require('bullmq');
    const qs = {}, evs = {};
    for (const name of queues) {
      qs[name] = new Queue(name, { connection });
      evs[name] = new QueueEvents(name, { connection });
      await evs[name].waitUntilReady();
    }
    const tinyJob = async (queue) => {
      const t0 = now();
      const job = await qs[queue].add('tiny', {});
      try {
        await job.waitUntilFinished(evs[queue], WAIT_S * 1000);
      } catch (e) {
        if (/timed out|ttl/i.test(String(e))) return null;
        throw e;
      }
      return now() - t0;
    };
    const cpuJobs = async (n, data, rounds) => {
      const jobs = [];
      for (let i = 0; i < n; i++) jobs.push({ name: 'sha', data: { data, rounds } });
      await qs.cpu.addBulk(jobs);
    };
    const cpuLeft = async () => {
      const c = await qs.cpu.getJobCounts('waiting', 'active');
      return c.waiting + c.active;
    };
    const close = async () => {
      for (const name of queues) {
        await evs[name].close();
        await qs[name].close();
      }
    };
    return { tinyJob, cpuJobs, cpuLeft, close };
  }
  if (sys === 'bee') {
    const Queue = require('bee-queue');
    const qs = {};
    for (const name of queues) {
      qs[name] = new Queue(name, { redis: beeRedis, isWorker: false, getEvents: true });
      await qs[name].ready();
    }
    const tinyJob = (queue) => new Promise((resolve, reject) => {
      const t0 = now();
      const job = qs[queue].createJob({});
      const timer = setTimeout(() => resolve(null), WAIT_S * 1000);
      job.on('succeeded', () => { clearTimeout(timer); resolve(now() - t0); });
      job.on('failed', (e) => { clearTimeout(timer); reject(e); });
      job.save().catch(reject);
    });
    const cpuJobs = async (n, data, rounds) => {
      const jobs = [];
      for (let i = 0; i < n; i++) jobs.push(qs.cpu.createJob({ data, rounds }));
      await qs.cpu.saveAll(jobs);
    };
    const cpuLeft = async () => {
      const h = await qs.cpu.checkHealth();
      return h.waiting + h.active;
    };
    const close = async () => {
      for (const name of queues) await qs[name].close();
    };
    return { tinyJob, cpuJobs, cpuLeft, close };
  }
  die('unknown system ' + sys);
}

async function latency(n) {
  const c = await client(['noop']);
  await c.tinyJob('noop'); // warm up: connections, scripts loaded
  const ms = [];
  for (let i = 0; i < n; i++) {
    ms.push(await c.tinyJob('noop'));
    await new Promise((r) => setTimeout(r, 5)); // low load: one at a time, a gap between
  }
  await c.close();
  process.stdout.write(JSON.stringify({ ms }) + '\n');
}

async function mixed(ncpu, rounds, seconds, data) {
  const c = await client(['tiny', 'cpu']);
  await c.tinyJob('tiny'); // warm up, before the CPU jobs arrive
  if (ncpu > 0) await c.cpuJobs(ncpu, data, rounds); // 0: the control, c0
  await new Promise((r) => setTimeout(r, 200)); // let the CPU lanes fill
  const waits = [];
  const end = now() + seconds * 1000;
  while (now() < end) {
    waits.push(c.tinyJob('tiny'));
    await new Promise((r) => setTimeout(r, 20));
  }
  // CPU jobs not finished at the end of the window (waiting or running):
  // more than the 2 lanes means they stayed busy throughout.
  const cpuLeft = await c.cpuLeft();
  const ms = await Promise.all(waits);
  await c.close();
  process.stdout.write(JSON.stringify({ ms, cpuLeft }) + '\n');
}

async function main() {
  const data = '\u0001'.repeat(1024);
  if (role === 'worker') return worker(rest[0], JSON.parse(rest[1] || '{}'));
  if (role === 'preload')
    return preload(rest[0], Number(rest[1]), Object.assign({ data }, JSON.parse(rest[2] || '{}')));
  if (role === 'latency') return latency(Number(rest[0]));
  if (role === 'mixed') return mixed(Number(rest[0]), Number(rest[1]), Number(rest[2]), data);
  die('unknown role ' + role);
}

main().then(() => {
  if (role !== 'worker') process.exit(0);
}, (e) => die(e.stack || String(e)));
