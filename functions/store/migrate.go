package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// Migrated is what Migrate did.
type Migrated struct {
	Records int // records copied into the current layout by this run
	Skipped int // records of layout 1 already copied by an earlier run
	Deleted int // keys of layout 1 deleted
}

// Migrate copies the records of layout 1 (a hash per record under its random id,
// sorted sets of ids) into the current layout, in seq order, a batch at a time, each
// batch in one MULTI/EXEC: the document under its seq, the seq appended to every
// index, and the old id in the alias hash, so GET /records/{old id} and idempotency
// claims that name old ids keep working. It resumes where an earlier run stopped.
// Then, unless keepOld, it deletes the keys of layout 1.
//
// Run it with writes stopped: the current layout's indexes must grow in seq order,
// so no create may run before every old record is copied.
func (s *Store) Migrate(ctx context.Context, batch int, keepOld bool, progress func(Migrated)) (Migrated, error) {
	var m Migrated
	if batch < 1 {
		batch = 500
	}
	last, err := s.lastEntry(ctx, allKey)
	if err != nil {
		return m, err
	}
	lower := "(" + strconv.FormatInt(last, 10)
	if last > 0 {
		n, err := s.rdb.ZCount(ctx, legacyAllKey, "-inf", strconv.FormatInt(last, 10)).Result()
		if err != nil {
			return m, classify(err)
		}
		m.Skipped = int(n)
	}
	for {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: legacyAllKey, Start: lower, Stop: "+inf",
			ByScore: true, Count: int64(batch)}).Result()
		if err != nil {
			return m, classify(err)
		}
		if len(zs) == 0 {
			break
		}
		if err := s.migrateBatch(ctx, zs); err != nil {
			return m, err
		}
		m.Records += len(zs)
		lower = "(" + strconv.FormatInt(int64(zs[len(zs)-1].Score), 10)
		if progress != nil {
			progress(m)
		}
	}
	if keepOld {
		return m, nil
	}
	for _, pattern := range []string{legacyRecordPrefix + "*", legacyIndexPrefix + "*"} {
		n, err := s.unlinkAll(ctx, pattern)
		m.Deleted += n
		if err != nil {
			return m, err
		}
	}
	return m, nil
}

// migrateBatch copies the records of zs (ids scored by seq, ascending).
func (s *Store) migrateBatch(ctx context.Context, zs []redis.Z) error {
	pipe := s.rdb.Pipeline()
	fields := make([]*redis.SliceCmd, len(zs))
	for i, z := range zs {
		fields[i] = pipe.HMGet(ctx, legacyRecordPrefix+z.Member.(string), "doc", "type", "text", "createdAt")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return classify(err)
	}
	tx := s.rdb.TxPipeline()
	for i, z := range zs {
		id, seq := z.Member.(string), int64(z.Score)
		if seq < 1 || seq > maxSeq {
			return fmt.Errorf("migrate: record %s has seq %d, outside 1..%d", id, seq, int64(maxSeq))
		}
		v := fields[i].Val()
		doc, typ, text := asString(v[0]), asString(v[1]), asString(v[2])
		if typ == "" {
			return fmt.Errorf("migrate: record %s (seq %d) is in %s but has no hash %s", id, seq, legacyAllKey, legacyRecordPrefix+id)
		}
		if doc == "" {
			// Stored before documents were: build it as the write side would have.
			r := record.Record{ID: id, Seq: seq, Type: typ, Text: text}
			if err := r.CreatedAt.UnmarshalText([]byte(asString(v[3]))); err != nil {
				return fmt.Errorf("migrate: record %s: createdAt: %w", id, err)
			}
			b, _ := json.Marshal(r)
			doc = string(b)
		}
		entry := indexEntry(seq)
		tx.Set(ctx, docKey(seq), doc, 0)
		tx.Append(ctx, allKey, entry)
		tx.Append(ctx, typeKey(typ), entry)
		for _, w := range record.Tokenize(text) {
			tx.Append(ctx, wordKey(w), entry)
		}
		tx.HSet(ctx, aliasKey, id, seq)
	}
	if _, err := tx.Exec(ctx); err != nil {
		return classify(err)
	}
	return nil
}

// lastEntry is the last seq in a packed index, 0 when it is empty.
func (s *Store) lastEntry(ctx context.Context, key string) (int64, error) {
	b, err := s.rdb.GetRange(ctx, key, -entryBytes, -1).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, classify(err)
	}
	if len(b) != entryBytes {
		return 0, nil
	}
	return int64(binary.BigEndian.Uint32(b)), nil
}

func (s *Store) unlinkAll(ctx context.Context, pattern string) (int, error) {
	n := 0
	var cursor uint64
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return n, classify(err)
		}
		if len(keys) > 0 {
			if err := s.rdb.Unlink(ctx, keys...).Err(); err != nil {
				return n, classify(err)
			}
			n += len(keys)
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}
