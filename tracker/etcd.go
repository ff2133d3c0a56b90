package tracker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"distore/backend"
)

// DefaultEmbedAddr is where an embedded etcd serves clients when --etcd embed
// names no address: other servers join with --etcd http://HOST:2379.
const DefaultEmbedAddr = "127.0.0.1:2379"

// ClientConfig is the etcd client configuration of a server (Connect's).
func ClientConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		// Keepalives notice a dead etcd connection without waiting on TCP.
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		// gRPC's reconnect backoff grows to 120 s by default: after an etcd
		// outage of 30 s the next try could be 20 s after etcd is back.
		// Capped at 1 s, membership recovers within about a second.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
		Logger: zap.NewNop(),
	}
}

// Connect returns an etcd client for spec and a function that releases it
// (and stops an embedded etcd):
//
//	embed            an embedded single-node etcd on DefaultEmbedAddr, data in dataDir/etcd
//	embed=HOST:PORT  the same on HOST:PORT
//	URL,URL,...      an existing cluster's client URLs
//
// It fails with an error wrapping backend.ErrUnavailable if etcd does not
// answer before ctx ends (or within 10 s).
func Connect(ctx context.Context, spec, dataDir string, log *slog.Logger) (*clientv3.Client, func(), error) {
	if log == nil {
		log = slog.Default()
	}
	var endpoints []string
	stop := func() {}
	switch {
	case spec == "embed" || strings.HasPrefix(spec, "embed="):
		addr := DefaultEmbedAddr
		if a, ok := strings.CutPrefix(spec, "embed="); ok {
			addr = a
		}
		e, err := startEmbed(filepath.Join(dataDir, "etcd"), addr)
		if err != nil {
			return nil, nil, err
		}
		stop = func() { e.Close() }
		endpoints = []string{"http://" + addr}
		log.Info("embedded etcd serving", "client_url", endpoints[0], "data_dir", filepath.Join(dataDir, "etcd"))
	default:
		for _, u := range strings.Split(spec, ",") {
			u = strings.TrimSpace(u)
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				return nil, nil, fmt.Errorf("%w: --etcd %q: want none, embed, embed=HOST:PORT or http(s)://HOST:PORT,...", backend.ErrInvalidArgument, spec)
			}
			endpoints = append(endpoints, u)
		}
	}
	cli, err := clientv3.New(ClientConfig(endpoints))
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("etcd %v: %w: %v", endpoints, backend.ErrUnavailable, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Get(sctx, "/distore-ping"); err != nil {
		cli.Close()
		stop()
		return nil, nil, fmt.Errorf("etcd %v: %w: not answering: %v", endpoints, backend.ErrUnavailable, err)
	}
	return cli, func() { cli.Close(); stop() }, nil
}

func startEmbed(dir, addr string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cu, err := url.Parse("http://" + addr)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded etcd address %q", backend.ErrInvalidArgument, addr)
	}
	// The peer port serves no one (one member) but must exist: a free port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	pu, _ := url.Parse("http://" + ln.Addr().String())
	ln.Close()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd on %s: %w: %v", addr, backend.ErrUnavailable, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: %w: %v", addr, backend.ErrUnavailable, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: %w: not ready in 30 s", addr, backend.ErrUnavailable)
	}
}
