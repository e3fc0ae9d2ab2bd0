'use strict';
// The small JSON transform every side of bench/workerproc.py runs.
module.exports = (p) => ({
  greeting: 'hello ' + p.name,
  total: p.scores.reduce((a, b) => a + b, 0),
  count: p.scores.length,
  top: Math.max(...p.scores),
});
