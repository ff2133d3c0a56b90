package backend

import (
	"hash"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of data, the checksum every tier records.
func Checksum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// UpdateChecksum extends a running CRC-32C with data.
func UpdateChecksum(crc uint32, data []byte) uint32 { return crc32.Update(crc, castagnoli, data) }

// NewChecksum returns a hash.Hash32 computing the CRC-32C, for streams.
func NewChecksum() hash.Hash32 { return crc32.New(castagnoli) }

// CopyChecksum copies src into dst (as copy does) and returns the CRC-32C of the
// bytes copied, in one pass: it works in cache-sized blocks so the checksum reads
// bytes that the copy just brought into cache.
func CopyChecksum(dst, src []byte) (int, uint32) {
	const block = 64 << 10
	n := min(len(dst), len(src))
	var crc uint32
	for off := 0; off < n; off += block {
		end := min(off+block, n)
		copy(dst[off:end], src[off:end])
		crc = crc32.Update(crc, castagnoli, dst[off:end])
	}
	return n, crc
}
