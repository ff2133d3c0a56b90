// Command distore is the command-line client of a distore server.
//
//	distore put FILE|-        store a file (or stdin); prints the new ID
//	distore get ID [-o FILE]  write an object to stdout or FILE
//	distore rm ID...          delete objects
//	distore stat ID...        show objects' info
//	distore ls [PREFIX]       list objects
//	distore pin|unpin|prefetch ID...
//	distore stats             show the server's tiers and usage
//	distore health            check the server answers
//	distore completion bash|zsh|fish|powershell
//
// `distore help COMMAND` (or COMMAND --help) describes each command;
// docs/cli.md is the reference.
//
// Global flags: --server URL (else $DISTORE_SERVER, else
// http://127.0.0.1:7070), --token T (else $DISTORE_TOKEN), --cacert FILE (a
// CA to trust for https), --json (machine-readable output on stdout, errors
// included: {"error":{"code":...,"message":...}}, exit status unchanged). A
// progress bar is drawn on stderr for transfers when stderr is a terminal.
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

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := e.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if !e.json && jsonRequested(args) {
		e.json = true // the command line failed to parse after --json
	}
	return e.fail(err)
}
