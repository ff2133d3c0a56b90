// Package wire is distore's HTTP contract, shared by the server and every Go
// client: paths, header names, error codes and the backend sentinels they
// stand for, the JSON error body, the list page and how object info travels
// in headers. The server writes what this package says and the client reads
// it back with the same code, so the two sides cannot drift apart.
//
// docs/http-api.md describes the API for people; this package is its source
// of truth for programs.
package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"distore/backend"
	"distore/levels"
)

// Paths of the API.
const (
	ObjectsPath = "/v1/objects" // POST: put (server picks the ID); GET: list
	StatsPath   = "/v1/stats"
	HealthPath  = "/healthz"
	MetricsPath = "/metrics"
)

// ObjectPath returns the path of one object ("/v1/objects/{id}"). A valid ID
// needs no escaping.
func ObjectPath(id backend.ID) string { return ObjectsPath + "/" + string(id) }

// Header names of the API. Object info travels in HeaderInfo on a put's
// reply, a GET and a HEAD; importance, checksum and creation time may be sent
// on a put.
const (
	// HeaderInfo carries all of an object's info in one value, an
	// application/x-www-form-urlencoded list (FormatInfo): one header to
	// write, sort and parse rather than one per field, which a 4 KiB get
	// would pay for every field.
	HeaderInfo = "X-Distore-Info"

	HeaderImportance = "X-Distore-Importance" // put: the object's importance
	HeaderChecksum   = "X-Distore-Checksum"   // put: CRC-32C of the body, 8 lower-case hex digits
	HeaderCreated    = "X-Distore-Created"    // put: creation time, RFC 3339 (a copy keeps the original's)

	// HeaderErrorCode carries the error code on every error response, so
	// that a HEAD, which has no body, still tells the client what went wrong.
	HeaderErrorCode = "X-Distore-Error-Code"
	// HeaderErrorMessage carries the error message on a HEAD's error response.
	HeaderErrorMessage = "X-Distore-Error-Message"
)

// PreferMinimal is the preference (RFC 7240, header Prefer) with which a put
// asks for its info in HeaderInfo only, without the JSON body; the reply then
// says Preference-Applied: return=minimal.
const PreferMinimal = "return=minimal"

// Limits of List pages.
const (
	DefaultListLimit = backend.DefaultListLimit
	MaxListLimit     = 10000
)

// MaxHeaderBytes is the most a request's line and headers may take; a larger
// head is answered 431.
const MaxHeaderBytes = 64 << 10

// Error codes of the API. They are stable: clients map them back to the
// sentinel errors of package backend (CodeSentinel).
const (
	CodeInvalidID       = "invalid_id"         // 400: the object ID is malformed
	CodeInvalidArgument = "invalid_argument"   // 400: a bad or unknown parameter
	CodeUnknownColumn   = "unknown_column"     // 400: a columnar read names a column the table lacks
	CodeNotArrow        = "not_arrow"          // 415: a columnar read of an object that is not an Arrow IPC file
	CodeBadBody         = "bad_body"           // 400: the request body ended before Content-Length
	CodeUnauthorized    = "unauthorized"       // 401: no token, or an unknown one
	CodeForbidden       = "forbidden"          // 403: the token lacks the right
	CodeNotFound        = "not_found"          // 404: no such object
	CodeNoRoute         = "no_route"           // 404: no such endpoint
	CodeMethod          = "method_not_allowed" // 405: the path exists, not with this method
	CodeExists          = "exists"             // 409: the ID is taken
	CodePinned          = "pinned"             // 409: the object is pinned
	CodeNotPinned       = "not_pinned"         // 409: unpin of an object without pins
	CodeLengthRequired  = "length_required"    // 411: PUT without Content-Length
	CodeTooLarge        = "too_large"          // 413: larger than every tier
	CodeBadRange        = "bad_range"          // 416: Range outside the object or malformed
	CodeCorrupt         = "corrupt"            // 422 on put (body does not match the checksum), 500 on read
	CodeFull            = "full"               // 507: no room now (pinned bytes block spilling)
	CodeUnavailable     = "unavailable"        // 503: a tier cannot run
	CodeClosed          = "closed"             // 503: the store is shutting down
	CodeTimeout         = "timeout"            // 504: the request's deadline passed
	CodeCanceled        = "canceled"           // 499-like: the client went away
	CodeInternal        = "internal"           // 500: anything else
)

