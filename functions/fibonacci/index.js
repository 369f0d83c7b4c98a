// The Node.js build of fibonacci: the nth Fibonacci number by naive
// recursion, the same work and the same bytes as main.go (functions/README.md).
'use strict';
const fnio = require('../fnio');

const maxN = 50;

// fib is deliberately recursive: the cost is the point. Results up to
// fib(50) stay below 2^53, so Numbers are exact.
function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

module.exports = function handle(req) {
  const n = fnio.int(req, 'n', 0, maxN);
  if (n === undefined) {
    return fnio.error(400, 'input must be JSON like {"n": 30} with n an integer from 0 to 50');
  }
  return fnio.json(200, `{"n":${n},"result":${fib(n)}}\n`);
};
