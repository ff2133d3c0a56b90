package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"distore/wire"
)

// forceWait is how long Serve waits for handlers after it closed their
// connections at the end of the grace period.
const forceWait = 5 * time.Second

// httpServer returns the net/http server Serve runs, tuned as object stores
// (MinIO, AIStore) tune theirs: a bounded head (size and time), no whole-
// request read or write timeout (a 64 GiB body may take long) but per-read
// and per-write deadlines set by the handlers, idle keep-alive connections
// closed after IdleTimeout, HTTP/1.1 only.
func (s *Server) httpServer(ctx context.Context) *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.headerTO,
		IdleTimeout:       s.idleTO,
		// net/http reads up to MaxHeaderBytes + 4096 bytes of head before
		// it answers 431; docs/http-api.md says so.
		MaxHeaderBytes: wire.MaxHeaderBytes,
		TLSConfig:      s.tls,
		// HTTP/2 would multiplex streams over one connection, and its flow
		// control, not the per-write deadlines, would govern slow readers.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, closes idle connections, lets in-flight requests finish for up
// to grace, and closes the rest (cancelling their contexts). It returns nil
// after a clean shutdown. With Options.TLS it speaks HTTPS.
//
// Request contexts derive from ctx without its cancellation.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := s.httpServer(ctx)
	if s.tls != nil {
		cfg := s.tls.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		cfg.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, cfg)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err == nil {
		<-served
		return nil
	}
	// In-flight requests outlived the grace: close their connections, which
	// fails their reads and writes and cancels their contexts.
	_ = hs.Close()
	s.log.Warn("graceful shutdown incomplete; closed remaining connections", "grace", grace)
	select {
	case <-served:
	case <-time.After(forceWait):
		s.log.Error("handlers still running after their connections were closed", "wait", forceWait)
	}
	return fmt.Errorf("server: shutdown: requests still active after %v: %w", grace, context.DeadlineExceeded)
}

// Listen opens a TCP listener for Serve with the options object stores set:
// keep-alive probes find dead clients, and TCP_DEFER_ACCEPT wakes the server
// only once a connection has sent its first bytes (a port scan or an idle
// connect costs no goroutine).
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: 15 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
			})
			return errors.Join(err, serr)
		},
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen %s: %w", addr, err)
	}
	return ln, nil
}

// Loopback reports whether addr (host:port, as Listen takes it or as a
// listener reports it) is a loopback address only: "localhost", 127.0.0.0/8
// or ::1. An empty host, 0.0.0.0 and :: listen on every interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
