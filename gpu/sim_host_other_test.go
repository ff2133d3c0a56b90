//go:build !linux

package gpu

// hostMap returns n bytes of Go memory where the simulator cannot map memory
// of its own; a use after free then goes unseen.
func hostMap(n int) ([]byte, error) { return make([]byte, n), nil }

func hostUnmap(b []byte) error {
	clear(b)
	return nil
}
