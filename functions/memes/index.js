// The Node.js build of memes, the Academemes function: one academic meme
// as JSON, or as a small HTML page when the client accepts text/html. The
// collection is memes.json, written by the same generator as data.go; the
// bytes are those of main.go (functions/README.md).
'use strict';
const fnio = require('../fnio');
const collection = require('./memes.json');

const badInput = 'input must be JSON like {"id": 7} with id an integer';
const maxSafe = Number.MAX_SAFE_INTEGER;

// escapeHTML escapes as Go's html.EscapeString does.
function escapeHTML(s) {
  return s.replace(/[&'<>"]/g, (c) => ({ '&': '&amp;', "'": '&#39;', '<': '&lt;', '>': '&gt;', '"': '&#34;' })[c]);
}

function page(m) {
  const n = collection.length;
  const prev = ((m.id + n - 2) % n) + 1;
  const next = (m.id % n) + 1;
  return '<!doctype html>\n' +
    `<html lang="en"><head><meta charset="utf-8"><title>Academemes #${m.id}</title>` +
    '<style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto;text-align:center}nav a{margin:0 1rem}</style></head>\n' +
    `<body><h1>Academemes</h1><figure>${m.svg}<figcaption>${escapeHTML(m.caption)}</figcaption></figure>\n` +
    `<nav><a href="?id=${prev}">previous</a><a href="?id=${next}">next</a></nav></body></html>\n`;
}

module.exports = function handle(req) {
  let id = 1; // a person browsing /fn/memes starts at the first meme
  if (!fnio.blank(req.body) || fnio.param(req, 'id') !== '') {
    id = fnio.int(req, 'id', -maxSafe, maxSafe);
    if (id === undefined) return fnio.error(400, badInput);
  }
  if (id < 1 || id > collection.length) {
    return fnio.error(404, `no meme with id ${id}`);
  }
  const m = collection[id - 1];
  if ((req.headers.accept || '').includes('text/html')) {
    return { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8' }, body: page(m) };
  }
  return fnio.json(200, JSON.stringify({ id: m.id, caption: m.caption, alt: m.alt, svg: m.svg }) + '\n');
};
