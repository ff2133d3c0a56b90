package testutil

import (
	"fmt"
	"os"
	"os/exec"
)

// BuildProgram builds the program pkg (an import path, or "." for the
// test's own directory) into out, for a test that runs it as a process. Every
// such build uses the settings of the container image's static server (no
// cgo, paths trimmed), which scripts/test.sh builds ahead while Ceph starts:
// all of them then share that one compile of the dependencies, where the
// default settings would compile the whole tree a third time beside the
// race-detector and static ones. tags adds build tags (the image's "nogpu").
func BuildProgram(out, pkg string, tags ...string) error {
	args := []string{"build", "-trimpath", "-o", out}
	for _, t := range tags {
		args = append(args, "-tags", t)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", cmd.Args[1:], err, b)
	}
	return nil
}
