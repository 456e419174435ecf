package write

import (
	"crypto/rand"
	"encoding/base32"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a random 16-character record id. Ids are random rather than derived
// from seq so that an id never names two records, even after a failover rolls seq back.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
