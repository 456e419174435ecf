package store

import (
	"strconv"
)

// Every key carries this prefix so the data can share a Redis with other apps and be
// found with SCAN cqrs:* (never KEYS).
const prefix = "cqrs:"

const (
	seqKey     = prefix + "seq"       // string: last seq handed out
	recPrefix  = prefix + "rec:"      // hash per record: id, seq, type, text, createdAt
	allKey     = prefix + "idx:all"   // zset of every record id scored by seq
	typePrefix = prefix + "idx:type:" // zset per record type
	wordPrefix = prefix + "idx:word:" // zset per lower-cased word
	idemPrefix = prefix + "idem:"     // string: idempotency key -> record id, with TTL
)

func recordKey(id string) string { return recPrefix + id }

func typeKey(t string) string { return typePrefix + t }

func wordKey(w string) string { return wordPrefix + w }

// httpIdemKey is the claim for an Idempotency-Key header.
func httpIdemKey(k string) string { return idemPrefix + "http:" + k }

// eventIdemKey is the claim for a CloudEvent; source and id together identify an
// event, and the length prefix keeps "a:b"+"c" apart from "a"+"b:c".
func eventIdemKey(source, id string) string {
	return idemPrefix + "ce:" + strconv.Itoa(len(source)) + ":" + source + ":" + id
}
