package remoteobj

import (
	"time"

	"distore/backend"
)

// CheckData returns the CRC-32C of a Put's data, or an ErrCorrupt error
// (op, tier, id) when want is set and differs.
func CheckData(op, tier string, id backend.ID, data []byte, want uint32) (uint32, error) {
	crc := backend.Checksum(data)
	if want != 0 && want != crc {
		return crc, backend.Errorf(op, tier, id, backend.ErrCorrupt,
			"data has CRC-32C %08x, caller expects %08x", crc, want)
	}
	return crc, nil
}

// Created is the creation time an object is stored with: opts.Created, or
// now when that is zero.
func Created(opts backend.PutOptions) time.Time {
	if opts.Created.IsZero() {
		return time.Now()
	}
	return opts.Created
}
