// Package s3 is distore's Remote tier on S3 (any S3 implementation: AWS, Ceph
// radosgw, MinIO), built on aws-sdk-go-v2. It registers itself as "s3":
//
//	import _ "distore/remote/s3"
//	b, err := backend.Open(ctx, "s3", backend.Config{
//		"endpoint": "http://127.0.0.1:7480", "bucket": "distore", "path_style": "true"})
//
// Each object is one S3 object under the key prefix+ID. Its importance,
// creation time and CRC-32C travel in the object's user metadata, and every
// whole-object read is checked against that CRC (ErrCorrupt on a mismatch).
// Large objects are written by multipart upload, part by part, in memory
// bounded by max(multipart_threshold, part_size × (concurrency+1)); a write that fails or is cancelled
// aborts its upload, so nothing half-written is ever visible or billed.
//
// Options (backend.Config):
//
//	endpoint       S3 endpoint URL; empty: the SDK's default (AWS)
//	region         default $AWS_REGION, else us-east-1
//	bucket         required
//	prefix         key prefix inside the bucket ("" by default; e.g. "node1/")
//	path_style     true for path-style addressing (radosgw, MinIO); default true when endpoint is set
//	access_key, secret_key   static credentials; else the SDK's default chain (AWS_* env, ~/.aws, IAM)
//	create_bucket  create the bucket in Setup if it does not exist (default false)
//	part_size      multipart part size (default 16MiB, at least 5MiB)
//	multipart_threshold  objects up to this size go in one PutObject (default 64MiB; a stream
//	               up to it is buffered, which costs no more than the multipart buffers)
//	concurrency    parts in flight per write or read (default 4)
//	capacity       optional byte limit (default: unbounded)
//	max_attempts   attempts per request, retrying throttling, 5xx and network errors with backoff (default 4)
//	max_backoff    longest wait between attempts (default 2s)
//	timeout        bound on Setup's checks and on waiting for a response's headers (default 10s)
//
// Pins are in-process counters kept by the tier's wrapper (backend.Wrap).
// Stats counts the prefix's objects at Setup and then follows this process's
// writes and deletes.
package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"distore/backend"
	"distore/levels"
	"distore/remote/internal/remoteobj"
)

// Name is the name the tier registers under and uses in its errors.
const Name = "s3"

func init() { backend.MustRegister(Name, New) }

// Metadata keys (x-amz-meta-*) that carry an object's distore metadata.
const (
	metaImportance = "distore-importance"
	metaCreated    = "distore-created"
	metaCRC        = "distore-crc32c"
)

// minPartSize is S3's smallest part except the last.
const minPartSize = 5 << 20

var knownKeys = []string{"endpoint", "region", "bucket", "prefix", "path_style", "access_key",
	"secret_key", "create_bucket", "part_size", "multipart_threshold", "concurrency", "capacity", "max_attempts",
	"max_backoff", "timeout"}

// Options are the tier's parsed configuration.
type Options struct {
	Endpoint, Region, Bucket, Prefix string
	PathStyle                        bool
	AccessKey, SecretKey             string
	CreateBucket                     bool
	PartSize, Threshold              int64
	Concurrency                      int
	Capacity                         int64 // 0: unbounded
	MaxAttempts                      int
	MaxBackoff, Timeout              time.Duration
}

