//go:build ceph

package servercmd

// The Ceph RADOS tier needs cgo and librados: only with -tags ceph.
import _ "distore/remote/ceph"