// ErrUnauthorized and ErrForbidden are what 401 and 403 answers wrap on the
// client side.
var (
	ErrUnauthorized = errors.New("unauthorized: a valid bearer token is needed")
	ErrForbidden    = errors.New("forbidden: the token lacks the right for this request")
)

// sentinels maps codes to the errors they stand for. Several codes may stand
// for one sentinel; Classify picks the code of each sentinel.
var sentinels = map[string]error{
	CodeInvalidID:       backend.ErrInvalidID,
	CodeInvalidArgument: backend.ErrInvalidArgument,
	CodeUnknownColumn:   backend.ErrInvalidArgument,
	CodeNotArrow:        backend.ErrInvalidArgument,
	CodeBadRange:        backend.ErrInvalidArgument,
	CodeLengthRequired:  backend.ErrInvalidArgument,
	CodeBadBody:         backend.ErrInvalidArgument,
	CodeUnauthorized:    ErrUnauthorized,
	CodeForbidden:       ErrForbidden,
	CodeNotFound:        backend.ErrNotFound,
	CodeExists:          backend.ErrExists,
	CodePinned:          backend.ErrPinned,
	CodeNotPinned:       backend.ErrNotPinned,
	CodeTooLarge:        backend.ErrTooLarge,
	CodeFull:            backend.ErrFull,
	CodeUnavailable:     backend.ErrUnavailable,
	CodeClosed:          backend.ErrClosed,
	CodeCorrupt:         backend.ErrCorrupt,
	CodeTimeout:         context.DeadlineExceeded,
	CodeCanceled:        context.Canceled,
}

// CodeSentinel maps an error code of the API to the sentinel it stands for,
// or nil when there is none.
func CodeSentinel(code string) error { return sentinels[code] }

// classes lists, in the order they are tested, the sentinels a server error
// may wrap, with their status and code. ErrTooLarge comes before ErrFull: a
// too-large error is a full one too.
var classes = []struct {
	err    error
	status int
	code   string
}{
	{backend.ErrInvalidID, http.StatusBadRequest, CodeInvalidID},
	{backend.ErrNotFound, http.StatusNotFound, CodeNotFound},
	{backend.ErrExists, http.StatusConflict, CodeExists},
	{backend.ErrPinned, http.StatusConflict, CodePinned},
	{backend.ErrNotPinned, http.StatusConflict, CodeNotPinned},
	{backend.ErrTooLarge, http.StatusRequestEntityTooLarge, CodeTooLarge},
	{backend.ErrFull, http.StatusInsufficientStorage, CodeFull},
	{backend.ErrInvalidArgument, http.StatusBadRequest, CodeInvalidArgument},
	{backend.ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
	{backend.ErrClosed, http.StatusServiceUnavailable, CodeClosed},
	{backend.ErrCorrupt, http.StatusInternalServerError, CodeCorrupt},
	{ErrUnauthorized, http.StatusUnauthorized, CodeUnauthorized},
	{ErrForbidden, http.StatusForbidden, CodeForbidden},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, CodeTimeout},
	{context.Canceled, 499, CodeCanceled}, // nginx's "client closed request"; nobody reads it
}

// Classify returns the HTTP status and code of an error by the sentinel it
// wraps; 500 internal for any other.
func Classify(err error) (status int, code string) {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	return http.StatusInternalServerError, CodeInternal
}

// ErrorBody is the JSON body of every error response. The sizes are set for
// "full" and "too_large", so a client can rebuild a *backend.FullError.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Requested, Free, Capacity and Pinned are the sizes of a FullError.
	Requested int64 `json:"requested,omitempty"`
	Free      int64 `json:"free,omitempty"`
	Capacity  int64 `json:"capacity,omitempty"`
	Pinned    int64 `json:"pinned,omitempty"`
}

