package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis Cluster. The store keeps each partition under one hash tag, so a partition
// lives in one slot, on one shard. Cluster talks to the shards itself, one client per
// node, rather than through go-redis' cluster client, for two reasons: a read must go
// to a replica and say so (the cluster client quietly reads a master when a replica
// is failing or loading, which X-Served-By would misreport), and WAIT must follow a
// create on the same connection of the partition's master (the cluster client sends
// WAIT to every shard and keeps the minimum, or refuses it in a pipeline).

// Cluster is a Redis Cluster as the store sees it: the slot map and a client per
// node, shared by the stores that read and write it.
type Cluster struct {
	opts  Options // for every node's client; Addr is set per node
	seeds []string

	mu     sync.Mutex
	shards []shard                  // from CLUSTER SHARDS
	nodes  map[string]*redis.Client // by address; replicas' clients send READONLY
	loaded time.Time
}

// shard is one master, its replicas and the slots it serves.
type shard struct {
	slots    [][2]int64 // inclusive ranges
	master   string     // address
	replicas []string   // addresses of replicas that are online
}

// NewCluster returns a Cluster reached through seeds (any nodes of it); it reads the
// slot map on first use.
func NewCluster(o Options, seeds []string) *Cluster {
	return &Cluster{opts: o, seeds: seeds, nodes: map[string]*redis.Client{}}
}

// Close closes every node's client.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.Close())
	}
	c.nodes = map[string]*redis.Client{}
	return errors.Join(errs...)
}

// reloadEvery is how often the slot map is read again without a redirection having
// said it changed: replicas come and go without one.
const reloadEvery = 5 * time.Second

// node returns the client of the node that serves slot: its master, or, with
// replica, one of its replicas that is online (an error when it has none).
func (c *Cluster) node(ctx context.Context, slot int64, replica bool) (redis.UniversalClient, error) {
	c.mu.Lock()
	stale := time.Since(c.loaded) > reloadEvery
	c.mu.Unlock()
	if stale {
		if err := c.reload(ctx); err != nil && len(c.snapshot()) == 0 {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sh := range c.shards {
		if !slices.ContainsFunc(sh.slots, func(r [2]int64) bool { return r[0] <= slot && slot <= r[1] }) {
			continue
		}
		if !replica {
			return c.client(sh.master, false), nil
		}
		if len(sh.replicas) == 0 {
			return nil, fmt.Errorf("%w: slot %d (master %s) has no replica online", errNoReplica, slot, sh.master)
		}
		return c.client(sh.replicas[rand.IntN(len(sh.replicas))], true), nil
	}
	return nil, fmt.Errorf("%w: no node serves slot %d", errClusterDown, slot)
}

// Errors of a cluster that cannot serve a partition now: the read side falls back
// to the master when a slot has no replica; both are Down.
var (
	errNoReplica   = errors.New("no replica")
	errClusterDown = errors.New("cluster down")
)

func (c *Cluster) snapshot() []shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shards
}

// client returns the client of the node at addr; c.mu is held.
func (c *Cluster) client(addr string, replica bool) *redis.Client {
	key := addr
	if replica {
		key = "ro " + addr
	}
	if n, ok := c.nodes[key]; ok {
		return n
	}
	o := c.opts
	o.Addr, o.readOnly = addr, replica
	n := NewClient(o).(*redis.Client)
	c.nodes[key] = n
	return n
}

// reload reads the slot map from the first node that answers: the known masters
// first, then the seeds.
func (c *Cluster) reload(ctx context.Context) error {
	var addrs []string
	for _, sh := range c.snapshot() {
		addrs = append(addrs, sh.master)
	}
	addrs = append(addrs, c.seeds...)
	var errs []error
	for _, addr := range addrs {
		c.mu.Lock()
		cl := c.client(addr, false)
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		shards, err := cl.ClusterShards(ctx).Result()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		m := make([]shard, 0, len(shards))
		for _, s := range shards {
			sh := shard{}
			for _, r := range s.Slots {
				sh.slots = append(sh.slots, [2]int64{r.Start, r.End})
			}
			for _, n := range s.Nodes {
				switch {
				case n.Role == "master" && n.Health == "online":
					sh.master = nodeAddr(n, c.opts.TLS != nil)
				case n.Role == "replica" && n.Health != "fail":
					// Not only "online": Redis says "loading" for a replica whose last
					// offset gossip told of is 0, as in a shard written to moments ago.
					// One that is really loading answers LOADING, which reads take as
					// down, and the read side falls back to the master.
					sh.replicas = append(sh.replicas, nodeAddr(n, c.opts.TLS != nil))
				}
			}
			if sh.master != "" && len(sh.slots) > 0 {
				m = append(m, sh)
			}
		}
		c.mu.Lock()
		c.shards, c.loaded = m, time.Now()
		c.mu.Unlock()
		return nil
	}
	return classify(fmt.Errorf("%w: cannot read the slot map: %w", errClusterDown, errors.Join(errs...)))
}

// nodeAddr is where a node listens: its TLS port when the clients speak TLS.
func nodeAddr(n redis.Node, tls bool) string {
	port := n.Port
	if tls && n.TLSPort > 0 {
		port = n.TLSPort
	}
	host := n.IP
	if host == "" {
		host = n.Endpoint
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}

// redirected reports what a cluster's error reply asks of the caller: reload the slot
// map (MOVED: the slot has a new owner; a node that cannot be dialled may have
// failed over), or wait and try again (ASK or TRYAGAIN: the slot is being migrated,
// and the command changed nothing).
func redirected(err error) (reload, retry bool) {
	var oe *net.OpError
	switch {
	case err == nil:
		return false, false
	case errors.As(err, &oe) && oe.Op == "dial", errors.Is(err, errNoReplica), errors.Is(err, errClusterDown):
		// A node that cannot be reached may have failed over: nothing was sent.
		return true, true
	case redis.HasErrorPrefix(err, "MOVED"):
		return true, true
	case redis.HasErrorPrefix(err, "ASK"), redis.HasErrorPrefix(err, "TRYAGAIN"):
		return false, true
	case strings.Contains(err.Error(), "Script attempted to access a non local key"):
		return true, true
	}
	return false, false
}

// slotOf is the cluster slot of partition p: the CRC16 of its hash tag's content,
// modulo 16384, as Redis computes it.
func slotOf(p part) int64 {
	return int64(crc16("p"+strconv.Itoa(int(p))) % 16384)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, no reflection, initial 0), Redis
// Cluster's key hash.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
