//go:build ceph

package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ceph/go-ceph/rados"

	"distore/backend"
	"distore/remote/ceph"
)

var (
	cephTotal  = flag.String("ceph.total", "512MiB", "ceph suite: bytes written and read per object size, way and round")
	cephRounds = flag.Int("ceph.rounds", 2, "ceph suite: rounds (the ways take turns in each round)")
)

func init() {
	register("ceph", "Ceph RADOS tier vs plain rados WriteFull / Read: 1 MiB and 64 MiB objects, GB/s and ratios", runCeph)
}

func runCeph(ctx context.Context, r *report) error {
	conf, pool := os.Getenv("CEPH_CONF"), os.Getenv("DISTORE_CEPH_POOL")
	if conf == "" || pool == "" {
		return fmt.Errorf("%w: CEPH_CONF / DISTORE_CEPH_POOL not set (run scripts/ceph-up.sh DIR; source DIR/env.sh)", errSkip)
	}
	user := os.Getenv("DISTORE_CEPH_USER")
	if user == "" {
		user = "admin"
	}
	ns := "bench-" + string(backend.NewID()[:8])
	cfg := backend.Config{"conf": conf, "pool": pool, "user": user, "namespace": ns + "-tier"}
	b, err := backend.Open(ctx, "ceph", cfg)
	if err != nil {
		return err
	}
	defer b.Teardown(context.Background())
	o, _ := ceph.ParseConfig(cfg)

	conn, err := rados.NewConnWithUser(user)
	if err != nil {
		return err
	}
	defer conn.Shutdown()
	if err := conn.ReadConfigFile(conf); err != nil {
		return err
	}
	if err := conn.Connect(); err != nil {
		return err
	}
	ioctx, err := conn.OpenIOContext(pool)
	if err != nil {
		return err
	}
	defer ioctx.Destroy()
	ioctx.SetNamespace(ns + "-plain")
	r.note("conf %s pool %s; tier: stripe_size %s, chunk_size %s, concurrency %d", conf, pool,
		backend.FormatBytes(o.StripeSize), backend.FormatBytes(o.ChunkSize), o.Concurrency)
	ways := []remoteWay{
		{"rados", func(ctx context.Context, key string, data []byte) error {
			return ioctx.WriteFull(key, data)
		}, func(ctx context.Context, key string, buf []byte) error {
			n, err := ioctx.Read(key, buf, 0)
			if err == nil && n != len(buf) {
				err = fmt.Errorf("read %d bytes, want %d", n, len(buf))
			}
			return err
		}, func(ctx context.Context, key string) error {
			return ioctx.Delete(key)
		}},
		// The plain call with the tier's semantics: created exclusively, with
		// a metadata xattr, in one write op.
		{"rados excl+xattr", func(ctx context.Context, key string, data []byte) error {
			op := rados.CreateWriteOp()
			defer op.Release()
			op.Create(rados.CreateExclusive)
			op.WriteFull(data)
			op.SetXattr("distore", []byte(`{"size":1048576,"importance":0,"created":"2026-01-01T00:00:00Z","crc32c":0,"stripes":0,"token":"0123456789"}`))
			return op.Operate(ioctx, key, rados.OperationNoFlag)
		}, nil, nil},
		tierWays(b, "tier")[0],
		tierWays(b, "tier stream")[1],
	}
	ways[1].get, ways[1].clean = ways[0].get, ways[0].clean
	return runRemote(ctx, r, ways, *cephTotal, *cephRounds)
}
