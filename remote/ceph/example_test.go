//go:build ceph

package ceph_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"distore/backend"
	_ "distore/remote/ceph"
)

// Open the RADOS tier on the cluster of scripts/ceph-up.sh (CEPH_CONF and
// DISTORE_CEPH_POOL from its env.sh), store an object and read it back.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, "ceph", backend.Config{
		"conf":      os.Getenv("CEPH_CONF"),
		"pool":      os.Getenv("DISTORE_CEPH_POOL"),
		"namespace": "example",
	})
	if err != nil {
		log.Fatal(err) // wraps backend.ErrUnavailable, names the conf, the pool and why
	}
	defer b.Teardown(ctx)
	if _, err := b.Put(ctx, "greeting", []byte("hello, rados"), backend.PutOptions{}); err != nil {
		log.Fatal(err)
	}
	obj, err := b.Get(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	defer obj.Close()
	fmt.Println(string(obj.Bytes()))
	_ = b.Delete(ctx, "greeting")
}
