package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"distore/backend"
)

// Node is one server of a cluster, as GET /v1/cluster/nodes lists it.
type Node struct {
	ID          string   `json:"id"`
	Addr        string   `json:"addr"`
	Tiers       []string `json:"tiers,omitempty"`
	Capacity    int64    `json:"capacity"`
	Groups      []string `json:"groups,omitempty"`
	Incarnation int64    `json:"incarnation"`
}

// Nodes is a server's view of its cluster.
type Nodes struct {
	// Self is the answering server's ID.
	Self string `json:"self"`
	// Healthy is false while the server cannot reach etcd (Error says why);
	// Members is then its last view.
	Healthy  bool   `json:"healthy"`
	Error    string `json:"error,omitempty"`
	LeaseTTL string `json:"lease_ttl"`
	Members  []Node `json:"members"`
}

// Spread is where a spread of an object to other servers has reached.
type Spread struct {
	ID      backend.ID `json:"id"`
	Group   string     `json:"group,omitempty"`
	Targets []string   `json:"targets"`
	Reached []string   `json:"reached"`
	Failed  []string   `json:"failed,omitempty"`
	Done    bool       `json:"done"`
	Error   string     `json:"error,omitempty"`
	Started time.Time  `json:"started"`
	Seconds float64    `json:"seconds,omitempty"`
}

// Nodes lists the cluster's live servers (ErrNotFound's route error on a
// server that is not in a cluster).
func (c *Client) Nodes(ctx context.Context) (Nodes, error) {
	var n Nodes
	err := c.getJSON(ctx, "nodes", "/v1/cluster/nodes", &n)
	return n, err
}

// Groups returns each prefetch group's members.
func (c *Client) Groups(ctx context.Context) (map[string][]string, error) {
	var g struct {
		Groups map[string][]string `json:"groups"`
	}
	err := c.getJSON(ctx, "groups", "/v1/cluster/groups", &g)
	return g.Groups, err
}

// JoinGroup makes the server this client talks to join prefetch group g
// (DI-store's register_group).
func (c *Client) JoinGroup(ctx context.Context, g string) error {
	return c.clusterPost(ctx, "join group", "groups/"+url.PathEscape(g)+"/join", "", http.StatusNoContent, nil)
}

// LeaveGroup makes the server leave prefetch group g.
func (c *Client) LeaveGroup(ctx context.Context, g string) error {
	return c.clusterPost(ctx, "leave group", "groups/"+url.PathEscape(g)+"/leave", "", http.StatusNoContent, nil)
}

// SpreadToGroup starts spreading an object the server holds to every server
// of group g, as a pipelined chain; it returns at once (see SpreadStatus).
func (c *Client) SpreadToGroup(ctx context.Context, id backend.ID, g string) (Spread, error) {
	var s Spread
	err := c.clusterPost(ctx, "spread", "objects/"+url.PathEscape(string(id))+"/spread", "group="+url.QueryEscape(g), http.StatusAccepted, &s)
	return s, err
}

// SpreadToNodes starts spreading an object the server holds to the named servers.
func (c *Client) SpreadToNodes(ctx context.Context, id backend.ID, nodes []string) (Spread, error) {
	var s Spread
	err := c.clusterPost(ctx, "spread", "objects/"+url.PathEscape(string(id))+"/spread", "nodes="+url.QueryEscape(strings.Join(nodes, ",")), http.StatusAccepted, &s)
	return s, err
}

// SpreadStatus returns where the last spread of id started on this server has reached.
func (c *Client) SpreadStatus(ctx context.Context, id backend.ID) (Spread, error) {
	var s Spread
	err := c.getJSON(ctx, "spread status", "/v1/cluster/spreads/"+url.PathEscape(string(id)), &s)
	return s, err
}

func (c *Client) clusterPost(ctx context.Context, op, path, query string, want int, out any) error {
	u := "/v1/cluster/" + path
	if query != "" {
		u += "?" + query
	}
	req, err := c.newRequest(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("distore client: %s: %w", op, err)
	}
	resp, err := c.do(op, "", req, want)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("distore client: %s: reading the reply: %w", op, err)
		}
	}
	return nil
}
