package write

import (
	"crypto/rand"
	"encoding/base32"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns the random part of a record id: 8 characters (40 bits). The store
// puts the seq in front ("<seq>-<tag>"), which finds the record; the tag keeps an id
// from ever naming two records, even after a failover rolls seq back and hands the
// same seq out again.
func newID() string {
	var b [5]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
