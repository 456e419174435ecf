package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// GetDoc returns the stored JSON document of the record with id (nil when there is
// none), and the seq this Redis has applied, in one round trip: one MGET of the seq
// and the document (for an id of a record stored by layout 1, the alias hash gives
// its seq first).
func (s *Store) GetDoc(ctx context.Context, id string) (json.RawMessage, int64, error) {
	n, ok := seqOfID(id)
	if !ok {
		var applied, alias *redis.StringCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			applied = p.Get(ctx, seqKey)
			alias = p.HGet(ctx, aliasKey, id)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, 0, classify(err)
		}
		if n, err = alias.Int64(); err != nil {
			seq, _ := applied.Int64()
			return nil, seq, nil
		}
	}
	vals, err := s.rdb.MGet(ctx, seqKey, docKey(n)).Result()
	if err != nil {
		return nil, 0, classify(err)
	}
	seq, doc := toInt(vals[0]), asString(vals[1])
	// The document must be this id's: after a failover that rolled seq back, the seq
	// may hold another record, whose id has another tag.
	if !strings.HasPrefix(doc, `{"id":`+strconv.Quote(id)+`,`) {
		return nil, seq, nil
	}
	return json.RawMessage(doc), seq, nil
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