// NewErrorBody returns the body that tells err: its code and message, and
// the sizes of a *backend.FullError.
func NewErrorBody(code string, err error) ErrorBody {
	b := ErrorBody{Code: code, Message: err.Error()}
	var fe *backend.FullError
	if errors.As(err, &fe) {
		b.Requested, b.Free, b.Capacity, b.Pinned = fe.Requested, fe.Free, fe.Capacity, fe.Pinned
	}
	return b
}

// Err returns the error a client wraps for this body, received in an answer
// of status to op on id: the code's sentinel (a *backend.FullError, with its
// sizes, for full and too_large), ErrNotFound for a 404 without a code,
// else an error naming the status.
func (b ErrorBody) Err(op string, id backend.ID, status int) error {
	switch s := CodeSentinel(b.Code); {
	case s == backend.ErrFull || s == backend.ErrTooLarge:
		fe := backend.NewFullError(op, "server", id, b.Requested, b.Free, b.Capacity, b.Pinned)
		fe.TooLarge = s == backend.ErrTooLarge
		return fe
	case s != nil:
		return s
	case status == http.StatusNotFound && b.Code == "":
		return backend.ErrNotFound
	}
	return errors.New(http.StatusText(status))
}

// ListPage is the JSON body of GET /v1/objects. Next is the cursor of the
// next page (pass it as after=), empty on the last page.
type ListPage struct {
	Objects []backend.ObjectInfo `json:"objects"`
	Next    backend.ID           `json:"next,omitempty"`
}

// FormatChecksum formats a CRC-32C as 8 lower-case hex digits.
func FormatChecksum(c uint32) string {
	var b [8]byte
	return string(appendChecksum(b[:0], c))
}

// appendChecksum appends c as 8 lower-case hex digits.
func appendChecksum(b []byte, c uint32) []byte {
	const digits = "0123456789abcdef"
	for i := range 8 {
		b = append(b, digits[c>>(28-4*i)&15])
	}
	return b
}

// ParseChecksum parses what FormatChecksum writes (1 to 8 hex digits).
func ParseChecksum(s string) (uint32, error) {
	c, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: checksum %q is not 8 hex digits (CRC-32C)", backend.ErrInvalidArgument, s)
	}
	return uint32(c), nil
}

// The keys of HeaderInfo's value, in the order FormatInfo writes them.
const (
	infoID         = "id"
	infoSize       = "size"
	infoChecksum   = "checksum"
	infoImportance = "importance"
	infoPins       = "pins"
	infoLevel      = "level"
	infoTier       = "tier"
	infoCreated    = "created"
	infoAccessed   = "accessed"
)

var infoKeys = []string{infoID, infoSize, infoChecksum, infoImportance, infoPins, infoLevel, infoTier, infoCreated, infoAccessed}

