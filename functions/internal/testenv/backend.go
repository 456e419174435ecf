package testenv

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// ClusterEnv, set to 1, makes the suites that start their Redis with StartBackend
// run on a Redis Cluster of three masters with a replica each instead of one master
// and its replica: `make test` runs the API, event and browser suites both ways.
const ClusterEnv = "CQRS_TEST_CLUSTER"

// ClusterPartitions is the number of partitions the functions split a test cluster's
// store into: more than masters, so that a master holds several.
const ClusterPartitions = 6

// OnCluster reports whether the suites run on a Redis Cluster (ClusterEnv).
func OnCluster() bool { return os.Getenv(ClusterEnv) == "1" }

// Backend is where a test's functions keep their records: one master and its
// replica, or a Redis Cluster.
type Backend struct {
	Pair    *Pair              // nil on a cluster
	Cluster *redisproc.Cluster // nil on one master
}

// StartBackend starts the Redis the suite runs on (see ClusterEnv), until the test
// ends.
func StartBackend(tb testing.TB) *Backend {
	tb.Helper()
	if !OnCluster() {
		return &Backend{Pair: Redis(tb)}
	}
	return &Backend{Cluster: Cluster(tb)}
}

// Cluster starts a Redis Cluster of three masters with a replica each, until the test
// ends.
func Cluster(tb testing.TB) *redisproc.Cluster {
	tb.Helper()
	RequireRedis(tb)
	c, err := redisproc.StartCluster(tb.TempDir(), 3, 1)
	if err != nil {
		tb.Fatalf("start a Redis Cluster: %v", err)
	}
	tb.Cleanup(c.Kill)
	return c
}

// WriteEnv is the environment that points the write function at the backend.
func (b *Backend) WriteEnv() []string {
	if b.Cluster != nil {
		return b.clusterEnv()
	}
	return []string{"REDIS_ADDR=" + b.Pair.Master.Addr()}
}

// ReadEnv is the environment that points the read function at the backend: its
// replicas, with its masters as the fallback.
func (b *Backend) ReadEnv() []string {
	if b.Cluster != nil {
		return b.clusterEnv()
	}
	return []string{"REDIS_ADDR=" + b.Pair.Replica.Addr(), "REDIS_MASTER_ADDR=" + b.Pair.Master.Addr()}
}

func (b *Backend) clusterEnv() []string {
	return []string{"REDIS_CLUSTER_ADDRS=" + strings.Join(b.Cluster.Addrs(), ","), "REDIS_PARTITIONS=" + strconv.Itoa(ClusterPartitions)}
}

// Masters are the Redis masters of the backend.
func (b *Backend) Masters() []*redisproc.Server {
	if b.Cluster != nil {
		return b.Cluster.Masters
	}
	return []*redisproc.Server{b.Pair.Master}
}

// Replicas are the Redis replicas of the backend.
func (b *Backend) Replicas() []*redisproc.Server {
	if b.Cluster == nil {
		return []*redisproc.Server{b.Pair.Replica}
	}
	var out []*redisproc.Server
	for _, rs := range b.Cluster.Replicas {
		out = append(out, rs...)
	}
	return out
}

// NeedsOneMaster skips, on a cluster, a test that shows something of one master and
// its replica (killing or emptying the master, say); the cluster suites show it for a
// cluster.
func NeedsOneMaster(tb testing.TB, why string) {
	tb.Helper()
	if OnCluster() {
		tb.Skipf("on one master only: %s", why)
	}
}

// Records is how many records the backend's masters hold, all partitions together.
func (b *Backend) Records(tb testing.TB) int {
	tb.Helper()
	return b.sum(tb, "cqrs:*:docs", func(ctx context.Context, c *redis.Client, key string) (int64, error) {
		return c.HLen(ctx, key).Result()
	})
}

// WordRecords is how many records of the backend's masters hold word (already in
// its search form: lower-case letters and digits).
func (b *Backend) WordRecords(tb testing.TB, word string) int {
	tb.Helper()
	return b.sum(tb, "cqrs:*:ix:w:"+word, func(ctx context.Context, c *redis.Client, key string) (int64, error) {
		n, err := c.StrLen(ctx, key).Result()
		return n / 4, err // a packed index holds 4 bytes a record
	})
}

// sum adds f of every key matching pattern on every master.
func (b *Backend) sum(tb testing.TB, pattern string, f func(context.Context, *redis.Client, string) (int64, error)) int {
	tb.Helper()
	ctx := context.Background()
	var total int64
	for _, m := range b.Masters() {
		c := redis.NewClient(&redis.Options{Addr: m.Addr(), DisableIdentity: true})
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			n, err := f(ctx, c, iter.Val())
			if err != nil {
				tb.Fatalf("%s on %s: %v", iter.Val(), m.Addr(), err)
			}
			total += n
		}
		err := iter.Err()
		c.Close()
		if err != nil {
			tb.Fatalf("SCAN %s on %s: %v", pattern, m.Addr(), err)
		}
	}
	return int(total)
}

// Flush empties every master, as a Redis restarted without its data is, and waits
// until every replica has followed.
func (b *Backend) Flush(tb testing.TB) {
	tb.Helper()
	for _, m := range b.Masters() {
		if _, err := m.Do("FLUSHALL"); err != nil {
			tb.Fatalf("FLUSHALL on %s: %v", m.Addr(), err)
		}
	}
	for _, r := range b.Replicas() {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if n, err := r.Do("DBSIZE"); err == nil && n == "0" {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("replica %s still has keys after FLUSHALL on the masters", r.Addr())
			}
		}
	}
}
