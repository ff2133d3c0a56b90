package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestQuickstart runs the example and checks that it tells the whole story.
func TestQuickstart(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	main()
	os.Stdout = stdout
	w.Close()
	out := <-done
	for _, want := range []string{"Stored object", "without copying", "Pinned it", "object is pinned", "Unpinned it", "Deleted it", "object not found", "0 objects, 0 B used"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
