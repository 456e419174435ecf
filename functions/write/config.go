package write

import (
	"fmt"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// Config is the write function's environment; the Knative manifests use exactly
// these names.
type Config struct {
	redisenv.Redis
	RecordTypes      []string      `envconfig:"RECORD_TYPES"`
	MaxTextBytes     int           `envconfig:"MAX_TEXT_BYTES"`
	WriteReplicas    int           `envconfig:"WRITE_REPLICAS"`
	WriteWaitTimeout time.Duration `envconfig:"WRITE_WAIT_TIMEOUT"`
	IdempotencyTTL   time.Duration `envconfig:"IDEMPOTENCY_TTL"`
}

// DefaultConfig is the configuration with every variable unset.
func DefaultConfig() Config {
	return Config{
		Redis:            redisenv.Redis{RedisAddr: "cqrs-redis-master:6379", RedisSentinelMaster: "mymaster", RedisPoolSize: 64},
		RecordTypes:      append([]string(nil), record.DefaultTypes...),
		MaxTextBytes:     record.DefaultMaxTextBytes,
		WriteWaitTimeout: 500 * time.Millisecond,
		IdempotencyTTL:   24 * time.Hour,
	}
}

// Check returns an error naming the first variable with a value that cannot work.
func (c Config) Check() error {
	if err := c.Redis.Check(); err != nil {
		return err
	}
	switch {
	case c.MaxTextBytes < 1 || c.MaxTextBytes > serve.MaxBodyBytes/2:
		return fmt.Errorf("MAX_TEXT_BYTES=%d: must be between 1 and %d", c.MaxTextBytes, serve.MaxBodyBytes/2)
	case c.WriteReplicas < 0:
		return fmt.Errorf("WRITE_REPLICAS=%d: must not be negative", c.WriteReplicas)
	// WAIT takes whole milliseconds, and 0 means forever.
	case c.WriteWaitTimeout < time.Millisecond || c.WriteWaitTimeout > time.Minute:
		return fmt.Errorf("WRITE_WAIT_TIMEOUT=%s: must be between 1ms and 1m", c.WriteWaitTimeout)
	case c.IdempotencyTTL < time.Second:
		return fmt.Errorf("IDEMPOTENCY_TTL=%s: must be at least 1s", c.IdempotencyTTL)
	}
	if err := record.CheckTypes(c.RecordTypes); err != nil {
		return fmt.Errorf("RECORD_TYPES: %w", err)
	}
	return nil
}

// redis is how the write function reaches the master. The socket read timeout
// outlasts the longest WAIT.
func (c Config) redis() store.Options {
	o := c.Redis.Options()
	o.ReadTimeout = c.WriteWaitTimeout + time.Second
	return o
}

// NewWithConfig returns a function that uses cfg instead of the environment.
func NewWithConfig(cfg Config) *Function {
	f := New()
	f.preset = &cfg
	return f
}
