package backend

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"

	"distore/internal/probe"
)

// ID names an object. IDs are chosen by the caller of a tier, so an object keeps
// its ID when it moves between tiers and nodes. A valid ID is 1 to MaxIDLen
// bytes of [A-Za-z0-9._-], does not start with '.' or '-', and so can never
// name a path or key outside a tier's namespace.
type ID string

// MaxIDLen is the longest valid ID in bytes.
const MaxIDLen = 200

// OwnerSeparator separates the owner's name from the rest of a generated ID.
const OwnerSeparator = "."

// Validate returns nil for a valid ID, else an error wrapping ErrInvalidID that
// says what is wrong.
func (id ID) Validate() error {
	if n := probe.IDValidations.Load(); n != nil {
		n.Add(1)
	}
	why := ""
	switch {
	case len(id) == 0:
		why = "empty"
	case len(id) > MaxIDLen:
		why = fmt.Sprintf("%d bytes long, more than %d", len(id), MaxIDLen)
	case id[0] == '.' || id[0] == '-':
		why = fmt.Sprintf("starts with %q", id[0])
	default:
		for i := 0; i < len(id); i++ {
			if !idByte(id[i]) {
				why = fmt.Sprintf("byte %d is %q; allowed are A-Z a-z 0-9 . _ -", i, id[i])
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w %q: %s", ErrInvalidID, truncate(string(id)), why)
}

// idBytes marks the bytes allowed in an ID; a table, because every operation
// of every tier validates its ID.
var idBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	return t
}()

func idByte(c byte) bool { return idBytes[c] }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Owner returns the owner part of an ID made by an owned generator (the part
// before the first OwnerSeparator), or "" if the ID has none.
func (id ID) Owner() string {
	if i := strings.Index(string(id), OwnerSeparator); i > 0 {
		return string(id[:i])
	}
	return ""
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a fresh random ID (26 characters, 128 random bits) with no owner.
func NewID() ID { return ID(randomPart()) }

// NewOwnedID returns a fresh random ID that names owner (a node), as
// "owner.random". owner must itself be a valid ID without OwnerSeparator.
func NewOwnedID(owner string) (ID, error) {
	if err := ID(owner).Validate(); err != nil || strings.Contains(owner, OwnerSeparator) {
		return "", fmt.Errorf("%w: owner %q must be a valid ID without %q", ErrInvalidID, truncate(owner), OwnerSeparator)
	}
	return ID(owner + OwnerSeparator + randomPart()), nil
}

func randomPart() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}
