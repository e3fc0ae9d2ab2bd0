'use strict';
// A Node handler process for test_workerproc.py, on handlers/node's
// jobq_handler.js.
const path = require('path');
const { handler, run, PermanentError } = require(
  path.join(__dirname, '..', '..', '..', 'handlers', 'node', 'jobq_handler.js'));

let running = 0;

handler('n.echo', (payload) => {
  console.log('n.echo got', JSON.stringify(payload)); // must reach stderr
  return { got: payload, sum: (payload.n || []).reduce((a, b) => a + b, 0), pid: process.pid };
});

// Waits, so that several run at once; says how many did at its start.
handler('n.slow', async (payload) => {
  running++;
  const seen = running;
  await new Promise((res) => setTimeout(res, payload.ms));
  running--;
  return { seen, pid: process.pid };
});

handler('n.fail', async (payload, job) => {
  throw new Error(`no luck, attempt ${job.attempt}`);
});

handler('n.perm', () => {
  throw new PermanentError('bad input');
});

// Hangs until jobq cancels it (its timeout), then ends: the process lives.
handler('n.hang', (payload, job) => new Promise((resolve, reject) => {
  job.signal.addEventListener('abort', () => reject(new Error('cancelled')));
}));

run({ maxInflight: 16 });
