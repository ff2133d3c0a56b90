package main

// The CLI's tests run the built binaries: TestMain builds distore and
// distore-server, each test starts a server on 127.0.0.1:0 and drives it
// with the distore command, in plain and --json form, errors and exit codes
// included.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"distore/backend"
	"distore/internal/testutil"
	"distore/servercmd"
)

var cliBin, serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "distore-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cliBin, serverBin = filepath.Join(dir, "distore"), filepath.Join(dir, "distore-server")
	for out, pkg := range map[string]string{cliBin: "distore/cmd/distore", serverBin: "distore/cmd/distore-server"} {
		if err := testutil.BuildProgram(out, pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var addrRE = regexp.MustCompile(`msg="distore-server listening" addr=(\S+)`)

// startServer runs distore-server (memory over disk, in a temporary data
// dir) and returns its URL; the test's cleanup stops it with SIGTERM.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(serverBin, "--listen", "127.0.0.1:0", "--data-dir", dir, "--memory-capacity", "16MiB", "--release-arena")
	log := &testutil.SyncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = log, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("distore-server after SIGTERM: %v\n%s", err, log)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("distore-server did not stop in 30 s\n%s", log)
		}
		if _, err := os.Stat(servercmd.ArenaPath(dir)); !os.IsNotExist(err) {
			t.Errorf("--release-arena left the arena %s: %v", servercmd.ArenaPath(dir), err)
			os.Remove(servercmd.ArenaPath(dir))
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case err := <-exited:
		t.Fatalf("distore-server exited: %v\n%s", err, log)
	case <-time.After(30 * time.Second):
		t.Fatalf("distore-server did not log its address\n%s", log)
	}
	return ""
}

