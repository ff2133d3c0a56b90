//go:build ceph

package main

// The Ceph RADOS tier needs cgo and librados: only with -tags ceph.
import _ "distore/remote/ceph"
