// The Node.js build of factorial: n! exactly, with BigInt, multiplied in
// the same order as main.go (math/big), answered as a decimal string.
'use strict';
const fnio = require('../fnio');

const maxN = 5000;

function factorial(n) {
  let r = 1n;
  for (let i = 2n; i <= BigInt(n); i++) r *= i;
  return r;
}

module.exports = function handle(req) {
  const n = fnio.int(req, 'n', 0, maxN);
  if (n === undefined) {
    return fnio.error(400, 'input must be JSON like {"n": 20} with n an integer from 0 to 5000');
  }
  return fnio.json(200, `{"n":${n},"result":"${factorial(n)}"}\n`);
};
