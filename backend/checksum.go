package backend

import (
	"hash"

	"distore/internal/crc32c"
)

// Checksum returns the CRC-32C of data, the checksum every tier records.
func Checksum(data []byte) uint32 { return crc32c.Update(0, data) }

// UpdateChecksum extends a running CRC-32C with data.
func UpdateChecksum(crc uint32, data []byte) uint32 { return crc32c.Update(crc, data) }

// NewChecksum returns a hash.Hash32 computing the CRC-32C, for streams.
func NewChecksum() hash.Hash32 { return crc32c.New() }

// CopyChecksum copies src into dst (as copy does) and returns the CRC-32C of
// the bytes copied, in one pass that reads each byte once; the checksum is of
// the bytes as written to dst.
func CopyChecksum(dst, src []byte) (int, uint32) { return crc32c.CopyUpdate(0, dst, src) }
