'use strict';
// The sha256 job of PROTOCOL §8, as jobq's builtins.c computes it: round 1
// hashes the payload's `data` bytes, every later round hashes the previous
// 32-byte digest; the result is the last digest in lowercase hex.
//
// Job data reaches the peers as JSON, which has no bytes: `data` travels as a
// string of U+0000..U+007F characters (1 KiB of U+0001 here), whose UTF-8
// bytes are exactly the bytes jobq hashes. bench/compare/compare.py checks
// every side's digest against Python's hashlib.
const crypto = require('crypto');

function sha256Rounds(data, rounds) {
  let d = crypto.createHash('sha256').update(Buffer.from(data, 'utf8')).digest();
  for (let i = 1; i < rounds; i++)
    d = crypto.createHash('sha256').update(d).digest();
  return d.toString('hex');
}

module.exports = { sha256Rounds };
