// Command distore is the command-line client of a distore server.
//
//	distore put FILE|-        store a file (or stdin); prints the new ID
//	distore get ID [-o FILE]  write an object to stdout or FILE
//	distore rm ID...          delete objects
//	distore stat ID...        show objects' info
//	distore ls [--prefix P]   list objects
//	distore pin|unpin|prefetch ID...
//	distore stats             show the server's tiers and usage
//
// The server is --server URL, else $DISTORE_SERVER, else http://127.0.0.1:7070.
// --json prints machine-readable output. A progress bar is drawn on stderr
// for transfers that take more than a second, when stderr is a terminal.
//
// put - (stdin): when stdin is a regular file its size is known and it is
// streamed; otherwise (a pipe) it is first spooled to a temporary file in
// $TMPDIR to learn the size, since the server needs Content-Length before the
// body. Both put and get verify the CRC-32C of the bytes they moved against
// the server's checksum.
//
// Exit status: 0 success, 2 an object was not found, 64 usage error, 1 any
// other failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitNotFound = 2
	exitUsage    = 64
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: distore [--server URL] [--json] COMMAND [ARGS]

commands:
  put FILE|-  [--id ID] [--importance N]   store a file or stdin; prints its ID
  get ID [-o FILE] [--offset N] [--length N]  write an object to stdout or FILE
  rm ID...                                 delete objects
  stat ID...                               show objects' info
  ls [--prefix P] [--limit N]              list objects (all pages; --limit caps)
  pin ID...                                pin objects (never spilled or deleted)
  unpin ID...                              take one pin off
  prefetch ID...                           bring objects to the fastest tier
  stats                                    tiers, capacity and usage
  health                                   check the server answers

flags (anywhere on the line):
  --server URL   server address (default $DISTORE_SERVER or http://127.0.0.1:7070)
  --json         machine-readable output

exit status: 0 ok, 2 not found, 64 usage error, 1 other failure
`

// usageError is a bad command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what a command runs with.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	json           bool
	server         string
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	err := e.dispatch(args)
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "distore: %v\n\n%s", err, usage)
		return exitUsage
	}
	fmt.Fprintf(stderr, "distore: %v\n", err)
	if isNotFound(err) {
		return exitNotFound
	}
	return exitFailure
}
