// Command goclient is the Go side of the Python client's tests: it puts or
// gets an object over the local socket with distore/client.Local and prints
// the SHA-256 of the bytes, so that the test can compare across languages;
// for the columnar reads it puts an Arrow table made with arrow-go and
// decodes the Arrow IPC streams the Python client received (the Python side
// has no Arrow parser without pyarrow).
//
//	goclient SOCKET put ID SIZE        # puts SIZE pseudo-random bytes
//	goclient SOCKET get ID             # reads the object in place
//	goclient SOCKET put-arrow ID ROWS  # puts columnar.Encode of a table: n int64 = 3r,
//	                                   # s string = "v<r>", x float64 = r/2, batches of 40 rows
//	goclient - decode FILE             # prints the stream's fields, then its rows as JSON lines
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/client"
	"distore/columnar"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 3 {
		return fmt.Errorf("usage: goclient SOCKET put|get ID [SIZE]")
	}
	if args[1] == "decode" {
		return decode(args[2])
	}
	ctx := context.Background()
	l, err := client.DialLocal(ctx, args[0])
	if err != nil {
		return err
	}
	defer l.Close()
	id := backend.ID(args[2])
	switch args[1] {
	case "put":
		if len(args) != 4 {
			return fmt.Errorf("put needs a size")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		data := make([]byte, n)
		r := rand.NewChaCha8([32]byte{1})
		_, _ = r.Read(data)
		if _, err := l.Put(ctx, data, client.PutOptions{ID: id}); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Println(hex.EncodeToString(sum[:]))
	case "get":
		obj, err := l.GetObject(ctx, id)
		if err != nil {
			return err
		}
		defer obj.Close()
		sum := sha256.Sum256(obj.Bytes())
		fmt.Println(hex.EncodeToString(sum[:]))
	case "put-arrow":
		if len(args) != 4 {
			return fmt.Errorf("put-arrow needs a row count")
		}
		n, err := strconv.Atoi(args[3])
		if err != nil {
			return err
		}
		data, err := arrowTable(n)
		if err != nil {
			return err
		}
		if _, err := l.Put(ctx, data, client.PutOptions{ID: id}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown action %q", args[1])
	}
	return nil
}

var tableSchema = arrow.NewSchema([]arrow.Field{
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "s", Type: arrow.BinaryTypes.String},
	{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}, nil)

// arrowTable is the Arrow IPC file of rows rows, in batches of 40.
func arrowTable(rows int) ([]byte, error) {
	var recs []arrow.RecordBatch
	for lo := 0; lo < rows; lo += 40 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, tableSchema)
		for r := lo; r < min(lo+40, rows); r++ {
			b.Field(0).(*array.Int64Builder).Append(int64(3 * r))
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("v%d", r))
			b.Field(2).(*array.Float64Builder).Append(float64(r) / 2)
		}
		recs = append(recs, b.NewRecordBatch())
		b.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	return columnar.Encode(tableSchema, recs, columnar.WriteOptions{})
}

// decode reads the Arrow IPC stream in file with arrow-go and prints one
// line per field ("name type") then "--" then the rows as JSON lines.
func decode(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := ipc.NewReader(f)
	if err != nil {
		return err
	}
	defer r.Release()
	for _, fld := range r.Schema().Fields() {
		fmt.Printf("%s %s\n", fld.Name, fld.Type)
	}
	fmt.Println("--")
	for r.Next() {
		if err := array.RecordToJSON(r.RecordBatch(), os.Stdout); err != nil {
			return err
		}
	}
	return r.Err()
}
