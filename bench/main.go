// Command bench compares distore's tiers, stack and server with baselines
// measured in the same run (memcpy, raw file I/O, plain Badger, the plain S3
// SDK and rados calls, net/http, Redis) and prints the figures and the ratios.
//
//	go run ./bench                 # every suite that can run here
//	go run ./bench -suite memory   # one suite (see -list)
//
// Suites register themselves from their own files; a suite that needs a
// service that is not configured says so and is skipped.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// suite is one benchmark: it prints its own tables through the report.
type suite struct {
	name string
	doc  string
	run  func(ctx context.Context, r *report) error
}

var suites []suite

// register adds a suite; files call it from init.
func register(name, doc string, run func(ctx context.Context, r *report) error) {
	suites = append(suites, suite{name, doc, run})
}

// errSkip, wrapped, means the suite cannot run here (no service, no GPU).
var errSkip = fmt.Errorf("skipped")

func main() { os.Exit(benchMain()) }

// benchMain runs the benchmarks and returns the exit code (a function of its
// own so that deferred work, the profile, is done before the exit).
func benchMain() int {
	only := flag.String("suite", "", "comma-separated suites to run (default: all)")
	list := flag.Bool("list", false, "list the suites and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	flag.Parse()
	if rawTCPHelper() {
		return 0
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpuprofile:", err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	slices.SortFunc(suites, func(a, b suite) int { return strings.Compare(a.name, b.name) })
	if *list {
		for _, s := range suites {
			fmt.Printf("%-10s %s\n", s.name, s.doc)
		}
		return 0
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	// SIGTERM too (timeout(1) sends it), so that suites clean up what they made.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := false
	seen := map[string]bool{}
	for _, s := range suites {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		seen[s.name] = true
		fmt.Printf("\n== %s: %s\n", s.name, s.doc)
		start := time.Now()
		r := &report{}
		err := s.run(ctx, r)
		r.flush()
		switch {
		case err == nil:
			fmt.Printf("(%s in %.1fs)\n", s.name, time.Since(start).Seconds())
		case strings.Contains(err.Error(), errSkip.Error()):
			fmt.Printf("(%s %v)\n", s.name, err)
		default:
			fmt.Printf("(%s FAILED: %v)\n", s.name, err)
			failed = true
		}
	}
	for n := range want {
		if seen[n] {
			continue
		}
		hint := "see -list"
		if n == "ceph" {
			hint = "the ceph suite needs cgo and librados: go run -tags ceph ./bench -suite ceph"
		}
		fmt.Fprintf(os.Stderr, "unknown suite %q (%s)\n", n, hint)
		failed = true
	}
	if failed {
		return 1
	}
	return 0
}

// report collects rows and prints them as an aligned table.
type report struct {
	header []string
	rows   [][]string
}

// table starts a new table with the given column names.
func (r *report) table(cols ...string) {
	r.flush()
	r.header = cols
}

// row adds a row; values are formatted with %v, floats with 3 significant digits.
func (r *report) row(vals ...any) {
	cells := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case float64:
			cells[i] = fmt.Sprintf("%.3g", x)
		default:
			cells[i] = fmt.Sprint(v)
		}
	}
	r.rows = append(r.rows, cells)
}

// note prints a line under the current table.
func (r *report) note(format string, args ...any) {
	r.flush()
	fmt.Printf(format+"\n", args...)
}

func (r *report) flush() {
	if r.header == nil && len(r.rows) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	if r.header != nil {
		fmt.Fprintln(w, strings.Join(r.header, "\t")+"\t")
	}
	for _, row := range r.rows {
		fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
	}
	w.Flush()
	r.header, r.rows = nil, nil
}

// rate is bytes per second in GB/s (10^9).
// touched returns n bytes with every page written once, so that first-touch
// page faults happen here and not inside a timed phase.
func touched(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

func gbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds() / 1e9
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// sizeName renders a byte size as "4KiB", "1MiB", "64MiB".
func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
