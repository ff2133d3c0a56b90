package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"distore/backend"
	"distore/client"
)

// DefaultServer is the server used when neither --server nor DISTORE_SERVER is set.
const DefaultServer = "http://127.0.0.1:7070"

// newFlags returns a command's flag set with the common flags on it.
func (e *env) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints usage errors itself
	fs.StringVar(&e.server, "server", e.server, "server URL")
	fs.BoolVar(&e.json, "json", e.json, "machine-readable output")
	return fs
}

// parse parses flags anywhere among the arguments and returns the others;
// after "--" every argument is positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// dispatch runs the command named by args.
func (e *env) dispatch(args []string) error {
	e.server = os.Getenv("DISTORE_SERVER")
	if e.server == "" {
		e.server = DefaultServer
	}
	g := e.newFlags("distore")
	if err := g.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	args = g.Args()
	if len(args) == 0 {
		return usagef("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "put":
		return e.put(args)
	case "get":
		return e.get(args)
	case "rm", "delete":
		return e.each(cmd, args, func(c *client.Client, id backend.ID) error { return c.Delete(e.ctx, id) })
	case "pin":
		return e.each(cmd, args, func(c *client.Client, id backend.ID) error { return c.Pin(e.ctx, id) })
	case "unpin":
		return e.each(cmd, args, func(c *client.Client, id backend.ID) error { return c.Unpin(e.ctx, id) })
	case "prefetch":
		return e.each(cmd, args, func(c *client.Client, id backend.ID) error { return c.Prefetch(e.ctx, id) })
	case "stat":
		return e.stat(args)
	case "ls", "list":
		return e.ls(args)
	case "stats":
		return e.stats(args)
	case "health":
		return e.health(args)
	case "help":
		return flag.ErrHelp
	}
	return usagef("unknown command %q", cmd)
}

func (e *env) client() (*client.Client, error) {
	u := e.server
	if !strings.Contains(u, "://") {
		u = "http://" + u
	}
	c, err := client.New(u)
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	return c, nil
}

func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// each runs f on every ID argument; it reports every failure and returns the
// first error of the most telling kind (not-found wins, so the exit status
// says it).
func (e *env) each(cmd string, args []string, f func(*client.Client, backend.ID) error) error {
	fs := e.newFlags(cmd)
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usagef("%s: no object ID", cmd)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var errs []error
	var done []string
	for _, id := range ids {
		if err := f(c, backend.ID(id)); err != nil {
			errs = append(errs, err)
			if len(ids) > 1 {
				fmt.Fprintf(e.stderr, "distore: %v\n", err)
			}
			continue
		}
		done = append(done, id)
	}
	if e.json {
		if done == nil {
			done = []string{}
		}
		_ = e.printJSON(map[string]any{"ok": done})
	}
	return firstError(errs)
}

// firstError returns a not-found error if there is one, else the first.
func firstError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs {
		if isNotFound(err) {
			if len(errs) > 1 {
				return fmt.Errorf("%d of the objects failed; first not found: %w", len(errs), err)
			}
			return err
		}
	}
	if len(errs) > 1 {
		return fmt.Errorf("%d of the objects failed; first: %w", len(errs), errs[0])
	}
	return errs[0]
}

func isNotFound(err error) bool { return errors.Is(err, backend.ErrNotFound) }

func (e *env) put(args []string) error {
	fs := e.newFlags("put")
	id := fs.String("id", "", "the object's ID (default: the server generates one)")
	imp := fs.Int("importance", 0, "importance: higher stays in faster tiers longer")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("put: want one FILE or - (stdin), got %d arguments", len(pos))
	}
	if *id != "" {
		if err := backend.ID(*id).Validate(); err != nil {
			return usagef("put --id: %v", err)
		}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()

	var f *os.File
	var spoolSum uint32
	name := pos[0]
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
		return fmt.Errorf("put: %s is not a regular file", name)
	}
	size := st.Size()
	off, _ := f.Seek(0, io.SeekCurrent) // stdin redirected from a file may be past its start
	size -= off

	sum := backend.NewChecksum()
	pr := e.progress("put "+name, size)
	body := io.TeeReader(io.Reader(f), io.MultiWriter(sum, pr))
	opts := client.PutOptions{ID: backend.ID(*id), Importance: *imp, Checksum: spoolSum}
	info, err := c.PutReader(e.ctx, body, size, opts)
	pr.done()
	if err != nil {
		return err
	}
	if info.Checksum != sum.Sum32() {
		// The server stored other bytes than we sent: remove them and fail.
		_ = c.Delete(e.ctx, info.ID)
		return fmt.Errorf("put %s: the server's checksum %08x differs from the file's %08x; object removed",
			name, info.Checksum, sum.Sum32())
	}
	if e.json {
		return e.printJSON(info)
	}
	fmt.Fprintln(e.stdout, info.ID)
	return nil
}

// stdinFile returns stdin as a file of known size: stdin itself if it is a
// regular file, else a temporary copy (removed when closed on Linux, as it is
// unlinked at once), with the CRC-32C of its bytes.
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
	pr := e.progress("reading stdin", -1)
	_, err = io.Copy(io.MultiWriter(tmp, sum, pr), e.stdin)
	pr.done()
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		return nil, 0, fmt.Errorf("put -: spooling stdin to %s: %w", os.TempDir(), err)
	}
	return tmp, sum.Sum32(), nil
}

