// Command goclient is the Go side of the Python client's tests: it puts or
// gets an object over the local socket with distore/client.Local and prints
// the SHA-256 of the bytes, so that the test can compare across languages.
//
//	goclient SOCKET put ID SIZE   # puts SIZE pseudo-random bytes
//	goclient SOCKET get ID        # reads the object in place
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"distore/backend"
	"distore/client"
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
	default:
		return fmt.Errorf("unknown action %q", args[1])
	}
	return nil
}