// FormatInfo encodes an object's info as HeaderInfo's value, a form-encoded
// list: id, size, checksum (8 hex digits), importance, pins, level (its
// name), tier, and created and accessed (RFC 3339 with nanoseconds) when set.
// For example:
//
//	id=traj-1&size=4096&checksum=1bdc8a83&importance=0&pins=0&level=memory&tier=memory&created=2026-12-07T19:00:00.123456789Z
func FormatInfo(info backend.ObjectInfo) string {
	b := make([]byte, 0, 192)
	b = append(b, infoID+"="...)
	b = append(b, url.QueryEscape(string(info.ID))...)
	b = append(b, "&"+infoSize+"="...)
	b = strconv.AppendInt(b, info.Size, 10)
	b = append(b, "&"+infoChecksum+"="...)
	b = appendChecksum(b, info.Checksum)
	b = append(b, "&"+infoImportance+"="...)
	b = strconv.AppendInt(b, int64(info.Importance), 10)
	b = append(b, "&"+infoPins+"="...)
	b = strconv.AppendInt(b, int64(info.Pins), 10)
	b = append(b, "&"+infoLevel+"="...)
	b = append(b, url.QueryEscape(info.Level.String())...)
	b = append(b, "&"+infoTier+"="...)
	b = append(b, url.QueryEscape(info.Tier)...)
	if !info.Created.IsZero() {
		b = append(b, "&"+infoCreated+"="...)
		b = info.Created.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	if !info.Accessed.IsZero() {
		b = append(b, "&"+infoAccessed+"="...)
		b = info.Accessed.UTC().AppendFormat(b, time.RFC3339Nano)
	}
	return string(b)
}

// SetInfo puts an object's info in a response's HeaderInfo (a put's reply,
// GET and HEAD), so a read carries the info of exactly the bytes it returns.
func SetInfo(h http.Header, info backend.ObjectInfo) {
	// The name is canonical already: assigning skips Header.Set's
	// canonicalization.
	h[HeaderInfo] = []string{FormatInfo(info)}
}

// ParseInfo reads the info SetInfo wrote. id fills the ID when the value has
// none. A missing field is zero; a malformed one, or no HeaderInfo at all, is
// an error.
func ParseInfo(id backend.ID, h http.Header) (backend.ObjectInfo, error) {
	v := h.Get(HeaderInfo)
	if v == "" {
		return backend.ObjectInfo{ID: id}, fmt.Errorf("no %s header", HeaderInfo)
	}
	return ParseInfoValue(id, v)
}

// ParseInfoValue decodes FormatInfo's encoding (see ParseInfo). It splits
// the value as url.ParseQuery does, and unescapes with url.QueryUnescape, but
// fills the info as it goes rather than building ParseQuery's map, which
// costs a put's reply microseconds. A key given twice counts the first time,
// as url.Values.Get reads it; keys it does not know are skipped.
func ParseInfoValue(id backend.ID, v string) (backend.ObjectInfo, error) {
	info := backend.ObjectInfo{ID: id}
	var errs []error
	bad := func(key string, err error) {
		errs = append(errs, fmt.Errorf("header %s, %s: %w", HeaderInfo, key, err))
	}
	var seen uint16
	escaped := strings.ContainsAny(v, "%+") // most values are not: no unescaping
	for rest := v; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if strings.Contains(pair, ";") {
			return backend.ObjectInfo{ID: id}, fmt.Errorf("header %s: invalid semicolon separator in %q", HeaderInfo, OneLine(pair))
		}
		if pair == "" {
			continue
		}
		key, val, _ := strings.Cut(pair, "=")
		if escaped {
			var err error
			if key, err = url.QueryUnescape(key); err == nil {
				val, err = url.QueryUnescape(val)
			}
			if err != nil {
				return backend.ObjectInfo{ID: id}, fmt.Errorf("header %s: %w", HeaderInfo, err)
			}
		}
		field := slices.Index(infoKeys, key)
		if field < 0 || seen&(1<<field) != 0 {
			continue
		}
		seen |= 1 << field
		if val == "" {
			continue // a missing field is zero
		}
		switch key {
		case infoID:
			info.ID = backend.ID(val)
		case infoTier:
			info.Tier = val
		case infoSize, infoImportance, infoPins:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				bad(key, err)
			}
			switch key {
			case infoSize:
				info.Size = n
			case infoImportance:
				info.Importance = int(n)
			default:
				info.Pins = int(n)
			}
		case infoLevel:
			if val != "none" {
				l, err := levels.Parse(val)
				if err != nil {
					bad(key, err)
				}
				info.Level = l
			}
		case infoChecksum:
			c, err := ParseChecksum(val)
			if err != nil {
				bad(key, err)
			}
			info.Checksum = c
		case infoCreated, infoAccessed:
			tm, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				bad(key, err)
			}
			if key == infoCreated {
				info.Created = tm
			} else {
				info.Accessed = tm
			}
		}
	}
	return info, errors.Join(errs...)
}

// OneLine makes s fit in a header value: line breaks and runs of spaces
// become one space, and it is cut at 200 bytes.
func OneLine(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}
