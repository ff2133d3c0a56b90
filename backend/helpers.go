package backend

import "sync"

// CheckID validates id for op on tier, returning an *Error wrapping ErrInvalidID.
func CheckID(op, tier string, id ID) error {
	if err := id.Validate(); err != nil {
		return &Error{Op: op, Tier: tier, ID: id, Err: err}
	}
	return nil
}

// CheckRange validates a range read of an object of size bytes and returns the
// length to read (length -1 means to the end). A negative offset, a length
// below -1, or a range past the end is an error wrapping ErrInvalidArgument.
func CheckRange(op, tier string, id ID, offset, length, size int64) (int64, error) {
	if length == -1 && offset >= 0 && offset <= size {
		return size - offset, nil
	}
	if offset < 0 || length < 0 || offset > size || length > size-offset {
		return 0, Errorf(op, tier, id, ErrInvalidArgument,
			"range offset %d length %d is outside the object's %d bytes", offset, length, size)
	}
	return length, nil
}

// CheckSize validates a declared object size.
func CheckSize(op, tier string, id ID, size int64) error {
	if size < 0 {
		return Errorf(op, tier, id, ErrInvalidArgument, "size %d is negative", size)
	}
	return nil
}

// NewBytesObject returns an Object over data, for tiers that read objects into
// memory. release, if non-nil, runs once on the first Close.
func NewBytesObject(info ObjectInfo, data []byte, release func()) Object {
	return &bytesObject{info: info, data: data, release: release}
}

type bytesObject struct {
	info    ObjectInfo
	data    []byte
	once    sync.Once
	release func()
}

func (o *bytesObject) Info() ObjectInfo { return o.info }
func (o *bytesObject) Bytes() []byte    { return o.data }

func (o *bytesObject) ReadAt(p []byte, off int64) (int, error) {
	return ReadAtBytes(o.info.Tier, o.info.ID, o.data, p, off)
}

func (o *bytesObject) Close() error {
	o.once.Do(func() {
		if o.release != nil {
			o.release()
		}
	})
	return nil
}
