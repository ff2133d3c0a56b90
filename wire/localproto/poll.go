package localproto

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Spin is how long a Reader polls its socket before it parks on the
// netpoller. On a virtual machine a parked thread's vCPU halts, and waking
// it costs about as much as answering a request; a peer that sends within
// the window (a loop of puts and gets) finds the reader awake. The Python
// client polls for its replies the same way.
const Spin = 50 * time.Microsecond

// hotGap is the longest wait after which a Reader still polls for the next
// frame. It is longer than Spin: a wait that ended parked includes the
// wake-up that polling would have saved.
const hotGap = 4 * Spin

// spinners counts Readers polling now, in this process. At most
// GOMAXPROCS-1 poll at once, so polling never takes the last core from the
// work it waits for.
var spinners atomic.Int32

func takeSpinner() bool {
	if spinners.Add(1) > int32(runtime.GOMAXPROCS(0)-1) {
		spinners.Add(-1)
		return false
	}
	return true
}

// Reader reads a local socket connection as ReadMsgUnix does, polling first
// (see Spin) when the peer is another process whose last frame came soon.
// A peer in this process is not polled for: the thread that parks one side's
// goroutine then runs the other's, with no wake-up at all. A Reader is used
// by one goroutine at a time.
type Reader struct {
	raw  syscall.RawConn
	poll bool // the peer is another process
	off  bool // polling turned off by SetPolling
	hot  bool // the last wait was short
}

// SetPolling allows polling (the default) or turns it off: the server turns
// it off while a client copies a put into the mapping between its frames,
// so that polling does not take a core from the copy.
func (r *Reader) SetPolling(on bool) { r.off = !on }

// NewReader returns a Reader of c.
func NewReader(c *net.UnixConn) (*Reader, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	other := cerr == nil && int(cred.Pid) != os.Getpid()
	return &Reader{raw: raw, poll: other, hot: true}, nil
}

// ReadMsg reads bytes into buf and control messages into oob. At the end of
// the stream it returns 0 bytes and no error, as ReadMsgUnix does.
func (r *Reader) ReadMsg(buf, oob []byte) (n, oobn int, err error) {
	if len(buf) == 0 {
		return 0, 0, io.ErrShortBuffer // 0 bytes and no error would read as the end
	}
	start := time.Now()
	spin := r.poll && !r.off && r.hot && takeSpinner()
	rerr := r.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, err = recvmsg(fd, buf, oob)
			switch {
			case err == unix.EINTR:
				continue
			case err != unix.EAGAIN:
				return true
			case spin && time.Since(start) < Spin:
				continue
			}
			if spin {
				spinners.Add(-1)
				spin = false
			}
			return false // park until readable
		}
	})
	if spin {
		spinners.Add(-1)
	}
	r.hot = time.Since(start) < hotGap
	if rerr != nil {
		return 0, 0, rerr
	}
	if err != nil {
		return 0, 0, err
	}
	return n, oobn, nil
}

// Read is ReadMsg without control messages, as an io.Reader (io.EOF at the
// end of the stream).
func (r *Reader) Read(p []byte) (int, error) {
	n, _, err := r.ReadMsg(p, nil)
	if n == 0 && err == nil && len(p) > 0 {
		return 0, io.EOF
	}
	return n, err
}

// recvmsg is a non-blocking recvmsg(2) made as a raw system call: it cannot
// block, so the scheduler need not treat each poll as a system call that
// might. buf must not be empty.
func recvmsg(fd uintptr, buf, oob []byte) (n, oobn int, err error) {
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Iov: &iov}
	msg.SetIovlen(1)
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if e != 0 {
		return 0, 0, e
	}
	return int(r), int(msg.Controllen), nil
}

// Writer writes to a local socket connection with non-blocking writev(2)
// calls made as raw system calls, and waits on the netpoller only while the
// socket's buffer is full. A write through net.Conn enters the scheduler as
// a system call that might block, and on an idle process that wakes the
// runtime's monitor thread: on a virtual machine, a wake-up per reply.
type Writer struct {
	// Timeout bounds each wait for room in the socket's buffer (the
	// Writer sets the connection's write deadline for it and clears it
	// after); 0 leaves the connection's own deadline in charge.
	Timeout time.Duration

	conn *net.UnixConn
	raw  syscall.RawConn
	iovs []unix.Iovec
}

// NewWriter returns a Writer of c.
func NewWriter(c *net.UnixConn) (*Writer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &Writer{conn: c, raw: raw}, nil
}

// Write writes all of bufs, in order, as one stream of bytes. It returns the
// number of bytes written and the error that stopped it. It reslices the
// elements of bufs as it goes (not the bytes they hold).
func (w *Writer) Write(bufs ...[]byte) (int, error) {
	total := 0
	var err error
	wait := false // first without waiting: most replies fit the buffer
	write := func(fd uintptr) bool {
		for {
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
			if len(bufs) == 0 {
				return true
			}
			var n int
			n, err = w.writev(fd, bufs)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return !wait // false: park until writable
			case err != nil:
				return true
			}
			total += n
			for n > 0 {
				k := min(n, len(bufs[0]))
				bufs[0] = bufs[0][k:]
				n -= k
				if len(bufs[0]) == 0 {
					bufs = bufs[1:]
				}
			}
		}
	}
	werr := w.raw.Write(write)
	if werr == nil && err == unix.EAGAIN {
		if w.Timeout > 0 {
			if werr = w.conn.SetWriteDeadline(time.Now().Add(w.Timeout)); werr == nil {
				defer w.conn.SetWriteDeadline(time.Time{})
			}
		}
		if werr == nil {
			wait, err = true, nil
			werr = w.raw.Write(write)
		}
	}
	if werr != nil {
		return total, werr
	}
	return total, err
}

// maxIovecs is the most buffers one writev(2) takes (Linux's UIO_MAXIOV).
const maxIovecs = 1024

// writev is a non-blocking writev(2) made as a raw system call. bufs holds
// at least one non-empty buffer.
func (w *Writer) writev(fd uintptr, bufs [][]byte) (int, error) {
	w.iovs = w.iovs[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if len(w.iovs) == maxIovecs {
			break // the rest goes in the next call
		}
		iov := unix.Iovec{Base: &b[0]}
		iov.SetLen(len(b))
		w.iovs = append(w.iovs, iov)
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iovs[0])), uintptr(len(w.iovs)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
