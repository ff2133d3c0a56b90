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
