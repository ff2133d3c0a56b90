package crc32c

import (
	"encoding/binary"
	"hash"
)

// digest is a hash.Hash32 over Update, so that streams checksum at the
// kernels' speed rather than hash/crc32's.
type digest struct{ crc uint32 }

// New returns a hash.Hash32 computing the CRC-32C, as crc32.New(Table) does
// (Sum appends the checksum big-endian).
func New() hash.Hash32 { return &digest{} }

func (d *digest) Write(p []byte) (int, error) { d.crc = Update(d.crc, p); return len(p), nil }
func (d *digest) Sum32() uint32               { return d.crc }
func (d *digest) Sum(b []byte) []byte         { return binary.BigEndian.AppendUint32(b, d.crc) }
func (d *digest) Reset()                      { d.crc = 0 }
func (d *digest) Size() int                   { return 4 }
func (d *digest) BlockSize() int              { return 1 }
