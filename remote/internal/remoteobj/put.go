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

// StartPut is the start of a Put that both Remote tiers share: the data's
// CRC-32C (checked against opts.Checksum), the capacity taken for it
// (release gives it back, once the object is stored or not) and the
// creation time to store.
func (s *Space) StartPut(op string, id backend.ID, data []byte, opts backend.PutOptions) (crc uint32, created time.Time, release func(), err error) {
	crc, err = CheckData(op, s.Tier, id, data, opts.Checksum)
	if err != nil {
		return 0, time.Time{}, nil, err
	}
	n := int64(len(data))
	if err := s.Reserve(op, id, n); err != nil {
		return 0, time.Time{}, nil, err
	}
	return crc, Created(opts), func() { s.Unreserve(n) }, nil
}
