package testenv

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// WaitSentinelKnows waits (at most 15 s) until the Sentinel behind sc lists the
// replica on port of the master set as up and connected: before that, a function
// that asks it for a replica, or a failover, would find none.
func WaitSentinelKnows(tb testing.TB, sc *redis.SentinelClient, masterSet string, port int) {
	tb.Helper()
	want := strconv.Itoa(port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		replicas, err := sc.Replicas(ctx, masterSet).Result()
		cancel()
		for _, r := range replicas {
			if r["port"] == want && !strings.Contains(r["flags"], "down") && !strings.Contains(r["flags"], "disconnected") {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sentinel does not know the replica on port %s after 15s: %v %v", want, replicas, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
