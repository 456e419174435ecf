package store

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"
	"strings"
)

// Every key carries this prefix so the data can share a Redis with other apps and be
// found with SCAN cqrs:* (never KEYS).
const prefix = "cqrs:"

// The layout (version 3). The store is split into a fixed number of partitions (one
// on a single master; set when the store is created, for Redis Cluster). Every key of
// a partition starts with its hash tag, cqrs:{p<n>}:, the first {...} in the key, so
// that Redis Cluster keeps a partition on one shard and one script can touch all of
// it; nothing a client sends comes before the tag, so no input can steer a slot.
//
// In a partition, a record is stored once, as the JSON document the read side
// serves, in the documents hash under its seq (4 big-endian bytes); every index is a
// packed list of seqs: a string of 4-byte big-endian seqs in ascending order,
// appended to by the create script. A packed entry costs 4 bytes where a sorted-set
// entry with a 16-character member cost 60 to 120. Every key a script touches is
// named in its KEYS, so a partition can move between shards without a script ever
// failing half way.
const (
	seqName     = "seq"     // string: the last seq handed out in the partition
	epochName   = "epoch"   // string: the partition's identity, written once by the first create
	partsName   = "parts"   // string: the number of partitions of the store, written with the epoch
	docsName    = "docs"    // hash: seq (4 bytes) -> the record's JSON document
	allName     = "ix:a"    // packed list of every seq
	typePrefix  = "ix:t:"   // packed list per record type
	wordPrefix  = "ix:w:"   // packed list per word, as record.Tokenize writes it
	claimPrefix = "idem:"   // string, TTL: idempotency claim -> "<record id> <fingerprint>"
	noClaimName = "idem"    // never written: stands for the claim of a create without one
	aliasName   = "alias"   // hash: id of a record stored by layout 1 -> its seq (cqrs-migrate)
	outboxName  = "outbox"  // stream: the partition's records not yet published, by seq
	entryBytes  = 4         // bytes per packed index entry
	maxSeq      = 1<<32 - 1 // the largest seq an entry can hold
)

// MaxPartitions bounds the partitions of a store: a page reads every one of them.
const MaxPartitions = 1024

// part builds the keys of one partition.
type part int

// key is the partition's key for name.
func (p part) key(name string) string {
	return prefix + "{p" + strconv.Itoa(int(p)) + "}:" + name
}

func (p part) typeKey(t string) string { return p.key(typePrefix + t) }

func (p part) wordKey(w string) string { return p.key(wordPrefix + w) }

// docField is the field of the document of the record with seq in the documents
// hash: the seq as its index entry, so the page script makes fields from index
// entries by slicing, with no number formatting (a sprintf in Redis' Lua).
func docField(seq int64) string { return string(binary.BigEndian.AppendUint32(nil, uint32(seq))) }

// Claim identifies a command for idempotency: an Idempotency-Key header or an
// event's source and id. Its partition is a hash of it, so a retry reaches the
// partition that holds the claim.
type Claim string

// HTTPClaim is the claim of an Idempotency-Key header value.
func HTTPClaim(key string) Claim { return Claim("h:" + key) }

// EventClaim is the claim of the CloudEvent identified by source and id, exactly as
// sent; the length prefix keeps "a:b"+"c" apart from "a"+"b:c".
func EventClaim(source, id string) Claim {
	return Claim("e:" + strconv.Itoa(len(source)) + ":" + source + ":" + id)
}

// Key is the Redis key that holds the claim in a store of parts partitions.
func (c Claim) Key(parts int) string { return c.partition(parts).key(claimPrefix + string(c)) }

// partition is the claim's partition of a store of n partitions: FNV-1a of the claim,
// fixed forever, as a claim must be found where it was made.
func (c Claim) partition(n int) part {
	h := fnv.New32a()
	h.Write([]byte(c))
	return part(h.Sum32() % uint32(n))
}

// Record ids are "<seq>-<tag>" in a store of one partition and "<partition>_<seq>-<tag>"
// in a store of several: the partition and seq find the document, and the random tag,
// which the document's id must match, keeps an id from naming two records when a
// failover rolls seq back and the seq is handed out again. Ids of records stored by
// layout 1 (16 random characters, no dash) are found through the alias hash.
func recordIDPrefix(p part, parts int) string {
	if parts == 1 {
		return ""
	}
	return strconv.Itoa(int(p)) + "_"
}

// parseID returns the partition and seq an id names in a store of parts partitions;
// ok is false for an id of another shape (for a store of one partition, a layout-1
// id is then looked up in the alias hash).
func parseID(id string, parts int) (p part, seq int64, ok bool) {
	rest := id
	if parts > 1 {
		ps, r, found := strings.Cut(id, "_")
		n, good := decimal(ps, MaxPartitions-1)
		if !found || !good || n >= int64(parts) {
			return 0, 0, false
		}
		p, rest = part(n), r
	}
	s, tag, found := strings.Cut(rest, "-")
	n, good := decimal(s, maxSeq)
	if !found || tag == "" || !good || n < 1 {
		return 0, 0, false
	}
	return p, n, true
}

// decimal parses s, a decimal number without sign or leading zero, up to max.
func decimal(s string, max int64) (int64, bool) {
	if len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 63)
	return int64(n), err == nil && int64(n) <= max
}
