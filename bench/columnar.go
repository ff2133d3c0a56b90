package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"distore/backend"
	"distore/columnar"
)

var (
	colSize    = flag.String("columnar.size", "1GiB", "columnar suite: size of the table (32 columns, numbers and strings)")
	colBatches = flag.Int("columnar.batches", 32, "columnar suite: record batches in the table")
	colRounds  = flag.Int("columnar.rounds", 3, "columnar suite: rounds per measure on disk and S3 (the median is printed)")
)

func init() {
	register("columnar", "Arrow table of 32 columns: 2 columns and 10% of the rows vs the whole object, from memory, disk and S3", runColumnar)
}

// columnarTable builds a table of about size bytes: 24 number columns
// (int64, float64) and 8 string columns of 12 to 20 bytes.
func columnarTable(size int64, nbatches int) (*arrow.Schema, []arrow.RecordBatch) {
	var fields []arrow.Field
	for i := range 32 {
		switch {
		case i%4 == 3:
			fields = append(fields, arrow.Field{Name: fmt.Sprintf("s%d", i), Type: arrow.BinaryTypes.String})
		case i%2 == 0:
			fields = append(fields, arrow.Field{Name: fmt.Sprintf("i%d", i), Type: arrow.PrimitiveTypes.Int64})
		default:
			fields = append(fields, arrow.Field{Name: fmt.Sprintf("f%d", i), Type: arrow.PrimitiveTypes.Float64})
		}
	}
	schema := arrow.NewSchema(fields, nil)
	const rowBytes = 24*8 + 8*(16+4)
	rows := max(size/rowBytes, int64(nbatches))
	per := rows / int64(nbatches)
	var recs []arrow.RecordBatch
	strs := make([]string, 64)
	for i := range strs {
		strs[i] = fmt.Sprintf("value-%0*d", 6+i%9, i)
	}
	for b := range nbatches {
		n := per
		if b == nbatches-1 {
			n = rows - per*int64(nbatches-1)
		}
		cols := make([]arrow.Array, 32)
		for c, f := range fields {
			switch f.Type.ID() {
			case arrow.STRING:
				bld := array.NewStringBuilder(memory.DefaultAllocator)
				bld.Reserve(int(n))
				for r := range n {
					bld.Append(strs[(r*int64(c+1))%64])
				}
				cols[c] = bld.NewArray()
				bld.Release()
			case arrow.INT64:
				v := make([]int64, n)
				for r := range v {
					v[r] = int64(r) * int64(c+1)
				}
				bld := array.NewInt64Builder(memory.DefaultAllocator)
				bld.AppendValues(v, nil)
				cols[c] = bld.NewArray()
				bld.Release()
			default:
				v := make([]float64, n)
				for r := range v {
					v[r] = float64(r) / float64(c+1)
				}
				bld := array.NewFloat64Builder(memory.DefaultAllocator)
				bld.AppendValues(v, nil)
				cols[c] = bld.NewArray()
				bld.Release()
			}
		}
		recs = append(recs, array.NewRecordBatch(schema, cols, n))
		for _, c := range cols {
			c.Release()
		}
	}
	return schema, recs
}

