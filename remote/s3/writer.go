package s3

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"distore/backend"
	"distore/remote/internal/remoteobj"
)

// tempDir is where streamed objects whose CRC-32C is not known in advance are
// uploaded before they are copied, with their CRC in the metadata, to their
// key. It starts with '.', which no ID does, so List never shows it.
const tempDir = ".tmp/"

// OpenWriter starts a streamed write. An object up to multipart_threshold
// is buffered and sent by one PutObject at Close. A larger one goes by
// multipart upload, part_size at a time with up to concurrency parts in
// flight, so memory stays at part_size × (concurrency+1). S3 takes metadata when an upload starts: if
// opts.Checksum gives the CRC-32C it goes straight to the object's key,
// otherwise to a temporary key under prefix+".tmp/", and Close copies it
// (server side) to its key with the CRC-32C it computed, then removes the
// temporary object. Close publishes atomically; Abort, a failed part or a
// cancelled context abort the upload.
func (t *Tier) OpenWriter(ctx context.Context, id backend.ID, size int64, opts backend.PutOptions) (backend.Writer, error) {
	const op = "write"
	// A multipart write fails early, before any byte is sent, if the ID is
	// taken; a buffered one learns it from If-None-Match at Close.
	if size > t.opts.Threshold {
		if _, _, err := t.head(ctx, op, id); err == nil {
			return nil, backend.Errorf(op, Name, id, backend.ErrExists, "")
		} else if !errors.Is(err, backend.ErrNotFound) {
			return nil, err
		}
	}
	if err := t.space.Reserve(op, id, size); err != nil {
		return nil, err
	}
	created := remoteobj.Created(opts)
	wctx, cancel := context.WithCancel(ctx)
	w := &writer{Stream: remoteobj.NewStream(&t.space, id, size, opts), t: t, ctx: ctx, wctx: wctx,
		cancel: cancel, opts: opts, created: created, key: t.key(id)}
	if size <= t.opts.Threshold {
		w.buf = make([]byte, 0, size)
		return w, nil
	}
	w.free = make(chan []byte, t.opts.Concurrency+1)
	w.multipart = true
	m := meta(opts.Importance, created, opts.Checksum, opts.Checksum != 0)
	if opts.Checksum == 0 {
		w.final = w.key
		w.key = t.opts.Prefix + tempDir + string(id) + "." + string(backend.NewID())
	}
	up, err := t.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &t.opts.Bucket, Key: &w.key, Metadata: m})
	if err != nil {
		cancel()
		t.space.Unreserve(size)
		return nil, t.wrap(ctx, op, id, err)
	}
	w.uploadID = aws.ToString(up.UploadId)
	return w, nil
}

// writer is OpenWriter's Writer. It is used by one goroutine; its part
// uploads run in goroutines of their own.
type writer struct {
	remoteobj.Stream
	t           *Tier
	ctx         context.Context // the caller's
	wctx        context.Context // cancelled on the first failure
	cancel      context.CancelFunc
	opts        backend.PutOptions
	created     time.Time
	key         string
	buf         []byte
	multipart   bool
	final       string // the object's key when key is a temporary one
	uploadID    string
	free        chan []byte
	allocated   int
	wg          sync.WaitGroup
	mu          sync.Mutex
	parts       []types.CompletedPart
	partErr     error
	nextPartNum int32
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.Over(); err != nil {
		return 0, err
	}
	if err := w.Admit(w.ctx, w.t.closed.Load(), p); err != nil {
		return 0, w.fail(err)
	}
	w.N += int64(len(p))
	if !w.multipart {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			b, err := w.getBuf()
			if err != nil {
				return written, w.fail(err)
			}
			w.buf = b
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		written += k
		if int64(len(w.buf)) == w.t.opts.PartSize {
			w.sendPart()
		}
	}
	return written, nil
}

// getBuf returns a part buffer: a new one while fewer than concurrency+1
// exist, else one given back by a finished upload.
func (w *writer) getBuf() ([]byte, error) {
	if w.allocated <= w.t.opts.Concurrency {
		select {
		case b := <-w.free:
			return b[:0], nil
		default:
		}
		w.allocated++
		return make([]byte, 0, w.t.opts.PartSize), nil
	}
	select {
	case b := <-w.free:
		return b[:0], nil
	case <-w.wctx.Done():
		return nil, w.uploadErr()
	}
}

