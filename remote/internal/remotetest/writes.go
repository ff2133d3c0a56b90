package remotetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"distore/backend"
)

// FailedWrites describes the streamed writes that must fail and leave
// nothing behind in a Remote tier: an Abort after AbortAt bytes, a context
// cancelled after CancelAt bytes, one byte fewer than declared, and a wrong
// checksum. Pick the offsets to cross the tier's stripes or parts.
type FailedWrites struct {
	Data              []byte
	AbortAt, CancelAt int
	// CancelErr is what Close must return after the cancel (errors.Is);
	// nil accepts any error.
	CancelErr error
	// IDPrefix starts the IDs written.
	IDPrefix string
	// Left lists what the tier's store holds besides committed objects
	// (RADOS objects, multipart uploads): it must be empty after each case.
	Left func(t *testing.T) []string
}

// RunFailedWrites runs each failing write as a subtest and checks that the
// object is not visible and nothing is left in the store.
func RunFailedWrites(t *testing.T, tier backend.Backend, f FailedWrites) {
	data := f.Data
	cases := map[string]func(w backend.Writer, cancel context.CancelFunc) error{
		"Abort": func(w backend.Writer, _ context.CancelFunc) error {
			if _, err := w.Write(data[:f.AbortAt]); err != nil {
				return err
			}
			return w.Abort()
		},
		"Cancel": func(w backend.Writer, cancel context.CancelFunc) error {
			if _, err := w.Write(data[:f.CancelAt]); err != nil {
				return err
			}
			cancel()
			err := w.Close()
			if err == nil || (f.CancelErr != nil && !errors.Is(err, f.CancelErr)) {
				return fmt.Errorf("Close after cancel = %v, want %v", err, f.CancelErr)
			}
			return nil
		},
		"TooFew": func(w backend.Writer, _ context.CancelFunc) error {
			if _, err := w.Write(data[:len(data)-1]); err != nil {
				return err
			}
			if err := w.Close(); !errors.Is(err, backend.ErrInvalidArgument) {
				return fmt.Errorf("Close short = %v", err)
			}
			return nil
		},
		"WrongChecksum": func(w backend.Writer, _ context.CancelFunc) error {
			if _, err := w.Write(data); err != nil {
				return err
			}
			if err := w.Close(); !errors.Is(err, backend.ErrCorrupt) {
				return fmt.Errorf("Close with a wrong checksum = %v", err)
			}
			return nil
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := backend.PutOptions{}
			if name == "WrongChecksum" {
				opts.Checksum = 1
			}
			id := backend.ID(f.IDPrefix + name)
			w, err := tier.OpenWriter(ctx, id, int64(len(data)), opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := run(w, cancel); err != nil {
				t.Fatal(err)
			}
			if left := f.Left(t); len(left) != 0 {
				t.Fatalf("left in the store: %v", left)
			}
			if _, err := tier.ObjectInfo(context.Background(), id); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("failed write visible: %v", err)
			}
		})
	}
}
