package redisproc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResumeCluster: a cluster with append-only files, stopped node by node, starts
// again from its directory on the same ports, with its slots and what it stored.
func TestResumeCluster(t *testing.T) {
	requireRedis(t)
	dir := t.TempDir()
	if HasCluster(dir) {
		t.Fatal("HasCluster of an empty directory: got true, want false")
	}
	aof := []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	c, err := StartCluster(dir, 3, 1, aof...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if c != nil {
			c.Kill()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	values := map[string]string{}
	for i := range 20 {
		key := "cqrs:{p" + strconv.Itoa(i) + "}:k"
		values[key] = "v" + strconv.Itoa(i)
		if err := setOnOwner(ctx, c, key, values[key]); err != nil {
			t.Fatal(err)
		}
	}
	addrs := c.Addrs()
	for _, s := range c.All() {
		s.Stop()
	}
	if !HasCluster(dir) {
		t.Fatal("HasCluster of the stopped cluster's directory: got false, want true")
	}

	c, err = ResumeCluster(dir, 3, 1, aof...)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Addrs(); !slices.Equal(got, addrs) {
		t.Errorf("resumed on %v, want the ports of before %v", got, addrs)
	}
	for key, want := range values {
		slot, err := c.Masters[0].Do("CLUSTER", "KEYSLOT", key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(slot)
		m, err := c.MasterOf(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := m.Do("GET", key); err != nil || got != want {
			t.Errorf("GET %s on its master after the resume: got %q (%v), want %q", key, got, err, want)
		}
	}
}

// setOnOwner sets key on the master that serves its slot.
func setOnOwner(ctx context.Context, c *Cluster, key, value string) error {
	slot, err := c.Masters[0].Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(slot)
	m, err := c.MasterOf(ctx, n)
	if err != nil {
		return err
	}
	_, err = m.Do("SET", key, value)
	return err
}

func TestNodePort(t *testing.T) {
	tests := []struct {
		name, conf string
		want       int
		substr     string
	}{
		{"myself among others", "a 127.0.0.1:7001@17001 master - 0 0 1 connected 0-5460\n" +
			"b 127.0.0.1:7002@17002 myself,slave a 0 0 2 connected\nvars currentEpoch 2 lastVoteEpoch 0\n", 7002, ""},
		{"with a hostname", "b 127.0.0.1:7003@17003,node-3 myself,master - 0 0 3 connected\n", 7003, ""},
		{"no myself", "a 127.0.0.1:7001@17001 master - 0 0 1 connected\n", 0, "myself"},
		{"no port", "b 127.0.0.1@17003 myself,master - 0 0 3 connected\n", 0, "no port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "nodes.conf")
			if err := os.WriteFile(f, []byte(tt.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := nodePort(f)
			if tt.substr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.substr) {
					t.Errorf("got %d, %v, want an error naming %q", got, err, tt.substr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v, want %d", got, err, tt.want)
			}
		})
	}
}
