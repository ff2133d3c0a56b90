package httpwire

import (
	"bufio"
	"bytes"
	"testing"
)

func TestWriteField(t *testing.T) {
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	WriteField(bw, "X-A", []string{" one ", "two\r\nX-Evil: 1", "three\n"})
	bw.Flush()
	want := "X-A: one\r\nX-A: two  X-Evil: 1\r\nX-A: three\r\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
