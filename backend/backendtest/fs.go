package backendtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// TmpFS mounts a tmpfs of size bytes on a fresh directory and unmounts it when
// the test ends, so a test can fill a real file system without touching the
// machine's. Without root or without mount(2) the test is skipped with the
// reason; under CI=true it fails instead.
func TmpFS(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	why := ""
	if os.Geteuid() != 0 {
		why = "mounting a tmpfs needs root"
	} else if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		why = "mount -t tmpfs: " + err.Error()
	}
	if why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: a test that cannot run fails)", why)
		}
		t.Skip(why)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillFS fills the file system that holds dir from outside the process under
// test: a dd process writes the file dir/name until the file system is full
// (ENOSPC). It returns the file's path; removing it frees the space.
func FillFS(t testing.TB, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	out, err := exec.Command("dd", "if=/dev/zero", "of="+path, "bs=64k", "oflag=append", "conv=notrunc").CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("dd: %v: %s", err, out)
	}
	// dd exits non-zero on ENOSPC: that is the point. Check the file system
	// really is full.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free > 64<<10 {
		t.Fatalf("dd left %d bytes free in %s: %s", free, dir, out)
	}
	return path
}
