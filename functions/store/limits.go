package store

import (
	"context"
	"strconv"
	"strings"
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

// Limits reads the Redis' limits from INFO memory, which managed Redis allows, and
// proto-max-bulk-len from CONFIG GET where it is allowed, and keeps the latter for
// the create script's check.
func (s *Store) Limits(ctx context.Context) (Limits, error) {
	info, err := s.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return Limits{}, classify(err)
	}
	l := Limits{Policy: infoField(info, "maxmemory_policy"), MaxBulk: defaultMaxBulk}
	l.MaxMemory, _ = strconv.ParseInt(infoField(info, "maxmemory"), 10, 64)
	l.UsedMemory, _ = strconv.ParseInt(infoField(info, "used_memory"), 10, 64)
	if kv, err := s.rdb.ConfigGet(ctx, "proto-max-bulk-len").Result(); err == nil {
		if n, err := strconv.ParseInt(kv["proto-max-bulk-len"], 10, 64); err == nil && n > 0 {
			l.MaxBulk = n
		}
	}
	s.maxBulk.Store(l.MaxBulk)
	return l, nil
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
