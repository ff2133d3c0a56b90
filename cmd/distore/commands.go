package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"distore/backend"
	"distore/client"
)

// DefaultServer is the server used when neither --server nor DISTORE_SERVER is set.
const DefaultServer = "http://127.0.0.1:7070"

// rootCommand builds the command tree.
func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "distore",
		Short: "the command-line client of a distore server",
		Long: `distore stores, reads and manages objects on a distore server.

The server is --server, else $DISTORE_SERVER, else ` + DefaultServer + `.
With --json every command prints one JSON document on stdout, errors included
({"error":{"code":...,"message":...}}); the exit status is the same.

Exit status: 0 ok, 2 an object was not found, 64 usage error, 1 other failure.`,
		Args:          cobra.NoArgs,
		SilenceErrors: true, // run reports errors, in plain or JSON form
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("no command")
		},
	}
	server := os.Getenv("DISTORE_SERVER")
	if server == "" {
		server = DefaultServer
	}
	pf := root.PersistentFlags()
	pf.StringVar(&e.server, "server", server, "server URL ($DISTORE_SERVER)")
	pf.StringVar(&e.token, "token", os.Getenv("DISTORE_TOKEN"), "bearer token ($DISTORE_TOKEN)")
	pf.StringVar(&e.cacert, "cacert", "", "PEM file of a CA to trust for an https server")
	pf.BoolVar(&e.json, "json", false, "machine-readable output on stdout, errors included")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(e.putCommand(), e.getCommand(), e.statCommand(), e.lsCommand(), e.statsCommand(), e.healthCommand(),
		e.eachCommand("rm", []string{"delete"}, "delete objects", "deleted", (*client.Client).Delete),
		e.eachCommand("pin", nil, "pin objects: never spilled nor deleted until unpinned", "pinned", (*client.Client).Pin),
		e.eachCommand("unpin", nil, "take one pin off objects", "unpinned", (*client.Client).Unpin),
		e.eachCommand("prefetch", nil, "bring objects to the server's fastest tier", "prefetched", (*client.Client).Prefetch),
		e.schemaCommand())
	root.AddCommand(e.clusterCommands()...)
	return root
}

// runE adapts a command's function: its errors are run errors, not usage
// errors (unless it says so).
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return runError{err}
		}
		return nil
	}
}