// cli runs the built distore against server and returns stdout, stderr and
// the exit status.
func cli(t *testing.T, server string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), "DISTORE_SERVER="+server, "DISTORE_TOKEN=")
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// jsonError is the --json error document.
type jsonError struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestCommands drives every command in plain and --json form.
func TestCommands(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "in.bin")
	data := bytes.Repeat([]byte("distore "), 300<<10) // 2.3 MiB: over several reads
	os.WriteFile(file, data, 0o644)
	run := func(stdin io.Reader, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := cli(t, srv, stdin, args...)
		if code != 0 {
			t.Fatalf("distore %q: exit %d\n%s%s", args, code, out, errOut)
		}
		return out, errOut
	}

	// put prints the ID; get -o writes the same bytes and says so.
	out, _ := run(nil, "put", file, "--importance", "5")
	id := strings.TrimSpace(out)
	if backend.ID(id).Validate() != nil {
		t.Fatalf("put printed %q, not an ID", out)
	}
	outFile := filepath.Join(dir, "out.bin")
	if out, _ := run(nil, "get", id, "-o", outFile); !strings.Contains(out, "wrote "+id+" to "+outFile) {
		t.Errorf("get -o said %q", out)
	}
	if got, _ := os.ReadFile(outFile); !bytes.Equal(got, data) {
		t.Fatalf("get -o wrote %d bytes, want the %d put", len(got), len(data))
	}
	var gj struct {
		ID    string `json:"id"`
		Bytes int64  `json:"bytes"`
	}
	if out, _ := run(nil, "--json", "get", id, "-o", outFile); json.Unmarshal([]byte(out), &gj) != nil ||
		gj.ID != id || gj.Bytes != int64(len(data)) {
		t.Errorf("get -o --json: %q", out)
	}
	if out, _ := run(nil, "get", id, "--offset", "10", "--length", "100"); out != string(data[10:110]) {
		t.Errorf("get range: %q", out)
	}
	// put - from a pipe (spooled) and from a redirected file (streamed).
	if out, _ := run(strings.NewReader("piped bytes"), "put", "-", "--id", "piped"); strings.TrimSpace(out) != "piped" {
		t.Errorf("put - (pipe): %q", out)
	}
	f, _ := os.Open(file)
	out, _ = run(f, "put", "-", "--id", "redirected", "--json")
	f.Close()
	var info backend.ObjectInfo
	if json.Unmarshal([]byte(out), &info) != nil || info.ID != "redirected" || info.Size != int64(len(data)) {
		t.Errorf("put - --json: %q", out)
	}
	if out, _ := run(nil, "get", "piped"); out != "piped bytes" {
		t.Errorf("get piped: %q", out)
	}

	// stat: plain; --json of one object is its info, of several a list.
	if out, _ := run(nil, "stat", id); !strings.Contains(out, "importance:  5") || !strings.Contains(out, "2.3 MiB") {
		t.Errorf("stat: %q", out)
	}
	out, _ = run(nil, "--json", "stat", id)
	if json.Unmarshal([]byte(out), &info) != nil || info.Importance != 5 || info.Checksum != backend.Checksum(data) {
		t.Errorf("stat --json: %q", out)
	}
	var objs struct {
		Objects []backend.ObjectInfo `json:"objects"`
		Count   int                  `json:"count"`
		Bytes   int64                `json:"bytes"`
	}
	if out, _ := run(nil, "stat", "--json", id, "piped"); json.Unmarshal([]byte(out), &objs) != nil || len(objs.Objects) != 2 {
		t.Errorf("stat --json of two: %q", out)
	}

	// ls: the table and its count on stdout; -q the IDs; --json with count.
	out, errOut := run(nil, "ls")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 || lines[4] != "3 objects, 4.7 MiB" || errOut != "" {
		t.Errorf("ls: %q, stderr %q", out, errOut)
	}
	if out, _ := run(nil, "ls", "pi"); !strings.Contains(out, "piped") || strings.Contains(out, "redirected") ||
		!strings.HasSuffix(out, "1 object, 11 B\n") {
		t.Errorf("ls PREFIX: %q", out)
	}
	if out, _ := run(nil, "ls", "-q", "--prefix", "pi"); out != "piped\n" {
		t.Errorf("ls -q: %q", out)
	}
	if out, _ := run(nil, "ls", "--json"); json.Unmarshal([]byte(out), &objs) != nil || objs.Count != 3 || len(objs.Objects) != 3 ||
		objs.Bytes != 2*int64(len(data))+11 {
		t.Errorf("ls --json: %q", out)
	}

	// pin and unpin say what they did; stats shows the pinned bytes.
	if out, _ := run(nil, "pin", "piped"); out != "pinned piped\n" {
		t.Errorf("pin: %q", out)
	}
	out, _ = run(nil, "stats")
	if !strings.Contains(out, "memory") || !strings.Contains(out, "16.0 MiB") || !strings.Contains(out, " in 1 object") ||
		strings.Contains(out, "(0)") {
		t.Errorf("stats: %q", out)
	}
	var st backend.Stats
	if out, _ := run(nil, "stats", "--json"); json.Unmarshal([]byte(out), &st) != nil || st.Objects != 3 || st.PinnedObjects != 1 {
		t.Errorf("stats --json: %q", out)
	}
	var pj map[string][]string
	if out, _ := run(nil, "prefetch", "--json", "piped"); json.Unmarshal([]byte(out), &pj) != nil || pj["prefetched"][0] != "piped" {
		t.Errorf("prefetch --json: %q", out)
	}

	// rm of a pinned object: one message that names each thing once.
	out, errOut, code := cli(t, srv, nil, "rm", "piped")
	if code != exitFailure || out != "" || strings.Count(errOut, `"piped"`) != 1 || strings.Count(errOut, "distore") != 1 ||
		!strings.Contains(errOut, "pinned") {
		t.Errorf("rm pinned: %d %q %q", code, out, errOut)
	}
	// and in --json: the document on stdout, nothing on stderr, same status.
	out, errOut, code = cli(t, srv, nil, "--json", "rm", "piped")
	var rj struct {
		jsonError
		Deleted []string `json:"deleted"`
		Failed  []struct {
			ID, Code string
		} `json:"failed"`
	}
	if code != exitFailure || errOut != "" || json.Unmarshal([]byte(out), &rj) != nil || rj.Error == nil || rj.Error.Code != "pinned" ||
		len(rj.Failed) != 1 || rj.Failed[0].ID != "piped" || rj.Deleted == nil {
		t.Errorf("rm pinned --json: %d %q %q", code, out, errOut)
	}
	if out, _ := run(nil, "unpin", "piped"); out != "unpinned piped\n" {
		t.Errorf("unpin: %q", out)
	}
	if out, _ := run(nil, "rm", "piped", "redirected"); out != "deleted piped\ndeleted redirected\n" {
		t.Errorf("rm: %q", out)
	}

	// A missing object: the message says get (not info), once; status 2.
	for _, args := range [][]string{{"get", "piped"}, {"stat", "piped"}, {"pin", "piped"}} {
		out, errOut, code := cli(t, srv, nil, args...)
		want := fmt.Sprintf(`%s "piped": object not found`, args[0])
		if code != exitNotFound || out != "" || !strings.Contains(errOut, want) || strings.Count(errOut, "piped") != 1 {
			t.Errorf("%v: %d %q %q, want status 2 and %q", args, code, out, errOut, want)
		}
		out, errOut, code = cli(t, srv, nil, append(args, "--json")...)
		var je jsonError
		if code != exitNotFound || errOut != "" || json.Unmarshal([]byte(out), &je) != nil || je.Error == nil ||
			je.Error.Code != "not_found" || !strings.Contains(je.Error.Message, want) {
			t.Errorf("%v --json: %d %q %q", args, code, out, errOut)
		}
	}
	// Several objects, some missing: each failure once, then the count.
	out, errOut, code = cli(t, srv, nil, "stat", id, "nope1", "nope2")
	if code != exitNotFound || !strings.Contains(out, "id:          "+id) || strings.Count(errOut, "nope1") != 1 ||
		!strings.HasSuffix(errOut, "distore: 2 of 3 objects failed\n") {
		t.Errorf("stat with missing: %d %q %q", code, out, errOut)
	}
	// A failed get -o leaves no file.
	if _, _, code := cli(t, srv, nil, "get", "nope", "-o", filepath.Join(dir, "never")); code != exitNotFound {
		t.Errorf("get -o missing: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Errorf("failed get -o created the file: %v", err)
	}
}

