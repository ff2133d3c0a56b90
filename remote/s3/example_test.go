package s3_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"distore/backend"
	_ "distore/remote/s3"
)

// Open the S3 tier on radosgw (the endpoint and credentials of
// scripts/ceph-up.sh's env.sh), store an object, read it whole and in part.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "s3", backend.Config{
		"endpoint":      os.Getenv("DISTORE_S3_ENDPOINT"), // http://127.0.0.1:7480
		"bucket":        "distore-example",
		"create_bucket": "true",
		"prefix":        "node1/",
		// access_key / secret_key, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
	})
	if err != nil {
		log.Fatal(err) // wraps backend.ErrUnavailable, names the endpoint and why
	}
	defer b.Teardown(ctx)

	if _, err := b.Put(ctx, "greeting", []byte("hello, remote tier"), backend.PutOptions{Importance: 1}); err != nil {
		log.Fatal(err)
	}
	obj, err := b.Get(ctx, "greeting") // checked against its CRC-32C
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(obj.Bytes()))
	obj.Close()

	r, err := b.OpenReader(ctx, "greeting", 7, 6) // a ranged GET
	if err != nil {
		log.Fatal(err)
	}
	part, _ := io.ReadAll(r)
	r.Close()
	fmt.Println(string(part))
	_ = b.Delete(ctx, "greeting")
}

// Stream a large object: a multipart upload in constant memory, published
// only by Close.
func Example_stream() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "s3", backend.Config{"endpoint": os.Getenv("DISTORE_S3_ENDPOINT"),
		"bucket": "distore-example", "create_bucket": "true", "part_size": "16MiB", "concurrency": "4"})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Teardown(ctx)
	src := strings.NewReader(strings.Repeat("x", 100<<20))
	w, err := b.OpenWriter(ctx, "big", src.Size(), backend.PutOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(w, src); err != nil {
		w.Abort() // aborts the multipart upload
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}
