//go:build ceph

package ceph_test

import (
	"errors"
	"strings"
	"testing"

	"distore/backend"
	"distore/remote/ceph"
)

// TestParseConfigReportsAll: every bad option is named in one error, not the
// first only (no cluster needed).
func TestParseConfigReportsAll(t *testing.T) {
	_, err := ceph.ParseConfig(backend.Config{"conf": "/etc/ceph/ceph.conf", "pol": "x",
		"stripe_size": "100MiB", "concurrency": "0", "timeout": "soon"})
	if !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("ParseConfig = %v, want ErrInvalidArgument", err)
	}
	for _, want := range []string{`unknown option "pol"`, "option pool is required", "stripe_size 104857600",
		"concurrency 0", `"soon" is not a duration`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig error %q does not say %q", err, want)
		}
	}
	if _, err := ceph.ParseConfig(backend.Config{"conf": "/etc/ceph/ceph.conf", "pool": "p"}); err != nil {
		t.Fatalf("ParseConfig of a good config: %v", err)
	}
}