// TestExitCodes checks the documented statuses through the built binary.
func TestExitCodes(t *testing.T) {
	srv := startServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o644)
	if _, errOut, code := cli(t, srv, nil, "put", "--id", "here", file); code != 0 {
		t.Fatalf("put: %d %s", code, errOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		json string // the error code with --json
	}{
		{[]string{"get", "nope"}, exitNotFound, "not_found"},
		{[]string{"rm", "nope", "nope2"}, exitNotFound, "not_found"},
		{[]string{"unpin", "here"}, exitFailure, "not_pinned"},
		{[]string{"put", "--id", "here", file}, exitFailure, "exists"},
		{[]string{"get", "bad/id"}, exitFailure, "invalid_id"},
		{[]string{"put", filepath.Join(dir, "missing")}, exitFailure, "file"},
		{[]string{"--server", "http://127.0.0.1:1", "stats"}, exitFailure, "unreachable"},
		{[]string{}, exitUsage, "usage"},
		{[]string{"get"}, exitUsage, "usage"},
		{[]string{"get", "a", "b"}, exitUsage, "usage"},
		{[]string{"frobnicate"}, exitUsage, "usage"},
		{[]string{"put"}, exitUsage, "usage"},
		{[]string{"put", "--id", "../x", file}, exitUsage, "usage"},
		{[]string{"get", "here", "--bogus"}, exitUsage, "usage"},
		{[]string{"get", "here", "--offset", "-1"}, exitUsage, "usage"},
		{[]string{"--server", "ftp://x", "stats"}, exitUsage, "usage"},
		{[]string{"--cacert", filepath.Join(dir, "f"), "stats"}, exitUsage, "usage"},
	} {
		if out, errOut, code := cli(t, srv, nil, tc.args...); code != tc.code || errOut == "" || out != "" {
			t.Errorf("distore %q: exit %d, want %d; stdout %q, stderr %q", tc.args, code, tc.code, out, errOut)
		}
		out, errOut, code := cli(t, srv, nil, append(tc.args, "--json")...)
		var je jsonError
		if code != tc.code || errOut != "" || json.Unmarshal([]byte(out), &je) != nil || je.Error == nil || je.Error.Code != tc.json {
			t.Errorf("distore %q --json: exit %d, want %d and code %s; stdout %q, stderr %q", tc.args, code, tc.code, tc.json, out, errOut)
		}
	}
	// --server beats DISTORE_SERVER.
	if out, _, code := cli(t, "http://127.0.0.1:1", nil, "--server", srv, "health"); code != 0 || out != "ok: "+srv+"\n" {
		t.Errorf("--server: %d %q", code, out)
	}
}

