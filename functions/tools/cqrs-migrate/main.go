// Command cqrs-migrate moves a store written by an earlier Redis layout to the
// current one: layout 1 (a hash per record, sorted sets of 16-character ids for every
// index) or layout 2 (a document per record under its seq, packed lists of seqs
// without partitions). The current layout keeps a partition's documents in one hash
// and every key under the partition's hash tag, and indexes words in their search
// form (compatibility-composed and case-folded), so copying also reindexes. It keeps
// every record, seq, id and idempotency claim, resumes where an earlier run stopped
// and then deletes the old keys.
//
// Stop writes first (scale cqrs-write to zero), run it against the master, then
// deploy the new functions:
//
//	cqrs-migrate [-addr host:port] [-batch 500] [-keep-old]
//
// REDIS_ADDR and REDIS_PASSWORD are read as the functions read them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func main() {
	addr := flag.String("addr", envOr("REDIS_ADDR", "127.0.0.1:6379"), "the Redis master (default $REDIS_ADDR)")
	batch := flag.Int("batch", 500, "records copied per MULTI/EXEC")
	keepOld := flag.Bool("keep-old", false, "keep the old layout's keys after copying")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rdb := store.NewClient(store.Options{Addr: *addr, Password: os.Getenv("REDIS_PASSWORD")})
	defer rdb.Close()
	s := store.New(rdb)
	m, err := s.Migrate(ctx, *batch, *keepOld, func(m store.Migrated) {
		if m.Records%50000 < *batch {
			fmt.Fprintf(os.Stderr, "cqrs-migrate: %d records copied\n", m.Records)
		}
	})
	if m.From == 0 {
		fmt.Println("cqrs-migrate: no store of layout 1 or 2 found; nothing to copy")
	}
	fmt.Printf("cqrs-migrate: %d records copied, %d copied before, %d claims copied, %d old keys deleted\n", m.Records, m.Skipped, m.Claims, m.Deleted)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqrs-migrate:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
