package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/columnar"
)

// TestColumnarCommands: get --columns/--rows/--format and schema of an
// Arrow object put through the CLI, against a real server.
func TestColumnarCommands(t *testing.T) {
	srv := startServer(t)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{10, 11, 12, 13, 14}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"a", "b", "c", "d", "e"}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	data, err := columnar.Encode(schema, []arrow.RecordBatch{rec}, columnar.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "t.arrow")
	os.WriteFile(file, data, 0o644)
	out, errOut, code := cli(t, srv, nil, "put", file)
	if code != 0 {
		t.Fatalf("put: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)

	out, errOut, code = cli(t, srv, nil, "get", id, "--columns", "s", "--rows", "1:3", "--format", "csv")
	if code != 0 || !strings.Contains(out, "b") || !strings.Contains(out, "c") || strings.Contains(out, "a\n") || strings.Contains(out, "11") {
		t.Errorf("get --columns s --rows 1:3 --format csv: exit %d, %q %s", code, out, errOut)
	}
	out, _, code = cli(t, srv, nil, "schema", id)
	if code != 0 || !strings.Contains(out, "n: type=int64") || !strings.Contains(out, "s: type=utf8") {
		t.Errorf("schema: exit %d, %q", code, out)
	}
	out, _, code = cli(t, srv, nil, "--json", "get", id, "--columns", "zz")
	if code != 1 || !strings.Contains(out, `"error"`) || !strings.Contains(out, "n,s") && !strings.Contains(out, "n, s") {
		t.Errorf("get --columns zz: exit %d, %q (want an error naming the known columns)", code, out)
	}
	if _, _, code = cli(t, srv, nil, "get", id, "--columns", "n", "--offset", "3"); code != 64 {
		t.Errorf("--columns with --offset: exit %d, want 64", code)
	}
}

// TestClusterCommandsAlone: on a server that is not in a cluster, nodes and
// groups fail with a clear error, not a crash.
func TestClusterCommandsAlone(t *testing.T) {
	srv := startServer(t)
	out, errOut, code := cli(t, srv, nil, "nodes")
	if code == 0 || !strings.Contains(out+errOut, "nodes") {
		t.Errorf("nodes on a lone server: exit %d, %q %q", code, out, errOut)
	}
	if _, _, code := cli(t, srv, nil, "spread", "x"); code != 64 {
		t.Errorf("spread without --group/--nodes/--status: exit %d, want 64", code)
	}
}
