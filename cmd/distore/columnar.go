package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"distore/backend"
	"distore/client"
	"distore/columnar"
)

// getColumns writes the selected columns and rows of an Arrow object
// (docs/columnar.md) in format to out (stdout when empty or -).
func (e *env) getColumns(ctx context.Context, id backend.ID, out, columns, rows, format string) error {
	sel, err := columnar.ParseSelection(columns, rows)
	if err != nil {
		return usagef("%v", err)
	}
	switch format {
	case "", "arrow", "csv", "json":
	default:
		return usagef("--format %q: want arrow, csv or json", format)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var rr *client.Rows
	if sel.Rows != nil {
		rr = &client.Rows{Start: sel.Rows.Start, End: sel.Rows.End}
	}
	r, err := c.GetColumnsReader(ctx, id, sel.Columns, rr)
	if err != nil {
		return err
	}
	defer r.Release()
	return e.writeTo(out, func(w io.Writer) error { return columnar.WriteFormat(w, r, format) })
}

// writeTo runs write on stdout, or on a new file out that appears only if
// write succeeds.
func (e *env) writeTo(out string, write func(io.Writer) error) error {
	if out == "" || out == "-" {
		return write(e.stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".distore-get-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

func (e *env) schemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema ID",
		Short: "show an Arrow object's schema (read without its data)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withClient(func(cmd *cobra.Command, args []string, c *client.Client) error {
			s, err := c.Schema(cmd.Context(), backend.ID(args[0]))
			if err != nil {
				return err
			}
			if e.json {
				fields := make([]map[string]any, 0, s.NumFields())
				for _, f := range s.Fields() {
					fields = append(fields, map[string]any{"name": f.Name, "type": f.Type.String(), "nullable": f.Nullable})
				}
				return e.printJSON(map[string]any{"id": args[0], "fields": fields})
			}
			fmt.Fprintln(e.stdout, s.String())
			return nil
		}),
	}
}
