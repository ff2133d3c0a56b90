package tracker

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"distore/backend"
	"distore/internal/etcdtest"
)

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(ClientConfig([]string{endpoint}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func open(t *testing.T, cli *clientv3.Client, id string, groups ...string) *Tracker {
	t.Helper()
	tr, err := Open(context.Background(), Options{Client: cli, Prefix: "/test/", TTL: 2 * time.Second,
		Self: Member{ID: id, Addr: id + ":1", Tiers: []string{"memory"}, Capacity: 1 << 20, Groups: groups}})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestMembershipAndGroups(t *testing.T) {
	e := etcdtest.Start(t)
	a := open(t, newClient(t, e.Endpoint()), "a", "actor")
	defer a.Close()
	bcli := newClient(t, e.Endpoint())
	b := open(t, bcli, "b")
	eventually(t, 5*time.Second, "a sees b", func() bool { return slices.Equal(ids(a.Members()), []string{"a", "b"}) })
	if m, _ := a.Member("b"); m.Addr != "b:1" || m.Capacity != 1<<20 || m.Incarnation == 0 {
		t.Fatalf("a's record of b: %+v", m)
	}
	changes := a.Changes()
	if err := b.JoinGroup(context.Background(), "actor"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
	case <-time.After(5 * time.Second):
		t.Fatal("no change notice after b joined a group")
	}
	eventually(t, 5*time.Second, "group actor = a, b", func() bool { return slices.Equal(a.Groups()["actor"], []string{"a", "b"}) })
	if err := b.LeaveGroup(context.Background(), "actor"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "group actor = a", func() bool { return slices.Equal(a.Groups()["actor"], []string{"a"}) })
	if err := b.JoinGroup(context.Background(), "bad/name"); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("join of a bad group name: %v", err)
	}
	// A clean close revokes the lease: b disappears at once.
	b.Close()
	eventually(t, time.Second, "a stops listing b after b closed", func() bool { return slices.Equal(ids(a.Members()), []string{"a"}) })
}

// A server that dies without unregistering disappears within the TTL.
func TestDeadMemberExpires(t *testing.T) {
	e := etcdtest.Start(t)
	a := open(t, newClient(t, e.Endpoint()), "a")
	defer a.Close()
	bcli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint()}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, bcli, "b")
	eventually(t, 5*time.Second, "a sees b", func() bool { return len(a.Members()) == 2 })
	// Closing b's connection stops its keepalives without revoking: a crash.
	b.cancel()
	<-b.done
	bcli.Close()
	start := time.Now()
	eventually(t, a.TTL()+3*time.Second, "a stops listing the dead b", func() bool { return len(a.Members()) == 1 })
	if el := time.Since(start); el < a.TTL()/2 {
		t.Fatalf("b vanished after %v, before its lease could expire: it was not a crash", el)
	}
}

// etcd away for longer than the TTL: the tracker says so, keeps its view, and
// registers again when etcd returns.
func TestEtcdOutage(t *testing.T) {
	e := etcdtest.Start(t)
	a := open(t, newClient(t, e.Endpoint()), "a")
	defer a.Close()
	b := open(t, newClient(t, e.Endpoint()), "b")
	defer b.Close()
	eventually(t, 5*time.Second, "a sees b", func() bool { return len(a.Members()) == 2 })
	e.Stop()
	eventually(t, a.TTL()+5*time.Second, "a unhealthy with etcd down", func() bool { return !a.Healthy() })
	if err := a.Err(); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("Err with etcd down: %v", err)
	}
	if err := a.JoinGroup(context.Background(), "g"); !errors.Is(err, backend.ErrUnavailable) {
		t.Fatalf("JoinGroup with etcd down: %v", err)
	}
	if len(a.Members()) != 2 {
		t.Fatalf("view lost while etcd is down: %v", ids(a.Members()))
	}
	e.Start()
	eventually(t, 15*time.Second, "a healthy again", a.Healthy)
	if err := a.JoinGroup(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "b sees a in g", func() bool { return slices.Equal(b.Groups()["g"], []string{"a"}) })
}

func TestEmbed(t *testing.T) {
	addr := etcdtest.FreePort(t)
	cli, stop, err := Connect(context.Background(), "embed="+addr, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	a := open(t, cli, "a")
	defer a.Close()
	// Another server joins the embedded etcd by its URL.
	cli2, stop2, err := Connect(context.Background(), "http://"+addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	b := open(t, cli2, "b")
	defer b.Close()
	eventually(t, 5*time.Second, "a sees b through the embedded etcd", func() bool { return len(a.Members()) == 2 })
	if _, _, err := Connect(context.Background(), "ftp://x", "", nil); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("bad spec: %v", err)
	}
}
