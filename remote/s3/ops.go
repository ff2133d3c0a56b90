package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"distore/backend"
	"distore/levels"
)

// head returns the object's metadata from a HeadObject.
func (t *Tier) head(ctx context.Context, op string, id backend.ID) (backend.ObjectInfo, bool, error) {
	out, err := t.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &t.opts.Bucket, Key: aws.String(t.key(id))})
	if err != nil {
		return backend.ObjectInfo{}, false, t.wrap(ctx, op, id, err)
	}
	info, hasCRC := t.info(id, aws.ToInt64(out.ContentLength), out.LastModified, out.Metadata)
	return info, hasCRC, nil
}

// commit publishes an object with publish, which sends If-None-Match: * so
// that the server refuses (412) a key that exists. radosgw (Pacific) honours
// it on PutObject but ignores it on CompleteMultipartUpload and CopyObject:
// for those (check set) commit first checks with a HeadObject. The ID's lock
// makes writers and deleters in this process race correctly; across
// processes a multipart commit has a window of one round trip.
func (t *Tier) commit(ctx context.Context, op string, id backend.ID, size int64, check bool, publish func(context.Context) error) error {
	unlock := t.idLocks.Lock(id)
	defer unlock()
	if check {
		if _, _, err := t.head(ctx, op, id); err == nil {
			return backend.Errorf(op, Name, id, backend.ErrExists, "")
		} else if !errors.Is(err, backend.ErrNotFound) {
			return err
		}
	}
	if err := publish(ctx); err != nil {
		return t.wrap(ctx, op, id, err)
	}
	t.space.Added(size)
	return nil
}

// Put stores data: in one PutObject up to multipart_threshold, else by a multipart
// upload whose parts are slices of data (no copy), concurrency at a time.
func (t *Tier) Put(ctx context.Context, id backend.ID, data []byte, opts backend.PutOptions) (backend.ObjectInfo, error) {
	const op = "put"
	size := int64(len(data))
	crc, created, release, err := t.space.StartPut(op, id, data, opts)
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	defer release()
	m := meta(opts.Importance, created, crc, true)
	key := t.key(id)
	if size <= t.opts.Threshold {
		err = t.commit(ctx, op, id, size, false, func(ctx context.Context) error {
			_, err := t.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &t.opts.Bucket, Key: &key, Body: bytes.NewReader(data),
				ContentLength: aws.Int64(size), Metadata: m, IfNoneMatch: aws.String("*")})
			return err
		})
	} else {
		err = t.putMultipart(ctx, op, id, key, data, m)
	}
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	return backend.ObjectInfo{ID: id, Size: size, Level: levels.Remote, Tier: Name,
		Importance: opts.Importance, Created: created, Accessed: created, Checksum: crc}, nil
}

// putMultipart uploads data in parts, concurrency at a time, and completes it.
func (t *Tier) putMultipart(ctx context.Context, op string, id backend.ID, key string, data []byte, m map[string]string) error {
	up, err := t.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &t.opts.Bucket, Key: &key, Metadata: m})
	if err != nil {
		return t.wrap(ctx, op, id, err)
	}
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nparts := (int64(len(data)) + t.opts.PartSize - 1) / t.opts.PartSize
	parts := make([]types.CompletedPart, nparts)
	sem := make(chan struct{}, t.opts.Concurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for i := range nparts {
		sem <- struct{}{}
		if uctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			part := data[i*t.opts.PartSize : min(int64(len(data)), (i+1)*t.opts.PartSize)]
			out, err := t.client.UploadPart(uctx, &s3.UploadPartInput{Bucket: &t.opts.Bucket, Key: &key,
				UploadId: up.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part),
				ContentLength: aws.Int64(int64(len(part)))})
			if err != nil {
				once.Do(func() { firstErr = err; cancel() })
				return
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr == nil {
		firstErr = t.commit(ctx, op, id, int64(len(data)), true, func(ctx context.Context) error {
			_, err := t.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
				Bucket: &t.opts.Bucket, Key: &key, UploadId: up.UploadId, IfNoneMatch: aws.String("*"),
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			return err
		})
	}
	if firstErr != nil {
		t.abort(key, aws.ToString(up.UploadId))
		return t.wrap(ctx, op, id, firstErr)
	}
	return nil
}

// Get reads the whole object into memory and checks its CRC-32C.
func (t *Tier) Get(ctx context.Context, id backend.ID) (backend.Object, error) {
	const op = "get"
	out, err := t.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &t.opts.Bucket, Key: aws.String(t.key(id))})
	if err != nil {
		return nil, t.wrap(ctx, op, id, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	info, hasCRC := t.info(id, size, out.LastModified, out.Metadata)
	buf := make([]byte, size)
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, t.wrap(ctx, op, id, fmt.Errorf("reading %d bytes: %w", size, err))
	}
	crc := backend.Checksum(buf)
	if hasCRC && crc != info.Checksum {
		return nil, backend.Errorf(op, Name, id, backend.ErrCorrupt,
			"bytes read have CRC-32C %08x, metadata says %08x", crc, info.Checksum)
	}
	info.Checksum = crc
	return backend.NewBytesObject(info, buf, nil), nil
}

// ObjectInfo returns the object's metadata from a HeadObject.
func (t *Tier) ObjectInfo(ctx context.Context, id backend.ID) (backend.ObjectInfo, error) {
	const op = "info"
	info, _, err := t.head(ctx, op, id)
	return info, err
}

