package disk

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"time"

	"distore/backend"
)

// Keys. Every key starts with a one-byte kind, so the kinds never mix and an ID
// (validated by backend) can only ever name a manifest key.
const (
	kindManifest = 'm' // 'm' + id → manifest
	kindChunk    = 'c' // 'c' + token (8 bytes) + index (4 bytes, big-endian) → chunk bytes
	kindFlush    = 'f' // sentinel written and dropped to force a memtable flush
)

func manifestKey(id backend.ID) []byte {
	k := make([]byte, 1+len(id))
	k[0] = kindManifest
	copy(k[1:], id)
	return k
}

// chunkKey is the key of chunk idx of the write with the given token. The
// token is unique per write, so the chunks of a write that never got its
// manifest (an abort, a crash) are recognisable as orphans.
func chunkKey(token uint64, idx uint32) []byte {
	k := make([]byte, 13)
	k[0] = kindChunk
	binary.BigEndian.PutUint64(k[1:], token)
	binary.BigEndian.PutUint32(k[9:], idx)
	return k
}

func newToken() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return binary.LittleEndian.Uint64(b[:])
}

// manifest is the committed record of an object: it is written last, in its
// own transaction, so an object exists exactly when its manifest does.
type manifest struct {
	size       int64
	chunkSize  int64
	token      uint64
	importance int
	created    time.Time
	checksum   uint32   // CRC-32C of the whole object
	crcs       []uint32 // CRC-32C of each chunk
}

const manifestVersion = 1

func (m *manifest) nchunks() int { return numChunks(m.size, m.chunkSize) }

func numChunks(size, chunkSize int64) int {
	return int((size + chunkSize - 1) / chunkSize)
}

// chunkLen is the length of chunk idx of an object of size bytes.
func chunkLen(size, chunkSize int64, idx int) int64 {
	return min(chunkSize, size-int64(idx)*chunkSize)
}

func (m *manifest) encode() []byte {
	b := make([]byte, 0, 64+4*len(m.crcs))
	b = append(b, manifestVersion)
	b = binary.AppendUvarint(b, uint64(m.size))
	b = binary.AppendUvarint(b, uint64(m.chunkSize))
	b = binary.LittleEndian.AppendUint64(b, m.token)
	b = binary.AppendVarint(b, int64(m.importance))
	b = binary.AppendVarint(b, m.created.UnixNano())
	b = binary.LittleEndian.AppendUint32(b, m.checksum)
	b = binary.AppendUvarint(b, uint64(len(m.crcs)))
	for _, c := range m.crcs {
		b = binary.LittleEndian.AppendUint32(b, c)
	}
	return b
}

var errBadManifest = errors.New("malformed manifest")

func decodeManifest(b []byte) (*manifest, error) {
	if len(b) < 1 || b[0] != manifestVersion {
		return nil, errBadManifest
	}
	b = b[1:]
	var m manifest
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	m.size = int64(uv())
	m.chunkSize = int64(uv())
	if len(b) < 8 {
		return nil, errBadManifest
	}
	m.token = binary.LittleEndian.Uint64(b)
	b = b[8:]
	m.importance = int(sv())
	m.created = time.Unix(0, sv())
	if len(b) < 4 {
		return nil, errBadManifest
	}
	m.checksum = binary.LittleEndian.Uint32(b)
	b = b[4:]
	n := uv()
	if m.size < 0 || m.chunkSize <= 0 || n != uint64(m.nchunks()) || uint64(len(b)) != 4*n {
		return nil, errBadManifest
	}
	m.crcs = make([]uint32, n)
	for i := range m.crcs {
		m.crcs[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return &m, nil
}
