package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSummary runs `go test -json` on a small package made here, with a
// passing, a skipping, a failing and a crashing test, and reads the summary.
func TestSummary(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module sample\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "s_test.go"), []byte(`package sample

import (
	"os"
	"testing"
)

func TestPass(t *testing.T) {}
func TestSkip(t *testing.T) { t.Skip("no GPU: libcuda.so.1 not found") }
func TestFail(t *testing.T) { t.Log("detail of the failure"); t.Fail() }
func TestSub(t *testing.T) {
	t.Run("inner", func(t *testing.T) { t.Skipf("needs %s", "etcd") })
}
func TestCrash(t *testing.T) {
	if os.Getenv("CRASH") != "" {
		os.Exit(3)
	}
}
`), 0o644)
	stream := func(env ...string) []byte {
		// -race as scripts/test.sh runs the tests: the standard library's
		// race build is then in the cache, where a plain one would be compiled
		// for this sample alone.
		cmd := exec.Command("go", "test", "-race", "-json", "-count=1", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.Output() // fails: TestFail
		return out
	}
	var w bytes.Buffer
	if code := run(bytes.NewReader(stream()), &w); code != 1 {
		t.Errorf("exit %d with a failed test, want 1", code)
	}
	out := w.String()
	for _, want := range []string{
		"== test summary: 3 passed, 1 failed, 2 skipped",
		"SKIP sample TestSkip: s_test.go:9: no GPU: libcuda.so.1 not found",
		"SKIP sample TestSub/inner: s_test.go:12: needs etcd",
		"FAIL sample TestFail",
		"detail of the failure", // a failed test's output is shown
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "=== RUN   TestPass") {
		t.Errorf("a passing test's output is shown:\n%s", out)
	}

	// A process that dies mid-test: the test never finished.
	w.Reset()
	if code := run(bytes.NewReader(stream("CRASH=1")), &w); code != 1 || !strings.Contains(w.String(), "never finished") &&
		!strings.Contains(w.String(), "FAIL package sample") {
		t.Errorf("crash: exit %d\n%s", code, w.String())
	}

	// All passing: exit 0, skips still listed.
	w.Reset()
	os.WriteFile(filepath.Join(dir, "s_test.go"), []byte("package sample\nimport \"testing\"\nfunc TestA(t *testing.T) {}\nfunc TestB(t *testing.T) { t.Skip() }\n"), 0o644)
	if code := run(bytes.NewReader(stream()), &w); code != 0 || !strings.Contains(w.String(), "SKIP sample TestB: (no reason given)") {
		t.Errorf("passing run: exit %d\n%s", code, w.String())
	}
	// Not JSON (go vet's complaints before the tests): printed as is.
	w.Reset()
	if code := run(strings.NewReader("# sample\nvet: bad\n"), &w); code != 0 || !strings.Contains(w.String(), "vet: bad") {
		t.Errorf("plain lines: %d %q", code, w.String())
	}
}
