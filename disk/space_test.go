package disk

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"distore/backend"
	"distore/backend/backendtest"
)

// diskUsage is the space dir's files take on disk (allocated blocks, as du
// counts them: Badger's value-log files are sparse until written).
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSpaceComesBack writes 512 MiB over eight value-log files (64 MiB each:
// the reclaim works file by file, so more files would test nothing more),
// deletes it, and waits for the tier itself (no explicit call) to give the
// space back to the file system.
func TestSpaceComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 512 MiB")
	}
	dir := t.TempDir()
	// sync=false: this test is about space, not durability; it keeps the
	// bytes in the page cache instead of waiting for the disk.
	tier := open(t, backend.Config{"dir": dir, "sync": "false", "chunk_size": "4MiB", "vlog_file_size": "64MiB"})
	ctx := context.Background()
	obj := backendtest.Payload(16<<20, 1)
	const total = 512 << 20
	var ids []backend.ID
	for i := 0; int64(i)*int64(len(obj)) < total; i++ {
		id := backend.ID(fmt.Sprintf("big-%03d", i))
		if _, err := tier.Put(ctx, id, obj, backend.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	keep := backendtest.Payload(1<<20, 2)
	if _, err := tier.Put(ctx, "keep", keep, backend.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	full := diskUsage(t, dir)
	if full < total {
		t.Fatalf("after writing %d bytes the directory holds only %d", total, full)
	}
	start := time.Now()
	for _, id := range ids {
		if err := tier.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var now int64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if now = diskUsage(t, dir); now < full/4 {
			break
		}
	}
	t.Logf("directory: %s after writing %s, %s %.1fs after deleting it",
		backend.FormatBytes(full), backend.FormatBytes(total), backend.FormatBytes(now), time.Since(start).Seconds())
	if now >= full/4 {
		t.Fatalf("directory still holds %d of %d bytes a minute after deleting everything", now, full)
	}
	got, err := tier.Get(ctx, "keep")
	if err != nil || string(got.Bytes()) != string(keep) {
		t.Fatalf("object kept across the reclaim: %v", err)
	}
	got.Close()
	if st, _ := tier.Stats(ctx); st.Objects != 1 || st.Used != int64(len(keep)) {
		t.Fatalf("Stats after deleting = %+v", st)
	}
}
