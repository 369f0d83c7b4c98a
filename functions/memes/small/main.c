/* memes-small: the memes function without a language runtime (freestanding
 * C for WASI); same bytes out as memes.wasm for the same request. */
#include "../../internal/small/purify.h"
#include "memes_data.h"

#define MAX_SAFE 9007199254740991LL
#define LIT(s) out_bytes(s, sizeof(s) - 1)

static void out_s(str_t s) { out_bytes(s.s, s.n); }

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
		LIT("{\"error\":\"no meme with id "); out_int(id); LIT("\"}\n");
		return;
	}
	int i = (int)id - 1;
	if (contains(env_get("HTTP_ACCEPT"), "text/html")) {
		int prev = (int)((id + N_MEMES - 2) % N_MEMES) + 1, next = (int)(id % N_MEMES) + 1;
		head(200, "text/html; charset=utf-8");
		LIT("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Academemes #"); out_int(id);
		LIT("</title><style>body{font-family:sans-serif;max-width:40rem;margin:2rem auto;text-align:center}nav a{margin:0 1rem}</style></head>\n");
		LIT("<body><h1>Academemes</h1><figure>"); out_s(collection[i].svg);
		LIT("<figcaption>"); out_s(collection[i].caption_html); LIT("</figcaption></figure>\n");
		LIT("<nav><a href=\"?id="); out_int(prev); LIT("\">previous</a><a href=\"?id="); out_int(next);
		LIT("\">next</a></nav></body></html>\n");
		return;
	}
	head(200, "application/json");
	LIT("{\"id\":"); out_int(id);
	LIT(",\"caption\":\""); out_s(collection[i].caption);
	LIT("\",\"alt\":\""); out_s(collection[i].alt);
	LIT("\",\"svg\":\""); out_s(collection[i].svg);
	LIT("\"}\n");
}
