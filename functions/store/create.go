package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// createLua stores one record atomically; see create.lua. The record is stored once,
// as its JSON document: the read model, built at write time, so a page is one HMGET
// and no decoding. The caller sends the document's type and text members, and the
// script puts the id, seq and create time, which only it knows, around them. The
// claim holds the record id and a fingerprint of the command, so the same claim with
// a different command is refused instead of answered with the wrong record.
//
// It returns {1, seq, epoch, createdAt} for a new record, {0, document, epoch} for a
// claim already held by the same command, or {2, id} when the claim is held by a
// different command; a limit it refuses is an error reply (see classify.go).
//
//go:embed create.lua
var createLua string

var createScript = redis.NewScript(createLua)

// NewRecord is a validated create command ready to be stored.
type NewRecord struct {
	// Tag is the random part of the record's id ("<seq>-<Tag>"); 1 to 64 letters,
	// digits, '-', '_', '.' or '~'.
	Tag  string
	Type string
	Text string
	// Claim makes the create idempotent ("" for none); see HTTPClaim and EventClaim.
	Claim    Claim
	ClaimTTL time.Duration
}

// Created is the outcome of Create.
type Created struct {
	ID  string
	Seq int64
	// Doc is the record's JSON document as stored and as the read side serves it.
	Doc []byte
	// New is false when the claim was already held: Doc is the record stored then.
	New bool
	// At is the record's partition, the partition's epoch and the record's seq: a
	// token holding it reads the record.
	At Position
	// Acked is the number of replicas that confirmed the write (only when asked to wait).
	Acked int
}

// Create stores r atomically in one partition (the claim's, or any) and, when
// replicas > 0, waits up to wait for that many replicas to acknowledge it. The wait
// runs on the same connection as the write, as WAIT requires, in the same round trip.
func (s *Store) Create(ctx context.Context, r NewRecord, replicas int, wait time.Duration) (Created, error) {
	if !plainTag(r.Tag) {
		return Created{}, fmt.Errorf("create: record id tag %q is not 1 to 64 letters, digits, '-', '_', '.' or '~'", r.Tag)
	}
	// Before the first create, the partition count is the store's: a create must
	// not open a partition that the functions configured otherwise never read.
	if err := s.checkPartitionsOnce(ctx); err != nil {
		return Created{}, err
	}
	p := s.anyPartition()
	claimKey, hasClaim := p.key(noClaimName), "0"
	if r.Claim != "" {
		p, claimKey, hasClaim = r.Claim.partition(s.parts), r.Claim.Key(s.parts), "1"
	}
	words := record.Tokenize(r.Text)
	keys := make([]string, 0, 10+len(words))
	keys = append(keys, p.key(seqName), p.key(epochName), p.key(partsName), p.key(docsName),
		claimKey, p.key(aliasName), p.key(outboxName), p.key(allName), p.typeKey(r.Type))
	for _, w := range words {
		keys = append(keys, p.wordKey(w))
	}
	ttl := r.ClaimTTL.Milliseconds()
	if ttl <= 0 {
		ttl = (24 * time.Hour).Milliseconds()
	}
	fields := docFields(r.Type, r.Text)
	idPrefix := recordIDPrefix(p, s.parts)
	args := []any{r.Tag, fields, ttl, fingerprint(r.Type, r.Text), newEpoch(), s.parts, s.maxBulk.Load(),
		s.outboxCap, idPrefix, hasClaim}

	cmds := s.run(ctx, []call{evalCall(ctx, p, createScript, false, keys, args...).waiting(ctx, replicas, wait)})[0]
	res := cmds[0].(*redis.Cmd)
	if err := res.Err(); err != nil {
		if sentUnanswered(err) {
			return Created{}, outcomeUnknown(err)
		}
		return Created{}, classify(err)
	}
	vals, err := res.Slice()
	if err != nil || len(vals) < 2 {
		return Created{}, fmt.Errorf("create script: unexpected reply %v: %w", res.Val(), err)
	}
	var created Created
	switch toInt(vals[0]) {
	case 1:
		if len(vals) != 4 {
			return Created{}, fmt.Errorf("create script: unexpected reply %v", vals)
		}
		created.New, created.Seq = true, toInt(vals[1])
		created.ID = idPrefix + strconv.FormatInt(created.Seq, 10) + "-" + r.Tag
		created.Doc = buildDoc(created.ID, created.Seq, fields, asString(vals[3]))
		created.At = Position{Part: int(p), Epoch: asString(vals[2]), Seq: created.Seq}
	case 0:
		if len(vals) != 3 {
			return Created{}, fmt.Errorf("create script: unexpected reply %v", vals)
		}
		created.Doc = []byte(asString(vals[1]))
		var head struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		}
		if err := json.Unmarshal(created.Doc, &head); err != nil {
			return Created{}, fmt.Errorf("create script: stored document %q: %w", created.Doc, err)
		}
		created.ID, created.Seq = head.ID, head.Seq
		created.At = Position{Part: int(p), Epoch: asString(vals[2]), Seq: created.Seq}
	default:
		return Created{}, &fail.Error{Code: fail.ECONFLICT, Field: "claim",
			Message: fmt.Sprintf("already used for a different record (%v)", vals[1])}
	}
	created.Acked = acked(cmds)
	return created, nil
}

// fingerprint identifies a create command's content for its idempotency claim.
func fingerprint(typ, text string) string {
	sum := sha256.Sum256([]byte(typ + "\x00" + text))
	return hex.EncodeToString(sum[:12])
}

// docFields returns the type and text members of a record's JSON document,
// `"type":...,"text":...`, as encoding/json encodes them (it cannot fail on strings).
func docFields(typ, text string) string {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{typ, text})
	return string(b[1 : len(b)-1]) // without the braces: the script puts the other members around them
}

// buildDoc is the document create.lua stores, built the same way from its parts.
func buildDoc(id string, seq int64, fields, createdAt string) []byte {
	b := make([]byte, 0, len(id)+len(fields)+len(createdAt)+48)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, ',')
	b = append(b, fields...)
	b = append(b, `,"createdAt":"`...)
	b = append(b, createdAt...)
	return append(b, `"}`...)
}

var epochEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newEpoch returns a fresh random epoch (60 bits, 12 characters). Each create sends
// one and the script keeps the partition's first, so a store that is emptied and
// written again gets a new one, whichever function instance writes first.
func newEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return epochEncoding.EncodeToString(b[:])[:12]
}

// plainTag reports whether tag can go into an id as is: in a URL path, a JSON string
// and a Redis reply, without escaping.
func plainTag(tag string) bool {
	return tag != "" && len(tag) <= 64 && !strings.ContainsFunc(tag, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~')
	})
}
