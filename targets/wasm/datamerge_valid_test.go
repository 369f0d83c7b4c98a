package wasm

import (
	"bytes"
	"strings"
	"testing"
)

// replaceSection returns m with the contents of its section id replaced
// by body (the test modules encode every size in one LEB128 byte or more,
// so it re-encodes the size).
func replaceSection(t *testing.T, m []byte, id byte, body []byte) []byte {
	t.Helper()
	out := append([]byte{}, m[:8]...)
	found := false
	for i := 8; i < len(m); {
		n, k, err := readU32(m, i+1)
		if err != nil {
			t.Fatal(err)
		}
		if m[i] == id {
			out = append(out, sec(id, body)...)
			found = true
		} else {
			out = append(out, m[i:k+int(n)]...)
		}
		i = k + int(n)
	}
	if !found {
		t.Fatalf("no section %d", id)
	}
	return out
}

// The merger rewrites only modules valid in every part it touches: a
// module wazero refuses is left alone, so it stays refused (before, a
// module declaring 9 data segments that has 3 was rewritten with a count
// of 3, deployed and ran).
func TestMergeLeavesInvalidModulesAlone(t *testing.T) {
	three := testModule{minPages: 1, dataCount: true, initSeg: -1, segs: []testSeg{active(0, "a"), active(2, "b"), active(4, "c")}}
	initPast := testModule{minPages: 1, dataCount: true, initSeg: 3, initLen: 1, segs: []testSeg{active(0, "a"), active(2, "b"), active(4, "c")}}
	// i32.const 2 written in five bytes, the last with bits that do not
	// extend the sign: malformed (wasm-validate: "invalid i32 literal").
	overlong := testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(0, "a"), {memIdx: -1, offset: []byte{0x41, 0x82, 0x80, 0x80, 0x80, 0x70}, init: []byte("b")}}}
	cases := []struct {
		name   string
		module func(t *testing.T) []byte
		reason string
	}{
		{"9 segments declared, 3 present", func(t *testing.T) []byte { return replaceSection(t, three.bytes(), secDataCount, u32(9)) }, "declares 9 segments, the data section has 3"},
		{"a data count with bytes after it", func(t *testing.T) []byte { return replaceSection(t, three.bytes(), secDataCount, []byte{3, 0}) }, "not one u32"},
		{"memory.init of a segment past the count", func(t *testing.T) []byte { return initPast.bytes() }, "may name data segment 3"},
		{"an offset in a malformed LEB128", func(t *testing.T) []byte { return overlong.bytes() }, "bad s32"},
		{"a count in a malformed LEB128", func(t *testing.T) []byte {
			return replaceSection(t, three.bytes(), secDataCount, []byte{0x83, 0x80, 0x80, 0x80, 0x10})
		}, "not one u32"},
		{"the data count after the code", func(t *testing.T) []byte {
			m := three.bytes()
			count := sec(secDataCount, u32(3))
			i := bytes.Index(m, count)
			m = append(m[:i:i], m[i+len(count):]...)
			return append(m, count...)
		}, "out of order"},
		{"two data sections", func(t *testing.T) []byte {
			m := testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(0, "a"), active(2, "b")}}.bytes()
			return append(m, sec(secData, u32(1), []byte{0, 0x41, 8, 0x0b}, u32(1), []byte("c"))...)
		}, "repeated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.module(t)
			if _, err := memoryAfter(t, in, false); err == nil {
				t.Fatal("wazero accepts the original: not a case of an invalid module")
			}
			out, st := mergeDataSegments(in)
			if st.Skipped == "" || !strings.Contains(st.Skipped, tc.reason) {
				t.Fatalf("merged (%+v), want left alone because %q", st, tc.reason)
			}
			if !bytes.Equal(out, in) {
				t.Fatal("a module left alone came back changed")
			}
		})
	}
}

// An empty active segment below every segment with bytes used to index
// the memory image at a negative offset (a panic at deploy, found by
// FuzzMergeDataSegments).
func TestMergeEmptySegmentBelowTheOthers(t *testing.T) {
	in := testModule{minPages: 1, initSeg: -1, segs: []testSeg{active(100, "a"), active(3, ""), active(102, "b")}}.bytes()
	out, st := mergeDataSegments(in)
	if st.Skipped != "" || st.After != 1 {
		t.Fatalf("merge: %+v", st)
	}
	want, werr := memoryAfter(t, in, false)
	got, gerr := memoryAfter(t, out, false)
	if werr != nil || gerr != nil || !bytes.Equal(got, want) {
		t.Fatalf("original: %v; rewritten: %v; same memory: %v", werr, gerr, bytes.Equal(got, want))
	}
}
