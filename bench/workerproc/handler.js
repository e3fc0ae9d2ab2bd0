'use strict';
// bench/workerproc.py's Node handler process: noop and the JSON transform,
// on handlers/node/jobq_handler.js. transform.js is the same function
// BullMQ runs.
const path = require('path');
const { handler, run } = require(path.join(__dirname, '..', '..', 'handlers', 'node', 'jobq_handler.js'));
const transform = require('./transform.js');

handler('node.noop', async () => null);
handler('node.transform', async (p) => transform(p));
run({ maxInflight: 64 });
