// The HTTP server of every Node function image (Node's own http module, no
// npm packages). It loads the function from /app/function/index.js and
// serves it on $PORT (default 8080), with the health paths an OpenFaaS
// watchdog uses: GET /_/health and GET /_/ready answer 200 "OK".
//
// A function module exports handle(req), where req is
// {method, path, rawQuery, query, headers, body} (rawQuery: the query string
// as sent, without '?'; query: an object of the first value of each
// parameter; body: a Buffer), and returns (or resolves to)
// {status, headers, body} with body a string or Buffer. The server adds
// Content-Length and nothing else, so the bytes on the wire are the
// function's own.
'use strict';
const http = require('http');
const path = require('path');

const fnPath = process.env.FUNCTION_PATH || path.join(__dirname, 'function', 'index.js');
const fn = require(fnPath);
const handle = typeof fn === 'function' ? fn : fn.handle;
if (typeof handle !== 'function') {
  console.error(`${fnPath} exports no handle function`);
  process.exit(2);
}

function rawQuery(u) {
  const i = u.indexOf('?');
  return i < 0 ? '' : u.slice(i + 1);
}

function send(res, status, headers, body) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body == null ? '' : String(body));
  headers = Object.assign({}, headers || {});
  headers['Content-Length'] = buf.length;
  res.writeHead(status, headers);
  res.end(buf);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://function');
  if (url.pathname === '/_/health' || url.pathname === '/_/ready') {
    send(res, 200, { 'Content-Type': 'text/plain' }, 'OK');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const query = {};
    for (const [k, v] of url.searchParams) {
      if (!(k in query)) query[k] = v;
    }
    try {
      const out = await handle({
        method: req.method,
        path: url.pathname,
        rawQuery: rawQuery(req.url),
        query,
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      send(res, out.status || 200, out.headers, out.body);
    } catch (err) {
      send(res, 500, { 'Content-Type': 'text/plain' }, `function failed: ${err && err.message}\n`);
    }
  });
});
// Keep-alive longer than Go's client idle timeout would make the client
// reuse a connection the server is closing; 65 s is what load balancers use.
server.keepAliveTimeout = 65000;
const port = Number(process.env.PORT || 8080);
server.listen(port, '0.0.0.0');
// A container gets SIGTERM on stop; leave at once (Node as PID 1 ignores it
// otherwise).
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
