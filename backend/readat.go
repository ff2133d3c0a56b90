package backend

import "io"

// ReadAtBytes is io.ReaderAt over data, for Objects whose bytes are in
// memory: it copies data[off:] into p and returns io.EOF when p is not
// filled. A negative offset is ErrInvalidArgument naming tier and id.
func ReadAtBytes(tier string, id ID, data, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, Errorf("read", tier, id, ErrInvalidArgument, "negative offset %d", off)
	}
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
