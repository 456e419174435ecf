package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// Keys of layout 2, which Migrate reads and then deletes: the document per record
// under its seq as 4 bytes, packed lists of seqs ("ix:all", "ix:t:<type>",
// "ix:w:<word>"), the alias hash of layout-1 ids, and idempotency claims under
// "idem:http:<key>" and "idem:ce:<len>:<source>:<id>". (A store of layout 1 goes to
// layout 2 with the cqrs-migrate of the release that brought layout 2, first.)
const (
	v1AllKey       = prefix + "idx:all" // layout 1's index of every record: refused
	v2SeqKey       = prefix + "seq"
	v2DocPrefix    = prefix + "r:"
	v2IndexPrefix  = prefix + "ix:"
	v2AllKey       = v2IndexPrefix + "all"
	v2AliasKey     = prefix + "alias"
	oldClaimPrefix = prefix + "idem:"
)

// Migrated is what Migrate did.
type Migrated struct {
	From    int // the layout it copied from (0 when there was nothing to copy)
	Records int // records copied into the current layout by this run
	Skipped int // records copied by an earlier run
	Claims  int // idempotency claims copied
	Deleted int // keys of the old layout deleted
}

// oldRecord is a record as layout 2 stored it.
type oldRecord struct {
	seq  int64
	id   string
	typ  string
	text string
	doc  string
}

// Migrate copies the records of layout 2 into the current layout (a store of one
// partition), in seq order, a batch at a time, each batch in one MULTI/EXEC: the
// document under its seq and an entry in every index (words as record.Tokenize finds
// them now, so the copy is also the reindex). Then it copies the alias hash of
// layout-1 ids and the idempotency claims with the time they have left, so a retry
// of a command stored before the migration still gets its record. It resumes where
// an earlier run stopped. Then, unless keepOld, it deletes the old layout's keys.
//
// Run it with writes stopped: the indexes must grow in seq order, so no create may
// run before every old record is copied.
func (s *Store) Migrate(ctx context.Context, batch int, keepOld bool, progress func(Migrated)) (Migrated, error) {
	var m Migrated
	if batch < 1 {
		batch = 500
	}
	if s.parts != 1 || s.cluster != nil {
		return m, errors.New("migrate: the old layouts are copied into a store of one partition on one Redis")
	}
	exists, err := s.rdb.Exists(ctx, v1AllKey, v2AllKey).Result()
	if err != nil {
		return m, classify(err)
	}
	v2, err := s.rdb.Exists(ctx, v2AllKey).Result()
	switch {
	case err != nil:
		return m, classify(err)
	case v2 == 0 && exists == 1:
		return m, fmt.Errorf("migrate: this is a store of layout 1 (%s): move it to layout 2 with the cqrs-migrate of the release that brought layout 2 first", v1AllKey)
	case v2 == 0:
		return m, nil
	}
	m.From = 2
	last, err := s.rdb.Get(ctx, part(0).key(seqName)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return m, classify(err)
	}
	if last > 0 {
		pos, err := s.v2Position(ctx, last)
		if err != nil {
			return m, err
		}
		m.Skipped = int(pos)
	}
	for {
		recs, err := s.readV2(ctx, last, batch)
		if err != nil {
			return m, err
		}
		if len(recs) == 0 {
			break
		}
		if err := s.writeBatch(ctx, recs); err != nil {
			return m, err
		}
		m.Records += len(recs)
		last = recs[len(recs)-1].seq
		if progress != nil {
			progress(m)
		}
	}
	if err := s.copyAliases(ctx); err != nil {
		return m, err
	}
	if m.Claims, err = s.copyClaims(ctx); err != nil {
		return m, err
	}
	if keepOld {
		return m, nil
	}
	patterns := []string{v2DocPrefix + "*", v2IndexPrefix + "*", oldClaimPrefix + "*"}
	for _, pattern := range patterns {
		n, err := s.unlinkAll(ctx, pattern)
		m.Deleted += n
		if err != nil {
			return m, err
		}
	}
	k, err := s.rdb.Unlink(ctx, v2SeqKey, v2AliasKey).Result()
	m.Deleted += int(k)
	return m, classify(err)
}

// readV2 returns up to n records of layout 2 with seq above after, in seq order.
func (s *Store) readV2(ctx context.Context, after int64, n int) ([]oldRecord, error) {
	if n == 0 {
		return nil, nil
	}
	pos, err := s.v2Position(ctx, after)
	if err != nil {
		return nil, err
	}
	b, err := s.rdb.GetRange(ctx, v2AllKey, pos*entryBytes, (pos+int64(n))*entryBytes-1).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, classify(err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(b)/entryBytes)
	for i := 0; i+entryBytes <= len(b); i += entryBytes {
		keys = append(keys, v2DocPrefix+string(b[i:i+entryBytes]))
	}
	docs, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, classify(err)
	}
	out := make([]oldRecord, len(docs))
	for i, d := range docs {
		seq := int64(binary.BigEndian.Uint32(b[i*entryBytes:]))
		doc := asString(d)
		var rec record.Record
		if err := json.Unmarshal([]byte(doc), &rec); err != nil || rec.Seq != seq {
			return nil, fmt.Errorf("migrate: the document of seq %d (%q) is not a record of that seq: %v", seq, doc, err)
		}
		out[i] = oldRecord{seq: seq, id: rec.ID, typ: rec.Type, text: rec.Text, doc: doc}
	}
	return out, nil
}

