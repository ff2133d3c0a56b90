package localproto

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unixPair returns both ends of a connected UNIX socket.
func unixPair(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestReaderPollsBriefly checks what Reader promises: it reads bytes and
// descriptors as ReadMsgUnix does, polls (a peer in another process, forced
// here) for at most Spin before parking, stops polling once the peer is
// slow, honours the connection's deadline, and ends with io.EOF.
func TestReaderPollsBriefly(t *testing.T) {
	a, b := unixPair(t)
	r, err := NewReader(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.poll {
		t.Fatal("a peer in this process is polled for")
	}
	r.poll = true

	// Bytes and a descriptor, as sent.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := a.WriteMsgUnix([]byte("frame"), unix.UnixRights(int(f.Fd())), nil); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
	n, oobn, err := r.ReadMsg(buf, oob)
	if err != nil || string(buf[:n]) != "frame" || oobn == 0 {
		t.Fatalf("ReadMsg = %q, %d control bytes, %v", buf[:n], oobn, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("descriptors %v, %v", fds, err)
	}
	unix.Close(fds[0])

	// A long wait costs a poll of Spin at most, not the wait: the reader
	// parks. The next wait, after a slow peer, is not polled at all.
	for i, hot := range []bool{true, false} {
		if r.hot != hot {
			t.Fatalf("wait %d: hot = %v, want %v", i, r.hot, hot)
		}
		const wait = 300 * time.Millisecond
		timer := time.AfterFunc(wait, func() { a.Write([]byte("late")) })
		before := cpuTime(t)
		n, _, err = r.ReadMsg(buf, nil)
		used := cpuTime(t) - before
		timer.Stop()
		if err != nil || string(buf[:n]) != "late" {
			t.Fatalf("wait %d: ReadMsg = %q, %v", i, buf[:n], err)
		}
		if used > wait/3 {
			t.Fatalf("wait %d: a %v wait for a frame used %v of CPU: the reader polled instead of parking", i, wait, used)
		}
	}

	// The deadline ends a wait.
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err = r.ReadMsg(buf, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past the deadline: %v", err)
	}
	b.SetReadDeadline(time.Time{})

	// The end of the stream.
	a.Close()
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: %d, %v", n, err)
	}
}

// TestReaderSpinnerSlots runs many polling readers at once and checks that
// every polling slot they took is given back, whichever way their waits end.
func TestReaderSpinnerSlots(t *testing.T) {
	const conns, frames = 8, 200
	errs := make(chan error, conns)
	for i := range conns {
		a, b := unixPair(t)
		r, err := NewReader(b)
		if err != nil {
			t.Fatal(err)
		}
		r.poll = true
		go func() {
			for k := range frames {
				if k%50 == 0 {
					time.Sleep(time.Millisecond) // a slow peer now and then: the reader parks
				}
				if _, err := a.Write([]byte{byte(k)}); err != nil {
					errs <- err
					return
				}
			}
			a.Close()
		}()
		go func() {
			buf := make([]byte, 1)
			for k := 0; ; k++ {
				n, _, err := r.ReadMsg(buf, nil)
				switch {
				case err != nil:
					errs <- err
					return
				case n == 0 && k == frames:
					errs <- nil
					return
				case n == 0 || buf[0] != byte(k):
					errs <- fmt.Errorf("reader %d: frame %d: got %d bytes %v", i, k, n, buf[:n])
					return
				}
			}
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := spinners.Load(); n != 0 {
		t.Fatalf("%d polling slots still taken after every reader finished", n)
	}
}

// TestWriterWritesAllAndBoundsWaits checks what Writer promises: many
// buffers, together larger than the socket's buffer and with empty ones
// among them, arrive whole and in order at a peer that reads slowly; a peer
// that stops reading cuts the write off within Timeout, and the deadline is
// cleared after, so the next write is not cut by it.
func TestWriterWritesAllAndBoundsWaits(t *testing.T) {
	a, b := unixPair(t)
	w, err := NewWriter(a)
	if err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	var want []byte
	for i := range 2000 { // more buffers than one writev takes
		n := (i * 37) % 4096
		if i%7 == 0 {
			n = 0
		}
		p := make([]byte, n)
		for k := range p {
			p[k] = byte(i + k)
		}
		bufs, want = append(bufs, p), append(want, p...)
	}
	got := make(chan []byte, 1)
	go func() {
		var all []byte
		p := make([]byte, 1000)
		for len(all) < len(want) {
			time.Sleep(50 * time.Microsecond) // slower than the writer
			n, err := b.Read(p)
			if err != nil {
				break
			}
			all = append(all, p[:n]...)
		}
		got <- all
	}()
	n, err := w.Write(bufs...)
	if err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	if all := <-got; string(all) != string(want) {
		t.Fatalf("the peer read %d bytes that differ from the %d written", len(all), len(want))
	}

	// Nobody reads b now: the write must stop once the buffer is full.
	w.Timeout = 100 * time.Millisecond
	big := make([]byte, 16<<20)
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(big)
		if err == nil || n >= len(big) {
			err = fmt.Errorf("%d bytes, %v", n, err)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a write to a peer that does not read: %v; want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		a.Close()
		t.Fatalf("a write to a peer that does not read was not cut off in 5 s (Timeout %v)", w.Timeout)
	}
	// The peer drains what was written; the deadline is gone, so a
	// write that must wait for it is not cut off.
	w.Timeout = 0
	go io.Copy(io.Discard, b)
	if _, err := w.Write(big[:4<<20]); err != nil {
		t.Fatalf("a write after the cut-off: %v (the deadline was left set)", err)
	}
}
