package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"distore/backend"
	"distore/backend/backendtest"
	"distore/remote/internal/remotetest"
	"distore/remote/s3"
)

// The tests use the cluster of scripts/ceph-up.sh, through the variables of
// DIR/env.sh: DISTORE_S3_ENDPOINT, DISTORE_S3_BUCKET, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY (and DISTORE_CEPH_DIR for the radosgw restart test).
func endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("DISTORE_S3_ENDPOINT")
	if ep == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		why := "no S3 endpoint: run scripts/ceph-up.sh DIR and source DIR/env.sh " +
			"(DISTORE_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return ep
}

func bucket() string {
	if b := os.Getenv("DISTORE_S3_BUCKET"); b != "" {
		return b
	}
	return "distore-test"
}

// config is a tier config on the test cluster with a fresh prefix.
func config(t testing.TB, extra ...string) backend.Config {
	cfg := backend.Config{"endpoint": endpoint(t), "bucket": bucket(), "create_bucket": "true",
		"prefix":    fmt.Sprintf("%s-%s/", strings.ReplaceAll(t.Name(), "/", "_"), backend.NewID()[:8]),
		"part_size": "5MiB"}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	return cfg
}

// open sets up a tier and removes its objects (and uploads) at the end.
// open returns the tier as users get it: wrapped (backend.Wrap checks the
// contract and counts the pins); raw reaches the *s3.Tier under it.
func open(t testing.TB, cfg backend.Config) backend.Backend {
	t.Helper()
	b, err := backend.Open(context.Background(), "s3", cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, prefix := raw(b).Client(), cfg["prefix"]
	t.Cleanup(func() { cleanPrefix(t, client, cfg["bucket"], prefix) })
	return b
}

func raw(b backend.Backend) *s3.Tier { return backend.Unwrap(b).(*s3.Tier) }

func cleanPrefix(t testing.TB, c *awss3.Client, bucket, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		for _, o := range page.Contents {
			_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: o.Key})
		}
	}
}

// uploads lists the multipart uploads in progress under prefix.
func uploads(t testing.TB, c *awss3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := c.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{
		Bucket: &bucket, Prefix: &prefix})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

func TestConformance(t *testing.T) {
	endpoint(t)
	// A low threshold: the suite's 64 MiB objects go by multipart upload.
	backendtest.Run(t, backendtest.Factory{Unbounded: true,
		New: func(t testing.TB, _ int64) backend.Backend { return open(t, config(t, "multipart_threshold", "8MiB")) },
		Make: func(t testing.TB, _ int64) backend.Backend {
			b, err := backend.New("s3", config(t))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}})
}

