package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"distore/backend"
	"distore/remote/s3"
)

var (
	s3Total  = flag.String("s3.total", "512MiB", "s3 suite: bytes written and read per object size, way and round")
	s3Rounds = flag.Int("s3.rounds", 2, "s3 suite: rounds (the ways take turns in each round)")
)

func init() {
	register("s3", "S3 tier (radosgw) vs the plain SDK (one PutObject / GetObject): 1 MiB and 64 MiB objects, GB/s and ratios", runS3)
}

// remoteWay is one way of writing and reading objects in the remote suites.
type remoteWay struct {
	name  string
	put   func(ctx context.Context, key string, data []byte) error
	get   func(ctx context.Context, key string, buf []byte) error
	clean func(ctx context.Context, key string) error
}

func runS3(ctx context.Context, r *report) error {
	ep := os.Getenv("DISTORE_S3_ENDPOINT")
	if ep == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		return fmt.Errorf("%w: DISTORE_S3_ENDPOINT / AWS_ACCESS_KEY_ID not set (run scripts/ceph-up.sh DIR; source DIR/env.sh)", errSkip)
	}
	bucket := os.Getenv("DISTORE_S3_BUCKET")
	if bucket == "" {
		bucket = "distore-test"
	}
	prefix := "bench-" + string(backend.NewID()[:8]) + "/"
	cfg := backend.Config{"endpoint": ep, "bucket": bucket, "create_bucket": "true", "prefix": prefix + "tier/"}
	b, err := backend.Open(ctx, "s3", cfg)
	if err != nil {
		return err
	}
	defer b.Teardown(context.Background())
	tier := backend.Unwrap(b).(*s3.Tier)
	// The plain SDK uses a client made the same way (same transport, retryer,
	// SDK checksums off), so the ratio is the tier's own cost.
	o, _ := s3.ParseConfig(cfg)
	client, err := s3.NewClient(ctx, o)
	if err != nil {
		return err
	}
	r.note("endpoint %s bucket %s; tier: part_size %s, concurrency %d", ep, bucket,
		backend.FormatBytes(o.PartSize), o.Concurrency)
	ways := []remoteWay{
		{"sdk", func(ctx context.Context, key string, data []byte) error {
			_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String(prefix + key),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data)))})
			return err
		}, func(ctx context.Context, key string, buf []byte) error {
			out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String(prefix + key)})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.ReadFull(out.Body, buf)
			return err
		}, func(ctx context.Context, key string) error {
			_, err := client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(prefix + key)})
			return err
		}},
		{"sdk+meta+if-none-match", func(ctx context.Context, key string, data []byte) error {
			_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String(prefix + key),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
				IfNoneMatch: aws.String("*"), Metadata: map[string]string{"distore-importance": "0",
					"distore-created": time.Now().UTC().Format(time.RFC3339Nano), "distore-crc32c": "00000000"}})
			return err
		}, nil, nil},
		tierWays(tier, "tier")[0],
		tierWays(tier, "tier stream")[1],
	}
	// The put with the tier's semantics (metadata, refuse an existing key)
	// reads and deletes like the plain way.
	ways[1].get, ways[1].clean = ways[0].get, ways[0].clean
	return runRemote(ctx, r, ways, *s3Total, *s3Rounds)
}

// tierWays returns the Put/Get way and the OpenWriter/OpenReader way of b.
func tierWays(b backend.Backend, name string) []remoteWay {
	del := func(ctx context.Context, key string) error { return b.Delete(ctx, backend.ID(key)) }
	return []remoteWay{
		{name, func(ctx context.Context, key string, data []byte) error {
			_, err := b.Put(ctx, backend.ID(key), data, backend.PutOptions{})
			return err
		}, func(ctx context.Context, key string, buf []byte) error {
			obj, err := b.Get(ctx, backend.ID(key))
			if err != nil {
				return err
			}
			defer obj.Close()
			if len(obj.Bytes()) != len(buf) {
				return fmt.Errorf("got %d bytes, want %d", len(obj.Bytes()), len(buf))
			}
			return nil
		}, del},
		{name, func(ctx context.Context, key string, data []byte) error {
			w, err := b.OpenWriter(ctx, backend.ID(key), int64(len(data)), backend.PutOptions{})
			if err != nil {
				return err
			}
			for off := 0; off < len(data); off += 1 << 20 {
				if _, err := w.Write(data[off:min(off+1<<20, len(data))]); err != nil {
					_ = w.Abort()
					return err
				}
			}
			return w.Close()
		}, func(ctx context.Context, key string, buf []byte) error {
			rd, err := b.OpenReader(ctx, backend.ID(key), 0, -1)
			if err != nil {
				return err
			}
			defer rd.Close()
			_, err = io.ReadFull(rd, buf)
			return err
		}, del},
	}
}

// runRemote writes then reads total bytes of 1 MiB and of 64 MiB objects,
// one at a time, each way in turn for rounds rounds, and prints GB/s and the
// ratio of each way to the first (the plain calls).
func runRemote(ctx context.Context, r *report, ways []remoteWay, totalStr string, rounds int) error {
	total, err := backend.ParseBytes(totalStr)
	if err != nil {
		return fmt.Errorf("total %q: %v", totalStr, err)
	}
	src := make([]byte, 64<<20)
	_, _ = rand.Read(src)
	buf := make([]byte, 64<<20)
	r.table("object", "way", "write GB/s", "read GB/s", "write/plain", "read/plain")
	for _, size := range []int64{1 << 20, 64 << 20} {
		n := max(total/size, 1)
		wd := make([]time.Duration, len(ways))
		rd := make([]time.Duration, len(ways))
		// The ways take turns object by object, so a change in the machine's
		// load (other processes) hits them alike.
		for round := range rounds {
			keys := make([][]string, len(ways))
			for i := range n {
				off := (i * size) % int64(len(src))
				for wi, w := range ways {
					if err := ctx.Err(); err != nil {
						return err
					}
					key := fmt.Sprintf("b-%d-%d-%d-%d", size, round, wi, i)
					keys[wi] = append(keys[wi], key)
					start := time.Now()
					if err := w.put(ctx, key, src[off:off+size]); err != nil {
						return fmt.Errorf("%s put %s: %w", w.name, sizeName(size), err)
					}
					wd[wi] += time.Since(start)
				}
			}
			for i := range n {
				for wi, w := range ways {
					start := time.Now()
					if err := w.get(ctx, keys[wi][i], buf[:size]); err != nil {
						return fmt.Errorf("%s get %s: %w", w.name, sizeName(size), err)
					}
					rd[wi] += time.Since(start)
				}
			}
			for wi, w := range ways {
				for _, k := range keys[wi] {
					if err := w.clean(ctx, k); err != nil {
						return fmt.Errorf("%s delete: %w", w.name, err)
					}
				}
			}
		}
		bytes := n * size * int64(rounds)
		for wi, w := range ways {
			r.row(sizeName(size), w.name, gbps(bytes, wd[wi]), gbps(bytes, rd[wi]),
				ratio(gbps(bytes, wd[wi]), gbps(bytes, wd[0])), ratio(gbps(bytes, rd[wi]), gbps(bytes, rd[0])))
		}
	}
	r.note("%s per size, way and round, %d rounds, objects one at a time, the ways taking turns object by object; ratios > 1: faster than the plain calls", backend.FormatBytes(total), rounds)
	return nil
}
