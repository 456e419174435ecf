package store

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Limits are the settings of a Redis that decide whether the store can keep what it
// writes there.
type Limits struct {
	// Policy is maxmemory-policy; MaxMemory is maxmemory in bytes (0: no limit).
	Policy    string
	MaxMemory int64
	// UsedMemory is what the data set uses now.
	UsedMemory int64
	// MaxBulk is proto-max-bulk-len, the longest string an index may become; Redis'
	// default when CONFIG is not allowed (as on managed Redis).
	MaxBulk int64
}

// Evicts reports whether Redis may evict keys to stay under maxmemory: claims
// (which carry a TTL, so volatile-* policies take them first), indexes and
// documents must never go, so only noeviction is safe once maxmemory is set.
func (l Limits) Evicts() bool { return l.MaxMemory > 0 && l.Policy != "noeviction" }

// Limits reads the limits of every Redis the store writes (in a cluster, every
// master that serves a partition: the most restrictive of each) from INFO memory,
// which managed Redis allows, and proto-max-bulk-len from CONFIG GET where it is
// allowed, and keeps the latter for the create script's check.
func (s *Store) Limits(ctx context.Context) (Limits, error) {
	var all Limits
	askConfig := !s.configRefused.Load()
	for n, cmds := range s.run(ctx, s.everyNode(ctx, func() []redis.Cmder {
		info := redis.NewStringCmd(ctx, "info", "memory")
		if !askConfig {
			return []redis.Cmder{info}
		}
		return []redis.Cmder{info, redis.NewMapStringStringCmd(ctx, "config", "get", "proto-max-bulk-len")}
	})) {
		info, err := cmds[0].(*redis.StringCmd).Result()
		if err != nil {
			return Limits{}, classify(err)
		}
		l := Limits{Policy: infoField(info, "maxmemory_policy"), MaxBulk: defaultMaxBulk}
		l.MaxMemory, _ = strconv.ParseInt(infoField(info, "maxmemory"), 10, 64)
		l.UsedMemory, _ = strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
		if askConfig {
			kv, err := cmds[1].(*redis.MapStringStringCmd).Result()
			if n, perr := strconv.ParseInt(kv["proto-max-bulk-len"], 10, 64); err == nil && perr == nil && n > 0 {
				l.MaxBulk = n
			}
			// A user without CONFIG (managed Redis, the documented ACL) is not asked
			// again: each refusal is an entry of Redis' ACL LOG, which an operator
			// reads for real refusals.
			if err != nil && redis.HasErrorPrefix(err, "NOPERM") {
				s.configRefused.Store(true)
			}
		}
		bulk := l.MaxBulk
		if n > 0 {
			bulk = min(bulk, all.MaxBulk)
		}
		if n == 0 || l.worse(all) {
			all = l
		}
		all.MaxBulk = bulk
	}
	s.maxBulk.Store(all.MaxBulk)
	return all, nil
}

// worse reports whether l is closer to refusing writes than o: it evicts where o does
// not, or its memory is fuller.
func (l Limits) worse(o Limits) bool {
	if l.Evicts() != o.Evicts() {
		return l.Evicts()
	}
	return l.Ratio() > o.Ratio()
}

// Ratio is used_memory / maxmemory, 0 without maxmemory.
func (l Limits) Ratio() float64 {
	if l.MaxMemory <= 0 {
		return 0
	}
	return float64(l.UsedMemory) / float64(l.MaxMemory)
}

// infoField returns the value of field in an INFO reply, "" when absent.
func infoField(info, field string) string {
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	return ""
}