// TestHelpAndCompletion: every command has help; completion scripts come
// for the common shells.
func TestHelpAndCompletion(t *testing.T) {
	for _, c := range []string{"put", "get", "rm", "stat", "ls", "pin", "unpin", "prefetch", "stats", "health"} {
		out, _, code := cli(t, "", nil, c, "--help")
		if code != 0 || !strings.Contains(out, "Usage:\n  distore "+c) || !strings.Contains(out, "--json") {
			t.Errorf("%s --help: %d %q", c, code, out)
		}
	}
	if out, _, code := cli(t, "", nil, "help"); code != 0 || !strings.Contains(out, "Exit status: 0 ok, 2") {
		t.Errorf("help: %d %q", code, out)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if out, _, code := cli(t, "", nil, "completion", sh); code != 0 || !strings.Contains(out, "distore") || len(out) < 1000 {
			t.Errorf("completion %s: %d, %d bytes", sh, code, len(out))
		}
	}
}

func TestSameOp(t *testing.T) {
	for _, tc := range []struct{ msg, op, id, want string }{
		{`memory,disk: info "x": object not found`, "get", "x", `memory,disk: get "x": object not found`},
		{`memory,disk: get "x": object not found`, "get", "x", `memory,disk: get "x": object not found`},
		{`disk: delete "x": object is pinned: 1 pins`, "rm", "x", `disk: rm "x": object is pinned: 1 pins`},
		{`no shape "x": here`, "get", "x", `no shape "x": here`},
		{`object "x" gone`, "get", "x", `object "x" gone`},
	} {
		if got := sameOp(tc.msg, tc.op, backend.ID(tc.id)); got != tc.want {
			t.Errorf("sameOp(%q, %s) = %q, want %q", tc.msg, tc.op, got, tc.want)
		}
	}
}

// TestTokenAndCA: --token (or DISTORE_TOKEN) is sent as a bearer token, and
// --cacert makes an https server with a private CA trusted.
func TestTokenAndCA(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	if out, errOut, code := cli(t, srv.URL, nil, "--cacert", ca, "--token", "s3cret", "health"); code != 0 {
		t.Fatalf("health with --cacert: %d %q %q", code, out, errOut)
	}
	cmd := exec.Command(cliBin, "--server", srv.URL, "--cacert", ca, "health")
	cmd.Env = append(os.Environ(), "DISTORE_TOKEN=from-env")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("health with DISTORE_TOKEN: %v %s", err, out)
	}
	// Without the CA the server is not trusted.
	if _, errOut, code := cli(t, srv.URL, nil, "health"); code != exitFailure || !strings.Contains(errOut, "certificate") {
		t.Errorf("health without --cacert: %d %q", code, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(auth, []string{"Bearer s3cret", "Bearer from-env"}) {
		t.Errorf("Authorization headers %q", auth)
	}
}