// uploadErr is the first part's failure, or the context's error.
func (w *writer) uploadErr() error {
	w.mu.Lock()
	err := w.partErr
	w.mu.Unlock()
	if err == nil {
		if err = w.ctx.Err(); err == nil {
			err = context.Canceled
		}
	}
	return w.t.wrap(w.ctx, "write", w.ID, err)
}

// sendPart uploads the current buffer as the next part, in the background.
func (w *writer) sendPart() {
	w.nextPartNum++
	num, part := w.nextPartNum, w.buf
	w.buf = nil
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		out, err := w.t.client.UploadPart(w.wctx, &s3.UploadPartInput{Bucket: &w.t.opts.Bucket,
			Key: &w.key, UploadId: &w.uploadID, PartNumber: aws.Int32(num), Body: bytes.NewReader(part),
			ContentLength: aws.Int64(int64(len(part)))})
		w.mu.Lock()
		if err != nil {
			if w.partErr == nil {
				w.partErr = err
			}
		} else {
			w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		}
		w.mu.Unlock()
		if err != nil {
			w.cancel()
		}
		w.free <- part
	}()
}

// fail discards the write and remembers err for later calls.
func (w *writer) fail(err error) error {
	w.Fail(err)
	w.discard()
	return err
}

// discard stops the uploads, aborts the multipart upload and gives the
// reservation back.
func (w *writer) discard() {
	w.cancel()
	w.wg.Wait()
	if w.uploadID != "" {
		w.t.abort(w.key, w.uploadID)
		w.uploadID = ""
	}
	w.buf = nil
	w.Release()
}

// Close publishes the object if exactly size bytes were written and the
// context is live.
func (w *writer) Close() error {
	err := w.Finish(w.commit, w.discard)
	w.cancel() // idempotent; a failed or aborted write has cancelled already
	return err
}

func (w *writer) commit() error {
	const op = "write"
	t := w.t
	if err := w.ctx.Err(); err != nil {
		return backend.Errorf(op, Name, w.ID, err, "")
	}
	if t.closed.Load() {
		return backend.Errorf(op, Name, w.ID, backend.ErrClosed, "")
	}
	crc, err := w.Verify()
	if err != nil {
		return err
	}
	m := meta(w.opts.Importance, w.created, crc, true)
	if !w.multipart {
		data := w.buf
		return t.commit(w.ctx, op, w.ID, w.Size, false, func(ctx context.Context) error {
			_, err := t.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &t.opts.Bucket, Key: &w.key,
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))), Metadata: m,
				IfNoneMatch: aws.String("*")})
			return err
		})
	}
	if len(w.buf) > 0 {
		w.sendPart()
	}
	w.wg.Wait()
	w.mu.Lock()
	perr := w.partErr
	parts := slices.Clone(w.parts)
	w.mu.Unlock()
	if perr != nil || w.wctx.Err() != nil {
		return w.uploadErr()
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	complete := func(ctx context.Context) error {
		in := &s3.CompleteMultipartUploadInput{Bucket: &t.opts.Bucket, Key: &w.key, UploadId: &w.uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
		if w.final == "" {
			in.IfNoneMatch = aws.String("*")
		}
		_, err := t.client.CompleteMultipartUpload(ctx, in)
		return err
	}
	if w.final == "" {
		if err := t.commit(w.ctx, op, w.ID, w.Size, true, complete); err != nil {
			return err
		}
		w.uploadID = ""
		return nil
	}
	// Complete the temporary object, then copy it to its key with the CRC.
	if err := complete(w.ctx); err != nil {
		return t.wrap(w.ctx, op, w.ID, err)
	}
	w.uploadID = ""
	defer w.removeTemp()
	return t.commit(w.ctx, op, w.ID, w.Size, true, func(ctx context.Context) error {
		_, err := t.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &t.opts.Bucket, Key: &w.final,
			CopySource: aws.String(t.copySource(w.key)), MetadataDirective: types.MetadataDirectiveReplace,
			Metadata: m, IfNoneMatch: aws.String("*")})
		return err
	})
}

// removeTemp deletes the temporary object of a streamed write.
func (w *writer) removeTemp() {
	ctx, cancel := context.WithTimeout(context.Background(), w.t.opts.Timeout)
	defer cancel()
	if _, err := w.t.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &w.t.opts.Bucket, Key: &w.key}); err != nil && !notFound(err) {
		slog.Warn("s3: cannot remove a temporary object", "tier", Name, "id", w.ID, "key", w.key, "err", err)
	}
}

// Abort discards the write; after Close it does nothing.
func (w *writer) Abort() error {
	w.Abandon(w.discard)
	return nil
}