func TestCapacity(t *testing.T) {
	tier := open(t, config(t, "capacity", "1MiB"))
	ctx := context.Background()
	if _, err := tier.Put(ctx, "a", make([]byte, 600<<10), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := tier.Put(ctx, "b", make([]byte, 600<<10), backend.PutOptions{})
	var fe *backend.FullError
	if !errors.Is(err, backend.ErrFull) || !errors.As(err, &fe) || fe.Requested != 600<<10 {
		t.Fatalf("Put over capacity = %v, want a FullError for 600 KiB", err)
	}
	_, err = tier.OpenWriter(ctx, "c", 2<<20, backend.PutOptions{})
	if !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("OpenWriter larger than the capacity = %v, want ErrTooLarge", err)
	}
	st, _ := tier.Stats(ctx)
	if st.Capacity != 1<<20 || st.Used != 600<<10 || st.Objects != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// A stats count at Setup sees what an earlier tier on the same prefix wrote.
func TestReopenCounts(t *testing.T) {
	cfg := config(t)
	a := open(t, cfg)
	ctx := context.Background()
	for i := range 3 {
		if _, err := a.Put(ctx, backend.ID(fmt.Sprint("r", i)), make([]byte, 1000), backend.PutOptions{Importance: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	b := open(t, cfg)
	st, _ := b.Stats(ctx)
	if st.Objects != 3 || st.Used != 3000 {
		t.Fatalf("Stats after reopen = %+v, want 3 objects, 3000 bytes", st)
	}
	// A second tier (another process) cannot overwrite an ID either.
	if _, err := b.Put(ctx, "r1", []byte("x"), backend.PutOptions{}); !errors.Is(err, backend.ErrExists) {
		t.Fatalf("Put of an existing ID from a second tier = %v, want ErrExists", err)
	}
}

// Corruption in the store (here: an object rewritten behind the tier's back
// with the metadata of another) is caught on read.
func TestCorruptDetected(t *testing.T) {
	cfg := config(t)
	tier := open(t, cfg)
	ctx := context.Background()
	if _, err := tier.Put(ctx, "obj", []byte("hello world"), backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	key := cfg["prefix"] + "obj"
	head, err := raw(tier).Client().HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(cfg["bucket"]), Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw(tier).Client().PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(cfg["bucket"]), Key: &key,
		Body: strings.NewReader("hello wOrld"), Metadata: head.Metadata}); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Get(ctx, "obj"); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("Get of a corrupted object = %v, want ErrCorrupt", err)
	}
	r, err := tier.OpenReader(ctx, "obj", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("reading a corrupted object = %v, want ErrCorrupt", err)
	}
}

// Failed, aborted and cancelled multipart writes leave no upload behind.
func TestMultipartAbortLeavesNothing(t *testing.T) {
	cfg := config(t, "concurrency", "2", "multipart_threshold", "5MiB")
	tier := open(t, cfg)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: 4 parts of 5 MiB
	remotetest.RunFailedWrites(t, tier, remotetest.FailedWrites{
		Data: data, AbortAt: 12 << 20, CancelAt: 11 << 20,
		IDPrefix: "mp-", Left: func(t *testing.T) []string { return uploads(t, raw(tier).Client(), cfg["bucket"], cfg["prefix"]) },
	})
	// And a streamed write that succeeds leaves no temporary object.
	if err := writeAll(ctx, tier, "mp-ok", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	out, err := raw(tier).Client().ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(cfg["bucket"]), Prefix: aws.String(cfg["prefix"])})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != cfg["prefix"]+"mp-ok" {
		t.Fatalf("objects under the prefix after one streamed write: %v, %v", out.Contents, err)
	}
}

func writeAll(ctx context.Context, b backend.Backend, id backend.ID, r io.Reader, size int64) error {
	w, err := b.OpenWriter(ctx, id, size, backend.PutOptions{})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		_ = w.Abort()
		return err
	}
	return w.Close()
}

// Setup fails at once, with ErrUnavailable naming the endpoint and the cause.
func TestSetupFailures(t *testing.T) {
	ep := endpoint(t)
	cases := []struct {
		name  string
		cfg   backend.Config
		cause string
	}{
		{"WrongCredentials", backend.Config{"endpoint": ep, "bucket": bucket(), "create_bucket": "true",
			"access_key": "NOSUCHKEY", "secret_key": "nosuchsecret"}, "access denied"},
		{"UnknownBucket", backend.Config{"endpoint": ep, "bucket": "no-such-bucket-" + strings.ToLower(string(backend.NewID()[:8]))}, "does not exist"},
		{"Unreachable", backend.Config{"endpoint": "http://127.0.0.1:1", "bucket": bucket()}, "cannot be reached"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			b, err := backend.Open(context.Background(), "s3", c.cfg)
			if err == nil {
				_ = b.Teardown(context.Background())
				t.Fatal("Setup succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Setup took %v to fail", d)
			}
			if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), c.cfg["endpoint"]) ||
				!strings.Contains(err.Error(), c.cause) {
				t.Fatalf("Setup error %q: want ErrUnavailable naming %s and %q", err, c.cfg["endpoint"], c.cause)
			}
		})
	}
}

