package backend

import (
	"fmt"
	"syscall"
)

// SpaceError is the ErrFull error of a tier that writes to a local file system
// and refuses a write because the file system's free space would fall under
// the reserve the tier keeps (for its own files' growth, and so that it never
// writes into a full file system). errors.As(err, &se) retrieves it.
type SpaceError struct {
	Op, Tier string
	ID       ID
	// Path is the file system's path the tier writes under (its directory).
	Path string
	// Requested is the bytes the write needs, Free the file system's free
	// bytes (for an unprivileged user), Reserve the bytes the tier keeps free.
	Requested, Free, Reserve int64
}

// Error names the file system, its free bytes and the reserve.
func (e *SpaceError) Error() string {
	s := e.Tier + ": " + e.Op
	if e.ID != "" {
		s += fmt.Sprintf(" %q", string(e.ID))
	}
	return fmt.Sprintf("%s: %v: file system of %s has %s free, need %s more above the %s reserve",
		s, ErrFull, e.Path, FormatBytes(e.Free), FormatBytes(e.Requested), FormatBytes(e.Reserve))
}

// Unwrap returns ErrFull.
func (e *SpaceError) Unwrap() error { return ErrFull }

// FreeSpace returns the bytes free for an unprivileged user on the file system
// that holds path (statfs f_bavail × f_bsize).
func FreeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// CheckSpace returns a *SpaceError when writing n more bytes under path would
// leave less than reserve bytes free on its file system, and nil otherwise. A
// statfs failure is returned as an error wrapping ErrUnavailable.
func CheckSpace(op, tier string, id ID, path string, n, reserve int64) error {
	free, err := FreeSpace(path)
	if err != nil {
		return Errorf(op, tier, id, ErrUnavailable, "statfs %s: %v", path, err)
	}
	if free-n < reserve {
		return &SpaceError{Op: op, Tier: tier, ID: id, Path: path, Requested: n, Free: free, Reserve: reserve}
	}
	return nil
}
