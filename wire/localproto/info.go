package localproto

import (
	"context"
	"errors"
	"time"

	"distore/backend"
	"distore/levels"
)

// PutInfo appends an object's info: str id, u64 size, u8 level, str tier,
// i64 importance, u32 pins, i64 created and i64 accessed (unix
// nanoseconds), u32 checksum.
func (e *Encoder) PutInfo(info backend.ObjectInfo) *Encoder {
	return e.Str(string(info.ID)).U64(uint64(info.Size)).U8(byte(info.Level)).Str(info.Tier).
		I64(int64(info.Importance)).U32(uint32(max(info.Pins, 0))).I64(unixNano(info.Created)).
		I64(unixNano(info.Accessed)).U32(info.Checksum)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Info reads an object's info written by PutInfo.
func (d *Decoder) Info() backend.ObjectInfo {
	info := backend.ObjectInfo{ID: backend.ID(d.Str())}
	info.Size = int64(d.U64())
	info.Level = levels.Level(d.U8())
	info.Tier = d.Str()
	info.Importance = int(d.I64())
	info.Pins = int(d.U32())
	if ns := d.I64(); ns != 0 {
		info.Created = time.Unix(0, ns)
	}
	if ns := d.I64(); ns != 0 {
		info.Accessed = time.Unix(0, ns)
	}
	info.Checksum = d.U32()
	return info
}

// Error codes of ReplyError: the same words as the HTTP API's codes, so one
// table of sentinels serves both doors.
const (
	CodeInvalidID       = "invalid_id"
	CodeInvalidArgument = "invalid_argument"
	CodeNotFound        = "not_found"
	CodeExists          = "exists"
	CodePinned          = "pinned"
	CodeNotPinned       = "not_pinned"
	CodeTooLarge        = "too_large"
	CodeCorrupt         = "corrupt"
	CodeFull            = "full"
	CodeUnavailable     = "unavailable"
	CodeClosed          = "closed"
	CodeTimeout         = "timeout"
	CodeCanceled        = "canceled"
	CodeProtocol        = "protocol"
	CodeInternal        = "internal"
	// The columnar read's own codes (HTTP 400, 416 and 415), given by WithCode.
	CodeUnknownColumn = "unknown_column"
	CodeBadRange      = "bad_range"
	CodeNotArrow      = "not_arrow"
)

// codedError is an error answered with a code of its own rather than its
// sentinel's.
type codedError struct {
	code string
	error
}

func (e codedError) Unwrap() error { return e.error }

// WithCode returns err answered with code (its sentinel is kept for the
// server's own checks).
func WithCode(code string, err error) error { return codedError{code, err} }

var codes = []struct {
	code string
	err  error
}{
	{CodeInvalidID, backend.ErrInvalidID},
	{CodeNotFound, backend.ErrNotFound},
	{CodeExists, backend.ErrExists},
	{CodePinned, backend.ErrPinned},
	{CodeNotPinned, backend.ErrNotPinned},
	{CodeTooLarge, backend.ErrTooLarge},
	{CodeFull, backend.ErrFull},
	{CodeCorrupt, backend.ErrCorrupt},
	{CodeInvalidArgument, backend.ErrInvalidArgument},
	{CodeUnavailable, backend.ErrUnavailable},
	{CodeClosed, backend.ErrClosed},
	{CodeTimeout, context.DeadlineExceeded},
	{CodeCanceled, context.Canceled},
	{CodeProtocol, ErrProtocol},
	// Answered through WithCode only (Code finds invalid_argument first).
	{CodeUnknownColumn, backend.ErrInvalidArgument},
	{CodeBadRange, backend.ErrInvalidArgument},
	{CodeNotArrow, backend.ErrInvalidArgument},
}

// Code returns the error code for err (CodeInternal if it wraps no sentinel).
func Code(err error) string {
	var ce codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// Sentinel returns the sentinel error a code stands for, nil if none.
func Sentinel(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}

// PutError appends a ReplyError's fields for err.
func (e *Encoder) PutError(err error) *Encoder {
	var fe *backend.FullError
	var req, free, capacity, pinned int64
	if errors.As(err, &fe) {
		req, free, capacity, pinned = fe.Requested, fe.Free, fe.Capacity, fe.Pinned
	}
	return e.Str(Code(err)).Str(err.Error()).U64(uint64(req)).U64(uint64(free)).U64(uint64(capacity)).U64(uint64(pinned))
}

// RemoteError is an error the server answered. It wraps the sentinel of its
// code, and for full/too_large a *backend.FullError with the sizes.
type RemoteError struct {
	Op, Code, Message string
	ID                backend.ID
	err               error
}

func (e *RemoteError) Error() string {
	return "distore local socket: " + e.Op + ": " + e.Message + " (" + e.Code + ")"
}

// Unwrap returns the sentinel (or FullError) of the code.
func (e *RemoteError) Unwrap() error { return e.err }

// Error reads a ReplyError's fields as a *RemoteError for op on id.
func (d *Decoder) Error(op string, id backend.ID) error {
	code, msg := d.Str(), d.Str()
	req, free, capacity, pinned := int64(d.U64()), int64(d.U64()), int64(d.U64()), int64(d.U64())
	if err := d.Err(); err != nil {
		return err
	}
	re := &RemoteError{Op: op, Code: code, Message: msg, ID: id, err: Sentinel(code)}
	if code == CodeFull || code == CodeTooLarge {
		fe := backend.NewFullError(op, "server", id, req, free, capacity, pinned)
		fe.TooLarge = code == CodeTooLarge
		re.err = fe
	}
	if re.err == nil {
		re.err = errors.New(code)
	}
	return re
}
