//go:build unix

package client

import (
	"net"
	"syscall"
)

// peekAlive looks at an idle connection without blocking: a peek that would
// block means open; end of file, an error or unexpected data means not.
func peekAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // done: never wait for readiness
	})
	return err == nil && alive
}
