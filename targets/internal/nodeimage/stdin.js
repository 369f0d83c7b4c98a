// One request on stdin, one answer on stdout, then exit: the original
// study's form of a function container (`docker run --rm -i IMAGE`), run as
// `node /app/stdin.js` in the same image as server.js. The request facts come
// in the environment as the Wasm ABI gives them (REQUEST_METHOD, PATH_INFO,
// QUERY_STRING, CONTENT_TYPE, HTTP_ACCEPT; functions/README.md), the body on
// stdin; the answer goes to stdout in the ABI's CGI form ("Status: 200 OK",
// header lines, an empty line, the body), so the caller reads it exactly as
// it reads a Wasm build's.
//
// Once node runs and the function is loaded, it writes "ready\n" to stderr:
// the caller's start-up time ends there, as server.js's ends when its health
// path first answers.
'use strict';
const path = require('path');

const fnPath = process.env.FUNCTION_PATH || path.join(__dirname, 'function', 'index.js');
const fn = require(fnPath);
const handle = typeof fn === 'function' ? fn : fn.handle;
if (typeof handle !== 'function') {
  console.error(`${fnPath} exports no handle function`);
  process.exit(2);
}
process.stderr.write('ready\n');

const reasons = { 200: 'OK', 400: 'Bad Request', 404: 'Not Found', 500: 'Internal Server Error' };

function answer(out) {
  const status = out.status || 200;
  const body = Buffer.isBuffer(out.body) ? out.body : Buffer.from(out.body == null ? '' : String(out.body));
  let head = `Status: ${status} ${reasons[status] || 'Status'}\r\n`;
  for (const [k, v] of Object.entries(out.headers || {})) head += `${k}: ${v}\r\n`;
  process.stdout.write(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]), () => process.exit(0));
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', async () => {
  const rawQuery = process.env.QUERY_STRING || '';
  const query = {};
  for (const [k, v] of new URLSearchParams(rawQuery)) {
    if (!(k in query)) query[k] = v;
  }
  const headers = {};
  if (process.env.HTTP_ACCEPT) headers.accept = process.env.HTTP_ACCEPT;
  if (process.env.CONTENT_TYPE) headers['content-type'] = process.env.CONTENT_TYPE;
  try {
    answer(await handle({
      method: process.env.REQUEST_METHOD || 'POST',
      path: process.env.PATH_INFO || '/',
      rawQuery,
      query,
      headers,
      body: Buffer.concat(chunks),
    }));
  } catch (err) {
    answer({ status: 500, headers: { 'Content-Type': 'text/plain' }, body: `function failed: ${err && err.message}\n` });
  }
});
