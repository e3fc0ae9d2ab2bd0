'use strict';
// BullMQ's sandboxed processor for sha256 jobs: runs in a child process of
// the Worker, so a long hash never blocks the Worker's event loop.
const { sha256Rounds } = require('./sha');

module.exports = async (job) => sha256Rounds(job.data.data, job.data.rounds);
