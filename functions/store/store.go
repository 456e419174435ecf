package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// Options say how to reach Redis. With SentinelAddrs set, Addr is ignored and the
// client follows the master (or the replicas, with Replicas) that Sentinel names.
type Options struct {
	Addr           string
	Password       string
	SentinelAddrs  []string
	SentinelMaster string
	Replicas       bool // connect to a replica through Sentinel (read side)
	PoolSize       int
	// ReadTimeout overrides the default socket read timeout; a WAIT longer than the
	// read timeout would otherwise be cut off by the client.
	ReadTimeout time.Duration
}

// Check returns an error naming the first environment variable behind o whose
// value cannot work.
func (o Options) Check() error {
	switch {
	case o.Addr == "" && len(o.SentinelAddrs) == 0:
		return fmt.Errorf("REDIS_ADDR: must not be empty")
	case len(o.SentinelAddrs) > 0 && o.SentinelMaster == "":
		return fmt.Errorf("REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINEL_ADDRS")
	case o.PoolSize < 1 || o.PoolSize > 10000:
		return fmt.Errorf("REDIS_POOL_SIZE=%d: must be between 1 and 10000", o.PoolSize)
	}
	return nil
}

// Timeouts are short on purpose: a dead or stuck Redis must turn into a 503 within
// about two seconds, never a hung request.
const (
	dialTimeout = 500 * time.Millisecond
	ioTimeout   = time.Second
	poolTimeout = time.Second
)

// NewClient returns a go-redis client with bounded pool and short timeouts. Commands
// are not retried by the client: a create that timed out may have been applied, and
// only the caller (with an idempotency key) can retry it safely.
func NewClient(o Options) redis.UniversalClient {
	pool := o.PoolSize
	if pool <= 0 {
		pool = 64
	}
	rt := ioTimeout
	if o.ReadTimeout > rt {
		rt = o.ReadTimeout
	}
	if len(o.SentinelAddrs) > 0 {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:    o.SentinelMaster,
			SentinelAddrs: o.SentinelAddrs,
			Password:      o.Password,
			ReplicaOnly:   o.Replicas,
			DialTimeout:   dialTimeout,
			ReadTimeout:   rt,
			WriteTimeout:  ioTimeout,
			PoolTimeout:   poolTimeout,
			PoolSize:      pool,
			// Pipelines share the bounded main pool instead of a second pool with
			// 128 KiB buffers per connection.
			PipelinePoolSize: -1,
			MaxRetries:       -1,
			DialerRetries:    1,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr:         o.Addr,
		Password:     o.Password,
		DialTimeout:  dialTimeout,
		ReadTimeout:  rt,
		WriteTimeout: ioTimeout,
		PoolTimeout:  poolTimeout,
		PoolSize:     pool,
		// Pipelines share the bounded main pool instead of a second pool with
		// 128 KiB buffers per connection.
		PipelinePoolSize: -1,
		MaxRetries:       -1,
		// One dial attempt: a refused connection is an answer, and the caller's
		// fallback (or the client's retry) is faster than the pool's own backoff.
		DialerRetries: 1,
	})
}

// Store reads and writes records in one Redis (a master or a replica).
type Store struct {
	rdb    redis.UniversalClient
	budget int // index entries one search page may examine
}

// New returns a Store on rdb; the caller owns and closes rdb.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb, budget: scanBudget} }

// Client returns the underlying client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return classify(err)
	}
	return nil
}

// Load puts the scripts into Redis' script cache so the first request pays no EVAL.
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range []*redis.Script{createScript, pageScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return classify(err)
		}
	}
	return nil
}

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

// Query selects a page of records, newest first.
type Query struct {
	Type   string   // "" for every type
	Words  []string // tokenized; every word must occur
	Limit  int
	Before int64 // cursor: only records with seq < Before; 0 for the newest
}

// Page is one page of a Query, decoded.
type Page struct {
	Records []record.Record
	// Next is the cursor of the following page; 0 when there is none.
	Next int64
	// Seq is the last seq this Redis has applied when it answered.
	Seq int64
}

