package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		pos     []string
		reports string
		csv     bool
		err     error
	}{
		{"flags first", []string{"--csv", "--reports", "R", "RUN"}, []string{"RUN"}, "R", true, nil},
		{"flags after", []string{"RUN", "--reports", "R", "--csv"}, []string{"RUN"}, "R", true, nil},
		{"flags between", []string{"a", "--reports=R", "b", "-csv"}, []string{"a", "b"}, "R", true, nil},
		{"a value that looks like a positional", []string{"--reports", "RUN", "x"}, []string{"x"}, "RUN", false, nil},
		{"after --, all positional", []string{"a", "--", "--csv", "-b"}, []string{"a", "--csv", "-b"}, "reports", false, nil},
		{"none", nil, nil, "reports", false, nil},
		{"help", []string{"RUN", "--help"}, nil, "reports", false, flag.ErrHelp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			reports := fs.String("reports", "reports", "")
			csv := fs.Bool("csv", false, "")
			pos, err := parseInterspersed(fs, tt.args)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if !slices.Equal(pos, tt.pos) || *reports != tt.reports || *csv != tt.csv {
				t.Errorf("positional %q, --reports %q, --csv %v; want %q, %q, %v", pos, *reports, *csv, tt.pos, tt.reports, tt.csv)
			}
		})
	}
}

func TestParseNoArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		ok   bool
		msg  string
	}{
		{"flags only", []string{"--n", "3"}, 0, true, ""},
		{"stray argument", []string{"--n", "3", "extra"}, exitUsage, false, `test: unexpected arguments ["extra"]` + "\nUsage of test"},
		{"bad flag", []string{"--m"}, exitUsage, false, "not defined"},
		{"help", []string{"-h"}, exitOK, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(&out)
			fs.Int("n", 0, "")
			code, ok := parseNoArgs(fs, tt.args, &out)
			if code != tt.code || ok != tt.ok || !strings.Contains(out.String(), tt.msg) {
				t.Errorf("code %d, ok %v, output %q; want %d, %v, containing %q", code, ok, out.String(), tt.code, tt.ok, tt.msg)
			}
		})
	}
}
