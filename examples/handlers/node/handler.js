#!/usr/bin/env node
'use strict';
/* An example handler process: two job types in one long-lived Node
 * process, up to 64 jobs at once. Run it under jobq (from the
 * repository's root):
 *
 *     bin/jobq-consumer --proc 'node.noop+greet=node examples/handlers/node/handler.js'
 *     bin/jobq enqueue greet '{"name":"Ada","scores":[3,4,5]}' --wait
 */
const path = require('path');
// jobq_handler.js is one file with no dependencies: copy it next to your
// handler, or require it from where it is, as here.
const { handler, run, PermanentError } = require(
  path.join(__dirname, '..', '..', '..', 'handlers', 'node', 'jobq_handler.js'));

handler('node.noop', () => null);

handler('greet', async (payload) => {
  if (!payload || typeof payload.name !== 'string') {
    throw new PermanentError('payload must be {name: str, scores: [numbers]}');
  }
  const scores = payload.scores || [];
  return { greeting: 'hello ' + payload.name, total: scores.reduce((a, b) => a + b, 0), count: scores.length };
});

run();
