package client_test

import (
	"context"
	"fmt"

	"distore/client"
)

// A put that spreads the object to every server of the "actor" group, then
// where the spread has reached. The server must be a cluster member
// (distore-server --etcd ...), so this example does not run as a test.
func ExampleClient_SpreadStatus() {
	ctx := context.Background()
	c, err := client.New("http://127.0.0.1:7070")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.JoinGroup(ctx, "actor"); err != nil {
		panic(err)
	}
	info, err := c.Put(ctx, []byte("trajectory"), client.PutOptions{PrefetchGroup: "actor"})
	if err != nil {
		panic(err)
	}
	s, err := c.SpreadStatus(ctx, info.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println("reached", s.Reached, "of", s.Targets, "done:", s.Done)
	nodes, err := c.Nodes(ctx)
	if err != nil {
		panic(err)
	}
	for _, n := range nodes.Members {
		fmt.Println(n.ID, n.Addr, n.Groups)
	}
}
