/*
 * purify.h: the Purify function ABI (functions/README.md) for freestanding C
 * on WASI preview 1, with no libc and no language runtime, so that a module
 * instantiates in microseconds. It follows the same input rules as the Go
 * builds (functions/internal/fnio), with one documented difference: numbers
 * are judged exactly in decimal rather than after rounding to a double, so
 * a number with more than 17 significant digits that rounds to an integer
 * (30.0000000000000000001) is bad input here and accepted there.
 *
 * A function defines `static void handle(void)`, which reads g_body /
 * env_get() and calls respond(); the module exports _start (command) and
 * purify_handle (warm mode), both running handle() on the current request.
 */
#include <stdint.h>
#include <stddef.h>

#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
typedef struct { uint8_t *buf; uint32_t len; } iovec;
WASI(fd_read) uint16_t wasi_fd_read(int fd, iovec *iovs, uint32_t n, uint32_t *nread);
WASI(fd_write) uint16_t wasi_fd_write(int fd, const iovec *iovs, uint32_t n, uint32_t *nwritten);
WASI(environ_sizes_get) uint16_t wasi_environ_sizes_get(uint32_t *count, uint32_t *size);
WASI(environ_get) uint16_t wasi_environ_get(uint8_t **env, uint8_t *buf);
WASI(proc_exit) _Noreturn void wasi_proc_exit(uint32_t code);

/* Built with -mbulk-memory, these become single memory.copy/memory.fill
 * instructions instead of byte loops. */
void *memcpy(void *d, const void *s, size_t n) { return __builtin_memcpy(d, s, n); }
void *memset(void *d, int c, size_t n) { return __builtin_memset(d, c, n); }

/* Memory starts small (data, a 32 KiB stack) because every fresh instance
 * pays for zeroing it; the body and the response live in regions that grow
 * on demand above __heap_base. */
extern uint8_t __heap_base;
#define PAGE 65536u
/* ensure makes [p, p+n) addressable. */
static int ensure(uint8_t *p, uint32_t n) {
	uint32_t need = (uint32_t)(uintptr_t)p + n, have = (uint32_t)__builtin_wasm_memory_size(0) * PAGE;
	if (need <= have) return 1;
	return __builtin_wasm_memory_grow(0, (need - have + PAGE - 1) / PAGE) != (size_t)-1;
}

#define MAX_BODY (1u << 20)
#define MAX_OUT (1u << 20)
#define MAX_ENV 8192
static uint8_t *g_body;   /* at __heap_base, up to MAX_BODY+1 */
static uint32_t g_body_len;
static uint8_t *g_out;    /* after the body region */
static uint32_t g_out_len, g_out_cap;
static uint8_t g_envbuf[MAX_ENV];
static uint8_t *g_envp[64];
static uint32_t g_envc;

static void read_request(void) {
	g_body = &__heap_base;
	g_body_len = 0;
	for (;;) {
		uint32_t chunk = 16384;
		if (g_body_len + chunk > MAX_BODY + 1) chunk = MAX_BODY + 1 - g_body_len;
		if (chunk == 0 || !ensure(g_body + g_body_len, chunk)) break;
		iovec v = { g_body + g_body_len, chunk };
		uint32_t n = 0;
		if (wasi_fd_read(0, &v, 1, &n) != 0 || n == 0) break;
		g_body_len += n;
	}
	g_out = g_body + ((g_body_len + 16) & ~15u);
	g_out_len = 0;
	g_out_cap = 0;
	uint32_t count = 0, size = 0;
	g_envc = 0;
	if (wasi_environ_sizes_get(&count, &size) == 0 && count <= 64 && size <= MAX_ENV &&
	    wasi_environ_get(g_envp, g_envbuf) == 0)
		g_envc = count;
}

/* env_get returns the value of KEY or 0. */
static const char *env_get(const char *key) {
	for (uint32_t i = 0; i < g_envc; i++) {
		const uint8_t *p = g_envp[i];
		const char *k = key;
		while (*k && *p == (uint8_t)*k) { p++; k++; }
		if (*k == 0 && *p == '=') return (const char *)p + 1;
	}
	return 0;
}

static uint32_t slen(const char *s) { uint32_t n = 0; while (s[n]) n++; return n; }

/* Output: a bounded buffer written with one fd_write at the end. */
static void out_bytes(const void *p, uint32_t n) {
	if (g_out_len + n > MAX_OUT) n = MAX_OUT - g_out_len;
	if (g_out_len + n > g_out_cap) {
		uint32_t cap = (g_out_len + n + 16383) & ~16383u;
		if (!ensure(g_out, cap)) return;
		g_out_cap = cap;
	}
	memcpy(g_out + g_out_len, p, n);
	g_out_len += n;
}
static void out_str(const char *s) { out_bytes(s, slen(s)); }
static void out_int(int64_t v) {
	char b[24]; int i = 24; uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do { b[--i] = '0' + u % 10; u /= 10; } while (u);
	if (v < 0) b[--i] = '-';
	out_bytes(b + i, 24 - i);
}
static void flush(void) {
	uint32_t off = 0;
	while (off < g_out_len) {
		iovec v = { g_out + off, g_out_len - off };
		uint32_t n = 0;
		if (wasi_fd_write(1, &v, 1, &n) != 0 || n == 0) break;
		off += n;
	}
	g_out_len = 0;
}

