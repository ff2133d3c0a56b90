package mytier

import (
	"context"
	"fmt"
	"testing"

	"distore/backend"
	"distore/backend/backendtest"
)

// The example's tier keeps the Backend contract.
func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Factory{New: func(t testing.TB, capacity int64) backend.Backend {
		b, err := backend.Open(context.Background(), "mytier", backend.Config{"capacity": fmt.Sprint(capacity)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}})
}
