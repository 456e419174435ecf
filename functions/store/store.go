// Package store is the Redis schema of cqrs-knative: the only place that builds
// keys and the only code that talks to Redis. A create is one Lua script in one
// partition, so a replica never sees half a record; a page is one read-only script
// per partition that replicas serve, returning the documents the write side stored.
package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// Store reads and writes records in one Redis (a master or a replica), or in a Redis
// Cluster (its masters, or, for reading, its replicas).
type Store struct {
	rdb       redis.UniversalClient // the one Redis; nil in a cluster
	cluster   *Cluster              // nil on one Redis
	replica   bool                  // in a cluster: reads go to replicas
	parts     int                   // partitions of the store
	budget    int                   // units one search page may spend, shared by its partitions
	outboxCap int                   // outbox entries at which creates are refused; 0: no outbox
	partsOK   atomic.Bool           // the store's partition count was found to be parts
	writer    bool                  // the write function's (ForWrites)
	// configRefused: Redis refused CONFIG GET to this user once; Limits no longer asks.
	configRefused atomic.Bool
	// maxBulk is the Redis' proto-max-bulk-len: the longest string an index may grow
	// to. The create script checks it before its first write.
	maxBulk atomic.Int64
	loaded  atomic.Bool // the scripts were loaded once (Load)
}

// defaultMaxBulk is Redis' default proto-max-bulk-len (512 MB).
const defaultMaxBulk = 512 << 20

// New returns a Store of one partition on rdb; the caller owns and closes rdb.
func New(rdb redis.UniversalClient) *Store {
	s := &Store{rdb: rdb, parts: 1, budget: scanBudget}
	s.maxBulk.Store(defaultMaxBulk)
	return s
}

// NewClustered returns a Store of parts partitions on the Redis Cluster c: on its
// masters, or, with reading, on its replicas (explicitly: a slot with no replica
// online is an error, never a quiet read of its master). The caller owns and closes c.
func NewClustered(c *Cluster, parts int, reading bool) *Store {
	s := New(nil)
	s.cluster, s.parts, s.replica = c, parts, reading
	return s
}

// ForWrites marks s as the write function's, the one that may write the partition
// count into partitions no create has written yet (CheckPartitions); the read
// function's user may not write at all.
func (s *Store) ForWrites() *Store {
	s.writer = true
	return s
}

// Partitions returns the number of partitions of the store.
func (s *Store) Partitions() int { return s.parts }

// anyPartition is the partition of a create without a claim: any will do, and
// spreading them spreads the work over the shards.
func (s *Store) anyPartition() part { return part(rand.IntN(s.parts)) }

// Ping checks that every Redis the store uses answers; until they have once, it
// loads the scripts (a Redis that answers but refuses them, an ACL user without
// them, is not one the store can use) and checks that the store has the number of
// partitions this Store was made for.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.runAll(ctx, s.everyNode(ctx, func() []redis.Cmder { return []redis.Cmder{redis.NewStatusCmd(ctx, "ping")} })); err != nil {
		return err
	}
	if !s.loaded.Load() {
		if err := s.Load(ctx); err != nil {
			return err
		}
	}
	return s.checkPartitionsOnce(ctx)
}

// checkPartitionsOnce runs CheckPartitions until it has passed once.
func (s *Store) checkPartitionsOnce(ctx context.Context) error {
	if s.partsOK.Load() {
		return nil
	}
	return s.CheckPartitions(ctx)
}

// Load puts the scripts into the script cache of every Redis the store uses, so the
// first request pays no EVAL.
func (s *Store) Load(ctx context.Context) error {
	if _, err := s.runAll(ctx, s.everyNode(ctx, func() []redis.Cmder {
		return []redis.Cmder{
			redis.NewStringCmd(ctx, "script", "load", createLua),
			redis.NewStringCmd(ctx, "script", "load", pageLua),
			redis.NewStringCmd(ctx, "script", "load", getLua),
		}
	})); err != nil {
		return err
	}
	s.loaded.Store(true)
	return nil
}

// everyNode is one call per partition whose Redis no earlier partition shares: the
// calls that reach every Redis the store uses once.
func (s *Store) everyNode(ctx context.Context, build func() []redis.Cmder) []call {
	seen := map[redis.UniversalClient]bool{}
	var calls []call
	for i := range s.parts {
		c, err := s.redis(ctx, part(i))
		if err == nil && seen[c] {
			continue
		}
		seen[c] = true
		calls = append(calls, call{p: part(i), build: build})
	}
	return calls
}

// CheckPartitions returns an error when the store was created with another number
// of partitions than this Store has: a function configured so would file records,
// claims and pages under partitions the others do not read. Every partition keeps
// the count; on a Redis Cluster, the write function's Store (ForWrites) first writes it into every
// partition that has none yet (SET NX), so that a count set by the first function
// to start is found whichever partitions a later one reads. One that no function
// has written yet passes.
func (s *Store) CheckPartitions(ctx context.Context) error {
	claim := s.cluster != nil && s.writer
	want := strconv.Itoa(s.parts)
	res, err := s.runAll(ctx, s.perPartition(func(p part) []redis.Cmder {
		get := redis.NewStringCmd(ctx, "get", p.key(partsName))
		if !claim {
			return []redis.Cmder{get}
		}
		return []redis.Cmder{redis.NewCmd(ctx, "set", p.key(partsName), want, "nx"), get}
	}))
	if err != nil {
		return err
	}
	for _, cmds := range res {
		// A partition without the count (redis.Nil) passes.
		if v, err := cmds[len(cmds)-1].(*redis.StringCmd).Result(); err == nil && v != want {
			return partitionsDiffer(v, s.parts)
		}
	}
	s.partsOK.Store(true)
	return nil
}

// partitionsDiffer is the error of a function whose REDIS_PARTITIONS is not the
// store's: not a fault a retry cures, but nothing else is served until it is fixed.
func partitionsDiffer(stored string, configured int) error {
	return fail.Unavailable(fmt.Sprintf("the store has %s partitions and REDIS_PARTITIONS is %d: set REDIS_PARTITIONS=%s on both functions", stored, configured, stored),
		errors.New("partitions differ"))
}
