package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"gopkg.in/yaml.v3"

	"distore/client"
	"distore/servercmd"
)

// checkFlags fails the test for each --flag in args that distore-server
// does not have, and returns the flags' values by name.
func checkFlags(t *testing.T, where string, args []string) map[string]string {
	t.Helper()
	known := servercmd.FlagNames()
	vals := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not a --flag (a value must follow its flag)", where, a)
			continue
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		if !slices.Contains(known, name) {
			t.Errorf("%s: distore-server has no flag --%s (it has %q)", where, name, known)
		}
		if !hasVal && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") {
			val = args[i+1]
			i++
		}
		vals[name] = val
	}
	if len(vals) == 0 {
		t.Errorf("%s: no distore-server flags found", where)
	}
	return vals
}

func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("distore-server.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatal(err)
	}
	get := func(section, name string) []string {
		var vals []string
		for _, o := range opts {
			if o.Section == section && o.Name == name {
				vals = append(vals, o.Value)
			}
		}
		return vals
	}
	exec := get("Service", "ExecStart")
	if len(exec) != 1 {
		t.Fatalf("ExecStart: %q, want one", exec)
	}
	if strings.ContainsAny(exec[0], `"'\$%`) {
		t.Fatalf("ExecStart %q: quotes, escapes or specifiers would need systemd's own word splitting", exec[0])
	}
	words := strings.Fields(exec[0])
	if filepath.Base(words[0]) != "distore-server" || !filepath.IsAbs(words[0]) {
		t.Errorf("ExecStart runs %q, want an absolute path to distore-server", words[0])
	}
	vals := checkFlags(t, "ExecStart", words[1:])
	if state := get("Service", "StateDirectory"); len(state) != 1 || vals["data-dir"] != "/var/lib/"+state[0] {
		t.Errorf("--data-dir %q is not the StateDirectory %q", vals["data-dir"], state)
	}
	if get("Service", "DynamicUser") != nil || len(get("Service", "User")) != 1 {
		t.Errorf("the unit must run as a fixed User (DynamicUser's RemoveIPC would delete the kept arena)")
	}
	// systemd must wait longer than the server's own graceful stop.
	stop, err1 := time.ParseDuration(strings.Join(get("Service", "TimeoutStopSec"), ""))
	grace, err2 := time.ParseDuration(vals["shutdown-timeout"])
	if err1 != nil || err2 != nil || stop <= grace {
		t.Errorf("TimeoutStopSec %v must exceed --shutdown-timeout %v (%v, %v)", stop, grace, err1, err2)
	}
	if k := get("Service", "KillSignal"); len(k) != 1 || k[0] != "SIGTERM" {
		t.Errorf("KillSignal %q, want SIGTERM (the server's graceful stop)", k)
	}
	if w := get("Install", "WantedBy"); len(w) != 1 {
		t.Errorf("WantedBy: %q", w)
	}
}

// manifest is the part of a Kubernetes object the test reads.
type manifest struct {
	Kind string `yaml:"kind"`
	Spec struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Name         string   `yaml:"name"`
					Image        string   `yaml:"image"`
					Args         []string `yaml:"args"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name     string `yaml:"name"`
					EmptyDir *struct {
						Medium    string `yaml:"medium"`
						SizeLimit string `yaml:"sizeLimit"`
					} `yaml:"emptyDir"`
					HostPath *struct {
						Path string `yaml:"path"`
					} `yaml:"hostPath"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func TestKubernetesManifest(t *testing.T) {
	f, err := os.Open("kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var ds *manifest
	for {
		var m manifest
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if m.Kind == "DaemonSet" {
			ds = &m
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet: want a server per node")
	}
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	vals := checkFlags(t, "DaemonSet args", c.Args)
	mounts := map[string]string{} // path -> volume
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	for _, v := range pod.Volumes {
		switch v.Name {
		case mounts["/dev/shm"]:
			if v.EmptyDir == nil || v.EmptyDir.Medium != "Memory" {
				t.Errorf("/dev/shm is not an emptyDir in memory")
			}
		case mounts[vals["data-dir"]]:
			if v.HostPath == nil && v.EmptyDir != nil {
				t.Errorf("--data-dir %s is an emptyDir: the disk tier would not outlive the pod", vals["data-dir"])
			}
		}
	}
	if mounts["/dev/shm"] == "" || mounts[vals["data-dir"]] == "" {
		t.Errorf("want volumes at /dev/shm and at --data-dir %q; mounts %v", vals["data-dir"], mounts)
	}
	grace, err := time.ParseDuration(vals["shutdown-timeout"])
	if err != nil || time.Duration(pod.TerminationGracePeriodSeconds)*time.Second <= grace {
		t.Errorf("terminationGracePeriodSeconds %d must exceed --shutdown-timeout %q", pod.TerminationGracePeriodSeconds, vals["shutdown-timeout"])
	}
}

// dockerArgs returns the JSON array of a Dockerfile instruction (exec form).
func dockerArgs(t *testing.T, dockerfile []byte, instr string) []string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(dockerfile))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), instr+" "); ok {
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				t.Fatalf("%s is not in exec (JSON) form: %v", instr, err)
			}
			return args
		}
	}
	t.Fatalf("Dockerfile has no %s", instr)
	return nil
}

// TestContainer builds the image from a static binary, runs it with its
// port published on 127.0.0.1, puts and gets an object through it, and
// removes the container and the image.
func TestContainer(t *testing.T) {
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	entry := dockerArgs(t, dockerfile, "ENTRYPOINT")
	checkFlags(t, "Dockerfile ENTRYPOINT", entry[1:])
	checkFlags(t, "Dockerfile CMD", dockerArgs(t, dockerfile, "CMD"))
	if !bytes.Contains(dockerfile, []byte("\nFROM scratch\n")) {
		t.Error("the image must be FROM scratch: no registry to pull a base from")
	}

	t.Parallel() // mostly waits on Docker, as TestComposeCluster does
	if _, err := exec.LookPath("docker"); err != nil || exec.Command("docker", "info").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no Docker Engine answers")
		}
		t.Skip("no Docker Engine answers `docker info`")
	}
	ctxDir := t.TempDir()
	os.Mkdir(filepath.Join(ctxDir, "data"), 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), dockerfile, 0o644)
	bin, err := os.ReadFile(staticServer(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "distore-server"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	docker := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	image := "distore-server-test:" + hex.EncodeToString(rnd[:])
	docker("build", "-q", "-t", image, ctxDir)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", image).Run() })
	id := docker("run", "-d", "--shm-size", "64m", "-p", "127.0.0.1::7070", image,
		"--levels", "memory,disk", "--memory-capacity", "16MiB")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", id).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", "-v", id).Run()
	})
	addr := docker("port", id, "7070/tcp")
	addr = strings.Split(addr, "\n")[0]
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("published on %q, want 127.0.0.1 only", addr)
	}
	c, err := client.New("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for c.Health(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatalf("the container's server never answered /healthz")
		case <-time.After(100 * time.Millisecond):
		}
	}
	data := bytes.Repeat([]byte("in a container "), 1<<16)
	info, err := c.Put(ctx, data, client.PutOptions{ID: "boxed"})
	if err != nil || info.Tier != "memory" {
		t.Fatalf("put: %+v, %v", info, err)
	}
	if got, err := c.Get(ctx, "boxed"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
	// A clean stop: SIGTERM, exit status 0.
	docker("stop", "-t", "30", id)
	if code := docker("inspect", "-f", "{{.State.ExitCode}}", id); code != "0" {
		t.Errorf("exit status after docker stop: %s", code)
	}
}
