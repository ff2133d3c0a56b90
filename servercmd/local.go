package servercmd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"distore/server"
)

// socketPath is the local socket's path: the configured one, "none" for no
// socket, by default distore.sock in the data dir.
func socketPath(cfg Config) string {
	if cfg.Socket != "" {
		return cfg.Socket
	}
	return filepath.Join(cfg.DataDir, "distore.sock")
}

// startLocal serves the local socket (docs/local.md) until ctx ends, when the
// store has a memory tier. wait returns when it has stopped.
func startLocal(ctx context.Context, srv *server.Server, cfg Config, log *slog.Logger) (wait func(), err error) {
	path := socketPath(cfg)
	if path == "none" || !hasMemory(cfg.Levels) {
		return func() {}, nil
	}
	ln, err := listenLocal(path, cfg.SocketGroup)
	if err != nil {
		if cfg.Socket == "" { // the default place: serve HTTP anyway
			log.Warn("no local socket (set --socket)", "err", err)
			return func() {}, nil
		}
		return nil, err
	}
	log.Info("local socket listening", "socket", path, "url", "unix://"+path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer os.Remove(path)
		if err := srv.ServeLocal(ctx, ln); err != nil {
			log.Error("local socket", "err", err)
		}
	}()
	return func() { <-done }, nil
}

func hasMemory(levels string) bool {
	for name := range strings.SplitSeq(levels, ",") {
		if strings.TrimSpace(name) == "memory" {
			return true
		}
	}
	return false
}

// maxSocketPath is the longest path a UNIX socket address holds (sun_path
// less its terminating zero).
const maxSocketPath = 107

func listenLocal(path, group string) (*net.UnixListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("local socket path %s is %d bytes, longer than the %d a socket address holds", path, len(path), maxSocketPath)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("local socket: %w", err)
	}
	return server.ListenLocal(path, group)
}
