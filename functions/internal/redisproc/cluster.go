package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
)

// Cluster is a Redis Cluster on loopback ports: masters that share the 16384 slots
// evenly, each with its replicas.
type Cluster struct {
	Masters  []*Server
	Replicas [][]*Server // Replicas[i] replicate Masters[i] (as started: a failover swaps roles)
	ids      map[*Server]string
}

// clusterArgs make a redis-server a cluster node. A short node timeout makes a
// failover take about two seconds.
func clusterArgs(dir string) []string {
	return []string{"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0",
		"--cluster-allow-reads-when-down", "no"}
}

// StartCluster starts masters * (1 + replicas) nodes, each in a directory of its own
// under dir, gives the masters the slots, joins every node, makes the replicas
// replicate their masters, and waits until the cluster is ok on every node and every
// replica is in sync (at most 30 s).
func StartCluster(dir string, masters, replicas int, extra ...string) (*Cluster, error) {
	return StartClusterWith(dir, masters, replicas, Security{}, extra...)
}

// StartClusterWith is StartCluster with every node protected by sec: with TLS, the
// nodes talk to each other over TLS too (tls-cluster), and replicas give their
// masters the password. MoveSlot and MasterOf speak plain TCP without a password.
func StartClusterWith(dir string, masters, replicas int, sec Security, extra ...string) (*Cluster, error) {
	c := &Cluster{ids: map[*Server]string{}}
	var secArgs []string
	if sec.TLS != nil {
		secArgs = append(secArgs, "--tls-cluster", "yes")
	}
	if sec.Password != "" {
		secArgs = append(secArgs, "--masterauth", sec.Password)
	}
	start := func(name string) (*Server, error) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		port, err := clusterPort()
		if err != nil {
			return nil, err
		}
		args := append(append(clusterArgs(d), secArgs...), extra...)
		return StartMasterWith(d, port, sec, args...)
	}
	if err := c.startNodes(masters, replicas, start); err != nil {
		return nil, err
	}
	if err := c.form(masters); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// startNodes starts masters nodes named m0, m1, ... and replicas nodes after each,
// named m0-r0, ..., by start, filling c.Masters and c.Replicas in that order. On a
// failure it kills what it started.
func (c *Cluster) startNodes(masters, replicas int, start func(name string) (*Server, error)) error {
	for i := range masters {
		m, err := start(fmt.Sprintf("m%d", i))
		if err != nil {
			c.Kill()
			return err
		}
		c.Masters = append(c.Masters, m)
		var rs []*Server
		for j := range replicas {
			r, err := start(fmt.Sprintf("m%d-r%d", i, j))
			if err != nil {
				c.Kill()
				return err
			}
			rs = append(rs, r)
		}
		c.Replicas = append(c.Replicas, rs)
	}
	return nil
}

