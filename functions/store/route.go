package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Where a partition's commands go. On one Redis (a master or a replica, or the ones
// Sentinel names) every partition is there; in a cluster each is on the shard that
// serves its slot: its master, or for a reading store one of its replicas.

// redis returns the Redis that holds partition p.
func (s *Store) redis(ctx context.Context, p part) (redis.UniversalClient, error) {
	if s.cluster == nil {
		return s.rdb, nil
	}
	return s.cluster.node(ctx, slotOf(p), s.replica)
}

// redirections bounds how often a command is sent again after the cluster redirected
// it (MOVED, ASK, TRYAGAIN); with the pauses between, about a second in all, what
// moving one partition's slot takes with a few thousand keys.
const redirections = 8

// call is one partition's command, or commands that must share a connection (a
// create and its WAIT): build makes them (again, when they must be sent again); the
// first is the one whose error decides; script is the script it runs by SHA, if
// any, loaded on NOSCRIPT.
type call struct {
	p      part
	build  func() []redis.Cmder
	script *redis.Script
}

// run sends calls, one pipeline per Redis they go to, those at once, and returns each
// call's commands in order. A command that found the script cache empty is sent again
// after loading the script; one the cluster redirected, after reading the slot map
// again or pausing while its slot moves, at most redirections times.
func (s *Store) run(ctx context.Context, calls []call) [][]redis.Cmder {
	out := make([][]redis.Cmder, len(calls))
	todo := make([]int, len(calls))
	for i := range calls {
		todo[i] = i
	}
	pause := 10 * time.Millisecond
	for attempt := 0; len(todo) > 0; attempt++ {
		s.send(ctx, calls, todo, out)
		var again []int
		reload := false
		for _, i := range todo {
			r, retry := redirected(out[i][0].Err())
			if retry && attempt < redirections && s.cluster != nil {
				again = append(again, i)
				reload = reload || r
			}
		}
		if len(again) == 0 || ctx.Err() != nil {
			break
		}
		// A redirection means the slot is moving or has moved; the nodes learn of it
		// by gossip, so the map is read again after a pause, not at once.
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 200*time.Millisecond)
		if reload {
			s.cluster.reload(ctx)
		}
		todo = again
	}
	return out
}

// runAll is run for calls whose every command must succeed (redis.Nil, a nil reply,
// is an answer): it returns the first error instead.
func (s *Store) runAll(ctx context.Context, calls []call) ([][]redis.Cmder, error) {
	res := s.run(ctx, calls)
	for _, cmds := range res {
		for _, c := range cmds {
			if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
				return nil, classify(err)
			}
		}
	}
	return res, nil
}

// perPartition is one call per partition, its commands made by build.
func (s *Store) perPartition(build func(p part) []redis.Cmder) []call {
	calls := make([]call, s.parts)
	for i := range calls {
		p := part(i)
		calls[i] = call{p: p, build: func() []redis.Cmder { return build(p) }}
	}
	return calls
}

// send sends the calls at indexes todo, grouped by Redis, and fills out.
func (s *Store) send(ctx context.Context, calls []call, todo []int, out [][]redis.Cmder) {
	groups := map[redis.UniversalClient][]int{}
	var order []redis.UniversalClient
	for _, i := range todo {
		c, err := s.redis(ctx, calls[i].p)
		if err != nil {
			out[i] = calls[i].build()
			for _, cmd := range out[i] {
				cmd.SetErr(err)
			}
			continue
		}
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], i)
	}
	var wg sync.WaitGroup
	for n, c := range order {
		send := func() { s.sendTo(ctx, c, calls, groups[c], out) }
		if n == len(order)-1 {
			send() // the last group on this goroutine
			continue
		}
		wg.Go(send)
	}
	wg.Wait()
}

// sendTo sends calls at indexes idx to c in one round trip, and once more those that
// found the script cache empty, after loading their script.
func (s *Store) sendTo(ctx context.Context, c redis.UniversalClient, calls []call, idx []int, out [][]redis.Cmder) {
	exec := func(idx []int) {
		for _, i := range idx {
			out[i] = calls[i].build()
		}
		if len(idx) == 1 && len(out[idx[0]]) == 1 {
			c.Process(ctx, out[idx[0]][0])
			return
		}
		c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, i := range idx {
				for _, cmd := range out[i] {
					pl.Process(ctx, cmd)
				}
			}
			return nil
		})
	}
	exec(idx)
	var again []int
	loaded := map[*redis.Script]bool{}
	for _, i := range idx {
		sc := calls[i].script
		if sc == nil || !redis.HasErrorPrefix(out[i][0].Err(), "NOSCRIPT") {
			continue
		}
		// The script cache is empty after a restart or a failover: load it, once.
		if !loaded[sc] {
			if err := sc.Load(ctx, c).Err(); err != nil {
				continue
			}
			loaded[sc] = true
		}
		again = append(again, i)
	}
	if len(again) > 0 {
		exec(again)
	}
}

// evalCall is the call that runs sc by its SHA in partition p (EVALSHA_RO when
// readOnly).
func evalCall(ctx context.Context, p part, sc *redis.Script, readOnly bool, keys []string, args ...any) call {
	name := "evalsha"
	if readOnly {
		name = "evalsha_ro"
	}
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, name, sc.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	return call{p: p, script: sc, build: func() []redis.Cmder {
		return []redis.Cmder{redis.NewCmd(ctx, cmdArgs...)}
	}}
}

// waiting makes c wait, when replicas > 0, up to wait for that many replicas to
// acknowledge its writes: WAIT counts the writes of its own connection, so it goes
// in the same pipeline, right after them.
func (c call) waiting(ctx context.Context, replicas int, wait time.Duration) call {
	if replicas <= 0 {
		return c
	}
	build := c.build
	c.build = func() []redis.Cmder {
		return append(build(), redis.NewIntCmd(ctx, "wait", replicas, wait.Milliseconds()))
	}
	return c
}

// acked is the number of replicas that the WAIT of a waiting call's commands
// counted: 0 when it was not asked for, or failed (then no replica is known to have
// the writes).
func acked(cmds []redis.Cmder) int {
	if len(cmds) < 2 {
		return 0
	}
	n, err := cmds[1].(*redis.IntCmd).Result()
	if err != nil {
		return 0
	}
	return int(n)
}
