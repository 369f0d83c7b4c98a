package main

import (
	"strconv"
	"testing"

	"github.com/academemes/harness/functions/internal/fnio"
)

// TestAnswerJSONQuotes checks the shortcut in answerJSON: for every meme,
// the answer is what quoting each field with fnio.QuoteASCII gives.
func TestAnswerJSONQuotes(t *testing.T) {
	for _, m := range collection {
		want := `{"id":` + strconv.Itoa(m.id) + `,"caption":` + fnio.QuoteASCII(m.caption) +
			`,"alt":` + fnio.QuoteASCII(m.alt) + `,"svg":` + fnio.QuoteASCII(m.svg) + "}\n"
		if got := string(answerJSON(m)); got != want {
			t.Errorf("meme %d: answerJSON differs from quoting each field:\n got %q\nwant %q", m.id, got, want)
		}
	}
}

// TestAnswerJSONNeedsQuoting shows that the test above can fail: a field
// that needs escaping gives a different answer.
func TestAnswerJSONNeedsQuoting(t *testing.T) {
	m := meme{id: 1, caption: `say "hi"`, alt: "a", svg: "<svg/>"}
	quoted := `{"id":1,"caption":` + fnio.QuoteASCII(m.caption) + `,"alt":"a","svg":"<svg/>"}` + "\n"
	if string(answerJSON(m)) == quoted {
		t.Fatal("answerJSON quoted a caption with '\"'; the shortcut's premise changed")
	}
}