// withClient is runE for a command that talks to the server: f gets a
// client for the global flags, closed after it.
func (e *env) withClient(f func(cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return runE(func(cmd *cobra.Command, args []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		defer c.Close()
		return f(cmd, args, c)
	})
}

// client returns a client for the global flags.
func (e *env) client() (*client.Client, error) {
	u := e.server
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	var opts []client.Option
	if e.cacert != "" {
		pem, err := os.ReadFile(e.cacert)
		if err != nil {
			return nil, usagef("--cacert: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--cacert %s: no PEM certificate in it", e.cacert)
		}
		opts = append(opts, client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	if e.token != "" {
		opts = append(opts, client.WithToken(e.token))
	}
	c, err := client.New(u, opts...)
	if err != nil {
		return nil, usagef("--server %q: want a URL such as http://host:port", e.server)
	}
	return c, nil
}

// completeIDs completes object IDs from the server's list.
func (e *env) completeIDs(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
	c, err := e.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	page, err := c.List(ctx, backend.ListOptions{Prefix: prefix, Limit: 200})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids := make([]string, len(page.Objects))
	for i, o := range page.Objects {
		ids[i] = string(o.ID)
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

// eachCommand is a command that does one thing to each of its objects and
// says what it did ("pinned ID").
func (e *env) eachCommand(name string, aliases []string, short, did string,
	f func(*client.Client, context.Context, backend.ID) error) *cobra.Command {
	return &cobra.Command{
		Use:               name + " ID...",
		Aliases:           aliases,
		Short:             short,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: e.completeIDs,
		RunE: e.withClient(func(cmd *cobra.Command, ids []string, c *client.Client) error {
			b := &batch{e: e, total: len(ids)}
			done := []string{}
			for _, id := range ids {
				err := f(c, cmd.Context(), backend.ID(id))
				b.add(id, err)
				if err == nil {
					done = append(done, id)
					if !e.json {
						fmt.Fprintf(e.stdout, "%s %s\n", did, id)
					}
				}
			}
			if e.json {
				_ = e.printJSON(b.doc(map[string]any{did: done}))
				if err := b.err(); err != nil {
					return jsonDone{err}
				}
			}
			return b.err()
		}),
	}
}

func (e *env) putCommand() *cobra.Command {
	var id, group string
	var importance int
	cmd := &cobra.Command{
		Use:   "put FILE|-",
		Short: "store a file (- for stdin); prints the new object's ID",
		Long: `put stores a file, or stdin with -, as a new object and prints its ID
(with --json, its info). The CRC-32C of the bytes sent is checked against the
server's: on a mismatch the object is removed and put fails.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if id != "" {
				if err := backend.ID(id).Validate(); err != nil {
					return usagef("--id: %v", err)
				}
			}
			return e.put(cmd.Context(), args[0], client.PutOptions{ID: backend.ID(id), Importance: importance, PrefetchGroup: group})
		}),
	}
	cmd.Flags().StringVar(&group, "group", "", "spread the object to every server of this prefetch group after the put")
	cmd.Flags().StringVar(&id, "id", "", "the object's ID (default: the server makes one)")
	cmd.Flags().IntVar(&importance, "importance", 0, "higher stays in faster tiers longer")
	return cmd
}

func (e *env) put(ctx context.Context, name string, opts client.PutOptions) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var f *os.File
	var spoolSum uint32
	if name == "-" {
		if f, spoolSum, err = e.stdinFile(); err != nil {
			return err
		}
		name = "stdin"
	} else if f, err = os.Open(name); err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("put %s: not a regular file", name)
	}
	off, _ := f.Seek(0, io.SeekCurrent) // stdin redirected from a file may be past its start
	size := st.Size() - off

	sum := backend.NewChecksum()
	bar := e.progress("put "+name, size)
	body := io.TeeReader(f, io.MultiWriter(sum, bar))
	opts.Checksum = spoolSum
	info, err := c.PutReader(ctx, body, size, opts)
	bar.finish()
	if err != nil {
		return err
	}
	if info.Checksum != sum.Sum32() {
		// The server stored other bytes than we sent: remove them and fail.
		_ = c.Delete(ctx, info.ID)
		return fmt.Errorf("put %s: %w: the server's CRC-32C %08x differs from the file's %08x; object removed",
			name, backend.ErrCorrupt, info.Checksum, sum.Sum32())
	}
	if e.json {
		return e.printJSON(info)
	}
	fmt.Fprintln(e.stdout, info.ID)
	return nil
}

// stdinFile returns stdin as a file of known size: stdin itself if it is a
// regular file, else a temporary copy (unlinked at once, so it goes away
// with the process), with the CRC-32C of its bytes.
func (e *env) stdinFile() (*os.File, uint32, error) {
	if f, ok := e.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return f, 0, nil
		}
	}
	tmp, err := os.CreateTemp("", "distore-put-*")
	if err != nil {
		return nil, 0, fmt.Errorf("put -: spooling stdin: %w", err)
	}
	_ = os.Remove(tmp.Name()) // the open file lives on until closed
	sum := backend.NewChecksum()
	bar := e.progress("reading stdin", -1)
	_, err = io.Copy(io.MultiWriter(tmp, sum, bar), e.stdin)
	bar.finish()
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		return nil, 0, fmt.Errorf("put -: spooling stdin to %s: %w", os.TempDir(), err)
	}
	return tmp, sum.Sum32(), nil
}

func (e *env) getCommand() *cobra.Command {
	var out, columns, rows, format string
	var offset, length int64
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "write an object to stdout or to a file",
		Long: `get writes an object (or the byte range --offset/--length of it) to stdout,
or to FILE with -o, replaced atomically: a failed get leaves no file. A whole
object's CRC-32C is checked against the server's.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: e.completeIDs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if offset < 0 || length < -1 {
				return usagef("bad range --offset %d --length %d", offset, length)
			}
			if columns != "" || rows != "" || format != "" {
				if offset != 0 || length != -1 {
					return usagef("--offset/--length select bytes, --columns/--rows an Arrow table's parts: not both")
				}
				return e.getColumns(cmd.Context(), backend.ID(args[0]), out, columns, rows, format)
			}
			return e.get(cmd.Context(), backend.ID(args[0]), out, offset, length)
		}),
	}
	cmd.Flags().StringVar(&columns, "columns", "", "Arrow objects: the columns to read (a,c; default all)")
	cmd.Flags().StringVar(&rows, "rows", "", "Arrow objects: the rows to read (start:end)")
	cmd.Flags().StringVar(&format, "format", "", "Arrow objects: arrow (IPC stream, the default), csv or json")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().Int64Var(&offset, "offset", 0, "first byte to read")
	cmd.Flags().Int64Var(&length, "length", -1, "bytes to read (-1: to the end)")
	return cmd
}

func (e *env) get(ctx context.Context, id backend.ID, out string, offset, length int64) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	// The get first, so that a missing object is reported as the get's.
	rc, err := c.GetReader(ctx, id, offset, length)
	if err != nil {
		return err
	}
	defer rc.Close()
	var info backend.ObjectInfo
	if r, ok := rc.(interface{ Info() backend.ObjectInfo }); ok {
		info = r.Info() // the info of exactly the bytes read
	} else if info, err = c.Info(ctx, id); err != nil {
		return err
	}
	n := info.Size - offset
	if sized, ok := rc.(interface{ Size() int64 }); ok {
		n = sized.Size()
	} else if length >= 0 {
		n = length
	}

	var w io.Writer = e.stdout
	var tmp *os.File
	if out != "" && out != "-" {
		if tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".distore-*"); err != nil {
			return err
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	var sum hash.Hash32 = backend.NewChecksum()
	bar := e.progress("get "+string(id), n)
	got, err := io.Copy(io.MultiWriter(w, sum, bar), rc)
	bar.finish()
	if err != nil {
		return fmt.Errorf("get %q: after %d of %d bytes: %w", string(id), got, n, err)
	}
	if got != n {
		return fmt.Errorf("get %q: got %d of %d bytes", string(id), got, n)
	}
	if offset == 0 && n == info.Size && sum.Sum32() != info.Checksum {
		return fmt.Errorf("get %q: %w: the bytes received have CRC-32C %08x, the server recorded %08x",
			string(id), backend.ErrCorrupt, sum.Sum32(), info.Checksum)
	}
	if tmp == nil {
		return nil
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	tmp = nil
	if e.json {
		return e.printJSON(map[string]any{"id": id, "file": out, "bytes": got})
	}
	fmt.Fprintf(e.stdout, "wrote %s to %s (%s)\n", id, out, backend.FormatBytes(got))
	return nil
}

func (e *env) statCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stat ID...",
		Short: "show objects' info",
		Long: `stat shows each object's size, tier, importance, pins, times and checksum.
With --json: the info of one object, or {"objects":[...]} for several.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: e.completeIDs,
		RunE: e.withClient(func(cmd *cobra.Command, ids []string, c *client.Client) error {
			b := &batch{e: e, total: len(ids)}
			infos := []backend.ObjectInfo{}
			for _, id := range ids {
				info, err := c.Info(cmd.Context(), backend.ID(id))
				if err != nil {
					// HEAD is how stat asks; the user asked for a stat.
					if ce, ok := err.(*client.Error); ok {
						ce.Op = "stat"
					}
					b.add(id, err)
					continue
				}
				infos = append(infos, info)
			}
			if e.json {
				if len(ids) == 1 {
					if len(infos) == 1 {
						return e.printJSON(infos[0])
					}
					return b.err() // run prints {"error":...}
				}
				_ = e.printJSON(b.doc(map[string]any{"objects": infos}))
				if err := b.err(); err != nil {
					return jsonDone{err}
				}
				return nil
			}
			for i, info := range infos {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "id:\t%s\n", info.ID)
				fmt.Fprintf(w, "size:\t%s (%d bytes)\n", backend.FormatBytes(info.Size), info.Size)
				fmt.Fprintf(w, "tier:\t%s (level %s)\n", info.Tier, info.Level)
				fmt.Fprintf(w, "importance:\t%d\n", info.Importance)
				fmt.Fprintf(w, "pins:\t%d\n", info.Pins)
				fmt.Fprintf(w, "created:\t%s\n", info.Created.Local().Format(time.RFC3339))
				if !info.Accessed.IsZero() {
					fmt.Fprintf(w, "accessed:\t%s\n", info.Accessed.Local().Format(time.RFC3339))
				}
				fmt.Fprintf(w, "crc32c:\t%08x\n", info.Checksum)
				w.Flush()
			}
			return b.err()
		}),
	}
}

func (e *env) lsCommand() *cobra.Command {
	var prefix string
	var limit int
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls [PREFIX]",
		Aliases: []string{"list"},
		Short:   "list objects",
		Long: `ls lists the objects whose ID starts with PREFIX (all of them by default),
in ID order, then a line with their count and total size. -q prints only
the IDs. With --json: {"objects":[...],"count":N,"bytes":N}.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if prefix != "" {
					return usagef("give the prefix as an argument or as --prefix, not both")
				}
				prefix = args[0]
			}
			if limit < 0 {
				return usagef("--limit %d is negative", limit)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			defer c.Close()
			objs := []backend.ObjectInfo{}
			var total int64
			for o, err := range c.All(cmd.Context(), prefix) {
				if err != nil {
					return err
				}
				objs = append(objs, o)
				total += o.Size
				if limit > 0 && len(objs) == limit {
					break
				}
			}
			switch {
			case e.json:
				return e.printJSON(map[string]any{"objects": objs, "count": len(objs), "bytes": total})
			case quiet:
				for _, o := range objs {
					fmt.Fprintln(e.stdout, o.ID)
				}
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tSIZE\tTIER\tIMPORTANCE\tPINS\tCREATED")
			for _, o := range objs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", o.ID, backend.FormatBytes(o.Size), o.Tier, o.Importance, o.Pins,
					o.Created.Local().Format("2006-01-02 15:04:05"))
			}
			w.Flush()
			fmt.Fprintf(e.stdout, "%s, %s\n", count(len(objs), "object"), backend.FormatBytes(total))
			return nil
		}),
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "only IDs that start with this")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many objects (0: all)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the IDs")
	return cmd
}

