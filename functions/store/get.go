package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"
)

// GetDoc returns the stored JSON document of the record with id (nil when there is
// none), and the seq this Redis has applied, in one round trip.
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
		// Not found, or nothing readable where a document should be: no record.
		return nil, applied, nil
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
