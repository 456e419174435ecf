package store

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The outbox. With it on, the create script also appends an entry to its partition's
// outbox stream (id: the seq; fields: the record id and the create time), in the same
// atomic step as the record: a record is stored if and only if its entry is. A relay
// publishes the entries of a partition in seq order and then removes them. One relay
// at a time holds a partition's lease, a key with a time to live on the master; when
// its holder dies the lease runs out and another takes over, and takes the entries
// the dead one may have published again (the same CloudEvent id: consumers drop the
// duplicate). An entry refused too often moves to the partition's dead-letter stream.
const (
	leaseName = "outbox:lease" // string, TTL: the relay that publishes the partition
	triesName = "outbox:tries" // hash: entry id -> times the entry was taken
	deadName  = "outbox:dead"  // stream: entries given up on, with the reason
)

// DeadLetterMax bounds each partition's dead-letter stream (approximately, as
// XADD MAXLEN ~ trims); the oldest go first.
const DeadLetterMax = 100000

var (
	//go:embed outbox_take.lua
	takeLua    string
	takeScript = redis.NewScript(takeLua)
	//go:embed outbox_done.lua
	doneLua    string
	doneScript = redis.NewScript(doneLua)
	// releaseScript gives the lease up, if the caller holds it.
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// WithOutbox turns the outbox on: every create also writes an outbox entry, and is
// refused (503 outbox_full) while max entries are waiting in its partition.
func (s *Store) WithOutbox(max int) *Store {
	s.outboxCap = max
	return s
}

// Entry is one outbox entry: a record to publish.
type Entry struct {
	// ID is the entry's id in the stream, "<seq>-0".
	ID string
	// Record is the record's id; Doc its JSON document.
	Record string
	Doc    []byte
	// At is the record's partition, the partition's epoch and the record's seq.
	At Position
	// Created is when the record was stored (the master's clock).
	Created time.Time
	// Deliveries counts the times the entry was taken, this one included: above one,
	// an earlier relay may have published it already.
	Deliveries int
}

// Batch is what Take returned.
type Batch struct {
	// Held is true when another relay holds the partition's lease: nothing taken.
	Held bool
	// Pending is how many entries the partition's outbox held.
	Pending int64
	// Entries are the oldest of them, in seq order.
	Entries []Entry
	// Acked is the number of replicas that confirmed the entries (only when asked to
	// wait).
	Acked int
}

// Take takes (or renews) partition p's lease for owner for lease, and returns up to n
// of its oldest entries with their documents. When replicas > 0 it then waits, at
// most wait, for that many replicas to have everything the master had when the
// entries were read, in the same round trip, so a relay can publish only records
// that survive a failover.
func (s *Store) Take(ctx context.Context, p int, owner string, lease time.Duration, n, replicas int, wait time.Duration) (Batch, error) {
	pp := part(p)
	keys := []string{pp.key(leaseName), pp.key(outboxName), pp.key(triesName), pp.key(docsName), pp.key(epochName)}
	args := []any{owner, lease.Milliseconds(), n}
	cmds := s.run(ctx, []call{evalCall(ctx, pp, takeScript, false, keys, args...).waiting(ctx, replicas, wait)})[0]
	vals, err := cmds[0].(*redis.Cmd).Slice()
	if err != nil {
		return Batch{}, classify(err)
	}
	if asString(vals[0]) == "held" {
		return Batch{Held: true}, nil
	}
	if len(vals) < 3 || (len(vals)-3)%5 != 0 {
		return Batch{}, fmt.Errorf("outbox take: unexpected reply %v", vals)
	}
	epoch := asString(vals[1])
	b := Batch{Pending: toInt(vals[2])}
	for i := 3; i < len(vals); i += 5 {
		e := Entry{ID: asString(vals[i]), Record: asString(vals[i+1]), Doc: []byte(asString(vals[i+4]))}
		seq, _, _ := strings.Cut(e.ID, "-")
		e.At = Position{Part: p, Epoch: epoch}
		e.At.Seq, _ = strconv.ParseInt(seq, 10, 64)
		e.Created = time.UnixMilli(toInt(vals[i+2])).UTC()
		e.Deliveries = int(toInt(vals[i+3]))
		b.Entries = append(b.Entries, e)
	}
	b.Acked = acked(cmds)
	return b, nil
}

// Settle records what the relay owner did with entries it took from partition p:
// published ones leave the outbox; untried ones (the relay stopped before them) have
// their count of deliveries put back; dead ones, refused too often, move to the
// dead-letter stream with reason. It renews the lease for lease when the caller still
// holds it, and returns the number of entries left. An entry published is settled
// whoever holds the lease by then.
func (s *Store) Settle(ctx context.Context, p int, owner string, lease time.Duration, published, untried, dead []Entry, reason string) (int64, error) {
	pp := part(p)
	keys := []string{pp.key(outboxName), pp.key(triesName), pp.key(deadName), pp.key(leaseName)}
	args := make([]any, 0, 6+3*(len(published)+len(untried)+len(dead)))
	args = append(args, owner, len(published), len(untried), reason, DeadLetterMax, lease.Milliseconds())
	for _, list := range [][]Entry{published, untried, dead} {
		for _, e := range list {
			args = append(args, e.ID, e.Record, e.Deliveries)
		}
	}
	cmds := s.run(ctx, []call{evalCall(ctx, pp, doneScript, false, keys, args...)})[0]
	n, err := cmds[0].(*redis.Cmd).Int64()
	if err != nil {
		return 0, classify(err)
	}
	return n, nil
}

// Release gives partition p's lease up if owner holds it, so that another relay can
// take over at once rather than when it runs out.
func (s *Store) Release(ctx context.Context, p int, owner string) error {
	keys := []string{part(p).key(leaseName)}
	cmds := s.run(ctx, []call{evalCall(ctx, part(p), releaseScript, false, keys, owner)})[0]
	return classify(cmds[0].Err())
}

// OutboxStats are what the outbox holds now.
type OutboxStats struct {
	Pending int64     // entries waiting, all partitions
	Oldest  time.Time // the create time of the oldest waiting entry; zero when none
	Dead    int64     // entries in the dead-letter streams
}

// Outbox reads the outbox of every partition: one pipeline.
func (s *Store) Outbox(ctx context.Context) (OutboxStats, error) {
	res, err := s.runAll(ctx, s.perPartition(func(p part) []redis.Cmder {
		return []redis.Cmder{redis.NewIntCmd(ctx, "xlen", p.key(outboxName)), redis.NewIntCmd(ctx, "xlen", p.key(deadName)),
			redis.NewXMessageSliceCmd(ctx, "xrange", p.key(outboxName), "-", "+", "count", 1)}
	}))
	if err != nil {
		return OutboxStats{}, err
	}
	var st OutboxStats
	for _, cmds := range res {
		st.Pending += cmds[0].(*redis.IntCmd).Val()
		st.Dead += cmds[1].(*redis.IntCmd).Val()
		for _, m := range cmds[2].(*redis.XMessageSliceCmd).Val() {
			ms, _ := strconv.ParseInt(fmt.Sprint(m.Values["t"]), 10, 64)
			if t := time.UnixMilli(ms).UTC(); st.Oldest.IsZero() || t.Before(st.Oldest) {
				st.Oldest = t
			}
		}
	}
	return st, nil
}
