package store

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options say how to reach Redis. With SentinelAddrs set, Addr is ignored and the
// client follows the master (or the replicas, with Replicas) that Sentinel names.
// Who the client is (Username, Password) and how it connects (TLS) hold for every
// mode alike.
type Options struct {
	Addr string
	// Username is the ACL user; empty is Redis' default user. Password is its
	// password (or requirepass).
	Username, Password string
	// TLS, when set, makes every connection TLS, to the Sentinels too: go-redis
	// gives both the one configuration, so they must share a CA and a server name.
	TLS            *tls.Config
	SentinelAddrs  []string
	SentinelMaster string
	// SentinelUsername and SentinelPassword authenticate to the Sentinels, which
	// keep users of their own.
	SentinelUsername, SentinelPassword string
	Replicas                           bool // connect to a replica through Sentinel (read side)
	PoolSize                           int
	// ReadTimeout overrides the default socket read timeout; a WAIT longer than the
	// read timeout would otherwise be cut off by the client.
	ReadTimeout time.Duration

	// readOnly makes every new connection send READONLY first: a cluster replica
	// then serves reads of its master's slots instead of redirecting them.
	readOnly bool
}

// bufferSize is each connection's read and write buffer (go-redis' default is 32 KiB
// each): a 25-record page and the largest create command fit, larger replies are
// read past the buffer, and 32 busy connections hold 0.5 MiB instead of 2 MiB.
const bufferSize = 8 << 10

// Timeouts are short on purpose: a dead or stuck Redis must turn into a 503 within
// about two seconds, never a hung request.
const (
	dialTimeout = 500 * time.Millisecond
	ioTimeout   = time.Second
	poolTimeout = time.Second
)

// CallSlack is how long a request's Redis calls may take beyond the waits it asks
// for (the read side's wait for the replica, the write side's WAIT): a call that does
// not wait costs Redis milliseconds (a page is bounded by the scan budget), so this
// is plenty, and it keeps any request from holding a connection for long.
const CallSlack = 2 * time.Second

// NewClient returns a go-redis client with bounded pool and short timeouts. Commands
// are not retried by the client: a create that timed out may have been applied, and
// only the caller (with an idempotency key) can retry it safely.
func NewClient(o Options) redis.UniversalClient {
	pool := o.PoolSize
	if pool <= 0 {
		pool = 64
	}
	uo := &redis.UniversalOptions{
		Username:         o.Username,
		Password:         o.Password,
		SentinelUsername: o.SentinelUsername,
		SentinelPassword: o.SentinelPassword,
		// No CLIENT SETINFO on each new connection: one command fewer for the ACL
		// to grant (Redis 7.0 does not know it, 7.2 would log every refusal) and one
		// round trip fewer per connection.
		DisableIdentity: true,
		DialTimeout:     dialTimeout,
		ReadTimeout:     max(ioTimeout, o.ReadTimeout),
		WriteTimeout:    ioTimeout,
		PoolTimeout:     poolTimeout,
		PoolSize:        pool,
		ReadBufferSize:  bufferSize,
		WriteBufferSize: bufferSize,
		// Pipelines share the bounded main pool instead of a second pool with
		// 128 KiB buffers per connection.
		PipelinePoolSize: -1,
		MaxRetries:       -1,
		// One dial attempt: a refused connection is an answer, and the caller's
		// fallback (or the client's retry) is faster than the pool's own backoff.
		DialerRetries: 1,
		// A request's deadline bounds its Redis calls too: no request holds a
		// pooled connection longer than it may take itself.
		ContextTimeoutEnabled: true,
	}
	if o.readOnly {
		uo.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }
	}
	if o.TLS != nil {
		// Our own dialer instead of go-redis' TLSConfig (it would use the one as
		// well), so that a server that never answers the handshake is told apart.
		uo.Dialer = tlsDialer(o.TLS)
	}
	if len(o.SentinelAddrs) > 0 {
		uo.Addrs, uo.MasterName = o.SentinelAddrs, o.SentinelMaster
		fo := uo.Failover()
		fo.ReplicaOnly = o.Replicas
		return redis.NewFailoverClient(fo)
	}
	uo.Addrs = []string{o.Addr}
	return redis.NewClient(uo.Simple())
}
