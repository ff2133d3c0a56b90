//go:build ceph

package ceph

/*
#cgo LDFLAGS: -lrados
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <rados/librados.h>

// distore_read_meta reads up to len bytes at offset 0 of oid into buf and
// the value of the xattr xname into xbuf, in one RADOS read op (one round
// trip). *xgot is the xattr's length, or -1 if the object has none.
static int distore_read_meta(rados_ioctx_t io, const char *oid, char *buf, size_t len, size_t *nread,
		const char *xname, char *xbuf, size_t xlen, long *xgot) {
	rados_read_op_t op = rados_create_read_op();
	int rrval = 0, xrval = 0;
	rados_xattrs_iter_t it = NULL;
	*nread = 0;
	*xgot = -1;
	rados_read_op_read(op, 0, len, buf, nread, &rrval);
	rados_read_op_getxattrs(op, &it, &xrval);
	int ret = rados_read_op_operate(op, io, oid, 0);
	if (ret >= 0 && xrval >= 0 && it != NULL) {
		const char *name, *val;
		size_t vlen;
		while (rados_getxattrs_next(it, &name, &val, &vlen) == 0 && name != NULL) {
			if (strcmp(name, xname) == 0) {
				memcpy(xbuf, val, vlen < xlen ? vlen : xlen);
				*xgot = (long)vlen;
				break;
			}
		}
	}
	if (it != NULL) {
		rados_getxattrs_end(it);
	}
	rados_release_read_op(op);
	if (ret < 0) {
		return ret;
	}
	return rrval < 0 ? rrval : 0;
}
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"syscall"
	"unsafe"

	"distore/backend"
)

// readHead reads the first len(buf) bytes of id's RADOS object and its
// metadata in one op. buf must not be empty.
func (t *Tier) readHead(op string, id backend.ID, buf []byte) (int, meta, error) {
	oid := C.CString(string(id))
	defer C.free(unsafe.Pointer(oid))
	xname := C.CString(metaXattr)
	defer C.free(unsafe.Pointer(xname))
	var xbuf [1024]byte
	var nread C.size_t
	var xgot C.long
	ret := C.distore_read_meta(C.rados_ioctx_t(t.ioctx.Pointer()), oid, (*C.char)(unsafe.Pointer(&buf[0])),
		C.size_t(len(buf)), &nread, xname, (*C.char)(unsafe.Pointer(&xbuf[0])), C.size_t(len(xbuf)), &xgot)
	switch {
	case ret == -C.ENOENT:
		return 0, meta{}, backend.Errorf(op, Name, id, backend.ErrNotFound, "")
	case ret < 0:
		return 0, meta{}, t.wrap(op, id, fmt.Errorf("rados read op: ret=%d, %v", int(ret), syscall.Errno(-ret)))
	case xgot < 0:
		return 0, meta{}, backend.Errorf(op, Name, id, backend.ErrNotFound, "RADOS object without distore metadata")
	case int(xgot) > len(xbuf):
		return 0, meta{}, backend.Errorf(op, Name, id, backend.ErrCorrupt, "metadata xattr of %d bytes", int(xgot))
	}
	var m meta
	if err := json.Unmarshal(xbuf[:xgot], &m); err != nil {
		return 0, meta{}, backend.Errorf(op, Name, id, backend.ErrCorrupt, "metadata xattr: %v", err)
	}
	return int(nread), m, nil
}
