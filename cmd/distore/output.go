package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strconv"
	"strings"

	"distore/backend"
	"distore/client"
)

// env is what the commands run with: the streams and the global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	server         string // --server, or $DISTORE_SERVER, or DefaultServer
	token          string // --token, or $DISTORE_TOKEN
	cacert         string // --cacert
	json           bool   // --json
}

// usageError is a bad command line (exit 64).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// runError marks an error returned by a command's run, as opposed to one of
// the command line itself (cobra's own parse and argument errors).
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// failure is an error as the CLI reports it.
type failure struct {
	Code    string `json:"code"`    // the API's code ("not_found"), or the CLI's: usage, unreachable, file, error
	Message string `json:"message"` // names each thing once
	exit    int
}

// describe turns err into what the user is told. A server's error message
// already names the tier, the operation and the object; describe adds only
// what it lacks, so nothing is said twice.
func (e *env) describe(err error) failure {
	var ue usageError
	var re runError
	if !errors.As(err, &re) || errors.As(err, &ue) {
		if !errors.As(err, &ue) {
			ue = usageError{err.Error()} // cobra's: unknown command, flag, argument count
		}
		return failure{Code: "usage", Message: ue.msg + " (see distore --help)", exit: exitUsage}
	}
	err = re.err
	var be *batchError
	if errors.As(err, &be) {
		f := e.describe(runError{be.first})
		f.Message = be.Error()
		return f
	}
	f := failure{Code: "error", Message: err.Error(), exit: exitFailure}
	var ce *client.Error
	var urlErr *url.Error
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &ce):
		f.Code, f.Message = ce.Code, ce.Message
		if f.Code == "" {
			f.Code = "error"
		}
		if ce.ID != "" && !strings.Contains(f.Message, strconv.Quote(string(ce.ID))) {
			f.Message = fmt.Sprintf("%s %q: %s", ce.Op, string(ce.ID), f.Message)
		} else if ce.ID != "" {
			f.Message = sameOp(f.Message, ce.Op, ce.ID)
		} else if ce.ID == "" && !strings.Contains(f.Message, ce.Op) {
			f.Message = ce.Op + ": " + f.Message
		}
	case errors.As(err, &urlErr):
		f.Code, f.Message = "unreachable", fmt.Sprintf("server %s: %v", e.server, urlErr.Err)
	case errors.Is(err, backend.ErrCorrupt):
		f.Code = "corrupt"
	case errors.As(err, &pathErr):
		f.Code = "file"
	case errors.Is(err, context.Canceled):
		f.Code = "canceled"
	}
	if errors.Is(err, backend.ErrNotFound) {
		f.Code, f.exit = "not_found", exitNotFound
	}
	return f
}

// sameOp makes a server message of the form `tier: op "id": what` name the
// operation the user asked for: a get the server began with a lookup says
// `get "x"`, not `info "x"`.
func sameOp(msg, op string, id backend.ID) string {
	q := " " + strconv.Quote(string(id)) + ":"
	i := strings.Index(msg, q)
	if i < 0 {
		return msg
	}
	start := strings.LastIndex(msg[:i], ": ") + 2
	if start < 2 || strings.ContainsAny(msg[start:i], " \"") {
		return msg // not the tier's prefix
	}
	return msg[:start] + op + msg[i:]
}

// fail reports err (on stderr, or as {"error":...} on stdout with --json)
// and returns the exit status for it.
func (e *env) fail(err error) int {
	f := e.describe(err)
	var done jsonDone
	if e.json && errors.As(err, &done) {
		return f.exit // the command's document carries the error
	}
	if e.json {
		_ = e.printJSON(map[string]any{"error": f})
	} else {
		fmt.Fprintf(e.stderr, "distore: %s\n", f.Message)
	}
	return f.exit
}

// jsonDone wraps an error that the command has already put in its --json
// document.
type jsonDone struct{ err error }

func (e jsonDone) Error() string { return e.err.Error() }
func (e jsonDone) Unwrap() error { return e.err }

// printJSON writes v as indented JSON on stdout.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonRequested reports whether args ask for --json before any "--", for a
// command line that failed before its flags were all parsed.
func jsonRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--json", "--json=true":
			return true
		}
	}
	return false
}

// itemFailure is one object's failure in a command on many objects.
type itemFailure struct {
	ID string `json:"id"`
	failure
}

// MarshalJSON flattens the failure into the item.
func (i itemFailure) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID      string `json:"id"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}{i.ID, i.Code, i.Message})
}

// batch collects the outcome of a command run on several objects.
type batch struct {
	e      *env
	total  int
	failed []itemFailure
	first  error // the most telling error: a not-found one if any
}

// add records err (nil: success) for id; in plain form a failure is told
// at once on stderr when the batch has several objects.
func (b *batch) add(id string, err error) {
	if err == nil {
		return
	}
	err = runError{err}
	f := b.e.describe(err)
	b.failed = append(b.failed, itemFailure{ID: id, failure: f})
	if b.first == nil || (f.exit == exitNotFound && b.e.describe(b.first).exit != exitNotFound) {
		b.first = err
	}
	if !b.e.json && b.total > 1 {
		fmt.Fprintf(b.e.stderr, "distore: %s\n", f.Message)
	}
}

// err returns the batch's error for the exit status; with several objects
// its message counts the failures instead of repeating them.
func (b *batch) err() error {
	if b.first == nil {
		return nil
	}
	if b.total == 1 {
		return b.first
	}
	return runError{&batchError{n: len(b.failed), total: b.total, first: b.first}}
}

// doc adds the failures and the error to a --json document.
func (b *batch) doc(m map[string]any) map[string]any {
	if len(b.failed) > 0 {
		m["failed"] = b.failed
	}
	if err := b.err(); err != nil {
		m["error"] = b.e.describe(err)
	}
	return m
}

// batchError says how many of a batch failed; it wraps the most telling
// failure, whose code it carries.
type batchError struct {
	n, total int
	first    error
}

func (e *batchError) Error() string {
	return fmt.Sprintf("%d of %d objects failed", e.n, e.total)
}
func (e *batchError) Unwrap() error { return e.first }
