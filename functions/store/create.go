package store

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// createLua stores one record atomically; see create.lua. The record is stored once,
// as its JSON document: the read model, precomputed at write time, so a page is one
// MGET and no decoding. The caller sends the document's tail (all after the seq), and
// the script puts the id and seq, which only it knows, in front. The claim holds the
// record id and a fingerprint of the command, so the same claim with a different
// command is refused instead of answered with the wrong record.
//
// It returns {1, seq} for a new record, {0, document} for a claim already held by the
// same command, or {2, id} when the claim is held by a different command.
//
//go:embed create.lua
var createLua string

var createScript = redis.NewScript(createLua)

// NewRecord is a validated create command ready to be stored.
type NewRecord struct {
	// ID is the random part of the record's id; the stored record's id is
	// "<seq>-<ID>". It must not be empty.
	ID        string
	Type      string
	Text      string
	CreatedAt time.Time
	// Claim is the idempotency claim ("" for none); build it with HTTPClaim or EventClaim.
	Claim    string
	ClaimTTL time.Duration
}

// HTTPClaim returns the claim for an Idempotency-Key header value.
func HTTPClaim(key string) string { return httpIdemKey(key) }

// EventClaim returns the claim for the CloudEvent identified by source and id.
func EventClaim(source, id string) string { return eventIdemKey(source, id) }

// Created is the outcome of Create.
type Created struct {
	Record record.Record
	// New is false when the claim was already held: Record is the first one stored.
	New bool
	// Acked is the number of replicas that confirmed the write (only when asked to wait).
	Acked int
}

// Create stores r atomically and, when replicas > 0, waits up to wait for that many
// replicas to acknowledge it. The wait runs on the same connection as the write, as
// WAIT requires, in the same round trip.
func (s *Store) Create(ctx context.Context, r NewRecord, replicas int, wait time.Duration) (Created, error) {
	if !plainTag(r.ID) {
		return Created{}, fmt.Errorf("create: record id tag %q is not 1 to 64 letters, digits, '-', '_', '.' or '~'", r.ID)
	}
	words := record.Tokenize(r.Text)
	keys := make([]string, 0, 4+len(words))
	keys = append(keys, seqKey, r.Claim, allKey, typeKey(r.Type))
	for _, w := range words {
		keys = append(keys, wordKey(w))
	}
	ttl := r.ClaimTTL.Milliseconds()
	if ttl <= 0 {
		ttl = (24 * time.Hour).Milliseconds()
	}
	createdAt := r.CreatedAt.UTC()
	tail, err := docTail(r.Type, r.Text, createdAt)
	if err != nil {
		return Created{}, err
	}
	args := []any{r.ID, tail, ttl, docPrefix, aliasKey, fingerprint(r.Type, r.Text)}

	res, waitCmd := s.runCreate(ctx, keys, args, replicas, wait)
	if redis.HasErrorPrefix(res.Err(), "NOSCRIPT") {
		// The script cache is empty after a Redis restart or failover: load it, once.
		if err := createScript.Load(ctx, s.rdb).Err(); err != nil {
			return Created{}, classify(err)
		}
		res, waitCmd = s.runCreate(ctx, keys, args, replicas, wait)
	}
	if err := res.Err(); err != nil {
		if sentUnanswered(err) {
			return Created{}, outcomeUnknown(err)
		}
		return Created{}, classify(err)
	}
	vals, err := res.Slice()
	if err != nil || len(vals) != 2 {
		return Created{}, fmt.Errorf("create script: unexpected reply %v: %w", res.Val(), err)
	}
	var out Created
	switch toInt(vals[0]) {
	case 1:
		seq := toInt(vals[1])
		out = Created{New: true, Record: record.Record{ID: recordID(seq, r.ID), Seq: seq, Type: r.Type, Text: r.Text, CreatedAt: createdAt}}
	case 0:
		doc, _ := vals[1].(string)
		if err := json.Unmarshal([]byte(doc), &out.Record); err != nil {
			return Created{}, fmt.Errorf("create script: stored document %q: %w", doc, err)
		}
	default:
		return Created{}, &fail.Error{Code: fail.ECONFLICT, Field: "claim",
			Message: fmt.Sprintf("already used for a different record (%v)", vals[1])}
	}
	if waitCmd != nil {
		// The write is in whatever WAIT says; if WAIT itself failed, no replica is
		// known to have it, and the record is reported unreplicated.
		if n, err := waitCmd.Int64(); err == nil {
			out.Acked = int(n)
		}
	}
	return out, nil
}

// runCreate sends the create script by its SHA and, when replicas > 0, WAIT on the
// same connection (a pipeline), as WAIT only counts that connection's writes.
func (s *Store) runCreate(ctx context.Context, keys []string, args []any, replicas int, wait time.Duration) (res, waitCmd *redis.Cmd) {
	if replicas <= 0 {
		return createScript.EvalSha(ctx, s.rdb, keys, args...), nil
	}
	s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		res = createScript.EvalSha(ctx, p, keys, args...)
		waitCmd = p.Do(ctx, "WAIT", replicas, wait.Milliseconds())
		return nil
	})
	return res, waitCmd
}

// fingerprint identifies a create command's content for its idempotency claim.
func fingerprint(typ, text string) string {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// docHead is how every record document starts, up to the seq's digits; docTail is
// the rest. Together they are the record as encoding/json writes it.
const docHead = `{"id":"","seq":0`

// docTail returns the part of a record's JSON document after its seq, as
// encoding/json writes it.
func docTail(typ, text string, createdAt time.Time) (string, error) {
	b, err := json.Marshal(record.Record{Type: typ, Text: text, CreatedAt: createdAt})
	if err != nil {
		return "", fmt.Errorf("encode record: %w", err)
	}
	tail, ok := strings.CutPrefix(string(b), docHead)
	if !ok {
		return "", fmt.Errorf("encode record: %s does not start with %s", b, docHead)
	}
	return tail, nil
}

// plainTag reports whether tag can go into an id as is: in a URL path, a JSON string
// and a Redis reply, without escaping.
func plainTag(tag string) bool {
	if tag == "" || len(tag) > 64 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}
