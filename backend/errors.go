package backend

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error a Backend returns wraps one of them; test with
// errors.Is.
var (
	ErrNotFound        = errors.New("object not found")
	ErrExists          = errors.New("object already exists")
	ErrFull            = errors.New("tier full")
	ErrTooLarge        = errors.New("object larger than the tier's capacity")
	ErrPinned          = errors.New("object is pinned")
	ErrNotPinned       = errors.New("object is not pinned")
	ErrInvalidID       = errors.New("invalid object ID")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrUnavailable     = errors.New("tier unavailable")
	ErrCorrupt         = errors.New("object corrupt (checksum mismatch)")
	ErrClosed          = errors.New("tier closed")
)

// Error is the error a Backend returns: what was being done, on which tier and
// object, which sentinel it is, and a detail for people.
type Error struct {
	Op     string // "put", "get", ...
	Tier   string // the tier's name
	ID     ID     // the object, if the operation has one
	Err    error  // the sentinel (or a cause wrapping it)
	Detail string // what was wrong, for people; may be empty
}

// Error formats as `tier: op "id": sentinel: detail`.
func (e *Error) Error() string {
	s := e.Tier + ": " + e.Op
	if e.ID != "" {
		s += fmt.Sprintf(" %q", string(e.ID))
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel, so errors.Is(err, ErrNotFound) works.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for op on tier and id, wrapping err (a sentinel or a
// cause that wraps one), with a detail formatted from format and args.
func Errorf(op, tier string, id ID, err error, format string, args ...any) error {
	d := ""
	if format != "" {
		d = fmt.Sprintf(format, args...)
	}
	return &Error{Op: op, Tier: tier, ID: id, Err: err, Detail: d}
}

// FullError is the ErrFull (or ErrTooLarge) error with the sizes involved, so
// callers can say what blocks a write. errors.As(err, &fe) retrieves it.
type FullError struct {
	Op, Tier string
	ID       ID
	// Requested is the object's size; Free the bytes free in the tier;
	// Capacity the tier's capacity; Pinned the bytes held by pinned objects.
	Requested, Free, Capacity, Pinned int64
	// TooLarge is set when the object can never fit (Requested > Capacity).
	TooLarge bool
}

// NewFullError returns a *FullError; TooLarge is derived from the sizes.
func NewFullError(op, tier string, id ID, requested, free, capacity, pinned int64) *FullError {
	return &FullError{Op: op, Tier: tier, ID: id, Requested: requested, Free: free,
		Capacity: capacity, Pinned: pinned, TooLarge: requested > capacity}
}

// Error says what was asked and what is free.
func (e *FullError) Error() string {
	return fmt.Sprintf("%s: %s %q: %v: need %s, %s free of %s, %s pinned",
		e.Tier, e.Op, string(e.ID), e.Unwrap(), FormatBytes(e.Requested), FormatBytes(e.Free),
		FormatBytes(e.Capacity), FormatBytes(e.Pinned))
}

// Unwrap returns ErrTooLarge or ErrFull.
func (e *FullError) Unwrap() error {
	if e.TooLarge {
		return ErrTooLarge
	}
	return ErrFull
}

// FormatBytes renders n bytes with a binary unit ("1.5 MiB", "512 B").
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for (f >= unit || f <= -unit) && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}
