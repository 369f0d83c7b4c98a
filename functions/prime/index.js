// The Node.js build of prime: the nth prime by trial division, trying the
// same candidates against the same divisors as main.go.
'use strict';
const fnio = require('../fnio');

const maxN = 100000;

function nthPrime(n) {
  let count = 0;
  for (let c = 2; ; c++) {
    let prime = true;
    for (let d = 2; d * d <= c; d++) {
      if (c % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime && ++count === n) return c;
  }
}

module.exports = function handle(req) {
  const n = fnio.int(req, 'n', 1, maxN);
  if (n === undefined) {
    return fnio.error(400, 'input must be JSON like {"n": 1000} with n an integer from 1 to 100000');
  }
  return fnio.json(200, `{"n":${n},"result":${nthPrime(n)}}\n`);
};
