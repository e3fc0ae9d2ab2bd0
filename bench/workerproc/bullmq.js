'use strict';
// BullMQ running the same functions as the jobq sides of
// bench/workerproc.py: node bullmq.js PORT SCEN N CONCURRENCY. Starts a
// Worker, then enqueues N jobs with addBulk and prints {"s": seconds from
// the first add to the N-th completion} (the jobq sides are timed the
// same way: enqueue included, the worker already up), and its CPU.
const path = require('path');
const { Queue, Worker } = require(path.join(__dirname, '..', 'compare', 'node_modules', 'bullmq'));
const transform = require('./transform.js');

const [, , port, scen, nArg, concArg] = process.argv;
const n = Number(nArg);
const connection = { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null };
const PAYLOAD = { name: 'Ada', scores: [3, 4, 5, 6, 7, 8, 9, 10, 11, 12] };

async function main() {
  const queue = 'wp-' + scen;
  const fn = scen === 'noop' ? async () => null : async (job) => transform(job.data);
  let done = 0, t0 = 0, finish;
  const all = new Promise((res) => { finish = res; });
  const w = new Worker(queue, fn, { connection, concurrency: Number(concArg) });
  w.on('completed', () => { if (++done === n) finish(); });
  w.on('failed', (job, e) => { process.stderr.write(`failed: ${e}\n`); if (++done === n) finish(); });
  await w.waitUntilReady();
  const q = new Queue(queue, { connection });
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) jobs.push({ name: scen, data: scen === 'noop' ? {} : PAYLOAD });
    await q.addBulk(jobs);
  }
  await all;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const u = process.cpuUsage();
  process.stdout.write(JSON.stringify({ s, cpu: (u.user + u.system) / 1e6 }) + '\n');
  await Promise.race([Promise.all([w.close(), q.close()]), new Promise((r) => setTimeout(r, 3000))]);
  process.exit(0);
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
