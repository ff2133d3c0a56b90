package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// bar is a transfer's progress bar on stderr (schollz/progressbar), drawn
// only when stderr is a terminal; elsewhere it only counts.
type bar struct {
	pb *progressbar.ProgressBar // nil: not drawn
}

// progress starts a bar for a transfer of total bytes (-1: unknown).
func (e *env) progress(label string, total int64) *bar {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(label),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(24),
	)}
}

// Write counts p.
func (b *bar) Write(p []byte) (int, error) {
	if b.pb != nil {
		_ = b.pb.Add64(int64(len(p)))
	}
	return len(p), nil
}

// finish clears the bar's line.
func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}

var _ io.Writer = (*bar)(nil)
