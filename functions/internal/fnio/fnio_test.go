package fnio

import (
	"encoding/json"
	"math"
	"testing"
)

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		name, query, body string
		v                 float64
		ok                bool
	}{
		{"plain", "", `{"n": 30}`, 30, true},
		{"whitespace around", "", " \t\r\n{\"n\":1}\n", 1, true},
		{"exponent", "", `{"n":2e1}`, 20, true},
		{"fraction", "", `{"n":1.5}`, 1.5, true},
		{"last wins", "", `{"n":1,"n":2}`, 2, true},
		{"escaped name", "", `{"\u006e":3}`, 3, true},
		{"other members", "", `{"a":[1,{"b":null}],"n":4,"c":"x\"y"}`, 4, true},
		{"huge is infinite", "", `{"n":1e400}`, math.Inf(1), true},
		{"string", "", `{"n":"30"}`, 0, false},
		{"null", "", `{"n":null}`, 0, false},
		{"case matters", "", `{"N":30}`, 0, false},
		{"array", "", `[30]`, 0, false},
		{"trailing comma", "", `{"n":30,}`, 0, false},
		{"leading zero", "", `{"n":030}`, 0, false},
		{"trailing garbage", "", `{"n":30} x`, 0, false},
		{"two values", "", `{"n":30}{}`, 0, false},
		{"control char in string", "", "{\"a\":\"\x01\",\"n\":1}", 0, false},
		{"bad escape", "", `{"a":"\x","n":1}`, 0, false},
		{"missing", "", `{}`, 0, false},
		{"deep nesting", "", `{"a":` + repeat("[", 600) + repeat("]", 600) + `,"n":1}`, 0, false},
		{"query", "n=12", "", 12, true},
		{"query encoded", "n=%31%32", "", 12, true},
		{"query negative", "n=-3", "", -3, true},
		{"query first wins", "n=5&n=6", "", 5, true},
		{"query fraction", "n=1.0", "", 0, false},
		{"query empty", "n=", "", 0, false},
		{"query absent", "m=1", "", 0, false},
		{"body wins over query", "n=1", `{"n":2}`, 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, ok := Number(Request{Query: c.query, Body: []byte(c.body)}, "n")
			if ok != c.ok || (ok && v != c.v) {
				t.Errorf("Number = %v, %v; want %v, %v", v, ok, c.v, c.ok)
			}
		})
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for i := 0; i < n; i++ {
		b = append(b, s...)
	}
	return string(b)
}

// TestFormatNumber pins the JavaScript Number#toString forms.
func TestFormatNumber(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-2.5, "-2.5"}, {22026.465794806718, "22026.465794806718"},
		{1e21, "1e+21"}, {1.5e21, "1.5e+21"}, {999999999999999900000, "999999999999999900000"},
		{1e-6, "0.000001"}, {1e-7, "1e-7"}, {1.5e-7, "1.5e-7"}, {8.218407461554972e307, "8.218407461554972e+307"},
		{1234567, "1234567"}, {0.1, "0.1"},
	} {
		if got := FormatNumber(c.v); got != c.want {
			t.Errorf("FormatNumber(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestEncodeAndQuote(t *testing.T) {
	got := string(Encode(Error(404, `no "x"`)))
	want := "Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"error\":\"no \\\"x\\\"\"}\n"
	if got != want {
		t.Errorf("Encode = %q, want %q", got, want)
	}
}

// TestValueAgreesWithEncodingJSON checks the validator's objects and arrays
// (one loop for both) against encoding/json.
func TestValueAgreesWithEncodingJSON(t *testing.T) {
	for _, doc := range []string{
		`{}`, `[]`, `{ }`, `[ ]`, `{"a":1}`, `[1]`, `[1,2,3]`, `{"a":1,"b":[{},[]]}`, ` [ 1 , { "a" : [ ] } ] `,
		`{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`, `{"a":1,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a":1 "b":2}`, `{`, `[`,
		`{"a":1`, `[1`, `{]`, `[}`, `[1}`, `{"a":1]`, `{,}`, `[[[]]]`, `[[[]]`, `{"a":{"b":{"c":[true,false,null]}}}`,
	} {
		t.Run(doc, func(t *testing.T) {
			p := parser{b: []byte(doc)}
			p.space()
			ok := p.value(0)
			p.space()
			ok = ok && p.i == len(p.b)
			if want := json.Valid([]byte(doc)); ok != want {
				t.Errorf("valid = %v, encoding/json says %v", ok, want)
			}
		})
	}
}
