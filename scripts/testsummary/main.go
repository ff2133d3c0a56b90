// Command testsummary reads `go test -json` on stdin (the test2json event
// stream), prints what a plain `go test` prints (package results, and the
// full output of failed tests), and ends with a summary: counts, every
// skipped test with the reason it gave, every failed test. It exits 1 when a
// test or a package failed, or when a test never finished (a crash or a
// timeout), else 0.
//
//	go test -json ./... | go run ./scripts/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Time    time.Time
	Action  string // start, run, pause, cont, pass, bench, fail, output, skip
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// key names a test (Test empty: the package itself).
type key struct{ pkg, test string }

// skip is a skipped test and its reason.
type skip struct {
	key
	reason string
}

// summary accumulates the stream.
type summary struct {
	out                        io.Writer
	output                     map[key]*strings.Builder
	running                    map[key]bool
	passed                     int
	skipped                    []skip
	failed                     []key
	failedPkgs                 []string
	pkgsOK, pkgsFail, pkgsNone int
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, output: map[key]*strings.Builder{}, running: map[key]bool{}}
}

func (s *summary) add(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "run":
		s.running[k] = true
	case "output":
		if e.Test == "" {
			fmt.Fprint(s.out, e.Output) // the package's own lines: "ok  pkg 1.2s", build errors
			return
		}
		b := s.output[k]
		if b == nil {
			b = &strings.Builder{}
			s.output[k] = b
		}
		b.WriteString(e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			switch {
			case e.Action == "fail":
				s.pkgsFail++
				s.failedPkgs = append(s.failedPkgs, e.Package)
			case e.Action == "skip":
				s.pkgsNone++ // no test files
			default:
				s.pkgsOK++
			}
			return
		}
		delete(s.running, k)
		switch e.Action {
		case "pass":
			s.passed++
		case "skip":
			s.skipped = append(s.skipped, skip{k, reason(s.output[k].String())})
		case "fail":
			s.failed = append(s.failed, k)
			if b := s.output[k]; b != nil {
				fmt.Fprint(s.out, b.String())
			}
		}
		delete(s.output, k)
	}
}

// reason is the text a skipped test logged: its output without the
// framework's "=== RUN" and "--- SKIP" lines.
func reason(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") || bareLocation.MatchString(t) {
			continue
		}
		lines = append(lines, t)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " / ")
}

// bareLocation is the line t.Skip() logs with no arguments: "x_test.go:12:".
var bareLocation = regexp.MustCompile(`^\S+\.go:\d+:$`)

// report prints the summary and returns the exit status.
func (s *summary) report() int {
	w := s.out
	// Tests that started and never ended: the package crashed or timed out.
	var unfinished []key
	for k := range s.running {
		unfinished = append(unfinished, k)
	}
	slices.SortFunc(unfinished, func(a, b key) int { return strings.Compare(a.pkg+" "+a.test, b.pkg+" "+b.test) })
	fmt.Fprintf(w, "\n== test summary: %d passed, %d failed, %d skipped; packages: %d ok, %d failed, %d without tests\n",
		s.passed, len(s.failed)+len(unfinished), len(s.skipped), s.pkgsOK, s.pkgsFail, s.pkgsNone)
	if len(s.skipped) > 0 {
		fmt.Fprintf(w, "skipped tests and why:\n")
		for _, sk := range s.skipped {
			fmt.Fprintf(w, "  SKIP %s %s: %s\n", sk.pkg, sk.test, sk.reason)
		}
	}
	for _, k := range s.failed {
		fmt.Fprintf(w, "  FAIL %s %s\n", k.pkg, k.test)
	}
	for _, k := range unfinished {
		fmt.Fprintf(w, "  FAIL %s %s (never finished: crash or timeout)\n", k.pkg, k.test)
	}
	for _, p := range s.failedPkgs {
		fmt.Fprintf(w, "  FAIL package %s\n", p)
	}
	if len(s.failed)+len(unfinished)+s.pkgsFail > 0 {
		return 1
	}
	return 0
}

// run reads the stream from r; lines that are not JSON events (go vet's or
// the build's messages when go test fails early) are printed as they are.
func run(r io.Reader, w io.Writer) int {
	s := newSummary(w)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text())
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "testsummary: reading the stream: %v\n", err)
		s.report()
		return 1
	}
	return s.report()
}

func main() { os.Exit(run(os.Stdin, os.Stdout)) }
