/* memes-small: the memes function without a language runtime (freestanding
 * C for WASI); same bytes out as memes.wasm for the same request. */
#include "../../internal/small/purify.h"
#include "memes_data.h"

#define MAX_SAFE 9007199254740991LL

static void json_str(const char *s) {
	out_str("\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') out_str("\\");
		out_bytes(s, 1);
	}
	out_str("\"");
}

static void html_str(const char *s) {
	for (; *s; s++) {
		switch (*s) {
		case '&': out_str("&amp;"); break;
		case '\'': out_str("&#39;"); break;
		case '<': out_str("&lt;"); break;
		case '>': out_str("&gt;"); break;
		case '"': out_str("&#34;"); break;
		default: out_bytes(s, 1);
		}
	}
}

static int contains(const char *hay, const char *needle) {
	if (!hay) return 0;
	uint32_t n = slen(needle);
	for (; *hay; hay++) {
		uint32_t i = 0;
		while (i < n && hay[i] == needle[i]) i++;
		if (i == n) return 1;
	}
	return 0;
}

static void handle(void) {
	int64_t id = 1;
	char buf[8];
	if (!blank_body() || (query_param("id", buf, sizeof buf) && buf[0] != 0)) {
		if (!input_int("id", -MAX_SAFE, MAX_SAFE, &id)) {
			error_json(400, "input must be JSON like {\\\"id\\\": 7} with id an integer");
			return;
		}
	}
	if (id < 1 || id > N_MEMES) {
		head(404, "application/json");
		out_str("{\"error\":\"no meme with id "); out_int(id); out_str("\"}\n");
		return;
	}
	int i = (int)id - 1;
	if (contains(env_get("HTTP_ACCEPT"), "text/html")) {
		int prev = (int)((id + N_MEMES - 2) % N_MEMES) + 1, next = (int)(id % N_MEMES) + 1;
		head(200, "text/html; charset=utf-8");
		out_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Academemes #"); out_int(id);
		out_str("</title><style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto;text-align:center}nav a{margin:0 1rem}</style></head>\n");
		out_str("<body><h1>Academemes</h1><figure>"); out_str(collection[i].svg);
		out_str("<figcaption>"); html_str(collection[i].caption); out_str("</figcaption></figure>\n");
		out_str("<nav><a href=\"?id="); out_int(prev); out_str("\">previous</a><a href=\"?id="); out_int(next);
		out_str("\">next</a></nav></body></html>\n");
		return;
	}
	head(200, "application/json");
	out_str("{\"id\":"); out_int(id);
	out_str(",\"caption\":"); json_str(collection[i].caption);
	out_str(",\"alt\":"); json_str(collection[i].alt);
	out_str(",\"svg\":"); json_str(collection[i].svg);
	out_str("}\n");
}
