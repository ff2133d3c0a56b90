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

// TestTokenByte: RFC 9110's tchar, byte by byte: letters, digits and
// !#$%&'*+-.^_`|~ only.
func TestTokenByte(t *testing.T) {
	n := 0
	for c := range 256 {
		if TokenByte(byte(c)) {
			n++
		}
	}
	if n != 26+26+10+15 {
		t.Errorf("%d token bytes, want 77", n)
	}
	for _, c := range []byte("azAZ09!#$%&'*+-.^_`|~") {
		if !TokenByte(c) {
			t.Errorf("%q is a tchar", c)
		}
	}
	for _, c := range []byte{' ', '\t', ':', '"', '(', ')', ',', '/', ';', '<', '=', '>', '?', '@', '[', '\\', ']', '{', '}', 0, 0x7f, 0x80, 0xff} {
		if TokenByte(c) {
			t.Errorf("%q is not a tchar", c)
		}
	}
}
