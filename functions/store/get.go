package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// getLua returns a record's document and its partition's position in one read-only
// step; see get.lua. It returns {seq, epoch, status, document or ""}.
//
//go:embed get.lua
var getLua string

var getScript = redis.NewScript(getLua)

// Got is the outcome of GetDoc.
type Got struct {
	// Doc is the record's stored JSON document; nil when there is no such record.
	Doc json.RawMessage
	// At is where the record's partition had got on the Redis that answered.
	At Position
	// Status says whether that Redis could serve the read; Doc means something only
	// when it is Served.
	Status Status
}

// GetDoc returns the record with id, answered only by a Redis that has what need
// asks of the record's partition. An id of no shape this store hands out is no
// record (for a store of one partition, the alias hash of layout-1 ids is asked).
func (s *Store) GetDoc(ctx context.Context, id string, need Need) (Got, error) {
	if err := s.checkPartitionsOnce(ctx); err != nil {
		return Got{}, err
	}
	p, seq, ok := parseID(id, s.parts)
	field := ""
	if ok {
		field = docField(seq)
	} else if s.parts > 1 || len(id) > 64 {
		return s.position(ctx, 0, need)
	}
	epoch, minSeq := need.Want(int(p))
	keys := []string{p.key(seqName), p.key(epochName), p.key(docsName), p.key(aliasName)}
	cmds := s.run(ctx, []call{evalCall(ctx, p, getScript, true, keys, id, field, minSeq, epoch)})[0]
	vals, err := cmds[0].(*redis.Cmd).StringSlice()
	if err != nil {
		return Got{}, classify(err)
	}
	if len(vals) != 4 {
		return Got{}, fmt.Errorf("get script: unexpected reply %q", vals)
	}
	status, known := statusNames[vals[2]]
	if !known {
		return Got{}, fmt.Errorf("get script: unknown status %q", vals[2])
	}
	g := Got{Status: status, At: Position{Part: int(p), Epoch: vals[1]}}
	g.At.Seq, _ = strconv.ParseInt(vals[0], 10, 64)
	if vals[3] != "" {
		g.Doc = json.RawMessage(vals[3])
	}
	return g, nil
}

// position answers a read of no record with where partition p has got, as far as
// need asks, so that even a 404 says which Redis answered and how far it was.
func (s *Store) position(ctx context.Context, p part, need Need) (Got, error) {
	ps, err := s.Positions(ctx)
	if err != nil {
		return Got{}, err
	}
	g := Got{At: ps[p]}
	epoch, minSeq := need.Want(int(p))
	switch {
	case epoch != "" && g.At.Epoch != epoch:
		g.Status = OtherHistory
	case g.At.Seq < minSeq:
		g.Status = Behind
	}
	return g, nil
}

// Positions returns where every partition of this Redis has got: its epoch ("" when
// no create has written one yet) and its last seq. It is how a read waits for a
// replica: cheap, one round trip.
func (s *Store) Positions(ctx context.Context) ([]Position, error) {
	if err := s.checkPartitionsOnce(ctx); err != nil {
		return nil, err
	}
	res, err := s.runAll(ctx, s.perPartition(func(p part) []redis.Cmder {
		return []redis.Cmder{redis.NewSliceCmd(ctx, "mget", p.key(seqName), p.key(epochName))}
	}))
	if err != nil {
		return nil, err
	}
	out := make([]Position, s.parts)
	for i, cmds := range res {
		v := cmds[0].(*redis.SliceCmd).Val()
		out[i] = Position{Part: i, Seq: toInt(v[0]), Epoch: asString(v[1])}
	}
	return out, nil
}
