package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HasCluster reports whether dir holds the files of a cluster that StartCluster
// made there: its first master's nodes.conf.
func HasCluster(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "m0", "nodes.conf"))
	return err == nil
}

// ResumeCluster starts again, from their files, the nodes of a cluster of masters *
// (1 + replicas) nodes that StartCluster made in dir and that have all stopped: each
// node in its own directory and on the port its nodes.conf says it had, so that the
// nodes find each other where they were and the cluster keeps its slots and data.
// It waits until the cluster is ok with every replica in sync (at most 30 s). The
// Masters and Replicas of the result are as StartCluster started them: a failover
// before may have swapped roles. extra must give the same options as then.
func ResumeCluster(dir string, masters, replicas int, extra ...string) (*Cluster, error) {
	c := &Cluster{ids: map[*Server]string{}}
	start := func(name string) (*Server, error) {
		d := filepath.Join(dir, name)
		port, err := nodePort(filepath.Join(d, "nodes.conf"))
		if err != nil {
			return nil, err
		}
		return StartMasterWith(d, port, Security{}, append(clusterArgs(d), extra...)...)
	}
	if err := c.startNodes(masters, replicas, start); err != nil {
		return nil, err
	}
	for _, s := range c.All() {
		id, err := s.Do("CLUSTER", "MYID")
		if err != nil {
			c.Kill()
			return nil, fmt.Errorf("cluster myid on %s: %w", s.Addr(), err)
		}
		c.ids[s] = id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitOK(ctx); err != nil {
		c.Kill()
		return nil, err
	}
	return c, nil
}

// nodePort is the port of the node whose nodes.conf is file: the one on its line
// flagged myself ("<id> <ip>:<port>@<bus port>[,<hostname>] myself,...").
func nodePort(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !strings.Contains(","+fields[2]+",", ",myself,") {
			continue
		}
		addr, _, _ := strings.Cut(fields[1], "@")
		i := strings.LastIndexByte(addr, ':')
		port, err := strconv.Atoi(addr[i+1:])
		if i < 0 || err != nil || port < 1 || port > 65535 {
			return 0, fmt.Errorf("%s: no port in %q", file, fields[1])
		}
		return port, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(file + ": no line of this node (myself)")
}
