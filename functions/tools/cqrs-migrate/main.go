// Command cqrs-migrate moves a store written by the layout before this one (layout
// 2: a document per record under its seq, packed lists of seqs, no partitions) to the
// current one (layout 3), which keeps a partition's documents in one hash and every
// key under the partition's hash tag, and indexes words in their search form
// (compatibility-composed and case-folded), so copying also reindexes. It keeps every
// record, seq, id (those of layout 1 through the alias hash) and idempotency claim,
// resumes where an earlier run stopped and then deletes the old keys. A store of
// layout 1 goes to layout 2 first, with the cqrs-migrate of the release that brought
// layout 2.
//
// Stop writes first (scale cqrs-write to zero), run it against the master, then
// deploy the new functions:
//
//	cqrs-migrate [-addr host:port] [-batch 500] [-keep-old]
//
// It reaches Redis as the functions do, through the same variables: REDIS_ADDR
// (which -addr overrides), REDIS_PASSWORD, an ACL user (REDIS_USERNAME), TLS
// (REDIS_TLS and its files), or the Sentinels (REDIS_SENTINEL_ADDRS, ...), which
// name the master. A value that cannot work stops it at start with one line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func main() {
	cfg, err := serve.Load(redisenv.Redis{RedisAddr: "127.0.0.1:6379", RedisSentinelMaster: "mymaster", RedisPoolSize: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqrs-migrate: configuration:", err)
		os.Exit(2)
	}
	addr := flag.String("addr", cfg.RedisAddr, "the Redis master (default $REDIS_ADDR)")
	batch := flag.Int("batch", 500, "records copied per MULTI/EXEC")
	keepOld := flag.Bool("keep-old", false, "keep the old layout's keys after copying")
	flag.Parse()
	cfg.RedisAddr = *addr

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rdb := store.NewClient(cfg.Options())
	defer rdb.Close()
	s := store.New(rdb)
	m, err := s.Migrate(ctx, *batch, *keepOld, func(m store.Migrated) {
		if m.Records%50000 < *batch {
			fmt.Fprintf(os.Stderr, "cqrs-migrate: %d records copied\n", m.Records)
		}
	})
	if m.From == 0 {
		fmt.Println("cqrs-migrate: no store of layout 2 found; nothing to copy")
	}
	fmt.Printf("cqrs-migrate: %d records copied, %d copied before, %d claims copied, %d old keys deleted\n", m.Records, m.Skipped, m.Claims, m.Deleted)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqrs-migrate:", err)
		os.Exit(1)
	}
}