// OpenReader streams a range with a ranged GetObject; a whole-object read is
// checked against the stored CRC-32C at its end.
func (t *Tier) OpenReader(ctx context.Context, id backend.ID, offset, length int64) (backend.Reader, error) {
	const op = "read"
	info, hasCRC, err := t.head(ctx, op, id)
	if err != nil {
		return nil, err
	}
	n, err := backend.CheckRange(op, Name, id, offset, length, info.Size)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return backend.NewReader(io.NopCloser(bytes.NewReader(nil)), info), nil
	}
	in := &s3.GetObjectInput{Bucket: &t.opts.Bucket, Key: aws.String(t.key(id))}
	whole := offset == 0 && n == info.Size
	if !whole {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+n-1))
	}
	out, err := t.client.GetObject(ctx, in)
	if err != nil {
		return nil, t.wrap(ctx, op, id, err)
	}
	r := &reader{t: t, ctx: ctx, id: id, info: info, body: out.Body, left: n}
	if whole && hasCRC {
		r.crc, r.check = info.Checksum, true
		r.sum = backend.NewChecksum()
	}
	return r, nil
}

// reader is OpenReader's stream.
type reader struct {
	t     *Tier
	ctx   context.Context
	id    backend.ID
	info  backend.ObjectInfo
	body  io.ReadCloser
	left  int64
	check bool
	crc   uint32
	sum   interface {
		io.Writer
		Sum32() uint32
	}
}

// Info is the metadata of the object read, from the HEAD before the GET.
func (r *reader) Info() backend.ObjectInfo { return r.info }

func (r *reader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.body.Read(p)
	r.left -= int64(n)
	if r.check {
		r.sum.Write(p[:n])
	}
	if r.left == 0 {
		if r.check && r.sum.Sum32() != r.crc {
			return n, backend.Errorf("read", Name, r.id, backend.ErrCorrupt,
				"bytes read have CRC-32C %08x, metadata says %08x", r.sum.Sum32(), r.crc)
		}
		return n, io.EOF
	}
	if err == io.EOF {
		return n, r.t.wrap(r.ctx, "read", r.id, fmt.Errorf("%w: %d bytes missing", io.ErrUnexpectedEOF, r.left))
	}
	if err != nil {
		return n, r.t.wrap(r.ctx, "read", r.id, err)
	}
	return n, nil
}

func (r *reader) Close() error { return r.body.Close() }

// Delete removes the object unless it is pinned.
func (t *Tier) Delete(ctx context.Context, id backend.ID) error {
	const op = "delete"
	unlock := t.idLocks.Lock(id)
	defer unlock()
	info, _, err := t.head(ctx, op, id)
	if err != nil {
		return err
	}
	if _, err := t.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &t.opts.Bucket, Key: aws.String(t.key(id))}); err != nil {
		return t.wrap(ctx, op, id, err)
	}
	t.space.Removed(info.Size)
	return nil
}

// List lists the prefix with ListObjectsV2 (StartAfter for paging) and reads
// each object's metadata with concurrent HeadObjects.
func (t *Tier) List(ctx context.Context, opts backend.ListOptions) ([]backend.ObjectInfo, error) {
	const op = "list"
	limit := opts.Limit
	if limit <= 0 {
		limit = backend.DefaultListLimit
	}
	in := &s3.ListObjectsV2Input{Bucket: &t.opts.Bucket, Prefix: aws.String(t.opts.Prefix + opts.Prefix),
		MaxKeys: aws.Int32(int32(min(limit, 1000)))}
	if opts.After != "" {
		in.StartAfter = aws.String(t.key(opts.After))
	}
	var ids []backend.ID
	var sizes []int64
	p := s3.NewListObjectsV2Paginator(t.client, in)
	for p.HasMorePages() && len(ids) < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, t.wrap(ctx, op, "", err)
		}
		for _, o := range page.Contents {
			if id, ok := t.idOf(aws.ToString(o.Key)); ok && len(ids) < limit {
				ids = append(ids, id)
				sizes = append(sizes, aws.ToInt64(o.Size))
			}
		}
	}
	infos := make([]backend.ObjectInfo, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 2*t.opts.Concurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			info, _, err := t.head(ctx, op, id)
			switch {
			case err == nil:
				infos[i], found[i] = info, true
			case !errors.Is(err, backend.ErrNotFound): // deleted meanwhile: leave it out
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := infos[:0]
	for i := range infos {
		if found[i] {
			out = append(out, infos[i])
		}
	}
	return slices.Clip(out), nil
}

// Prefetch checks that the object exists: the Remote tier is the slowest
// place, there is nowhere faster to bring it within this tier.
func (t *Tier) Prefetch(ctx context.Context, id backend.ID) error {
	const op = "prefetch"
	_, _, err := t.head(ctx, op, id)
	return err
}

// Stats reports the counters; Capacity is 0 when the tier is unbounded.
func (t *Tier) Stats(ctx context.Context) (backend.Stats, error) {
	return t.space.Stats(levels.Remote), nil
}

// copySource is the x-amz-copy-source of a key in the tier's bucket.
func (t *Tier) copySource(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return url.PathEscape(t.opts.Bucket) + "/" + strings.Join(segs, "/")
}

// notFound reports whether err is a 404 from S3.
func notFound(err error) bool { return httpStatus(err) == http.StatusNotFound }