func (c *Cluster) form(masters int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range c.All() {
		id, err := s.Do("CLUSTER", "MYID")
		if err != nil {
			return fmt.Errorf("cluster myid on %s: %w", s.Addr(), err)
		}
		c.ids[s] = id
	}
	for i, m := range c.Masters {
		from, to := i*16384/masters, (i+1)*16384/masters-1
		if _, err := m.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(from), strconv.Itoa(to)); err != nil {
			return fmt.Errorf("addslotsrange on %s: %w", m.Addr(), err)
		}
	}
	first := c.Masters[0]
	for _, s := range c.All()[1:] {
		if _, err := first.Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(s.Port)); err != nil {
			return fmt.Errorf("meet %s: %w", s.Addr(), err)
		}
	}
	n := len(c.All())
	if err := poll(ctx, "every node to know every other", func() bool {
		for _, s := range c.All() {
			out, err := s.Do("CLUSTER", "NODES")
			if err != nil || strings.Count(strings.TrimSpace(out), "\n")+1 != n || strings.Contains(out, "handshake") {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	for i, rs := range c.Replicas {
		for _, r := range rs {
			if _, err := r.Do("CLUSTER", "REPLICATE", c.ids[c.Masters[i]]); err != nil {
				return fmt.Errorf("replicate on %s: %w", r.Addr(), err)
			}
		}
	}
	return c.WaitOK(ctx)
}

// WaitOK waits until every running node says the cluster is ok and every running
// replica's link to its master is up.
func (c *Cluster) WaitOK(ctx context.Context) error {
	return poll(ctx, "the cluster to be ok with every replica in sync", func() bool {
		for _, s := range c.All() {
			if s.PID() == 0 {
				continue
			}
			if v, err := s.Do("CLUSTER", "INFO"); err != nil || !strings.Contains(v, "cluster_state:ok") {
				return false
			}
			role, err := s.Info("replication", "role")
			if err != nil {
				return false
			}
			if role == "slave" {
				if v, _ := s.Info("replication", "master_link_status"); v != "up" {
					return false
				}
			}
		}
		return true
	})
}

// All is every node, masters first.
func (c *Cluster) All() []*Server {
	all := append([]*Server(nil), c.Masters...)
	for _, rs := range c.Replicas {
		all = append(all, rs...)
	}
	return all
}

// Addrs are the addresses of every node, for clients to start from.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, s := range c.All() {
		out = append(out, s.Addr())
	}
	return out
}

// ID is the node id of s.
func (c *Cluster) ID(s *Server) string { return c.ids[s] }

// Kill ends every node.
func (c *Cluster) Kill() {
	for _, s := range c.All() {
		s.Kill()
	}
}

// MoveSlot migrates slot, with its keys, from the master from to the master to, the
// way redis-cli --cluster reshard does: IMPORTING on the target, MIGRATING on the
// source, the keys moved batch by batch with MIGRATE, then the slot given to the
// target on every master.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, from, to *Server, batch int) (moved int, err error) {
	src := redis.NewClient(&redis.Options{Addr: from.Addr(), DisableIdentity: true})
	defer src.Close()
	dst := redis.NewClient(&redis.Options{Addr: to.Addr(), DisableIdentity: true})
	defer dst.Close()
	if err := dst.Do(ctx, "cluster", "setslot", slot, "importing", c.ids[from]).Err(); err != nil {
		return 0, fmt.Errorf("setslot importing: %w", err)
	}
	if err := src.Do(ctx, "cluster", "setslot", slot, "migrating", c.ids[to]).Err(); err != nil {
		return 0, fmt.Errorf("setslot migrating: %w", err)
	}
	for {
		keys, err := src.ClusterGetKeysInSlot(ctx, slot, batch).Result()
		if err != nil {
			return moved, fmt.Errorf("getkeysinslot: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"migrate", "127.0.0.1", to.Port, "", 0, 5000, "keys"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := src.Do(ctx, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return moved, fmt.Errorf("migrate: %w", err)
		}
		moved += len(keys)
	}
	// The destination first: told it owns the slot while importing it, it bumps its
	// config epoch, so its claim wins over the source's older one wherever gossip
	// meets both; then the source, then the rest (Redis' documented order).
	order := []*Server{to, from}
	for _, m := range c.Masters {
		if m != to && m != from {
			order = append(order, m)
		}
	}
	for _, m := range order {
		if m.PID() == 0 {
			continue
		}
		if _, err := m.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "NODE", c.ids[to]); err != nil {
			return moved, fmt.Errorf("setslot node on %s: %w", m.Addr(), err)
		}
	}
	// As redis-cli's reshard does, the next move starts once the masters agree: a
	// master that gossip has not yet told of a newer epoch could still undo this one.
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// One that gossip turned back (a replica of the source still claiming the slot
	// with an epoch above the destination's) is told again.
	return moved, poll(wait, fmt.Sprintf("every master to say slot %d is %s's", slot, to.Addr()), func() bool {
		agree := true
		for _, m := range c.Masters {
			if m.PID() != 0 && c.ownerSays(wait, m, slot) != c.ids[to] {
				agree = false
				m.Do("CLUSTER", "SETSLOT", strconv.Itoa(slot), "NODE", c.ids[to])
			}
		}
		return agree
	})
}

// clusterPort is a free loopback port whose cluster bus port (10000 above it) is
// free too: a node on a port above 55535 would have no bus port and refuses to start,
// and the kernel may hand out such ports.
func clusterPort() (int, error) {
	for range 100 {
		port, err := launch.FreePort()
		if err != nil {
			return 0, err
		}
		if port+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port with a free cluster bus port in 100 tries")
}

// MasterOf is the master that serves slot now, by its own word: a master's view of
// itself is current, where another node may still hold the map from before a move
// until gossip reaches it. It waits (at most 5 s) while no master claims the slot.
func (c *Cluster) MasterOf(ctx context.Context, slot int) (*Server, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var owner *Server
	err := poll(ctx, fmt.Sprintf("a master to claim slot %d", slot), func() bool {
		for _, m := range c.Masters {
			if m.PID() != 0 && c.ownerSays(ctx, m, slot) == c.ids[m] {
				owner = m
				return true
			}
		}
		return false
	})
	return owner, err
}

// ownerSays is the id of the master that s holds to serve slot, or "".
func (c *Cluster) ownerSays(ctx context.Context, s *Server, slot int) string {
	cl := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	defer cl.Close()
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		return ""
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if int64(slot) < r.Start || int64(slot) > r.End {
				continue
			}
			for _, n := range sh.Nodes {
				if n.Role == "master" {
					return n.ID
				}
			}
		}
	}
	return ""
}

func poll(ctx context.Context, what string, ok func() bool) error {
	for {
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