static const char *status_text(int code) {
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	}
	return "Status";
}

/* head starts a response: the CGI header block. */
static void head(int status, const char *ctype) {
	g_out_len = 0;
	out_str("Status: "); out_int(status); out_str(" "); out_str(status_text(status));
	out_str("\r\nContent-Type: "); out_str(ctype); out_str("\r\n\r\n");
}

/* error_json answers {"error":MSG}\n; msg is JSON-escaped already. */
static void error_json(int status, const char *escaped) {
	head(status, "application/json");
	out_str("{\"error\":\""); out_str(escaped); out_str("\"}\n");
}

/* ---- input: the rules of functions/README.md, "Input" ---- */

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static int blank_body(void) {
	for (uint32_t i = 0; i < g_body_len; i++) if (!is_space(g_body[i])) return 0;
	return 1;
}

typedef struct { const uint8_t *b; uint32_t n, i; } parser;
static uint8_t peek(parser *p) { return p->i < p->n ? p->b[p->i] : 0; }
static void space(parser *p) { while (p->i < p->n && is_space(p->b[p->i])) p->i++; }
static int value(parser *p, int depth);

static int hexv(uint8_t c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* str parses a string; *eq is set when it equals name after escapes. */
static int str(parser *p, const char *name, int *eq) {
	if (peek(p) != '"') return 0;
	p->i++;
	int same = 1; uint32_t k = 0;
	while (p->i < p->n) {
		uint8_t c = p->b[p->i++];
		int ch;
		if (c == '"') { if (eq) *eq = same && name[k] == 0; return 1; }
		if (c < 0x20) return 0;
		if (c == '\\') {
			uint8_t e = peek(p); p->i++;
			switch (e) {
			case '"': case '\\': case '/': ch = e; break;
			case 'b': ch = '\b'; break; case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break; case 'r': ch = '\r'; break; case 't': ch = '\t'; break;
			case 'u': {
				if (p->n - p->i < 4) return 0;
				int v = 0;
				for (int j = 0; j < 4; j++) { int h = hexv(p->b[p->i + j]); if (h < 0) return 0; v = v * 16 + h; }
				p->i += 4;
				ch = v < 0x80 ? v : -1;
				break;
			}
			default: return 0;
			}
		} else ch = c;
		if (same) { if (ch >= 0 && name[k] != 0 && (uint8_t)name[k] == ch) k++; else same = 0; }
	}
	return 0;
}

static int digits(parser *p) { int n = 0; while (p->i < p->n && p->b[p->i] >= '0' && p->b[p->i] <= '9') { p->i++; n++; } return n; }
static int number(parser *p) {
	if (peek(p) == '-') p->i++;
	if (peek(p) == '0') p->i++; else if (digits(p) == 0) return 0;
	if (peek(p) == '.') { p->i++; if (digits(p) == 0) return 0; }
	if (peek(p) == 'e' || peek(p) == 'E') { p->i++; if (peek(p) == '+' || peek(p) == '-') p->i++; if (digits(p) == 0) return 0; }
	return 1;
}
static int lit(parser *p, const char *s) {
	uint32_t n = slen(s);
	if (p->n - p->i < n) return 0;
	for (uint32_t j = 0; j < n; j++) if (p->b[p->i + j] != (uint8_t)s[j]) return 0;
	p->i += n; return 1;
}
static int members(parser *p, int depth, const char *name, uint32_t *start, uint32_t *end) {
	p->i++; space(p);
	if (peek(p) == '}') { p->i++; return 1; }
	for (;;) {
		int eq = 0;
		space(p);
		if (!str(p, name ? name : "", &eq)) return 0;
		space(p);
		if (peek(p) != ':') return 0;
		p->i++; space(p);
		uint32_t s = p->i;
		if (!value(p, depth + 1)) return 0;
		if (name && eq) { *start = s; *end = p->i; }
		space(p);
		uint8_t c = peek(p); p->i++;
		if (c == '}') return 1;
		if (c != ',') return 0;
	}
}
static int value(parser *p, int depth) {
	if (depth > 512) return 0;
	uint8_t c = peek(p);
	if (c == '{') { uint32_t a, b; return members(p, depth, 0, &a, &b); }
	if (c == '[') {
		p->i++; space(p);
		if (peek(p) == ']') { p->i++; return 1; }
		for (;;) {
			space(p);
			if (!value(p, depth + 1)) return 0;
			space(p);
			uint8_t d = peek(p); p->i++;
			if (d == ']') return 1;
			if (d != ',') return 0;
		}
	}
	if (c == '"') return str(p, "", 0);
	if (c == '-' || (c >= '0' && c <= '9')) return number(p);
	if (c == 't') return lit(p, "true");
	if (c == 'f') return lit(p, "false");
	if (c == 'n') return lit(p, "null");
	return 0;
}

/* decimal_int judges the JSON number text s[0:n] exactly: it sets *v and
 * returns 1 when the number is an integer with |v| <= limit. */
static int decimal_int(const uint8_t *s, uint32_t n, int64_t limit, int64_t *v) {
	uint32_t i = 0; int neg = 0;
	if (i < n && s[i] == '-') { neg = 1; i++; }
	uint8_t dig[64]; int nd = 0, point = -1; int64_t exp10 = 0; int overflow = 0;
	for (; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'); i++) {
		if (s[i] == '.') { point = nd; continue; }
		if (nd == 0 && s[i] == '0') { if (point >= 0) exp10--; continue; } /* leading zeros */
		if (nd < 64) dig[nd++] = s[i] - '0'; else if (s[i] != '0') overflow = 1; else exp10++;
		if (point >= 0 && nd <= 64) exp10--;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++; int eneg = 0; int64_t e = 0;
		if (s[i] == '+' || s[i] == '-') { eneg = s[i] == '-'; i++; }
		for (; i < n; i++) { if (e < 100000) e = e * 10 + (s[i] - '0'); }
		exp10 += eneg ? -e : e;
	}
	if (overflow) return 0;
	/* strip trailing zeros into the exponent */
	while (nd > 0 && dig[nd - 1] == 0) { nd--; exp10++; }
	if (nd == 0) { *v = 0; return 1; }
	if (exp10 < 0) return 0; /* a fraction remains */
	if (nd + exp10 > 18) return 0;
	int64_t x = 0;
	for (int j = 0; j < nd; j++) x = x * 10 + dig[j];
	for (int64_t j = 0; j < exp10; j++) x *= 10;
	if (x > limit) { *v = neg ? -x : x; return 2; } /* an integer, but out of range */
	*v = neg ? -x : x;
	return 1;
}

/* query_param finds NAME in QUERY_STRING, form-decoded into buf. */
static int query_param(const char *name, char *buf, uint32_t cap) {
	const char *q = env_get("QUERY_STRING");
	if (!q) return 0;
	while (*q) {
		const char *k = q; const char *e = q;
		while (*e && *e != '&') e++;
		/* decode the key and compare */
		char key[64]; uint32_t kl = 0; const char *p = k;
		while (p < e && *p != '=') {
			char c = *p;
			if (c == '+') { c = ' '; p++; }
			else if (c == '%' && p + 2 < e && hexv(p[1]) >= 0 && hexv(p[2]) >= 0) { c = (char)(hexv(p[1]) * 16 + hexv(p[2])); p += 3; }
			else p++;
			if (kl < sizeof key - 1) key[kl++] = c;
		}
		key[kl] = 0;
		uint32_t j = 0; while (name[j] && key[j] == name[j]) j++;
		if (name[j] == 0 && key[j] == 0 && kl == j) {
			uint32_t bl = 0;
			if (p < e) p++; /* '=' */
			while (p < e) {
				char c = *p;
				if (c == '+') { c = ' '; p++; }
				else if (c == '%' && p + 2 < e && hexv(p[1]) >= 0 && hexv(p[2]) >= 0) { c = (char)(hexv(p[1]) * 16 + hexv(p[2])); p += 3; }
				else p++;
				if (bl < cap - 1) buf[bl++] = c;
			}
			buf[bl] = 0;
			return 1;
		}
		q = *e ? e + 1 : e;
	}
	return 0;
}

/* input_int reads member or query parameter NAME: 1 = integer in
 * [min, max] in *v, 0 = bad input. */
static int input_int(const char *name, int64_t min, int64_t max, int64_t *v) {
	int64_t lim = max > -min ? max : -min;
	if (!blank_body()) {
		parser p = { g_body, g_body_len, 0 };
		space(&p);
		if (peek(&p) != '{') return 0;
		uint32_t s = 0, e = 0;
		if (!members(&p, 0, name, &s, &e)) return 0;
		space(&p);
		if (p.i != p.n || e == 0) return 0;
		uint8_t c = g_body[s];
		if (!(c == '-' || (c >= '0' && c <= '9'))) return 0;
		if (decimal_int(g_body + s, e - s, lim, v) != 1) return 0;
	} else {
		char buf[256];
		if (!query_param(name, buf, sizeof buf)) return 0;
		uint32_t n = slen(buf), i = buf[0] == '-' ? 1 : 0;
		if (i == n) return 0;
		for (uint32_t j = i; j < n; j++) if (buf[j] < '0' || buf[j] > '9') return 0;
		if (decimal_int((const uint8_t *)buf, n, lim, v) != 1) return 0;
	}
	return *v >= min && *v <= max;
}

static void handle(void);

__attribute__((export_name("purify_handle"))) void purify_handle(void) {
	read_request();
	handle();
	flush();
}

__attribute__((export_name("_start"))) void _start(void) { purify_handle(); }