// radosgw stops in the middle of a 256 MiB write: the write fails in bounded
// time, nothing is visible, and once radosgw is back the tier works again and
// the upload is aborted.
func TestRadosgwRestartMidWrite(t *testing.T) {
	cfg := config(t, "part_size", "8MiB", "max_attempts", "3", "max_backoff", "500ms")
	// 256 MiB is above the multipart threshold: a multipart upload.
	dir := os.Getenv("DISTORE_CEPH_DIR")
	if dir == "" {
		t.Skip("DISTORE_CEPH_DIR is not set: this test stops and restarts the radosgw of scripts/ceph-up.sh")
	}
	if testing.Short() {
		t.Skip("-short: skips the radosgw restart")
	}
	scripts, _ := filepath.Abs("../../scripts")
	tier := open(t, cfg)
	ctx := context.Background()
	const size = 256 << 20
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		out, err := exec.Command(filepath.Join(scripts, "ceph-up.sh"), dir).CombinedOutput()
		if err != nil {
			t.Fatalf("ceph-up.sh (restart radosgw): %v\n%s", err, out)
		}
	}
	t.Cleanup(restart) // never leave the cluster without radosgw

	w, err := tier.OpenWriter(ctx, "big", size, backend.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stopped := make(chan error, 1)
	src := &remotetest.Patterned{}
	buf := make([]byte, 1<<20)
	start := time.Now()
	var werr error
	var stopAt time.Time
	for written := 0; written < size; written += len(buf) {
		if written >= 64<<20 {
			once.Do(func() {
				stopAt = time.Now()
				go func() {
					out, err := exec.Command(filepath.Join(scripts, "ceph-down.sh"), dir, "rgw").CombinedOutput()
					if err != nil {
						err = fmt.Errorf("%v: %s", err, out)
					}
					stopped <- err
				}()
			})
		}
		src.Read(buf)
		if _, werr = w.Write(buf); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = w.Close()
	} else {
		_ = w.Abort()
	}
	failedAfter, sinceStop := time.Since(start), time.Since(stopAt)
	if err := <-stopped; err != nil {
		t.Fatalf("ceph-down.sh rgw: %v", err)
	}
	if werr == nil {
		t.Fatal("the write succeeded although radosgw stopped in its middle")
	}
	if sinceStop > 30*time.Second {
		t.Errorf("the write took %v to fail after radosgw was told to stop", sinceStop)
	}
	t.Logf("write failed %v after it started, %v after radosgw was told to stop: %v", failedAfter, sinceStop, werr)
	t.Logf("aborts pending while radosgw is down: %d", raw(tier).PendingAborts())

	rs := time.Now()
	restart()
	t.Logf("radosgw restarted in %v", time.Since(rs))
	// The tier works again, with the same client.
	data := bytes.Repeat([]byte("after"), 1000)
	if _, err := tier.Put(ctx, "after", data, backend.PutOptions{}); err != nil {
		t.Fatalf("Put after radosgw restart: %v", err)
	}
	obj, err := tier.Get(ctx, "after")
	if err != nil || !bytes.Equal(obj.Bytes(), data) {
		t.Fatalf("Get after radosgw restart: %v", err)
	}
	obj.Close()
	// Nothing of the failed write is visible, and its upload is aborted
	// (by the tier's background retry) within a bounded time.
	if _, err := tier.ObjectInfo(ctx, "big"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the failed write is visible: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := uploads(t, raw(tier).Client(), cfg["bucket"], cfg["prefix"])
		if len(left) == 0 && raw(tier).PendingAborts() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("multipart uploads left 30 s after radosgw came back: %v (pending %d)", left, raw(tier).PendingAborts())
		}
		time.Sleep(200 * time.Millisecond)
	}
	list, err := tier.List(ctx, backend.ListOptions{})
	if err != nil || len(list) != 1 || list[0].ID != "after" {
		t.Fatalf("List after the failed write = %v, %v", list, err)
	}
}

func BenchmarkTier(b *testing.B) {
	endpoint(b)
	backendtest.Bench(b, backendtest.Factory{Unbounded: true,
		New: func(t testing.TB, _ int64) backend.Backend { return open(t, config(t, "part_size", "16MiB")) }})
}

// A 128 MiB object streams through OpenWriter and OpenReader in memory
// bounded by the parts in flight, not by the object's size.
func TestStreamConstantMemory(t *testing.T) {
	tier := open(t, config(t, "part_size", "5MiB", "concurrency", "2", "multipart_threshold", "5MiB"))
	remotetest.StreamConstantMemory(t, tier, 128<<20, 40<<20)
}
