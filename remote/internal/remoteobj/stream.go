package remoteobj

import (
	"context"
	"hash"
	"sync/atomic"

	"distore/backend"
)

// Stream is the state of a streamed write of a declared size that does not
// depend on the store: how many bytes came, their CRC-32C, whether it is
// over, its first failure and its capacity reservation. A tier's writer
// embeds it; like the writer it is used by one goroutine.
type Stream struct {
	Tier string
	ID   backend.ID
	// Size is the declared size; N counts the bytes taken so far (the tier
	// advances it as it buffers them).
	Size, N int64
	// Want is the CRC-32C the caller expects (PutOptions.Checksum), 0 if none.
	Want uint32
	// Done is set by Close or Abort; Failed is the write's first failure.
	Done   bool
	Failed error

	sum      hash.Hash32
	space    *Space
	released atomic.Bool
}

// NewStream starts the accounting of a write of size bytes of id whose
// reservation, already taken from space, Release gives back.
func NewStream(space *Space, id backend.ID, size int64, opts backend.PutOptions) Stream {
	return Stream{Tier: space.Tier, ID: id, Size: size, Want: opts.Checksum, sum: backend.NewChecksum(), space: space}
}

// Over returns the error of a Write after Close or Abort, or after the write
// failed; nil while the write is open.
func (s *Stream) Over() error {
	if s.Done {
		return backend.Errorf("write", s.Tier, s.ID, backend.ErrInvalidArgument, "write after Close or Abort")
	}
	return s.Failed
}

// Admit checks that p may be written now: ctx is live, the tier is not
// closed and p fits in the declared size. Then it adds p to the CRC-32C (not
// to N). Its error fails the write.
func (s *Stream) Admit(ctx context.Context, closed bool, p []byte) error {
	const op = "write"
	if err := ctx.Err(); err != nil {
		return backend.Errorf(op, s.Tier, s.ID, err, "")
	}
	if closed {
		return backend.Errorf(op, s.Tier, s.ID, backend.ErrClosed, "")
	}
	if int64(len(p)) > s.Size-s.N {
		return backend.Errorf(op, s.Tier, s.ID, backend.ErrInvalidArgument,
			"writing %d bytes after %d overflows the declared size %d", len(p), s.N, s.Size)
	}
	s.sum.Write(p)
	return nil
}

// Fail records err as the write's failure if it is the first.
func (s *Stream) Fail(err error) {
	if s.Failed == nil {
		s.Failed = err
	}
}

// Verify returns the CRC-32C of the bytes written once all Size of them
// came, or an error: ErrInvalidArgument for a short write, ErrCorrupt when
// Want is set and differs.
func (s *Stream) Verify() (uint32, error) {
	const op = "write"
	if s.N != s.Size {
		return 0, backend.Errorf(op, s.Tier, s.ID, backend.ErrInvalidArgument,
			"%d bytes written of the declared %d", s.N, s.Size)
	}
	crc := s.sum.Sum32()
	if s.Want != 0 && s.Want != crc {
		return crc, backend.Errorf(op, s.Tier, s.ID, backend.ErrCorrupt,
			"bytes written have CRC-32C %08x, caller expects %08x", crc, s.Want)
	}
	return crc, nil
}

// Finish is Close's protocol: after Close, Abort or a failure it returns
// the failure (nil after a successful Close); else it runs commit and gives
// the reservation back, or, if commit fails, records the failure and runs
// discard.
func (s *Stream) Finish(commit func() error, discard func()) error {
	if s.Done {
		return s.Failed
	}
	s.Done = true
	if s.Failed != nil {
		return s.Failed
	}
	if err := commit(); err != nil {
		s.Failed = err
		discard()
		return err
	}
	s.Release()
	return nil
}

// Abandon is Abort's protocol: after Close or Abort it does nothing; else
// it marks the write over and, unless it failed already (and so was
// discarded), records an "aborted" failure and runs discard.
func (s *Stream) Abandon(discard func()) {
	if s.Done {
		return
	}
	s.Done = true
	if s.Failed == nil {
		s.Failed = backend.Errorf("write", s.Tier, s.ID, backend.ErrInvalidArgument, "write aborted")
		discard()
	}
}

// Release gives the write's capacity reservation back, once.
func (s *Stream) Release() {
	if s.released.CompareAndSwap(false, true) {
		s.space.Unreserve(s.Size)
	}
}
