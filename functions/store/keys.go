package store

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// Every key carries this prefix so the data can share a Redis with other apps and be
// found with SCAN cqrs:* (never KEYS).
const prefix = "cqrs:"

// The layout (version 2). A record is stored once, as the JSON document the read side
// serves, under its seq; every index is a packed list of seqs: a string of 4-byte
// big-endian seqs in ascending order, appended to by the create script. A packed entry
// costs 4 bytes where a sorted-set entry with a 16-character member cost 60 to 120.
const (
	seqKey     = prefix + "seq"    // string: last seq handed out
	docPrefix  = prefix + "r:"     // string per record: its JSON document; the key ends in the seq's 4 index bytes
	allKey     = prefix + "ix:all" // packed list of every seq
	typePrefix = prefix + "ix:t:"  // packed list per record type
	wordPrefix = prefix + "ix:w:"  // packed list per lower-cased word
	idemPrefix = prefix + "idem:"  // string: idempotency key -> "<record id> <fingerprint>", with TTL
	aliasKey   = prefix + "alias"  // hash: id of a record stored by layout 1 -> its seq (written by cqrs-migrate)
	entryBytes = 4                 // bytes per packed index entry
	maxSeq     = 1<<(8*entryBytes) - 1
)

// Keys of layout 1, which Migrate reads and then deletes: a hash per record under its
// random id (fields id, seq, type, text, createdAt and doc), and sorted sets of ids
// scored by seq under legacyIndexPrefix ("all", "type:<type>", "word:<word>").
const (
	legacyRecordPrefix = prefix + "rec:"
	legacyIndexPrefix  = prefix + "idx:"
	legacyAllKey       = legacyIndexPrefix + "all"
)

// docKey is the key of the document of the record with seq: the prefix and the seq
// as its index entry (4 bytes, big-endian), so the page script makes keys from index
// entries by slicing, with no number formatting, which costs Redis' Lua a sprintf.
func docKey(seq int64) string { return docPrefix + indexEntry(seq) }

// indexEntry is seq as a packed index holds it: 4 bytes, big-endian.
func indexEntry(seq int64) string { return string(binary.BigEndian.AppendUint32(nil, uint32(seq))) }

func typeKey(t string) string { return typePrefix + t }

func wordKey(w string) string { return wordPrefix + w }

// httpIdemKey is the claim for an Idempotency-Key header.
func httpIdemKey(k string) string { return idemPrefix + "http:" + k }

// eventIdemKey is the claim for a CloudEvent; source and id together identify an
// event, and the length prefix keeps "a:b"+"c" apart from "a"+"b:c".
func eventIdemKey(source, id string) string {
	return idemPrefix + "ce:" + strconv.Itoa(len(source)) + ":" + source + ":" + id
}

// Record ids are "<seq>-<tag>": the seq finds the document, and the random tag, which
// the document's id must match, keeps an id from naming two records when a failover
// rolls seq back and the seq is handed out again. Ids of records stored by layout 1
// (random, no dash) are found through the alias hash that cqrs-migrate writes.
func recordID(seq int64, tag string) string { return strconv.FormatInt(seq, 10) + "-" + tag }

// seqOfID returns the seq an id of the form "<seq>-<tag>" names.
func seqOfID(id string) (int64, bool) {
	s, tag, ok := strings.Cut(id, "-")
	if !ok || tag == "" || s == "" || len(s) > 10 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxSeq {
		return 0, false
	}
	return n, true
}
