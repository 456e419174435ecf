package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/redis/go-redis/v9"
)

func (b *bench) startRedis() error {
	if _, err := redisproc.Binary(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cqrs-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	// Each Redis in a directory of its own (redisproc refuses one shared).
	for _, sub := range []string{"master", "replica"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	if b.master, err = redisproc.StartMaster(filepath.Join(dir, "master"), 0); err != nil {
		return fmt.Errorf("start master: %w", err)
	}
	if b.replica, err = redisproc.StartReplica(filepath.Join(dir, "replica"), 0, b.master); err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	b.mc = redis.NewClient(&redis.Options{Addr: b.master.Addr(), PoolSize: 64, ReadTimeout: 10 * time.Second})
	b.rc = redis.NewClient(&redis.Options{Addr: b.replica.Addr(), PoolSize: 8, ReadTimeout: 10 * time.Second})
	progress("redis master on %s, replica on %s", b.master.Addr(), b.replica.Addr())
	return b.replica.WaitLinkUp(10 * time.Second)
}

// flush empties the master and waits until the replica is empty too. A create that a
// load phase sent just before it ended can still land after FLUSHALL (the function
// finishes what it started), so it flushes again until both stay empty.
func (b *bench) flush(ctx context.Context) error {
	for range 20 {
		if err := b.mc.FlushAllAsync(ctx).Err(); err != nil {
			return fmt.Errorf("flushall: %w", err)
		}
		if err := b.waitReplica(ctx); err != nil {
			return err
		}
		m, err1 := b.mc.DBSize(ctx).Result()
		r, err2 := b.rc.DBSize(ctx).Result()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if m == 0 && r == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the store does not stay empty after FLUSHALL: something else writes to this master")
}

// waitReplica waits until the replica has applied everything the master has sent.
func (b *bench) waitReplica(ctx context.Context) error {
	return poll(ctx, 60*time.Second, "replica to catch up", func() bool {
		m, err1 := b.master.Info("replication", "master_repl_offset")
		r, err2 := b.replica.Info("replication", "slave_repl_offset")
		return err1 == nil && err2 == nil && m == r
	})
}

func poll(ctx context.Context, timeout time.Duration, what string, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// startProc runs a program with env (plus PATH and a free PORT), its output going to
// a log file beside the Redis logs.
func (b *bench) startProc(name, path string, env ...string) (*launch.Proc, error) {
	log, err := os.OpenFile(filepath.Join(b.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	p, err := launch.Start(launch.Spec{Name: name, Path: path, Env: env, Output: log})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// stopProc kills one process this run started and reaps it.
func (b *bench) stopProc(p *launch.Proc) {
	b.mu.Lock()
	b.procs = slices.DeleteFunc(b.procs, func(q *launch.Proc) bool { return q == p })
	b.mu.Unlock()
	p.Kill()
}

func (b *bench) readEnv() []string {
	return []string{"REDIS_ADDR=" + b.replica.Addr(), "REDIS_MASTER_ADDR=" + b.master.Addr()}
}

func (b *bench) writeEnv() []string { return []string{"REDIS_ADDR=" + b.master.Addr()} }

func (b *bench) startFunctions(ctx context.Context) error {
	var err error
	if b.write, err = b.startProc("cqrs-write", filepath.Join(b.opts.bin, "cqrs-write"), b.writeEnv()...); err != nil {
		return err
	}
	if b.read, err = b.startProc("cqrs-read", filepath.Join(b.opts.bin, "cqrs-read"), b.readEnv()...); err != nil {
		return err
	}
	if b.base, err = b.startProc(procBase, b.basePath, "REDIS_ADDR="+b.master.Addr(),
		"REDIS_REPLICA_ADDR="+b.replica.Addr(), "PAGE_KEY="+pageKey); err != nil {
		return err
	}
	for _, p := range []*launch.Proc{b.write, b.read, b.base} {
		if err := p.WaitReady(ctx, 10*time.Second); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, b.dir)
		}
	}
	progress("cqrs-write on %s, cqrs-read on %s, baseline on %s", b.write.URL(), b.read.URL(), b.base.URL())
	return nil
}

// close stops every process this run started, by its own handle, and removes the
// temporary directory.
func (b *bench) close() {
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, c := range []*redis.Client{b.mc, b.rc} {
		if c != nil {
			c.Close()
		}
	}
	var errs []error
	for _, s := range []*redisproc.Server{b.replica, b.master} {
		if s != nil {
			errs = append(errs, s.Kill())
		}
	}
	if err := errors.Join(errs...); err != nil {
		progress("stopping redis: %v", err)
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
