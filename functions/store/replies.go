package store

import "strconv"

// Values in the replies of scripts and commands (an element of an array reply, a
// field of HMGET), read without failing: what is missing or of another type reads
// as the zero value, and the caller checks what it needs.

// asString is a reply value as a string; "" for nil (a missing key) or another type.
func asString(x any) string {
	s, _ := x.(string)
	return s
}

// toInt is a reply value as an integer: an integer reply, or a string of digits (a
// value read back from a key); 0 otherwise.
func toInt(x any) int64 {
	switch v := x.(type) {
	case int64:
		return v
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}
