// The Node.js build of exponential: e^n by summing its Taylor series in
// doubles until a term no longer changes the sum, the same operations in
// the same order as main.go, so the same bits.
'use strict';
const fnio = require('../fnio');

const maxN = 709; // e^710 overflows a double

function exp(x) {
  let sum = 0;
  let term = 1;
  for (let k = 1; ; k++) {
    const next = sum + term;
    if (next === sum) return [sum, k - 1];
    sum = next;
    term = term * (x / k); // not (term * x) / k: that overflows near k = x for n >= 708
  }
}

module.exports = function handle(req) {
  const n = fnio.int(req, 'n', 0, maxN);
  if (n === undefined) {
    return fnio.error(400, 'input must be JSON like {"n": 10} with n an integer from 0 to 709');
  }
  const [sum, terms] = exp(n);
  return fnio.json(200, `{"n":${n},"terms":${terms},"result":${fnio.formatNumber(sum)}}\n`);
};
