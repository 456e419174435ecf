// Package store is the Redis schema of cqrs-knative: the only place that builds
// keys and the only code that talks to Redis. A create is one Lua script, so a
// replica never sees half a record; a page is one read-only script that replicas
// serve, returning the documents the write side stored.
package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Store reads and writes records in one Redis (a master or a replica).
type Store struct {
	rdb    redis.UniversalClient
	budget int // index entries one search page may examine
}

// New returns a Store on rdb; the caller owns and closes rdb.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb, budget: scanBudget} }

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