// ParseConfig validates cfg and returns the tier's options; the error
// lists every bad option at once.
func ParseConfig(cfg backend.Config) (Options, error) {
	r := cfg.Reader(Name, knownKeys...)
	o := Options{
		Endpoint:  r.String("endpoint", ""),
		Region:    r.String("region", ""),
		Bucket:    r.String("bucket", ""),
		Prefix:    r.String("prefix", ""),
		AccessKey: r.String("access_key", ""),
		SecretKey: r.String("secret_key", ""),
	}
	o.PathStyle = r.Bool("path_style", o.Endpoint != "")
	o.CreateBucket = r.Bool("create_bucket", false)
	o.PartSize = r.Bytes("part_size", 16<<20)
	o.Threshold = r.Bytes("multipart_threshold", 64<<20)
	o.Concurrency = r.Int("concurrency", 4)
	o.Capacity = r.Bytes("capacity", 0)
	o.MaxAttempts = r.Int("max_attempts", 4)
	o.MaxBackoff = r.Duration("max_backoff", 2*time.Second)
	o.Timeout = r.Duration("timeout", 10*time.Second)
	r.Require(o.Bucket != "", "option bucket is required")
	r.Require(o.PartSize >= minPartSize && o.PartSize <= 5<<30, "part_size %d must be between 5MiB and 5GiB (S3's part limits)", o.PartSize)
	r.Require(o.Threshold >= 0 && o.Threshold <= 5<<30, "multipart_threshold %d must be between 0 and 5GiB (S3's PutObject limit)", o.Threshold)
	r.Require(o.Concurrency >= 1 && o.Concurrency <= 256, "concurrency %d must be between 1 and 256", o.Concurrency)
	r.Require(o.MaxAttempts >= 1 && o.MaxAttempts <= 20, "max_attempts %d must be between 1 and 20", o.MaxAttempts)
	r.Require(o.MaxBackoff > 0 && o.Timeout > 0, "max_backoff and timeout must be positive")
	r.Require((o.AccessKey == "") == (o.SecretKey == ""), "access_key and secret_key go together")
	r.Require(!strings.HasPrefix(o.Prefix, "/"), "prefix %q must not start with /", o.Prefix)
	if err := r.Err(); err != nil {
		return o, err
	}
	if o.Region == "" {
		o.Region = os.Getenv("AWS_REGION")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	return o, nil
}

// Tier is the S3 Remote tier. Make it with New (or backend.New("s3", cfg)).
type Tier struct {
	opts   Options
	client *s3.Client

	closed atomic.Bool // Teardown started: writers stop

	// space counts the prefix's objects and the capacity held by writes in
	// flight.
	space remoteobj.Space

	// idLocks serialise commit and delete of one ID in this process.
	idLocks backend.IDLocks

	// Pins are counted by the wrapper (backend.Wrap).
	backend.PinsInWrapper

	// pending are multipart uploads whose abort failed (the endpoint was
	// down); a background loop retries them.
	pendingMu sync.Mutex
	pending   map[string]pendingAbort
	bgCancel  context.CancelFunc
	bgDone    chan struct{}
}

type pendingAbort struct {
	key, uploadID string
	since         time.Time
}

// New makes an S3 tier from cfg without contacting the endpoint.
func New(cfg backend.Config) (backend.Backend, error) {
	o, err := ParseConfig(cfg)
	if err != nil {
		return nil, err
	}
	// Wrapped: the ID, context and lifecycle checks, and the pins, are
	// backend.Wrap's.
	return backend.Wrap(Name, &Tier{opts: o, space: remoteobj.Space{Tier: Name, Capacity: o.Capacity},
		pending: map[string]pendingAbort{}}), nil
}

// Options returns the tier's configuration.
func (t *Tier) Options() Options { return t.opts }

// Client returns the tier's S3 client (nil before Setup), for tools and tests.
func (t *Tier) Client() *s3.Client { return t.client }

// where names the endpoint and bucket in errors.
func (t *Tier) where() string {
	ep := t.opts.Endpoint
	if ep == "" {
		ep = "AWS S3 (" + t.opts.Region + ")"
	}
	return fmt.Sprintf("endpoint %s bucket %q", ep, t.opts.Bucket)
}

// NewClient makes an S3 client for o: one HTTP transport sized for o.Concurrency,
// a bounded retryer, and the SDK's own checksums off (distore checks CRC-32C
// end to end, and older radosgw releases reject the SDK's trailing checksums).
func NewClient(ctx context.Context, o Options) (*s3.Client, error) {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 4*o.Concurrency + 16
		tr.ResponseHeaderTimeout = max(o.Timeout, 30*time.Second)
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = o.Timeout })
	lo := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(o.Region),
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.MaxAttempts
				so.MaxBackoff = o.MaxBackoff
			})
		}),
	}
	if o.AccessKey != "" {
		lo = append(lo, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.AccessKey, o.SecretKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// Setup makes the client, checks that the bucket is there and reachable with
// these credentials (creating it if create_bucket is set), and counts the
// objects under the prefix. Every failure wraps ErrUnavailable and names the
// endpoint, the bucket and the cause; it comes within the timeout option.
func (t *Tier) Setup(ctx context.Context) error {
	if t.closed.Load() {
		return backend.Errorf("setup", Name, "", backend.ErrClosed, "")
	}
	fail := func(err error, what string) error {
		return backend.Errorf("setup", Name, "", fmt.Errorf("%w: %w", backend.ErrUnavailable, err),
			"%s: %s", t.where(), what)
	}
	sctx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
	defer cancel()
	client, err := NewClient(sctx, t.opts)
	if err != nil {
		return fail(err, "cannot configure the S3 client")
	}
	t.client = client
	// Two attempts at most: Setup says quickly that the endpoint is wrong.
	two := func(o *s3.Options) { o.RetryMaxAttempts = 2 }
	_, err = client.HeadBucket(sctx, &s3.HeadBucketInput{Bucket: &t.opts.Bucket}, two)
	if err != nil && httpStatus(err) == http.StatusNotFound && t.opts.CreateBucket {
		_, err = client.CreateBucket(sctx, &s3.CreateBucketInput{Bucket: &t.opts.Bucket}, two)
		if code := apiCode(err); code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			err = nil
		}
	}
	if err != nil {
		return fail(err, setupCause(err))
	}
	if err := t.count(sctx); err != nil {
		return fail(err, "cannot list the objects under prefix "+strconv.Quote(t.opts.Prefix))
	}
	bg, bgCancel := context.WithCancel(context.Background())
	t.bgCancel, t.bgDone = bgCancel, make(chan struct{})
	go t.retryAborts(bg)
	return nil
}

// setupCause says in words why Setup's check failed.
func setupCause(err error) string {
	switch st := httpStatus(err); {
	case st == http.StatusNotFound:
		return "the bucket does not exist (set create_bucket=true to create it)"
	case st == http.StatusForbidden || st == http.StatusUnauthorized:
		return "access denied: wrong credentials, or no right to the bucket"
	case st == http.StatusMovedPermanently || st == http.StatusBadRequest:
		return "wrong region or addressing style for this bucket"
	case st >= 500:
		return fmt.Sprintf("the endpoint answers %d", st)
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within the timeout"
	case st == 0:
		return "the endpoint cannot be reached"
	}
	return "HeadBucket failed"
}

// count sets the usage counters from a listing of the prefix.
func (t *Tier) count(ctx context.Context) error {
	var used, n int64
	p := s3.NewListObjectsV2Paginator(t.client, &s3.ListObjectsV2Input{
		Bucket: &t.opts.Bucket, Prefix: aws.String(t.opts.Prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, ok := t.idOf(aws.ToString(o.Key)); ok {
				used += aws.ToInt64(o.Size)
				n++
			}
		}
	}
	t.space.Used.Store(used)
	t.space.Objects.Store(n)
	return nil
}

// Teardown stops the background abort retries (trying the pending ones once
// more) and closes the tier. Objects already returned stay valid.
func (t *Tier) Teardown(ctx context.Context) error {
	if t.closed.Swap(true) {
		return backend.Errorf("teardown", Name, "", backend.ErrClosed, "")
	}
	if t.bgCancel != nil {
		t.bgCancel()
		<-t.bgDone
		actx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
		defer cancel()
		if n := t.abortPending(actx); n > 0 {
			slog.Warn("s3: multipart uploads left unaborted at teardown; a bucket lifecycle rule will remove them",
				"tier", Name, "where", t.where(), "uploads", n)
		}
	}
	return nil
}

// Level is Remote.
func (t *Tier) Level() levels.Level { return levels.Remote }

// key is the object's S3 key.
func (t *Tier) key(id backend.ID) string { return t.opts.Prefix + string(id) }

// idOf returns the ID of a key under the prefix, if it is one.
func (t *Tier) idOf(key string) (backend.ID, bool) {
	rest, ok := strings.CutPrefix(key, t.opts.Prefix)
	if !ok || backend.ID(rest).Validate() != nil {
		return "", false
	}
	return backend.ID(rest), true
}

// wrap turns an SDK error into the tier's error: ErrNotFound for 404,
// ErrExists for a failed If-None-Match, the context's error if it ended,
// ErrUnavailable for everything else (network, 5xx, access).
func (t *Tier) wrap(ctx context.Context, op string, id backend.ID, err error) error {
	var be *backend.Error
	if errors.As(err, &be) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return backend.Errorf(op, Name, id, fmt.Errorf("%w (%w)", cerr, err), "")
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	case http.StatusPreconditionFailed:
		return backend.Errorf(op, Name, id, backend.ErrExists, "")
	}
	return backend.Errorf(op, Name, id, fmt.Errorf("%w: %w", backend.ErrUnavailable, err), "%s", t.where())
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// meta encodes an object's distore metadata.
func meta(importance int, created time.Time, crc uint32, withCRC bool) map[string]string {
	m := map[string]string{
		metaImportance: strconv.Itoa(importance),
		metaCreated:    created.UTC().Format(time.RFC3339Nano),
	}
	if withCRC {
		m[metaCRC] = fmt.Sprintf("%08x", crc)
	}
	return m
}

// info decodes an object's metadata. hasCRC is false for objects written by
// other tools, which carry none.
func (t *Tier) info(id backend.ID, size int64, lastModified *time.Time, m map[string]string) (info backend.ObjectInfo, hasCRC bool) {
	info = backend.ObjectInfo{ID: id, Size: size, Level: levels.Remote, Tier: Name}
	if lastModified != nil {
		info.Created, info.Accessed = *lastModified, *lastModified
	}
	get := func(k string) (string, bool) {
		for mk, v := range m { // the SDK may keep the server's capitalisation
			if strings.EqualFold(mk, k) {
				return v, true
			}
		}
		return "", false
	}
	if v, ok := get(metaImportance); ok {
		info.Importance, _ = strconv.Atoi(v)
	}
	if v, ok := get(metaCreated); ok {
		if c, err := time.Parse(time.RFC3339Nano, v); err == nil {
			info.Created = c
		}
	}
	if v, ok := get(metaCRC); ok {
		if c, err := strconv.ParseUint(v, 16, 32); err == nil {
			info.Checksum, hasCRC = uint32(c), true
		}
	}
	return info, hasCRC
}

// retryAborts retries failed multipart aborts every second until they succeed
// or are an hour old (a bucket lifecycle rule is the backstop beyond that).
func (t *Tier) retryAborts(ctx context.Context) {
	defer close(t.bgDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			actx, cancel := context.WithTimeout(ctx, t.opts.Timeout)
			t.abortPending(actx)
			cancel()
		}
	}
}

// abortPending tries each pending abort once and returns how many are left.
func (t *Tier) abortPending(ctx context.Context) int {
	t.pendingMu.Lock()
	list := make([]pendingAbort, 0, len(t.pending))
	for _, p := range t.pending {
		list = append(list, p)
	}
	t.pendingMu.Unlock()
	left := 0
	for _, p := range list {
		err := t.abortUpload(ctx, p.key, p.uploadID)
		if err != nil && time.Since(p.since) < time.Hour {
			left++
			continue
		}
		t.pendingMu.Lock()
		delete(t.pending, p.uploadID)
		t.pendingMu.Unlock()
	}
	return left
}

// abortUpload aborts a multipart upload; an upload already gone is not an error.
func (t *Tier) abortUpload(ctx context.Context, key, uploadID string) error {
	_, err := t.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &t.opts.Bucket, Key: &key, UploadId: &uploadID})
	if err != nil && (httpStatus(err) == http.StatusNotFound || apiCode(err) == "NoSuchUpload") {
		return nil
	}
	return err
}

// abort aborts an upload with a context of its own (the caller's may be
// cancelled); if the endpoint is down the background loop tries again.
func (t *Tier) abort(key, uploadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
	defer cancel()
	// One attempt: a dead endpoint must not hold up the failing write.
	if _, err := t.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &t.opts.Bucket, Key: &key, UploadId: &uploadID},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 }); err == nil ||
		httpStatus(err) == http.StatusNotFound || apiCode(err) == "NoSuchUpload" {
		return
	}
	t.pendingMu.Lock()
	t.pending[uploadID] = pendingAbort{key: key, uploadID: uploadID, since: time.Now()}
	t.pendingMu.Unlock()
}

// PendingAborts returns how many failed multipart uploads still wait to be
// aborted (their endpoint was unreachable when the write failed).
func (t *Tier) PendingAborts() int {
	t.pendingMu.Lock()
	defer t.pendingMu.Unlock()
	return len(t.pending)
}
