package client

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"distore/backend"
	"distore/wire/localproto"
)

// GetColumnsReader reads the columns (nil: all) and rows (nil: all) of the
// Arrow object id through the local socket (docs/columnar.md). The server
// selects as for HTTP and streams the selection; the Local reads it whole
// before returning (its connection serves one request at a time).
func (l *Local) GetColumnsReader(ctx context.Context, id backend.ID, columns []string, rows *Rows) (*ColumnReader, error) {
	cols, rs := selectionQuery(columns, rows)
	r, err := l.streamReader(ctx, "get columns", id, l.enc.Begin(localproto.OpSelect).Str(string(id)).Str(cols).Str(rs))
	if err != nil {
		return nil, err
	}
	return &ColumnReader{Reader: r, body: io.NopCloser(nil)}, nil
}

// GetColumns is GetColumnsReader read into a table. Release it.
func (l *Local) GetColumns(ctx context.Context, id backend.ID, columns []string, rows *Rows) (arrow.Table, error) {
	r, err := l.GetColumnsReader(ctx, id, columns, rows)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return readTable(r.Reader, id)
}

// Schema returns the schema of the Arrow object id; the server reads no
// column data.
func (l *Local) Schema(ctx context.Context, id backend.ID) (*arrow.Schema, error) {
	r, err := l.streamReader(ctx, "schema", id, l.enc.Begin(localproto.OpSchema).Str(string(id)))
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return r.Schema(), nil
}

// streamReader is stream's reply read as an Arrow IPC stream.
func (l *Local) streamReader(ctx context.Context, op string, id backend.ID, e *localproto.Encoder) (*ipc.Reader, error) {
	stream, err := l.stream(ctx, op, id, e)
	if err != nil {
		return nil, err
	}
	r, err := ipc.NewReader(bytes.NewReader(stream))
	if err != nil {
		return nil, &Error{Op: op, ID: id, Message: err.Error(), err: backend.ErrCorrupt}
	}
	return r, nil
}

// stream sends a request whose reply is streamed (ReplyChunk frames ended by
// ReplyOK) and returns the bytes of the chunks.
func (l *Local) stream(ctx context.Context, op string, id backend.ID, e *localproto.Encoder) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.begin(ctx, op, id); err != nil {
		return nil, err
	}
	d, _, err := l.roundTrip(op, id, false, e)
	var out []byte
	for err == nil && l.kind == localproto.ReplyChunk {
		out = append(out, d.Bytes()...)
		if err = d.Done(); err != nil {
			return nil, l.broken(op, err)
		}
		var kind byte
		var payload []byte
		if kind, payload, l.buf, err = localproto.ReadFrame(l.br, l.buf); err != nil {
			return nil, l.broken(op, err)
		}
		l.kind, d = kind, localproto.NewDecoder(payload)
		if kind == localproto.ReplyError {
			return nil, d.Error(op, id)
		}
	}
	if err != nil {
		return nil, err
	}
	if l.kind != localproto.ReplyOK {
		return nil, l.broken(op, fmt.Errorf("%w: reply kind %d to %s", localproto.ErrProtocol, l.kind, op))
	}
	return out, nil
}