// DocPage is one page of a Query as stored: each record's JSON document, ready to
// be sent without decoding.
type DocPage struct {
	Docs []json.RawMessage
	Next int64
	Seq  int64
}

// scanBudget bounds how many index entries one search page examines, so a rare word
// combination cannot make a single request walk the whole store.
const scanBudget = 10000

// Page runs q and decodes the records.
func (s *Store) Page(ctx context.Context, q Query) (Page, error) {
	dp, err := s.PageDocs(ctx, q)
	if err != nil {
		return Page{}, err
	}
	p := Page{Next: dp.Next, Seq: dp.Seq, Records: make([]record.Record, len(dp.Docs))}
	for i, d := range dp.Docs {
		if err := json.Unmarshal(d, &p.Records[i]); err != nil {
			return Page{}, fmt.Errorf("record document %q: %w", d, err)
		}
	}
	return p, nil
}

// PageDocs runs q in one round trip.
func (s *Store) PageDocs(ctx context.Context, q Query) (DocPage, error) {
	keys := make([]string, 0, 3+len(q.Words))
	keys = append(keys, seqKey)
	if q.Type != "" {
		keys = append(keys, typeKey(q.Type))
	}
	for _, w := range q.Words {
		keys = append(keys, wordKey(w))
	}
	if len(keys) == 1 {
		keys = append(keys, allKey)
	}
	upper := "+inf"
	if q.Before > 0 {
		upper = "(" + strconv.FormatInt(q.Before, 10)
	}
	vals, err := pageScript.RunRO(ctx, s.rdb, keys, upper, q.Limit, s.budget, recPrefix).StringSlice()
	if err != nil {
		return DocPage{}, classify(err)
	}
	if len(vals) < 2 {
		return DocPage{}, fmt.Errorf("page script: unexpected reply %q", vals)
	}
	dp := DocPage{Docs: make([]json.RawMessage, len(vals)-2)}
	dp.Seq, _ = strconv.ParseInt(vals[0], 10, 64)
	dp.Next, _ = strconv.ParseInt(vals[1], 10, 64)
	for i, d := range vals[2:] {
		dp.Docs[i] = json.RawMessage(d)
	}
	return dp, nil
}

// Get returns the record with id and the seq this Redis has applied.
func (s *Store) Get(ctx context.Context, id string) (record.Record, int64, error) {
	doc, seq, err := s.GetDoc(ctx, id)
	if err != nil {
		return record.Record{}, seq, err
	}
	var r record.Record
	if err := json.Unmarshal(doc, &r); err != nil {
		return record.Record{}, seq, fmt.Errorf("record document %q: %w", doc, err)
	}
	return r, seq, nil
}

// GetDoc returns the stored JSON document of the record with id, and the seq this
// Redis has applied, in one round trip.
func (s *Store) GetDoc(ctx context.Context, id string) (json.RawMessage, int64, error) {
	var seq, doc *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		seq = p.Get(ctx, seqKey)
		doc = p.HGet(ctx, recordKey(id), "doc")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, classify(err)
	}
	applied, _ := seq.Int64()
	b, err := doc.Bytes()
	if err != nil {
		return nil, applied, &record.Error{Code: record.ENOTFOUND, Field: "id", Message: "no record with id " + strconv.Quote(id)}
	}
	return b, applied, nil
}

// Seq returns the last seq this Redis has applied (0 for an empty store).
func (s *Store) Seq(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, seqKey).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, classify(err)
	}
	return n, nil
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

// classify turns Redis failures that a retry may cure (connection refused, timeouts,
// a master that became a replica, a replica still loading) into EUNAVAILABLE, so
// clients get 503 + Retry-After; anything else stays an internal error.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), isConnErr(err):
		return record.Unavailable("redis is unavailable", err)
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "BUSY", "TRYAGAIN", "CLUSTERDOWN"} {
		if redis.HasErrorPrefix(err, p) {
			return record.Unavailable("redis is unavailable", err)
		}
	}
	return fmt.Errorf("redis: %w", err)
}

func isConnErr(err error) bool {
	s := err.Error()
	return strings.Contains(s, "EOF") || strings.Contains(s, "connection refused") ||
		strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "no such host") || strings.Contains(s, "i/o timeout")
}