// count says "1 object", "3 objects".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func (e *env) statsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "show the server's tiers: capacity, use, objects, pinned",
		Args:  cobra.NoArgs,
		RunE: e.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			st, err := c.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(st)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(w, "TIER\tLEVEL\tUSED\tCAPACITY\tUSE%\tOBJECTS\tPINNED\t")
			row := func(s backend.Stats) {
				pct := "-"
				if s.Capacity > 0 {
					pct = fmt.Sprintf("%.1f%%", 100*float64(s.Used)/float64(s.Capacity))
				}
				pinned := "-"
				if s.PinnedObjects > 0 {
					pinned = fmt.Sprintf("%s in %s", backend.FormatBytes(s.Pinned), count(int(s.PinnedObjects), "object"))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", s.Tier, s.Level, backend.FormatBytes(s.Used),
					backend.FormatBytes(s.Capacity), pct, s.Objects, pinned)
			}
			for _, t := range st.Tiers {
				row(t)
			}
			if len(st.Tiers) > 0 {
				st.Tier = "total"
			}
			row(st)
			return w.Flush()
		}),
	}
}

func (e *env) healthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "check that the server answers and its store works",
		Args:  cobra.NoArgs,
		RunE: e.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			if err := c.Health(cmd.Context()); err != nil {
				return err
			}
			if e.json {
				return e.printJSON(map[string]string{"status": "ok", "server": c.URL()})
			}
			fmt.Fprintf(e.stdout, "ok: %s\n", c.URL())
			return nil
		}),
	}
}
