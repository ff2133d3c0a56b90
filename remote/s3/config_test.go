package s3_test

import (
	"errors"
	"strings"
	"testing"

	"distore/backend"
	"distore/remote/s3"
)

// TestParseConfigReportsAll: every bad option is named in one error, not the
// first only.
func TestParseConfigReportsAll(t *testing.T) {
	_, err := s3.ParseConfig(backend.Config{"bucket": "b", "bukcet": "x", "part_size": "1MiB",
		"concurrency": "many", "access_key": "k", "timeout": "-1s"})
	if !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("ParseConfig = %v, want ErrInvalidArgument", err)
	}
	for _, want := range []string{`unknown option "bukcet"`, "part_size 1048576", `"many" is not an integer`,
		"access_key and secret_key go together", "max_backoff and timeout must be positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig error %q does not say %q", err, want)
		}
	}
	if _, err := s3.ParseConfig(backend.Config{"bucket": "b"}); err != nil {
		t.Fatalf("ParseConfig of a good config: %v", err)
	}
}