func runColumnar(ctx context.Context, r *report) error {
	size, err := backend.ParseBytes(*colSize)
	if err != nil {
		return err
	}
	schema, recs := columnarTable(size, *colBatches)
	data, err := columnar.Encode(schema, recs, columnar.WriteOptions{})
	if err != nil {
		return err
	}
	var total int64
	for _, rec := range recs {
		total += rec.NumRows()
	}
	sel := columnar.Selection{Columns: []string{"i0", "s3"},
		Rows: &columnar.RowRange{Start: total * 45 / 100, End: total * 55 / 100}}
	// The exact bytes of the two columns' rows: 8 per int64, offset + string.
	var exact int64
	strCol := recs[0].Column(3).(*array.String)
	exact = (sel.Rows.End - sel.Rows.Start) * (8 + 4 + int64(len(strCol.Value(0))))
	for _, rec := range recs {
		rec.Release()
	}
	r.note("table: %s Arrow IPC file, %d rows in %d batches, 32 columns; select columns i0 (int64), s3 (string), rows %d:%d (10%%)",
		backend.FormatBytes(int64(len(data))), total, *colBatches, sel.Rows.Start, sel.Rows.End)

	type tierCase struct {
		name string
		open func(ctx context.Context) (backend.Backend, func(), error)
	}
	cases := []tierCase{
		{"memory", func(ctx context.Context) (backend.Backend, func(), error) {
			b, err := backend.Open(ctx, "memory", backend.Config{"capacity": fmt.Sprint(int64(len(data))*5/4 + 64<<20)})
			return b, func() {}, err
		}},
		{"disk", func(ctx context.Context) (backend.Backend, func(), error) {
			dir, err := os.MkdirTemp(*diskDir, "distore-bench-columnar-")
			if err != nil {
				return nil, nil, err
			}
			b, err := backend.Open(ctx, "disk", backend.Config{"dir": dir, "sync": "false"})
			return b, func() { os.RemoveAll(dir) }, err
		}},
		{"s3", func(ctx context.Context) (backend.Backend, func(), error) {
			ep := os.Getenv("DISTORE_S3_ENDPOINT")
			if ep == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
				return nil, nil, fmt.Errorf("%w: DISTORE_S3_ENDPOINT / AWS_ACCESS_KEY_ID not set", errSkip)
			}
			bucket := os.Getenv("DISTORE_S3_BUCKET")
			if bucket == "" {
				bucket = "distore-test"
			}
			b, err := backend.Open(ctx, "s3", backend.Config{"endpoint": ep, "bucket": bucket, "create_bucket": "true",
				"prefix": "bench-columnar-" + string(backend.NewID()[:8]) + "/"})
			return b, func() {}, err
		}},
	}
	var skipped []string
	r.table("tier", "whole read", "first select", "select", "select/whole", "target", "bytes read", "selected bufs", "read/selected", "read/exact 10%", "requests")
	for _, tc := range cases {
		b, cleanup, err := tc.open(ctx)
		if err != nil {
			r.row(tc.name, "skipped", "", "", "", "", "", "", "", "", "")
			skipped = append(skipped, fmt.Sprintf("%s: %v", tc.name, err))
			continue
		}
		id := backend.NewID()
		if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
			b.Teardown(context.Background())
			cleanup()
			return fmt.Errorf("%s: put: %w", tc.name, err)
		}
		rounds := *colRounds
		if tc.name == "memory" {
			rounds = 201
		}
		// The whole object through OpenReader into a buffer, as a reader of
		// the object without columnar would.
		buf := make([]byte, len(data))
		whole, err := medianOf(min(rounds, 5), func() error {
			rc, err := b.OpenReader(ctx, id, 0, -1)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.ReadFull(rc, buf)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: whole read: %w", tc.name, err)
		}
		var last columnar.Stats
		// A first select learns the file's layout (footer, batch metadata);
		// later ones of the same object reuse it (see docs/columnar.md). The
		// object is put again before each first select: a new object, a new
		// layout. The median of 3 is printed.
		var firsts []time.Duration
		for i := range 3 {
			if i > 0 {
				if err := b.Delete(ctx, id); err != nil {
					return fmt.Errorf("%s: delete: %w", tc.name, err)
				}
				if _, err := b.Put(ctx, id, data, backend.PutOptions{}); err != nil {
					return fmt.Errorf("%s: put again: %w", tc.name, err)
				}
			}
			start := time.Now()
			res, err := columnar.Select(ctx, b, id, sel)
			if err != nil {
				return fmt.Errorf("%s: first select: %w", tc.name, err)
			}
			firsts = append(firsts, time.Since(start))
			res.Close()
		}
		slices.Sort(firsts)
		firstT := firsts[1]
		selT, err := medianOf(rounds, func() error {
			res, err := columnar.Select(ctx, b, id, sel)
			if err != nil {
				return err
			}
			last = res.Stats
			return res.Close()
		})
		if err != nil {
			return fmt.Errorf("%s: select: %w", tc.name, err)
		}
		target := "<= 0.15"
		if tc.name == "memory" {
			target = "< 50us"
			r.row(tc.name, whole.Round(time.Microsecond), firstT.Round(time.Microsecond), selT.Round(100*time.Nanosecond), ratio(float64(selT), float64(whole)), target,
				"0 (zero-copy)", backend.FormatBytes(last.SelectedBytes), "-", "-", 0)
		} else {
			r.row(tc.name, whole.Round(time.Millisecond), firstT.Round(10*time.Microsecond), selT.Round(10*time.Microsecond), ratio(float64(selT), float64(whole)), target,
				backend.FormatBytes(last.BytesRead), backend.FormatBytes(last.SelectedBytes),
				ratio(float64(last.BytesRead), float64(last.SelectedBytes)), ratio(float64(last.BytesRead), float64(exact)), last.Requests)
		}
		_ = b.Delete(ctx, id)
		b.Teardown(context.Background())
		cleanup()
	}
	for _, sk := range skipped {
		r.note("skipped %s", sk)
	}
	r.note("first select: an object's first, layout not cached (median of 3 objects); select: the median of later ones (select/whole uses it)")
	r.note("selected bufs: the two columns' buffers in the batches holding the rows (target: bytes read <= 1.2x); exact 10%%: the rows' own bytes")
	return nil
}

// median runs f n times and returns the median duration.
func medianOf(n int, f func() error) (time.Duration, error) {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2], nil
}
