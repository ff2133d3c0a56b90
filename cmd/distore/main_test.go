package main

import (
	"bytes"
	"context"
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		o    string
		json bool
	}{
		{[]string{"id1", "-o", "f"}, []string{"id1"}, "f", false},
		{[]string{"-o", "f", "id1", "--json"}, []string{"id1"}, "f", true},
		{[]string{"a", "b", "--", "-c", "--json"}, []string{"a", "b", "-c", "--json"}, "", false},
		{[]string{"-"}, []string{"-"}, "", false},
	} {
		e := &env{}
		fs := e.newFlags("t")
		o := fs.String("o", "", "")
		pos, err := parse(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *o != tc.o || e.json != tc.json {
			t.Errorf("parse(%q) = %q, -o %q, json %v, %v", tc.args, pos, *o, e.json, err)
		}
	}
	fs := (&env{}).newFlags("t")
	if _, err := parse(fs, []string{"x", "--nope"}); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	run1 := func(args ...string) int {
		out.Reset()
		errb.Reset()
		return run(context.Background(), args, strings.NewReader(""), &out, &errb)
	}
	if code := run1(); code != exitUsage || !strings.Contains(errb.String(), "usage:") {
		t.Errorf("no command: %d %q", code, errb.String())
	}
	if code := run1("help"); code != exitOK || !strings.Contains(out.String(), "commands:") {
		t.Errorf("help: %d", code)
	}
	if code := run1("--server", "http://127.0.0.1:1", "stat", "x"); code != exitFailure {
		t.Errorf("unreachable server: %d", code)
	}
	if code := run1("get", "a", "b"); code != exitUsage {
		t.Errorf("two IDs: %d", code)
	}
	if code := run1("--server", "ftp://x", "stats"); code != exitUsage {
		t.Errorf("bad server URL: %d %s", code, errb.String())
	}
	_ = flag.ErrHelp
}
