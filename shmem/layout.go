package shmem

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// The mapping's layout. All offsets are from the start of the mapping, so
// another process that maps the same file or memfd finds everything:
//
//	[0, headerSize)          header: magic, version and the geometry below
//	[tableOff, dataOff)      object table: slots uint64 words; a non-zero word
//	                         is the offset of a committed object's record
//	[dataOff, dataOff+cap)   data region, sub-allocated by package alloc; each
//	                         object is a record: a 64-byte record header, its
//	                         ID padded to 64 bytes, then its bytes
//
// A put writes the record and the bytes, then stores the record's offset in a
// table slot, last: a process killed at any point leaves either no slot (the
// object was never acknowledged) or a slot naming a complete record. A delete
// clears the slot first. All integers are little-endian.
const (
	magic         = "distshm\x00"
	layoutVersion = 1
	headerSize    = 4096
	recordHeader  = 64
	recordMagic   = 0x314a424f // "OBJ1"
	dataAlign     = 64         // every record, and so every object's bytes, is 64-byte aligned
	pageSize      = 4096
)

// Header field offsets.
const (
	hMagic     = 0  // [8]byte
	hVersion   = 8  // uint32
	hHeaderLen = 12 // uint32
	hMapSize   = 16 // int64: the whole mapping
	hTableOff  = 24 // int64
	hSlots     = 32 // int64
	hDataOff   = 40 // int64
	hCapacity  = 48 // int64: the data region
	hAlign     = 56 // int64
	hRecordLen = 64 // int64: the record header's size
)

// Record header field offsets (from the record's start).
const (
	rMagic      = 0  // uint32
	rIDLen      = 4  // uint16
	rSize       = 8  // int64: the object's bytes
	rChecksum   = 16 // uint32: CRC-32C of the bytes
	rImportance = 24 // int64
	rCreated    = 32 // int64: unix nanoseconds
)

// geometry is where things are in a mapping.
type geometry struct {
	mapSize, tableOff, slots, dataOff, capacity int64
}

// newGeometry lays out a mapping for a data region of capacity bytes and a
// table of slots entries.
func newGeometry(capacity, slots int64) geometry {
	capacity &^= dataAlign - 1
	tableLen := roundUp(slots*8, pageSize)
	g := geometry{tableOff: headerSize, slots: slots, dataOff: headerSize + tableLen, capacity: capacity}
	g.mapSize = roundUp(g.dataOff+capacity, pageSize)
	return g
}

func roundUp(n, to int64) int64 { return (n + to - 1) &^ (to - 1) }

// dataStart is where an object's bytes start in a record whose ID is idLen long.
func dataStart(idLen int) int64 { return recordHeader + roundUp(int64(idLen), dataAlign) }

// writeHeader writes the header of a fresh mapping.
func writeHeader(m []byte, g geometry) {
	copy(m[hMagic:], magic)
	le := binary.LittleEndian
	le.PutUint32(m[hVersion:], layoutVersion)
	le.PutUint32(m[hHeaderLen:], headerSize)
	le.PutUint64(m[hMapSize:], uint64(g.mapSize))
	le.PutUint64(m[hTableOff:], uint64(g.tableOff))
	le.PutUint64(m[hSlots:], uint64(g.slots))
	le.PutUint64(m[hDataOff:], uint64(g.dataOff))
	le.PutUint64(m[hCapacity:], uint64(g.capacity))
	le.PutUint64(m[hAlign:], dataAlign)
	le.PutUint64(m[hRecordLen:], recordHeader)
}

// readHeader reads and checks the header of an existing mapping of fileSize bytes.
func readHeader(m []byte, fileSize int64) (geometry, error) {
	if int64(len(m)) < headerSize || string(m[hMagic:hMagic+8]) != magic {
		return geometry{}, fmt.Errorf("not a distore memory store (bad magic)")
	}
	le := binary.LittleEndian
	if v := le.Uint32(m[hVersion:]); v != layoutVersion {
		return geometry{}, fmt.Errorf("layout version %d, this build reads version %d", v, layoutVersion)
	}
	g := geometry{
		mapSize:  int64(le.Uint64(m[hMapSize:])),
		tableOff: int64(le.Uint64(m[hTableOff:])),
		slots:    int64(le.Uint64(m[hSlots:])),
		dataOff:  int64(le.Uint64(m[hDataOff:])),
		capacity: int64(le.Uint64(m[hCapacity:])),
	}
	if le.Uint32(m[hHeaderLen:]) != headerSize || le.Uint64(m[hAlign:]) != dataAlign ||
		le.Uint64(m[hRecordLen:]) != recordHeader || g != newGeometry(g.capacity, g.slots) || g.mapSize != fileSize {
		return geometry{}, fmt.Errorf("inconsistent header (map size %d, table %d+%d, data %d+%d; file %d bytes)",
			g.mapSize, g.tableOff, g.slots, g.dataOff, g.capacity, fileSize)
	}
	return g, nil
}

// slotWord returns the table word of slot i, accessed atomically so that a
// reader in another process sees either 0 or a committed record.
func slotWord(m []byte, g geometry, i int64) *uint64 {
	return (*uint64)(unsafe.Pointer(&m[g.tableOff+i*8]))
}

func setSlot(m []byte, g geometry, i int64, recOff int64) {
	atomic.StoreUint64(slotWord(m, g, i), uint64(recOff))
}

func getSlot(m []byte, g geometry, i int64) int64 {
	return int64(atomic.LoadUint64(slotWord(m, g, i)))
}

// record is an object's persisted metadata.
type record struct {
	id         string
	size       int64
	checksum   uint32
	importance int64
	created    int64
}

// writeRecord writes the record header and ID at rec (a slice of the mapping
// starting at the record).
func writeRecord(rec []byte, r record) {
	le := binary.LittleEndian
	le.PutUint32(rec[rMagic:], recordMagic)
	le.PutUint16(rec[rIDLen:], uint16(len(r.id)))
	le.PutUint64(rec[rSize:], uint64(r.size))
	le.PutUint32(rec[rChecksum:], r.checksum)
	le.PutUint64(rec[rImportance:], uint64(r.importance))
	le.PutUint64(rec[rCreated:], uint64(r.created))
	copy(rec[recordHeader:], r.id)
}

// readRecord reads the record at offset off of the mapping, checking that it
// lies inside the data region.
func readRecord(m []byte, g geometry, off int64) (record, error) {
	if off < g.dataOff || off%dataAlign != 0 || off+recordHeader > g.dataOff+g.capacity {
		return record{}, fmt.Errorf("record offset %d outside the data region", off)
	}
	rec := m[off:]
	le := binary.LittleEndian
	if le.Uint32(rec[rMagic:]) != recordMagic {
		return record{}, fmt.Errorf("record at %d: bad magic", off)
	}
	idLen := int(le.Uint16(rec[rIDLen:]))
	r := record{
		size:       int64(le.Uint64(rec[rSize:])),
		checksum:   le.Uint32(rec[rChecksum:]),
		importance: int64(le.Uint64(rec[rImportance:])),
		created:    int64(le.Uint64(rec[rCreated:])),
	}
	end := g.dataOff + g.capacity
	if idLen == 0 || off+dataStart(idLen) > end || r.size < 0 || r.size > end-off-dataStart(idLen) {
		return record{}, fmt.Errorf("record at %d: ID length %d or size %d out of range", off, idLen, r.size)
	}
	r.id = string(rec[recordHeader : recordHeader+idLen])
	return r, nil
}
