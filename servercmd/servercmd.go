// Package servercmd is the distore-server command as a library: the flags,
// the YAML config, the tier stack and the HTTP server, started by Main. The
// binary cmd/distore-server is one call to Main; a program that registers its
// own tier (backend.Register, in an init function) and calls Main is a
// distore-server that serves that tier too, as Caddy's plugins work:
//
//	package main
//
//	import (
//		_ "example.com/mytier" // registers the tier "mytier"
//		"distore/servercmd"
//	)
//
//	func main() { servercmd.Main() } // then: --levels memory,mytier
//
// Every built-in tier (memory, disk, gpu, s3; ceph with -tags ceph) is
// compiled in, so --levels can name any of them.
//
//	distore-server                                  # memory,disk in the data dir
//	distore-server --levels memory,disk --listen 127.0.0.1:7070
//	distore-server --config conf/distore.yaml
//
// It needs no other service and no config file. Defaults:
//
//	--levels           memory,disk
//	--listen           127.0.0.1:7070 (port 0 picks a free port; the real
//	                   address is logged as addr=...)
//	--data-dir         $XDG_DATA_HOME/distore, else ~/.local/share/distore
//	                   (./distore-data without a home); the disk tier lives in
//	                   DATA_DIR/disk
//	--memory-capacity  1GiB, or a quarter of the machine's RAM if less
//
// A YAML config (--config) sets the server's options and every tier's
// options (see conf/distore.yaml); flags given on the command line override
// it; unknown keys are errors. SIGINT or SIGTERM stop the server gracefully:
// it stops accepting, lets in-flight requests finish for up to
// --shutdown-timeout, then tears the tiers down. docs/server-flags.md lists
// every flag.
package servercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"distore/backend"
	"distore/server"
	"distore/spill"
)

// Exit statuses of Run.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 64
)

// Main runs the server with the process's arguments until SIGINT or SIGTERM,
// then exits with Run's status.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// Run runs the server with args (without the program name) until ctx ends,
// logging to stderr, and returns the exit status: 0 after a clean shutdown
// (or --help), 64 for a bad command line or config value, 1 for any other
// failure.
func Run(ctx context.Context, args []string, stderr io.Writer) int {
	err := run(ctx, args, stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "distore-server: %v (see --help)\n", err)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "distore-server: %v\n", err)
	return ExitFailure
}

type usageError struct{ error }

// Config is the server's configuration, as read from the YAML file. Every
// field has a flag of the same name (with dashes) that overrides it.
type Config struct {
	// Listen is the address to serve on (host:port; port 0 picks one).
	Listen string `yaml:"listen"`
	// Levels names the tiers, fastest first ("memory,disk").
	Levels string `yaml:"levels"`
	// DataDir holds the persistent tiers' files (the disk tier in DataDir/disk).
	DataDir string `yaml:"data_dir"`
	// MemoryCapacity is the memory tier's capacity ("4GiB"); the memory
	// tier's own "capacity" option, if set, wins over it.
	MemoryCapacity string `yaml:"memory_capacity"`
	// PromoteOnGet promotes objects read from a lower tier.
	PromoteOnGet bool `yaml:"promote_on_get"`
	// PromoteOnPin promotes objects when they are pinned.
	PromoteOnPin bool `yaml:"promote_on_pin"`
	// MaxConcurrentMoves bounds the spills and promotions in flight (0: default).
	MaxConcurrentMoves int `yaml:"max_concurrent_moves"`
	// ShutdownTimeout bounds how long in-flight requests may take at shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// IOTimeout is how long a request body may stall, or a client stop
	// reading a response, before the request is abandoned (a put aborted).
	IOTimeout time.Duration `yaml:"io_timeout"`
	// Owner, when set, names this node in generated IDs ("owner.random").
	Owner string `yaml:"owner"`
	// Socket is the local socket's path (docs/local.md); "" means
	// DATA_DIR/distore.sock, "none" no socket. SocketGroup, when set, may
	// connect too (mode 0660 instead of 0600).
	Socket      string `yaml:"socket"`
	SocketGroup string `yaml:"socket_group"`
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	// ReleaseArena removes the memory tier's arena file from /dev/shm at a
	// clean shutdown, giving its memory back; objects only in the memory tier
	// are then gone at the next start. By default the arena is kept, so a
	// restart finds them.
	ReleaseArena bool `yaml:"release_arena"`
	// Tiers maps a tier name to its options (see each tier's package doc).
	Tiers map[string]map[string]string `yaml:"tiers"`
	// Security: tokens, TLS (security.go).
	Security `yaml:",inline"`
	// Cluster makes the server a cluster member (cluster.go).
	Cluster ClusterConfig `yaml:"cluster"`
}