// v2Position is the number of entries of layout 2's all index with seq up to last: a
// binary search over the packed list, one GETRANGE a step.
func (s *Store) v2Position(ctx context.Context, last int64) (int64, error) {
	size, err := s.rdb.StrLen(ctx, v2AllKey).Result()
	if err != nil {
		return 0, classify(err)
	}
	lo, hi := int64(0), size/entryBytes // the answer is in [lo, hi]
	for lo < hi {
		mid := (lo + hi) / 2
		b, err := s.rdb.GetRange(ctx, v2AllKey, mid*entryBytes, mid*entryBytes+entryBytes-1).Bytes()
		if err != nil {
			return 0, classify(err)
		}
		if len(b) == entryBytes && int64(binary.BigEndian.Uint32(b)) <= last {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// writeBatch stores recs (ascending seqs) in the current layout in one MULTI/EXEC.
func (s *Store) writeBatch(ctx context.Context, recs []oldRecord) error {
	p := part(0)
	tx := s.rdb.TxPipeline()
	for _, r := range recs {
		if r.seq < 1 || r.seq > maxSeq {
			return fmt.Errorf("migrate: record %s has seq %d, outside 1..%d", r.id, r.seq, int64(maxSeq))
		}
		entry := docField(r.seq)
		tx.HSet(ctx, p.key(docsName), entry, r.doc)
		tx.Append(ctx, p.key(allName), entry)
		tx.Append(ctx, p.typeKey(r.typ), entry)
		for _, w := range record.Tokenize(r.text) {
			tx.Append(ctx, p.wordKey(w), entry)
		}
	}
	tx.Set(ctx, p.key(seqName), recs[len(recs)-1].seq, 0)
	tx.SetNX(ctx, p.key(epochName), newEpoch(), 0)
	tx.SetNX(ctx, p.key(partsName), 1, 0)
	if _, err := tx.Exec(ctx); err != nil {
		return classify(err)
	}
	return nil
}

// copyAliases copies layout 2's alias hash (ids of layout 1) into the partition's.
func (s *Store) copyAliases(ctx context.Context) error {
	return scanEach(func(cursor uint64) *redis.ScanCmd { return s.rdb.HScan(ctx, v2AliasKey, cursor, "*", 1000) },
		func(kv []string) error { return s.rdb.HSet(ctx, part(0).key(aliasName), kv).Err() })
}

// copyClaims copies the old layouts' idempotency claims into the partition, each with
// the time it has left: COPY keeps it, and copies nothing of a claim that expired
// meanwhile.
func (s *Store) copyClaims(ctx context.Context) (int, error) {
	n := 0
	err := scanEach(func(cursor uint64) *redis.ScanCmd { return s.rdb.Scan(ctx, cursor, oldClaimPrefix+"*", 1000) }, func(keys []string) error {
		for _, k := range keys {
			var c Claim
			switch rest := strings.TrimPrefix(k, oldClaimPrefix); {
			case strings.HasPrefix(rest, "http:"):
				c = HTTPClaim(strings.TrimPrefix(rest, "http:"))
			case strings.HasPrefix(rest, "ce:"):
				c = Claim("e:" + strings.TrimPrefix(rest, "ce:"))
			default:
				continue
			}
			copied, err := s.rdb.Copy(ctx, k, c.Key(1), 0, true).Result()
			if err != nil {
				return err
			}
			n += int(copied)
		}
		return nil
	})
	return n, err
}

func (s *Store) unlinkAll(ctx context.Context, pattern string) (int, error) {
	n := 0
	err := scanEach(func(cursor uint64) *redis.ScanCmd { return s.rdb.Scan(ctx, cursor, pattern, 1000) }, func(keys []string) error {
		if err := s.rdb.Unlink(ctx, keys...).Err(); err != nil {
			return err
		}
		n += len(keys)
		return nil
	})
	return n, err
}

// scanEach runs scan, a SCAN or HSCAN from cursor, to its end, and hands each
// batch that is not empty to do.
func scanEach(scan func(cursor uint64) *redis.ScanCmd, do func(batch []string) error) error {
	var cursor uint64
	for {
		batch, next, err := scan(cursor).Result()
		if err != nil {
			return classify(err)
		}
		if len(batch) > 0 {
			if err := do(batch); err != nil {
				return classify(err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
