// The Node side of the function ABI (functions/README.md), the counterpart
// of functions/internal/fnio: the input rules and the response forms, so
// that every Node function answers the same bytes as its Wasm build. It is
// /app/fnio.js in every image; a function loads it as require('../fnio').
'use strict';

// blank reports whether a body holds only JSON whitespace.
function blank(buf) {
  for (const c of buf) {
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return false;
  }
  return true;
}

// unescape decodes '+' and %XX byte for byte, keeping a malformed escape
// as it is (fnio's unescape), into a latin1 string: every name and value
// the functions accept is ASCII.
function unescape(s) {
  const b = Buffer.from(s, 'latin1');
  const out = [];
  const hex = (c) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);
  for (let i = 0; i < b.length; i++) {
    let c = b[i];
    if (c === 0x2b) {
      c = 0x20;
    } else if (c === 0x25 && i + 2 < b.length && hex(b[i + 1]) >= 0 && hex(b[i + 2]) >= 0) {
      c = (hex(b[i + 1]) << 4) | hex(b[i + 2]);
      i += 2;
    }
    out.push(c);
  }
  return Buffer.from(out).toString('latin1');
}

// param returns the first value of query parameter name, or '' when
// absent: '&'-separated pairs split at the first '=', as fnio's Param.
function param(req, name) {
  for (const kv of (req.rawQuery || '').split('&')) {
    const eq = kv.indexOf('=');
    const k = eq < 0 ? kv : kv.slice(0, eq);
    if (unescape(k) === name) return unescape(eq < 0 ? '' : kv.slice(eq + 1));
  }
  return '';
}

// number reads input field name (fnio.Number): a JSON object body's member
// that is a JSON number, or, with an empty body, a decimal query parameter.
// It returns the number, or undefined.
function number(req, name) {
  if (!blank(req.body)) {
    let obj;
    try {
      obj = JSON.parse(req.body.toString('utf8'));
    } catch (e) {
      return undefined;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(obj, name)) return undefined;
    const v = obj[name];
    return typeof v === 'number' ? v : undefined;
  }
  const s = param(req, name);
  if (!/^-?[0-9]+$/.test(s)) return undefined;
  return Number(s);
}

// int reads an integer input field in [min, max] (fnio.Int), or undefined.
function int(req, name, min, max) {
  const v = number(req, name);
  if (v === undefined || v !== Math.trunc(v) || v < min || v > max) return undefined;
  return v;
}

// formatNumber prints a double as fnio.FormatNumber does: JavaScript's
// own number-to-string for finite values (the shortest decimal that reads
// back as the same double), and Go's +Inf, -Inf and NaN otherwise, so the
// two builds answer the same bytes even there.
function formatNumber(v) {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

// json is a JSON response; body must already end with "\n".
function json(status, body) {
  return { status, headers: { 'Content-Type': 'application/json' }, body };
}

// error is the ABI's error body {"error":"MSG"}\n.
function error(status, msg) {
  return json(status, '{"error":' + JSON.stringify(msg) + '}\n');
}

module.exports = { blank, param, number, int, formatNumber, json, error };
