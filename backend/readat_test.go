package backend

import (
	"errors"
	"io"
	"testing"
)

func TestReadAtBytes(t *testing.T) {
	data := []byte("0123456789")
	for _, tc := range []struct {
		off    int64
		buf    int
		n      int
		want   string
		wantEO bool
	}{
		{0, 10, 10, "0123456789", false},
		{2, 3, 3, "234", false},
		{7, 5, 3, "789", true},
		{10, 1, 0, "", true},
		{99, 1, 0, "", true},
		{3, 0, 0, "", false},
	} {
		p := make([]byte, tc.buf)
		n, err := ReadAtBytes("t", "x", data, p, tc.off)
		if n != tc.n || string(p[:n]) != tc.want || (err == io.EOF) != tc.wantEO || (err != nil && err != io.EOF) {
			t.Errorf("ReadAtBytes(off %d, %d bytes) = %d %q, %v", tc.off, tc.buf, n, p[:n], err)
		}
	}
	var e *Error
	if _, err := ReadAtBytes("t", "x", data, make([]byte, 1), -1); !errors.Is(err, ErrInvalidArgument) ||
		!errors.As(err, &e) || e.Tier != "t" || e.ID != "x" {
		t.Errorf("negative offset: %v", err)
	}
}
