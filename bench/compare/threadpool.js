'use strict';
// A fixed pool of worker_threads running sha256 jobs, for bee-queue, which
// has no sandbox of its own: without it a CPU job would block the loop that
// also serves its I/O jobs. Each thread takes one job at a time.
const { Worker, isMainThread, parentPort } = require('worker_threads');
const { sha256Rounds } = require('./sha');

if (!isMainThread) {
  parentPort.on('message', (m) => {
    parentPort.postMessage({ id: m.id, hex: sha256Rounds(m.data, m.rounds) });
  });
} else {
  module.exports = class ThreadPool {
    constructor(n) {
      this.idle = [];
      this.waiting = [];
      this.pending = new Map();
      this.seq = 0;
      this.threads = [];
      for (let i = 0; i < n; i++) {
        const w = new Worker(__filename);
        w.on('message', (m) => {
          this.pending.get(m.id)(m.hex);
          this.pending.delete(m.id);
          this.next(w);
        });
        this.threads.push(w);
        this.idle.push(w);
      }
    }
    next(w) {
      const job = this.waiting.shift();
      if (job) w.postMessage(job);
      else this.idle.push(w);
    }
    run(data, rounds) {
      return new Promise((resolve) => {
        const job = { id: ++this.seq, data, rounds };
        this.pending.set(job.id, resolve);
        const w = this.idle.pop();
        if (w) w.postMessage(job);
        else this.waiting.push(job);
      });
    }
    close() {
      return Promise.all(this.threads.map((w) => w.terminate()));
    }
  };
}
