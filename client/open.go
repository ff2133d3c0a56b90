package client

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"distore/backend"
)

// Store is what both of the server's doors offer a Go program: the HTTP
// Client and the local socket's Local.
type Store interface {
	Put(ctx context.Context, data []byte, opts PutOptions) (backend.ObjectInfo, error)
	// Get returns a copy of the object's bytes.
	Get(ctx context.Context, id backend.ID) ([]byte, error)
	// GetObject returns the object, to Close: zero-copy over the local socket.
	GetObject(ctx context.Context, id backend.ID) (backend.Object, error)
	Info(ctx context.Context, id backend.ID) (backend.ObjectInfo, error)
	Delete(ctx context.Context, id backend.ID) error
	Pin(ctx context.Context, id backend.ID) error
	Unpin(ctx context.Context, id backend.ID) error
	Prefetch(ctx context.Context, id backend.ID) error
	// GetColumns reads columns (nil: all) and rows (nil: all) of an Arrow
	// object; Schema its schema alone (docs/columnar.md).
	GetColumns(ctx context.Context, id backend.ID, columns []string, rows *Rows) (arrow.Table, error)
	Schema(ctx context.Context, id backend.ID) (*arrow.Schema, error)
	Close()
}

var (
	_ Store = (*Client)(nil)
	_ Store = (*Local)(nil)
)

// Open returns a client of the server at addr: the local socket for
// "unix:///path", HTTP for "http://host:port".
func Open(ctx context.Context, addr string, opts ...Option) (Store, error) {
	if strings.HasPrefix(addr, "unix://") {
		return DialLocal(ctx, addr)
	}
	return New(addr, opts...)
}

// GetObject returns the object's bytes (a copy: over HTTP nothing is shared)
// with the metadata of exactly those bytes.
func (c *Client) GetObject(ctx context.Context, id backend.ID) (backend.Object, error) {
	r, err := c.getReader(ctx, id, 0, -1, true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data := make([]byte, r.Size())
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("distore client: get %q: %w", string(id), err)
	}
	return backend.NewBytesObject(r.Info(), data, nil), nil
}
