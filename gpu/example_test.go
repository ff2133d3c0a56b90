package gpu_test

import (
	"context"
	"errors"
	"fmt"

	"distore/backend"
	"distore/gpu"
)

// Put an object into GPU memory and hand its device pointer to a GPU consumer.
func Example() {
	ctx := context.Background()
	b, err := backend.Open(ctx, gpu.Name, backend.Config{gpu.KeyDevice: "0", gpu.KeyCapacity: "1GiB"})
	if errors.Is(err, backend.ErrUnavailable) {
		fmt.Println("no GPU here:", err) // e.g. "libcuda.so.1 not found"
		return
	}
	if err != nil {
		panic(err)
	}
	defer b.Teardown(ctx)

	if _, err := b.Put(ctx, "batch-0001", []byte("trajectory bytes"), backend.PutOptions{Importance: 5}); err != nil {
		panic(err)
	}
	obj, err := b.Get(ctx, "batch-0001")
	if err != nil {
		panic(err)
	}
	defer obj.Close() // the device range stays valid until Close
	dev := obj.(gpu.DeviceObject)
	fmt.Printf("%q on GPU %d at %#x (%d bytes)\n", obj.Bytes(), dev.Device(), dev.DevicePtr(), dev.DeviceSize())
}

// Copy between pinned host memory and the device with the raw driver.
func ExampleOpenDriver() {
	d, err := gpu.OpenDriver(0)
	if err != nil {
		fmt.Println("no GPU here:", err)
		return
	}
	defer d.Close()
	host, _ := d.HostAlloc(1 << 20) // pinned: DMA at full bus speed
	defer d.HostFree(host)
	dev, _ := d.MemAlloc(1 << 20)
	defer d.MemFree(dev)
	if err := d.CopyHtoD(dev, host); err != nil {
		panic(err)
	}
	fmt.Println(d.Name())
}

// Export one object's device memory to another process on this machine.
func ExampleTier_ExportIPC() {
	ctx := context.Background()
	t, err := gpu.New(backend.Config{gpu.KeyCapacity: "256MiB"})
	if err == nil {
		err = t.Setup(ctx)
	}
	if errors.Is(err, backend.ErrUnavailable) {
		fmt.Println("no GPU here:", err)
		return
	}
	if err != nil {
		panic(err)
	}
	defer t.Teardown(ctx) // frees the device only after every export is released
	if _, err := t.Put(ctx, "weights", []byte("tensor bytes"), backend.PutOptions{}); err != nil {
		panic(err)
	}
	x, err := t.ExportIPC(ctx, "weights")
	if err != nil {
		panic(err)
	}
	h := x.Handle()
	// Send h (JSON) to the consumer: it finds the device by h.DeviceUUID, maps
	// h.Handle with cuIpcOpenMemHandle, reads h.Size bytes, and says when it
	// has closed the mapping (cuIpcCloseMemHandle). Only then:
	defer x.Release()
	fmt.Printf("%d bytes on %s\n", h.Size, h.DeviceUUID)
}
