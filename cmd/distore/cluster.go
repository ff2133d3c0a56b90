package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"distore/backend"
	"distore/client"
)

// clusterCommands are the commands of a server that is a cluster member
// (docs/cluster.md): its view of the members and groups, joining and
// leaving groups, and spreading an object to other servers.
func (e *env) clusterCommands() []*cobra.Command {
	nodes := &cobra.Command{
		Use:   "nodes",
		Short: "list the cluster's live servers, as the server sees them",
		Args:  cobra.NoArgs,
		RunE: e.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			n, err := c.Nodes(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(n)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NODE\tADDRESS\tTIERS\tCAPACITY\tGROUPS")
			for _, m := range n.Members {
				self := ""
				if m.ID == n.Self {
					self = " (this server)"
				}
				fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\t%s\n", m.ID, self, m.Addr, strings.Join(m.Tiers, ","),
					backend.FormatBytes(m.Capacity), strings.Join(m.Groups, ","))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if !n.Healthy {
				fmt.Fprintf(e.stdout, "not in touch with etcd (%s): this is the last view\n", n.Error)
			}
			return nil
		}),
	}
	groups := &cobra.Command{
		Use:   "groups",
		Short: "list the prefetch groups and their members",
		Args:  cobra.NoArgs,
		RunE: e.withClient(func(cmd *cobra.Command, _ []string, c *client.Client) error {
			g, err := c.Groups(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(map[string]any{"groups": g})
			}
			for name, members := range g {
				fmt.Fprintf(e.stdout, "%s: %s\n", name, strings.Join(members, ", "))
			}
			return nil
		}),
	}
	group := &cobra.Command{Use: "group", Short: "join or leave a prefetch group (the server named by --server)"}
	for _, a := range []struct {
		verb, did string
		f         func(*client.Client, *cobra.Command, string) error
	}{
		{"join", "joined", func(c *client.Client, cmd *cobra.Command, g string) error { return c.JoinGroup(cmd.Context(), g) }},
		{"leave", "left", func(c *client.Client, cmd *cobra.Command, g string) error { return c.LeaveGroup(cmd.Context(), g) }},
	} {
		group.AddCommand(&cobra.Command{
			Use:   a.verb + " GROUP",
			Short: a.verb + " a prefetch group",
			Args:  cobra.ExactArgs(1),
			RunE: runE(func(cmd *cobra.Command, args []string) error {
				c, err := e.client()
				if err != nil {
					return err
				}
				defer c.Close()
				if err := a.f(c, cmd, args[0]); err != nil {
					return err
				}
				if e.json {
					return e.printJSON(map[string]string{"group": args[0], "done": a.verb})
				}
				fmt.Fprintf(e.stdout, "%s group %s\n", a.did, args[0])
				return nil
			}),
		})
	}
	var toGroup, toNodes string
	var status bool
	spread := &cobra.Command{
		Use:   "spread ID (--group G | --nodes A,B | --status)",
		Short: "spread an object to a group's or named servers, or show where a spread has reached",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if (toGroup != "") == (toNodes != "") && !status {
				return usagef("spread: give one of --group, --nodes or --status")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			defer c.Close()
			id := backend.ID(args[0])
			var s client.Spread
			switch {
			case status:
				s, err = c.SpreadStatus(cmd.Context(), id)
			case toGroup != "":
				s, err = c.SpreadToGroup(cmd.Context(), id, toGroup)
			default:
				s, err = c.SpreadToNodes(cmd.Context(), id, strings.Split(toNodes, ","))
			}
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(s)
			}
			fmt.Fprintf(e.stdout, "%s: reached %d of %d servers%s\n", id, len(s.Reached), len(s.Targets), map[bool]string{true: " (done)", false: ""}[s.Done])
			return nil
		}),
	}
	spread.Flags().StringVar(&toGroup, "group", "", "spread to every server of this prefetch group")
	spread.Flags().StringVar(&toNodes, "nodes", "", "spread to these servers (node IDs, comma-separated)")
	spread.Flags().BoolVar(&status, "status", false, "show where the last spread of ID has reached")
	return []*cobra.Command{nodes, groups, group, spread}
}