// defaults returns the configuration with no file and no flags.
func defaults() Config {
	dir := defaultDataDir()
	return Config{
		Listen:          "127.0.0.1:7070",
		Levels:          "memory,disk",
		DataDir:         dir,
		MemoryCapacity:  fmt.Sprint(defaultMemoryCapacity()),
		ShutdownTimeout: 30 * time.Second,
		IOTimeout:       time.Minute,
		LogLevel:        "info",
		LogFormat:       "text",
	}
}

// defaultDataDir is $XDG_DATA_HOME/distore, else ~/.local/share/distore (the
// XDG default), else ./distore-data where there is no home directory: never
// the working directory when there is a better place, so a server started in
// a source tree does not leave its data there.
func defaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "distore")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" && home != "/" {
		return filepath.Join(home, ".local", "share", "distore")
	}
	return "./distore-data"
}

// defaultMemoryCapacity is 1 GiB, or a quarter of the RAM if that is less.
func defaultMemoryCapacity() int64 {
	const want = 1 << 30
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		if ram := int64(si.Totalram) * int64(si.Unit); ram > 0 && ram/4 < want {
			return ram / 4
		}
	}
	return want
}

// loadFile reads a YAML config over cfg; unknown keys are errors.
func loadFile(path string, cfg *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// parseConfig builds the configuration: defaults, then the file, then the
// flags that were given.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	cfg := defaults()
	fs := flag.NewFlagSet("distore-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f Config
	configFile := fs.String("config", "", "YAML config file (see conf/distore.yaml)")
	fs.StringVar(&f.Levels, "levels", cfg.Levels, "tiers, fastest first (registered: "+strings.Join(backend.Registered(), ", ")+")")
	fs.StringVar(&f.Listen, "listen", cfg.Listen, "address to serve on (port 0: any free port)")
	fs.StringVar(&f.DataDir, "data-dir", cfg.DataDir, "directory of the persistent tiers (disk tier in DATA_DIR/disk)")
	fs.StringVar(&f.MemoryCapacity, "memory-capacity", backend.FormatBytes(defaultMemoryCapacity()), "memory tier capacity (e.g. 4GiB)")
	fs.BoolVar(&f.PromoteOnGet, "promote-on-get", false, "promote objects read from a lower tier")
	fs.BoolVar(&f.PromoteOnPin, "promote-on-pin", false, "promote objects when pinned")
	fs.IntVar(&f.MaxConcurrentMoves, "max-concurrent-moves", 0, "spills and promotions in flight (0: default)")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "how long in-flight requests may run at shutdown")
	fs.DurationVar(&f.IOTimeout, "io-timeout", cfg.IOTimeout, "how long a body may stall before the request is abandoned")
	fs.StringVar(&f.Owner, "owner", "", "node name put in generated IDs (owner.random)")
	fs.StringVar(&f.Socket, "socket", "", "local socket path (default DATA_DIR/distore.sock; none: no socket)")
	fs.StringVar(&f.SocketGroup, "socket-group", "", "group that may use the local socket (default: the owner only)")
	fs.StringVar(&f.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.StringVar(&f.LogFormat, "log-format", cfg.LogFormat, "text or json")
	addSecurityFlags(fs, &f.Security)
	fs.BoolVar(&f.ReleaseArena, "release-arena", false, "remove the memory tier's arena from /dev/shm at a clean shutdown (objects only in memory are lost)")
	applyCluster := clusterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, usageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *configFile != "" {
		if err := loadFile(*configFile, &cfg); err != nil {
			return cfg, err
		}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	over := func(name string, apply func()) {
		if set[name] {
			apply()
		}
	}
	over("levels", func() { cfg.Levels = f.Levels })
	over("listen", func() { cfg.Listen = f.Listen })
	over("data-dir", func() { cfg.DataDir = f.DataDir })
	over("memory-capacity", func() { cfg.MemoryCapacity = f.MemoryCapacity })
	over("promote-on-get", func() { cfg.PromoteOnGet = f.PromoteOnGet })
	over("promote-on-pin", func() { cfg.PromoteOnPin = f.PromoteOnPin })
	over("max-concurrent-moves", func() { cfg.MaxConcurrentMoves = f.MaxConcurrentMoves })
	over("shutdown-timeout", func() { cfg.ShutdownTimeout = f.ShutdownTimeout })
	over("owner", func() { cfg.Owner = f.Owner })
	over("socket", func() { cfg.Socket = f.Socket })
	over("socket-group", func() { cfg.SocketGroup = f.SocketGroup })
	over("io-timeout", func() { cfg.IOTimeout = f.IOTimeout })
	over("log-level", func() { cfg.LogLevel = f.LogLevel })
	over("log-format", func() { cfg.LogFormat = f.LogFormat })
	applySecurityFlags(set, f.Security, &cfg.Security)
	over("release-arena", func() { cfg.ReleaseArena = f.ReleaseArena })
	if err := applyCluster(&cfg, set); err != nil {
		return cfg, err
	}
	// A memory capacity given as a flag beats the tier's option from the file.
	if set["memory-capacity"] && cfg.Tiers["memory"] != nil {
		delete(cfg.Tiers["memory"], "capacity")
	}
	// So does a data dir given as a flag, for the disk tier's dir.
	if set["data-dir"] && cfg.Tiers["disk"] != nil {
		delete(cfg.Tiers["disk"], "dir")
	}
	if cfg.IOTimeout <= 0 {
		return cfg, usageError{fmt.Errorf("io timeout %v must be positive", cfg.IOTimeout)}
	}
	if cfg.ShutdownTimeout <= 0 {
		return cfg, usageError{fmt.Errorf("shutdown timeout %v must be positive", cfg.ShutdownTimeout)}
	}
	if _, err := backend.ParseBytes(cfg.MemoryCapacity); err != nil {
		return cfg, usageError{fmt.Errorf("memory capacity: %v", err)}
	}
	return cfg, nil
}

// tierConfigs returns the config of each tier in cfg.Levels: the file's
// options plus the server-wide defaults (memory capacity, disk dir).
func tierConfigs(cfg Config, log *slog.Logger) (map[string]backend.Config, error) {
	names := strings.Split(cfg.Levels, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	registered := backend.Registered()
	out := map[string]backend.Config{}
	for name, opts := range cfg.Tiers {
		if !slices.Contains(registered, name) {
			return nil, fmt.Errorf("config: tiers: %w: no tier named %q (registered: %s)",
				backend.ErrInvalidArgument, name, strings.Join(registered, ", "))
		}
		if !slices.Contains(names, name) {
			log.Info("config has options for a tier not in the levels; ignored", "tier", name, "levels", cfg.Levels)
			continue
		}
		c := backend.Config{}
		for k, v := range opts {
			c[k] = v
		}
		out[name] = c
	}
	for _, name := range names {
		c := out[name]
		if c == nil {
			c = backend.Config{}
		}
		switch name {
		case "memory":
			if _, ok := c["capacity"]; !ok {
				c["capacity"] = cfg.MemoryCapacity
			}
			if _, ok := c["path"]; !ok {
				defaultArena(c, cfg.DataDir, !cfg.ReleaseArena, log)
			}
		case "disk":
			if _, ok := c["dir"]; !ok {
				c["dir"] = filepath.Join(cfg.DataDir, "disk")
			}
		}
		if len(c) > 0 {
			out[name] = c
		}
	}
	return out, nil
}

func newLogger(cfg Config, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, usageError{fmt.Errorf("log level %q: want debug, info, warn or error", cfg.LogLevel)}
	}
	o := &slog.HandlerOptions{Level: lv}
	switch cfg.LogFormat {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usageError{fmt.Errorf("log format %q: want text or json", cfg.LogFormat)}
}

// run starts the server and serves until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	// Tokens, TLS and the protected-mode check first: a refused start takes
	// nothing (no arena in /dev/shm, no files).
	opts := server.Options{Logger: log, Owner: cfg.Owner, IOTimeout: cfg.IOTimeout}
	if err := cfg.Security.serverOptions(cfg.Listen, &opts); err != nil {
		return err
	}
	cfgs, err := tierConfigs(cfg, log)
	if err != nil {
		return err
	}
	specs, err := spill.ParseTiers(cfg.Levels, cfgs)
	if err != nil {
		return usageError{err}
	}
	start := time.Now()
	st, err := spill.Open(ctx, spill.Options{
		Tiers:              specs,
		PromoteOnGet:       cfg.PromoteOnGet,
		PromoteOnPin:       cfg.PromoteOnPin,
		MaxConcurrentMoves: cfg.MaxConcurrentMoves,
		Logger:             log,
	})
	if err != nil {
		return fmt.Errorf("opening the tiers %s: %w", cfg.Levels, err)
	}
	// From here on the tiers must be torn down, whatever happens.
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := st.Teardown(tctx); err != nil {
			log.Error("tearing down the tiers", "err", err)
		} else {
			log.Info("tiers torn down")
		}
	}()
	stats, err := st.Stats(ctx)
	if err != nil {
		return err
	}
	for _, t := range stats.Tiers {
		log.Info("tier", "name", t.Tier, "level", t.Level.String(), "capacity", backend.FormatBytes(t.Capacity),
			"used", backend.FormatBytes(t.Used), "objects", t.Objects)
	}
	// Listen before the cluster starts, so that it advertises the real address.
	ln, err := server.Listen(ctx, cfg.Listen)
	if err != nil {
		return err
	}
	cm, err := startCluster(ctx, cfg, st, ln.Addr(), log)
	if err != nil {
		ln.Close()
		return err
	}
	defer cm.Close()
	opts.Cluster = cm.Handler
	srv, err := server.New(cm.Backend, opts)
	if err != nil {
		ln.Close()
		return err
	}
	if cm.node != nil {
		srv.SetGroups(nodeGroups{cm.node})
	}
	if err := cm.Register(srv.Registry()); err != nil {
		ln.Close()
		return err
	}
	addr, scheme := ln.Addr().String(), "http"
	if opts.TLS != nil {
		scheme = "https"
	}
	log.Info("distore-server listening", "addr", addr, "url", scheme+"://"+addr, "levels", cfg.Levels,
		"data_dir", cfg.DataDir, "tokens", len(opts.Tokens), "startup", time.Since(start).Round(time.Millisecond))
	// Pins live in the stack's in-memory index only (docs/operating.md).
	log.Info("pins are not persistent: a restart unpins every object")
	if opts.Tokens == nil && !server.Loopback(addr) {
		log.Warn("listening beyond loopback with --insecure: anyone who can connect may read and write", "addr", addr)
	}
	lctx, stopLocal := context.WithCancel(ctx)
	waitLocal, err := startLocal(lctx, srv, cfg, log)
	if err != nil {
		stopLocal()
		ln.Close()
		return err
	}
	err = srv.Serve(ctx, ln, cfg.ShutdownTimeout)
	stopLocal()
	waitLocal()
	log.Info("stopped serving", "err", err)
	return err
}
