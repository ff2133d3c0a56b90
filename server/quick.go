package server

// Quick requests: the connection loop answers the two commonest requests —
// GET and PUT of a small object by ID, with nothing unusual about them —
// without building an http.Request, a header map and a context, and without
// the mux. On loopback, those cost the server as much as the store's work
// and the socket's together; what is left is the same Backend calls and the
// same bytes on the wire as the handlers'. Anything else, or any error, goes
// to the handlers, which report it: a quick answer is always a success.

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"time"

	"distore/backend"
	"distore/levels"
)

// Routes of quick requests, as the mux names them in metrics.
const (
	routeGetObject = "GET /v1/objects/{id}"
	routePutObject = "PUT /v1/objects/{id}"
)

// quickMax is the largest object a quick request moves: its answer, or its
// request, fits the connection's buffer whole. Past it, moving the bytes
// costs more than what a quick request saves.
const quickMax = connBufSize / 2

// serveQuick answers q, or returns false having written and stored nothing.
func (s *Server) serveQuick(ctx context.Context, bw *bufio.Writer, q quickReq) bool {
	if q.method == http.MethodPut {
		return s.quickPut(ctx, bw, q)
	}
	return s.quickGet(ctx, bw, q)
}

// quickGet answers a GET of a whole object that is in the memory tier and
// at most quickMax bytes with what get sends: status line, the headers of
// setInfoHeaders(h, info, false, size), and the bytes from the tier's
// memory.
func (s *Server) quickGet(ctx context.Context, bw *bufio.Writer, q quickReq) bool {
	id := q.id
	if !zeroCopyGet {
		return false
	}
	start := time.Now()
	// ObjectInfo first: Get would read an object on disk whole.
	if info, err := s.b.ObjectInfo(ctx, backend.ID(id)); err != nil || info.Level != levels.Memory || info.Size > quickMax {
		return false
	}
	obj, err := s.b.Get(ctx, backend.ID(id))
	if err != nil {
		return false
	}
	defer obj.Close()
	// The head says what Get returned, should the object have been put
	// again since ObjectInfo.
	info, data := obj.Info(), obj.Bytes()
	if int64(len(data)) != info.Size || info.Size > quickMax {
		return false // get reports it
	}
	var head [192]byte
	_, _ = bw.Write(appendGetHead(head[:0], info, q.shuttingDown()))
	_, _ = bw.Write(data) // an error stays in bw: the loop's flush sees it
	s.met.observe(routeGetObject, http.StatusOK, time.Since(start), info.Size)
	return true
}

// appendGetHead appends the status line and headers of a 200 answer to a
// GET of the whole object: those of setInfoHeaders(h, info, false, size),
// and Connection: close if closing.
func appendGetHead(b []byte, info backend.ObjectInfo, closing bool) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	b = append(b, HeaderSize+": "...)
	b = strconv.AppendInt(b, info.Size, 10)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, info.Size, 10)
	b = append(b, "\r\n"+HeaderChecksum+": "...)
	b = appendHex8(b, info.Checksum)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, octetType[0]...)
	return endHead(b, closing)
}

// endHead ends a head: the last header's line end, Connection: close if
// closing, and the blank line.
func endHead(b []byte, closing bool) []byte {
	if closing {
		b = append(b, "\r\nConnection: close"...)
	}
	return append(b, "\r\n\r\n"...)
}

// quickPut stores q's body, already all read, with one Put and answers as
// put does: 201, Location, and the object's info as JSON. A header put
// would refuse, or a failed Put (which stores nothing), leaves the request
// to put, which tries again and reports what it finds.
func (s *Server) quickPut(ctx context.Context, bw *bufio.Writer, q quickReq) bool {
	start := time.Now()
	var opts backend.PutOptions
	if len(q.importance) > 0 {
		n, err := strconv.Atoi(string(q.importance))
		if err != nil {
			return false
		}
		opts.Importance = n
	}
	if len(q.checksum) > 0 {
		c, err := strconv.ParseUint(string(q.checksum), 16, 32)
		if err != nil {
			return false
		}
		opts.Checksum = uint32(c)
	}
	info, err := s.b.Put(ctx, backend.ID(q.id), q.body, opts)
	if err != nil {
		return false
	}
	bp := infoBufs.Get().(*[]byte)
	defer infoBufs.Put(bp)
	body, err := appendInfoJSON((*bp)[:0], info)
	if err != nil {
		// Stored, but its info does not encode (a tier's clock out of
		// JSON's range): the put succeeded, so say so with an empty info.
		s.log.Error("put: object stored, its info does not encode", "id", q.id, "err", err)
		body = append(body[:0], "{}\n"...)
	}
	*bp = body[:0]
	var head [192]byte
	_, _ = bw.Write(appendPutHead(head[:0], q.id, len(body), q.shuttingDown()))
	_, _ = bw.Write(body)
	s.met.bytesIn.Add(float64(len(q.body)))
	s.met.observe(routePutObject, http.StatusCreated, time.Since(start), int64(len(body)))
	return true
}

// appendPutHead appends the status line and headers of put's 201 answer
// with a JSON body of n bytes, and Connection: close if closing.
func appendPutHead(b []byte, id string, n int, closing bool) []byte {
	b = append(b, "HTTP/1.1 201 Created\r\nLocation: "+objectPrefix...)
	b = append(b, id...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, jsonType[0]...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return endHead(b, closing)
}