func (e *env) get(args []string) error {
	fs := e.newFlags("get")
	out := fs.String("o", "", "write to FILE instead of stdout (replaced atomically)")
	offset := fs.Int64("offset", 0, "first byte to read")
	length := fs.Int64("length", -1, "bytes to read (-1: to the end)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("get: want one object ID, got %d arguments", len(pos))
	}
	if *offset < 0 || *length < -1 {
		return usagef("get: bad range --offset %d --length %d", *offset, *length)
	}
	id := backend.ID(pos[0])
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	info, err := c.Info(e.ctx, id)
	if err != nil {
		return err
	}
	rc, err := c.GetReader(e.ctx, id, *offset, *length)
	if err != nil {
		return err
	}
	defer rc.Close()
	n := info.Size - *offset
	if *length >= 0 {
		n = *length
	}

	var w io.Writer = e.stdout
	var tmp *os.File
	if *out != "" && *out != "-" {
		if tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".distore-*"); err != nil {
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
	pr := e.progress("get "+string(id), n)
	got, err := io.Copy(io.MultiWriter(w, sum, pr), rc)
	pr.done()
	if err != nil {
		return fmt.Errorf("get %q: after %d of %d bytes: %w", string(id), got, n, err)
	}
	if got != n {
		return fmt.Errorf("get %q: got %d of %d bytes", string(id), got, n)
	}
	if *offset == 0 && n == info.Size && sum.Sum32() != info.Checksum {
		return fmt.Errorf("get %q: %w: received bytes have CRC-32C %08x, the server recorded %08x",
			string(id), backend.ErrCorrupt, sum.Sum32(), info.Checksum)
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return err
		}
		tmp = nil
	}
	if e.json && *out != "" && *out != "-" {
		return e.printJSON(map[string]any{"id": id, "file": *out, "bytes": got})
	}
	return nil
}

func (e *env) stat(args []string) error {
	fs := e.newFlags("stat")
	ids, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usagef("stat: no object ID")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var infos []backend.ObjectInfo
	var errs []error
	for _, id := range ids {
		info, err := c.Info(e.ctx, backend.ID(id))
		if err != nil {
			errs = append(errs, err)
			if len(ids) > 1 {
				fmt.Fprintf(e.stderr, "distore: %v\n", err)
			}
			continue
		}
		infos = append(infos, info)
	}
	if e.json {
		if len(ids) == 1 && len(infos) == 1 {
			_ = e.printJSON(infos[0])
		} else if len(infos) > 0 || len(ids) > 1 {
			if infos == nil {
				infos = []backend.ObjectInfo{}
			}
			_ = e.printJSON(infos)
		}
	} else {
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
	}
	return firstError(errs)
}

func (e *env) ls(args []string) error {
	fs := e.newFlags("ls")
	prefix := fs.String("prefix", "", "only IDs that start with this")
	limit := fs.Int("limit", 0, "at most this many objects (0: all)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && *prefix == "" {
		*prefix = pos[0] // "distore ls PREFIX"
	} else if len(pos) > 0 {
		return usagef("ls: unexpected arguments %q", pos)
	}
	if *limit < 0 {
		return usagef("ls: --limit %d is negative", *limit)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var objs []backend.ObjectInfo
	for o, err := range c.All(e.ctx, *prefix) {
		if err != nil {
			return err
		}
		objs = append(objs, o)
		if *limit > 0 && len(objs) == *limit {
			break
		}
	}
	if e.json {
		if objs == nil {
			objs = []backend.ObjectInfo{}
		}
		return e.printJSON(objs)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSIZE\tTIER\tIMPORTANCE\tPINS\tCREATED")
	var total int64
	for _, o := range objs {
		total += o.Size
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", o.ID, backend.FormatBytes(o.Size), o.Tier, o.Importance, o.Pins,
			o.Created.Local().Format("2006-01-02 15:04:05"))
	}
	w.Flush()
	fmt.Fprintf(e.stderr, "%d objects, %s\n", len(objs), backend.FormatBytes(total))
	return nil
}

func (e *env) stats(args []string) error {
	fs := e.newFlags("stats")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("stats: unexpected arguments %q", pos)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Stats(e.ctx)
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
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s (%d)\t\n", s.Tier, s.Level, backend.FormatBytes(s.Used),
			backend.FormatBytes(s.Capacity), pct, s.Objects, backend.FormatBytes(s.Pinned), s.PinnedObjects)
	}
	for _, t := range st.Tiers {
		row(t)
	}
	if len(st.Tiers) > 0 {
		st.Tier = "total"
	}
	row(st)
	return w.Flush()
}

func (e *env) health(args []string) error {
	fs := e.newFlags("health")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("health: unexpected arguments %q", pos)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Health(e.ctx); err != nil {
		return err
	}
	if e.json {
		return e.printJSON(map[string]string{"status": "ok", "server": c.URL()})
	}
	fmt.Fprintf(e.stdout, "ok: %s\n", c.URL())
	return nil
}
