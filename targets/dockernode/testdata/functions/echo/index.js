// A test function: answers what it was asked; ?crash=1 kills the process
// mid-request, as a container dying under load would.
'use strict';
module.exports = function handle(req) {
  if (req.query.crash === '1') process.exit(3);
  return {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ method: req.method, path: req.path, query: req.query, body: req.body.toString() }) + '\n',
  };
};
