package disk_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"distore/backend"
	_ "distore/disk" // registers the "disk" tier
)

func Example() {
	dir, _ := os.MkdirTemp("", "distore-disk-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	b, err := backend.Open(ctx, "disk", backend.Config{"dir": dir, "capacity": "1GiB"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Teardown(ctx)

	// Small objects: Put and Get.
	if _, err := b.Put(ctx, "greeting", []byte("hello, disk"), backend.PutOptions{Importance: 5}); err != nil {
		fmt.Println(err)
		return
	}
	obj, err := b.Get(ctx, "greeting")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s (importance %d)\n", obj.Bytes(), obj.Info().Importance)
	obj.Close()

	// Objects of any size: stream them in and read a range back.
	body := strings.Repeat("0123456789", 300000) // 3 MB, three 1 MiB chunks
	w, err := b.OpenWriter(ctx, "big", int64(len(body)), backend.PutOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := io.Copy(w, strings.NewReader(body)); err != nil {
		w.Abort()
		fmt.Println(err)
		return
	}
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}
	r, err := b.OpenReader(ctx, "big", 2_000_000, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	part, _ := io.ReadAll(r)
	r.Close()
	fmt.Printf("bytes 2000000..2000009: %s\n", part)

	st, _ := b.Stats(ctx)
	fmt.Printf("%d objects, %d bytes\n", st.Objects, st.Used)
	// Output:
	// hello, disk (importance 5)
	// bytes 2000000..2000009: 0123456789
	// 2 objects, 3000011 bytes
}
