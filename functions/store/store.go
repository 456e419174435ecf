// Package store is the Redis schema of cqrs-knative: the only place that builds
// keys and the only code that talks to Redis. A create is one Lua script in one
// partition, so a replica never sees half a record; a page is one read-only script
// per partition that replicas serve, returning the documents the write side stored.
package store

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store reads and writes records in one Redis (a master or a replica).
type Store struct {
	rdb        redis.UniversalClient
	parts      int           // partitions of the store
	budget     int           // units one search page may spend, shared by its partitions
	searchTime time.Duration // time one search page may take in Redis, shared likewise
	outboxCap  int           // outbox entries at which creates are refused; 0: no outbox
	// maxBulk is the Redis' proto-max-bulk-len: the longest string an index may grow
	// to. The create script checks it before its first write.
	maxBulk atomic.Int64
	loaded  atomic.Bool // the scripts were loaded once (Load)
}

// defaultMaxBulk is Redis' default proto-max-bulk-len (512 MB).
const defaultMaxBulk = 512 << 20

// New returns a Store of one partition on rdb; the caller owns and closes rdb.
func New(rdb redis.UniversalClient) *Store {
	s := &Store{rdb: rdb, parts: 1, budget: scanBudget, searchTime: searchTime}
	s.maxBulk.Store(defaultMaxBulk)
	return s
}

// Partitions returns the number of partitions of the store.
func (s *Store) Partitions() int { return s.parts }

// anyPartition is the partition of a create without a claim: any will do, and
// spreading them spreads the work over the shards.
func (s *Store) anyPartition() part {
	if s.parts == 1 {
		return 0
	}
	return part(rand.IntN(s.parts))
}

// Ping checks that Redis answers and, until the scripts were loaded once, loads
// them: a Redis that answers but refuses the scripts (an ACL user without them) is
// not one the store can use.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return classify(err)
	}
	if !s.loaded.Load() {
		return s.Load(ctx)
	}
	return nil
}

// Load puts the scripts into Redis' script cache so the first request pays no EVAL.
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range []*redis.Script{createScript, pageScript, getScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return classify(err)
		}
	}
	s.loaded.Store(true)
	return nil
}
