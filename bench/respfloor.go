package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// respFloor is a bare Go server over sockets that speaks enough RESP (SET,
// GET, FLUSHALL) for the Redis client of this suite: one goroutine per
// connection, 64 KiB buffers, a SET keeps only the size, a GET writes one
// shared buffer. It runs in this process as distore's server does, so it is
// the floor under any protocol a Go server can speak here: what is left
// between it and distore is HTTP and the store; what is left between it and
// Redis is the Go runtime sharing its 2 CPUs with the clients.
type respFloor struct {
	ln    net.Listener
	mu    sync.Mutex
	sizes map[string]int
	buf   []byte
	wg    sync.WaitGroup
	conns map[net.Conn]bool
}

// startRESPFloor serves on a loopback port and returns the way to measure it.
func startRESPFloor(ctx context.Context, maxSize int) (*redisWay, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	f := &respFloor{ln: ln, sizes: map[string]int{}, buf: make([]byte, maxSize+2), conns: map[net.Conn]bool{}}
	for i := range f.buf {
		f.buf[i] = byte(i*7 + i>>12)
	}
	f.wg.Go(f.accept)
	rw := &redisWay{label: "go-resp", addr: ln.Addr().String(), conns: map[int]*respConn{}}
	return rw, func() {
		rw.close()
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	}, nil
}

func (f *respFloor) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns[c] = true
		f.mu.Unlock()
		f.wg.Go(func() {
			defer c.Close()
			_ = f.serve(bufio.NewReaderSize(c, 64<<10), bufio.NewWriterSize(c, 64<<10))
		})
	}
}

// serve answers commands until the connection ends.
func (f *respFloor) serve(r *bufio.Reader, w *bufio.Writer) error {
	var args [][]byte
	for {
		var err error
		if args, err = readCommand(r, args[:0]); err != nil {
			return err
		}
		switch cmd := string(args[0]); {
		case cmd == "SET" && len(args) == 3:
			f.mu.Lock()
			f.sizes[string(args[1])] = len(args[2])
			f.mu.Unlock()
			w.WriteString("+OK\r\n")
		case cmd == "GET" && len(args) == 2:
			f.mu.Lock()
			n, ok := f.sizes[string(args[1])]
			f.mu.Unlock()
			if !ok {
				w.WriteString("$-1\r\n")
				break
			}
			w.WriteString("$" + strconv.Itoa(n) + "\r\n")
			w.Write(f.buf[:n])
			w.WriteString("\r\n")
		case cmd == "FLUSHALL":
			f.mu.Lock()
			clear(f.sizes)
			f.mu.Unlock()
			w.WriteString("+OK\r\n")
		default:
			w.WriteString("-ERR unknown command\r\n")
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// readCommand reads one RESP array of bulk strings into args. Each bulk
// string is a new slice: a SET's value may be larger than the buffer.
func readCommand(r *bufio.Reader, args [][]byte) ([][]byte, error) {
	n, err := readLen(r, '*')
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, errors.New("resp: empty command")
	}
	for range n {
		m, err := readLen(r, '$')
		if err != nil {
			return nil, err
		}
		a := make([]byte, m+2)
		if _, err := io.ReadFull(r, a); err != nil {
			return nil, err
		}
		args = append(args, a[:m])
	}
	return args, nil
}

// readLen reads a "<kind><number>\r\n" line.
func readLen(r *bufio.Reader, kind byte) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 4 || line[0] != kind {
		return 0, fmt.Errorf("resp: want %c, got %q", kind, line)
	}
	n, err := strconv.Atoi(string(line[1 : len(line)-2]))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("resp: bad length %q", line)
	}
	return n, nil
}
