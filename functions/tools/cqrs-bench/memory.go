package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// usedMemory is INFO memory's used_memory: what the allocator holds for data and
// Redis' own structures, without fragmentation.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	v, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(v, "\r\n") {
		if n, ok := strings.CutPrefix(l, "used_memory:"); ok {
			return strconv.ParseInt(n, 10, 64)
		}
	}
	return 0, fmt.Errorf("no used_memory in INFO memory")
}

// kindStat is what the keys of one kind hold: a kind is the key without the prefix,
// up to its variable part (rec, idx:word, idem, ...).
type kindStat struct {
	kind      string
	keys      int
	sampled   int
	bytes     int64 // MEMORY USAGE of the sampled keys
	entries   int64 // index entries in the sampled keys (ZCARD, or STRLEN / 4 for packed lists)
	encodings map[string]int
}

// estimate is the kind's bytes over all its keys, from its samples.
func (k kindStat) estimate() float64 {
	if k.sampled == 0 {
		return 0
	}
	return float64(k.bytes) / float64(k.sampled) * float64(k.keys)
}

func keyKind(key string) string {
	rest := strings.TrimPrefix(key, "cqrs:")
	if strings.HasPrefix(rest, "{") {
		// A partition's hash tag, {p<n>}: the kind is what follows it.
		if _, after, ok := strings.Cut(rest, "}:"); ok {
			rest = after
		}
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) >= 2 && (parts[0] == "idx" || parts[0] == "ix") {
		return parts[0] + ":" + parts[1]
	}
	return parts[0]
}

// perKind SCANs every cqrs: key and measures MEMORY USAGE (all samples) on up to
// maxSample keys of each kind, with the entries and encodings of index keys.
func perKind(ctx context.Context, rdb *redis.Client, maxSample int) ([]kindStat, error) {
	stats := map[string]*kindStat{}
	var sample []string
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "cqrs:*", 2000).Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			kind := keyKind(k)
			s := stats[kind]
			if s == nil {
				s = &kindStat{kind: kind, encodings: map[string]int{}}
				stats[kind] = s
			}
			s.keys++
			if s.keys <= maxSample {
				sample = append(sample, k)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	for chunk := range slices.Chunk(sample, 500) {
		pipe := rdb.Pipeline()
		usage := make([]*redis.IntCmd, len(chunk))
		enc := make([]*redis.StringCmd, len(chunk))
		typ := make([]*redis.StatusCmd, len(chunk))
		for i, k := range chunk {
			usage[i] = pipe.MemoryUsage(ctx, k, 0)
			enc[i] = pipe.ObjectEncoding(ctx, k)
			typ[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		pipe = rdb.Pipeline()
		size := make([]*redis.IntCmd, len(chunk))
		for i, k := range chunk {
			switch typ[i].Val() {
			case "zset":
				size[i] = pipe.ZCard(ctx, k)
			case "string":
				if strings.HasPrefix(keyKind(k), "ix:") {
					size[i] = pipe.StrLen(ctx, k)
				}
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		for i, k := range chunk {
			s := stats[keyKind(k)]
			s.sampled++
			s.bytes += usage[i].Val()
			s.encodings[enc[i].Val()]++
			if size[i] != nil {
				n := size[i].Val()
				if typ[i].Val() == "string" {
					n /= 4
				}
				s.entries += n
			}
		}
	}
	out := make([]kindStat, 0, len(stats))
	for _, s := range stats {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b kindStat) int { return int(b.estimate() - a.estimate()) })
	return out, nil
}
