package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/redis/go-redis/v9"
)

// createLua stores one record atomically; see create.lua. The record hash also holds
// doc, the record as the read side serves it (JSON), so a page is a few HGETs and no
// decoding: the read model, precomputed at write time. The caller sends doc in two
// halves around the seq, which only the script knows. The claim holds the record id
// and a fingerprint of the command, so the same claim with a different command is
// refused instead of answered with the wrong record.
//
// It returns {created 1|0, id, seq, type, text, createdAt}, or {2, id} when the claim
// is held by a different command.
//
//go:embed create.lua
var createLua string

var createScript = redis.NewScript(createLua)

// NewRecord is a validated create command ready to be stored.
type NewRecord struct {
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
	keys := make([]string, 0, 5+record.MaxWordsPerRecord)
	keys = append(keys, seqKey, r.Claim, recordKey(r.ID), allKey, typeKey(r.Type))
	for _, w := range record.Tokenize(r.Text) {
		keys = append(keys, wordKey(w))
	}
	ttl := r.ClaimTTL.Milliseconds()
	if ttl <= 0 {
		ttl = (24 * time.Hour).Milliseconds()
	}
	createdAt := r.CreatedAt.UTC()
	before, after, err := docHalves(record.Record{ID: r.ID, Type: r.Type, Text: r.Text, CreatedAt: createdAt})
	if err != nil {
		return Created{}, err
	}
	args := []any{r.ID, r.Type, r.Text, createdAt.Format(time.RFC3339Nano), ttl, recPrefix, before, after,
		fingerprint(r.Type, r.Text)}

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
	if err == nil && len(vals) == 2 && toInt(vals[0]) == 2 {
		return Created{}, &record.Error{Code: record.ECONFLICT, Field: "claim",
			Message: fmt.Sprintf("already used for a different record (%v)", vals[1])}
	}
	if err != nil || len(vals) != 6 {
		return Created{}, fmt.Errorf("create script: unexpected reply %v: %w", res.Val(), err)
	}
	out := Created{New: toInt(vals[0]) == 1}
	if out.Record, err = recordFrom(vals[1:]); err != nil {
		return Created{}, err
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

// docHalves returns r's JSON document split around the seq, which the create script
// fills in.
func docHalves(r record.Record) (before, after string, err error) {
	r.Seq = 0
	b, err := json.Marshal(r)
	if err != nil {
		return "", "", fmt.Errorf("encode record: %w", err)
	}
	const mark = `"seq":0`
	i := bytes.Index(b, []byte(mark))
	if i < 0 {
		return "", "", fmt.Errorf("encode record: no seq in %s", b)
	}
	return string(b[:i+len(mark)-1]), string(b[i+len(mark):]), nil
}

func recordFrom(v []any) (record.Record, error) {
	str := func(x any) string { s, _ := x.(string); return s }
	r := record.Record{ID: str(v[0]), Seq: toInt(v[1]), Type: str(v[2]), Text: str(v[3])}
	t, err := time.Parse(time.RFC3339Nano, str(v[4]))
	if err != nil {
		return record.Record{}, fmt.Errorf("record %s: bad createdAt: %w", r.ID, err)
	}
	r.CreatedAt = t
	return r, nil
}

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
