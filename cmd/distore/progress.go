package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"distore/backend"
)

// progressDelay is how long a transfer runs before its bar appears, so quick
// transfers print nothing.
const progressDelay = time.Second

// progressBar counts bytes written to it and, when stderr is a terminal,
// redraws a one-line bar there every 200 ms once the transfer has taken
// progressDelay.
type progressBar struct {
	label string
	total int64 // -1: unknown
	n     atomic.Int64
	w     io.Writer
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
	drawn bool
}

// progress starts a bar on stderr; it is inert unless stderr is a terminal.
func (e *env) progress(label string, total int64) *progressBar {
	p := &progressBar{label: label, total: total, w: e.stderr, start: time.Now()}
	if !isTerminal(e.stderr) {
		return p
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go p.loop()
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Write counts p.
func (p *progressBar) Write(b []byte) (int, error) {
	p.n.Add(int64(len(b)))
	return len(b), nil
}

func (p *progressBar) loop() {
	defer p.wg.Done()
	t := time.NewTimer(progressDelay)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.draw()
			t.Reset(200 * time.Millisecond)
		}
	}
}

func (p *progressBar) draw() {
	n := p.n.Load()
	el := time.Since(p.start)
	rate := float64(n) / el.Seconds()
	line := fmt.Sprintf("%s  %s", p.label, backend.FormatBytes(n))
	if p.total >= 0 {
		frac := 1.0
		if p.total > 0 {
			frac = float64(n) / float64(p.total)
		}
		const width = 24
		fill := min(width, int(frac*width))
		line += fmt.Sprintf(" / %s [%s%s] %3.0f%%", backend.FormatBytes(p.total),
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*frac)
		if rate > 0 && n < p.total {
			line += fmt.Sprintf("  ETA %s", time.Duration(float64(p.total-n)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	line += fmt.Sprintf("  %s/s", backend.FormatBytes(int64(rate)))
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// done stops the bar and clears its line.
func (p *progressBar) done() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.stop = nil
	if p.drawn {
		p.draw() // the final figures
		fmt.Fprintln(p.w)
	}
}
